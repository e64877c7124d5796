//! The playlist rewrite on arbitrary bytes with an arbitrary id: no panic;
//! with a valid id the output keeps every line ending and every `#` line
//! except URI attributes, every changed line carries the id, and rewriting
//! again with the same id changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use srs_protocols::hls::{is_playlist, rewrite_playlist, spbhid_of, valid_spbhid};

fuzz_target!(|data: &[u8]| {
    // First byte: id length; then the id; the rest is the playlist.
    let (id, body) = match data.split_first() {
        Some((&n, rest)) => rest.split_at(usize::from(n % 40).min(rest.len())),
        None => (&b""[..], data),
    };
    let id = String::from_utf8_lossy(id);
    let _ = spbhid_of(&String::from_utf8_lossy(body));
    let out = rewrite_playlist(body, &id);
    if !valid_spbhid(&id) || !is_playlist(body) {
        assert!(out.is_none());
        // A valid id must work on the same body when it is a playlist.
        if is_playlist(body) {
            assert!(rewrite_playlist(body, "fuzz").is_some());
        }
        return;
    }
    let out = out.expect("a playlist with a valid id is rewritten");
    // Same number of lines, same line endings, same comment and tag lines
    // apart from URI attributes.
    let lines_in: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    let lines_out: Vec<&[u8]> = out.split(|&b| b == b'\n').collect();
    assert_eq!(lines_in.len(), lines_out.len());
    for (a, b) in lines_in.iter().zip(&lines_out) {
        assert_eq!(a.ends_with(b"\r"), b.ends_with(b"\r"));
        let a_tag = a.trim_ascii_start().starts_with(b"#");
        assert_eq!(a_tag, b.trim_ascii_start().starts_with(b"#"));
        if a_tag && !has_uri_attr(a) {
            assert_eq!(a, b);
        }
        // A changed line carries the id.
        let with_id = format!("spbhid={id}");
        assert!(a == b || b.windows(with_id.len()).any(|w| w == with_id.as_bytes()));
    }
    // Idempotent: the id is already everywhere it goes.
    let again = rewrite_playlist(&out, &id).expect("still a playlist");
    assert!(again == out, "rewrite is not idempotent");
});

/// `URI`, optional blanks, `=`: what the rewrite treats as a URI attribute
/// (it tolerates blanks around `=`, as sloppy real playlists have).
fn has_uri_attr(line: &[u8]) -> bool {
    line.windows(3).enumerate().any(|(i, w)| {
        w == b"URI" && line[i + 3..].iter().find(|&&b| b != b' ').is_some_and(|&b| b == b'=')
    })
}
