//! Attaching a classic BPF program to a socket, and reading its drop counter: the socket
//! options that take a pointer, which neither std nor nix wraps. The crate's other `unsafe` is
//! in `firewall/nft/sys.rs` (libnftnl) and `process.rs` (fork and exec).
#![allow(
    unsafe_code,
    reason = "SO_ATTACH_FILTER takes a struct sock_fprog that points at the program; \
              PACKET_STATISTICS fills a struct tpacket_stats"
)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use nftnl_sys::libc;

use super::filter::Program;

/// Attaches `program` to `fd` (`SO_ATTACH_FILTER`); the kernel copies it.
///
/// # Errors
///
/// What the kernel said (EINVAL for a program it does not accept).
pub fn attach(fd: BorrowedFd<'_>, program: &Program) -> io::Result<()> {
    let filters: Vec<libc::sock_filter> = program
        .instructions()
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    // A `Program` holds 1 to `MAX_INSNS` (4,096) instructions: the length fits, and is the
    // length of `filters`.
    let len = u16::try_from(filters.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a BPF program too long"))?;
    let fprog = libc::sock_fprog {
        len,
        filter: filters.as_ptr().cast_mut(),
    };
    let size =
        libc::socklen_t::try_from(std::mem::size_of::<libc::sock_fprog>()).expect("a small struct");
    // SAFETY: `fd` is an open socket borrowed for the call; `fprog` points at `filters`, whose
    // `len` instructions (non-empty and at most BPF_MAXINSNS, as `Program`'s constructor
    // refuses any other) live until after the call returns; the kernel only reads them (it
    // copies the program), and `size` is the size of the struct passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            std::ptr::from_ref(&fprog).cast(),
            size,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The frames the kernel dropped on packet socket `fd` for want of room in its buffer since
/// the last call (`PACKET_STATISTICS`, which the kernel resets as it answers).
///
/// # Errors
///
/// What the kernel said.
pub fn dropped(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let mut stats = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut size = libc::socklen_t::try_from(std::mem::size_of::<libc::tpacket_stats>())
        .expect("a small struct");
    // SAFETY: `fd` is an open socket borrowed for the call; `stats` is a `tpacket_stats` that
    // lives through the call and `size` is its size, so the kernel writes at most that many
    // bytes into it (and says in `size` how many it wrote).
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            std::ptr::from_mut(&mut stats).cast(),
            &raw mut size,
        )
    };
    if rc == 0 {
        Ok(stats.tp_drops)
    } else {
        Err(io::Error::last_os_error())
    }
}
