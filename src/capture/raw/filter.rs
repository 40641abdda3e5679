//! The kernel filter of the raw method: the pcap method's filter text ([`crate::capture::bpf`]),
//! compiled by libpcap on a dead handle for raw IP, since the raw method's cooked (`SOCK_DGRAM`)
//! packet socket hands the filter each packet from its IP header, whatever the link (loopback
//! included). No I/O: libpcap's compiler runs in memory.
//!
//! One filter, two attachments: libpcap attaches it for `method = "pcap"`, the raw method's
//! socket (`SO_ATTACH_FILTER`) for `method = "raw"`. What it keeps is written once, in
//! [`crate::capture::bpf::PROBES`].

use crate::capture::bpf;

/// `BPF_MAXINSNS` (linux/bpf_common.h): the most instructions the kernel takes in a classic
/// program.
pub const MAX_INSNS: usize = 4096;

/// `DLT_RAW` on Linux: packets that start at the IP header (IPv4 or IPv6, told by the version
/// nibble). libpcap's compiler takes a DLT, not the file format's `LINKTYPE_RAW` (101).
const DLT_RAW: pcap::Linktype = pcap::Linktype(12);

/// One instruction, as `struct sock_filter` lays it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Operation.
    pub code: u16,
    /// Jump offset when true.
    pub jt: u8,
    /// Jump offset when false.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

/// A classic BPF program the kernel can take: built only from libpcap's compiled code, never
/// empty, never longer than [`MAX_INSNS`] (so its length fits `sock_fprog`'s `u16`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program(Vec<Insn>);

/// Why the raw method's filter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// libpcap did not compile the filter text.
    #[error("the capture filter does not compile for raw IP: {0}")]
    Compile(#[source] pcap::Error),
    /// libpcap compiled nothing.
    #[error("the compiled capture filter is empty")]
    Empty,
    /// More instructions than the kernel takes.
    #[error("the compiled capture filter has {0} instructions, over the kernel's {MAX_INSNS}")]
    TooLong(usize),
    /// An instruction libpcap printed in a form not understood.
    #[error("the compiled capture filter has an instruction not understood: {0:?}")]
    Garbled(String),
}

impl Program {
    /// Compiles `text` (pcap filter syntax) for packets that start at the IP header.
    ///
    /// # Errors
    ///
    /// When libpcap refuses the text, or its program is empty or too long for the kernel.
    pub fn compile(text: &str) -> Result<Self, FilterError> {
        let dead = pcap::Capture::dead(DLT_RAW).map_err(FilterError::Compile)?;
        let compiled = dead.compile(text, true).map_err(FilterError::Compile)?;
        Self::from_compiled(&compiled)
    }

    /// Takes libpcap's compiled program, refusing one the kernel cannot take by its length.
    ///
    /// # Errors
    ///
    /// [`FilterError::Empty`], [`FilterError::TooLong`], or [`FilterError::Garbled`] when an
    /// instruction does not read back as four numbers.
    pub fn from_compiled(compiled: &pcap::BpfProgram) -> Result<Self, FilterError> {
        let instructions = compiled.get_instructions();
        if instructions.is_empty() {
            return Err(FilterError::Empty);
        }
        if instructions.len() > MAX_INSNS {
            return Err(FilterError::TooLong(instructions.len()));
        }
        // The pcap crate shows an instruction's fields only through Display: "code jt jf k".
        let insns = instructions
            .iter()
            .map(|i| parse(&i.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Program(insns))
    }

    /// The instructions: between 1 and [`MAX_INSNS`].
    pub fn instructions(&self) -> &[Insn] {
        &self.0
    }
}

/// Reads one instruction as the pcap crate prints it.
fn parse(text: &str) -> Result<Insn, FilterError> {
    let garbled = || FilterError::Garbled(text.to_string());
    let mut fields = text.split(' ');
    let mut next = || fields.next().ok_or_else(garbled);
    let insn = Insn {
        code: next()?.parse().map_err(|_| garbled())?,
        jt: next()?.parse().map_err(|_| garbled())?,
        jf: next()?.parse().map_err(|_| garbled())?,
        k: next()?.parse().map_err(|_| garbled())?,
    };
    match fields.next() {
        None => Ok(insn),
        Some(_) => Err(garbled()),
    }
}

/// The raw method's program: the probe filter, compiled for raw IP. Loopback is told apart in
/// userspace (by the socket address's hardware type), as the cooked socket has no link header
/// for the pcap filter's `link[2:2]` test.
///
/// # Errors
///
/// As [`Program::compile`]; the tests show the probe filter compiles.
pub fn program() -> Result<Program, FilterError> {
    Program::compile(bpf::PROBES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::bpf::{Interfaces, filter, frames};

    fn ip(s: &str) -> std::net::IpAddr {
        s.parse().unwrap()
    }

    fn compiled(linktype: pcap::Linktype, text: &str) -> pcap::BpfProgram {
        let dead = pcap::Capture::dead(linktype).unwrap();
        dead.compile(text, true).expect("the filter compiles")
    }

    /// Every TCP flag set over IPv4 and IPv6, UDP, ICMP, ICMPv6, a later fragment and an IPv6
    /// extension header: the raw program keeps from the IP header exactly what the pcap
    /// method's filter keeps from the Ethernet frame.
    #[test]
    fn the_raw_program_keeps_exactly_what_the_pcap_filter_keeps() {
        let ethernet = compiled(pcap::Linktype::ETHERNET, &filter(&Interfaces::All));
        let raw = compiled(DLT_RAW, bpf::PROBES);
        let mut frames_tried: Vec<(String, Vec<u8>)> = Vec::new();
        for flags in 0..64u16 {
            let f4 = frames::tcp_frame(ip("203.0.113.7"), ip("198.51.100.1"), 40000, 22, flags);
            let f6 = frames::tcp_frame(ip("2001:db8::7"), ip("2001:db8::1"), 40000, 22, flags);
            frames_tried.push((format!("tcp4 flags {flags:#04x}"), f4));
            frames_tried.push((format!("tcp6 flags {flags:#04x}"), f6));
        }
        frames_tried.push((
            "udp4".into(),
            frames::udp_frame(ip("203.0.113.7"), ip("198.51.100.1"), 5000, 161),
        ));
        frames_tried.push((
            "udp6".into(),
            frames::udp_frame(ip("2001:db8::7"), ip("2001:db8::1"), 5000, 161),
        ));
        let mut icmp = frames::udp_frame(ip("203.0.113.7"), ip("198.51.100.1"), 5000, 161);
        icmp[14 + 9] = 1;
        frames_tried.push(("icmp".into(), icmp));
        let mut icmp6 = frames::udp_frame(ip("2001:db8::7"), ip("2001:db8::1"), 5000, 161);
        icmp6[14 + 6] = 58;
        frames_tried.push(("icmpv6".into(), icmp6));
        let mut fragment = frames::tcp_frame(ip("203.0.113.7"), ip("198.51.100.1"), 1, 22, 0x10);
        fragment[14 + 7] = 0x10;
        frames_tried.push(("a later IPv4 fragment".into(), fragment));
        let mut hop_by_hop = frames::tcp_frame(ip("2001:db8::7"), ip("2001:db8::1"), 1, 22, 0x10);
        hop_by_hop[14 + 6] = 0;
        frames_tried.push(("IPv6 hop-by-hop".into(), hop_by_hop));

        let mut kept = 0;
        for (name, frame) in &frames_tried {
            let ours = raw.filter(&frame[14..]);
            assert_eq!(ours, ethernet.filter(frame), "{name}");
            kept += usize::from(ours);
        }
        // Dropped: ACK without SYN or FIN (8 flag sets per family, the other bits free), ICMP
        // and ICMPv6. The later fragment is kept, for the reassembler (issue 28).
        assert_eq!(frames_tried.len() - kept, 8 + 8 + 2);
        assert!(raw.filter(&frames_tried[frames_tried.len() - 2].1[14..]));
        // Short and strange packets are dropped, not read past.
        let full = frames::tcp_frame(ip("203.0.113.7"), ip("198.51.100.1"), 1, 22, 0x02);
        assert!(!raw.filter(&[]));
        assert!(!raw.filter(&[0x15]), "IP version 1");
        assert!(!raw.filter(&full[14..14 + 20 + 10]), "cut before the flags");
    }

    /// The program handed to the kernel is libpcap's, instruction for instruction.
    #[test]
    fn the_program_is_libpcaps_compiled_code() {
        let ours = program().expect("the probe filter compiles for raw IP");
        let theirs = compiled(DLT_RAW, bpf::PROBES);
        let theirs: Vec<String> = theirs
            .get_instructions()
            .iter()
            .map(ToString::to_string)
            .collect();
        let ours: Vec<String> = ours
            .instructions()
            .iter()
            .map(|i| format!("{} {} {} {}", i.code, i.jt, i.jf, i.k))
            .collect();
        assert_eq!(ours, theirs);
        // It ends in a return (BPF_RET), as the kernel's checker demands.
        assert_eq!(ours.last().map(|l| l.split(' ').next()), Some(Some("6")));
    }

    #[test]
    fn a_program_over_the_kernels_limit_is_refused() {
        // Unoptimised, each `port` costs some 60 instructions: 100 of them pass 4,096.
        let text = (1..=100)
            .map(|p| format!("port {p}"))
            .collect::<Vec<_>>()
            .join(" or ");
        let dead = pcap::Capture::dead(DLT_RAW).unwrap();
        let long = dead.compile(&text, false).expect("it compiles");
        assert!(long.get_instructions().len() > MAX_INSNS);
        assert!(matches!(
            Program::from_compiled(&long),
            Err(FilterError::TooLong(n)) if n == long.get_instructions().len()
        ));
        let short = dead.compile("port 1", false).unwrap();
        assert!(Program::from_compiled(&short).is_ok());
    }

    #[test]
    fn text_that_is_not_a_filter_is_refused() {
        assert!(matches!(
            Program::compile("tcp and and"),
            Err(FilterError::Compile(_))
        ));
        assert!(matches!(parse("6 0 0"), Err(FilterError::Garbled(_))));
        assert!(matches!(parse("6 0 0 0 1"), Err(FilterError::Garbled(_))));
        assert!(matches!(parse("6 0 x 0"), Err(FilterError::Garbled(_))));
        assert_eq!(
            parse("6 0 0 65535").unwrap(),
            Insn {
                code: 6,
                jt: 0,
                jf: 0,
                k: 65535
            }
        );
    }
}
