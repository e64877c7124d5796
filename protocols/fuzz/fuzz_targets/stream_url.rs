//! The stream key from arbitrary RTMP, HTTP and SRT inputs: no panic, and
//! every key accepted is `vhost/app/stream` with a non-empty app and stream,
//! no empty, dot or control-character segment, within MAX_KEY_LEN, and the
//! same key whichever way it is split back into parts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use srs_protocols::stream_url::{from_http, from_rtmp, from_srt, StreamUrl, MAX_KEY_LEN};

fn check(key: &StreamUrl) {
    let s = key.as_str();
    assert!(s.len() <= MAX_KEY_LEN, "{s:?}");
    let (vhost, app, stream) = (key.vhost(), key.app(), key.stream());
    assert!(!vhost.is_empty() && !app.is_empty() && !stream.is_empty(), "{s:?}");
    assert_eq!(format!("{vhost}/{app}/{stream}"), s);
    for seg in app.split('/').chain([stream]) {
        assert!(!seg.is_empty() && seg != "." && seg != "..", "{s:?}");
        assert!(!seg.chars().any(char::is_control), "{s:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    // The input split in three at bytes 0 and 1 (lengths), as text.
    let text = String::from_utf8_lossy(data.get(2..).unwrap_or_default());
    let b = |i: usize| data.get(i).map_or(0, |&n| usize::from(n));
    let cut = |at: usize| text.floor_char_boundary(at.min(text.len()));
    let (one, rest) = text.split_at(cut(b(0)));
    let (two, three) = rest.split_at(rest.floor_char_boundary(b(1).min(rest.len())));

    if let Ok(k) = from_rtmp(one, rest) {
        check(&k);
    }
    if let Ok(k) = from_rtmp(&format!("rtmp://{one}"), rest) {
        check(&k);
    }
    let host = (!one.is_empty()).then_some(one);
    if let Ok((k, ext)) = from_http(host, &format!("/{two}"), three) {
        check(&k);
        assert!(two.ends_with(ext), "{two:?} {ext:?}");
    }
    if let Ok(k) = from_srt(host, rest) {
        check(&k);
    }
});
