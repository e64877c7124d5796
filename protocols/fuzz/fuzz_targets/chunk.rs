//! The RTMP chunk-stream decoder and message assembler on arbitrary bytes:
//! no panic, no over-consumption, always forward progress.
#![no_main]

use libfuzzer_sys::fuzz_target;
use srs_protocols::rtmp::chunk::{Assembler, Decoder, Item, Limits};
use srs_protocols::Status;

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new(Limits::default());
    let mut rest = data;
    loop {
        match decoder.decode(rest) {
            Ok(Status::Complete((consumed, item))) => {
                assert!(consumed > 0, "Complete without consuming: {item:?}");
                if let Item::Payload { len, .. } = item {
                    assert_eq!(consumed, len, "payload length is the bytes consumed");
                }
                assert!(consumed <= rest.len(), "consumed more than given");
                rest = &rest[consumed..];
            }
            Ok(Status::Partial) | Err(_) => break,
        }
    }

    let mut assembler = Assembler::new(Limits::default());
    let mut rest = data;
    // A message may complete without new bytes, but not forever.
    let mut idle = 0;
    loop {
        match assembler.read(rest) {
            Ok((consumed, message)) => {
                assert!(consumed <= rest.len(), "consumed more than given");
                rest = &rest[consumed..];
                match (consumed, message.is_some()) {
                    (0, false) => break,
                    (0, true) => {
                        idle += 1;
                        assert!(idle < 1024, "messages without progress");
                    }
                    _ => idle = 0,
                }
            }
            Err(_) => break,
        }
    }
});
