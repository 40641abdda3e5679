//! Service names: `/etc/services` (port and protocol to name) and `/etc/rpc` (RPC program
//! number to name). **Pure** parsers; [`Names::load`] reads the two files.

use std::collections::HashMap;

use crate::wire::Proto;

/// The names known on this host.
#[derive(Clone, Debug, Default)]
pub struct Names {
    services: HashMap<(Proto, u16), String>,
    rpc: HashMap<u32, String>,
}

impl Names {
    /// Names from the texts of `/etc/services` and `/etc/rpc`.
    pub fn parse(services: &str, rpc: &str) -> Self {
        let mut names = Names::default();
        for line in lines(services) {
            // `ssh  22/tcp  # SSH Remote Login Protocol`
            let mut fields = line.split_whitespace();
            let (Some(name), Some(port_proto)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Some((port, proto)) = port_proto.split_once('/') else {
                continue;
            };
            let proto = match proto {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                _ => continue,
            };
            if let Ok(port) = port.parse() {
                // The first name for a port is its main one.
                names
                    .services
                    .entry((proto, port))
                    .or_insert_with(|| name.to_string());
            }
        }
        for line in lines(rpc) {
            // `portmapper  100000  portmap sunrpc rpcbind`
            let mut fields = line.split_whitespace();
            let (Some(name), Some(number)) = (fields.next(), fields.next()) else {
                continue;
            };
            if let Ok(number) = number.parse() {
                names.rpc.entry(number).or_insert_with(|| name.to_string());
            }
        }
        names
    }

    /// Names from `/etc/services` and `/etc/rpc`; a missing file gives no names.
    pub fn load() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        Names::parse(&read("/etc/services"), &read("/etc/rpc"))
    }

    /// The guess for `port`/`proto`: `maybe_ssh` (what usually listens there, not a fact).
    pub fn guess(&self, proto: Proto, port: u16) -> Option<String> {
        self.services
            .get(&(proto, port))
            .map(|name| format!("maybe_{name}"))
    }

    /// The name of RPC program `number`: from `/etc/rpc`, else `RPC_<number>`.
    pub fn rpc(&self, number: u32) -> String {
        self.rpc
            .get(&number)
            .cloned()
            .unwrap_or_else(|| format!("RPC_{number}"))
    }
}

/// Non-empty lines without their `#` comments.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICES: &str = "# Network services\n\
        tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer\n\
        ssh\t\t22/tcp\t\t\t\t# SSH Remote Login Protocol\n\
        domain\t\t53/tcp\n\
        domain\t\t53/udp\n\
        http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP\n\
        sunrpc\t\t111/tcp\t\tportmapper\n\
        broken line\n\
        ddp\t\t37/ddp\n";

    const RPC: &str = "#ident\t\"@(#)rpc\t1.11\t95/07/14 SMI\"\n\
        portmapper\t100000\tportmap sunrpc rpcbind\n\
        nfs\t\t100003\tnfsprog\n\
        mountd\t\t100005\tmount showmount\n";

    #[test]
    fn services_give_guesses() {
        let n = Names::parse(SERVICES, RPC);
        assert_eq!(n.guess(Proto::Tcp, 22).as_deref(), Some("maybe_ssh"));
        assert_eq!(n.guess(Proto::Udp, 53).as_deref(), Some("maybe_domain"));
        assert_eq!(n.guess(Proto::Tcp, 80).as_deref(), Some("maybe_http"));
        assert_eq!(n.guess(Proto::Udp, 22), None);
        assert_eq!(n.guess(Proto::Tcp, 37), None);
    }

    #[test]
    fn rpc_numbers_give_names_or_rpc_n() {
        let n = Names::parse(SERVICES, RPC);
        assert_eq!(n.rpc(100_003), "nfs");
        assert_eq!(n.rpc(100_000), "portmapper");
        assert_eq!(n.rpc(390_113), "RPC_390113");
    }
}
