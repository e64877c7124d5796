//! The RTMP chunk-stream decoder, message assembler and relay on arbitrary
//! bytes: no panic, no over-consumption, always forward progress; and once
//! the relay says it may be bypassed (spliced), it passes every later byte
//! through unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use srs_protocols::rtmp::chunk::{Assembler, Decoder, Encoder, Forward, Item, Limits, MessageHeader, Relay, StreamIdMap};
use srs_protocols::rtmp::session::{no_op_message, Role};
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

    // Relay: the first byte says how much of the rest the sender wrote
    // before the relay began (and what the receiver saw), the rest is
    // relayed in pieces.
    let Some((&k, body)) = data.split_first() else {
        return;
    };
    let cut = (usize::from(k) * 8).min(body.len());
    let mut dec = Decoder::new(Limits::default());
    let mut rest = &body[..cut];
    while let Ok(Status::Complete((consumed, _))) = dec.decode(rest) {
        rest = &rest[consumed..];
    }
    if !rest.is_empty() {
        return; // the command phase would have failed or waited
    }
    let mut down = Encoder::new();
    if k & 1 != 0 {
        let m = MessageHeader { timestamp: 0, length: 29, type_id: 20, stream_id: 0 };
        down.write_message(3, &m, &[0; 29], &mut Vec::new());
    }
    if k & 2 != 0 {
        let m = MessageHeader { timestamp: 0, length: 6, type_id: 4, stream_id: 0 };
        down.write_message(2, &m, &[0; 6], &mut Vec::new());
    }
    let map = if k & 4 != 0 { StreamIdMap { from: 1, to: 2 } } else { StreamIdMap::IDENTITY };
    let mut relay = Relay::new(dec, down, map);
    relay.resync(|h, cs| no_op_message(h, cs, Some((Role::Play, 1))));
    let mut carry: Vec<u8> = Vec::new();
    let mut spliced = false;
    for piece in body[cut..].chunks(usize::from(k % 64) * 16 + 1) {
        carry.extend_from_slice(piece);
        let before = spliced.then(|| carry.clone());
        let Ok(f) = relay.process(&mut carry) else {
            return; // a spliced relay passes even this on
        };
        let consumed = match f {
            Forward::InPlace { consumed } => consumed,
            Forward::Copied { consumed } => {
                assert!(!spliced, "the relay copied after saying it could be bypassed");
                consumed
            }
        };
        if let Some(before) = before {
            assert_eq!(carry[..consumed], before[..consumed], "bytes rewritten after can_splice");
        }
        assert!(consumed <= carry.len(), "consumed more than given");
        carry.drain(..consumed);
        if carry.is_empty() && relay.can_splice() {
            assert_eq!(map, StreamIdMap::IDENTITY, "can_splice with stream ids rewritten");
            spliced = true;
        }
    }
});
