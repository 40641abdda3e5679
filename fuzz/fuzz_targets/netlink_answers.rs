//! Any bytes as the kernel's and rpcbind's answers: sock_diag dumps, route dumps, the
//! portmapper's dump, nfnetlink_log's reports of the first line's holds (whose packet is an
//! attacker's). They come from the kernel or a local daemon, but a reader must not die.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scansentry::wire::Proto;

fuzz_target!(|data: &[u8]| {
    let _ = scansentry::host::sockdiag::parse(data, Proto::Tcp, &mut Vec::new());
    let _ = scansentry::firewall::route::parse_routes(data, &mut Vec::new());
    let _ = scansentry::audit::rpcbind::parse_dump_reply(1, data);
    for m in scansentry::netlink::messages(data) {
        let _ = scansentry::firewall::nft::nflog::report(&m, 2701);
    }
    if let Some((&family, packet)) = data.split_first() {
        let _ = scansentry::firewall::nft::nflog::probe(family, packet);
    }
});
