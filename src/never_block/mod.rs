//! The never-block list: addresses and networks that scansentry must never act on, each with the
//! reason it is there. **Pure**: [`compose`] builds it from what the host read.
//!
//! Lookups ([`NeverBlockList::contains`]) run on every probe before any per-source state exists, so
//! they are a binary search over merged ranges, allocation-free. [`NeverBlockList::why`] answers the
//! administrator's question (which entries, and why) and may be slower.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:198.51.100.7`) are looked up as the IPv4 address they carry.

pub mod discover;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

/// Why an address is on the never-block list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Loopback (127.0.0.0/8, ::1).
    Loopback,
    /// An address of one of this host's interfaces.
    Interface(String),
    /// A default gateway, on the named interface.
    Gateway(String),
    /// A nameserver, from the named file.
    Nameserver(PathBuf),
    /// The `ignore` list of the configuration file.
    Config,
    /// A line of the never-block file.
    IgnoreFile {
        /// The file.
        path: PathBuf,
        /// Its 1-based line number.
        line: usize,
    },
    /// A NATS server of `[fleet] servers`, by its URL.
    FleetServer(String),
    /// A member of the fleet, as `[fleet] members` gives it.
    FleetMember,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Loopback => f.write_str("loopback"),
            Reason::Interface(name) => write!(f, "address of interface {name}"),
            Reason::Gateway(name) => write!(f, "default gateway on {name}"),
            Reason::Nameserver(path) => write!(f, "nameserver in {}", path.display()),
            Reason::Config => f.write_str("[never-block] addresses in the configuration"),
            Reason::IgnoreFile { path, line } => {
                write!(f, "never-block file {} line {line}", path.display())
            }
            Reason::FleetServer(url) => write!(f, "fleet server {url}"),
            Reason::FleetMember => f.write_str("fleet member"),
        }
    }
}

/// One never-block entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The address (as a host-length prefix) or network.
    pub net: IpNet,
    /// Why it is there.
    pub reason: Reason,
}

/// A set of never-block entries with fast membership tests.
#[derive(Clone, Debug, Default)]
pub struct NeverBlockList {
    entries: Vec<Entry>,
    /// Merged, sorted, non-overlapping inclusive ranges.
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl NeverBlockList {
    /// The list with the loopback networks only.
    pub fn loopback() -> Self {
        NeverBlockList::new(loopback_entries())
    }

    /// Builds a list from its entries (duplicates and overlaps are fine).
    pub fn new(entries: Vec<Entry>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for e in &entries {
            match e.net.trunc() {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        NeverBlockList {
            entries,
            v4: merge(v4),
            v6: merge(v6),
        }
    }

    /// Whether `ip` is on the list.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(a) => covered(&self.v4, u32::from(a)),
            IpAddr::V6(a) => covered(&self.v6, u128::from(a)),
        }
    }

    /// Whether any address of `net` is on the list (so blocking `net` would block one of them).
    pub fn overlaps(&self, net: IpNet) -> bool {
        match net.trunc() {
            IpNet::V4(n) => overlapping(&self.v4, u32::from(n.network()), u32::from(n.broadcast())),
            IpNet::V6(n) => {
                overlapping(&self.v6, u128::from(n.network()), u128::from(n.broadcast()))
            }
        }
    }

    /// Every entry that covers `ip`, in the order they were given.
    pub fn why(&self, ip: IpAddr) -> impl Iterator<Item = &Entry> {
        let ip = ip.to_canonical();
        self.entries.iter().filter(move |e| e.net.contains(&ip))
    }

    /// All entries, in the order they were given.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The list as it is shown (`sentryctl never-block`, `sentryd --never-block`): each
    /// network once, in the order first given, with every reason for it (`::1`: `loopback;
    /// address of interface lo`).
    pub fn listed(&self) -> Vec<(IpNet, String)> {
        let mut listed: Vec<(IpNet, String)> = Vec::with_capacity(self.entries.len());
        let mut at: std::collections::HashMap<IpNet, usize> =
            std::collections::HashMap::with_capacity(self.entries.len());
        for e in &self.entries {
            let reason = e.reason.to_string();
            match at.get(&e.net) {
                Some(&i) if !listed[i].1.split("; ").any(|r| r == reason) => {
                    listed[i].1.push_str("; ");
                    listed[i].1.push_str(&reason);
                }
                Some(_) => {}
                None => {
                    at.insert(e.net, listed.len());
                    listed.push((e.net, reason));
                }
            }
        }
        listed
    }
}

/// Parses a never-block file: one address or CIDR per line; `#` starts a comment; blank lines are
/// fine. Returns the entries, and a message for each of the first [`MAX_FILE_WARNINGS`] bad
/// lines (with its number, quoting at most 64 characters of it), then one counting the rest;
/// the rest of the file still loads.
pub fn parse_file(text: &str, path: &std::path::Path) -> (Vec<Entry>, Vec<String>) {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let mut skipped = 0usize;
    for (i, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or_default().trim();
        if content.is_empty() {
            continue;
        }
        match crate::config::parse_net(content) {
            Some(net) => entries.push(Entry {
                net,
                reason: Reason::IgnoreFile {
                    path: path.to_path_buf(),
                    line: i + 1,
                },
            }),
            None if problems.len() < MAX_FILE_WARNINGS => {
                let shown: String = content.chars().take(SHOWN_CHARS).collect();
                let more = if shown.len() < content.len() {
                    "…"
                } else {
                    ""
                };
                // Quoted as Rust quotes it: a control character in the file is escaped.
                let quoted = format!("{shown}{more}");
                problems.push(format!(
                    "{}:{}: {quoted:?} is not an IP address or CIDR; line skipped",
                    path.display(),
                    i + 1
                ));
            }
            None => skipped += 1,
        }
    }
    if skipped > 0 {
        problems.push(format!(
            "{}: {skipped} more lines skipped (not an IP address or CIDR)",
            path.display()
        ));
    }
    (entries, problems)
}

/// The most bad lines of the never-block file said one by one; the rest are counted in one
/// more warning.
pub const MAX_FILE_WARNINGS: usize = 16;

/// How much of a bad line a warning quotes, in characters.
const SHOWN_CHARS: usize = 64;

/// The never-block file named by the configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read never-block file {}", path.display())]
pub struct NeverBlockFileError {
    /// The file.
    pub path: PathBuf,
    /// What the OS said.
    #[source]
    pub source: std::io::Error,
}

/// The never-block file as the host read it: its path, and its text or why it could not be
/// read.
pub type FileRead = (PathBuf, std::io::Result<String>);

/// What fleet mode puts on the never-block list: the servers given by address, and the
/// members of `[fleet] members` (the administrator's word; the addresses members claim in
/// their heartbeats are not, see `engine::fleet`).
pub fn fleet_entries(fleet: &crate::config::fleet::FleetConfig) -> Vec<Entry> {
    fleet
        .server_addresses()
        .into_iter()
        .map(|(addr, url)| Entry {
            net: addr.into(),
            reason: Reason::FleetServer(url),
        })
        .chain(fleet.members.iter().map(|&net| Entry {
            net,
            reason: Reason::FleetMember,
        }))
        .collect()
}

/// Composes the never-block list: loopback, the `discovered` entries (the host's own
/// addresses, gateways, nameservers), the fleet's servers given by address and its members,
/// the configuration's addresses, and the lines of the never-block file as the host read it
/// (`file`, when the configuration names one). **Pure**: the daemon, a replay, the start's
/// check and the engine's tests all build the list here. Bad lines of the file come back as
/// warnings; the rest still loads.
///
/// # Errors
///
/// When the named file could not be read (the default one may be missing).
pub fn compose(
    config: &crate::config::Config,
    discovered: Vec<Entry>,
    file: Option<FileRead>,
) -> Result<(NeverBlockList, Vec<String>), NeverBlockFileError> {
    let mut entries = loopback_entries();
    entries.extend(discovered);
    if let Some(fleet) = &config.fleet {
        entries.extend(fleet_entries(fleet));
    }
    entries.extend(config.never_block.addresses.iter().map(|&net| Entry {
        net,
        reason: Reason::Config,
    }));
    let mut warnings = Vec::new();
    if let Some((path, text)) = file {
        let text = match text {
            Ok(text) => text,
            // The default file is optional: without a package, nobody has made it.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && path.as_os_str() == crate::config::DEFAULT_IGNORE_FILE =>
            {
                String::new()
            }
            Err(source) => return Err(NeverBlockFileError { path, source }),
        };
        let (more, problems) = parse_file(&text, &path);
        entries.extend(more);
        warnings.extend(problems);
    }
    warnings.extend(wide_entry_warnings(&entries));
    Ok((NeverBlockList::new(entries), warnings))
}

/// The widest an administrator's entry may be without a warning: an IPv4 /8, an IPv6 /16.
const WIDEST_QUIET: (u8, u8) = (8, 16);

/// A warning for each entry the administrator gave (`[never-block] addresses`, the file,
/// `[fleet] members`) that is wider than an IPv4 /8 or an IPv6 /16: it is kept (it may be
/// meant), but nothing in it will ever be blocked, and `0.0.0.0/0` or `::/0` turns blocking
/// off for its family. Each network is said once, at its first entry; at most
/// [`MAX_FILE_WARNINGS`] are, then one more counts the rest. **Pure.**
fn wide_entry_warnings(entries: &[Entry]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut warnings = Vec::new();
    let mut more = 0usize;
    for entry in entries {
        let given = matches!(
            entry.reason,
            Reason::Config | Reason::IgnoreFile { .. } | Reason::FleetMember
        );
        let (family, prefix, quiet) = match entry.net {
            IpNet::V4(n) => ("IPv4", n.prefix_len(), WIDEST_QUIET.0),
            IpNet::V6(n) => ("IPv6", n.prefix_len(), WIDEST_QUIET.1),
        };
        let net = entry.net.trunc();
        if !given || prefix >= quiet || !seen.insert(net) {
            continue;
        }
        if warnings.len() == MAX_FILE_WARNINGS {
            more += 1;
            continue;
        }
        let covers = if prefix == 0 {
            format!("covers every {family} address: nothing {family} will be blocked")
        } else {
            format!(
                "covers 1/{} of the {family} address space ({}%): nothing in it will be blocked",
                1u32 << prefix,
                percent_of_two_to_the(prefix)
            )
        };
        warnings.push(format!("{}: {} {covers}", entry.reason, entry.net));
    }
    if more > 0 {
        warnings.push(format!(
            "{more} more never-block entries wider than an IPv4 /8 or an IPv6 /16"
        ));
    }
    warnings
}

/// 100 / 2^`p` (for `p` below 16) with at most three decimals, trailing zeros dropped:
/// `50`, `12.5`, `0.781`.
fn percent_of_two_to_the(p: u8) -> String {
    let thousandths = 100_000u32 >> p;
    let (whole, frac) = (thousandths / 1000, thousandths % 1000);
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{frac:03}")
            .trim_end_matches('0')
            .to_string()
    }
}

/// 127.0.0.0/8 and ::1, always on the list.
pub fn loopback_entries() -> Vec<Entry> {
    ["127.0.0.0/8", "::1/128"]
        .into_iter()
        .map(|s| Entry {
            net: s.parse().expect("literal networks parse"),
            reason: Reason::Loopback,
        })
        .collect()
}

fn merge<T: Ord + Copy + PlusOne>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match out.last_mut() {
            // Overlapping or adjacent (`prev_hi + 1 == lo`): extend.
            Some((_, prev_hi)) if lo <= prev_hi.plus_one() => {
                *prev_hi = (*prev_hi).max(hi);
            }
            _ => out.push((lo, hi)),
        }
    }
    out
}

fn covered<T: Ord + Copy>(ranges: &[(T, T)], x: T) -> bool {
    // The last range starting at or before x.
    let i = ranges.partition_point(|&(lo, _)| lo <= x);
    i > 0 && x <= ranges[i - 1].1
}

fn overlapping<T: Ord + Copy>(ranges: &[(T, T)], lo: T, hi: T) -> bool {
    let i = ranges.partition_point(|&(start, _)| start <= hi);
    i > 0 && ranges[i - 1].1 >= lo
}

/// `x + 1`, saturating, for [`merge`].
trait PlusOne {
    fn plus_one(self) -> Self;
}

impl PlusOne for u32 {
    fn plus_one(self) -> u32 {
        self.saturating_add(1)
    }
}

impl PlusOne for u128 {
    fn plus_one(self) -> u128 {
        self.saturating_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(nets: &[&str]) -> NeverBlockList {
        NeverBlockList::new(
            nets.iter()
                .map(|s| Entry {
                    net: s.parse().unwrap(),
                    reason: Reason::Config,
                })
                .collect(),
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_and_cidrs_of_both_families() {
        let l = list(&[
            "198.51.100.1/32",
            "203.0.113.0/25",
            "2001:db8:1::/48",
            "2001:db8::7/128",
        ]);
        for yes in [
            "198.51.100.1",
            "203.0.113.0",
            "203.0.113.127",
            "2001:db8:1:ffff::1",
            "2001:db8::7",
            "::ffff:203.0.113.5",
        ] {
            assert!(l.contains(ip(yes)), "{yes} should be on the list");
        }
        for no in [
            "198.51.100.2",
            "203.0.113.128",
            "2001:db8:2::1",
            "2001:db8::8",
            "0.0.0.0",
            "255.255.255.255",
        ] {
            assert!(!l.contains(ip(no)), "{no} should not be on the list");
        }
    }

    #[test]
    fn overlapping_and_adjacent_entries_merge_without_losing_coverage() {
        let l = list(&["198.51.100.0/25", "198.51.100.128/25", "198.51.100.7/32"]);
        assert_eq!(l.v4.len(), 1);
        assert!(l.contains(ip("198.51.100.255")));
        let all = list(&["0.0.0.0/0", "::/0"]);
        assert!(all.contains(ip("255.255.255.255")));
        assert!(all.contains(ip("ffff::1")));
    }

    #[test]
    fn the_list_shown_names_each_network_once_with_every_reason() {
        let mut entries = loopback_entries();
        for (net, reason) in [
            ("::1/128", Reason::Interface("lo".into())),
            ("127.0.0.1/32", Reason::Interface("lo".into())),
            (
                "127.0.0.1/32",
                Reason::Nameserver("/etc/resolv.conf".into()),
            ),
            ("127.0.0.1/32", Reason::Interface("lo".into())),
        ] {
            entries.push(Entry {
                net: net.parse().unwrap(),
                reason,
            });
        }
        let shown: Vec<(String, String)> = NeverBlockList::new(entries)
            .listed()
            .into_iter()
            .map(|(net, reason)| (net.to_string(), reason))
            .collect();
        let expected = [
            ("127.0.0.0/8", "loopback"),
            ("::1/128", "loopback; address of interface lo"),
            (
                "127.0.0.1/32",
                "address of interface lo; nameserver in /etc/resolv.conf",
            ),
        ];
        assert_eq!(shown, expected.map(|(n, r)| (n.to_string(), r.to_string())));
    }

    #[test]
    fn why_names_every_matching_entry() {
        let mut entries = loopback_entries();
        entries.push(Entry {
            net: "127.0.0.53/32".parse().unwrap(),
            reason: Reason::Nameserver("/etc/resolv.conf".into()),
        });
        let l = NeverBlockList::new(entries);
        let reasons: Vec<String> = l
            .why(ip("127.0.0.53"))
            .map(|e| e.reason.to_string())
            .collect();
        assert_eq!(reasons, ["loopback", "nameserver in /etc/resolv.conf"]);
        assert_eq!(l.why(ip("203.0.113.1")).count(), 0);
    }

    /// Red team of issue 25: every bad line of the never-block file was a warning of its own,
    /// its whole text quoted, said at every reload and every change of the host's routes: a
    /// file of 100,000 junk lines, or one line of a megabyte, went to the log whole each time.
    #[test]
    fn issue_25_a_hostile_never_block_file_is_said_in_a_few_short_warnings() {
        let path = std::path::Path::new("/etc/scansentry/ignore");
        let mut text = "x\n".repeat(100_000);
        text.push_str(&"y".repeat(1 << 20));
        text.push_str("\n198.51.100.7\n");
        let (entries, problems) = parse_file(&text, path);
        assert_eq!(entries.len(), 1, "the good line still loads");
        assert_eq!(
            problems.len(),
            MAX_FILE_WARNINGS + 1,
            "{:?}",
            &problems[..3]
        );
        assert_eq!(
            problems.last().map(String::as_str),
            Some("/etc/scansentry/ignore: 99985 more lines skipped (not an IP address or CIDR)")
        );
        assert!(
            problems.iter().all(|p| p.len() < 200),
            "a warning quotes a line whole"
        );
        let long = parse_file(&"z".repeat(1 << 20), path).1;
        assert_eq!(
            long,
            [format!(
                "/etc/scansentry/ignore:1: \"{}…\" is not an IP address or CIDR; line skipped",
                "z".repeat(64)
            )]
        );
    }

    /// Red team of issue 25: `0.0.0.0/0` in the never-block file (or `::/0` in the
    /// configuration) quietly turned blocking off for its family.
    #[test]
    fn issue_25_a_never_block_entry_wider_than_a_slash_8_or_16_is_said() {
        let text = "[never-block]\naddresses = [\"::/0\", \"2001:db8::/32\", \"198.0.0.0/7\"]\n";
        let config = crate::config::from_toml(text, std::path::Path::new("c.toml")).unwrap();
        let file = "0.0.0.0/0\n10.0.0.0/8\n0.0.0.0/1\n2000::/3\n2001::/16\n0.0.0.0/0\n";
        let file = Some((PathBuf::from("/etc/x"), Ok(file.into())));
        let discovered = vec![Entry {
            net: "0.0.0.0/0".parse().unwrap(),
            reason: Reason::Gateway("eth0".into()),
        }];
        let (list, warnings) = compose(&config, discovered, file).unwrap();
        assert_eq!(
            warnings,
            [
                "[never-block] addresses in the configuration: ::/0 covers every IPv6 address: \
                 nothing IPv6 will be blocked",
                "[never-block] addresses in the configuration: 198.0.0.0/7 covers 1/128 of the \
                 IPv4 address space (0.781%): nothing in it will be blocked",
                "never-block file /etc/x line 1: 0.0.0.0/0 covers every IPv4 address: nothing \
                 IPv4 will be blocked",
                "never-block file /etc/x line 3: 0.0.0.0/1 covers 1/2 of the IPv4 address space \
                 (50%): nothing in it will be blocked",
                "never-block file /etc/x line 4: 2000::/3 covers 1/8 of the IPv6 address space \
                 (12.5%): nothing in it will be blocked",
            ],
            "a /8, a /16, a discovered entry and a repeated one are not said"
        );
        assert!(list.contains(ip("203.0.113.7")), "the entries are kept");
        assert!(list.contains(ip("2001:db8::7")));
    }

    #[test]
    fn wide_entries_are_said_a_bounded_number_of_times() {
        let entries: Vec<Entry> = (0..100u32)
            .map(|i| Entry {
                net: IpNet::new(std::net::Ipv6Addr::from(u128::from(i) << 116).into(), 12).unwrap(),
                reason: Reason::Config,
            })
            .collect();
        let warnings = wide_entry_warnings(&entries);
        assert_eq!(warnings.len(), MAX_FILE_WARNINGS + 1);
        assert_eq!(
            warnings[0],
            "[never-block] addresses in the configuration: ::/12 covers 1/4096 of the IPv6 \
             address space (0.024%): nothing in it will be blocked"
        );
        assert_eq!(
            warnings.last().unwrap(),
            "84 more never-block entries wider than an IPv4 /8 or an IPv6 /16"
        );
        assert_eq!(percent_of_two_to_the(15), "0.003");
    }

    #[test]
    fn ignore_file_keeps_good_lines_and_reports_bad_ones_by_number() {
        let path = std::path::Path::new("/etc/scansentry/ignore");
        let text = "# gateways\n198.51.100.1\n\n2001:db8::/48  # lab\nnot-an-ip\n203.0.113.0/33\n";
        let (entries, problems) = parse_file(text, path);
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[1].reason.to_string(),
            "never-block file /etc/scansentry/ignore line 4"
        );
        assert_eq!(
            problems,
            [
                "/etc/scansentry/ignore:5: \"not-an-ip\" is not an IP address or CIDR; line skipped",
                "/etc/scansentry/ignore:6: \"203.0.113.0/33\" is not an IP address or CIDR; line skipped",
            ]
        );
    }

    #[test]
    fn overlaps_detects_a_network_that_would_cover_an_entry() {
        let l = list(&["2001:db8::1/128", "198.51.100.1/32"]);
        assert!(l.overlaps("2001:db8::/64".parse().unwrap()));
        assert!(!l.overlaps("2001:db8:0:1::/64".parse().unwrap()));
        assert!(l.overlaps("198.51.100.0/24".parse().unwrap()));
        assert!(!l.overlaps("203.0.113.0/24".parse().unwrap()));
    }

    #[test]
    fn lookup_agrees_with_a_linear_scan() {
        // A deterministic pseudo-random mix of networks, checked against IpNet::contains.
        let mut x: u32 = 0x1234_5678;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let nets: Vec<String> = (0..200)
            .map(|_| {
                let a = std::net::Ipv4Addr::from(next() & 0xffff_00ff | 0xc633_0000);
                format!("{a}/{}", 16 + next() % 17)
            })
            .collect();
        let refs: Vec<&str> = nets.iter().map(String::as_str).collect();
        let l = list(&refs);
        for _ in 0..20_000 {
            let a = IpAddr::V4(std::net::Ipv4Addr::from(next() & 0xffff_00ff | 0xc633_0000));
            let linear = l.entries().iter().any(|e| e.net.contains(&a));
            assert_eq!(l.contains(a), linear, "{a}");
        }
    }

    #[test]
    fn the_default_file_may_be_missing_a_named_one_may_not() {
        use crate::config::{Config, DEFAULT_IGNORE_FILE};
        let missing = |file: &str| {
            Some((
                PathBuf::from(file),
                Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
            ))
        };
        let (list, warnings) =
            compose(&Config::default(), Vec::new(), missing(DEFAULT_IGNORE_FILE)).unwrap();
        assert_eq!(list.entries().len(), loopback_entries().len());
        assert!(warnings.is_empty());
        let err = compose(
            &Config::default(),
            Vec::new(),
            missing("/nonexistent/scansentry-ignore"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read never-block file /nonexistent/scansentry-ignore"
        );
    }

    #[test]
    fn the_fleet_the_configuration_and_the_file_are_composed() {
        let text = "[never-block]\naddresses = [\"198.51.100.9\"]\n[fleet]\nenabled = true\n\
                    servers = [\"nats://203.0.113.4:4222\"]\nmembers = [\"203.0.113.64/26\"]\n\
                    insecure = true\nhost = \"web-1\"\n";
        let config = crate::config::from_toml(text, std::path::Path::new("fleet.toml")).unwrap();
        let file = Some((
            PathBuf::from("/etc/x"),
            Ok("198.51.100.77\nnot an address\n".into()),
        ));
        let (list, warnings) = compose(&config, Vec::new(), file).unwrap();
        let listed = list.listed();
        let reason = |net: &str| {
            let net: IpNet = net.parse().unwrap();
            listed
                .iter()
                .find(|(n, _)| *n == net)
                .map(|(_, r)| r.clone())
        };
        assert_eq!(
            reason("203.0.113.4/32").as_deref(),
            Some("fleet server nats://203.0.113.4:4222")
        );
        assert_eq!(reason("203.0.113.64/26").as_deref(), Some("fleet member"));
        assert!(reason("198.51.100.9/32").is_some());
        assert_eq!(
            reason("198.51.100.77/32").as_deref(),
            Some("never-block file /etc/x line 1")
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }
}
