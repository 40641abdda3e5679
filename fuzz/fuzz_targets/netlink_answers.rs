//! Any bytes as the kernel's and rpcbind's answers: sock_diag dumps, route dumps, the
//! portmapper's dump. They come from the kernel or a local daemon, but a reader must not die.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scansentry::wire::Proto;

fuzz_target!(|data: &[u8]| {
    let _ = scansentry::host::sockdiag::parse(data, Proto::Tcp, &mut Vec::new());
    let _ = scansentry::firewall::route::parse_routes(data, &mut Vec::new());
    let _ = scansentry::audit::rpcbind::parse_dump_reply(1, data);
});
