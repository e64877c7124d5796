//! SRT datagrams: the header, the handshake with its extension walk, the
//! stream id decode and its access-control parse, and the writers fed with
//! whatever parsed: no panic, and what the writers produce parses back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use srs_protocols::srt::handshake::{self, Handshake, HsType, Reject, HS_LEN, MAX_SID_LEN};
use srs_protocols::srt::{packet, streamid};

fuzz_target!(|data: &[u8]| {
    let _ = packet::parse(data);
    let Ok(hs) = Handshake::parse(data) else { return };
    let n = hs.extensions().map(|e| e.body.len() + 4).sum::<usize>();
    assert!(n <= data.len() - HS_LEN);
    let mut sid = [0u8; MAX_SID_LEN];
    if let Ok(Some(s)) = hs.stream_id(&mut sid) {
        if let Ok(p) = streamid::parse(s) {
            assert!(!p.resource.is_empty());
        }
    }
    let ip = "127.0.0.1".parse().unwrap();
    let mut out = [0u8; HS_LEN];
    handshake::write_induction_response(&hs, 1, 2, ip, &mut out);
    assert_eq!(Handshake::parse(&out).unwrap().hs_type(), HsType::Induction);
    handshake::write_rejection(&hs, Reject::BadRequest, 2, &mut out);
    assert_eq!(Handshake::parse(&out).unwrap().hs_type(), HsType::Rejection(2400));
    handshake::write_induction_request(&hs, 2, ip, &mut out);
    assert_eq!(Handshake::parse(&out).unwrap().socket_id(), hs.socket_id());
});
