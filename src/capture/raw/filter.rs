//! The kernel filter of the raw method, as classic BPF: the same choice as the pcap filter text
//! of [`crate::capture::bpf`], written out for a cooked (`SOCK_DGRAM`) packet socket, whose
//! packets start at the IP header. **Pure**, with an interpreter of the instructions it uses,
//! so that tests run the very program the kernel gets.
//!
//! Kept: UDP; TCP segments without ACK, or with SYN or FIN; IPv6 packets whose next header is
//! neither TCP, UDP nor ICMPv6 (extension headers, walked in userspace). Dropped: everything
//! else, IPv4 fragments after the first included (the pipeline skips fragments).

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

// The opcodes used (linux/bpf_common.h, linux/filter.h).
const LD_B_ABS: u16 = 0x30;
const LD_H_ABS: u16 = 0x28;
const LD_B_IND: u16 = 0x50;
const LDX_B_MSH: u16 = 0xb1;
const ALU_RSH_K: u16 = 0x74;
const JEQ_K: u16 = 0x15;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

/// How many bytes of a kept packet are handed over.
pub const SNAP: u32 = 262_144;

const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

/// The program. Jump offsets count instructions after the jump; the comments name the
/// targets: keep is 21, drop is 22.
pub fn program() -> Vec<Insn> {
    vec![
        insn(LD_B_ABS, 0, 0, 0),        // 0: version and IHL
        insn(ALU_RSH_K, 0, 0, 4),       // 1
        insn(JEQ_K, 0, 9, 4),           // 2: IPv4, else 12
        insn(LD_B_ABS, 0, 0, 9),        // 3: protocol
        insn(JEQ_K, 16, 0, 17),         // 4: UDP: keep
        insn(JEQ_K, 0, 16, 6),          // 5: TCP, else drop
        insn(LD_H_ABS, 0, 0, 6),        // 6: flags and fragment offset
        insn(JSET_K, 14, 0, 0x1fff),    // 7: a later fragment: drop
        insn(LDX_B_MSH, 0, 0, 0),       // 8: X = IPv4 header length
        insn(LD_B_IND, 0, 0, 13),       // 9: TCP flags
        insn(JSET_K, 0, 10, 0x10),      // 10: ACK, else keep
        insn(JSET_K, 9, 10, 0x03),      // 11: with SYN or FIN keep, else drop
        insn(JEQ_K, 0, 9, 6),           // 12: IPv6, else drop
        insn(LD_B_ABS, 0, 0, 6),        // 13: next header
        insn(JEQ_K, 6, 0, 17),          // 14: UDP: keep
        insn(JEQ_K, 2, 0, 6),           // 15: TCP: 18
        insn(JEQ_K, 5, 0, 58),          // 16: ICMPv6: drop
        insn(JEQ_K, 3, 3, 0xffff_ffff), // 17: any other (extension headers): keep
        insn(LD_B_ABS, 0, 0, 40 + 13),  // 18: TCP flags after the fixed header
        insn(JSET_K, 0, 1, 0x10),       // 19: ACK, else keep
        insn(JSET_K, 0, 1, 0x03),       // 20: with SYN or FIN keep, else drop
        insn(RET_K, 0, 0, SNAP),        // 21: keep
        insn(RET_K, 0, 0, 0),           // 22: drop
    ]
}

/// Runs `program` on `packet` as the kernel would; returns the bytes to keep (0: drop). A load
/// past the end of the packet drops it, as in the kernel.
pub fn run(program: &[Insn], packet: &[u8]) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut pc = 0usize;
    let byte = |at: u64| -> Option<u32> {
        usize::try_from(at)
            .ok()
            .and_then(|i| packet.get(i))
            .map(|&b| u32::from(b))
    };
    while let Some(i) = program.get(pc) {
        pc += 1;
        match i.code {
            LD_B_ABS => match byte(u64::from(i.k)) {
                Some(v) => a = v,
                None => return 0,
            },
            LD_H_ABS => match (byte(u64::from(i.k)), byte(u64::from(i.k) + 1)) {
                (Some(h), Some(l)) => a = (h << 8) | l,
                _ => return 0,
            },
            LD_B_IND => match byte(u64::from(x) + u64::from(i.k)) {
                Some(v) => a = v,
                None => return 0,
            },
            LDX_B_MSH => match byte(u64::from(i.k)) {
                Some(v) => x = (v & 0x0f) * 4,
                None => return 0,
            },
            ALU_RSH_K => a >>= i.k,
            JEQ_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
            JSET_K => pc += usize::from(if a & i.k != 0 { i.jt } else { i.jf }),
            RET_K => return i.k,
            _ => return 0,
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::bpf::{Interfaces, filter, frames};

    fn ip(s: &str) -> std::net::IpAddr {
        s.parse().unwrap()
    }

    fn pcap_keeps(frame: &[u8]) -> bool {
        let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).unwrap();
        let compiled = dead
            .compile(&filter(&Interfaces::All), true)
            .expect("the filter compiles");
        compiled.filter(frame)
    }

    /// Every TCP flag set over IPv4 and IPv6, UDP, ICMP, ICMPv6, a later fragment and an IPv6
    /// extension header: the program keeps exactly what libpcap's compiled filter keeps (the
    /// frames are Ethernet; a cooked socket hands over what follows the Ethernet header).
    #[test]
    fn the_program_keeps_exactly_what_the_pcap_filter_keeps() {
        let program = program();
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
            let ours = run(&program, &frame[14..]) != 0;
            assert_eq!(ours, pcap_keeps(frame), "{name}");
            kept += usize::from(ours);
        }
        // Dropped: ACK without SYN or FIN (8 flag sets per family, the other bits free), ICMP,
        // ICMPv6 and the later fragment.
        assert_eq!(frames_tried.len() - kept, 8 + 8 + 3);
    }

    #[test]
    fn short_and_strange_packets_are_dropped_not_read_past() {
        let program = program();
        assert_eq!(run(&program, &[]), 0);
        assert_eq!(run(&program, &[0x15]), 0, "IP version 1");
        // An IPv4 TCP header cut before its flags: the load fails, the packet is dropped.
        let full = frames::tcp_frame(ip("203.0.113.7"), ip("198.51.100.1"), 1, 22, 0x02);
        assert_eq!(run(&program, &full[14..14 + 20 + 10]), 0);
        assert_eq!(run(&program, &full[14..]), SNAP);
    }
}
