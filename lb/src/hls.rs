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
    /// Hash of (stream, client address, user agent) for players whose
    /// playlist URL carries no id.
    player: Option<u64>,
    last_seen: Duration,
}

#[derive(Debug)]
pub struct HlsSessions {
    map: HashMap<String, HlsSession>,
    players: HashMap<u64, String>,
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
        HlsSessions { map: HashMap::new(), players: HashMap::new(), ttl, max }
    }

    /// Creates or refreshes `id` for `stream` on `origin`.
    pub fn store(
        &mut self,
        now: Duration,
        id: &str,
        stream: StreamUrl,
        origin: OriginId,
        player: Option<u64>,
    ) -> Result<(), HlsError> {
        if !self.map.contains_key(id) && self.map.len() >= self.max {
            self.expire(now);
            if self.map.len() >= self.max {
                return Err(HlsError::Full { max: self.max });
            }
        }
        if let Some(p) = player {
            self.players.insert(p, id.to_string());
        }
        self.map.insert(id.to_string(), HlsSession { stream, origin, player, last_seen: now });
        Ok(())
    }

    /// The live session of a player (by its hash), refreshed.
    pub fn touch_player(&mut self, now: Duration, player: u64) -> Option<(String, &HlsSession)> {
        let id = self.players.get(&player)?.clone();
        match self.touch(now, &id) {
            Some(s) if s.player == Some(player) => Some((id, s)),
            _ => None,
        }
    }

    /// The live session `id`, refreshed.
    pub fn touch(&mut self, now: Duration, id: &str) -> Option<&HlsSession> {
        let ttl = self.ttl;
        let alive = self.map.get(id).map(|s| now.saturating_sub(s.last_seen) < ttl)?;
        if !alive {
            self.remove(id);
            return None;
        }
        let s = self.map.get_mut(id)?;
        s.last_seen = now;
        Some(&*s)
    }

    fn remove(&mut self, id: &str) {
        if let Some(s) = self.map.remove(id) {
            if let Some(p) = s.player {
                if self.players.get(&p).is_some_and(|v| v == id) {
                    self.players.remove(&p);
                }
            }
        }
    }

    /// Drops idle sessions; returns how many.
    pub fn expire(&mut self, now: Duration) -> usize {
        let ttl = self.ttl;
        let before = self.map.len();
        self.map.retain(|_, s| now.saturating_sub(s.last_seen) < ttl);
        let map = &self.map;
        self.players.retain(|_, id| map.contains_key(id));
        before - self.map.len()
    }

    /// When [`expire`](Self::expire) next has something to drop: the
    /// earliest end among the sessions held, and at most a TTL from `now`.
    pub fn next_expiry(&self, now: Duration) -> Duration {
        self.map.values().map(|s| s.last_seen + self.ttl).fold(now + self.ttl, Duration::min)
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
        h.store(S(0), "abc", key("a"), oid("o1"), None).unwrap();
        assert_eq!(h.touch(S(100), "abc").map(|s| s.origin.clone()), Some(oid("o1")));
        // refreshed at 100 s, so alive at 219 s, gone at 220 s
        assert!(h.touch(S(219), "abc").is_some());
        assert!(h.touch(S(339), "abc").is_none());
        assert!(h.is_empty());
    }

    #[test]
    fn next_expiry_is_the_first_time_expire_drops_something() {
        let mut h = HlsSessions::new(S(120), 10);
        assert_eq!(h.next_expiry(S(1)), S(121), "empty: a TTL from now");
        h.store(S(0), "a", key("a"), oid("o"), None).unwrap();
        h.store(S(10), "b", key("b"), oid("o"), None).unwrap();
        assert!(h.touch(S(20), "a").is_some()); // "b" is now the oldest
        let first = h.next_expiry(S(30));
        assert_eq!(first, S(130));
        assert_eq!(h.expire(first - Duration::from_millis(1)), 0, "dropped before its time");
        assert_eq!(h.expire(first), 1);
        assert!(h.touch(first, "b").is_none());
        assert_eq!(h.next_expiry(first), S(140));
    }

    #[test]
    fn unknown_ids_are_none() {
        let mut h = HlsSessions::new(S(120), 10);
        assert!(h.touch(S(0), "nope").is_none());
    }

    #[test]
    fn the_table_is_bounded_and_idle_sessions_make_room() {
        let mut h = HlsSessions::new(S(10), 2);
        h.store(S(0), "a", key("a"), oid("o"), None).unwrap();
        h.store(S(5), "b", key("b"), oid("o"), None).unwrap();
        assert_eq!(h.store(S(6), "c", key("c"), oid("o"), None), Err(HlsError::Full { max: 2 }));
        // refreshing an existing id is always allowed
        h.store(S(6), "b", key("b"), oid("o2"), None).unwrap();
        // at 11 s "a" is idle for 11 s: it makes room
        h.store(S(11), "c", key("c"), oid("o"), None).unwrap();
        assert_eq!(h.len(), 2);
        assert!(h.touch(S(11), "a").is_none());
        assert_eq!(h.touch(S(11), "b").map(|s| s.origin.clone()), Some(oid("o2")));
    }

    #[test]
    fn expire_counts_what_it_dropped() {
        let mut h = HlsSessions::new(S(10), 100);
        for i in 0..5 {
            h.store(S(i), &format!("s{i}"), key("x"), oid("o"), Some(i)).unwrap();
        }
        assert_eq!(h.expire(S(12)), 3); // s0, s1, s2 idle >= 10 s
        assert_eq!(h.len(), 2);
        assert!(h.touch_player(S(12), 0).is_none());
        assert_eq!(h.touch_player(S(12), 4).map(|(id, _)| id), Some("s4".to_string()));
    }

    #[test]
    fn a_player_keeps_its_id_across_refreshes() {
        let mut h = HlsSessions::new(S(120), 10);
        h.store(S(0), "p1", key("a"), oid("o1"), Some(77)).unwrap();
        let (id, s) = h.touch_player(S(30), 77).unwrap();
        assert_eq!((id.as_str(), s.origin.clone()), ("p1", oid("o1")));
        // another player of the same stream gets its own
        assert!(h.touch_player(S(30), 78).is_none());
        // idle past the TTL: gone, index too
        assert!(h.touch_player(S(151), 77).is_none());
        assert!(h.is_empty());
    }
}
