use super::*;
use crate::detect::DetectorConfig;
use crate::detect::traps::{Listeners, PortSet, TrapMode, Traps};
use crate::never_block::{Entry, NeverBlockList, Reason};
use crate::pipeline::Pipeline;
use crate::wire::shape::Head;
use crate::wire::{Full, TcpFlags};

impl FirstSegments {
    fn accepted_full(&mut self, at: Timestamp, p: &Full) {
        self.accepted(at, p, &p.shape);
    }
    fn first_full(&mut self, at: Timestamp, p: &Full) -> Option<Timestamp> {
        self.first(at, p, &p.shape)
    }
}

const LOCAL: &str = "198.51.100.1";
const SCANNER: &str = "203.0.113.7";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_micros(1_700_000_000_000_000 + ms * 1_000)
}

fn probe(name: &str) -> &'static ServiceProbe {
    service_probes::TCP
        .iter()
        .chain(service_probes::UDP)
        .find(|p| p.name == name)
        .expect(name)
}

fn tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: TcpFlags) -> Full {
    Full::valid(Packet {
        window: 64240,
        ..Packet::tcp(ip(src), sport, ip(dst), dport, flags)
    })
}

/// The host's ISN in every test connection.
const SERVER_ISN: u32 = 0x5eed_0000;

/// The host's SYN+ACK accepting `src`'s connection from `sport` to `dport`, whose SYN had the
/// sequence number `isn`.
fn syn_ack(src: &str, sport: u16, dport: u16, isn: u32) -> Full {
    let mut p = tcp(LOCAL, dport, src, sport, TcpFlags::SYN | TcpFlags::ACK);
    p.shape.seq = SERVER_ISN;
    p.shape.ack = isn.wrapping_add(1);
    p
}

/// A data segment from `src` with sequence number `seq` carrying `payload` (its first 32
/// bytes kept, as the parser keeps them).
fn data(src: &str, sport: u16, dport: u16, seq: u32, payload: &[u8]) -> Full {
    let mut p = tcp(src, sport, LOCAL, dport, TcpFlags::PSH | TcpFlags::ACK);
    p.shape.seq = seq;
    p.shape.ack = SERVER_ISN + 1;
    p.shape.payload_len = u16::try_from(payload.len()).unwrap();
    p.shape.head = Head::new(payload);
    p
}

fn datagram(src: &str, dport: u16, payload: &[u8]) -> Full {
    let mut p = tcp(src, 40000, LOCAL, dport, TcpFlags::default());
    p.tcp_flags = None;
    p.window = 0;
    p.shape.payload_len = u16::try_from(payload.len()).unwrap();
    p.shape.head = Head::new(payload);
    p
}

/// The whole probe `name` as nmap sends it: its head, then filler up to its length (the
/// parser keeps only the first 32 bytes, so the filler is never looked at).
fn payload(name: &str) -> Vec<u8> {
    let p = probe(name);
    let mut bytes = p.head.to_vec();
    bytes.resize(usize::from(p.len), 0);
    bytes
}

fn pipeline(ignore: &[&str]) -> Pipeline {
    let mut traps = Traps::new(TrapMode::Unused, PortSet::new(), PortSet::new(), None);
    let mut listeners = Listeners::new();
    for port in [22, 80, 443, 8080] {
        listeners.insert(Proto::Tcp, None, port);
    }
    listeners.insert(Proto::Udp, None, 53);
    traps.set_listeners(listeners);
    let ignore = NeverBlockList::new(
        ignore
            .iter()
            .map(|s| Entry {
                net: s.parse().unwrap(),
                reason: Reason::Config,
            })
            .collect(),
    );
    Pipeline::new(DetectorConfig::default(), traps, ignore, [ip(LOCAL)], 7)
}

/// `src` connects to `dport` from `sport` at `ms` and sends `payload` as its first segment;
/// what the pipeline made of it.
fn connect_and_send(
    p: &mut Pipeline,
    ms: u64,
    src: &str,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Option<Detection> {
    let isn = 1_000 * u32::from(sport);
    let syn = {
        let mut s = tcp(src, sport, LOCAL, dport, TcpFlags::SYN);
        s.shape.seq = isn;
        s
    };
    assert_eq!(p.process(at(ms), Ok(syn)), None);
    assert_eq!(p.process(at(ms), Ok(syn_ack(src, sport, dport, isn))), None);
    p.process(
        at(ms + 1),
        Ok(data(src, sport, dport, isn.wrapping_add(1), payload)),
    )
}

#[test]
fn only_the_first_segment_of_an_accepted_connection_is_looked_at() {
    let mut first = FirstSegments::new(4, Duration::from_secs(30), 1);
    first.accepted_full(at(0), &syn_ack(SCANNER, 40000, 80, 99));
    let get = data(SCANNER, 40000, 80, 100, b"GET / HTTP/1.0\r\n\r\n");
    // Another sequence number (a later segment), another port, another address: not it.
    assert_eq!(
        first.first_full(at(1), &data(SCANNER, 40000, 80, 118, b"x")),
        None
    );
    assert_eq!(
        first.first_full(at(1), &data(SCANNER, 40001, 80, 100, b"x")),
        None
    );
    assert_eq!(
        first.first_full(at(1), &data("203.0.113.8", 40000, 80, 100, b"x")),
        None
    );
    // The right sequence number, but not the acknowledgment of the host's ISN: a forger that
    // sent the SYN from another's address and never saw the SYN+ACK. Nor without ACK.
    let mut blind = get;
    blind.shape.ack = 12345;
    assert_eq!(first.first_full(at(1), &blind), None);
    let mut no_ack = get;
    no_ack.tcp_flags = Some(TcpFlags::PSH);
    assert_eq!(first.first_full(at(1), &no_ack), None);
    assert_eq!(first.first_full(at(1), &get), Some(at(0)));
    assert_eq!(first.first_full(at(2), &get), None, "looked at once");
    // Awaited for the TTL only.
    first.accepted_full(at(0), &syn_ack(SCANNER, 40002, 80, 7));
    let late = data(SCANNER, 40002, 80, 8, b"x");
    assert_eq!(first.first_full(at(30_001), &late), None);
    // No SYN+ACK, no first segment: a segment forged on a connection the host never accepted.
    let mut none = FirstSegments::new(4, Duration::from_secs(30), 1);
    assert_eq!(none.first_full(at(0), &get), None);
}

#[test]
fn three_probes_of_an_unnamed_http_service_are_a_version_scan() {
    let mut p = pipeline(&[]);
    // nmap -sV against a web server it cannot name: GET, OPTIONS, RTSP OPTIONS, … each on a
    // connection of its own.
    assert_eq!(
        connect_and_send(&mut p, 0, SCANNER, 40001, 80, &payload("GetRequest")),
        None
    );
    assert_eq!(
        connect_and_send(&mut p, 6, SCANNER, 40002, 80, &payload("HTTPOptions")),
        None
    );
    let d = connect_and_send(&mut p, 13, SCANNER, 40003, 80, &payload("RTSPRequest"))
        .expect("1 + 1 + 2 reaches 3");
    assert_eq!(d.addr, ip(SCANNER));
    assert_eq!(d.kinds.to_string(), "version");
    assert_eq!(d.ports, [(Proto::Tcp, 80)]);
    assert_eq!(
        d.first_seen,
        at(0),
        "from the first connection's acceptance"
    );
    let signature = d.signature.expect("a signature");
    assert_eq!(signature.tool, "nmap version detection");
    assert_eq!(
        signature.probes,
        ["GetRequest", "HTTPOptions", "RTSPRequest"]
    );
    assert_eq!(p.counters().version_probes, 3);
    assert_eq!(p.counters().detections, 1);
    // Reported once a window, however many probes follow.
    assert_eq!(
        connect_and_send(&mut p, 20, SCANNER, 40004, 80, &payload("Help")),
        None
    );
}

#[test]
fn a_web_port_and_a_tls_port_are_a_version_scan() {
    let mut p = pipeline(&[]);
    assert_eq!(
        connect_and_send(&mut p, 0, SCANNER, 40001, 80, &payload("GetRequest")),
        None
    );
    let d = connect_and_send(&mut p, 6000, SCANNER, 40002, 443, &payload("TLSSessionReq"))
        .expect("1 + 2");
    assert_eq!(d.ports, [(Proto::Tcp, 80), (Proto::Tcp, 443)]);
}

#[test]
fn one_kind_of_request_is_no_version_scan_however_often() {
    let mut p = pipeline(&[]);
    // A load balancer's health checks (HAProxy's default is nmap's HTTPOptions), and a
    // minimal HTTP/1.0 client, to several ports, again and again.
    for i in 0..100u16 {
        let port = [80, 443, 8080][usize::from(i % 3)];
        let ms = u64::from(i) * 2_000;
        assert_eq!(
            connect_and_send(
                &mut p,
                ms,
                SCANNER,
                30000 + i,
                port,
                &payload("HTTPOptions")
            ),
            None
        );
        assert_eq!(
            connect_and_send(
                &mut p,
                ms + 5,
                SCANNER,
                50000 + i,
                port,
                &payload("GetRequest")
            ),
            None
        );
    }
    assert_eq!(p.counters().version_probes, 200);
    // One probe only nmap sends is not enough by itself either.
    let mut p = pipeline(&[]);
    assert_eq!(
        connect_and_send(&mut p, 0, SCANNER, 40001, 443, &payload("TLSSessionReq")),
        None
    );
    // Ordinary clients' first segments are no probes at all.
    let mut p = pipeline(&[]);
    let curl =
        b"GET / HTTP/1.1\r\nHost: 198.51.100.1\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";
    let curl10 =
        b"GET / HTTP/1.0\r\nHost: 198.51.100.1\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";
    for (i, first) in [
        &curl[..],
        &curl10[..],
        b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
    ]
    .into_iter()
    .enumerate()
    {
        let i = u16::try_from(i).unwrap();
        assert_eq!(
            connect_and_send(&mut p, 0, SCANNER, 40000 + i, 80, first),
            None
        );
    }
    assert_eq!(p.counters().version_probes, 0);
}

#[test]
fn probes_without_a_handshake_are_not_counted() {
    let mut p = pipeline(&[]);
    // The same segments, forged without the host's SYN+ACK (or with the wrong sequence).
    for (i, name) in ["GetRequest", "HTTPOptions", "RTSPRequest", "TLSSessionReq"]
        .into_iter()
        .enumerate()
    {
        let sport = 40000 + u16::try_from(i).unwrap();
        assert_eq!(
            p.process(at(0), Ok(data(SCANNER, sport, 80, 1, &payload(name)))),
            None
        );
        p.process(at(0), Ok(syn_ack(SCANNER, sport + 100, 80, 5)));
        assert_eq!(
            p.process(at(0), Ok(data(SCANNER, sport + 100, 80, 7, &payload(name)))),
            None
        );
    }
    assert_eq!(p.counters().version_probes, 0);
}

#[test]
fn udp_probes_are_named_with_a_version_scan_and_never_make_one() {
    let mut p = pipeline(&[]);
    // Datagrams alone (their source may be forged): no state at all.
    for name in [
        "DNSVersionBindReq",
        "DNSStatusRequest",
        "SNMPv3GetRequest",
        "NTPRequest",
    ] {
        assert_eq!(
            p.process(at(0), Ok(datagram(SCANNER, 53, &payload(name)))),
            None
        );
    }
    assert_eq!(p.counters().version_probes, 4);
    assert_eq!(
        p.detector_stats().tracked,
        0,
        "datagrams to a listener are not traps"
    );
    // After a probe on a connection (a health check's, say), forged datagrams from its
    // address add nothing to its score: no detection, however many.
    assert_eq!(
        connect_and_send(&mut p, 10, SCANNER, 40001, 80, &payload("GetRequest")),
        None
    );
    for name in [
        "DNSVersionBindReq",
        "DNSStatusRequest",
        "SNMPv3GetRequest",
        "SNMPv1public",
    ] {
        assert_eq!(
            p.process(at(20), Ok(datagram(SCANNER, 53, &payload(name)))),
            None
        );
    }
    // Nor do they crowd out the connections' probes: half the names at most.
    for name in ["RPCCheck", "NTPRequest", "Sqlping", "Help", "NBTStat"] {
        assert_eq!(
            p.process(at(25), Ok(datagram(SCANNER, 53, &payload(name)))),
            None
        );
    }
    // They are named when its connections make a version scan.
    assert_eq!(
        connect_and_send(&mut p, 30, SCANNER, 40002, 80, &payload("HTTPOptions")),
        None
    );
    let d = connect_and_send(&mut p, 40, SCANNER, 40003, 80, &payload("RTSPRequest"))
        .expect("1 + 1 + 2 on connections");
    let signature = d.signature.unwrap();
    assert_eq!(
        signature.probes[..3],
        ["GetRequest", "DNSVersionBindReq", "DNSStatusRequest"]
    );
    assert!(signature.probes.contains(&"RTSPRequest"));
    assert_eq!(d.ports, [(Proto::Tcp, 80), (Proto::Udp, 53)]);
}

#[test]
fn the_never_block_list_and_unroutable_sources_come_before_any_state() {
    let mut p = pipeline(&["203.0.113.0/24"]);
    for (i, name) in ["GetRequest", "HTTPOptions", "RTSPRequest"]
        .into_iter()
        .enumerate()
    {
        let sport = 40000 + u16::try_from(i).unwrap();
        assert_eq!(
            connect_and_send(&mut p, 0, SCANNER, sport, 80, &payload(name)),
            None
        );
    }
    assert_eq!(p.counters().version_probes, 0);
}

#[test]
fn probes_a_window_apart_do_not_add_up() {
    let mut scans = VersionScans::new(4, Duration::from_secs(60), 1);
    let src = ip(SCANNER);
    let source = IpNet::from(src);
    let seen = |scans: &mut VersionScans, ms: u64, name: &str| {
        scans.observe(at(ms), src, source, probe(name), 80, Some(at(ms)))
    };
    assert_eq!(seen(&mut scans, 0, "GetRequest"), None);
    assert_eq!(seen(&mut scans, 60_001, "HTTPOptions"), None);
    assert_eq!(seen(&mut scans, 120_002, "Help"), None);
    assert_eq!(seen(&mut scans, 120_003, "GenericLines"), None);
    assert!(
        seen(&mut scans, 120_004, "GetRequest").is_some(),
        "1 + 1 + 1 within a window"
    );
}

#[test]
fn memory_is_bounded_per_source_and_in_all() {
    // Per source: at most MAX_PROBES names and MAX_PORTS ports, however many it sends.
    let mut scans = VersionScans::new(2, Duration::from_secs(60), 1);
    let src = ip(SCANNER);
    let mut found = None;
    for (i, p) in service_probes::TCP.iter().enumerate() {
        let port = 1000 + u16::try_from(i).unwrap();
        found = scans
            .observe(at(0), src, IpNet::from(src), p, port, Some(at(0)))
            .or(found);
        scans.reconsider(IpNet::from(src));
    }
    let d = found.expect("a version scan");
    assert!(service_probes::TCP.len() > MAX_PROBES);
    let d_last = scans
        .observe(
            at(1),
            src,
            IpNet::from(src),
            &service_probes::TCP[0],
            1,
            Some(at(1)),
        )
        .expect("reconsidered");
    assert!(d.signature.unwrap().probes.len() <= MAX_PROBES);
    assert_eq!(d_last.signature.unwrap().probes.len(), MAX_PROBES);
    assert_eq!(d_last.ports.len(), MAX_PORTS);
    // In all: a fixed number of records, whatever the number of sources.
    for i in 0..10_000u32 {
        let src = IpAddr::from(std::net::Ipv4Addr::from(0xcb00_7100 + i));
        scans.observe(
            at(2),
            src,
            IpNet::from(src),
            probe("GetRequest"),
            80,
            Some(at(2)),
        );
    }
    assert!(scans.tracked() <= 4);
    // And the first-segment table never grows.
    let mut first = FirstSegments::new(2, Duration::from_secs(30), 1);
    for i in 0..10_000u16 {
        first.accepted_full(at(0), &syn_ack(SCANNER, i, 80, 0));
    }
    assert_eq!(first.slots.len(), 4);
}

/// A version scanner completes handshakes, and the daemon may find its connections established
/// (nmap holds the NULL probe's open for up to 6 s): they began with the scan, so they do not
/// protect it. An administrator's session found established before the scan began does,
/// whatever the address then sends (reported, never blocked automatically).
#[test]
fn a_version_scanners_own_connections_do_not_protect_it_an_earlier_session_does() {
    use crate::respond::{Distrust, SourceView, distrust};
    use crate::trust::{Peers, ReversePath};
    let mut p = pipeline(&[]);
    let start = 600_000;
    for (i, name) in ["GetRequest", "HTTPOptions", "RTSPRequest"]
        .into_iter()
        .enumerate()
    {
        let i = u16::try_from(i).unwrap();
        let found = connect_and_send(
            &mut p,
            start + 6_000 * u64::from(i),
            SCANNER,
            40001 + i,
            80,
            &payload(name),
        );
        if i == 2 {
            let d = found.expect("a version scan");
            assert_eq!(d.first_seen, at(start));
            let judge = |peers: &Peers| {
                let view = SourceView {
                    reverse_path: ReversePath::Off,
                    route_back: None,
                    peers: Some(peers),
                };
                distrust(&d, &view, p.never_block())
            };
            // Readings each second of the scan find its connections established.
            let mut scanner_only = Peers::new(Duration::from_secs(3600));
            for s in 0..14 {
                let conns = [(ip(SCANNER), 80, 40001 + u16::try_from(s / 6).unwrap())];
                scanner_only.observe(at(start + 1 + s * 1_000), conns);
            }
            assert_eq!(judge(&scanner_only), None, "blockable");
            // An SSH session of the same address, found established ten minutes before.
            let mut admin = Peers::new(Duration::from_secs(3600));
            let session = (ip(SCANNER), 22, 50000);
            admin.observe(at(0), [session]);
            admin.observe(at(start + 1), [session, (ip(SCANNER), 80, 40001)]);
            let Some(Distrust::Protected(c)) = judge(&admin) else {
                panic!("the session protects its peer");
            };
            assert_eq!((c.peer, c.port, c.since), (ip(SCANNER), 22, at(0)));
        }
    }
}

/// Issue 28, red team: a SYN flood from forged sources makes the host send a SYN+ACK for each
/// (SYN cookies or not), and every one takes a slot of the accepted connections' table: the
/// flood evicts the slots of a real `nmap -sV`'s connections before their first segments.
/// nmap's first probe of a service with no banner (`GetRequest`) comes 6 s after its
/// connection (the NULL probe's wait, `tests/data/nmap_sv_3_open.pcap`): at 10,000 forged SYNs
/// a second, 60,000 SYN+ACKs go out meanwhile, and that probe is most likely lost. Its next
/// probes follow their connections within milliseconds, and still make the version scan.
#[test]
fn a_syn_flood_cannot_hide_a_real_version_scan() {
    let mut p = pipeline(&[]);
    let mut flooded = 0u32;
    let mut flood = |p: &mut Pipeline, ms: u64, n: u32| {
        for _ in 0..n {
            flooded += 1;
            let forged = format!("192.0.2.{}", flooded % 250 + 1);
            let sport = u16::try_from(1024 + flooded % 60_000).unwrap();
            p.process(at(ms), Ok(syn_ack(&forged, sport, 80, flooded)));
        }
    };
    // The NULL probe's connection, then six seconds of flood, then GetRequest on it.
    let isn = 77_000;
    p.process(at(0), Ok(syn_ack(SCANNER, 41000, 80, isn)));
    flood(&mut p, 3_000, 60_000);
    let get = data(SCANNER, 41000, 80, isn + 1, &payload("GetRequest"));
    assert_eq!(p.process(at(6_000), Ok(get)), None);
    // nmap's next probes, each on a new connection, ten forged SYN+ACKs between each
    // SYN+ACK and its segment (10,000 a second, a millisecond apart).
    let mut found = None;
    for (i, name) in ["HTTPOptions", "RTSPRequest", "FourOhFourRequest"]
        .into_iter()
        .enumerate()
    {
        let sport = 41001 + u16::try_from(i).unwrap();
        let ms = 6_010 + 10 * u64::try_from(i).unwrap();
        let isn = 1_000 * u32::from(sport);
        p.process(at(ms), Ok(syn_ack(SCANNER, sport, 80, isn)));
        flood(&mut p, ms, 10);
        let segment = data(SCANNER, sport, 80, isn + 1, &payload(name));
        found = found.or(p.process(at(ms + 1), Ok(segment)));
    }
    let d = found.expect("the version scan is seen through the flood");
    assert_eq!(d.addr, ip(SCANNER));
    assert_eq!(d.signature.unwrap().tool, TOOL);
}
