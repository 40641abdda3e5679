//! The netlink message format, written and read: the one builder and the one walk over
//! `struct nlmsghdr` and the attributes (`struct nlattr`, `struct rtattr`: the same layout)
//! that the route backend, route lookups, sock_diag and the nftables socket share. **Pure.**
//!
//! The layouts are fixed by `linux/netlink.h`: a 16-byte header (length, type, flags, sequence
//! number, port id) in host byte order, then the body; messages and attributes padded to 4
//! bytes. Readers never trust a length: a malformed one ends the walk (the kernel never sends
//! one; a reader must not die on it).

/// Length of `struct nlmsghdr`.
pub const HEADER_LEN: usize = 16;
/// `NLMSG_ERROR`: an acknowledgement (error 0) or an error.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a dump.
pub const NLMSG_DONE: u16 = 3;
/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ACK`.
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_EXCL`: fail if it exists.
pub const NLM_F_EXCL: u16 = 0x200;
/// `NLM_F_CREATE`.
pub const NLM_F_CREATE: u16 = 0x400;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;

/// One message of a buffer received from netlink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// `nlmsg_pid`: for a notification, the port of the socket whose request caused it.
    pub pid: u32,
    /// The whole message, header included (what libnftnl's parsers take).
    pub bytes: &'a [u8],
}

impl<'a> Message<'a> {
    /// The message after its header.
    pub fn body(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }

    /// For `NLMSG_ERROR`: 0 for an acknowledgement, else the (positive) errno.
    pub fn error(&self) -> Option<i32> {
        if self.kind != NLMSG_ERROR {
            return None;
        }
        let raw = self.body().get(..4)?;
        Some(-i32::from_ne_bytes(raw.try_into().ok()?))
    }
}

/// The messages of a buffer received from netlink. Stops at the first malformed length.
pub fn messages(mut buf: &[u8]) -> impl Iterator<Item = Message<'_>> {
    std::iter::from_fn(move || {
        let len = usize::try_from(u32::from_ne_bytes(buf.get(..4)?.try_into().ok()?)).ok()?;
        if len < HEADER_LEN || len > buf.len() {
            return None;
        }
        let msg = Message {
            kind: u16::from_ne_bytes(buf[4..6].try_into().ok()?),
            seq: u32::from_ne_bytes(buf[8..12].try_into().ok()?),
            pid: u32::from_ne_bytes(buf[12..16].try_into().ok()?),
            bytes: &buf[..len],
        };
        buf = buf.get(len.next_multiple_of(4)..).unwrap_or_default();
        Some(msg)
    })
}

/// The attributes of a message body after its fixed part: each `(type, value)`. Stops at the
/// first malformed length.
pub fn attributes(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(u16::from_ne_bytes(buf.get(..2)?.try_into().ok()?));
        if len < 4 || len > buf.len() {
            return None;
        }
        let kind = u16::from_ne_bytes(buf[2..4].try_into().ok()?);
        let value = &buf[4..len];
        buf = buf.get(len.next_multiple_of(4)..).unwrap_or_default();
        Some((kind, value))
    })
}

/// A request being written: the header, a fixed part, then attributes; [`Request::finish`]
/// writes the length. Port id 0: the kernel fills in ours.
#[derive(Clone, Debug)]
pub struct Request(Vec<u8>);

impl Request {
    /// A message of type `kind` with `flags` and sequence number `seq`.
    pub fn new(kind: u16, flags: u16, seq: u32) -> Self {
        let mut m = Vec::with_capacity(64);
        m.extend_from_slice(&[0; 4]);
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        Request(m)
    }

    /// Appends the fixed part of the body (a `struct rtmsg`, an `inet_diag_req_v2`), padded
    /// to 4 bytes.
    #[must_use]
    pub fn fixed(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self.pad();
        self
    }

    /// Appends an attribute, padded to 4 bytes.
    ///
    /// # Panics
    ///
    /// If `value` is longer than an attribute can be (65,531 bytes): callers pass addresses.
    #[must_use]
    pub fn attr(mut self, kind: u16, value: &[u8]) -> Self {
        let len = u16::try_from(4 + value.len()).expect("an attribute of at most 65,531 bytes");
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.pad();
        self
    }

    fn pad(&mut self) {
        self.0.resize(self.0.len().next_multiple_of(4), 0);
    }

    /// The bytes, with the length written in.
    ///
    /// # Panics
    ///
    /// If the message is over 4 GiB: requests here are tens of bytes.
    pub fn finish(mut self) -> Vec<u8> {
        let len = u32::try_from(self.0.len()).expect("a message under 4 GiB");
        self.0[..4].copy_from_slice(&len.to_ne_bytes());
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u32, kind: u16, seq: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&len.to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(&0u16.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v
    }

    fn error(seq: u32, errno: i32) -> Vec<u8> {
        let mut v = header(36, NLMSG_ERROR, seq);
        v.extend_from_slice(&(-errno).to_ne_bytes());
        v.extend_from_slice(&header(16, 0, seq)); // the echoed request header
        v
    }

    #[test]
    fn acks_errors_and_padding_are_read() {
        let mut buf = error(1, 0);
        buf.extend(error(2, 23));
        let mut odd = header(18, 0x0a0d, 3);
        odd.extend_from_slice(&[1, 2, 0, 0]); // 2 bytes of payload, 2 of padding
        buf.extend(odd);
        buf.extend(header(16, NLMSG_DONE, 4));
        let got: Vec<(u16, u32, Option<i32>)> =
            messages(&buf).map(|m| (m.kind, m.seq, m.error())).collect();
        assert_eq!(
            got,
            [
                (NLMSG_ERROR, 1, Some(0)),
                (NLMSG_ERROR, 2, Some(23)),
                (0x0a0d, 3, None),
                (NLMSG_DONE, 4, None)
            ]
        );
    }

    #[test]
    fn a_bad_length_stops_reading_without_panic() {
        let mut buf = error(1, 0);
        buf.extend(header(9999, 0, 2));
        assert_eq!(messages(&buf).count(), 1);
        assert_eq!(messages(&[0, 0]).count(), 0);
        assert_eq!(messages(&header(3, 0, 1)).count(), 0);
    }

    #[test]
    fn a_request_is_read_back_as_it_was_written() {
        let one = Request::new(26, NLM_F_REQUEST, 7)
            .fixed(&[2, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
            .attr(1, &[198, 51, 100, 2])
            .attr(4, &[9, 0, 0, 0, 1])
            .finish();
        assert_eq!(one.len(), HEADER_LEN + 12 + 8 + 12, "{one:?}");
        let mut both = one.clone();
        both.extend(Request::new(NLMSG_DONE, 0, 8).fixed(&[0; 4]).finish());
        let read: Vec<Message<'_>> = messages(&both).collect();
        assert_eq!(read.len(), 2);
        assert_eq!(
            (read[0].kind, read[0].seq, read[0].bytes),
            (26, 7, &one[..])
        );
        assert_eq!((read[1].kind, read[1].seq), (NLMSG_DONE, 8));
        let attrs: Vec<(u16, &[u8])> = attributes(&read[0].body()[12..]).collect();
        assert_eq!(
            attrs,
            [(1, &[198, 51, 100, 2][..]), (4, &[9, 0, 0, 0, 1][..])]
        );
    }

    #[test]
    fn errors_and_acknowledgements() {
        let answer = |code: i32| {
            Request::new(NLMSG_ERROR, 0, 3)
                .fixed(&code.to_ne_bytes())
                .finish()
        };
        let ack = answer(0);
        assert_eq!(messages(&ack).next().unwrap().error(), Some(0));
        let refused = answer(-17);
        assert_eq!(messages(&refused).next().unwrap().error(), Some(17));
        let other = Request::new(24, 0, 3).finish();
        assert_eq!(messages(&other).next().unwrap().error(), None);
    }

    /// Lengths that lie end the walk; nothing panics, whatever the bytes.
    #[test]
    fn malformed_lengths_end_the_walk() {
        let good = Request::new(24, 0, 1).fixed(&[0; 12]).finish();
        for cut in 0..good.len() {
            assert_eq!(messages(&good[..cut]).count(), 0, "cut at {cut}");
        }
        let mut short = good.clone();
        short[..4].copy_from_slice(&8u32.to_ne_bytes());
        assert_eq!(messages(&short).count(), 0);
        let mut long = good.clone();
        long[..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(messages(&long).count(), 0);
        for bytes in [&[0u8; 3][..], &[2, 0, 1, 0], &[200, 0, 1, 0, 9]] {
            assert_eq!(attributes(bytes).count(), 0, "{bytes:?}");
        }
    }
}
