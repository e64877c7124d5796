//! The RTMP handshake, as typestates: each state consumes itself to produce
//! the next, so an out-of-order step does not compile.
//!
//! Server role: [`ExpectC0C1`] → [`ExpectC2`] → [`Done`]. Client role (the
//! proxy dialling an origin): [`ClientHandshake::start`] → [`ExpectS0S1S2`]
//! → [`Done`].
//!
//! Input is httparse-style: the caller keeps the unread bytes and calls
//! `handle` again with all of them; on [`Step::Partial`] nothing was
//! consumed. On [`Step::Complete`] exactly `consumed` bytes were used, and
//! whatever follows belongs to the chunk stream.
//!
//! # Simple and complex handshakes
//!
//! C1 and S1 are `time(4) version(4) random(1528)`. In the *simple*
//! handshake the version is zero and S2 echoes C1. Flash Player, FFmpeg and
//! OBS send a *complex* ("digest", FP9) C1 instead: the 1528 bytes are two
//! 764-byte blocks, a key block and a digest block, in either order
//! ([`Schema`]). A digest block starts with 4 bytes whose sum, modulo 728,
//! places a 32-byte HMAC-SHA256 of the rest of C1, keyed with the first 30
//! bytes of the Flash Player key. When C1 carries a valid digest the server
//! answers in kind: S1 gets a non-zero version and its own digest (the first
//! 36 bytes of the Flash Media Server key) in the same schema, and S2 is
//! 1504 random bytes followed by `HMAC(HMAC(full FMS key, C1 digest),
//! those 1504 bytes)`. FFmpeg checks both when it plays a stream.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Random bytes the caller supplies for S1/S2 (server) or C1 (client).
pub const RANDOM_LEN: usize = 1536;
/// Length of C1, S1, C2 and S2.
pub const PACKET_LEN: usize = 1536;
/// C0 + C1, what [`ExpectC0C1`] needs.
pub const C0C1_LEN: usize = 1 + PACKET_LEN;
/// S0 + S1 + S2, what [`ExpectS0S1S2`] needs and the server writes.
pub const S0S1S2_LEN: usize = 1 + 2 * PACKET_LEN;
/// C2, what [`ExpectC2`] needs.
pub const C2_LEN: usize = PACKET_LEN;

/// The only RTMP version spoken here (C0/S0).
const RTMP_VERSION: u8 = 3;
/// C0 of RTMPE, the obfuscated variant, which is not supported.
const RTMPE_VERSION: u8 = 6;
/// S1's version field in a complex handshake. FFmpeg checks the digests
/// only when the first byte is at least 3.
const SERVER_VERSION: [u8; 4] = [0x04, 0x05, 0x00, 0x01];

const DIGEST_LEN: usize = 32;
/// Bytes of the key and digest blocks in C1/S1.
const BLOCK_LEN: usize = 764;
/// Where the digest may sit within its block (after the 4 offset bytes).
const DIGEST_RANGE: usize = BLOCK_LEN - DIGEST_LEN - 4;

/// The 32 bytes both well-known keys end with.
const KEY_TAIL: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D,
    0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];
/// The open part of the client key, which signs C1.
const FP_KEY_OPEN: &[u8; 30] = b"Genuine Adobe Flash Player 001";
/// The open part of the server key, which signs S1.
const FMS_KEY_OPEN: &[u8; 36] = b"Genuine Adobe Flash Media Server 001";

/// What a `handle` call produced: still waiting, or done with this state.
#[derive(Debug)]
pub enum Step<S, N> {
    /// More bytes are needed; nothing was consumed. Call again on the same
    /// state with the bytes seen so far plus new ones.
    Partial(S),
    /// This step is over: `consumed` bytes of the input were used.
    Complete { consumed: usize, next: N },
}

/// Which handshake the server answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeKind {
    /// Version-0 C1: S2 echoes C1.
    Simple,
    /// C1 had a valid digest: S1 and S2 carry digests.
    Complex,
}

/// Why the handshake failed. Every case is the peer's doing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// C0 or S0 is not 3.
    UnsupportedVersion(u8),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::UnsupportedVersion(RTMPE_VERSION) => {
                f.write_str("RTMP version 6 is RTMPE (encrypted RTMP), which is not supported")
            }
            HandshakeError::UnsupportedVersion(v) => {
                write!(f, "unsupported RTMP version {v} (expected 3)")
            }
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Server role, first state: waiting for C0 and C1.
#[derive(Debug)]
pub struct ExpectC0C1 {
    random: Box<[u8; RANDOM_LEN]>,
    epoch: u32,
}

impl ExpectC0C1 {
    /// `random` fills S1 and S2; `epoch` is S1's time field (milliseconds).
    pub fn new(random: &[u8; RANDOM_LEN], epoch: u32) -> Self {
        ExpectC0C1 { random: Box::new(*random), epoch }
    }

    /// Needs [`C0C1_LEN`] bytes. On `Complete`, S0+S1+S2 ([`S0S1S2_LEN`]
    /// bytes) were appended to `out`. A bad C0 is reported as soon as its
    /// byte arrives.
    pub fn handle(self, buf: &[u8], out: &mut Vec<u8>) -> Result<Step<Self, ExpectC2>, HandshakeError> {
        let Some(&c0) = buf.first() else {
            return Ok(Step::Partial(self));
        };
        if c0 != RTMP_VERSION {
            return Err(HandshakeError::UnsupportedVersion(c0));
        }
        let Some(c1) = packet(buf, 1) else {
            return Ok(Step::Partial(self));
        };

        let start = out.len();
        out.reserve(S0S1S2_LEN);
        out.push(RTMP_VERSION);
        let kind = match find_digest(c1, FP_KEY_OPEN) {
            Some((schema, c1_digest)) => {
                out.extend_from_slice(&self.complex_s1(schema));
                out.extend_from_slice(&self.complex_s2(&c1_digest));
                HandshakeKind::Complex
            }
            None => {
                out.extend_from_slice(&s1_or_c1(&self.random, self.epoch, [0; 4]));
                out.extend_from_slice(c1);
                HandshakeKind::Simple
            }
        };
        debug_assert_eq!(out.len() - start, S0S1S2_LEN);
        Ok(Step::Complete { consumed: C0C1_LEN, next: ExpectC2 { kind } })
    }

    /// S1 with the server version and a digest placed per `schema`.
    fn complex_s1(&self, schema: Schema) -> [u8; PACKET_LEN] {
        let mut s1 = s1_or_c1(&self.random, self.epoch, SERVER_VERSION);
        let digest = packet_digest(&s1, schema, FMS_KEY_OPEN);
        let at = schema.digest_offset(&s1);
        put_digest(&mut s1, at, &digest);
        s1
    }

    /// 1504 random bytes, then their HMAC keyed by C1's digest.
    fn complex_s2(&self, c1_digest: &[u8; DIGEST_LEN]) -> [u8; PACKET_LEN] {
        // S1 took random[8..]; reusing part of it here is harmless, nothing
        // about these bytes is secret or checked beyond the HMAC.
        let mut s2 = *self.random;
        s2.rotate_left(DIGEST_LEN);
        let key = hmac_sha256(&[FMS_KEY_OPEN, &KEY_TAIL], &[c1_digest]);
        let (data, sig) = s2.split_at_mut(PACKET_LEN - DIGEST_LEN);
        sig.copy_from_slice(&hmac_sha256(&[&key], &[data]));
        s2
    }
}

/// Server role, second state: S0+S1+S2 are out, waiting for C2.
#[derive(Debug)]
pub struct ExpectC2 {
    kind: HandshakeKind,
}

impl ExpectC2 {
    /// Which handshake was answered.
    pub fn kind(&self) -> HandshakeKind {
        self.kind
    }

    /// Needs [`C2_LEN`] bytes. C2's content is not checked: real clients
    /// disagree about it.
    pub fn handle(self, buf: &[u8]) -> Result<Step<Self, Done>, HandshakeError> {
        if buf.len() < C2_LEN {
            return Ok(Step::Partial(self));
        }
        Ok(Step::Complete { consumed: C2_LEN, next: Done { kind: self.kind } })
    }
}

/// The handshake is over; the chunk stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    pub kind: HandshakeKind,
}

/// Client role: the proxy connecting to an origin, with a simple handshake
/// (C1 version 0), which every RTMP server accepts.
#[derive(Debug)]
pub struct ClientHandshake;

impl ClientHandshake {
    /// Appends C0+C1 to `out`. C1 is `epoch`, four zero bytes, and
    /// `random[8..]`.
    pub fn start(random: &[u8; RANDOM_LEN], epoch: u32, out: &mut Vec<u8>) -> ExpectS0S1S2 {
        out.reserve(C0C1_LEN);
        out.push(RTMP_VERSION);
        out.extend_from_slice(&s1_or_c1(random, epoch, [0; 4]));
        ExpectS0S1S2 { _private: () }
    }
}

/// Client role: C0+C1 are out, waiting for S0+S1+S2.
#[derive(Debug)]
pub struct ExpectS0S1S2 {
    _private: (),
}

impl ExpectS0S1S2 {
    /// Needs [`S0S1S2_LEN`] bytes; on `Complete` appends C2 (an echo of S1)
    /// to `out`. S1 and S2 are not checked (a simple C1 gets no digests to
    /// check). A bad S0 is reported as soon as its byte arrives.
    pub fn handle(self, buf: &[u8], out: &mut Vec<u8>) -> Result<Step<Self, Done>, HandshakeError> {
        let Some(&s0) = buf.first() else {
            return Ok(Step::Partial(self));
        };
        if s0 != RTMP_VERSION {
            return Err(HandshakeError::UnsupportedVersion(s0));
        }
        let (Some(s1), Some(_s2)) = (packet(buf, 1), packet(buf, 1 + PACKET_LEN)) else {
            return Ok(Step::Partial(self));
        };
        out.extend_from_slice(s1);
        Ok(Step::Complete { consumed: S0S1S2_LEN, next: Done { kind: HandshakeKind::Simple } })
    }
}

/// Where the digest block sits in C1/S1. Both are in use: FFmpeg and Flash
/// Player put the digest block first, RTMPE clients put the key first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schema {
    /// Digest block at offset 8, key block at 772.
    DigestFirst,
    /// Key block at offset 8, digest block at 772.
    KeyFirst,
}

impl Schema {
    const ALL: [Schema; 2] = [Schema::DigestFirst, Schema::KeyFirst];

    fn digest_block(self) -> usize {
        match self {
            Schema::DigestFirst => 8,
            Schema::KeyFirst => 8 + BLOCK_LEN,
        }
    }

    /// Offset of the 32 digest bytes in the packet: at most
    /// 772 + 4 + 727 = 1503, so the digest always fits.
    fn digest_offset(self, packet: &[u8; PACKET_LEN]) -> usize {
        let block = self.digest_block();
        let sum: usize = packet.iter().skip(block).take(4).map(|&b| usize::from(b)).sum();
        block + 4 + sum % DIGEST_RANGE
    }
}

/// `time(4) version(4) random[8..]`, the shape of both C1 and S1.
fn s1_or_c1(random: &[u8; RANDOM_LEN], epoch: u32, version: [u8; 4]) -> [u8; PACKET_LEN] {
    let mut p = *random;
    let (head, _) = p.split_at_mut(8);
    let (time, ver) = head.split_at_mut(4);
    time.copy_from_slice(&epoch.to_be_bytes());
    ver.copy_from_slice(&version);
    p
}

/// The 1536-byte packet starting at `at`, if `buf` holds all of it.
fn packet(buf: &[u8], at: usize) -> Option<&[u8; PACKET_LEN]> {
    buf.get(at..at.checked_add(PACKET_LEN)?)?.try_into().ok()
}

/// HMAC-SHA256 of `packet` minus the 32 digest bytes `schema` places.
fn packet_digest(packet: &[u8; PACKET_LEN], schema: Schema, key: &[u8]) -> [u8; DIGEST_LEN] {
    let at = schema.digest_offset(packet);
    let before = packet.get(..at).unwrap_or_default();
    let after = packet.get(at + DIGEST_LEN..).unwrap_or_default();
    hmac_sha256(&[key], &[before, after])
}

/// The schema whose digest in `c1` verifies with `key`, and that digest.
fn find_digest(c1: &[u8; PACKET_LEN], key: &[u8]) -> Option<(Schema, [u8; DIGEST_LEN])> {
    Schema::ALL.into_iter().find_map(|schema| {
        let at = schema.digest_offset(c1);
        let expected = packet_digest(c1, schema, key);
        let sent = c1.get(at..at + DIGEST_LEN)?;
        (sent == expected).then_some((schema, expected))
    })
}

fn put_digest(packet: &mut [u8; PACKET_LEN], at: usize, digest: &[u8; DIGEST_LEN]) {
    if let Some(slot) = packet.get_mut(at..at + DIGEST_LEN) {
        slot.copy_from_slice(digest);
    }
}

/// HMAC-SHA256 with the key and the data each given in pieces.
fn hmac_sha256(key: &[&[u8]], data: &[&[u8]]) -> [u8; DIGEST_LEN] {
    // The handshake's keys are at most 68 bytes: joined on the stack.
    let mut stack = [0u8; 128];
    let heap;
    let total: usize = key.iter().map(|k| k.len()).sum();
    let joined: &[u8] = if total <= stack.len() {
        let mut at = 0;
        for part in key {
            if let Some(dst) = stack.get_mut(at..at + part.len()) {
                dst.copy_from_slice(part);
            }
            at += part.len();
        }
        stack.get(..total).unwrap_or_default()
    } else {
        heap = key.concat();
        &heap
    };
    // HMAC takes keys of any length, so this cannot fail; a zero digest
    // would merely make a complex handshake fall back to simple.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(joined) else {
        return [0; DIGEST_LEN];
    };
    for d in data {
        mac.update(d);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(seed: u8) -> [u8; RANDOM_LEN] {
        let mut r = [0u8; RANDOM_LEN];
        fastrand::Rng::with_seed(u64::from(seed)).fill(&mut r);
        r
    }

    fn fp_key_full() -> Vec<u8> {
        [&FP_KEY_OPEN[..], &KEY_TAIL].concat()
    }

    fn fms_key_full() -> Vec<u8> {
        [&FMS_KEY_OPEN[..], &KEY_TAIL].concat()
    }

    fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    #[test]
    fn hmac_in_pieces_matches_the_whole_key_on_the_stack_and_beyond_it() {
        // 68 bytes (the handshake's longest) fit the stack buffer; 200 do not.
        for len in [0, 32, 68, 128, 129, 200] {
            let key: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let (a, b) = key.split_at(len / 3);
            assert_eq!(hmac_sha256(&[a, b], &[b"da", b"ta"]), hmac(&key, b"data"), "key of {len} bytes");
        }
    }

    /// Digest position the way clients compute it: sum of the 4 bytes at
    /// the block start, mod 728, plus block start + 4.
    fn client_digest_pos(p: &[u8], block: usize) -> usize {
        let sum: usize = p[block..block + 4].iter().map(|&b| b as usize).sum();
        sum % 728 + block + 4
    }

    /// Signs `p` in place the way FFmpeg's client does, returns the offset.
    fn imprint(p: &mut [u8], block: usize, key: &[u8]) -> usize {
        let pos = client_digest_pos(p, block);
        let data = [&p[..pos], &p[pos + 32..]].concat();
        let d = hmac(key, &data);
        p[pos..pos + 32].copy_from_slice(&d);
        pos
    }

    /// FFmpeg's rtmp_validate_digest: Some(pos) if the digest verifies.
    fn validate(p: &[u8], block: usize, key: &[u8]) -> Option<usize> {
        let pos = client_digest_pos(p, block);
        let data = [&p[..pos], &p[pos + 32..]].concat();
        (hmac(key, &data)[..] == p[pos..pos + 32]).then_some(pos)
    }

    /// C0 + a complex C1 (FFmpeg's version bytes 9.0.124.2) signed at
    /// `block` (8 = digest first, 772 = key first). Returns it and the
    /// digest offset.
    fn complex_c0c1(seed: u8, block: usize) -> (Vec<u8>, usize) {
        let mut c1 = random(seed).to_vec();
        c1[..4].copy_from_slice(&[0, 0, 0, 0]);
        c1[4..8].copy_from_slice(&[9, 0, 124, 2]);
        let pos = imprint(&mut c1, block, &FP_KEY_OPEN[..]);
        ([&[3u8][..], &c1].concat(), pos)
    }

    fn simple_c0c1(seed: u8) -> Vec<u8> {
        let mut c1 = random(seed).to_vec();
        c1[..8].copy_from_slice(&[0, 0, 0x12, 0x34, 0, 0, 0, 0]);
        [&[3u8][..], &c1].concat()
    }

    fn serve(c0c1: &[u8], server_random: &[u8; RANDOM_LEN]) -> (Vec<u8>, ExpectC2) {
        let mut out = Vec::new();
        match ExpectC0C1::new(server_random, 0x0102_0304).handle(c0c1, &mut out) {
            Ok(Step::Complete { consumed, next }) => {
                assert_eq!(consumed, C0C1_LEN);
                (out, next)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn simple_c1_gets_simple_answer_and_s2_echoes_c1() {
        let c0c1 = simple_c0c1(1);
        let server_random = random(2);
        let (out, next) = serve(&c0c1, &server_random);
        assert_eq!(next.kind(), HandshakeKind::Simple);
        assert_eq!(out.len(), S0S1S2_LEN);
        assert_eq!(out[0], 3);
        // S1: time = epoch, version 0, then the caller's random bytes.
        assert_eq!(out[1..9], [1, 2, 3, 4, 0, 0, 0, 0]);
        assert_eq!(out[9..1537], server_random[8..]);
        // S2 == C1.
        assert_eq!(out[1537..], c0c1[1..]);
    }

    #[test]
    fn c1_with_nonzero_version_but_no_digest_is_simple() {
        let mut c0c1 = simple_c0c1(3);
        c0c1[5..9].copy_from_slice(&[9, 0, 124, 2]);
        let (out, next) = serve(&c0c1, &random(4));
        assert_eq!(next.kind(), HandshakeKind::Simple);
        assert_eq!(out[5..9], [0, 0, 0, 0]);
        assert_eq!(out[1537..], c0c1[1..]);
    }

    /// Checks S0+S1+S2 the way FFmpeg does when it plays (rtmpproto.c):
    /// S1's digest at 772 or else 8 with the 36-byte FMS key, then S2's
    /// trailing signature keyed by HMAC(full FMS key, C1 digest).
    fn check_complex_answer(c0c1: &[u8], c1_pos: usize, block: usize, epoch: u32, out: &[u8]) {
        assert_eq!(out.len(), S0S1S2_LEN);
        assert_eq!(out[0], 3);
        let s1 = &out[1..1537];
        let s2 = &out[1537..];
        assert_eq!(s1[..4], epoch.to_be_bytes());
        assert_eq!(s1[4..8], SERVER_VERSION);
        assert!(s1[4] >= 3, "FFmpeg only validates when version[0] >= 3");
        let fms_open = &fms_key_full()[..36];
        let other = if block == 8 { 772 } else { 8 };
        assert!(validate(s1, block, fms_open).is_some(), "S1 digest in schema {block}");
        assert!(validate(s1, other, fms_open).is_none(), "S1 digest also in {other}");
        // A wrong key does not verify: the check above is meaningful.
        assert!(validate(s1, block, &FP_KEY_OPEN[..]).is_none());

        let c1_digest = &c0c1[1 + c1_pos..1 + c1_pos + 32];
        let key = hmac(&fms_key_full(), c1_digest);
        assert_eq!(hmac(&key, &s2[..1504])[..], s2[1504..]);
    }

    #[test]
    fn complex_c1_digest_first() {
        let (c0c1, pos) = complex_c0c1(5, 8);
        let (out, next) = serve(&c0c1, &random(6));
        assert_eq!(next.kind(), HandshakeKind::Complex);
        check_complex_answer(&c0c1, pos, 8, 0x0102_0304, &out);
    }

    #[test]
    fn complex_c1_key_first() {
        let (c0c1, pos) = complex_c0c1(7, 772);
        assert!(pos >= 776);
        let (out, next) = serve(&c0c1, &random(8));
        assert_eq!(next.kind(), HandshakeKind::Complex);
        check_complex_answer(&c0c1, pos, 772, 0x0102_0304, &out);
    }

    #[test]
    fn complex_c1_many_offsets() {
        // Different seeds land the digest at different offsets, including
        // ones near the end of the block.
        let mut offsets = std::collections::BTreeSet::new();
        for seed in 0..64 {
            for block in [8, 772] {
                let (c0c1, pos) = complex_c0c1(seed, block);
                offsets.insert(pos);
                let (out, next) = serve(&c0c1, &random(seed.wrapping_add(100)));
                assert_eq!(next.kind(), HandshakeKind::Complex, "seed {seed} block {block}");
                check_complex_answer(&c0c1, pos, block, 0x0102_0304, &out);
            }
        }
        assert!(offsets.len() > 100);
    }

    #[test]
    fn complex_c1_signed_with_wrong_key_is_simple() {
        let mut c1 = random(9).to_vec();
        imprint(&mut c1, 8, &FMS_KEY_OPEN[..]);
        let c0c1 = [&[3u8][..], &c1].concat();
        let (out, next) = serve(&c0c1, &random(10));
        assert_eq!(next.kind(), HandshakeKind::Simple);
        assert_eq!(out[1537..], c0c1[1..]);
    }

    #[test]
    fn complex_c1_with_one_flipped_bit_is_simple() {
        let (mut c0c1, _) = complex_c0c1(11, 8);
        c0c1[1000] ^= 0x01;
        let (_, next) = serve(&c0c1, &random(12));
        assert_eq!(next.kind(), HandshakeKind::Simple);
    }

    #[test]
    fn full_keys_are_the_well_known_68_and_62_bytes() {
        assert_eq!(fms_key_full().len(), 68);
        assert_eq!(fp_key_full().len(), 62);
        assert_eq!(&fms_key_full()[30..40], b"er 001\xF0\xEE\xC2\x4A");
        assert_eq!(fms_key_full()[67], 0xAE);
        assert_eq!(&fp_key_full()[24..32], b"er 001\xF0\xEE");
    }

    #[test]
    fn rtmpe_c0_is_unsupported() {
        let mut c0c1 = simple_c0c1(13);
        c0c1[0] = 6;
        let mut out = Vec::new();
        let err = ExpectC0C1::new(&random(1), 0).handle(&c0c1, &mut out).unwrap_err();
        assert_eq!(err, HandshakeError::UnsupportedVersion(6));
        assert_eq!(err.to_string(), "RTMP version 6 is RTMPE (encrypted RTMP), which is not supported");
        assert!(out.is_empty());
    }

    #[test]
    fn bad_c0_is_reported_from_the_first_byte() {
        for c0 in [0u8, 1, 2, 4, 6, 0xFF] {
            let r = ExpectC0C1::new(&random(1), 0).handle(&[c0], &mut Vec::new());
            assert_eq!(r.unwrap_err(), HandshakeError::UnsupportedVersion(c0));
        }
        assert_eq!(HandshakeError::UnsupportedVersion(0x47).to_string(), "unsupported RTMP version 71 (expected 3)");
    }

    /// Feeds `input` one more byte at a time, the way a caller that reads
    /// one byte per syscall would; returns what the server wrote, the
    /// kind, and how much input was left over.
    fn server_byte_at_a_time(input: &[u8], server_random: &[u8; RANDOM_LEN]) -> (Vec<u8>, Done, usize) {
        let mut out = Vec::new();
        let mut state = ExpectC0C1::new(server_random, 0x0102_0304);
        let mut have = 0;
        let c2_state = loop {
            have += 1;
            match state.handle(&input[..have], &mut out).unwrap() {
                Step::Partial(s) => {
                    assert!(out.is_empty());
                    state = s;
                }
                Step::Complete { consumed, next } => {
                    assert_eq!(consumed, have);
                    break next;
                }
            }
        };
        let start = have;
        let mut state = c2_state;
        let done = loop {
            have += 1;
            match state.handle(&input[start..have]).unwrap() {
                Step::Partial(s) => state = s,
                Step::Complete { consumed, next } => {
                    assert_eq!(consumed, have - start);
                    break next;
                }
            }
        };
        (out, done, input.len() - have)
    }

    #[test]
    fn byte_at_a_time_equals_one_shot() {
        let server_random = random(20);
        for (c0c1, kind) in [
            (simple_c0c1(21), HandshakeKind::Simple),
            (complex_c0c1(22, 8).0, HandshakeKind::Complex),
            (complex_c0c1(23, 772).0, HandshakeKind::Complex),
        ] {
            let c2 = random(24);
            // Trailing bytes are the start of the chunk stream.
            let input = [&c0c1[..], &c2, &[0x02, 0x00]].concat();
            let (out_slow, done, left) = server_byte_at_a_time(&input, &server_random);
            assert_eq!(done, Done { kind });
            assert_eq!(left, 2);

            let (out_fast, next) = serve(&input, &server_random);
            assert_eq!(next.kind(), kind);
            assert_eq!(out_slow, out_fast);
            match next.handle(&input[C0C1_LEN..]).unwrap() {
                Step::Complete { consumed, next } => {
                    assert_eq!(consumed, C2_LEN);
                    assert_eq!(next, Done { kind });
                }
                Step::Partial(_) => panic!("C2 was all there"),
            }
        }
    }

    #[test]
    fn partial_appends_nothing() {
        let c0c1 = simple_c0c1(30);
        let mut out = vec![0xAA];
        let r = ExpectC0C1::new(&random(31), 0).handle(&c0c1[..C0C1_LEN - 1], &mut out);
        assert!(matches!(r, Ok(Step::Partial(_))));
        assert_eq!(out, [0xAA]);
        let r = ExpectC0C1::new(&random(31), 0).handle(&[], &mut out);
        assert!(matches!(r, Ok(Step::Partial(_))));
        // Output is appended after what the caller already had.
        let mut out = vec![0xAA];
        let r = ExpectC0C1::new(&random(31), 0).handle(&c0c1, &mut out);
        assert!(matches!(r, Ok(Step::Complete { consumed: C0C1_LEN, .. })));
        assert_eq!(out.len(), 1 + S0S1S2_LEN);
        assert_eq!(out[..2], [0xAA, 3]);
    }

    #[test]
    fn client_start_writes_c0_c1() {
        let r = random(40);
        let mut out = Vec::new();
        let _ = ClientHandshake::start(&r, 0xA0B0_C0D0, &mut out);
        assert_eq!(out.len(), C0C1_LEN);
        assert_eq!(out[..9], [3, 0xA0, 0xB0, 0xC0, 0xD0, 0, 0, 0, 0]);
        assert_eq!(out[9..], r[8..]);
    }

    #[test]
    fn client_against_server_round_trip() {
        let mut to_server = Vec::new();
        let client = ClientHandshake::start(&random(50), 7, &mut to_server);

        let mut to_client = Vec::new();
        let server = match ExpectC0C1::new(&random(51), 9).handle(&to_server, &mut to_client) {
            Ok(Step::Complete { consumed, next }) => {
                assert_eq!(consumed, to_server.len());
                next
            }
            other => panic!("{other:?}"),
        };
        // A version-0 C1 never verifies as a digest.
        assert_eq!(server.kind(), HandshakeKind::Simple);
        assert_eq!(to_client.len(), S0S1S2_LEN);

        // The origin may send its first chunk right behind S2.
        to_client.extend_from_slice(&[0x02, 0x00, 0x00]);
        let mut c2 = Vec::new();
        let done = match client.handle(&to_client, &mut c2) {
            Ok(Step::Complete { consumed, next }) => {
                assert_eq!(consumed, S0S1S2_LEN);
                next
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(done.kind, HandshakeKind::Simple);
        // C2 echoes S1.
        assert_eq!(c2[..], to_client[1..1537]);

        match server.handle(&c2) {
            Ok(Step::Complete { consumed, next }) => {
                assert_eq!(consumed, C2_LEN);
                assert_eq!(next.kind, HandshakeKind::Simple);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn client_byte_at_a_time_and_bad_s0() {
        let (s0s1s2, _) = serve(&simple_c0c1(60), &random(61));
        let mut client = ClientHandshake::start(&random(62), 0, &mut Vec::new());
        let mut c2 = Vec::new();
        let mut have = 0;
        loop {
            have += 1;
            match client.handle(&s0s1s2[..have], &mut c2).unwrap() {
                Step::Partial(c) => {
                    assert!(c2.is_empty());
                    client = c;
                }
                Step::Complete { consumed, next } => {
                    assert_eq!(consumed, S0S1S2_LEN);
                    assert_eq!(have, S0S1S2_LEN);
                    assert_eq!(next.kind, HandshakeKind::Simple);
                    break;
                }
            }
        }
        assert_eq!(c2[..], s0s1s2[1..1537]);

        let client = ClientHandshake::start(&random(62), 0, &mut Vec::new());
        let r = client.handle(&[6], &mut c2);
        assert_eq!(r.unwrap_err(), HandshakeError::UnsupportedVersion(6));
    }

    /// C0+C1 captured from FFmpeg 5.1 (Lavf59.27.100) playing from this
    /// server. FFmpeg fills C1 from a fixed-seed generator, so it is the
    /// same on every run: time 0, version 9.0.124.2, digest first.
    const FFMPEG_C0C1: &str = "\
        030000000009007c02f778551eceab8e1e362f07c5868a70b266d40220e5086118a22e3697d5fc2b6329c22ee7c7c9b0\
        b5b345dfa8398fea3bc879208a1068425aa1174cb57258cfebe24da42ec4ff9da19c7b406f18c95bfdd04ee48b6f8332\
        14a47b8bf68eb05254e25ae9a9a8b496c5496f6e9cd7c68cb6bcc84169e67f3e372ffe186da8513862c5afdeb5a1218a\
        860baccdd869b253dbab8a0efb59a48c442099875e55b74fd07a1b69af303e099873cb77e2d9e2c4741eb1f506a7f0b2\
        962af91f5051c890a320994f4c8b36a01fa9c0f15f4b7cf7b6c3817da60918611d3b02ff7cc94038937537d3382e416b\
        d57577834df9caf748352150ce92d0dbb40e871fc364e18b7e3569e39876c1ae0cb79ff6d7ab32f9f011869c8da4191e\
        f46d3c1bc6b72d83812f2243d1752a412632d66a2075f5d302f45cdf2b98b802b79805dc4837d84eded1cc42cba7eec3\
        137bf86dd0b2d7f624d521a3ff655bcf0df4101341d230e94651628e45a7abf8183101ce981e5e86a6faec5c79aa7ec7\
        181ea459ed966e0c932a6f9e4bf554ab7b1c905cde054ed40d2fb89bbfc65752e58cfde4f2a04dc3ad1e5ef4fc64d57b\
        071c14146a451f6a043156d2880f5957d78dfd3ff2b880f624ac70f27094f37734eaf1924f66ac3d648ae232930544a4\
        420b65eed4696f7f50fe05fc948516650bfb9b65f953d848e3456965d0d76b627a84e35e9ddabd8b43f0fadaee458cdf\
        59ebd773922e0ae507d5e64092e90ec67ed8439e8f221c753a9f9216f1cb85b5107bc7cc7c4fb2c3eed1afc709b192f5\
        0de69c1ffca5650efb523b5fab5997cac4b7ef5af2bf5973e6293bae1fc1da499be5515077de4ddb3f7fbcd741711c62\
        b7d803b8d054cf578182714d1c445bd692ba1b839a09e7266fc85daa8fad433dabbd206cde1ea571770c6bfa7956c266\
        ee8435eb01caa6f583c0d83c33eefcf3f97db917bdb299f8a89fb8860ab1cd644c1e82cce1323a9eb79d25f5dc570b70\
        b40bb20061743353d0536ecdabd82f2277756228cb54fe6932c4c9bd130d2bfc700bf5d85da6946e96f82e0afd8e9c20\
        cfeabf9a6a189bb17bbef539d1d9e73ee966fcb5d6bdbf98444de865be1605e34087b34cdf04e3aff55bd4137c522d2e\
        3c7bf2634db326b22a474db7f8a0952ab3510de555396c18a378a8390b73bff7772fb2760fa5786a3b0459c45a1d1b0d\
        ff4cbbb65da0ed34f32116c3c2cc2b95825111bcfbb246c1505aa00c970d06d76cc950ce368b220db20487cba02bb1fc\
        54b36567b42913d6b885062cd7795601d31a4a8e6d56467fa5c52162676fd526122513c3e47f2e6d9d6a19c4f8795431\
        a94ced039221d27ac68a7a770e9305252271459b71d05505c4977b70e96851208bacdcdf7e682b3848840880f1fec2a3\
        2fb1406862bc83cad89adf729f3ba6ffd3fe808e8403e7c6a0f6dcda3211898f6f16505b078cc78b80db600ded2f200f\
        25ff5dcb31d32cbe2056b8bdc31091631abbd2ac28d61fe32480ec5035bbf35f173393f0d59a21d2300b2db4b59eaa63\
        ffe0f93d65dc028516905f22a9c7dff387c4eb78c6300e7ebbb2a6663cfbe5a9977caf5764ba3f0aba57db4e6051e0ae\
        c6e05b1bdaa649a97875edbc40bcc4214bb7fef72730d4368acbd3e10ab4c7642a1c53f93ca26db9c766555be26fdff0\
        e2a721425b95762b0b776fd3e3eb17313d53129c9f34003c99a5196a8c6aacb6d64b51dd98b27c5b59a70bd941a1ba03\
        00fb744cfc499d997e6d93392d28a767d116dfbc2cb9eb40540d11eb304ad9322386fdc597d55d3d1c67bc54df35479a\
        fb19ea2cd204dd331efb49c1e172f6bb89fbf58207dcae6c12f8a7598bef1e872c0c35f22b4c29df10f9bb1add3aeb88\
        7ab5fb38c036b88346f761c42f295dfe0b437dfb4f30a71276ab7d409ce424963f9ebb4f1f47e52b18786f279b5a8722\
        6f66981dd6d0ad11f49af31055ff69710fda3457c4b7852db2e3936d0778bf879f1734ad3a24ffb1ae9584760b9cb045\
        2a53ba0962ffe2f605af52830bd211a5488894cc0b052255048711cd198510a9e943bf8b839198455fbd41073005d303\
        990b88d9b63656d43cfec8ed83748f4b0f0fc5120216794b22a054e5bc58abd8c41096070884393453ce509694afbeab\
        e0";

    /// SHA-256 of the S0+S1+S2 this server answered FFMPEG_C0C1 with
    /// (random = [0x5A; 1536], epoch 0), which that FFmpeg validated
    /// (S1 digest and S2 signature) and then went on to `connect`.
    const FFMPEG_ACCEPTED_ANSWER_SHA256: &str = "c6c1580041127f2f63d8684c0b54463097114f8d1baad53de7f7e075da478ed8";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn ffmpeg_c1_capture_gets_the_answer_ffmpeg_accepted() {
        use sha2::Digest;
        let c0c1 = hex(FFMPEG_C0C1);
        assert_eq!(c0c1.len(), C0C1_LEN);
        assert_eq!(c0c1[..9], [3, 0, 0, 0, 0, 9, 0, 124, 2]);
        assert!(validate(&c0c1[1..], 8, &FP_KEY_OPEN[..]).is_some());
        assert!(validate(&c0c1[1..], 772, &FP_KEY_OPEN[..]).is_none());

        let mut out = Vec::new();
        let next = match ExpectC0C1::new(&[0x5A; RANDOM_LEN], 0).handle(&c0c1, &mut out) {
            Ok(Step::Complete { consumed, next }) => {
                assert_eq!(consumed, C0C1_LEN);
                next
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(next.kind(), HandshakeKind::Complex);
        let pos = validate(&c0c1[1..], 8, &FP_KEY_OPEN[..]).unwrap();
        check_complex_answer(&c0c1, pos, 8, 0, &out);
        let sha: String = sha2::Sha256::digest(&out).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(sha, FFMPEG_ACCEPTED_ANSWER_SHA256);
    }
}
