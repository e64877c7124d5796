//! Any datagram through the STUN view: no panic, and a message that parses
//! has a length matching the datagram and a USERNAME (if any) of the form
//! `a:b` within bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use srs_protocols::stun::{classify, Message, HEADER_LEN, MAX_USERNAME};

fuzz_target!(|data: &[u8]| {
    let _ = classify(data);
    if let Ok(m) = Message::parse(data) {
        assert_eq!(usize::from(u16::from_be_bytes([data[2], data[3]])), data.len() - HEADER_LEN);
        let _ = m.is_binding_request();
        let mut seen = 0;
        for a in m.attributes() {
            let (_, v) = a.expect("attributes were walked at parse");
            seen += 4 + v.len();
        }
        assert!(seen <= data.len() - HEADER_LEN);
        if let Ok(Some(u)) = m.username() {
            assert!(u.len() <= MAX_USERNAME && u.contains(':'));
        }
    }
});
