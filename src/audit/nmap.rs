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
    let mut read = Reading::default();
    let at = |pos: u64| place(text, file, pos);
    loop {
        let pos = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| format!("{}: {e}", at(reader.error_position())))?;
        match event {
            // <port> and <host> have children and end with End; an empty one holds nothing
            // open.
            Event::Start(e) | Event::Empty(e) => {
                let name = e.name();
                if let Some((_, start)) = STARTS.iter().find(|(n, _)| *n == name.as_ref()) {
                    start(&mut read, &e).map_err(|m| format!("{}: {m}", at(pos)))?;
                }
            }
            Event::End(e) => read
                .end(e.name().as_ref())
                .map_err(|m| format!("{file}: {m}"))?,
            Event::Eof => break,
            _ => {}
        }
    }
    if !read.seen_root {
        return Err(format!(
            "{file}: not an nmap XML file (no <nmaprun> element)"
        ));
    }
    Ok(Snapshot::new(
        read.taken.unwrap_or(Timestamp::ZERO),
        Source::Nmap,
        read.hosts,
        read.entries,
    ))
}

/// What an element's start tells: the reading so far, and the element with its attributes.
type Start = fn(&mut Reading, &BytesStart<'_>) -> Result<(), String>;

/// The elements read, each by what its start tells; the others are passed over.
const STARTS: [(&[u8], Start); 7] = [
    (b"nmaprun", Reading::nmaprun),
    (b"host", Reading::host),
    (b"status", Reading::status),
    (b"address", Reading::address),
    (b"port", Reading::port),
    (b"state", Reading::state),
    (b"service", Reading::service),
];

/// An nmap file read so far.
#[derive(Default)]
struct Reading {
    /// Whether the root element (`<nmaprun>`) was seen.
    seen_root: bool,
    /// When the scan started.
    taken: Option<Timestamp>,
    /// The hosts that were up, and their open ports.
    hosts: Vec<IpAddr>,
    entries: Vec<Entry>,
    /// The host being read.
    host: Option<Host>,
    /// The port being read.
    port: Option<Port>,
}

/// A `<host>` being read.
#[derive(Default)]
struct Host {
    addr: Option<IpAddr>,
    up: bool,
    open: Vec<Entry>,
}

/// A `<port>` being read.
struct Port {
    proto: Proto,
    number: u16,
    open: bool,
    name: Option<String>,
}

impl Reading {
    /// `<nmaprun start="…">`: the file is nmap's, and when the scan started.
    fn nmaprun(&mut self, e: &BytesStart<'_>) -> Result<(), String> {
        self.seen_root = true;
        if let Some(start) = attr(e, "start")? {
            let secs: u64 = start
                .parse()
                .map_err(|_| format!("start={start:?} is not a time"))?;
            self.taken = Some(Timestamp::from_micros(secs.saturating_mul(1_000_000)));
        }
        Ok(())
    }

    /// `<host>`: a host begins.
    fn host(&mut self, _: &BytesStart<'_>) -> Result<(), String> {
        self.host = Some(Host::default());
        Ok(())
    }

    /// `<status state="up">` of a host.
    fn status(&mut self, e: &BytesStart<'_>) -> Result<(), String> {
        if let Some(h) = self.host.as_mut() {
            h.up = attr(e, "state")?.as_deref() == Some("up");
        }
        Ok(())
    }

    /// `<address addr="…" addrtype="ipv4">` of a host (its MAC address is passed over).
    fn address(&mut self, e: &BytesStart<'_>) -> Result<(), String> {
        let kind = attr(e, "addrtype")?;
        if let (Some(h), Some("ipv4" | "ipv6")) = (self.host.as_mut(), kind.as_deref()) {
            let addr = attr(e, "addr")?;
            let addr = addr.as_deref().unwrap_or("");
            h.addr = Some(
                addr.parse()
                    .map_err(|_| format!("addr={addr:?} is not an IP address"))?,
            );
        }
        Ok(())
    }

    /// `<port protocol="tcp" portid="22">` of a host (one outside a host is passed over).
    fn port(&mut self, e: &BytesStart<'_>) -> Result<(), String> {
        if self.host.is_none() {
            return Ok(());
        }
        let proto = match attr(e, "protocol")?.as_deref() {
            Some("tcp") => Some(Proto::Tcp),
            Some("udp") => Some(Proto::Udp),
            _ => None,
        };
        let id = attr(e, "portid")?.unwrap_or_default();
        let number: u16 = id
            .parse()
            .map_err(|_| format!("portid={id:?} is not a port"))?;
        self.port = proto.map(|proto| Port {
            proto,
            number,
            open: false,
            name: None,
        });
        Ok(())
    }

    /// `<state state="open">` of a port.
    fn state(&mut self, e: &BytesStart<'_>) -> Result<(), String> {
        if let Some(p) = self.port.as_mut() {
            p.open = attr(e, "state")?.as_deref() == Some("open");
        }
        Ok(())
    }

    /// `<service name="ssh">` of a port.
    fn service(&mut self, e: &BytesStart<'_>) -> Result<(), String> {
        if let Some(p) = self.port.as_mut() {
            p.name = attr(e, "name")?;
        }
        Ok(())
    }

    /// The end of element `name`: an open port joins its host, a host that was up with an
    /// address joins the snapshot.
    fn end(&mut self, name: &[u8]) -> Result<(), String> {
        match name {
            b"port" => {
                if let (Some(p), Some(h)) = (self.port.take(), self.host.as_mut())
                    && p.open
                {
                    h.open.push(Entry {
                        host: IpAddr::from([0, 0, 0, 0]),
                        proto: p.proto,
                        port: p.number,
                        name: p.name,
                        rpc: None,
                        process: None,
                    });
                }
            }
            b"host" => {
                if let Some(Host {
                    addr: Some(addr),
                    up: true,
                    open,
                }) = self.host.take()
                {
                    self.hosts.push(addr);
                    let entries = open.into_iter().map(|e| Entry { host: addr, ..e });
                    self.entries.extend(entries);
                    if self.entries.len() + self.hosts.len() > MAX_ENTRIES {
                        return Err(format!("more than {MAX_ENTRIES} hosts and ports"));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_element_s_bad_attribute_is_named_with_its_place() {
        let err = parse("<nmaprun start=\"soon\">", "a.xml").unwrap_err();
        assert_eq!(err, "a.xml:1:1: start=\"soon\" is not a time");
        let text = "<nmaprun>\n<host>\n  <address addr=\"x\" addrtype=\"ipv4\"/>";
        let err = parse(text, "a.xml").unwrap_err();
        assert_eq!(err, "a.xml:3:3: addr=\"x\" is not an IP address");
        let err = parse("<nmaprun>\n<host>\n<status state=\"&bogus;\"/>", "a.xml").unwrap_err();
        assert!(err.starts_with("a.xml:3:1: attribute state: "), "{err}");
    }

    #[test]
    fn only_open_ports_of_hosts_that_were_up_with_an_address_count() {
        let text = r#"<nmaprun start="10">
<port protocol="tcp" portid="1"><state state="open"/></port>
<host><status state="down"/><address addr="198.51.100.1" addrtype="ipv4"/>
  <ports><port protocol="tcp" portid="22"><state state="open"/></port></ports></host>
<host><status state="up"/><address addr="00:11:22:33:44:55" addrtype="mac"/></host>
<host><status state="up"/><address addr="2001:db8::2" addrtype="ipv6"/>
  <ports>
    <port protocol="tcp" portid="22"><state state="closed"/></port>
    <port protocol="sctp" portid="7"><state state="open"/></port>
    <port protocol="udp" portid="53"><state state="open"/><service name="domain"/></port>
  </ports></host>
</nmaprun>"#;
        let s = parse(text, "a.xml").unwrap();
        assert_eq!(s.taken, Timestamp::from_micros(10_000_000));
        assert_eq!(s.hosts, ["2001:db8::2".parse::<IpAddr>().unwrap()]);
        let open: Vec<_> = s
            .entries
            .iter()
            .map(|e| (e.host, e.proto, e.port))
            .collect();
        assert_eq!(open, [(s.hosts[0], Proto::Udp, 53)]);
        assert_eq!(s.entries[0].name.as_deref(), Some("domain"));
    }
}
