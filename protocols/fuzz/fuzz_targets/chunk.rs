//! The RTMP chunk-stream decoder and message assembler on arbitrary bytes:
//! no panic, no over-consumption, always forward progress.
#![no_main]

use libfuzzer_sys::fuzz_target;
use srs_protocols::rtmp::chunk::{Assembler, Decoder, Item, Limits};
use srs_protocols::Status;

fuzz_target!(|data: &[u8]| {
    // Decoder: items until it wants more bytes or rejects the input.
    let mut decoder = Decoder::new(Limits::default());
    let mut rest = data;
    while let Ok(Status::Complete((consumed, item))) = decoder.decode(rest) {
        assert!(consumed > 0, "Complete without consuming: {item:?}");
        assert!(consumed <= rest.len(), "consumed more than given");
        if let Item::Payload { len, .. } = item {
            assert_eq!(consumed, len, "a payload's length is the bytes consumed");
        }
        rest = &rest[consumed..];
    }

    // Assembler: whole messages until it wants more bytes or rejects.
    let mut assembler = Assembler::new(Limits::default());
    let mut rest = data;
    // A message may complete without new bytes, but not forever.
    let mut idle = 0;
    while let Ok((consumed, message)) = assembler.read(rest) {
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
});
