//! HLS player sessions (`spbhid`): which origin served a player's playlist,
//! so its segment requests go back to that origin. One session per (stream,
//! player). Pure state: time is passed in; sessions expire when idle and the
//! table is bounded.

use crate::OriginId;
use srs_protocols::stream_url::StreamUrl;
use std::collections::HashMap;
use std::time::Duration;

/// SRS keeps HLS sessions 120 s (srsHLSAliveDuration).
pub const HLS_SESSION_TTL: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlsSession {
    pub stream: StreamUrl,
    pub origin: OriginId,
    last_seen: Duration,
}

#[derive(Debug)]
pub struct HlsSessions {
    map: HashMap<String, HlsSession>,
    ttl: Duration,
    max: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HlsError {
    /// `max` live sessions already.
    Full { max: usize },
}

impl std::fmt::Display for HlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HlsError::Full { max } => write!(f, "too many HLS sessions ({max})"),
        }
    }
}

impl HlsSessions {
    pub fn new(ttl: Duration, max: usize) -> Self {
        HlsSessions { map: HashMap::new(), ttl, max }
    }

    /// Creates or refreshes `id` for `stream` on `origin`.
    pub fn store(&mut self, now: Duration, id: &str, stream: StreamUrl, origin: OriginId) -> Result<(), HlsError> {
        if !self.map.contains_key(id) && self.map.len() >= self.max {
            self.expire(now);
            if self.map.len() >= self.max {
                return Err(HlsError::Full { max: self.max });
            }
        }
        self.map.insert(id.to_string(), HlsSession { stream, origin, last_seen: now });
        Ok(())
    }

    /// The live session `id`, refreshed.
    pub fn touch(&mut self, now: Duration, id: &str) -> Option<&HlsSession> {
        let ttl = self.ttl;
        let alive = self.map.get(id).map(|s| now.saturating_sub(s.last_seen) < ttl)?;
        if !alive {
            self.map.remove(id);
            return None;
        }
        let s = self.map.get_mut(id)?;
        s.last_seen = now;
        Some(&*s)
    }

    /// Drops idle sessions; returns how many.
    pub fn expire(&mut self, now: Duration) -> usize {
        let ttl = self.ttl;
        let before = self.map.len();
        self.map.retain(|_, s| now.saturating_sub(s.last_seen) < ttl);
        before - self.map.len()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> StreamUrl {
        StreamUrl::new_unchecked(format!("__defaultVhost__/live/{s}"))
    }
    fn oid(s: &str) -> OriginId {
        OriginId::new(s.to_string())
    }
    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn a_session_lives_while_used_and_expires_when_idle() {
        let mut h = HlsSessions::new(S(120), 10);
        h.store(S(0), "abc", key("a"), oid("o1")).unwrap();
        assert_eq!(h.touch(S(100), "abc").map(|s| s.origin.clone()), Some(oid("o1")));
        // refreshed at 100 s, so alive at 219 s, gone at 220 s
        assert!(h.touch(S(219), "abc").is_some());
        assert!(h.touch(S(339), "abc").is_none());
        assert!(h.is_empty());
    }

    #[test]
    fn unknown_ids_are_none() {
        let mut h = HlsSessions::new(S(120), 10);
        assert!(h.touch(S(0), "nope").is_none());
    }

    #[test]
    fn the_table_is_bounded_and_idle_sessions_make_room() {
        let mut h = HlsSessions::new(S(10), 2);
        h.store(S(0), "a", key("a"), oid("o")).unwrap();
        h.store(S(5), "b", key("b"), oid("o")).unwrap();
        assert_eq!(h.store(S(6), "c", key("c"), oid("o")), Err(HlsError::Full { max: 2 }));
        // refreshing an existing id is always allowed
        h.store(S(6), "b", key("b"), oid("o2")).unwrap();
        // at 11 s "a" is idle for 11 s: it makes room
        h.store(S(11), "c", key("c"), oid("o")).unwrap();
        assert_eq!(h.len(), 2);
        assert!(h.touch(S(11), "a").is_none());
        assert_eq!(h.touch(S(11), "b").map(|s| s.origin.clone()), Some(oid("o2")));
    }

    #[test]
    fn expire_counts_what_it_dropped() {
        let mut h = HlsSessions::new(S(10), 100);
        for i in 0..5 {
            h.store(S(i), &format!("s{i}"), key("x"), oid("o")).unwrap();
        }
        assert_eq!(h.expire(S(12)), 3); // s0, s1, s2 idle >= 10 s
        assert_eq!(h.len(), 2);
    }
}
