//! The WebRTC port's demux, sans IO: which session a datagram belongs to,
//! by the sender's address (an integer key, never a formatted string), or
//! the STUN USERNAME that may identify a new one, or why it is dropped.
//! Routing a datagram never allocates; the caller owns sockets and clocks.

use crate::stun::{self, Kind, Message, StunError};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// A socket address as integers: IPv4 mapped into IPv6, and the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrKey(u128, u16);

impl AddrKey {
    pub fn of(a: SocketAddr) -> Self {
        a.into()
    }
}

impl From<SocketAddr> for AddrKey {
    fn from(a: SocketAddr) -> Self {
        let ip = match a.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        AddrKey(u128::from(ip), a.port())
    }
}

/// Why a datagram went nowhere. Counted per reason; `name` labels logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not STUN, DTLS or RTP by its first byte (random bytes, empty).
    NotWebRtc,
    /// DTLS from an address with no session.
    UnknownDtls,
    /// RTP/RTCP from an address with no session.
    UnknownRtp,
    /// STUN that does not parse (truncated, wrong lengths, padding tricks).
    BadStun(stun::StunError),
    /// STUN from an unknown address that is not a Binding request with a USERNAME.
    StunNoUsername,
    /// A USERNAME no session has (the caller decides; counted here).
    UnknownUfrag,
    /// The session table is full.
    Full,
}

impl DropReason {
    /// Counters: six reasons, then one per STUN error.
    pub const ALL: usize = 6 + StunError::ALL.len();

    pub fn index(self) -> usize {
        match self {
            DropReason::NotWebRtc => 0,
            DropReason::UnknownDtls => 1,
            DropReason::UnknownRtp => 2,
            DropReason::StunNoUsername => 3,
            DropReason::UnknownUfrag => 4,
            DropReason::Full => 5,
            DropReason::BadStun(e) => 6 + e.index(),
        }
    }

    /// Every reason, in counter order.
    pub fn all() -> impl Iterator<Item = DropReason> {
        [
            DropReason::NotWebRtc,
            DropReason::UnknownDtls,
            DropReason::UnknownRtp,
            DropReason::StunNoUsername,
            DropReason::UnknownUfrag,
            DropReason::Full,
        ]
        .into_iter()
        .chain(StunError::ALL.into_iter().map(DropReason::BadStun))
    }

    pub fn name(self) -> &'static str {
        match self {
            DropReason::NotWebRtc => "not webrtc",
            DropReason::UnknownDtls => "dtls from unknown address",
            DropReason::UnknownRtp => "rtp from unknown address",
            DropReason::BadStun(e) => e.reason(),
            DropReason::StunNoUsername => "stun without username from unknown address",
            DropReason::UnknownUfrag => "unknown ufrag",
            DropReason::Full => "session table full",
        }
    }
}

/// Where a datagram goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a, S> {
    /// A known client address: relay to this session.
    Session(S),
    /// A STUN Binding request from a new address: the USERNAME
    /// (`<answer ufrag>:<offer ufrag>`) to look the session up by.
    Identify(&'a str),
    Drop(DropReason),
}

/// Client address -> session, bounded, with drop counters.
pub struct Demux<S> {
    by_addr: HashMap<AddrKey, S>,
    max: usize,
    drops: [u64; DropReason::ALL],
}

impl<S: Clone> Demux<S> {
    pub fn new(max: usize) -> Self {
        Demux { by_addr: HashMap::with_capacity(max.min(1024)), max, drops: [0; DropReason::ALL] }
    }

    /// Routes one datagram from `from`. A known address wins, whatever the
    /// datagram holds (a STUN check of an ICE restart goes to its session).
    pub fn route<'a>(&mut self, from: SocketAddr, pkt: &'a [u8]) -> Route<'a, S> {
        if let Some(s) = self.by_addr.get(&AddrKey::from(from)) {
            return Route::Session(s.clone());
        }
        let why = match stun::classify(pkt) {
            Kind::Stun => match Message::parse(pkt) {
                Ok(m) if m.is_binding_request() => match m.username() {
                    Ok(Some(u)) => return Route::Identify(u),
                    Ok(None) => DropReason::StunNoUsername,
                    Err(e) => DropReason::BadStun(e),
                },
                Ok(_) => DropReason::StunNoUsername,
                Err(e) => DropReason::BadStun(e),
            },
            Kind::Dtls => DropReason::UnknownDtls,
            Kind::Rtp => DropReason::UnknownRtp,
            Kind::Other => DropReason::NotWebRtc,
        };
        self.count(why);
        Route::Drop(why)
    }

    /// Counts a drop the caller decided (an unknown ufrag, say).
    pub fn count(&mut self, why: DropReason) {
        self.drops[why.index()] += 1;
    }

    pub fn drops(&self) -> &[u64; DropReason::ALL] {
        &self.drops
    }

    /// Maps `addr` to `s` (a new session, or a known one at a new address).
    pub fn insert(&mut self, addr: SocketAddr, s: S) -> Result<(), DropReason> {
        let k = AddrKey::from(addr);
        if self.by_addr.len() >= self.max && !self.by_addr.contains_key(&k) {
            self.count(DropReason::Full);
            return Err(DropReason::Full);
        }
        self.by_addr.insert(k, s);
        Ok(())
    }

    pub fn remove(&mut self, addr: SocketAddr) -> Option<S> {
        self.by_addr.remove(&AddrKey::from(addr))
    }

    pub fn len(&self) -> usize {
        self.by_addr.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::write_binding_request;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn binding(user: &str) -> Vec<u8> {
        let mut v = Vec::new();
        write_binding_request(&mut v, &[1; 12], user);
        v
    }

    /// One test per datagram from an unknown address: where it goes.
    macro_rules! demux {
        ($($name:ident: $bytes:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let mut d: Demux<u32> = Demux::new(4);
                d.insert(a("10.0.0.1:1000"), 7).unwrap();
                let b: Vec<u8> = $bytes;
                let got = d.route(a("10.0.0.2:2000"), &b);
                assert_eq!(got, $want);
                if let Route::Drop(why) = got {
                    assert_eq!(d.drops()[why.index()], 1);
                    assert_eq!(d.drops().iter().sum::<u64>(), 1);
                }
            }
        )*};
    }

    demux! {
        unknown_stun_with_username_identifies: binding("ans:off") => Route::Identify("ans:off");
        empty_datagram: vec![] => Route::Drop(DropReason::NotWebRtc);
        random_bytes: vec![0x47, 1, 2, 3, 4, 5] => Route::Drop(DropReason::NotWebRtc);
        dtls_from_unknown: vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] => Route::Drop(DropReason::UnknownDtls);
        rtp_from_unknown: { let mut v = vec![0x80, 96]; v.resize(200, 0); v } => Route::Drop(DropReason::UnknownRtp);
        truncated_stun: binding("ans:off")[..30].to_vec() => Route::Drop(DropReason::BadStun(stun::StunError::LengthMismatch));
        stun_header_only_request: { let mut v = binding("a:b"); v.truncate(20); v[2] = 0; v[3] = 0; v } => Route::Drop(DropReason::StunNoUsername);
        stun_response_from_unknown: { let mut v = binding("a:b"); v[0] = 1; v[1] = 1; v } => Route::Drop(DropReason::StunNoUsername);
        stun_wrong_cookie: { let mut v = binding("a:b"); v[4] = 0; v } => Route::Drop(DropReason::BadStun(stun::StunError::BadCookie));
        stun_username_overruns: { let mut v = binding("a:b"); v[23] = 200; v } => Route::Drop(DropReason::BadStun(stun::StunError::AttributeOverrun));
        stun_bad_username: binding("nocolon") => Route::Drop(DropReason::BadStun(stun::StunError::BadUsername));
    }

    #[test]
    fn known_address_wins_over_content() {
        let mut d: Demux<u32> = Demux::new(4);
        d.insert(a("10.0.0.1:1000"), 7).unwrap();
        assert_eq!(d.route(a("10.0.0.1:1000"), b"garbage"), Route::Session(7));
        assert_eq!(d.route(a("10.0.0.1:1000"), &binding("x:y")), Route::Session(7));
        // The same IP, another port, is another address.
        assert_eq!(d.route(a("10.0.0.1:1001"), &[0x80; 12]), Route::Drop(DropReason::UnknownRtp));
        // An IPv4 address and its IPv6-mapped form are one key.
        assert_eq!(d.route(a("[::ffff:10.0.0.1]:1000"), b"x"), Route::Session(7));
    }

    #[test]
    fn every_reason_has_its_own_counter() {
        let idx: Vec<usize> = DropReason::all().map(DropReason::index).collect();
        assert_eq!(idx, (0..DropReason::ALL).collect::<Vec<_>>());
    }

    #[test]
    fn bounded() {
        let mut d: Demux<u32> = Demux::new(2);
        d.insert(a("1.1.1.1:1"), 1).unwrap();
        d.insert(a("1.1.1.1:2"), 2).unwrap();
        assert_eq!(d.insert(a("1.1.1.1:3"), 3), Err(DropReason::Full));
        // Re-mapping a present key is not growth.
        d.insert(a("1.1.1.1:2"), 9).unwrap();
        assert_eq!(d.remove(a("1.1.1.1:1")), Some(1));
        d.insert(a("1.1.1.1:3"), 3).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d.drops()[DropReason::Full.index()], 1);
    }
}
