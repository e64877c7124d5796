//! Any text through the SDP reader, the candidate rewrite and the JSON
//! envelope: no panic; the rewrite leaves no candidate but the proxy's and
//! keeps the ICE credentials it found before.
#![no_main]

use libfuzzer_sys::fuzz_target;
use srs_protocols::sdp::{candidate_addrs, first_udp_port, ice_credentials, rewrite_candidates, split_streamurl, Envelope};

fuzz_target!(|data: &[u8]| {
    let _ = Envelope::parse(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = split_streamurl(text);
    let _ = first_udp_port(text);
    let before = ice_credentials(text).map(|c| (c.ufrag.to_string(), c.pwd.to_string()));
    let proxy = ["127.0.0.1:18000".parse().unwrap()];
    let out = rewrite_candidates(text, &proxy);
    for (ip, port) in candidate_addrs(&out) {
        assert_eq!((ip.to_string().as_str(), port), ("127.0.0.1", 18000), "{out:?}");
    }
    if let Ok(b) = before {
        let after = ice_credentials(&out).map(|c| (c.ufrag.to_string(), c.pwd.to_string()));
        assert_eq!(after, Ok(b));
    }
});
