//! Issue 27: the daemon confirms the kernel's holds. The in-memory firewall keeps a first line
//! (facts, holds, lifts, spares); a test makes the kernel "hold" a source and hands the report
//! to the engine, as the daemon's loop does.

use super::*;
use crate::firewall::{FirstLineCounters, KernelHold};

const HOLD: Duration = Duration::from_secs(5);
const SYN: Option<u8> = Some(0x02);

/// An engine whose firewall keeps the kernel's first line, on a machine `setup` made ready.
fn lab_with(c: Config, setup: impl FnOnce(&mut Machine)) -> Lab {
    let clock = Arc::new(ManualClock::new(Timestamp::from_micros(
        1_800_000_000_000_000,
    )));
    let kernel = Memory::new(clock.clone()).with_first_line(HOLD);
    let mut lab = Lab::start_with(c, clock, kernel, None, setup);
    lab.engine.take_effects();
    lab
}

fn lab() -> Lab {
    lab_with(config(), |_| {})
}

impl Lab {
    /// `src` scans, is blocked, then unblocked by hand with a grace period of `grace` seconds.
    fn scanned_then_unblocked_with_grace(&mut self, src: &str, grace: u64) {
        self.scan(src, 1..=10);
        assert!(matches!(
            self.request(Request::Unblock {
                net: net(src),
                grace: Some(grace),
                local: false,
            }),
            Response::Unblocked { .. }
        ));
    }

    /// The kernel holds `src` after a SYN to `port`/tcp; the engine hears of it.
    fn held(&mut self, src: &str, port: u16) -> KernelHold {
        let hold = self.kernel.hold(ip(src), Proto::Tcp, port, SYN);
        self.engine.kernel_held(hold);
        hold
    }

    fn second(&mut self) {
        self.advance(EVERY_SECOND);
        self.engine.tick();
    }

    fn hold_of(&mut self, addr: &str) -> Option<crate::control::protocol::HoldInfo> {
        let Response::Why { first_line, .. } = self.request(Request::Why { addr: ip(addr) }) else {
            panic!("why answers Why")
        };
        first_line
    }

    fn outcomes(&mut self) -> std::collections::BTreeMap<String, u64> {
        let status = self.engine.status(&Readings::default());
        status.first_line.expect("a first line").holds
    }
}

#[test]
fn issue_27_the_facts_are_loaded_at_start_and_again_only_when_they_change() {
    let mut c = config();
    c.detector.tripwire.tcp = crate::detect::traps::PortSet::from_ranges(&[2323..=2323]);
    let admin = "203.0.113.50";
    let mut lab = lab_with(c, |m| {
        m.listeners.insert(Proto::Tcp, None, 22);
        m.listeners.insert(Proto::Udp, Some(ip(LOCAL)), 53);
    });
    let (facts, loads) = lab.kernel.first_line_facts();
    let facts = facts.expect("loaded at start");
    assert_eq!(loads, 1);
    // The listeners, and the ports the daemon never counts (`exclude-tcp`/`exclude-udp`'s
    // defaults: ident, NetBIOS, DHCP, RIP), which the kernel must not count either.
    assert_eq!(
        facts.listening.into_iter().collect::<Vec<_>>(),
        [
            (Proto::Tcp, 22),
            (Proto::Tcp, 113),
            (Proto::Tcp, 139),
            (Proto::Udp, 53),
            (Proto::Udp, 67),
            (Proto::Udp, 68),
            (Proto::Udp, 137),
            (Proto::Udp, 138),
            (Proto::Udp, 520)
        ]
    );
    assert_eq!(
        facts.tripwires.into_iter().collect::<Vec<_>>(),
        [(Proto::Tcp, 2323)]
    );
    assert_eq!(facts.ephemeral, Some(crate::config::LINUX_EPHEMERAL_PORTS));
    assert!(facts.peers.is_empty());
    // Nothing changed: nothing is sent, however many seconds go by.
    for _ in 0..5 {
        lab.second();
    }
    assert_eq!(lab.kernel.first_line_facts().1, 1);
    // A listener and a peer appear: loaded once more, whole.
    lab.machine().listeners.insert(Proto::Tcp, None, 80);
    lab.machine().established.push((ip(admin), 22, 51000));
    lab.second();
    let (facts, loads) = lab.kernel.first_line_facts();
    let facts = facts.unwrap();
    assert_eq!(loads, 2);
    assert!(facts.listening.contains(&(Proto::Tcp, 80)));
    assert_eq!(facts.peers, [net(admin)]);
    lab.second();
    assert_eq!(lab.kernel.first_line_facts().1, 2);
    // A reload loads them anew (its sets may be new).
    lab.machine().configuration = Some(Ok(config()));
    assert!(matches!(
        lab.engine.reload(ReloadBy::Signal),
        Response::Reloaded { .. }
    ));
    let (facts, loads) = lab.kernel.first_line_facts();
    assert_eq!(loads, 3);
    assert!(facts.unwrap().tripwires.is_empty(), "the new tripwires");
}

#[test]
fn issue_27_without_a_first_line_nothing_is_loaded_and_status_says_none() {
    let mut lab = Lab::start(config());
    lab.second();
    assert_eq!(lab.kernel.first_line_facts(), (None, 0));
    assert!(lab.engine.status(&Readings::default()).first_line.is_none());
}

#[test]
fn issue_27_a_hold_of_a_never_block_source_an_own_address_or_a_peer_is_lifted_at_once() {
    let mut c = config();
    c.never_block.addresses = vec![net("198.51.100.77")];
    let admin = "203.0.113.50";
    let mut lab = lab_with(c, |m| m.established.push((ip(admin), 22, 51000)));
    lab.second();
    lab.engine.take_effects();
    for (src, why) in [
        (
            "198.51.100.77",
            "on the never-block list ([never-block] addresses in the configuration)",
        ),
        (LOCAL, "an address of this host"),
        (admin, "a protected peer (a conversation on port 22)"),
    ] {
        lab.held(src, 902);
        assert!(!lab.kernel.is_held(ip(src)), "{src} is lifted at once");
        assert!(lab.says(&format!("lifted the kernel's hold of {src}: {why}")));
    }
    assert_eq!(
        lab.kernel.lifted_holds(),
        [ip("198.51.100.77"), ip(LOCAL), ip(admin)]
    );
    let outcomes = lab.outcomes();
    for o in [
        "lifted-never-block",
        "lifted-own-address",
        "lifted-protected",
    ] {
        assert_eq!(outcomes.get(o), Some(&1), "{o}: {outcomes:?}");
    }
    // A scanner's hold stays.
    lab.held(SCANNER, 902);
    assert!(lab.kernel.is_held(ip(SCANNER)));
    assert!(lab.says("the kernel's first line held 203.0.113.7 for 5s after a probe to 902/tcp"));
    // A stealth probe says its flags, in the event and in why.
    let fin = lab
        .kernel
        .hold(ip("198.51.100.60"), Proto::Tcp, 903, Some(0x29));
    lab.engine.kernel_held(fin);
    assert!(lab.says("held 198.51.100.60 for 5s after a probe to 903/tcp (FIN|PSH|URG)"));
    let hold = lab.hold_of("198.51.100.60").unwrap();
    assert!(
        hold.line.starts_with(
            "held by the kernel's first line for 5s after a probe to 903/tcp (FIN|PSH|URG) ("
        ),
        "{}",
        hold.line
    );
}

#[test]
fn issue_27_past_16_holds_a_minute_one_partition_is_spared_and_said_once() {
    let mut lab = lab();
    for i in 1..=16 {
        lab.held(&format!("203.0.113.{i}"), 902);
    }
    assert!((1..=16).all(|i| lab.kernel.is_held(ip(&format!("203.0.113.{i}")))));
    assert!(lab.kernel.spared().is_empty());
    lab.engine.take_effects();
    lab.held("203.0.113.17", 902);
    assert!(
        !lab.kernel.is_held(ip("203.0.113.17")),
        "the 17th is lifted"
    );
    assert_eq!(
        lab.kernel.spared(),
        [(
            "203.0.113.0/24".parse::<IpNet>().unwrap(),
            Duration::from_secs(60)
        )]
    );
    assert!(lab.says("the kernel's first line spares 203.0.113.0/24 for 1m"));
    // Once per partition and minute: the next is lifted without a word.
    lab.held("203.0.113.18", 902);
    assert!(!lab.kernel.is_held(ip("203.0.113.18")));
    assert!(lab.said().is_empty());
    // Another network is not touched.
    lab.held("198.51.100.9", 902);
    assert!(lab.kernel.is_held(ip("198.51.100.9")));
    assert_eq!(lab.outcomes().get("lifted-budget"), Some(&2));
    // A minute later, the partition has its holds again.
    lab.advance(Duration::from_secs(61));
    lab.held("203.0.113.19", 902);
    assert!(lab.kernel.is_held(ip("203.0.113.19")));
}

#[test]
fn issue_27_a_block_of_a_held_source_says_the_kernel_held_it_first() {
    let mut lab = lab();
    lab.held(SCANNER, 902);
    lab.advance(Duration::from_millis(3));
    lab.scan(SCANNER, 1..=10);
    assert!(lab.kernel.holds(net(SCANNER)));
    assert!(lab.says("(held by the kernel's first line 3.0 ms before)"));
    assert_eq!(lab.outcomes().get("blocked"), Some(&1));
    let hold = lab.hold_of(SCANNER).expect("why tells of the hold");
    assert_eq!(hold.outcome.as_deref(), Some("blocked"));
    assert!(
        hold.line
            .starts_with("held by the kernel's first line for 5s after a probe to 902/tcp")
            && hold.line.ends_with("; the daemon blocked it 3.0 ms later"),
        "{}",
        hold.line
    );
    // A source blocked first, its hold reported after (the capture's frames that made the
    // block came in before the kernel's report): counted and said all the same.
    lab.scan("198.51.100.20", 1..=10);
    lab.engine.take_effects();
    lab.advance(Duration::from_micros(400));
    lab.held("198.51.100.20", 902);
    assert!(lab.says(
        "the kernel's first line held 198.51.100.20 after a probe to 902/tcp; the daemon's block \
         of 198.51.100.20, made from its capture 0.4 ms before this report came in, confirms it"
    ));
    assert_eq!(lab.outcomes().get("blocked"), Some(&2));
    let hold = lab.hold_of("198.51.100.20").unwrap();
    assert_eq!(hold.outcome.as_deref(), Some("blocked"));
    assert!(
        hold.line.ends_with(
            "; the daemon had blocked it from its capture 0.4 ms before the kernel's report came in"
        ),
        "{}",
        hold.line
    );
    // A block older than a second: its hold is counted, not told (it is no news).
    lab.scan("198.51.100.21", 1..=10);
    lab.advance(Duration::from_secs(2));
    lab.engine.take_effects();
    lab.held("198.51.100.21", 902);
    assert!(lab.said().is_empty());
    assert_eq!(lab.outcomes().get("blocked"), Some(&3));
}

#[test]
fn issue_27_a_port_a_held_source_probed_that_begins_to_listen_lifts_its_hold() {
    let mut lab = lab();
    // Two probes, not enough for the daemon; the kernel holds at the third.
    lab.scan(SCANNER, 900..=901);
    lab.held(SCANNER, 902);
    lab.held("198.51.100.30", 3000);
    // The capture sees the held source's next tries too.
    lab.scan(SCANNER, 900..=901);
    lab.engine.take_effects();
    // A service starts on 900: the hold of the source that probed it goes at the next second.
    lab.machine().listeners.insert(Proto::Tcp, None, 900);
    lab.second();
    assert!(!lab.kernel.is_held(ip(SCANNER)));
    assert!(
        lab.kernel.is_held(ip("198.51.100.30")),
        "it probed another port"
    );
    assert!(lab.says(
        "lifted the kernel's hold of 203.0.113.7: 900/tcp, which it probed, has a listener now"
    ));
    let facts = lab.kernel.first_line_facts().0.unwrap();
    assert!(
        facts.listening.contains(&(Proto::Tcp, 900)),
        "and listen has it"
    );
    assert_eq!(lab.outcomes().get("lifted-listener"), Some(&1));
    let hold = lab.hold_of(SCANNER).unwrap();
    assert_eq!(hold.outcome.as_deref(), Some("lifted-listener"));
    assert!(
        hold.line.contains("; lifted 1.0s later: 900/tcp"),
        "{}",
        hold.line
    );
    // The crossing probe's port counts too.
    lab.machine().listeners.insert(Proto::Tcp, None, 3000);
    lab.second();
    assert!(!lab.kernel.is_held(ip("198.51.100.30")));
}

#[test]
fn issue_27_why_tells_the_time_left_and_a_hold_that_ends_unconfirmed_is_kept_a_while() {
    let mut lab = lab();
    lab.held(SCANNER, 902);
    lab.advance(Duration::from_secs(2));
    let hold = lab.hold_of(SCANNER).unwrap();
    assert_eq!((hold.hold_s, hold.remaining_s), (5, Some(3)));
    assert_eq!(hold.outcome, None);
    assert_eq!(
        hold.line,
        "held by the kernel's first line for 5s after a probe to 902/tcp (3s left); the daemon \
         has not blocked it (yet)"
    );
    let text = crate::ctl::output::human(
        &lab.request(Request::Why { addr: ip(SCANNER) }),
        &crate::ctl::output::Zone::Utc,
    );
    assert!(
        text.ends_with("203.0.113.7 was held by the kernel's first line for 5s after a probe to 902/tcp (3s left); the daemon has not blocked it (yet)"),
        "{text}"
    );
    crate::ctl::json::check_schema(&crate::ctl::json::response(
        &lab.request(Request::Why { addr: ip(SCANNER) }),
    ));
    let status = lab.engine.status(&Readings::default());
    assert_eq!(status.first_line.as_ref().unwrap().holds_active, 1);
    // It ends in the kernel with no block: ended, kept for why.
    lab.advance(Duration::from_secs(4));
    lab.engine.tick();
    assert!(!lab.kernel.is_held(ip(SCANNER)));
    assert_eq!(lab.outcomes().get("ended"), Some(&1));
    let hold = lab.hold_of(SCANNER).unwrap();
    assert_eq!(
        (hold.outcome.as_deref(), hold.remaining_s),
        (Some("ended"), None)
    );
    assert!(
        hold.line.ends_with("; it ended without a block"),
        "{}",
        hold.line
    );
    crate::ctl::json::check_schema(&crate::ctl::json::response(
        &lab.request(Request::Why { addr: ip(SCANNER) }),
    ));
    // … for ten minutes.
    lab.advance(Duration::from_secs(601));
    lab.engine.tick();
    assert!(lab.hold_of(SCANNER).is_none());
}

#[test]
fn issue_27_a_forged_flood_of_holds_is_folded_and_bounded() {
    const MAX: usize = crate::engine::first_line::MAX_HOLDS;
    let mut lab = lab();
    // 10,000 holds within 5 s from sources in as many /48s (no partition is over).
    let mut held = 0;
    for i in 0..10_000u32 {
        let src = format!("2001:db8:{i:x}::1");
        lab.held(&src, 902);
        held += 1;
        if i % 2000 == 1999 {
            lab.advance(Duration::from_secs(1));
        }
    }
    assert_eq!(held, 10_000);
    let said = lab.said();
    assert!(
        said.len() <= report::Fold::BURST as usize,
        "folded: {} lines",
        said.len()
    );
    assert!(lab.engine.first_line.holds.len() <= MAX);
    let outcomes = lab.outcomes();
    assert_eq!(
        outcomes.get("untracked"),
        Some(&(10_000 - MAX as u64)),
        "{outcomes:?}"
    );
    lab.advance(report::Fold::WINDOW);
    lab.engine.tick();
    assert!(lab.says("more holds by the kernel's first line in the last"));
    // They ended (kept for why); the next holds make room by forgetting the first ended.
    assert_eq!(lab.outcomes().get("ended"), Some(&(MAX as u64)));
    lab.held(SCANNER, 902);
    assert!(lab.hold_of(SCANNER).is_some(), "recorded");
    assert_eq!(lab.engine.first_line.holds.len(), MAX - MAX / 8 + 1);
    assert_eq!(
        lab.outcomes().get("untracked"),
        Some(&(10_000 - MAX as u64))
    );
}

#[test]
fn issue_27_status_and_metrics_show_holds_by_outcome_and_the_kernels_counters() {
    let mut lab = lab();
    lab.kernel.set_first_line_counters(FirstLineCounters {
        score_full: 7,
        hold_full: 3,
    });
    lab.held(SCANNER, 902);
    lab.scan(SCANNER, 1..=10);
    lab.held("198.51.100.40", 23);
    let status = lab.engine.status(&Readings::default());
    let first = status.first_line.clone().unwrap();
    // The kernel's count: the hold of the source blocked since ends by itself (the block sets
    // drop its packets before the first line sees them).
    assert_eq!(first.holds_active, 2, "the kernel's count");
    assert_eq!((first.score_full, first.hold_full), (7, 3));
    let text = crate::metrics::exposition(
        &status,
        lab.engine.tally(),
        crate::metrics::Reloads::default(),
        crate::metrics::Format::Text,
    );
    for line in [
        "scansentry_first_line_holds_active 2",
        "scansentry_first_line_holds_total{outcome=\"blocked\"} 1",
        "scansentry_first_line_holds_total{outcome=\"lifted-listener\"} 0",
        "scansentry_first_line_score_full_total 7",
        "scansentry_first_line_hold_full_total 3",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    let human = crate::ctl::output::human(
        &Response::Status(status.clone()),
        &crate::ctl::output::Zone::Utc,
    );
    assert!(
        human.contains("2 holds now; since start 1 blocked; not counted (sets full) 7, not held (hold set full) 3"),
        "{human}"
    );
    crate::ctl::json::check_schema(&crate::ctl::json::response(&Response::Status(status)));
}

#[test]
fn issue_27_holds_and_lifts_are_events_with_their_facts() {
    let mut c = config();
    c.never_block.addresses = vec![net("198.51.100.77")];
    let mut lab = lab_with(c, |_| {});
    lab.held(SCANNER, 902);
    lab.held("198.51.100.77", 22);
    let acts: Vec<report::Act> = lab
        .engine
        .take_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Act(_, act) => Some(*act),
            _ => None,
        })
        .collect();
    assert_eq!(acts.len(), 2, "{acts:#?}");
    assert_eq!(acts[0].decision(), "first-line-hold");
    assert_eq!(acts[0].actor, report::Actor::Kernel);
    assert_eq!(acts[0].address().as_deref(), Some(SCANNER));
    assert_eq!(
        (acts[0].ports.as_deref(), acts[0].duration_s),
        (Some("902/tcp"), Some(5))
    );
    assert_eq!(acts[1].decision(), "first-line-lift");
    assert_eq!(acts[1].actor, report::Actor::Daemon);
    assert_eq!(acts[1].reason, Some("never-block"));
}

#[test]
fn issue_27_holds_the_shell_could_not_queue_are_counted_and_said_once_folded() {
    let mut lab = lab();
    lab.engine.holds_missed(300);
    assert!(lab.says("300 holds of the kernel's first line not heard"));
    assert_eq!(lab.outcomes().get("untracked"), Some(&300));
    for _ in 0..20 {
        lab.engine.holds_missed(1);
    }
    assert!(lab.said().len() < 20, "folded");
    assert_eq!(lab.outcomes().get("untracked"), Some(&320));
}

/// design.md §2: held after `900:R 901:R 902:T`, a listener then starts on 900–902; the
/// client does not try again before the hold is lifted, so the ports it probed before the hold
/// (the capture's count) must lift it too.
#[test]
fn issue_27_a_port_probed_before_the_hold_that_begins_to_listen_lifts_it() {
    let mut lab = lab();
    lab.scan(SCANNER, 900..=901);
    lab.held(SCANNER, 902);
    lab.machine().listeners.insert(Proto::Tcp, None, 901);
    lab.second();
    assert!(!lab.kernel.is_held(ip(SCANNER)));
    assert!(lab.says("901/tcp, which it probed, has a listener now"));
}

/// A hold the daemon did not hear of (its report dropped) is found in the kernel's hold sets
/// at the next second: one of a source never held is lifted all the same.
#[test]
fn issue_27_after_holds_went_unheard_the_hold_sets_are_read_and_never_held_sources_lifted() {
    let mut c = config();
    c.never_block.addresses = vec![net("198.51.100.77")];
    let mut lab = lab_with(c, |_| {});
    lab.kernel.hold(ip("198.51.100.77"), Proto::Tcp, 22, SYN);
    lab.kernel.hold(ip(SCANNER), Proto::Tcp, 23, SYN);
    lab.engine.holds_missed(2);
    lab.second();
    assert!(!lab.kernel.is_held(ip("198.51.100.77")));
    assert!(lab.kernel.is_held(ip(SCANNER)), "a scanner's hold stays");
    assert!(lab.says(
        "lifted the kernel's hold of 198.51.100.77: on the never-block list ([never-block] \
         addresses in the configuration)"
    ));
    assert_eq!(lab.outcomes().get("lifted-never-block"), Some(&1));
    assert_eq!(
        lab.outcomes().get("untracked"),
        Some(&1),
        "each hold counted once"
    );
}

/// The daemon's own judgement lifts a hold when it will not block the source for a rule of
/// trust or an administrator's word: a grace period after an unblock by hand (at the hold's
/// report, or at the detection that follows it), a source whose probes fail the reverse-path
/// check. (tests/daemon.rs: a scanner unblocked with a grace period connects again at once.)
#[test]
fn issue_27_a_grace_period_or_a_failed_reverse_path_lifts_the_hold() {
    let mut lab = lab();
    lab.scanned_then_unblocked_with_grace(SCANNER, 600);
    lab.engine.take_effects();
    // Reported after the unblock: lifted at once.
    lab.held(SCANNER, 902);
    assert!(!lab.kernel.is_held(ip(SCANNER)));
    assert!(lab.says(
        "lifted the kernel's hold of 203.0.113.7: unblocked by hand, in a grace period for 10m \
         more"
    ));
    // A source whose probes fail the reverse-path check: lifted at its detection.
    let forged = "198.51.100.50";
    lab.machine()
        .routes_back
        .insert(ip(forged), RouteBack::Via(2));
    lab.held(forged, 902);
    assert!(lab.kernel.is_held(ip(forged)));
    lab.scan(forged, 1..=10);
    assert!(!lab.kernel.is_held(ip(forged)));
    assert!(
        lab.says(
            "lifted the kernel's hold of 198.51.100.50: its probes fail the reverse-path check"
        )
    );
    let outcomes = lab.outcomes();
    assert_eq!(outcomes.get("lifted-grace"), Some(&1), "{outcomes:?}");
    assert_eq!(
        outcomes.get("lifted-reverse-path"),
        Some(&1),
        "{outcomes:?}"
    );
}

/// `sentryctl unblock` of a source the kernel's first line holds (and the daemon has not
/// blocked) lifts the hold: the administrator's word is the daemon's.
#[test]
fn issue_27_an_unblock_by_hand_lifts_the_hold_of_a_source_not_blocked() {
    let mut lab = lab();
    lab.held(SCANNER, 902);
    lab.engine.take_effects();
    let answer = lab.request(Request::Unblock {
        net: net(SCANNER),
        grace: None,
        local: false,
    });
    assert!(matches!(answer, Response::Unblocked { .. }), "{answer:?}");
    assert!(!lab.kernel.is_held(ip(SCANNER)));
    assert!(lab.says("lifted the kernel's hold of 203.0.113.7: unblocked by hand"));
    assert_eq!(lab.outcomes().get("lifted-unblock"), Some(&1));
    // A source neither blocked nor held: nothing to do, as before.
    let answer = lab.request(Request::Unblock {
        net: net("198.51.100.99"),
        grace: None,
        local: false,
    });
    assert!(matches!(answer, Response::NotBlocked { .. }), "{answer:?}");
}

/// Red team of issue 27: a source in a grace period is one the daemon does not block, so the
/// kernel must not hold it either. Its bucket is still empty after the unblock: without a
/// spare, each of its next probes of a closed port (a forger's, one a packet, or the real
/// client's) is held, heard, and lifted, a netlink transaction each, and the real client's
/// SYN is dropped (retried a second later) each time.
#[test]
fn issue_27_red_a_grace_period_spares_the_source_in_the_kernel_for_its_length() {
    let mut lab = lab();
    lab.scanned_then_unblocked_with_grace(SCANNER, 600);
    // Spared at the unblock, for the grace period: the kernel never holds it in it.
    assert_eq!(
        lab.kernel.spared(),
        [(net(SCANNER), Duration::from_secs(600))]
    );
    // A grace period the kernel lost (its sets made anew): spared again at the first hold
    // heard, for what is left of it, not lifted packet by packet.
    lab.advance(Duration::from_secs(100));
    lab.kernel.clear_spared();
    lab.held(SCANNER, 902);
    assert!(!lab.kernel.is_held(ip(SCANNER)));
    assert_eq!(
        lab.kernel.spared(),
        [(net(SCANNER), Duration::from_secs(500))]
    );
}

/// Red team of issue 27: the administrator's SSH connection is established, and within the
/// second before the daemon reads it, forged probes from the administrator's address get it
/// held. The hold spares the established session, but not a second one: once the next reading
/// makes the administrator a protected peer (and the kernel's peers set skips it), its hold
/// is lifted too, not left to run its 5 s.
#[test]
fn issue_27_red_a_hold_of_a_source_that_becomes_a_protected_peer_is_lifted_at_the_reading() {
    let admin = "203.0.113.50";
    let mut lab = lab();
    // The connection is up; the daemon has not read it yet.
    lab.machine().established.push((ip(admin), 22, 51000));
    lab.held(admin, 902);
    assert!(lab.kernel.is_held(ip(admin)), "not known as a peer yet");
    lab.engine.take_effects();
    lab.second();
    let (facts, _) = lab.kernel.first_line_facts();
    assert_eq!(facts.unwrap().peers, [net(admin)]);
    assert!(
        !lab.kernel.is_held(ip(admin)),
        "lifted at the reading that made it a peer"
    );
    assert!(lab.says(&format!(
        "lifted the kernel's hold of {admin}: a protected peer (a conversation on port 22)"
    )));
    // A scanner's hold, no peer, stays.
    lab.held(SCANNER, 902);
    lab.second();
    assert!(lab.kernel.is_held(ip(SCANNER)));
}

/// Red team of issue 27: a hold whose packet the reader cannot read (IPv6 extension headers
/// past the 256 bytes the kernel copies: the kernel walks them all to the TCP header) was
/// counted by the reader and nothing else: the daemon never said it, and never lifted it, even
/// of a source it never lets be held. Such holds are said, folded, and the hold sets are read
/// at the next second, as for holds that went unheard.
#[test]
fn issue_27_red_holds_whose_packet_cannot_be_read_are_said_and_the_hold_sets_read() {
    let admin = "203.0.113.50";
    let mut lab = lab();
    lab.machine().established.push((ip(admin), 22, 51000));
    // Forged in the second before the reading that makes the administrator a peer.
    lab.kernel.hold(ip(admin), Proto::Tcp, 902, SYN);
    lab.kernel.hold(ip(SCANNER), Proto::Tcp, 903, SYN);
    lab.engine.holds_unreadable(2);
    assert!(lab.says("2 holds of the kernel's first line whose packet could not be read"));
    lab.second();
    assert!(!lab.kernel.is_held(ip(admin)), "a protected peer is lifted");
    assert!(lab.kernel.is_held(ip(SCANNER)), "a scanner's hold stays");
    assert!(lab.says(&format!(
        "lifted the kernel's hold of {admin}: a protected peer (a conversation on port 22)"
    )));
    assert_eq!(lab.outcomes().get("untracked"), Some(&1));
    assert_eq!(lab.outcomes().get("lifted-protected"), Some(&1));
}

/// Red team of issue 27: a flood of forged sources fills the first line's score or hold sets,
/// and the line fails open (design.md §3: blind for up to a minute after 65,536 new /64s).
/// The daemon still blocks a real scan from its capture, but it only showed the full sets in
/// `status` and metrics: nothing in the log said that the kernel had stopped counting. The
/// counters are read each second; their growth is said once, and the end of it a minute later.
#[test]
fn issue_27_red_a_first_line_blinded_by_full_sets_is_said_once_and_its_end() {
    let mut lab = lab();
    lab.second();
    lab.engine.take_effects();
    lab.kernel.set_first_line_counters(FirstLineCounters {
        score_full: 5000,
        hold_full: 0,
    });
    lab.second();
    assert!(lab.says(
        "the kernel's first line is full: 5000 probes not counted, 0 holds not made (a flood \
         of forged sources, most likely)"
    ));
    // The flood goes on: not said again.
    let mut said = Vec::new();
    for n in 1..=30 {
        lab.kernel.set_first_line_counters(FirstLineCounters {
            score_full: 5000 + n * 100,
            hold_full: n,
        });
        lab.second();
        said.extend(lab.said());
    }
    // A minute without growth: said that it counts again.
    for _ in 0..59 {
        lab.second();
        said.extend(lab.said());
    }
    assert!(
        !said.iter().any(|(_, l)| l.contains("first line")),
        "{said:#?}"
    );
    lab.second();
    assert!(lab.says("the kernel's first line counts again"));
}

/// Red team of issue 27 (third slice): a reload into a dry run takes attach mode's first line
/// out of service through a firewall opened for it, whose socket is not the old firewall's;
/// the old one's watcher, still running, took that for another program's deletion of the
/// never-block sets (which it now restores) and said "the ruleset changed under us" in the
/// dry run. The old watcher stops before the kernel changes.
#[test]
fn issue_27_red_a_reload_into_a_dry_run_stops_the_old_watcher_before_it_changes_the_kernel() {
    let attach = || {
        Backend::Nft(crate::config::nft::NftConfig::Attach {
            family: crate::config::nft::Family::Inet,
            table: crate::config::nft::NftName::new("filter").unwrap(),
            set4: Some(crate::config::nft::NftName::new("scansentry4").unwrap()),
            set6: None,
            first_line: Some(crate::config::nft::FirstLine {
                hold: HOLD,
                log_group: 2701,
            }),
        })
    };
    let mut c = config();
    c.backend = attach();
    let mut lab = lab_with(c.clone(), |_| {});
    lab.engine.firewall().watch(Box::new(|_| {})).unwrap();
    c.respond.dry_run = true;
    lab.engine.reconfigure(loaded(c, "/etc/new.toml")).unwrap();
    assert!(!lab.kernel.has_first_line());
    assert!(!lab.kernel.removed_while_watched());
}

/// Red team of issue 27 (finding A): a reload into dry run lifted the blocks from the kernel
/// but left the first line holding sources, unheard, with facts going stale: a dry run must
/// hold nobody. So does a move to another firewall (routes, attach mode).
#[test]
fn issue_27_red_a_reload_into_dry_run_or_to_routes_takes_the_first_line_out() {
    for into in ["dry run", "routes"] {
        let mut lab = lab();
        assert!(lab.kernel.has_first_line());
        lab.held("203.0.113.9", 902);
        let mut c = config();
        if into == "dry run" {
            c.respond.dry_run = true;
        } else {
            c.backend = Backend::Route;
        }
        lab.engine.reconfigure(loaded(c, "/etc/new.toml")).unwrap();
        assert!(!lab.kernel.has_first_line(), "{into}: the first line stays");
        assert!(
            !lab.kernel.is_held(ip("203.0.113.9")),
            "{into}: a hold stays"
        );
    }
}
