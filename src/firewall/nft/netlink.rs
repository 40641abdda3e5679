//! One nfnetlink socket: sends a batch in a single `sendto` and collects its ACKs without ever
//! waiting for one that will not come; runs dumps. **Shell**, except [`messages`], the pure
//! reader of netlink message buffers.
//!
//! Facts this relies on (measured on this project's kernel, Linux 6.18):
//! nfnetlink processes a batch synchronously, so every ACK is queued by the time `sendto`
//! returns; on failure the batch END is not ACKed, so waiting for every sequence number would
//! hang. Hence: send, then drain without blocking until the queue is empty.

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, recv, setsockopt, sockopt};

use super::sys;

use crate::netlink::NLMSG_DONE;
pub use crate::netlink::{Message, messages};

/// Why a netlink exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The kernel refused message `seq` (of a batch; a query's own for a GET) with `errno`.
    #[error("refused with {errno}")]
    Refused {
        /// The sequence number of the refused message.
        seq: u32,
        /// Why.
        errno: Errno,
    },
    /// The socket failed, or no reply came in time.
    #[error("netlink socket failed")]
    Socket(#[source] io::Error),
}

impl From<Errno> for NetlinkError {
    fn from(e: Errno) -> Self {
        NetlinkError::Socket(e.into())
    }
}

/// A netfilter netlink socket.
pub struct Netlink {
    socket: mnl::Socket,
    buf: Vec<u8>,
    /// The send and receive buffer sizes last asked for (the kernel doubles them).
    buffers: (usize, usize),
}

/// Receive and send buffers: large enough for the ACKs of a few hundred messages (the default
/// 208 KiB overflows with ENOBUFS at about 300) and for a batch of a few thousand elements.
/// A larger batch gets larger buffers ([`Netlink::fit`]).
const SOCKET_BUFFER: usize = 4 << 20;

/// Room in the receive buffer for the ACK of one message: the kernel counts the whole socket
/// buffer of each against it, not its 36 bytes; 2 KiB is a generous bound.
const ACK_ROOM: usize = 2 << 10;

impl Netlink {
    /// Opens and binds the socket.
    ///
    /// # Errors
    ///
    /// When the socket cannot be opened.
    pub fn open() -> io::Result<Self> {
        let socket = mnl::Socket::new(mnl::Bus::Netfilter)?;
        {
            let fd = sys::socket_fd(&socket);
            // libmnl opens it without SOCK_CLOEXEC.
            crate::process::close_on_exec(fd)?;
            // The FORCE variants need CAP_NET_ADMIN, which the daemon has anyway; without it the
            // defaults stay and very large batches may fail with ENOBUFS (reported, not hidden).
            let _ = setsockopt(&fd, sockopt::RcvBufForce, &SOCKET_BUFFER);
            let _ = setsockopt(&fd, sockopt::SndBufForce, &SOCKET_BUFFER);
        }
        Ok(Netlink {
            socket,
            buf: vec![0; 1 << 16],
            buffers: (SOCKET_BUFFER, SOCKET_BUFFER),
        })
    }

    /// Grows the send buffer to hold a batch of `bytes` in one send (a transaction cannot be
    /// split over several: the kernel refuses every part), and the receive buffer to hold the
    /// ACKs of its `messages`. The sizes never shrink: the kernel counts what is queued against
    /// them, it does not reserve them. Forcing them needs CAP_NET_ADMIN, which nf_tables needs
    /// anyway. Measured (debug build, busy 2-core machine): 200,000 never-block entries make
    /// one batch of 12.8 MB in 528 messages, which the kernel took whole, the daemon ready
    /// 1.4 to 7 s after its start; 700,000 (a 14.6 MB file, near the limit), ready in 5 s.
    fn fit(&mut self, bytes: usize, messages: usize) {
        let fd = sys::socket_fd(&self.socket);
        let (send, receive) = self.buffers;
        if bytes > send {
            let _ = setsockopt(&fd, sockopt::SndBufForce, &bytes);
        }
        let acks = messages.saturating_mul(ACK_ROOM);
        if acks > receive {
            let _ = setsockopt(&fd, sockopt::RcvBufForce, &acks);
        }
        self.buffers = (send.max(bytes), receive.max(acks));
    }

    fn fd(&self) -> BorrowedFd<'_> {
        sys::socket_fd(&self.socket)
    }

    /// Discards anything queued (late ACKs of an earlier exchange).
    fn drain(&mut self) {
        let fd = sys::socket_fd(&self.socket);
        while recv(fd_raw(&fd), &mut self.buf, MsgFlags::MSG_DONTWAIT).is_ok_and(|n| n > 0) {}
    }

    /// Sends one batch and checks every reply: `Ok` when no message was refused.
    ///
    /// # Errors
    ///
    /// [`NetlinkError::Refused`] with the first refused message; [`NetlinkError::Socket`] when
    /// the socket failed (ENOBUFS included: the batch may then have been applied without its
    /// ACKs).
    pub fn execute(&mut self, batch: &nftnl::FinalizedBatch) -> Result<(), NetlinkError> {
        let bytes: Vec<u8> = batch.iter().flatten().copied().collect();
        self.fit(bytes.len(), batch.sequence_numbers().len());
        self.drain();
        crate::daemon::stages::mark("send");
        let sent = self.socket.send(&bytes).map_err(NetlinkError::Socket)?;
        crate::daemon::stages::mark("sent");
        if sent < bytes.len() {
            return Err(NetlinkError::Socket(io::Error::other(
                "the batch was sent in part",
            )));
        }
        let mut first_refusal = None;
        loop {
            let fd = sys::socket_fd(&self.socket);
            match recv(fd_raw(&fd), &mut self.buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) | Err(Errno::EAGAIN) => break,
                Ok(n) => {
                    for m in messages(&self.buf[..n]) {
                        if let Some(errno) = m.error().filter(|&e| e != 0) {
                            first_refusal.get_or_insert(NetlinkError::Refused {
                                seq: m.seq,
                                errno: Errno::from_raw(errno),
                            });
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        crate::daemon::stages::acknowledged();
        first_refusal.map_or(Ok(()), Err)
    }

    /// Sends a GET request and hands each reply message to `each`, until the dump ends (or,
    /// for a single GET, its ACK).
    ///
    /// # Errors
    ///
    /// [`NetlinkError::Refused`] when the kernel refused the request (ENOENT: no such
    /// object); [`NetlinkError::Socket`] when the socket failed or no reply came within 5 s.
    pub fn query(
        &mut self,
        request: &[u8],
        mut each: impl FnMut(&Message<'_>),
    ) -> Result<(), NetlinkError> {
        self.drain();
        crate::daemon::stages::mark("query");
        self.socket.send(request).map_err(NetlinkError::Socket)?;
        loop {
            let fd = sys::socket_fd(&self.socket);
            let n = match recv(fd_raw(&fd), &mut self.buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => n,
                Err(Errno::EAGAIN) => {
                    let mut fds = [PollFd::new(self.fd(), PollFlags::POLLIN)];
                    let timeout =
                        PollTimeout::try_from(Duration::from_secs(5)).unwrap_or(PollTimeout::MAX);
                    match poll(&mut fds, timeout) {
                        Ok(0) => {
                            return Err(NetlinkError::Socket(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "no reply from nf_tables within 5s",
                            )));
                        }
                        Ok(_) | Err(Errno::EINTR) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            };
            for m in messages(&self.buf[..n]) {
                match (m.kind, m.error()) {
                    (NLMSG_DONE, _) | (_, Some(0)) => return Ok(()),
                    (_, Some(errno)) => {
                        return Err(NetlinkError::Refused {
                            seq: m.seq,
                            errno: Errno::from_raw(errno),
                        });
                    }
                    _ => each(&m),
                }
            }
        }
    }
}

impl Netlink {
    /// This socket's netlink port, which the kernel puts in the notifications our own requests
    /// cause.
    pub fn portid(&self) -> u32 {
        self.socket.portid()
    }
}

/// `NFNLGRP_NFTABLES`: the multicast group of nf_tables change notifications.
const NFNLGRP_NFTABLES: u32 = 7;
/// `NFNL_SUBSYS_NFTABLES`, the high byte of nf_tables message types.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// The nf_tables deletions that can take our table, chain, rules or sets away.
const DELETIONS: [u16; 4] = [2, 5, 8, 11]; // DELTABLE, DELCHAIN, DELRULE, DELSET

/// Length of `struct nfgenmsg`, which follows the header of every nf_tables message.
const NFGENMSG_LEN: usize = 4;
/// `NFTA_TABLE_NAME`, `NFTA_CHAIN_TABLE`, `NFTA_RULE_TABLE` and `NFTA_SET_TABLE`: in each of the
/// four deletions, attribute 1 names the table.
const ATTR_TABLE: u16 = 1;
/// The type bits of `nla_type` (the top two are flags).
const NLA_TYPE_MASK: u16 = 0x3fff;

/// The table a deletion is about, as `(family, name)`: the nfgenmsg family and the message's
/// table attribute. None for other messages, or a malformed one.
pub fn deleted_from<'a>(m: &Message<'a>) -> Option<(u8, &'a str)> {
    if m.kind >> 8 != NFNL_SUBSYS_NFTABLES || !DELETIONS.contains(&(m.kind & 0xff)) {
        return None;
    }
    let family = *m.body().first()?;
    let (_, value) = crate::netlink::attributes(m.body().get(NFGENMSG_LEN..)?)
        .find(|(kind, _)| kind & NLA_TYPE_MASK == ATTR_TABLE)?;
    let name = value.split(|&b| b == 0).next()?;
    Some((family, std::str::from_utf8(name).ok()?))
}

/// `NFT_MSG_DELSETELEM`: elements deleted from a set.
const DELSETELEM: u16 = 14;
/// `NFTA_SET_ELEM_LIST_TABLE` and `NFTA_SET_ELEM_LIST_SET`.
const ATTR_ELEM_TABLE: u16 = 1;
const ATTR_ELEM_SET: u16 = 2;

/// The set an element deletion is about, as `(family, table, set)`. None for other messages,
/// or a malformed one.
pub fn elements_deleted_from<'a>(m: &Message<'a>) -> Option<(u8, &'a str, &'a str)> {
    if m.kind != (NFNL_SUBSYS_NFTABLES << 8) | DELSETELEM {
        return None;
    }
    let family = *m.body().first()?;
    let text = |kind: u16| {
        let (_, value) = crate::netlink::attributes(m.body().get(NFGENMSG_LEN..)?)
            .find(|(k, _)| k & NLA_TYPE_MASK == kind)?;
        std::str::from_utf8(value.split(|&b| b == 0).next()?).ok()
    };
    Some((family, text(ATTR_ELEM_TABLE)?, text(ATTR_ELEM_SET)?))
}

/// What the watcher saw in one read of notifications.
pub enum Seen<'a> {
    /// Someone else deleted our table, a chain, a rule or a set of it (or notifications were
    /// lost, so one may have been missed).
    Lost,
    /// Someone else deleted elements from sets of our table: these messages (each names its
    /// set).
    Elements(&'a [Message<'a>]),
    /// Notifications were lost (the socket overflowed): anything may have changed.
    Missed,
}

/// The watcher's receive buffer: the kernel counts each notification's whole buffer (about
/// 1 KiB for one element's deletion), so this holds tens of thousands.
const WATCH_BUFFER: usize = 32 << 20;

/// Whether a notification reports that someone else than port `own` deleted something of
/// table `table` of `family` (an `NFPROTO_*`): the table itself, a chain, a rule or a set.
/// Deletions in other tables are none of our business.
pub fn is_foreign_deletion(m: &Message<'_>, own: u32, family: u32, table: &str) -> bool {
    m.pid != own && deleted_from(m).is_some_and(|(f, t)| u32::from(f) == family && t == table)
}

/// Listens to nf_tables notifications on a thread of its own and calls `seen` whenever
/// someone else than port `own` deletes elements from a set of table `table` of `family`:
/// [`Seen::Elements`]; then, when the same read has it, deletes the table or a chain, rule or
/// set of it: [`Seen::Lost`]; or notifications were lost: [`Seen::Missed`]. (An element that
/// times out is deleted without a notification; a table or set deleted whole sends none per
/// element: both measured on Linux 6.18.) Once `retired` is set, the thread reports nothing
/// more and ends at the next notification.
///
/// # Errors
///
/// When the socket cannot be opened or joined to the group.
pub fn watch(
    own: u32,
    family: u32,
    table: String,
    retired: Arc<AtomicBool>,
    mut seen: Box<dyn FnMut(Seen<'_>) + Send>,
) -> io::Result<()> {
    // The socket is made on the thread that uses it (libmnl's handle is not Send); whether it
    // could be bound comes back over a channel.
    let (ready, started) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("nft-watch".into())
        .spawn(move || {
            let socket = match mnl::Socket::open(mnl::Bus::Netfilter)
                .and_then(|s| crate::process::close_on_exec(sys::socket_fd(&s)).map(|()| s))
                .and_then(|s| s.bind(1 << (NFNLGRP_NFTABLES - 1), 0).map(|()| s))
            {
                Ok(socket) => {
                    // Room for the notifications of a large `nft flush set` (one each element)
                    // while this thread catches up; past it, they are missed (ENOBUFS).
                    let _ = setsockopt(
                        &sys::socket_fd(&socket),
                        sockopt::RcvBufForce,
                        &WATCH_BUFFER,
                    );
                    let _ = ready.send(Ok(()));
                    socket
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let fd = sys::socket_fd(&socket);
                let received = recv(fd_raw(&fd), &mut buf, MsgFlags::empty());
                if retired.load(Ordering::Relaxed) {
                    return;
                }
                match received {
                    Ok(n) => {
                        let read = &buf[..n];
                        // Elements first: deleted in the same read as a rule (one `nft -f`),
                        // they are unblocks all the same, judged before the restore.
                        let elements: Vec<Message<'_>> = messages(read)
                            .filter(|m| {
                                m.pid != own
                                    && elements_deleted_from(m).is_some_and(|(f, t, _)| {
                                        u32::from(f) == family && t == table
                                    })
                            })
                            .collect();
                        if !elements.is_empty() {
                            seen(Seen::Elements(&elements));
                        }
                        if messages(read).any(|m| is_foreign_deletion(&m, own, family, &table)) {
                            seen(Seen::Lost);
                        }
                    }
                    Err(Errno::ENOBUFS) => seen(Seen::Missed),
                    Err(Errno::EINTR) => {}
                    Err(_) => return,
                }
            }
        })?;
    started
        .recv()
        .unwrap_or_else(|_| Err(io::Error::other("the watcher thread ended")))
}

fn fd_raw(fd: &BorrowedFd<'_>) -> std::os::fd::RawFd {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deletion notification as the kernel sends it: header, nfgenmsg, the table attribute
    /// (padded), and another attribute after it.
    fn deletion(kind: u16, family: u8, table: &str, pid: u32) -> Vec<u8> {
        let nul = |s: &str| [s.as_bytes(), &[0]].concat();
        let mut m = crate::netlink::Request::new((NFNL_SUBSYS_NFTABLES << 8) | kind, 0, 0)
            .fixed(&[family, 0, 0, 0])
            .attr(ATTR_TABLE, &nul(table))
            .attr(2, &nul("input"))
            .finish();
        m[12..16].copy_from_slice(&pid.to_ne_bytes());
        m
    }

    /// Issue 13, 6: any deletion in any table made the daemon rebuild its own.
    #[test]
    fn issue_13_only_deletions_in_our_own_table_by_others_count() {
        let inet = 1;
        let ours = |kind, family, table: &str, pid| {
            let m = deletion(kind, family, table, pid);
            let msg = messages(&m).next().unwrap();
            is_foreign_deletion(&msg, 77, inet, "scansentry")
        };
        for kind in DELETIONS {
            assert!(ours(kind, 1, "scansentry", 5), "{kind}");
            assert!(!ours(kind, 1, "filter", 5), "another table");
            assert!(!ours(kind, 2, "scansentry", 5), "a table of another family");
            assert!(!ours(kind, 1, "scansentry", 77), "our own doing");
        }
        // New objects, and element changes, are not deletions of what we keep.
        assert!(!ours(0, 1, "scansentry", 5));
        assert!(!ours(14, 1, "scansentry", 5));
        // Malformed: attributes cut short.
        let mut m = deletion(2, 1, "scansentry", 5);
        m[20] = 200;
        let msg = messages(&m).next().unwrap();
        assert_eq!(deleted_from(&msg), None);
    }

    /// Issue 26, 8: an element deletion names its table and set (attributes 1 and 2, as in
    /// the table-level deletions); other messages name none.
    #[test]
    fn issue_26_an_element_deletion_names_its_table_and_set() {
        let m = deletion(DELSETELEM, 1, "scansentry", 5);
        let msg = messages(&m).next().unwrap();
        assert_eq!(
            elements_deleted_from(&msg),
            Some((1, "scansentry", "input"))
        );
        for kind in DELETIONS.into_iter().chain([12, 13]) {
            let m = deletion(kind, 1, "scansentry", 5);
            let msg = messages(&m).next().unwrap();
            assert_eq!(elements_deleted_from(&msg), None, "{kind}");
        }
    }
}
