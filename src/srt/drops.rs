//! What the SRT server drops, counted by reason per core, and logged at
//! most once a second per core (a flood costs a counter bump, not a line).

use std::cell::Cell;
use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// Shorter than an SRT header.
    TooShort,
    /// A handshake that does not parse.
    Malformed,
    /// A conclusion whose cookie its sender's address was not given.
    BadCookie,
    /// A handshake type a listener does not expect from a caller.
    UnexpectedHandshake,
    /// A packet for a socket id no session here or elsewhere has.
    UnknownSocket,
    /// A conclusion repeated while its origin handshake is under way.
    PendingRepeat,
    /// No room for another handshake or migration.
    Full,
    /// Something from the origin that is not SRT.
    OriginGarbage,
    /// A session's packet from a new address within a second of its last
    /// change of address.
    MoveTooSoon,
}

const REASONS: usize = 9;

impl Drop {
    pub fn as_str(self) -> &'static str {
        match self {
            Drop::TooShort => "too short",
            Drop::Malformed => "malformed handshake",
            Drop::BadCookie => "wrong SYN cookie",
            Drop::UnexpectedHandshake => "unexpected handshake type",
            Drop::UnknownSocket => "unknown socket id",
            Drop::PendingRepeat => "conclusion repeated while the origin handshake is pending",
            Drop::Full => "too many handshakes or sessions",
            Drop::OriginGarbage => "non-SRT datagram from the origin",
            Drop::MoveTooSoon => "address change within a second of the last",
        }
    }
}

#[derive(Default)]
pub struct Drops {
    counts: [Cell<u64>; REASONS],
    /// The tick of the last line logged.
    logged: Cell<Option<u32>>,
}

impl Drops {
    pub fn count(&self, why: Drop) -> u64 {
        self.counts[why as usize].get()
    }

    /// Counts a drop; logs it (with every count) unless a line was logged
    /// this second.
    pub fn hit(&self, why: Drop, tick: u32, core: usize, peer: SocketAddr, detail: &dyn std::fmt::Display) {
        let c = &self.counts[why as usize];
        c.set(c.get() + 1);
        crate::metrics::local().dropped(crate::metrics::Proto::Srt, why.as_str());
        if why == Drop::PendingRepeat {
            return; // a retransmission, not an error
        }
        if self.logged.get() == Some(tick) {
            return;
        }
        self.logged.set(Some(tick));
        tracing::warn!(core, %peer, reason = why.as_str(), detail = %detail, counts = %self,
            "srt datagram dropped (at most one line per second per core)");
    }
}

impl std::fmt::Display for Drops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let all = [
            Drop::TooShort,
            Drop::Malformed,
            Drop::BadCookie,
            Drop::UnexpectedHandshake,
            Drop::UnknownSocket,
            Drop::PendingRepeat,
            Drop::Full,
            Drop::OriginGarbage,
            Drop::MoveTooSoon,
        ];
        let mut first = true;
        for d in all {
            let n = self.count(d);
            if n > 0 {
                write!(f, "{}{}={}", if first { "" } else { "," }, d.as_str().replace(' ', "_"), n)?;
                first = false;
            }
        }
        Ok(())
    }
}
