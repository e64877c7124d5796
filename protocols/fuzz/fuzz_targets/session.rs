//! Both RTMP session roles past a valid simple handshake, fed arbitrary
//! bytes in arbitrary splits: the server from C2 through connect and the
//! identify loop to publish or play (then start or refuse), the client from
//! S0S1S2 to the origin's start status (then the relay). No panic, every
//! consumed count within what was given, and no step that neither consumes
//! nor asks for more.
#![no_main]

use libfuzzer_sys::fuzz_target;
use srs_protocols::rtmp::amf0::{EncodedValue, Value};
use srs_protocols::rtmp::chunk::Limits;
use srs_protocols::rtmp::client::{ClientProgress, ClientSession};
use srs_protocols::rtmp::handshake::RANDOM_LEN;
use srs_protocols::rtmp::server::{ExpectC0C1, ServerInfo, StreamRequest};
use srs_protocols::rtmp::session::{Advance, Role, SessionError};

const HS: usize = 1536;

/// C0C1 (or S0S1) of a simple handshake, then C2 (or S2): 3073 bytes.
fn simple_handshake() -> Vec<u8> {
    let mut v = vec![3u8];
    v.extend(std::iter::repeat(0x5a).take(2 * HS));
    v[5..9].fill(0); // zero version: the simple scheme
    v
}

/// Input the peer has sent so far, growing by the split sizes (cycled).
struct Feed<'a> {
    all: Vec<u8>,
    seen: usize,
    sizes: std::iter::Cycle<std::slice::Iter<'a, u8>>,
    pos: usize,
}

impl Feed<'_> {
    fn visible(&self) -> &[u8] {
        &self.all[self.pos..self.seen]
    }
    /// More of the input; false once all of it is visible.
    fn more(&mut self) -> bool {
        if self.seen == self.all.len() {
            return false;
        }
        let n = self.sizes.next().map_or(self.all.len(), |&s| usize::from(s) * 8 + 1);
        self.seen = (self.seen + n).min(self.all.len());
        true
    }
    fn consume(&mut self, n: usize) {
        assert!(n <= self.seen - self.pos, "consumed {n} of {}", self.seen - self.pos);
        self.pos += n;
    }
}

/// One server step to its end: Some(next), or None on an error or when the
/// input runs out.
fn step<S, N>(
    feed: &mut Feed<'_>,
    out: &mut Vec<u8>,
    mut state: S,
    mut f: impl FnMut(S, &[u8], &mut Vec<u8>) -> Result<Advance<S, N>, SessionError>,
) -> Option<N> {
    loop {
        match f(state, feed.visible(), out) {
            Ok(Advance::Stay { consumed, state: s }) => {
                feed.consume(consumed);
                state = s;
                if consumed == 0 && !feed.more() {
                    return None;
                }
            }
            Ok(Advance::Next { consumed, next }) => {
                feed.consume(consumed);
                return Some(next);
            }
            Err(_) => return None,
        }
    }
}

fn server(data: &[u8], splits: &[u8], refuse: bool) {
    let mut all = simple_handshake();
    all.extend_from_slice(data);
    let mut feed = Feed { all, seen: 0, sizes: splits.iter().cycle(), pos: 0 };
    feed.more();
    let info = ServerInfo { version: "fuzz".into(), conn_id: "1".into() };
    let mut out = Vec::new();
    let st = ExpectC0C1::new(&[7; RANDOM_LEN], 0, info, Limits::default());
    let Some(st) = step(&mut feed, &mut out, st, |s, b, o| s.handle(b, o)) else { return };
    let Some(st) = step(&mut feed, &mut out, st, |s, b, _| s.handle(b)) else { return };
    let Some(st) = step(&mut feed, &mut out, st, |s, b, o| s.handle(b, o)) else { return };
    let Some(ident) = step(&mut feed, &mut out, st, |s, b, o| s.handle(b, o)) else { return };
    let req = ident.request().clone();
    if refuse {
        ident.reject("fuzz", &mut out);
    } else {
        let _ = ident.start(&mut out);
    }
    // The request it identified drives a client toward an origin too.
    client(&req, data, splits);
}

fn client(req: &StreamRequest, data: &[u8], splits: &[u8]) {
    let mut out = Vec::new();
    let mut cs = ClientSession::start(&[9; RANDOM_LEN], 0, req, Limits::default(), &mut out);
    let mut all = simple_handshake();
    all.extend_from_slice(data);
    let mut feed = Feed { all, seen: 0, sizes: splits.iter().cycle(), pos: 0 };
    feed.more();
    loop {
        match cs.handle(feed.visible(), &mut out) {
            Ok(ClientProgress::NeedMore { consumed }) => {
                feed.consume(consumed);
                if consumed == 0 && !feed.more() {
                    return;
                }
            }
            Ok(ClientProgress::Ready { consumed }) => {
                feed.consume(consumed);
                let _ = cs.into_relay();
                return;
            }
            Err(_) => return,
        }
    }
}

fuzz_target!(|input: &[u8]| {
    // First byte: how many split sizes follow (low 4 bits), publish rather
    // than play (bit 4), refuse rather than start (bit 5); then the split
    // sizes; the rest is the peer's bytes.
    let (flags, rest) = input.split_first().map_or((0, input), |(&f, r)| (f, r));
    let (splits, data) = rest.split_at(usize::from(flags % 16).min(rest.len()));
    server(data, splits, flags & 0x20 != 0);
    let req = StreamRequest {
        role: if flags & 0x10 != 0 { Role::Publish } else { Role::Play },
        tc_url: "rtmp://127.0.0.1/live".into(),
        app: "live".into(),
        stream: "fuzz".into(),
        stream_id: 1,
        connect: EncodedValue::new(&Value::Null),
        start_message: None,
    };
    client(&req, data, splits);
});
