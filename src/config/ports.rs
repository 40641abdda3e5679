//! Port lists: numbers, `"lo-hi"` ranges, and PortSentry's three classic presets.

use std::ops::RangeInclusive;

use super::raw::RawPort;

/// A named port list from PortSentry 1.2's stock `portsentry.conf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preset {
    /// The name used in `preset = "…"`.
    pub name: &'static str,
    /// TCP ports.
    pub tcp: &'static [u16],
    /// UDP ports.
    pub udp: &'static [u16],
}

/// PortSentry's three lists: "really anal" (here `paranoid`), "just want to be aware" (the one
/// its stock config enables; here `aware`) and "just bare-bones".
pub const PRESETS: [Preset; 3] = [
    Preset {
        name: "paranoid",
        tcp: &[
            1, 7, 9, 11, 15, 70, 79, 80, 109, 110, 111, 119, 138, 139, 143, 512, 513, 514, 515,
            540, 635, 1080, 1524, 2000, 2001, 4000, 4001, 5742, 6000, 6001, 6667, 12345, 12346,
            20034, 27665, 30303, 32771, 32772, 32773, 32774, 31337, 40421, 40425, 49724, 54320,
        ],
        udp: &[
            1, 7, 9, 66, 67, 68, 69, 111, 137, 138, 161, 162, 474, 513, 517, 518, 635, 640, 641,
            666, 700, 2049, 31335, 27444, 34555, 32770, 32771, 32772, 32773, 32774, 31337, 54321,
        ],
    },
    Preset {
        name: "aware",
        tcp: &[
            1, 11, 15, 79, 111, 119, 143, 540, 635, 1080, 1524, 2000, 5742, 6667, 12345, 12346,
            20034, 27665, 31337, 32771, 32772, 32773, 32774, 40421, 49724, 54320,
        ],
        udp: &[
            1, 7, 9, 69, 161, 162, 513, 635, 640, 641, 700, 37444, 34555, 31335, 32770, 32771,
            32772, 32773, 32774, 31337, 54321,
        ],
    },
    Preset {
        name: "bare-bones",
        tcp: &[
            1, 11, 15, 110, 111, 143, 540, 635, 1080, 1524, 2000, 12345, 12346, 20034, 32771,
            32772, 32773, 32774, 49724, 54320,
        ],
        udp: &[
            1, 7, 9, 69, 161, 162, 513, 640, 700, 32770, 32771, 32772, 32773, 32774, 31337, 54321,
        ],
    },
];

/// Looks a preset up by name.
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// Parses one port or range; the error says what is wrong with it (without the key).
pub fn parse_port_spec(spec: &RawPort) -> Result<RangeInclusive<u16>, String> {
    match spec {
        RawPort::Number(n) => port_number(*n).map(|p| p..=p),
        RawPort::Text(text) => {
            let quoted = format!("{text:?}");
            let parse = |s: &str| -> Result<u16, String> {
                let n: i64 = s
                    .trim()
                    .parse()
                    .map_err(|_| format!("{quoted} is not a port or a range like \"6000-6063\""))?;
                port_number(n)
            };
            match text.split_once('-') {
                None => parse(text).map(|p| p..=p),
                Some((lo, hi)) => {
                    let (lo, hi) = (parse(lo)?, parse(hi)?);
                    if lo > hi {
                        Err(format!("range {quoted} is backwards (write \"{hi}-{lo}\")"))
                    } else {
                        Ok(lo..=hi)
                    }
                }
            }
        }
    }
}

fn port_number(n: i64) -> Result<u16, String> {
    match u16::try_from(n) {
        Ok(0) => Err("port 0 is not a valid port (1-65535)".into()),
        Ok(p) => Ok(p),
        Err(_) => Err(format!("{n} is not a valid port (1-65535)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_or_say_what_is_wrong() {
        let text = |s: &str| parse_port_spec(&RawPort::Text(s.into()));
        assert_eq!(parse_port_spec(&RawPort::Number(22)), Ok(22..=22));
        assert_eq!(text("6000-6063"), Ok(6000..=6063));
        assert_eq!(text(" 7 - 9 "), Ok(7..=9));
        assert_eq!(text("80"), Ok(80..=80));
        assert_eq!(
            parse_port_spec(&RawPort::Number(0)),
            Err("port 0 is not a valid port (1-65535)".into())
        );
        assert_eq!(
            parse_port_spec(&RawPort::Number(70000)),
            Err("70000 is not a valid port (1-65535)".into())
        );
        assert_eq!(
            text("6063-6000"),
            Err("range \"6063-6000\" is backwards (write \"6000-6063\")".into())
        );
        assert_eq!(
            text("ssh"),
            Err("\"ssh\" is not a port or a range like \"6000-6063\"".into())
        );
        assert_eq!(
            text("0-10"),
            Err("port 0 is not a valid port (1-65535)".into())
        );
    }

    #[test]
    fn presets_are_portsentrys_lists() {
        let aware = preset("aware").expect("exists");
        assert_eq!(aware.tcp.len(), 26);
        assert!(aware.tcp.contains(&31337) && aware.udp.contains(&31335));
        assert_eq!(preset("paranoid").expect("exists").tcp.len(), 45);
        assert_eq!(preset("bare-bones").expect("exists").udp.len(), 16);
        assert!(preset("anal").is_none());
    }
}
