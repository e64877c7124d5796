//! One core's memory balancer state: a pure struct driven with injected time
//! and an injected RNG (Sōzu doctrine), so a seed replays a run bit for bit.
//!
//! The registry of origins is replicated on every core (registrations are
//! broadcast by the wiring); each stream key's pin lives on exactly one core.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use srs_protocols::stream_url::StreamUrl;

use crate::origin::{Origin, OriginId};
use crate::LbError;

/// Bounds and liveness of the memory balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryConfig {
    /// `PROXY_ORIGIN_SERVER_TTL`: an origin silent this long is dead.
    pub origin_ttl: Duration,
    /// Most origins kept (live or not yet dropped).
    pub max_origins: usize,
    /// Most stream pins kept on this core.
    pub max_pins: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig { origin_ttl: Duration::from_secs(300), max_origins: 4096, max_pins: 1_000_000 }
    }
}

/// What [`MemoryState::update`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// A new origin id (first heartbeat, or an SRS restart).
    Registered,
    /// A heartbeat of a known origin (alive again if it had expired).
    Refreshed,
}

/// How [`MemoryState::pick`] chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickOutcome {
    /// The key was pinned to a live origin.
    Pinned,
    /// The key had no pin; a live origin was drawn.
    NewPin,
    /// The key was pinned to an expired or dropped origin; it moved.
    Repinned { from: OriginId },
}

#[derive(Debug, Clone)]
struct Entry {
    origin: Origin,
    last_seen: Duration,
    /// Since when it has been alive without a break: its registration, or
    /// the heartbeat that brought it back after it had expired.
    alive_since: Duration,
    /// Held down until then after a refused connect: dead until a
    /// heartbeat arrives at or after this time.
    down_until: Duration,
}

/// How long an origin that refused a connection stays out of picks on
/// this proxy; it comes back with its first heartbeat after that.
pub const ORIGIN_HOLD_DOWN: Duration = Duration::from_secs(10);

/// One core's balancer state. `now` is a `Duration` since an arbitrary
/// epoch (monotonic), passed in by the caller.
#[derive(Debug)]
pub struct MemoryState {
    cfg: MemoryConfig,
    /// Sorted by id, so candidates come in a fixed order for a given seed.
    origins: BTreeMap<OriginId, Entry>,
    pins: HashMap<StreamUrl, OriginId>,
    /// Some pins may point at origins no longer in `origins`.
    stale_pins: bool,
    /// When full of pins and a scan found none to evict: no pin can become
    /// evictable before this time (the earliest death among live origins).
    no_evictable_until: Option<Duration>,
}

impl MemoryState {
    pub fn new(cfg: MemoryConfig) -> Self {
        MemoryState { cfg, origins: BTreeMap::new(), pins: HashMap::new(), stale_pins: false, no_evictable_until: None }
    }

    pub fn config(&self) -> &MemoryConfig {
        &self.cfg
    }

    fn alive(&self, e: &Entry, now: Duration) -> bool {
        now.saturating_sub(e.last_seen) < self.cfg.origin_ttl && e.last_seen >= e.down_until
    }

    /// An origin refused a connection: out of picks until its first
    /// heartbeat at or after `now + hold`; its pins move at their next pick.
    /// False when the origin is unknown.
    pub fn mark_down(&mut self, now: Duration, id: &OriginId, hold: Duration) -> bool {
        match self.origins.get_mut(id) {
            Some(e) => {
                e.down_until = e.down_until.max(now + hold);
                true
            }
            None => false,
        }
    }

    /// A register or heartbeat: stores the origin's latest data and marks it
    /// seen at `now`. When the registry is full, dead origins are dropped
    /// first; if it is still full of live ones: [`LbError::TooManyOrigins`].
    pub fn update(&mut self, now: Duration, origin: Origin) -> Result<UpdateOutcome, LbError> {
        let id = origin.id();
        let was_alive = self.origins.get(&id).is_some_and(|e| self.alive(e, now));
        if let Some(e) = self.origins.get_mut(&id) {
            if !was_alive {
                e.alive_since = now;
            }
            e.origin = origin;
            e.last_seen = e.last_seen.max(now);
            return Ok(UpdateOutcome::Refreshed);
        }
        if self.origins.len() >= self.cfg.max_origins {
            self.drop_dead_origins(now);
            if self.origins.len() >= self.cfg.max_origins {
                return Err(LbError::TooManyOrigins { limit: self.cfg.max_origins });
            }
        }
        self.origins.insert(id, Entry { origin, last_seen: now, alive_since: now, down_until: Duration::ZERO });
        Ok(UpdateOutcome::Registered)
    }

    /// The origin for a stream: its live pin, else a uniform random draw
    /// among live origins (which becomes the pin). A pin to an expired or
    /// dropped origin is re-drawn; dead origins are never chosen (SRS Go's
    /// fallback to all servers is not copied). No live origin:
    /// [`LbError::NoOrigin`]. A new pin when `max_pins` are held evicts pins
    /// of dead origins first, else fails with [`LbError::TooManyPins`].
    pub fn pick(
        &mut self,
        now: Duration,
        rng: &mut fastrand::Rng,
        key: &StreamUrl,
    ) -> Result<(Origin, PickOutcome), LbError> {
        let mut from = None;
        if let Some(id) = self.pins.get(key) {
            match self.origins.get(id) {
                Some(e) if self.alive(e, now) => {
                    return Ok((e.origin.clone(), PickOutcome::Pinned));
                }
                _ => from = Some(id.clone()),
            }
        }
        let live: Vec<(&OriginId, &Entry)> = self.origins.iter().filter(|(_, e)| self.alive(e, now)).collect();
        if live.is_empty() {
            return Err(LbError::NoOrigin { stream: key.to_string() });
        }
        let (id, entry) = live[rng.usize(..live.len())];
        let (id, origin) = (id.clone(), entry.origin.clone());
        if from.is_none() && self.pins.len() >= self.cfg.max_pins {
            self.evict_dead_pins(now);
            if self.pins.len() >= self.cfg.max_pins {
                return Err(LbError::TooManyPins { limit: self.cfg.max_pins });
            }
        }
        self.pins.insert(key.clone(), id);
        let outcome = match from {
            Some(from) => PickOutcome::Repinned { from },
            None => PickOutcome::NewPin,
        };
        Ok((origin, outcome))
    }

    /// `id`, if it is alive at `now` and has been without a break since
    /// `since`. A pin moves only when its origin is dead at a pick, so a pin
    /// learnt at `since` still holds while this answers.
    pub fn alive_since(&self, now: Duration, id: &OriginId, since: Duration) -> Option<&Origin> {
        let e = self.origins.get(id)?;
        (self.alive(e, now) && e.alive_since <= since).then_some(&e.origin)
    }

    /// Read-only lookup of a live pin.
    pub fn pinned(&self, now: Duration, key: &StreamUrl) -> Option<&Origin> {
        let e = self.origins.get(self.pins.get(key)?)?;
        self.alive(e, now).then_some(&e.origin)
    }

    /// Forgets a pin (e.g. the stream's publisher left). Returns the origin
    /// it pointed at.
    pub fn unpin(&mut self, key: &StreamUrl) -> Option<OriginId> {
        self.pins.remove(key)
    }

    /// Drops origins silent for at least the TTL and the pins pointing at
    /// dropped origins. Returns the dropped ids, sorted.
    pub fn expire(&mut self, now: Duration) -> Vec<OriginId> {
        let dropped = self.drop_dead_origins(now);
        if self.stale_pins {
            let origins = &self.origins;
            self.pins.retain(|_, id| origins.contains_key(id));
            self.stale_pins = false;
        }
        dropped
    }

    /// When [`expire`](Self::expire) next has something to drop: the
    /// earliest death among the origins held, and at most a TTL from `now`
    /// (an origin registered later dies later than that).
    pub fn next_expiry(&self, now: Duration) -> Duration {
        let ttl = self.cfg.origin_ttl;
        self.origins.values().map(|e| e.last_seen + ttl).fold(now + ttl, Duration::min)
    }

    /// Every origin held, sorted by id: (origin, alive, time since its last
    /// heartbeat).
    pub fn origins(&self, now: Duration) -> impl Iterator<Item = (&Origin, bool, Duration)> + '_ {
        self.origins.values().map(move |e| (&e.origin, self.alive(e, now), now.saturating_sub(e.last_seen)))
    }

    /// Every pin on this core, in no particular order.
    pub fn pins(&self) -> impl Iterator<Item = (&StreamUrl, &OriginId)> + '_ {
        self.pins.iter()
    }

    pub fn origin_count(&self) -> usize {
        self.origins.len()
    }

    pub fn pin_count(&self) -> usize {
        self.pins.len()
    }

    fn drop_dead_origins(&mut self, now: Duration) -> Vec<OriginId> {
        let ttl = self.cfg.origin_ttl;
        let dead: Vec<OriginId> = self
            .origins
            .iter()
            .filter(|(_, e)| now.saturating_sub(e.last_seen) >= ttl)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &dead {
            self.origins.remove(id);
        }
        if !dead.is_empty() {
            self.stale_pins = true;
        }
        dead
    }

    /// Removes pins whose origin is dropped or dead. O(pins), so a futile
    /// scan is not repeated before some live origin can have died.
    fn evict_dead_pins(&mut self, now: Duration) {
        if self.no_evictable_until.is_some_and(|t| now < t) && !self.stale_pins {
            return;
        }
        let ttl = self.cfg.origin_ttl;
        let origins = &self.origins;
        let before = self.pins.len();
        self.pins.retain(|_, id| origins.get(id).is_some_and(|e| now.saturating_sub(e.last_seen) < ttl));
        self.stale_pins = false;
        self.no_evictable_until = if self.pins.len() == before {
            origins.values().filter(|e| now.saturating_sub(e.last_seen) < ttl).map(|e| e.last_seen + ttl).min()
        } else {
            None
        };
    }
}

#[cfg(test)]
mod tests {
    //! Deterministic simulation: injected time, seeded RNG.

    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    const TTL: Duration = Duration::from_secs(300);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn origin(n: u32) -> Origin {
        Origin {
            ip: format!("10.0.0.{n}"),
            server_id: format!("vid-{n}"),
            service_id: "svc".into(),
            pid: format!("{}", 1000 + n),
            rtmp: vec![format!("{}", 19350 + n)],
            ..Origin::default()
        }
    }

    fn key(i: usize) -> StreamUrl {
        StreamUrl::new_unchecked(format!("__defaultVhost__/live/s{i}"))
    }

    fn state() -> MemoryState {
        MemoryState::new(MemoryConfig { origin_ttl: TTL, ..MemoryConfig::default() })
    }

    fn register(st: &mut MemoryState, now: Duration, ns: &[u32]) {
        for &n in ns {
            st.update(now, origin(n)).unwrap();
        }
    }

    /// The expiry sweep sleeps until `next_expiry`: at that time `expire`
    /// drops something, before it nothing, and with no origin it waits a
    /// TTL (anything registered later dies later).
    #[test]
    fn next_expiry_is_the_first_time_expire_drops_something() {
        let mut st = state();
        assert_eq!(st.next_expiry(secs(5)), secs(5) + TTL, "empty: a TTL from now");
        register(&mut st, secs(10), &[1]);
        register(&mut st, secs(40), &[2]);
        register(&mut st, secs(70), &[1]); // 1's heartbeat: 2 dies first now
        let first = st.next_expiry(secs(80));
        assert_eq!(first, secs(40) + TTL);
        assert!(st.expire(first - Duration::from_millis(1)).is_empty(), "dropped before its time");
        assert_eq!(st.expire(first), vec![origin(2).id()]);
        assert_eq!(st.next_expiry(first), secs(70) + TTL);
        assert_eq!(st.expire(secs(70) + TTL), vec![origin(1).id()]);
        let now = secs(70) + TTL;
        assert_eq!(st.next_expiry(now), now + TTL, "empty again");
    }

    /// A refused connect holds an origin down: its pins move at their next
    /// pick, it is never drawn, and it comes back only with a heartbeat
    /// after the hold-down (a heartbeat during it changes nothing).
    #[test]
    fn mark_down_holds_until_a_heartbeat_after_the_hold() {
        let mut st = state();
        let mut rng = fastrand::Rng::with_seed(7);
        register(&mut st, secs(0), &[1, 2]);
        let hold = secs(10);
        // Pin ten streams; some land on 1.
        let on1: Vec<usize> =
            (0..10).filter(|&i| st.pick(secs(1), &mut rng, &key(i)).unwrap().0.id() == origin(1).id()).collect();
        assert!(!on1.is_empty());
        assert!(st.mark_down(secs(2), &origin(1).id(), hold));
        assert!(!st.mark_down(secs(2), &origin(9).id(), hold), "unknown origin");
        for &i in &on1 {
            let (o, out) = st.pick(secs(3), &mut rng, &key(i)).unwrap();
            assert_eq!(o.id(), origin(2).id());
            assert_eq!(out, PickOutcome::Repinned { from: origin(1).id() });
        }
        register(&mut st, secs(5), &[1]); // heartbeat inside the hold-down
        for i in 10..40 {
            assert_eq!(st.pick(secs(6), &mut rng, &key(i)).unwrap().0.id(), origin(2).id(), "drawn while held down");
        }
        assert!(st.pinned(secs(13), &key(100)).is_none());
        assert!(st.origins(secs(13)).any(|(o, alive, _)| o.id() == origin(1).id() && !alive), "no heartbeat since");
        register(&mut st, secs(14), &[1]);
        assert!(st.origins(secs(14)).all(|(_, alive, _)| alive), "back with the heartbeat after the hold");
    }

    /// What another core may answer from a pin it learnt: only while the
    /// pinned origin has lived without a break since then. An origin that
    /// expired and came back may have lost the pin on the owning core.
    #[test]
    fn alive_since_holds_only_while_the_origin_never_died() {
        let mut st = state();
        let mut rng = fastrand::Rng::with_seed(3);
        register(&mut st, secs(10), &[1]);
        let id = origin(1).id();
        let (o, _) = st.pick(secs(20), &mut rng, &key(0)).unwrap();
        assert_eq!(o.id(), id);
        let learnt = secs(20);
        let table: &[(&str, u64, &[u64], bool)] = &[
            // (what, asked at, heartbeats before that, answers)
            ("right after", 21, &[], true),
            ("heartbeats keep it alive", 600, &[200, 400, 590], true),
            ("just before the TTL", 309, &[], true),
            ("at the TTL: dead", 310, &[], false),
            ("dead, then back: not the same life", 400, &[350], false),
        ];
        for &(what, at, beats, want) in table {
            let mut st2 = state();
            register(&mut st2, secs(10), &[1]);
            for &b in beats {
                register(&mut st2, secs(b), &[1]);
            }
            assert_eq!(st2.alive_since(secs(at), &id, learnt).is_some(), want, "{what}");
        }
        // Learnt after the comeback: holds again.
        let mut st3 = state();
        register(&mut st3, secs(10), &[1]);
        register(&mut st3, secs(350), &[1]);
        assert!(st3.alive_since(secs(360), &id, secs(355)).is_some());
        assert!(st3.alive_since(secs(360), &id, secs(349)).is_none());
        assert!(st3.alive_since(secs(360), &origin(2).id(), secs(355)).is_none(), "unknown origin");
    }

    #[test]
    fn picks_spread_and_stick() {
        let mut st = state();
        let mut rng = fastrand::Rng::with_seed(7);
        register(&mut st, secs(0), &[1, 2, 3]);
        let mut first = Vec::new();
        let mut used = BTreeMap::<OriginId, usize>::new();
        for i in 0..1000 {
            let (o, out) = st.pick(secs(1), &mut rng, &key(i)).unwrap();
            assert_eq!(out, PickOutcome::NewPin);
            *used.entry(o.id()).or_default() += 1;
            first.push(o.id());
        }
        assert_eq!(used.len(), 3, "{used:?}");
        for n in used.values() {
            assert!(*n > 250, "uneven spread {used:?}");
        }
        for (i, id) in first.iter().enumerate() {
            let (o, out) = st.pick(secs(2), &mut rng, &key(i)).unwrap();
            assert_eq!(out, PickOutcome::Pinned);
            assert_eq!(&o.id(), id);
            assert_eq!(st.pinned(secs(2), &key(i)).map(Origin::id).as_ref(), Some(id));
        }
        assert_eq!(st.pin_count(), 1000);
    }

    #[test]
    fn dead_origin_pins_move_to_live_ones() {
        let mut st = state();
        let mut rng = fastrand::Rng::with_seed(1);
        register(&mut st, secs(0), &[1, 2, 3]);
        let mut before = Vec::new();
        for i in 0..300 {
            before.push(st.pick(secs(0), &mut rng, &key(i)).unwrap().0.id());
        }
        let dead = origin(2).id();
        // Origins 1 and 3 heartbeat every 10 s; 2 stops after t=0.
        let mut t = secs(0);
        while t < TTL {
            t += secs(10);
            register(&mut st, t, &[1, 3]);
        }
        // Just before the TTL, 2 still counts as alive.
        assert!(st.pinned(TTL - secs(1), &key(before.iter().position(|id| *id == dead).unwrap())).is_some());
        assert!(st.origins(TTL - secs(1)).all(|(_, alive, _)| alive));
        // At exactly TTL since its last heartbeat, 2 is dead.
        let now = TTL;
        let alive: BTreeMap<OriginId, bool> = st.origins(now).map(|(o, a, _)| (o.id(), a)).collect();
        assert!(!alive[&dead]);
        assert_eq!(st.origins(now).find(|(o, _, _)| o.id() == dead).unwrap().2, TTL);
        for (i, was) in before.iter().enumerate() {
            let (o, out) = st.pick(now, &mut rng, &key(i)).unwrap();
            assert_ne!(o.id(), dead);
            if *was == dead {
                assert_eq!(out, PickOutcome::Repinned { from: dead.clone() });
            } else {
                assert_eq!(out, PickOutcome::Pinned);
                assert_eq!(&o.id(), was);
            }
        }
        assert_eq!(st.expire(now), vec![dead.clone()]);
        assert_eq!(st.origin_count(), 2);
        assert!(st.pins().all(|(_, id)| *id != dead));
        assert_eq!(st.expire(now), vec![]);
    }

    #[test]
    fn expire_drops_pins_of_dropped_origins() {
        let mut st = state();
        let mut rng = fastrand::Rng::with_seed(3);
        register(&mut st, secs(0), &[1]);
        register(&mut st, secs(100), &[2]);
        for i in 0..50 {
            st.pick(secs(100), &mut rng, &key(i)).unwrap();
        }
        let on1 = st.pins().filter(|(_, id)| **id == origin(1).id()).count();
        assert!(on1 > 0);
        assert_eq!(st.expire(secs(300)), vec![origin(1).id()]);
        assert_eq!(st.pin_count(), 50 - on1);
        assert_eq!(st.expire(secs(400)), vec![origin(2).id()]);
        assert_eq!(st.pin_count(), 0);
        assert_eq!(st.origin_count(), 0);
    }

    #[test]
    fn refresh_keeps_alive() {
        let mut st = state();
        let mut rng = fastrand::Rng::with_seed(5);
        assert_eq!(st.update(secs(0), origin(1)), Ok(UpdateOutcome::Registered));
        let (o, _) = st.pick(secs(0), &mut rng, &key(0)).unwrap();
        for t in (9..3000).step_by(9) {
            assert_eq!(st.update(secs(t), origin(1)), Ok(UpdateOutcome::Refreshed));
            assert!(st.expire(secs(t)).is_empty());
            assert_eq!(st.pick(secs(t), &mut rng, &key(0)).unwrap(), (o.clone(), PickOutcome::Pinned));
        }
        // A refresh replaces the data (e.g. new ports) but keeps the pin.
        let mut changed = origin(1);
        changed.http = vec!["8080".into()];
        st.update(secs(3000), changed.clone()).unwrap();
        assert_eq!(st.pinned(secs(3000), &key(0)), Some(&changed));
        // A late heartbeat revives a dead-but-not-dropped origin and its pins.
        assert!(st.pinned(secs(3300), &key(0)).is_none());
        st.update(secs(3400), origin(1)).unwrap();
        assert_eq!(st.pick(secs(3400), &mut rng, &key(0)).unwrap().1, PickOutcome::Pinned);
    }

    #[test]
    fn no_live_origin_is_an_error_even_with_dead_ones() {
        let mut st = state();
        let mut rng = fastrand::Rng::with_seed(9);
        let err = st.pick(secs(0), &mut rng, &key(0)).unwrap_err();
        assert_eq!(err, LbError::NoOrigin { stream: "__defaultVhost__/live/s0".into() });
        assert_eq!(err.to_string(), "no origin available for __defaultVhost__/live/s0");
        register(&mut st, secs(0), &[1, 2]);
        st.pick(secs(0), &mut rng, &key(0)).unwrap();
        // Both dead, not yet dropped: neither a pinned nor a new key is served.
        assert!(matches!(st.pick(TTL, &mut rng, &key(0)), Err(LbError::NoOrigin { .. })));
        assert!(matches!(st.pick(TTL, &mut rng, &key(1)), Err(LbError::NoOrigin { .. })));
        assert!(st.pinned(TTL, &key(0)).is_none());
        // One comes back: the pin moves there.
        register(&mut st, TTL, &[2]);
        let (o, _) = st.pick(TTL, &mut rng, &key(1)).unwrap();
        assert_eq!(o.id(), origin(2).id());
    }

    fn run(seed: u64) -> Vec<(StreamUrl, OriginId, PickOutcome)> {
        let mut st = state();
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut log = Vec::new();
        // Register in a scrambled order: candidate order must not depend on it.
        let order: Vec<u32> = if seed & 1 == 0 { vec![3, 1, 4, 2] } else { vec![2, 4, 1, 3] };
        register(&mut st, secs(0), &order);
        for step in 0..2000u64 {
            let now = secs(step);
            if step % 10 == 0 {
                // Origin 4 dies at t=0; the others heartbeat.
                register(&mut st, now, &[1, 2, 3]);
            }
            if step % 97 == 0 {
                st.expire(now);
            }
            let k = key(rng.usize(..200));
            let (o, out) = st.pick(now, &mut rng, &k).unwrap();
            log.push((k, o.id(), out));
        }
        log
    }

    #[test]
    fn a_seed_reproduces_the_run() {
        let a = run(42);
        let b = run(42);
        assert_eq!(a, b);
        // Registration order does not change the draw for a given seed.
        let reordered = {
            let mut st = state();
            let mut rng = fastrand::Rng::with_seed(11);
            register(&mut st, secs(0), &[1, 2, 3]);
            (0..100).map(|i| st.pick(secs(0), &mut rng, &key(i)).unwrap().0.id()).collect::<Vec<_>>()
        };
        let mut st = state();
        let mut rng = fastrand::Rng::with_seed(11);
        register(&mut st, secs(0), &[3, 2, 1]);
        let again: Vec<_> = (0..100).map(|i| st.pick(secs(0), &mut rng, &key(i)).unwrap().0.id()).collect();
        assert_eq!(reordered, again);
        assert_ne!(run(42), run(43));
        // Origin 4 served only before its TTL.
        let four = origin(4).id();
        for (i, (_, id, _)) in a.iter().enumerate() {
            if *id == four {
                assert!((i as u64) < TTL.as_secs());
            }
        }
        assert!(a.iter().any(|(_, _, o)| matches!(o, PickOutcome::Repinned { .. })));
    }

    #[test]
    fn max_origins_bound() {
        let mut st = MemoryState::new(MemoryConfig { origin_ttl: TTL, max_origins: 3, max_pins: 10 });
        register(&mut st, secs(0), &[1, 2, 3]);
        assert_eq!(st.update(secs(1), origin(4)), Err(LbError::TooManyOrigins { limit: 3 }));
        // Refreshes of known origins still work when full.
        assert_eq!(st.update(secs(100), origin(1)), Ok(UpdateOutcome::Refreshed));
        // Once 2 and 3 are dead, a new origin takes a free slot.
        assert_eq!(st.update(TTL, origin(4)), Ok(UpdateOutcome::Registered));
        assert_eq!(st.origin_count(), 2);
        let ids: BTreeSet<_> = st.origins(TTL).map(|(o, _, _)| o.id()).collect();
        assert_eq!(ids, BTreeSet::from([origin(1).id(), origin(4).id()]));
        assert!(st.origin_count() <= 3);
    }

    #[test]
    fn max_pins_bound() {
        let mut st = MemoryState::new(MemoryConfig { origin_ttl: TTL, max_origins: 8, max_pins: 10 });
        let mut rng = fastrand::Rng::with_seed(2);
        register(&mut st, secs(0), &[1]);
        for i in 0..10 {
            st.pick(secs(0), &mut rng, &key(i)).unwrap();
        }
        assert_eq!(st.pick(secs(1), &mut rng, &key(10)), Err(LbError::TooManyPins { limit: 10 }));
        // Existing pins are still served when full.
        assert_eq!(st.pick(secs(1), &mut rng, &key(3)).unwrap().1, PickOutcome::Pinned);
        // Futile scans are skipped until an origin can have died...
        assert!(st.no_evictable_until == Some(TTL));
        assert!(st.pick(secs(2), &mut rng, &key(11)).is_err());
        // ...then pins of the dead origin make room for a live one.
        register(&mut st, secs(200), &[2]);
        let (o, out) = st.pick(TTL, &mut rng, &key(10)).unwrap();
        assert_eq!((o.id(), out), (origin(2).id(), PickOutcome::NewPin));
        assert_eq!(st.pin_count(), 1);
        for i in 11..20 {
            st.pick(TTL, &mut rng, &key(i)).unwrap();
        }
        assert_eq!(st.pin_count(), 10);
        assert!(st.pick(TTL, &mut rng, &key(99)).is_err());
        assert!(st.pin_count() <= 10);
        // Unpinning frees a slot.
        assert_eq!(st.unpin(&key(11)), Some(origin(2).id()));
        st.pick(TTL, &mut rng, &key(99)).unwrap();
        assert_eq!(st.pin_count(), 10);
    }

    #[test]
    fn time_going_backwards_is_harmless() {
        let mut st = state();
        let mut rng = fastrand::Rng::with_seed(4);
        register(&mut st, secs(100), &[1]);
        assert!(st.pick(secs(50), &mut rng, &key(0)).is_ok());
        st.update(secs(10), origin(1)).unwrap();
        // last_seen never moves back.
        assert!(st.pinned(secs(399), &key(0)).is_some());
        assert!(st.expire(secs(0)).is_empty());
    }
}
