//! Any bytes as a control-socket message, read as a request (what the daemon does) and as a
//! response (what sentryctl does): a message or an error, no panic, never more than the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scansentry::control::protocol::{Envelope, Request, Response, read_message};

fuzz_target!(|data: &[u8]| {
    let _ = read_message::<Envelope<Request>>(&mut &data[..]);
    let _ = read_message::<Envelope<Response>>(&mut &data[..]);
});
