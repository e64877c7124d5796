//! The server-side handshake fed arbitrary bytes in arbitrary splits: no
//! panic, exact consumed counts, and the same outcome as feeding everything
//! at once. The client side gets the same treatment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use srs_protocols::rtmp::handshake::{
    ClientHandshake, Done, ExpectC0C1, HandshakeError, Step, C0C1_LEN, C2_LEN, RANDOM_LEN,
    S0S1S2_LEN,
};

/// How a server run ended: an error, out of input, or done at an offset.
type End = Result<Option<(Done, usize)>, HandshakeError>;

/// Runs the server over `input`, growing the visible buffer by the sizes in
/// `splits` (cycled). Returns the output written, and how the run ended.
fn server(input: &[u8], splits: &[u8]) -> (Vec<u8>, End) {
    let mut out = Vec::new();
    let mut sizes = splits.iter().map(|&s| usize::from(s) + 1).cycle();
    let mut next_size = move || sizes.next().unwrap_or(input.len().max(1));
    let mut seen = 0;

    let mut state = ExpectC0C1::new(&[0xA5; RANDOM_LEN], 0x1234_5678);
    let c2 = loop {
        seen = (seen + next_size()).min(input.len());
        match state.handle(&input[..seen], &mut out) {
            Err(e) => return (out, Err(e)),
            Ok(Step::Partial(s)) => {
                assert!(out.is_empty(), "output on Partial");
                if seen == input.len() {
                    return (out, Ok(None));
                }
                state = s;
            }
            Ok(Step::Complete { consumed, next }) => {
                assert_eq!(consumed, C0C1_LEN);
                assert!(consumed <= seen);
                assert_eq!(out.len(), S0S1S2_LEN);
                break next;
            }
        }
    };
    let base = C0C1_LEN;
    let mut seen = base;
    let mut state = c2;
    loop {
        seen = (seen + next_size()).min(input.len());
        match state.handle(&input[base..seen]) {
            Err(e) => return (out, Err(e)),
            Ok(Step::Partial(s)) => {
                if seen == input.len() {
                    return (out, Ok(None));
                }
                state = s;
            }
            Ok(Step::Complete { consumed, next }) => {
                assert_eq!(consumed, C2_LEN);
                return (out, Ok(Some((next, base + consumed))));
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // First byte: how many split sizes follow; the rest is the wire input.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 16).min(rest.len());
    let (splits, input) = rest.split_at(n);

    let (one_out, one_end) = server(input, &[]);
    let (split_out, split_end) = server(input, splits);
    assert_eq!(one_out, split_out, "output depends on how input was split");
    assert_eq!(one_end, split_end, "outcome depends on how input was split");

    // Client role on the same bytes.
    let client = ClientHandshake::start(&[0x3C; RANDOM_LEN], 1, &mut Vec::new());
    let mut c2 = Vec::new();
    match client.handle(input, &mut c2) {
        Ok(Step::Complete { consumed, .. }) => {
            assert_eq!(consumed, S0S1S2_LEN);
            assert_eq!(c2.as_slice(), &input[1..1 + 1536]);
        }
        Ok(Step::Partial(_)) => assert!(input.len() < S0S1S2_LEN),
        Err(HandshakeError::UnsupportedVersion(v)) => assert_eq!(Some(&v), input.first()),
        Err(_) => {}
    }
});
