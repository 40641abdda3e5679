//! The audit policy and its findings. **Pure.**
//!
//! Each address (or every address) has four lists of rules, samhain's: `required` services must
//! be open; `optional` ones may be; `ignore`d ones are never reported; `skip`ped ones are not even
//! looked at (and not kept in the history). Anything open and in none of the lists is reported as
//! new. A rule is `port/proto` (`22/tcp`) or `rpcname/proto` (`nfs/udp`).

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

/// The four lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lists {
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
}

impl Finding {
    /// One line for logs: `new: 198.51.100.1 8080/tcp maybe_http-alt (www-data pid 812 /usr/sbin/nginx)`.
    pub fn line(&self) -> String {
        let service = |e: &Entry| {
            let mut s = format!("{} {}", e.host, e.port_label());
            if let Some(n) = &e.name {
                s.push(' ');
                s.push_str(n);
            }
            if let Some(p) = &e.process {
                s.push_str(&format!(" ({} pid {}", p.user, p.pid));
                if let Some(exe) = &p.exe {
                    s.push(' ');
                    s.push_str(exe);
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
        }
    }
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
        };
        proto_on
            && self.ports.contains(&e.port)
            && !self
                .lists_for(e.host)
                .any(|l| l.skip.iter().any(|r| r.matches(e)))
    }

    /// The findings for `now` (whose entries the caller has already passed through
    /// [`Policy::looks_at`]), against the previous local snapshot if there is one.
    pub fn check(&self, now: &Snapshot, before: Option<&Snapshot>) -> Vec<Finding> {
        let mut findings = Vec::new();
        for e in &now.entries {
            let lists: Vec<&Lists> = self.lists_for(e.host).collect();
            let named = |pick: fn(&Lists) -> &Vec<Rule>| {
                lists.iter().any(|l| pick(l).iter().any(|r| r.matches(e)))
            };
            if named(|l| &l.ignore) {
                continue;
            }
            if !named(|l| &l.required) && !named(|l| &l.optional) {
                findings.push(Finding::New { entry: e.clone() });
            }
        }
        // Required: open on the address (or on every address), or for `all`, anywhere.
        let open = |rule: &Rule, host: Option<IpAddr>| {
            now.entries.iter().any(|e| {
                rule.matches(e)
                    && host.is_none_or(|h| {
                        e.host == h || (e.host.is_unspecified() && e.host.is_ipv4() == h.is_ipv4())
                    })
            })
        };
        for rule in &self.all.required {
            if !open(rule, None) {
                findings.push(Finding::Missing {
                    host: None,
                    rule: rule.to_string(),
                });
            }
        }
        for (host, lists) in &self.per_address {
            for rule in &lists.required {
                if !open(rule, Some(*host)) {
                    findings.push(Finding::Missing {
                        host: Some(*host),
                        rule: rule.to_string(),
                    });
                }
            }
        }
        if let Some(before) = before {
            for e in &now.entries {
                let was = before
                    .entries
                    .iter()
                    .find(|b| b.host == e.host && b.proto == e.proto && b.port == e.port);
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
        }
        findings
    }
}
