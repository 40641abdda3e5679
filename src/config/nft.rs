//! The nftables settings, as plain types: where own mode hooks its chain, and the table and
//! sets of attach mode, by names nft would take. The firewall's nftables backend carries
//! them out.

use std::ffi::CString;

/// Where own mode hooks its chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// `hook input`: after routing, for traffic to this host.
    Input,
    /// `hook prerouting` (at raw priority by default): before conntrack.
    Prerouting,
}

/// The address family of an attach-mode table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `inet`: IPv4 and IPv6.
    Inet,
    /// `ip`: IPv4 only.
    Ip,
    /// `ip6`: IPv6 only.
    Ip6,
}

/// The kernel's first line, as `[firewall] first-line` configures it: rules in own mode's table
/// (or, in attach mode, the administrator's inet table, from the shipped snippet
/// `nft/first-line.nft`) that count, per source, probes of ports with no listener and hold a
/// source that crosses the kernel's threshold in a short-lived set, before the daemon has seen
/// a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirstLine {
    /// How long a hold lasts unless the daemon lifts it or blocks the source first
    /// (`first-line-hold`).
    pub hold: std::time::Duration,
    /// The nfnetlink_log group the kernel reports each hold to (`first-line-log-group`).
    pub log_group: u16,
}

/// How the backend uses nftables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NftConfig {
    /// scansentry keeps its own table.
    Own {
        /// The hook of its chain.
        hook: Hook,
        /// Whether a second chain, on the forward hook, drops blocked sources' forwarded
        /// traffic (with `hook: Input`; prerouting drops it already).
        forward: bool,
        /// The chain's priority.
        priority: i32,
        /// The `size` of the block sets: how many blocks they hold (an interval's end element
        /// does not count); [`set_size`] of `max-blocks`.
        set_size: u32,
        /// The kernel's first line (`[firewall] first-line`), when on.
        first_line: Option<FirstLine>,
    },
    /// scansentry only adds and removes elements of the administrator's sets.
    Attach {
        /// The table's family.
        family: Family,
        /// The table.
        table: NftName,
        /// The IPv4 block set (none: IPv4 sources are not blocked).
        set4: Option<NftName>,
        /// The IPv6 block set.
        set6: Option<NftName>,
        /// The kernel's first line (`[firewall] first-line`), when on: the administrator
        /// included `nft/first-line.nft` in the table (an inet one), and the daemon only adds
        /// and removes its sets' elements.
        first_line: Option<FirstLine>,
    },
}

impl NftConfig {
    /// Whether a firewall of `self` and one of `other` may hold their blocks in the same sets
    /// of the kernel: own mode's table is always `inet scansentry`
    /// (`crate::firewall::nft::OWN_TABLE`); attach mode's sets are in the table it names. A
    /// reload from one to the other lifts the blocks of the old only when they cannot.
    pub fn may_share_sets(&self, other: &NftConfig) -> bool {
        let place = |c: &NftConfig| match c {
            NftConfig::Own { .. } => (Family::Inet, "scansentry".to_string()),
            NftConfig::Attach { family, table, .. } => (*family, table.as_str().to_string()),
        };
        place(self) == place(other)
    }

    /// The kernel's first line, when on (own mode's, or the attached snippet's).
    pub fn first_line(&self) -> Option<FirstLine> {
        match self {
            NftConfig::Own { first_line, .. } | NftConfig::Attach { first_line, .. } => *first_line,
        }
    }
}

impl Family {
    /// As nft writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
        }
    }
}

/// The name of a table or set: what nft accepts as an identifier (a letter, then letters,
/// digits, `_ - . /`; at most 255 bytes, so never a NUL inside). Only [`NftName::new`] makes
/// one, so turning it into a C string cannot fail.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NftName(String);

impl NftName {
    /// `name`, if nft would take it as an identifier.
    ///
    /// # Errors
    ///
    /// [`BadName`] naming what was given.
    pub fn new(name: &str) -> Result<Self, BadName> {
        let ok = name.len() <= 255
            && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
        if ok {
            Ok(NftName(name.to_string()))
        } else {
            Err(BadName(name.to_string()))
        }
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as libnftnl takes it.
    pub fn to_c(&self) -> CString {
        CString::new(self.0.as_str()).expect("an NftName holds no NUL (checked by NftName::new)")
    }
}

impl std::fmt::Display for NftName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A name nft would not take.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an nftables name (a letter, then letters, digits, _ - . /; at most 255)")]
pub struct BadName(pub String);

/// The `size` of each block set for `max_blocks` (`[respond] max-blocks`, which holds per
/// address family, for detections, blocks by hand and from the fleet alike): twice as many, so
/// that blocks that ended but that the kernel has not collected yet (it does once a second) and
/// blocks being put back at a reload never meet a full set, and 1,024 more for elements an
/// administrator adds by hand.
pub fn set_size(max_blocks: usize) -> u32 {
    u32::try_from(max_blocks.saturating_mul(2).saturating_add(1024)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_nft_would_refuse_are_refused() {
        for bad in ["", "1abc", "a b", "a\0b", "tab\tle", &"a".repeat(256)] {
            assert_eq!(NftName::new(bad), Err(BadName(bad.to_string())), "{bad:?}");
        }
        for good in ["filter", "scansentry", "my_set-4.v/x", &"a".repeat(255)] {
            assert_eq!(NftName::new(good).unwrap().as_str(), good);
        }
    }

    /// Red team of issue 25: which reloads may lift the old firewall's blocks.
    #[test]
    fn own_mode_shares_its_table_with_itself_and_with_attach_mode_only_on_it() {
        let own = |priority| NftConfig::Own {
            hook: Hook::Input,
            forward: false,
            priority,
            set_size: 1024,
            first_line: None,
        };
        let attach = |family, table: &str, set4: &str| NftConfig::Attach {
            family,
            table: NftName::new(table).unwrap(),
            set4: Some(NftName::new(set4).unwrap()),
            set6: None,
            first_line: None,
        };
        assert!(own(0).may_share_sets(&own(-300)));
        assert!(!own(0).may_share_sets(&attach(Family::Inet, "adm", "s4")));
        assert!(own(0).may_share_sets(&attach(Family::Inet, "scansentry", "blocked4")));
        assert!(!own(0).may_share_sets(&attach(Family::Ip, "scansentry", "s4")));
        assert!(attach(Family::Ip, "t", "a").may_share_sets(&attach(Family::Ip, "t", "b")));
        assert!(!attach(Family::Ip, "t", "a").may_share_sets(&attach(Family::Ip, "u", "a")));
        // The first line's sets are in the same table as the block sets: on or off, the place
        // is the same.
        let mut with_first_line = attach(Family::Inet, "filter", "s4");
        if let NftConfig::Attach { first_line, .. } = &mut with_first_line {
            *first_line = Some(FirstLine {
                hold: std::time::Duration::from_secs(5),
                log_group: 2701,
            });
        }
        assert!(with_first_line.may_share_sets(&attach(Family::Inet, "filter", "s4")));
        assert!(!with_first_line.may_share_sets(&own(-10)));
    }
}
