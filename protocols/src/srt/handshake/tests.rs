//! Table tests: handshakes captured on loopback between real callers and a
//! real listener (FFmpeg 5 / libsrt 1.5.1 and srt-live-transmit 1.5.1
//! calling `srt-live-transmit srt://:PORT?mode=listener`, relayed through a
//! UDP forwarder that logged each handshake datagram), then malformed ones.

use super::*;

const FFMPEG_PUB_1: &str = "8000000000000000000000cd0000000000000004000000027fc2f1da000005dc000020000000000133ac1e98000000000100007f000000000000000000000000";
const FFMPEG_PUB_2: &str = "80000000000000000009c49b33ac1e980000000500004a177fc2f1da000005dc000020000000000133ac1e98d5aacf0c0100007f000000000000000000000000";
const FFMPEG_PUB_3: &str = "8000000000000000000002f10000000000000005000000057fc2f1da000005dc00002000ffffffff33ac1e98d5aacf0c0100007f0000000000000000000000000001000300010501000000bf00780000000500083a3a2123696c3d726c2f657673657669616572743d6d2c6d6c62757000687369";
const FFMPEG_PUB_4: &str = "80000000000000000000019633ac1e9800000005000000017fc2f1da000005dc00002000ffffffff0c6a61d5d5aacf0c0100007f0000000000000000000000000002000300010501000000bf00780078";
const FFMPEG_PASS_1: &str = "8000000000000000000000ae0000000000000004000000023fa48d7f000005dc00002000000000013c089cdf000000000100007f000000000000000000000000";
const FFMPEG_PASS_2: &str = "80000000000000000009356e3c089cdf0000000500044a173fa48d7f000005dc00002000000000013c089cdfbb009a5d0100007f000000000000000000000000";
const FFMPEG_PASS_3: &str = "80000000000000000000087b0000000000000005000400073fa48d7f000005dc00002000ffffffff3c089cdfbb009a5d0100007f0000000000000000000000000001000300010501000000bf00780000000500083a3a2123696c3d726c2f657673657669616572743d6d2c6d6c62757000687369000300121220290100000000020002000000040818b8ce1d32647aa1e0f781edd5170d31536297c94a91cdb0f40690da1e132fdcc5e905801258ac68eba61ecd5d2ec4976c2c9d1d32f24d6f";
const FFMPEG_PASS_4: &str = "80000000000000000000070c3c089cdf00000005000400033fa48d7f000005dc00002000ffffffff020caa29bb009a5d0100007f0000000000000000000000000002000300010501000000bf00780078000400121220290100000000020002000000040818b8ce1d32647aa1e0f781edd5170d31536297c94a91cdb0f40690da1e132fdcc5e905801258ac68eba61ecd5d2ec4976c2c9d1d32f24d6f";
const FFMPEG_BADPASS_1: &str = "800000000000000000000120000000000000000400000002537818eb000005dc00002000000000012f179cd1000000000100007f000000000000000000000000";
const FFMPEG_BADPASS_2: &str = "8000000000000000000acd272f179cd10000000500044a17537818eb000005dc00002000000000012f179cd1abb95bd90100007f000000000000000000000000";
const FFMPEG_BADPASS_3: &str = "8000000000000000000008d0000000000000000500040007537818eb000005dc00002000ffffffff2f179cd1abb95bd90100007f0000000000000000000000000001000300010501000000bf00780000000500083a3a2123696c3d726c2f657673657669616572743d6d2c6d6c627570006873690003001212202901000000000200020000000408ab54603e7653c9cb80cfece5044e1de2490fc73792ed58d60f21f1e9a1e8749741e23204d40887d6e062bc8e4b92486d9468920381f27148";
const FFMPEG_BADPASS_4: &str = "8000000000000000000ae3db2f179cd10000000500040007537818eb000005dc00002000000003f22fe873b2abb95bd90100007f000000000000000000000000";
const SLT_REQ_1: &str = "8000000000000000000000d700000000000000040000000244385f8d000005dc00002000000000010cc58ab6000000000100007f000000000000000000000000";
const SLT_REQ_2: &str = "80000000000000000007b3f50cc58ab60000000500004a1744385f8d000005dc00002000000000010cc58ab6044fec280100007f000000000000000000000000";
const SLT_REQ_3: &str = "8000000000000000000009e600000000000000050000000544385f8d000005dc00002000ffffffff0cc58ab6044fec280100007f0000000000000000000000000001000300010501000000bf00780000000500093a3a212378653d686c706d616f632e653d722c6d6576696c6d2c732f7165723d74736575";
const SLT_REQ_4: &str = "8000000000000000000001b60cc58ab6000000050000000144385f8d000005dc00002000ffffffff19f674e5044fec280100007f0000000000000000000000000002000300010501000000bf00780078";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn sid_of(b: &[u8]) -> Option<String> {
    let mut out = [0u8; MAX_SID_LEN];
    Handshake::parse(b).unwrap().stream_id(&mut out).unwrap().map(String::from)
}

fn kinds(b: &[u8]) -> Vec<u16> {
    Handshake::parse(b).unwrap().extensions().map(|e| e.kind).collect()
}

#[test]
fn ffmpeg_induction() {
    let b = hex(FFMPEG_PUB_1);
    let hs = Handshake::parse(&b).unwrap();
    assert_eq!(hs.hs_type(), HsType::Induction);
    assert_eq!((hs.version(), hs.encryption(), hs.extension_field()), (4, 0, 2));
    assert_eq!((hs.dst(), hs.cookie()), (SrtSocketId(0), 0));
    assert_eq!((hs.mtu(), hs.flow_window()), (1500, 8192));
    assert_eq!(hs.socket_id(), SrtSocketId(0x33ac1e98));
    assert_eq!(hs.peer_ip(), &peer_ip_field("127.0.0.1".parse().unwrap()));
    assert_eq!(hs.extensions().count(), 0);
}

#[test]
fn listener_induction_answer_is_what_we_write() {
    let req = hex(FFMPEG_PUB_1);
    let answer = hex(FFMPEG_PUB_2);
    let hs = Handshake::parse(&req).unwrap();
    let theirs = Handshake::parse(&answer).unwrap();
    let mut out = [0u8; HS_LEN];
    let n = write_induction_response(&hs, theirs.cookie(), theirs.timestamp(), "127.0.0.1".parse().unwrap(), &mut out);
    assert_eq!(&out[..n], &answer[..]);
}

#[test]
fn ffmpeg_conclusion_publish() {
    let b = hex(FFMPEG_PUB_3);
    let hs = Handshake::parse(&b).unwrap();
    assert_eq!(hs.hs_type(), HsType::Conclusion);
    assert_eq!((hs.version(), hs.encryption(), hs.extension_field()), (5, 0, 5));
    assert_eq!(hs.cookie(), 0xd5aacf0c);
    assert_eq!(kinds(&b), vec![ext::HSREQ, ext::SID]);
    assert_eq!(sid_of(&b).as_deref(), Some("#!::r=live/livestream,m=publish"));
}

#[test]
fn listener_conclusion_answer() {
    let b = hex(FFMPEG_PUB_4);
    let hs = Handshake::parse(&b).unwrap();
    assert_eq!(hs.hs_type(), HsType::Conclusion);
    assert_eq!(hs.dst(), SrtSocketId(0x33ac1e98));
    assert_eq!(hs.socket_id(), SrtSocketId(0x0c6a61d5));
    assert_eq!(kinds(&b), vec![ext::HSRSP]);
    assert_eq!(sid_of(&b), None);
}

#[test]
fn ffmpeg_conclusion_with_passphrase_carries_kmreq() {
    let b = hex(FFMPEG_PASS_3);
    let hs = Handshake::parse(&b).unwrap();
    assert_eq!(hs.encryption(), 4, "pbkeylen=32 is encryption field 4");
    assert_eq!(kinds(&b), vec![ext::HSREQ, ext::SID, ext::KMREQ]);
    assert_eq!(sid_of(&b).as_deref(), Some("#!::r=live/livestream,m=publish"));
    let answer = hex(FFMPEG_PASS_4);
    assert_eq!(kinds(&answer), vec![ext::HSRSP, ext::KMRSP]);
}

#[test]
fn wrong_passphrase_is_rejected_with_badsecret() {
    let b = hex(FFMPEG_BADPASS_4);
    let hs = Handshake::parse(&b).unwrap();
    assert_eq!(hs.hs_type(), HsType::Rejection(1010));
    assert_eq!(hs.extensions().count(), 0);
}

#[test]
fn our_rejection_looks_like_libsrts() {
    let req = hex(FFMPEG_BADPASS_3);
    let theirs = hex(FFMPEG_BADPASS_4);
    let r = Handshake::parse(&req).unwrap();
    let mut out = [0u8; HS_LEN];
    let n = write_rejection(&r, Reject::Peer, 7, &mut out);
    let ours = Handshake::parse(&out[..n]).unwrap();
    let t = Handshake::parse(&theirs).unwrap();
    assert_eq!(ours.hs_type(), HsType::Rejection(1002));
    assert_eq!((ours.dst(), ours.version(), ours.cookie()), (t.dst(), t.version(), t.cookie()));
    assert_eq!((ours.isn(), ours.mtu(), ours.flow_window()), (t.isn(), t.mtu(), t.flow_window()));
    assert_eq!(ours.timestamp(), 7);
}

#[test]
fn srt_live_transmit_conclusion_with_host() {
    let b = hex(SLT_REQ_3);
    assert_eq!(sid_of(&b).as_deref(), Some("#!::h=example.com,r=live/s,m=request"));
}

#[test]
fn induction_request_toward_an_origin_matches_the_callers() {
    let conclusion = hex(FFMPEG_PUB_3);
    let induction = hex(FFMPEG_PUB_1);
    let c = Handshake::parse(&conclusion).unwrap();
    let i = Handshake::parse(&induction).unwrap();
    let mut out = [0u8; HS_LEN];
    let n = write_induction_request(&c, i.timestamp(), "127.0.0.1".parse().unwrap(), &mut out);
    assert_eq!(&out[..n], &induction[..]);
}

#[test]
fn rewrites_touch_only_their_field() {
    let mut b = hex(FFMPEG_PASS_4);
    let before = b.clone();
    set_socket_id(&mut b, SrtSocketId(0x0123_4567));
    set_cookie(&mut b, 0x89ab_cdef);
    let hs = Handshake::parse(&b).unwrap();
    assert_eq!((hs.socket_id(), hs.cookie()), (SrtSocketId(0x0123_4567), 0x89ab_cdef));
    assert_eq!(&b[..40], &before[..40]);
    assert_eq!(&b[48..], &before[48..]);
}

#[test]
fn reject_codes_on_the_wire() {
    assert_eq!(Reject::Peer.wire(), 1002);
    assert_eq!(Reject::Timeout.wire(), 1016);
    assert_eq!(Reject::Close.wire(), 1007);
    assert_eq!(Reject::BadRequest.wire(), 2400);
    assert_eq!(Reject::BadGateway.wire(), 2502);
    assert_eq!(Reject::Unavailable.wire(), 2503);
    assert_eq!(HsType::from_wire(Reject::NoRoom.wire()), HsType::Rejection(2507));
}

/// A conclusion made of the captured body and the given extension bytes.
fn with_ext(ext: &[u8]) -> Vec<u8> {
    let mut b = hex(FFMPEG_PUB_3)[..HS_LEN].to_vec();
    b.extend_from_slice(ext);
    b
}

macro_rules! bad {
    ($($name:ident: $bytes:expr => $err:expr;)*) => {$(
        #[test]
        fn $name() {
            let b: Vec<u8> = $bytes;
            assert_eq!(Handshake::parse(&b).err(), Some($err));
        }
    )*};
}

bad! {
    bad_empty: vec![] => HsError::NotHandshake;
    bad_three_bytes: vec![0x80, 0, 0] => HsError::NotHandshake;
    bad_data_packet: { let mut b = hex(FFMPEG_PUB_1); b[0] = 0; b } => HsError::NotHandshake;
    bad_keepalive: { let mut b = hex(FFMPEG_PUB_1); b[1] = 1; b } => HsError::NotHandshake;
    bad_subtype: { let mut b = hex(FFMPEG_PUB_1); b[3] = 1; b } => HsError::NotHandshake;
    bad_short_body: hex(FFMPEG_PUB_1)[..63].to_vec() => HsError::TooShort(63);
    bad_header_only: hex(FFMPEG_PUB_1)[..16].to_vec() => HsError::TooShort(16);
    bad_ext_overrun: with_ext(&[0, 1, 0, 3, 0, 0, 0, 0]) => HsError::ExtensionOverrun(64);
    bad_ext_len_max: with_ext(&[0, 5, 0xff, 0xff, 1, 2, 3, 4]) => HsError::ExtensionOverrun(64);
    bad_ext_trailing: with_ext(&[0, 1, 0, 0, 9, 9]) => HsError::TrailingBytes(2);
    bad_second_ext_overrun: with_ext(&[0, 1, 0, 0, 0, 5, 0, 2, 0x41, 0x41, 0x41, 0x41]) => HsError::ExtensionOverrun(68);
    bad_two_sids: with_ext(&[0, 5, 0, 1, 0x61, 0x2f, 0x62, 0x63, 0, 5, 0, 1, 0x61, 0x2f, 0x62, 0x63]) => HsError::DuplicateStreamId;
    bad_sid_too_long: { let mut e = vec![0, 5, 0, 129]; e.resize(4 + 129 * 4, b'a'); with_ext(&e) } => HsError::StreamIdTooLong(516);
}

#[test]
fn sid_that_is_not_text_is_an_error_not_a_panic() {
    let b = with_ext(&[0, 5, 0, 1, 0xff, 0xfe, 0x61, 0x61]);
    let mut out = [0u8; MAX_SID_LEN];
    assert_eq!(Handshake::parse(&b).unwrap().stream_id(&mut out), Err(HsError::StreamIdNotText));
}

#[test]
fn sid_all_nul_is_empty_and_max_len_fits() {
    assert_eq!(sid_of(&with_ext(&[0, 5, 0, 1, 0, 0, 0, 0])).as_deref(), Some(""));
    let mut e = vec![0, 5, 0, 128];
    e.resize(4 + 512, b'a');
    assert_eq!(sid_of(&with_ext(&e)).map(|s| s.len()), Some(512));
}

#[test]
fn hsv4_trailing_bytes_are_not_read_as_extensions() {
    let mut b = hex(FFMPEG_PUB_1);
    b.extend_from_slice(&[0, 5, 0xff, 0xff]);
    let hs = Handshake::parse(&b).unwrap();
    assert_eq!(hs.extensions().count(), 0);
}

/// Each capture: caller induction, listener answer, caller conclusion,
/// listener answer (or rejection).
const CAPTURES: [(&str, [&str; 4]); 4] = [
    ("ffmpeg publish", [FFMPEG_PUB_1, FFMPEG_PUB_2, FFMPEG_PUB_3, FFMPEG_PUB_4]),
    ("ffmpeg passphrase", [FFMPEG_PASS_1, FFMPEG_PASS_2, FFMPEG_PASS_3, FFMPEG_PASS_4]),
    ("ffmpeg wrong passphrase", [FFMPEG_BADPASS_1, FFMPEG_BADPASS_2, FFMPEG_BADPASS_3, FFMPEG_BADPASS_4]),
    ("srt-live-transmit request", [SLT_REQ_1, SLT_REQ_2, SLT_REQ_3, SLT_REQ_4]),
];

#[test]
fn every_capture_parses_and_our_writers_match_the_callers_and_listeners() {
    let lo = "127.0.0.1".parse().unwrap();
    for (what, [ind, ans, con, fin]) in CAPTURES {
        let (ind, ans, con, fin) = (hex(ind), hex(ans), hex(con), hex(fin));
        let (i, a, c, f) = (
            Handshake::parse(&ind).unwrap(),
            Handshake::parse(&ans).unwrap(),
            Handshake::parse(&con).unwrap(),
            Handshake::parse(&fin).unwrap(),
        );
        assert_eq!((i.hs_type(), a.hs_type(), c.hs_type()), (HsType::Induction, HsType::Induction, HsType::Conclusion));
        assert!(matches!(f.hs_type(), HsType::Conclusion | HsType::Rejection(_)), "{what}");
        let mut out = [0u8; HS_LEN];
        write_induction_response(&i, a.cookie(), a.timestamp(), lo, &mut out);
        // A listener with a passphrase advertises its key length in the
        // encryption field (4: AES-256); the proxy knows no key and says 0,
        // and the caller keeps its own pbkeylen (the e2e test with a
        // passphrase shows it works).
        assert_eq!((&out[..20], &out[22..]), (&ans[..20], &ans[22..]), "{what}: our induction answer");
        assert_eq!(u16::from_be_bytes([out[20], out[21]]), 0);
        write_induction_request(&c, i.timestamp(), lo, &mut out);
        assert_eq!(&out[..], &ind[..], "{what}: the induction rebuilt from the conclusion");
        assert_eq!((c.cookie(), f.cookie()), (a.cookie(), a.cookie()), "{what}: cookies echoed");
        assert_eq!((c.socket_id(), f.dst()), (i.socket_id(), i.socket_id()), "{what}");
        assert!(sid_of(&con).is_some(), "{what}: a stream id");
    }
}
