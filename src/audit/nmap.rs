//! nmap's XML output (`nmap -oX`) as a [`Snapshot`]: the hosts that were up, and their open
//! ports with nmap's service names. **Pure.**

use std::net::IpAddr;

use quick_xml::events::{BytesStart, Event};

use super::{Entry, Snapshot, Source};
use crate::time::Timestamp;
use crate::wire::Proto;

/// Most hosts and ports read from one file (a bound on memory for any input).
pub const MAX_ENTRIES: usize = 1 << 20;

/// Parses the text of an nmap XML file. `file` names it in errors.
///
/// # Errors
///
/// Malformed XML, a file that is not nmap's, or an unreadable attribute, as
/// `scan.xml:12:5: what is wrong`.
pub fn parse(text: &str, file: &str) -> Result<Snapshot, String> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut taken = None;
    let mut hosts = Vec::new();
    let mut entries = Vec::new();
    let mut seen_root = false;
    // The host being read: its address, whether it is up, its open ports.
    let mut host: Option<(Option<IpAddr>, bool, Vec<Entry>)> = None;
    // The port being read: protocol, number, open, service name.
    let mut port: Option<(Proto, u16, bool, Option<String>)> = None;
    let at = |pos: u64| place(text, file, pos);
    loop {
        let pos = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| format!("{}: {e}", at(reader.error_position())))?;
        match event {
            // <port> and <host> have children and end with End; an empty one holds nothing
            // open.
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"nmaprun" => {
                    seen_root = true;
                    if let Some(start) =
                        attr(&e, "start").map_err(|m| format!("{}: {m}", at(pos)))?
                    {
                        let secs: u64 = start
                            .parse()
                            .map_err(|_| format!("{}: start={start:?} is not a time", at(pos)))?;
                        taken = Some(Timestamp::from_micros(secs.saturating_mul(1_000_000)));
                    }
                }
                b"host" => host = Some((None, false, Vec::new())),
                b"status" => {
                    if let Some(h) = host.as_mut() {
                        h.1 = attr(&e, "state")
                            .map_err(|m| format!("{}: {m}", at(pos)))?
                            .as_deref()
                            == Some("up");
                    }
                }
                b"address" => {
                    let kind = attr(&e, "addrtype").map_err(|m| format!("{}: {m}", at(pos)))?;
                    if let (Some(h), Some("ipv4" | "ipv6")) = (host.as_mut(), kind.as_deref()) {
                        let addr = attr(&e, "addr").map_err(|m| format!("{}: {m}", at(pos)))?;
                        let addr = addr.as_deref().unwrap_or("");
                        h.0 = Some(addr.parse().map_err(|_| {
                            format!("{}: addr={addr:?} is not an IP address", at(pos))
                        })?);
                    }
                }
                b"port" if host.is_some() => {
                    let proto = match attr(&e, "protocol")
                        .map_err(|m| format!("{}: {m}", at(pos)))?
                        .as_deref()
                    {
                        Some("tcp") => Some(Proto::Tcp),
                        Some("udp") => Some(Proto::Udp),
                        _ => None,
                    };
                    let id = attr(&e, "portid")
                        .map_err(|m| format!("{}: {m}", at(pos)))?
                        .unwrap_or_default();
                    let number: u16 = id
                        .parse()
                        .map_err(|_| format!("{}: portid={id:?} is not a port", at(pos)))?;
                    port = proto.map(|p| (p, number, false, None));
                }
                b"state" => {
                    if let Some(p) = port.as_mut() {
                        p.2 = attr(&e, "state")
                            .map_err(|m| format!("{}: {m}", at(pos)))?
                            .as_deref()
                            == Some("open");
                    }
                }
                b"service" => {
                    if let Some(p) = port.as_mut() {
                        p.3 = attr(&e, "name").map_err(|m| format!("{}: {m}", at(pos)))?;
                    }
                }
                _ => {}
            },
            Event::End(e) => match e.name().as_ref() {
                b"port" => {
                    if let (Some((proto, number, true, name)), Some(h)) =
                        (port.take(), host.as_mut())
                    {
                        h.2.push(Entry {
                            host: IpAddr::from([0, 0, 0, 0]),
                            proto,
                            port: number,
                            name,
                            rpc: None,
                            process: None,
                        });
                    }
                }
                b"host" => {
                    if let Some((Some(addr), true, open)) = host.take() {
                        hosts.push(addr);
                        entries.extend(open.into_iter().map(|e| Entry { host: addr, ..e }));
                        if entries.len() + hosts.len() > MAX_ENTRIES {
                            return Err(format!("{file}: more than {MAX_ENTRIES} hosts and ports"));
                        }
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root {
        return Err(format!(
            "{file}: not an nmap XML file (no <nmaprun> element)"
        ));
    }
    Ok(Snapshot::new(
        taken.unwrap_or(Timestamp::ZERO),
        Source::Nmap,
        hosts,
        entries,
    ))
}

/// The value of attribute `name`, unescaped.
fn attr(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, String> {
    match e.try_get_attribute(name) {
        Ok(Some(a)) => a
            .unescape_value()
            .map(|v| Some(v.into_owned()))
            .map_err(|err| format!("attribute {name}: {err}")),
        Ok(None) => Ok(None),
        Err(err) => Err(format!("attribute {name}: {err}")),
    }
}

/// `file:line:column` of byte `pos` of `text`.
fn place(text: &str, file: &str, pos: u64) -> String {
    let pos = usize::try_from(pos).unwrap_or(usize::MAX).min(text.len());
    let before = &text.as_bytes()[..pos];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = pos
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
        + 1;
    format!("{file}:{line}:{column}")
}
