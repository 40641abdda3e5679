use super::*;
use crate::capture::bpf::frames;
use crate::wire::{LinkType, TcpFlags};

const SCANNER: &str = "203.0.113.7";
const LOCAL: &str = "198.51.100.1";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn at(secs: u64) -> Timestamp {
    Timestamp::from_micros(secs * 1_000_000)
}

fn syn(src: &str, dst: &str, port: u16) -> Vec<u8> {
    frames::tcp_frame(ip(src), ip(dst), 40000, port, 0x02)
}

fn insert(r: &mut Reassembler, t: Timestamp, frame: &[u8]) -> Outcome {
    let f = fragment_of(LinkType::Ethernet, frame, Metadata::default()).expect("a fragment");
    r.insert(t, &f)
}

/// Every fragment in order; the outcome of the last.
fn all(r: &mut Reassembler, t: Timestamp, fragments: &[Vec<u8>]) -> Outcome {
    let mut last = Outcome::Dropped;
    for f in fragments {
        last = insert(r, t, f);
    }
    last
}

fn complete(outcome: Outcome) -> (crate::wire::Full, Note) {
    match outcome {
        Outcome::Complete(p, note) => (p, note),
        other => panic!("not whole: {other:?}"),
    }
}

#[test]
fn nmap_f_eight_byte_fragments_make_the_syn_whole_and_tiny() {
    let frags = frames::fragments(&syn(SCANNER, LOCAL, 22), 8, 0x1234);
    assert_eq!(frags.len(), 3, "a 20-byte TCP header in 8-byte fragments");
    // Each alone is a fragment whose TCP header the parser cannot read.
    for f in &frags {
        assert_eq!(
            crate::wire::parse(LinkType::Ethernet, f),
            Err(Skip::Fragment)
        );
    }
    let mut r = Reassembler::new(Limits::default());
    assert_eq!(insert(&mut r, at(0), &frags[0]), Outcome::Pending);
    assert_eq!(insert(&mut r, at(0), &frags[1]), Outcome::Pending);
    let (p, note) = complete(insert(&mut r, at(0), &frags[2]));
    assert_eq!((p.src, p.dst, p.dst_port), (ip(SCANNER), ip(LOCAL), 22));
    assert_eq!(p.tcp_flags, Some(TcpFlags::SYN));
    assert_eq!(p.integrity, Integrity::Valid);
    assert_eq!(p.shape.ip_id, 0x1234);
    assert!(note.tiny && !note.overlap);
    assert_eq!(r.counters().reassembled, 1);
    assert_eq!(r.counters().tiny, 1);
    assert_eq!(r.in_progress(), 0);
}

#[test]
fn sixteen_byte_fragments_are_tiny_too_and_order_does_not_matter() {
    let frags = frames::fragments(&syn(SCANNER, LOCAL, 80), 16, 7);
    assert_eq!(frags.len(), 2);
    let mut r = Reassembler::new(Limits::default());
    assert_eq!(insert(&mut r, at(0), &frags[1]), Outcome::Pending);
    let (p, note) = complete(insert(&mut r, at(0), &frags[0]));
    assert_eq!(p.dst_port, 80);
    assert!(note.tiny);
    // Reversed 8-byte fragments: three runs, then whole.
    let frags = frames::fragments(&syn(SCANNER, LOCAL, 81), 8, 8);
    let reversed: Vec<_> = frags.into_iter().rev().collect();
    let (p, _) = complete(all(&mut r, at(0), &reversed));
    assert_eq!(p.dst_port, 81);
}

#[test]
fn a_big_udp_datagram_is_whole_not_tiny_and_its_checksum_verified() {
    let payload = vec![0x5a; 4096];
    let frame = frames::udp_frame_with(ip(SCANNER), ip(LOCAL), 5000, 53, &payload);
    let frags = frames::fragments(&frame, 1480, 99);
    assert_eq!(frags.len(), 3);
    let mut r = Reassembler::new(Limits::default());
    let (p, note) = complete(all(&mut r, at(0), &frags));
    assert_eq!(p.dst_port, 53);
    assert_eq!(p.tcp_flags, None);
    assert_eq!(p.shape.payload_len, 4096);
    assert_eq!(p.shape.head.as_bytes(), &[0x5a; 32]);
    assert_eq!(p.integrity, Integrity::Valid);
    assert_eq!(note, Note::default());

    // One byte changed in the middle fragment: the sum says so, though the byte is not kept.
    let mut bad = frags.clone();
    let last = bad[1].len() - 1;
    bad[1][last] ^= 0xff;
    let (p, _) = complete(all(&mut r, at(0), &bad));
    assert_eq!(p.integrity, Integrity::Bad);

    // Cut by a snap length of 160: whole by its declared lengths, its sum unverifiable.
    let cut: Vec<Vec<u8>> = frags
        .iter()
        .map(|f| f[..160.min(f.len())].to_vec())
        .collect();
    let (p, _) = complete(all(&mut r, at(0), &cut));
    assert_eq!((p.dst_port, p.shape.payload_len), (53, 4096));
    assert_eq!(p.integrity, Integrity::Unverified);
}

#[test]
fn ipv6_fragments_are_reassembled_and_a_tiny_first_one_is_dropped_as_linux_does() {
    let frame = syn("2001:db8::7", "2001:db8::1", 443);
    let mut r = Reassembler::new(Limits::default());
    // 8-byte fragments: the first cuts the TCP header; RFC 8200 §4.5 has it dropped.
    let frags = frames::fragments(&frame, 8, 0xdead_beef);
    assert_eq!(insert(&mut r, at(0), &frags[0]), Outcome::Dropped);
    assert_eq!(r.counters().tiny, 1);
    assert_eq!(insert(&mut r, at(0), &frags[1]), Outcome::Pending);
    assert_eq!(insert(&mut r, at(0), &frags[2]), Outcome::Pending);
    // Never whole: it times out after 60 s (not 30 as IPv4).
    r.expire(at(59));
    assert_eq!(r.in_progress(), 1);
    r.expire(at(60));
    assert_eq!((r.in_progress(), r.counters().timed_out), (0, 1));

    // A big UDP datagram over IPv6: whole, checksum verified.
    let payload = vec![7u8; 3000];
    let frame = frames::udp_frame_with(ip("2001:db8::7"), ip("2001:db8::1"), 5000, 161, &payload);
    let (p, note) = complete(all(&mut r, at(100), &frames::fragments(&frame, 1232, 1)));
    assert_eq!((p.dst_port, p.shape.payload_len), (161, 3000));
    assert_eq!(p.integrity, Integrity::Valid);
    assert!(!note.tiny);
    // A 16-byte first fragment holds the ports but not the whole header: kept (the kernel
    // asks for the first 20 bytes of TCP)... no: 16 < 20, dropped too; 24 bytes pass.
    let frags = frames::fragments(&frame_with_options(), 24, 2);
    let (p, note) = complete(all(&mut r, at(100), &frags));
    assert_eq!(p.tcp_flags, Some(TcpFlags::SYN));
    assert!(note.tiny, "24 of a 28-byte header");
}

/// An IPv6 SYN with 8 bytes of TCP options (a 28-byte header).
fn frame_with_options() -> Vec<u8> {
    let mut out = Vec::new();
    let mut h = etherparse::TcpHeader::new(40000, 8080, 1, 1024);
    h.syn = true;
    h.set_options(&[
        etherparse::TcpOptionElement::MaximumSegmentSize(1460),
        etherparse::TcpOptionElement::Noop,
        etherparse::TcpOptionElement::Noop,
        etherparse::TcpOptionElement::Noop,
        etherparse::TcpOptionElement::Noop,
    ])
    .unwrap();
    let src: Ipv6Addr = "2001:db8::7".parse().unwrap();
    let dst: Ipv6Addr = "2001:db8::1".parse().unwrap();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv6(src.octets(), dst.octets(), 64)
        .tcp_header(h)
        .write(&mut out, &[])
        .unwrap();
    out
}

#[test]
fn a_duplicate_is_dropped_and_the_datagram_kept() {
    let frags = frames::fragments(&syn(SCANNER, LOCAL, 22), 8, 1);
    let mut r = Reassembler::new(Limits::default());
    assert_eq!(insert(&mut r, at(0), &frags[0]), Outcome::Pending);
    assert_eq!(insert(&mut r, at(0), &frags[1]), Outcome::Pending);
    // An exact copy, and a copy of the first with other bytes: both inside the run held.
    assert_eq!(insert(&mut r, at(0), &frags[0]), Outcome::Dropped);
    let mut liar = frags[0].clone();
    let port_at = liar.len() - 6; // the destination port's bytes of the 8 held
    liar[port_at] ^= 0x10;
    assert_eq!(insert(&mut r, at(0), &liar), Outcome::Dropped);
    assert_eq!(r.counters().duplicates, 2);
    // The first copy wins.
    let (p, _) = complete(insert(&mut r, at(0), &frags[2]));
    assert_eq!(p.dst_port, 22);
    assert_eq!(p.integrity, Integrity::Valid);
}

#[test]
fn overlapping_fragments_discard_the_datagram_and_say_what_its_first_fragment_was() {
    let frags = frames::fragments(&syn(SCANNER, LOCAL, 23), 8, 2);
    // 16 bytes at offset 0: the ports, sequence and acknowledgment numbers.
    let sixteen = frames::fragments(&syn(SCANNER, LOCAL, 23), 16, 2);
    let mut r = Reassembler::new(Limits::default());
    assert_eq!(insert(&mut r, at(0), &sixteen[0]), Outcome::Pending);
    // Bytes 8-15 again, then 8-23 (RFC 3128's overwrite of the flags): inside, then across.
    assert_eq!(insert(&mut r, at(0), &frags[1]), Outcome::Dropped);
    let across = frames::fragments(&syn(SCANNER, LOCAL, 23), 16, 2);
    let mut shifted = across[0].clone();
    // Make it a fragment at offset 8 (one unit), 16 bytes long, MF set.
    shifted[14 + 6..14 + 8].copy_from_slice(&0x2001u16.to_be_bytes());
    fix_v4_checksum(&mut shifted);
    match insert(&mut r, at(0), &shifted) {
        Outcome::Overlap(Some(p)) => {
            assert_eq!((p.src, p.dst_port), (ip(SCANNER), 23));
            assert_eq!(p.integrity, Integrity::Unverified);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.counters().overlapping, 1);
    assert_eq!(r.in_progress(), 0);
    // The rest of the datagram starts a new one, which never completes.
    assert_eq!(insert(&mut r, at(0), &frags[2]), Outcome::Pending);
    // An overlap before the first fragment came says nothing of the probe.
    let mut r = Reassembler::new(Limits::default());
    assert_eq!(insert(&mut r, at(0), &frags[2]), Outcome::Pending);
    let mut wide = sixteen[1].clone(); // 4 bytes at 16, last
    wide[14 + 6..14 + 8].copy_from_slice(&0x0001u16.to_be_bytes()); // at 8, last: 8..12 < 16+
    fix_v4_checksum(&mut wide);
    assert_eq!(
        insert(&mut r, at(0), &wide),
        Outcome::Dropped,
        "ends before bytes seen"
    );
}

fn fix_v4_checksum(frame: &mut [u8]) {
    let h = &mut frame[14..34];
    h[10] = 0;
    h[11] = 0;
    let sum = !Sum::default().add(h).fold();
    h[10..12].copy_from_slice(&sum.to_be_bytes());
}

#[test]
fn ends_that_disagree_or_empty_fragments_discard_the_datagram() {
    let frags = frames::fragments(&syn(SCANNER, LOCAL, 22), 8, 3);
    let mut r = Reassembler::new(Limits::default());
    // The last fragment, then another "last" ending elsewhere.
    assert_eq!(insert(&mut r, at(0), &frags[2]), Outcome::Pending);
    let mut early_end = frags[1].clone();
    early_end[14 + 6] &= !0x20; // no MF: ends at 16, before 20
    fix_v4_checksum(&mut early_end);
    assert_eq!(insert(&mut r, at(0), &early_end), Outcome::Dropped);
    assert_eq!((r.in_progress(), r.counters().malformed), (0, 1));
    // A bad IPv4 header checksum: the kernel drops that fragment before reassembly.
    let mut bad = frags[0].clone();
    bad[14 + 8] ^= 1; // the TTL
    assert_eq!(insert(&mut r, at(0), &bad), Outcome::Dropped);
    assert_eq!(r.in_progress(), 0);
    // IPv6: a non-last fragment whose length is not a multiple of 8 discards the datagram.
    let v6 = frames::fragments(&syn("2001:db8::7", "2001:db8::1", 22), 24, 4);
    let mut odd = v6[0].clone();
    odd.pop();
    let len = u16::from_be_bytes([odd[18], odd[19]]) - 1;
    odd[18..20].copy_from_slice(&len.to_be_bytes());
    assert_eq!(insert(&mut r, at(0), &odd), Outcome::Dropped);
    assert_eq!(r.in_progress(), 0);
}

#[test]
fn ipv4_times_out_after_30_seconds_from_its_first_fragment() {
    let frags = frames::fragments(&syn(SCANNER, LOCAL, 22), 8, 5);
    let mut r = Reassembler::new(Limits::default());
    insert(&mut r, at(0), &frags[0]);
    insert(&mut r, at(29), &frags[1]);
    // Later fragments do not extend its time: at 30 s it is gone, the last starts afresh.
    assert_eq!(insert(&mut r, at(30), &frags[2]), Outcome::Pending);
    assert_eq!(r.counters().timed_out, 1);
    assert_eq!(r.counters().reassembled, 0);
}

#[test]
fn datagrams_in_all_are_bounded_and_the_oldest_gives_way() {
    let limits = Limits {
        datagrams: 4,
        ..Limits::default()
    };
    let mut r = Reassembler::new(limits);
    let firsts: Vec<Vec<u8>> = (0..6u8)
        .map(|i| {
            let src = format!("203.0.{i}.7");
            frames::fragments(&syn(&src, LOCAL, 22), 8, 1)[0].clone()
        })
        .collect();
    for (i, f) in firsts.iter().enumerate() {
        insert(&mut r, at(i as u64), f);
    }
    assert_eq!(r.in_progress(), 4);
    assert_eq!(r.counters().dropped, 2);
    // The newest are the ones kept: the last source's datagram completes.
    let rest = frames::fragments(&syn("203.0.5.7", LOCAL, 22), 8, 1);
    let (p, _) = complete(all(&mut r, at(6), &rest[1..]));
    assert_eq!(p.src, ip("203.0.5.7"));
    let rest = frames::fragments(&syn("203.0.0.7", LOCAL, 22), 8, 1);
    assert_eq!(all(&mut r, at(6), &rest[1..]), Outcome::Pending, "evicted");
}

#[test]
fn one_prefix_cannot_take_the_others_room() {
    let limits = Limits {
        datagrams: 8,
        per_prefix: 2,
        ..Limits::default()
    };
    let mut r = Reassembler::new(limits);
    // A scanner's first fragment, then a flood from one /24 (any addresses in it).
    let scan = frames::fragments(&syn("198.51.100.77", LOCAL, 22), 8, 9);
    insert(&mut r, at(0), &scan[0]);
    for i in 0..100u16 {
        let src = format!("203.0.113.{}", i % 250);
        let f = frames::fragments(&syn(&src, LOCAL, 22), 8, u32::from(i))[0].clone();
        insert(&mut r, at(1), &f);
    }
    assert_eq!(r.in_progress(), 3, "the flood keeps two");
    assert_eq!(r.counters().dropped, 98);
    let (p, _) = complete(all(&mut r, at(2), &scan[1..]));
    assert_eq!(p.dst_port, 22);
    // IPv6: per /48.
    let mut r = Reassembler::new(limits);
    let payload = [0u8; 100];
    for i in 0..10u16 {
        let src = format!("2001:db8:1:{i}::7");
        let frame = frames::udp_frame_with(ip(&src), ip("2001:db8::1"), 1, 2, &payload);
        let f = frames::fragments(&frame, 24, u32::from(i))[0].clone();
        insert(&mut r, at(1), &f);
    }
    assert_eq!(r.in_progress(), 2);
}

#[test]
fn fragments_per_datagram_are_bounded() {
    let limits = Limits {
        fragments: 4,
        ..Limits::default()
    };
    let mut r = Reassembler::new(limits);
    let payload = vec![1u8; 64];
    let frame = frames::udp_frame_with(ip(SCANNER), ip(LOCAL), 5000, 53, &payload);
    let frags = frames::fragments(&frame, 8, 1);
    assert_eq!(frags.len(), 9);
    let outcomes: Vec<Outcome> = frags.iter().map(|f| insert(&mut r, at(0), f)).collect();
    assert_eq!(outcomes[4], Outcome::Dropped);
    assert_eq!(r.counters().dropped, 1);
    assert_eq!(r.counters().reassembled, 0);
    // Four fragments are fine.
    let frame = frames::udp_frame_with(ip(SCANNER), ip(LOCAL), 5000, 53, &payload[..24]);
    let (p, _) = complete(all(&mut r, at(1), &frames::fragments(&frame, 8, 2)));
    assert_eq!(p.shape.payload_len, 24);
}

#[test]
fn only_the_first_bytes_of_a_large_datagram_are_kept() {
    // 60,000 bytes in 1480-byte fragments, the bytes kept fixed, the length and sum whole.
    let payload: Vec<u8> = (0..60_000u32).map(|i| (i % 251) as u8).collect();
    let frame = frames::udp_frame_with(ip(SCANNER), ip(LOCAL), 5000, 7, &payload);
    let frags = frames::fragments(&frame, 1480, 3);
    assert_eq!(frags.len(), 41);
    let mut r = Reassembler::new(Limits::default());
    let (p, _) = complete(all(&mut r, at(0), &frags));
    assert_eq!(p.shape.payload_len, 60_000);
    assert_eq!(p.integrity, Integrity::Valid);
    assert_eq!(p.shape.head.as_bytes(), &payload[..32]);
    assert!(
        std::mem::size_of::<Slot>() < 1024,
        "{}",
        std::mem::size_of::<Slot>()
    );
}

#[test]
fn a_fragment_this_host_sent_is_read_alone() {
    let payload = vec![0u8; 3000];
    let frame = frames::udp_frame_with(ip(LOCAL), ip(SCANNER), 5353, 53, &payload);
    let frags = frames::fragments(&frame, 1480, 4);
    let mut r = Reassembler::new(Limits::default());
    let f = fragment_of(LinkType::Ethernet, &frags[0], Metadata::default()).unwrap();
    let p = r.lone(&f).expect("the first fragment holds the UDP header");
    assert_eq!((p.src_port, p.dst_port), (5353, 53));
    let f = fragment_of(LinkType::Ethernet, &frags[1], Metadata::default()).unwrap();
    assert_eq!(r.lone(&f), None);
    assert_eq!(r.in_progress(), 0);
}

mod property {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the fragments (shuffled, cut, changed), no panic, and never more
        /// datagrams in progress than the bound.
        #[test]
        fn any_fragments_never_panic_and_stay_bounded(
            sizes in proptest::collection::vec(0usize..3, 1..40),
            cuts in proptest::collection::vec((0usize..200, any::<u8>(), 0usize..120), 1..40),
        ) {
            let limits = Limits { datagrams: 8, per_prefix: 3, fragments: 6, ..Limits::default() };
            let mut r = Reassembler::new(limits);
            let payload = vec![9u8; 100];
            for (i, (&size, &(cut, byte, at_byte))) in sizes.iter().zip(&cuts).enumerate() {
                let src = if i % 2 == 0 { "203.0.113.7" } else { "2001:db8::7" };
                let dst = if i % 2 == 0 { LOCAL } else { "2001:db8::1" };
                let frame = frames::udp_frame_with(ip(src), ip(dst), 1, 2, &payload);
                let frags = frames::fragments(&frame, [8, 16, 48][size], u32::try_from(i % 3).unwrap());
                for f in frags {
                    let mut f = f[..f.len().min(14 + cut)].to_vec();
                    if let Some(b) = f.get_mut(14 + at_byte) {
                        *b ^= byte;
                    }
                    if let Ok(fr) = fragment_of(LinkType::Ethernet, &f, Metadata::default()) {
                        let _ = r.insert(at(i as u64), &fr);
                    }
                    prop_assert!(r.in_progress() <= 8);
                }
            }
        }
    }
}

#[test]
fn fragments_from_two_interfaces_never_make_one_datagram() {
    let frags = frames::fragments(&syn(SCANNER, LOCAL, 22), 8, 11);
    let on = |i: u32| Metadata {
        direction: Direction::Incoming,
        ifindex: Some(i),
        ..Metadata::default()
    };
    let mut r = Reassembler::new(Limits::default());
    let f0 = fragment_of(LinkType::Ethernet, &frags[0], on(2)).unwrap();
    let f1 = fragment_of(LinkType::Ethernet, &frags[1], on(2)).unwrap();
    let forged = fragment_of(LinkType::Ethernet, &frags[2], on(3)).unwrap();
    assert_eq!(r.insert(at(0), &f0), Outcome::Pending);
    assert_eq!(r.insert(at(0), &f1), Outcome::Pending);
    assert_eq!(
        r.insert(at(0), &forged),
        Outcome::Pending,
        "a datagram of its own"
    );
    assert_eq!(r.in_progress(), 2);
    let last = fragment_of(LinkType::Ethernet, &frags[2], on(2)).unwrap();
    let (p, _) = complete(r.insert(at(0), &last));
    assert_eq!((p.ifindex, p.direction), (Some(2), Direction::Incoming));
}

/// `frame` (Ethernet, IPv4 without options) with IPv4 `options` (a whole number of words)
/// inserted after its header, the lengths and header sum fixed.
fn with_ip_options(frame: &[u8], options: &[u8]) -> Vec<u8> {
    let mut out = frame[..34].to_vec();
    out.extend_from_slice(options);
    out.extend_from_slice(&frame[34..]);
    let words = u8::try_from(options.len() / 4).unwrap();
    out[14] = 0x45 + words;
    let total = u16::from_be_bytes([out[16], out[17]]) + u16::from(words) * 4;
    out[16..18].copy_from_slice(&total.to_be_bytes());
    let hl = 20 + options.len();
    out[24] = 0;
    out[25] = 0;
    let sum = !Sum::default().add(&out[14..14 + hl]).fold();
    out[24..26].copy_from_slice(&sum.to_be_bytes());
    out
}

/// Red team (b), issue 29: a fragment whose IPv4 options the kernel cannot walk
/// (`ip_options_compile`: a timestamp option of length 1) is dropped before reassembly, so a
/// SYN in fragments, one of them so forged, is never whole; with options the kernel walks (four
/// no-ops) it is.
#[test]
fn issue_29_red_b_a_fragment_with_options_the_kernel_cannot_walk_makes_no_datagram() {
    for (options, whole) in [([1u8, 1, 1, 1], true), ([0x44, 0x01, 0, 0], false)] {
        let mut frags = frames::fragments(&syn(SCANNER, LOCAL, 22), 8, 0x1234);
        frags[1] = with_ip_options(&frags[1], &options);
        let mut r = Reassembler::new(Limits::default());
        let mut last = Outcome::Dropped;
        for f in &frags {
            match fragment_of(LinkType::Ethernet, f, Metadata::default()) {
                Ok(fragment) => last = r.insert(at(0), &fragment),
                Err(e) => assert_eq!((e, whole), (Skip::Malformed, false), "{options:02x?}"),
            }
        }
        assert_eq!(
            matches!(last, Outcome::Complete(..)),
            whole,
            "{options:02x?}: {last:?}"
        );
    }
}
