//! HTTP response heads and chunked bodies from arbitrary bytes: no panic;
//! the chunked scanner gives the same answer whatever the splits, and agrees
//! with `dechunk`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use srs_protocols::http::{dechunk, parse_response_head, percent_decode, ChunkedScanner};
use srs_protocols::Status;

fuzz_target!(|data: &[u8]| {
    // First two bytes pick split sizes; the rest is the input.
    let (a, b, input) = match data {
        [a, b, rest @ ..] => (usize::from(*a) + 1, usize::from(*b) + 1, rest),
        _ => (1, 1, data),
    };

    for head_req in [false, true] {
        if let Ok(Status::Complete((n, head))) = parse_response_head(input, head_req) {
            assert!(n <= input.len());
            assert!((100..=999).contains(&head.status));
            let _ = head.keep_alive();
            let _ = head.end_to_end_headers();
        }
    }

    // Whole.
    let whole = ChunkedScanner::new().scan(input);
    // Pieces of alternating sizes a, b.
    let mut sc = ChunkedScanner::new();
    let mut at = 0;
    let mut sizes = [a, b].into_iter().cycle();
    let split = loop {
        let end = (at + sizes.next().unwrap_or(1)).min(input.len());
        match sc.scan(&input[at..end]) {
            Err(e) => break Err(e),
            Ok((n, true)) => break Ok((at + n, true)),
            Ok((n, false)) => {
                assert_eq!(n, end - at);
                at = end;
                if at == input.len() {
                    break Ok((at, false));
                }
            }
        }
    };
    match (&whole, &split) {
        (Ok(w), Ok(s)) => assert_eq!(w, s),
        (Err(_), Err(_)) => {}
        _ => panic!("whole {whole:?} vs split {split:?}"),
    }
    match dechunk(input, 1 << 16) {
        Ok(Status::Complete((n, body))) => {
            assert_eq!(whole, Ok((n, true)));
            assert!(body.len() <= n && body.len() <= 1 << 16);
        }
        Ok(Status::Partial) => assert_eq!(whole, Ok((input.len(), false))),
        Err(_) => {}
    }

    let _ = percent_decode(&String::from_utf8_lossy(input));
});
