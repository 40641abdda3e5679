//! `method = "raw"`: an `AF_PACKET` socket read without libpcap's capture loop: no ring, frames
//! stamped on arrival. The socket is cooked (`SOCK_DGRAM`: packets start at the IP header,
//! whatever the link), sees both directions on every interface, and carries the pcap method's
//! own filter, compiled by libpcap for raw IP ([`filter`]). Interfaces are chosen by their index
//! in userspace. **Shell.**

pub mod filter;
mod sys;

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::bpf::Interfaces;
use super::{Frame, LiveError};
use crate::time::{Clock, SystemClock};
use crate::wire::{Direction, LinkType};

/// `ARPHRD_LOOPBACK`.
const ARPHRD_LOOPBACK: u16 = 772;
/// The socket's receive buffer: as libpcap's, against drops under floods.
const RCVBUF: usize = 8 << 20;

/// A cooked packet socket with the probe filter attached.
#[derive(Debug)]
pub struct RawCapture {
    fd: OwnedFd,
    buf: Vec<u8>,
    skip_loopback: bool,
    only: Option<HashSet<usize>>,
    device: String,
    /// Frames the socket dropped so far (the kernel's counter resets as it is read).
    dropped: u32,
}

impl RawCapture {
    /// Opens the socket for `interfaces`.
    ///
    /// # Errors
    ///
    /// When the socket cannot be opened (commonly: no CAP_NET_RAW), the filter attached, or
    /// a named interface found.
    pub fn open(interfaces: &Interfaces) -> Result<Self, LiveError> {
        use nix::sys::socket::{
            AddressFamily, SockFlag, SockProtocol, SockType, setsockopt, socket, sockopt,
        };
        let device = match interfaces {
            Interfaces::AllButLoopback => "raw:all-but-loopback".to_string(),
            Interfaces::All => "raw:all".to_string(),
            Interfaces::Named(names) => format!("raw:{}", names.join(",")),
        };
        let err = |source: io::Error| LiveError::Raw {
            device: device.clone(),
            source,
        };
        let fd = socket(
            AddressFamily::Packet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::EthAll,
        )
        .map_err(|e| err(e.into()))?;
        let program = filter::program().map_err(|e| err(io::Error::other(e)))?;
        sys::attach(fd.as_fd(), &program).map_err(err)?;
        // Best effort: the default buffer is small, but works.
        let _ = setsockopt(&fd, sockopt::RcvBuf, &RCVBUF);
        let only = match interfaces {
            Interfaces::Named(names) => Some(
                names
                    .iter()
                    .map(|n| {
                        nix::net::if_::if_nametoindex(n.as_str())
                            .map(|i| i as usize)
                            .map_err(|e| {
                                err(io::Error::new(
                                    io::ErrorKind::NotFound,
                                    format!("no interface {n}: {e}"),
                                ))
                            })
                    })
                    .collect::<Result<HashSet<usize>, _>>()?,
            ),
            _ => None,
        };
        let mut capture = RawCapture {
            fd,
            buf: vec![0u8; 1 << 16],
            skip_loopback: *interfaces == Interfaces::AllButLoopback,
            only,
            device,
            dropped: 0,
        };
        // Packets queued between the socket's creation and the filter's attachment were not
        // filtered: drop them.
        while let Ok(n) = nix::sys::socket::recv(
            capture.fd.as_raw_fd(),
            &mut capture.buf,
            nix::sys::socket::MsgFlags::empty(),
        ) {
            if n == 0 {
                break;
            }
        }
        // Nor are the drops of those unfiltered packets the filter's: the counter starts now.
        let _ = sys::dropped(capture.fd.as_fd());
        Ok(capture)
    }

    /// What is captured, for the log.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Every packet starts at its IP header.
    pub fn link(&self) -> LinkType {
        LinkType::RawIp
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The next packet, or `None` when none is waiting (the socket never blocks). Packets of
    /// interfaces not watched are skipped.
    ///
    /// # Errors
    ///
    /// When reading fails.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, LiveError> {
        use nix::sys::socket::{LinkAddr, recvfrom};
        loop {
            let (n, from) = match recvfrom::<LinkAddr>(self.fd.as_raw_fd(), &mut self.buf) {
                Ok(got) => got,
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return Ok(None),
                Err(e) => {
                    return Err(LiveError::Raw {
                        device: self.device.clone(),
                        source: e.into(),
                    });
                }
            };
            let wanted = from.is_none_or(|link| {
                carries_ip(link.protocol(), self.buf.first().copied())
                    && !(self.skip_loopback && link.hatype() == ARPHRD_LOOPBACK)
                    && self
                        .only
                        .as_ref()
                        .is_none_or(|only| only.contains(&link.ifindex()))
            });
            if wanted {
                return Ok(Some(Frame {
                    at: SystemClock.now(),
                    data: &self.buf[..n],
                    direction: from.map_or(Direction::Unknown, |link| {
                        Direction::from_pkttype(u16::from(link.pkttype()))
                    }),
                    ifindex: from.and_then(|link| u32::try_from(link.ifindex()).ok()),
                    loopback: from.is_some_and(|link| link.hatype() == ARPHRD_LOOPBACK),
                    // A read that filled the buffer may have been cut.
                    whole: n < self.buf.len(),
                }));
            }
        }
    }

    /// Frames the socket dropped for want of room in its buffer, since it was opened, as
    /// libpcap counts them (wrapping at 2³²); the interface's own drops are not known here.
    pub fn drops(&mut self) -> (u32, u32) {
        // A counter that cannot be read adds nothing; the next read says the drops since.
        if let Ok(more) = sys::dropped(self.fd.as_fd()) {
            self.dropped = self.dropped.wrapping_add(more);
        }
        (self.dropped, 0)
    }
}

/// Whether a frame's link-layer protocol (`sll_protocol`, in network byte order) is IPv4 or
/// IPv6, and its packet's first byte (`first`) is of that IP version: the filter tells the
/// versions apart by the nibble alone, so a frame of another protocol whose first byte looks
/// like one is refused here, and so is an IPv4 packet in an IPv6 frame, or the reverse, which
/// the kernel drops.
fn carries_ip(protocol: u16, first: Option<u8>) -> bool {
    const ETH_P_IP: u16 = 0x0800;
    const ETH_P_IPV6: u16 = 0x86DD;
    matches!(
        (u16::from_be(protocol), first.map(|b| b >> 4)),
        (ETH_P_IP, Some(4)) | (ETH_P_IPV6, Some(6))
    )
}

#[cfg(test)]
mod tests {
    use super::carries_ip;

    #[test]
    fn only_ipv4_and_ipv6_frames_are_taken() {
        assert!(carries_ip(0x0800u16.to_be(), Some(0x45)));
        assert!(carries_ip(0x86DDu16.to_be(), Some(0x60)));
        // ARP, VLAN-tagged, 802.2 frames: the filter reads their first nibble as a version.
        for other in [0x0806u16, 0x8100, 0x0004, 0x88CC] {
            assert!(!carries_ip(other.to_be(), Some(0x45)), "{other:#06x}");
        }
        // Red team of issue 25: the version must be the one the frame's protocol names.
        assert!(
            !carries_ip(0x0800u16.to_be(), Some(0x60)),
            "IPv6 in an IPv4 frame"
        );
        assert!(
            !carries_ip(0x86DDu16.to_be(), Some(0x45)),
            "IPv4 in an IPv6 frame"
        );
        assert!(!carries_ip(0x0800u16.to_be(), None), "an empty frame");
    }
}
