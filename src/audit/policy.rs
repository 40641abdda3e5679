//! The audit policy and its findings. **Pure.**
//!
//! Each address (or every address) has five lists of rules, four of them samhain's: `required`
//! services must be open; `optional` ones may be; `ignore`d ones are never reported; `skip`ped
//! ones are not even looked at (and not kept in the history). The fifth, `expect`, names what
//! listens here (the packages seed it at install from what listened then): open and expected is
//! silent, expected and not open is reported as gone.
//!
//! The audit's first look is its **baseline**: what listened then is known. A service open now
//! and neither in the baseline nor in a list is reported as new; one of the baseline not open
//! now, as gone. [`Policy::check`] gives the state (what `sentryctl audit` prints, exit 1 when
//! any); [`fresh`] keeps those not already found by the audit before (what the daemon logs, once
//! each). A rule is `port/proto` (`22/tcp`) or `rpcname/proto` (`nfs/udp`).

use std::net::IpAddr;
use std::ops::RangeInclusive;

use serde::Serialize;

use super::{Entry, Snapshot};
use crate::wire::Proto;

/// What a rule names: a port, or an RPC program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    /// A port number.
    Port(u16),
    /// An RPC program's name (as `/etc/rpc` gives it, or `RPC_<number>`).
    Rpc(String),
}

/// `22/tcp` or `nfs/udp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The port or program.
    pub what: What,
    /// The protocol.
    pub proto: Proto,
}

impl Rule {
    /// Whether `e` is what the rule names.
    pub fn matches(&self, e: &Entry) -> bool {
        self.proto == e.proto
            && match &self.what {
                What::Port(p) => *p == e.port,
                What::Rpc(name) => e.rpc.as_deref() == Some(name.as_str()),
            }
    }
}

impl std::str::FromStr for Rule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (what, proto) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?}: write it as port/proto or rpcname/proto"))?;
        let proto = match proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            other => return Err(format!("{text:?}: {other:?} is not tcp or udp")),
        };
        let what = if what.bytes().all(|b| b.is_ascii_digit()) {
            What::Port(
                what.parse()
                    .map_err(|_| format!("{text:?}: {what} is not a port"))?,
            )
        } else if !what.is_empty()
            && what
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        {
            What::Rpc(what.to_string())
        } else {
            return Err(format!(
                "{text:?}: {what:?} is not a port or an RPC program name"
            ));
        };
        Ok(Rule { what, proto })
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.what {
            What::Port(p) => write!(f, "{p}/{}", self.proto.as_str()),
            What::Rpc(n) => write!(f, "{n}/{}", self.proto.as_str()),
        }
    }
}

/// The five lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lists {
    /// Listen here: silent when open, gone when not.
    pub expect: Vec<Rule>,
    /// Must be open.
    pub required: Vec<Rule>,
    /// May be open.
    pub optional: Vec<Rule>,
    /// Never reported.
    pub ignore: Vec<Rule>,
    /// Not looked at.
    pub skip: Vec<Rule>,
}

/// The whole policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Look at TCP.
    pub tcp: bool,
    /// Look at UDP.
    pub udp: bool,
    /// Only ports in this range are looked at.
    pub ports: RangeInclusive<u16>,
    /// For every address.
    pub all: Lists,
    /// For one address each (on top of `all`).
    pub per_address: Vec<(IpAddr, Lists)>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            tcp: true,
            udp: true,
            ports: 1..=65535,
            all: Lists::default(),
            per_address: Vec::new(),
        }
    }
}

/// Something the audit reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "finding", rename_all = "kebab-case")]
pub enum Finding {
    /// Open, and in no list of the policy.
    New {
        /// The service.
        entry: Entry,
    },
    /// Required, and not open.
    Missing {
        /// The address it is required on (`None`: any address).
        host: Option<IpAddr>,
        /// The rule.
        rule: String,
    },
    /// Open on the same port as before, by another process.
    Restarted {
        /// The service now.
        entry: Entry,
        /// The process before.
        old_pid: u32,
    },
    /// An RPC program on another port than before.
    Moved {
        /// The service now.
        entry: Entry,
        /// Its port before.
        old_port: u16,
    },
    /// In the baseline (the audit's first look), and not open now.
    Gone {
        /// The service as the baseline saw it.
        entry: Entry,
    },
    /// Expected, and not open.
    NotOpen {
        /// The address it is expected on (`None`: any address).
        host: Option<IpAddr>,
        /// The rule.
        rule: String,
    },
}

/// A finding's kind and what it is about: a service, or a rule on an address.
#[derive(PartialEq, Eq)]
enum Identity<'a> {
    Service(u8, (IpAddr, Proto, u16)),
    Rule(u8, Option<IpAddr>, &'a str),
}

/// How loud a finding is: a service gone is information, the rest is reported at the
/// configured severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loudness {
    /// At `[audit] severity`.
    Severity,
    /// At info.
    Info,
}

impl Finding {
    /// Its word, as its `finding` key says it: `new`, `missing`, `restarted`, `moved`,
    /// `gone`, `not-open`.
    pub fn word(&self) -> &'static str {
        match self {
            Finding::New { .. } => "new",
            Finding::Missing { .. } => "missing",
            Finding::Restarted { .. } => "restarted",
            Finding::Moved { .. } => "moved",
            Finding::Gone { .. } => "gone",
            Finding::NotOpen { .. } => "not-open",
        }
    }

    /// The address and port (`22/tcp`) it is about, when it names them.
    pub fn about(&self) -> (Option<IpAddr>, Option<String>) {
        match self {
            Finding::New { entry }
            | Finding::Restarted { entry, .. }
            | Finding::Moved { entry, .. }
            | Finding::Gone { entry } => (Some(entry.host), Some(entry.port_label())),
            Finding::Missing { host, .. } | Finding::NotOpen { host, .. } => (*host, None),
        }
    }

    /// One line for logs: `new: 198.51.100.1 8080/tcp maybe_http-alt (www-data pid 812 /usr/sbin/nginx)`.
    pub fn line(&self) -> String {
        let service = |e: &Entry| {
            let mut s = format!("{} {}", e.host, e.port_label());
            if let Some(n) = &e.name {
                s.push(' ');
                s.push_str(n);
            }
            if let Some(p) = &e.process {
                // The user and the path are the process's: one line, whatever they hold.
                let one_line = crate::text::one_line;
                s.push_str(&format!(" ({} pid {}", one_line(&p.user), p.pid));
                if let Some(exe) = &p.exe {
                    s.push(' ');
                    s.push_str(&one_line(exe));
                }
                s.push(')');
            }
            s
        };
        match self {
            Finding::New { entry } => format!("new: {}", service(entry)),
            Finding::Missing { host, rule } => match host {
                Some(h) => format!("missing: {rule} on {h} is required"),
                None => format!("missing: {rule} is required"),
            },
            Finding::Restarted { entry, old_pid } => {
                format!("restarted: {} (was pid {old_pid})", service(entry))
            }
            Finding::Moved { entry, old_port } => {
                format!("moved: {} (was port {old_port})", service(entry))
            }
            Finding::Gone { entry } => format!("gone: {}", service(entry)),
            Finding::NotOpen { host, rule } => match host {
                Some(h) => format!("gone: {rule} on {h} is expected, and not open"),
                None => format!("gone: {rule} is expected, and not open"),
            },
        }
    }

    /// A new service, a missing one, a restart or a move: at the configured severity; a service
    /// gone: at info.
    pub fn loudness(&self) -> Loudness {
        match self {
            Finding::Gone { .. } | Finding::NotOpen { .. } => Loudness::Info,
            _ => Loudness::Severity,
        }
    }

    /// What the finding is about, whatever the process: the same identity in two audits is the
    /// same finding.
    fn identity(&self) -> Identity<'_> {
        match self {
            Finding::New { entry } => Identity::Service(0, entry.key()),
            Finding::Missing { host, rule } => Identity::Rule(1, *host, rule),
            Finding::Restarted { entry, .. } => Identity::Service(2, entry.key()),
            Finding::Moved { entry, .. } => Identity::Service(3, entry.key()),
            Finding::Gone { entry } => Identity::Service(4, entry.key()),
            Finding::NotOpen { host, rule } => Identity::Rule(5, *host, rule),
        }
    }

    /// A restart or a move: an event between two audits, not a state that lasts.
    fn is_event(&self) -> bool {
        matches!(self, Finding::Restarted { .. } | Finding::Moved { .. })
    }
}

/// The findings of `now` that the audit before (whose findings are `before`) had not found:
/// what the daemon logs, so that a state is said once, when it begins. Restarts and moves are
/// events between two audits, always fresh.
pub fn fresh(now: Vec<Finding>, before: &[Finding]) -> Vec<Finding> {
    now.into_iter()
        .filter(|f| f.is_event() || !before.iter().any(|b| b.identity() == f.identity()))
        .collect()
}

/// The rules an `expect` list would need to name what `now` has open: the RPC program's name
/// when rpcbind gave one (its port may change at the next start), else the port; by protocol,
/// then port, then name, without duplicates.
pub fn expect_list(now: &Snapshot) -> Vec<Rule> {
    let mut rules: Vec<Rule> = now
        .entries
        .iter()
        .map(|e| Rule {
            what: match &e.rpc {
                Some(program) => What::Rpc(program.clone()),
                None => What::Port(e.port),
            },
            proto: e.proto,
        })
        .collect();
    let order = |r: &Rule| {
        let what = match &r.what {
            What::Port(p) => (0, *p, String::new()),
            What::Rpc(n) => (1, 0, n.clone()),
        };
        (r.proto.as_str(), what)
    };
    rules.sort_by_key(order);
    rules.dedup();
    rules
}

impl Policy {
    /// The lists that apply to a service on `host`: those of every address, and those of
    /// `host`; for a service bound to every address, those of every listed address too.
    fn lists_for(&self, host: IpAddr) -> impl Iterator<Item = &Lists> {
        std::iter::once(&self.all).chain(
            self.per_address
                .iter()
                .filter(move |(a, _)| *a == host || host.is_unspecified())
                .map(|(_, l)| l),
        )
    }

    /// Whether the audit looks at `e` at all: its protocol is on, its port in range, and no
    /// `skip` rule names it.
    pub fn looks_at(&self, e: &Entry) -> bool {
        let proto_on = match e.proto {
            Proto::Tcp => self.tcp,
            Proto::Udp => self.udp,
            // The audit lists TCP and UDP services only.
            Proto::Sctp | Proto::Ip => false,
        };
        proto_on
            && self.ports.contains(&e.port)
            && !self
                .lists_for(e.host)
                .any(|l| l.skip.iter().any(|r| r.matches(e)))
    }

    /// The findings for `now` (whose entries the caller has already passed through
    /// [`Policy::looks_at`]), against the audit's first look `baseline` (for the first audit:
    /// `now` itself) and the previous local snapshot if there is one.
    pub fn check(
        &self,
        now: &Snapshot,
        before: Option<&Snapshot>,
        baseline: &Snapshot,
    ) -> Vec<Finding> {
        let mut findings = Vec::new();
        for e in &now.entries {
            if self.named(e, |l| &l.ignore) {
                continue;
            }
            let listed = [
                self.named(e, |l| &l.required),
                self.named(e, |l| &l.optional),
                self.named(e, |l| &l.expect),
            ];
            if !listed.contains(&true) && !known(baseline, e) {
                findings.push(Finding::New { entry: e.clone() });
            }
        }
        let lists = std::iter::once((None, &self.all))
            .chain(self.per_address.iter().map(|(h, l)| (Some(*h), l)));
        for (host, lists) in lists.clone() {
            for rule in &lists.required {
                if !open(now, rule, host) {
                    findings.push(Finding::Missing {
                        host,
                        rule: rule.to_string(),
                    });
                }
            }
        }
        // Gone from the baseline: unless required (then missing says it) or ignored.
        for e in &baseline.entries {
            if !known(now, e) && !self.named(e, |l| &l.ignore) && !self.named(e, |l| &l.required) {
                findings.push(Finding::Gone { entry: e.clone() });
            }
        }
        for (host, lists) in lists {
            for rule in &lists.expect {
                let said =
                    |f: &Finding| matches!(f, Finding::Gone { entry } if rule.matches(entry));
                if !open(now, rule, host) && !findings.iter().any(said) {
                    findings.push(Finding::NotOpen {
                        host,
                        rule: rule.to_string(),
                    });
                }
            }
        }
        if let Some(before) = before {
            findings.extend(changed(now, before));
        }
        findings
    }

    /// Whether a rule of the list `pick` names `e`, in the lists that apply to its address.
    fn named(&self, e: &Entry, pick: fn(&Lists) -> &Vec<Rule>) -> bool {
        self.lists_for(e.host)
            .any(|l| pick(l).iter().any(|r| r.matches(e)))
    }
}

/// Whether `rule` is open in `now` on `host` (or on every address of its family), or, for
/// `None`, anywhere.
fn open(now: &Snapshot, rule: &Rule, host: Option<IpAddr>) -> bool {
    now.entries.iter().any(|e| {
        rule.matches(e)
            && host.is_none_or(|h| {
                e.host == h || (e.host.is_unspecified() && e.host.is_ipv4() == h.is_ipv4())
            })
    })
}

/// Whether `snapshot` has `e`'s service: on the same address, protocol and port, or the same RPC
/// program on the same address and protocol (its port may change when it restarts).
fn known(snapshot: &Snapshot, e: &Entry) -> bool {
    snapshot.entries.iter().any(|b| {
        b.key() == e.key()
            || (e.rpc.is_some() && b.rpc == e.rpc && b.host == e.host && b.proto == e.proto)
    })
}

/// Restarts and moves since `before`.
fn changed(now: &Snapshot, before: &Snapshot) -> Vec<Finding> {
    let mut findings = Vec::new();
    for e in &now.entries {
        let was = before.entries.iter().find(|b| b.key() == e.key());
        if let (Some(was), Some(p)) = (was.and_then(|b| b.process.as_ref()), &e.process)
            && was.pid != p.pid
        {
            findings.push(Finding::Restarted {
                entry: e.clone(),
                old_pid: was.pid,
            });
        }
        if let Some(program) = &e.rpc {
            let same_program = |b: &&Entry| {
                b.rpc.as_ref() == Some(program) && b.proto == e.proto && b.host == e.host
            };
            let still = before
                .entries
                .iter()
                .filter(same_program)
                .any(|b| b.port == e.port);
            if let (false, Some(old)) = (still, before.entries.iter().find(same_program)) {
                findings.push(Finding::Moved {
                    entry: e.clone(),
                    old_port: old.port,
                });
            }
        }
    }
    findings
}

/// The `expect` file (`[audit] expect-file`): `expect = ["22/tcp", …]`, as `sentryctl audit
/// --print-expect` writes it. Its rules, or what is wrong with it, naming `path`.
///
/// # Errors
///
/// When the text is not TOML with that one key, or a rule does not parse.
pub fn parse_expect_file(text: &str, path: &std::path::Path) -> Result<Vec<Rule>, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        expect: Vec<String>,
    }
    let file: File = toml::from_str(text).map_err(|e| {
        format!(
            "{}: {}",
            path.display(),
            e.to_string().trim_end().replace('\n', " ")
        )
    })?;
    file.expect
        .iter()
        .map(|r| {
            r.parse()
                .map_err(|why| format!("{}: expect: {why}", path.display()))
        })
        .collect()
}

/// What `sentryctl audit --print-expect` prints: `now`'s [`expect_list`] as the `expect` file,
/// which is also the line to put under `[audit]` in the configuration.
pub fn expect_file_text(now: &Snapshot) -> String {
    let rules: Vec<String> = expect_list(now)
        .iter()
        .map(|r| format!("{:?}", r.to_string()))
        .collect();
    format!(
        "# What listened here at {} (sentryctl audit --print-expect): the audit expects it.\n\
         expect = [{}]\n",
        now.taken,
        rules.join(", ")
    )
}
