//! Any bytes as a fleet message from NATS, on any host's subject: a message or an error, no
//! panic; what is taken encodes again and decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scansentry::fleet::message::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data, "web-3") {
        let again = message
            .encode()
            .expect("a message taken is one this host could send");
        assert_eq!(Message::decode(&again, "web-3").as_ref(), Ok(&message));
    }
});
