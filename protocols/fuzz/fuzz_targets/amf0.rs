//! AMF0 values and RTMP command/data messages from arbitrary bytes: no panic,
//! no unbounded allocation, and whatever decodes re-encodes to something
//! that decodes to the same values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use srs_protocols::rtmp::amf0;
use srs_protocols::rtmp::command::{Command, Data};

fuzz_target!(|data: &[u8]| {
    if let Ok(values) = amf0::decode_all(data) {
        let mut out = Vec::new();
        for v in &values {
            amf0::encode(v, &mut out);
        }
        let again = amf0::decode_all(&out).expect("re-encoded AMF0 must decode");
        // NaN != NaN, so compare the encodings rather than the values.
        let mut out2 = Vec::new();
        for v in &again {
            amf0::encode(v, &mut out2);
        }
        assert_eq!(out, out2, "AMF0 encode/decode is not stable");
    }
    if let Ok((_, n)) = amf0::decode(data) {
        assert!(n > 0 && n <= data.len());
    }
    for amf3 in [false, true] {
        if let Ok(c) = Command::decode(data, amf3) {
            let mut out = Vec::new();
            c.encode(&mut out);
            let again = Command::decode(&out, false).expect("re-encoded command must decode");
            assert_eq!(again.name, c.name);
            assert_eq!(again.args.len(), c.args.len());
        }
        let _ = Data::decode(data, amf3);
    }
});
