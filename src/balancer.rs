//! The balancer a core asks (`core.lb`): the memory balancer or the Redis
//! one behind one surface, and the memory balancer itself.
//!
//! The memory balancer is spread over the cores. Every core keeps a replica
//! of the origin registry (a registration is sent to all cores); each
//! stream's pin lives on exactly one core, chosen by hashing the stream key,
//! so two connections for one stream agree on its origin whichever core
//! they land on.

use crate::redis_lb::RedisBalancer;
use srs_io::mesh::{self, Mesh, MeshError};
use srs_lb::{
    HlsError, HlsSessions, LbError, LoadBalancer, MemoryConfig, MemoryState, Origin, OriginId, PickOutcome,
    UpdateOutcome, HLS_SESSION_TTL,
};
use srs_protocols::stream_url::StreamUrl;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

pub enum LbReq {
    Update(Box<Origin>),
    Pick(StreamUrl),
    Pins,
    /// A playlist request: reuse the player's session (by the id it sent or
    /// by its player hash) or open one; answers the id to use.
    HlsOpen {
        given: Option<String>,
        player: u64,
        stream: StreamUrl,
        origin: OriginId,
    },
    HlsTouch(String),
    /// An origin refused a connection: hold it down on every core.
    MarkDown(OriginId),
}

pub enum LbResp {
    Updated(Result<UpdateOutcome, LbError>),
    Picked(Result<Box<(Origin, PickOutcome)>, LbError>),
    Pins(Vec<(StreamUrl, OriginId)>),
    HlsOpened(Result<String, HlsError>),
    Hls(Option<(StreamUrl, OriginId)>),
    MarkedDown,
}

/// Bound on HLS player sessions per core.
const MAX_HLS_SESSIONS: usize = 200_000;
/// Bound on the pins a core remembers from other cores; cleared when full.
const MAX_LEARNT_PINS: usize = 100_000;
/// The expiry sweep never sleeps less. Each sweep walks every origin and
/// HLS session of the core, so deaths close together (players leaving HLS
/// streams one after another) are taken in one sweep, not one each.
const MIN_EXPIRY_SLEEP: Duration = Duration::from_millis(500);

pub type LbMesh = Mesh<LbReq, LbResp>;
pub type LbBuilder = mesh::Builder<LbReq, LbResp>;

/// A failed cross-core call is the balancer's backend failing.
fn mesh_err(e: MeshError) -> LbError {
    LbError::Backend { reason: format!("cross-core call: {e}") }
}

/// One origin as the system API lists it.
pub struct OriginView {
    pub origin: Origin,
    pub alive: bool,
    pub since_heartbeat: Duration,
}

/// This core's handle on the memory balancer.
pub struct MemoryBalancer {
    mesh: Rc<LbMesh>,
    state: Rc<RefCell<MemoryState>>,
    /// Pins other cores answered, and when: a pin moves only when its origin
    /// is dead at a pick, so one stays true while its origin lives without
    /// a break ([`MemoryState::alive_since`]), and the next player of a
    /// stream owned elsewhere needs no cross-core call.
    learnt: RefCell<HashMap<StreamUrl, (OriginId, Duration)>>,
    hls: Rc<RefCell<HlsSessions>>,
    epoch: Instant,
}

impl MemoryBalancer {
    pub async fn join(index: usize, builder: LbBuilder, cfg: MemoryConfig, epoch: Instant) -> Result<Self, MeshError> {
        let mesh = Mesh::join(index, builder).await?;
        let state = Rc::new(RefCell::new(MemoryState::new(cfg)));
        let rng = RefCell::new(fastrand::Rng::new());
        let hls = Rc::new(RefCell::new(HlsSessions::new(HLS_SESSION_TTL, MAX_HLS_SESSIONS)));
        let core = mesh.me();
        {
            let state = state.clone();
            let hls = hls.clone();
            mesh.set_handler(move |req| {
                let now = epoch.elapsed();
                let mut st = state.borrow_mut();
                match req {
                    LbReq::HlsOpen { given, player, stream, origin } => {
                        let mut h = hls.borrow_mut();
                        let mut id = given.filter(|g| h.touch(now, g).is_some_and(|s| s.stream == stream));
                        if id.is_none() {
                            id = h.touch_player(now, player).filter(|(_, s)| s.stream == stream).map(|(id, _)| id);
                        }
                        let id = id.unwrap_or_else(|| new_spbhid(core, &mut rng.borrow_mut()));
                        LbResp::HlsOpened(h.store(now, &id, stream, origin, Some(player)).map(|_| id))
                    }
                    LbReq::HlsTouch(id) => {
                        LbResp::Hls(hls.borrow_mut().touch(now, &id).map(|s| (s.stream.clone(), s.origin.clone())))
                    }
                    LbReq::Update(o) => LbResp::Updated(st.update(now, *o)),
                    LbReq::Pick(k) => LbResp::Picked(st.pick(now, &mut rng.borrow_mut(), &k).map(Box::new)),
                    LbReq::MarkDown(id) => {
                        st.mark_down(now, &id, srs_lb::ORIGIN_HOLD_DOWN);
                        LbResp::MarkedDown
                    }
                    LbReq::Pins => LbResp::Pins(st.pins().map(|(k, o)| (k.clone(), o.clone())).collect()),
                }
            });
        }
        let me = MemoryBalancer { mesh, state, hls, epoch, learnt: RefCell::default() };
        me.spawn_expiry();
        Ok(me)
    }

    fn spawn_expiry(&self) {
        let state = self.state.clone();
        let hls = self.hls.clone();
        let epoch = self.epoch;
        let core = self.mesh.me();
        glommio::spawn_local(async move {
            loop {
                // Asleep until something can expire, not on a fixed tick: an
                // idle core does not wake for nothing. Liveness is checked
                // against the clock wherever an origin is used, so a late
                // sweep only frees memory and says which origin died later.
                let now = epoch.elapsed();
                let next = state.borrow().next_expiry(now).min(hls.borrow().next_expiry(now));
                glommio::timer::sleep(next.saturating_sub(now).max(MIN_EXPIRY_SLEEP)).await;
                hls.borrow_mut().expire(epoch.elapsed());
                let expired = state.borrow_mut().expire(epoch.elapsed());
                // Every core holds the same registry; one of them says so.
                if core == 0 {
                    for id in expired {
                        tracing::warn!(id = %id, "origin expired: no heartbeat within the TTL");
                    }
                }
            }
        })
        .detach();
    }

    /// HLS player sessions this core owns.
    pub fn hls_sessions(&self) -> usize {
        self.hls.borrow().len()
    }

    /// The registry as this core sees it (identical on every core).
    pub fn origins(&self) -> Vec<OriginView> {
        let now = self.epoch.elapsed();
        let st = self.state.borrow();
        st.origins(now)
            .map(|(o, alive, since)| OriginView { origin: o.clone(), alive, since_heartbeat: since })
            .collect()
    }

    /// A live origin by id, from this core's replica of the registry.
    pub fn origin(&self, id: &OriginId) -> Option<Origin> {
        let now = self.epoch.elapsed();
        let st = self.state.borrow();
        let found = st.origins(now).find(|(o, alive, _)| *alive && o.id() == *id).map(|(o, _, _)| o.clone());
        found
    }

    /// Any live origin (for API requests that name no stream).
    pub fn any_origin(&self) -> Option<Origin> {
        let now = self.epoch.elapsed();
        let st = self.state.borrow();
        let live: Vec<Origin> = st.origins(now).filter(|(_, alive, _)| *alive).map(|(o, _, _)| o.clone()).collect();
        if live.is_empty() {
            None
        } else {
            Some(live[fastrand::usize(..live.len())].clone())
        }
    }

    /// The HLS session id for a playlist request: the player's own (`given`,
    /// or found by its `player` hash) while it lives, else a new one.
    pub async fn hls_open(
        &self,
        given: Option<&str>,
        player: u64,
        stream: StreamUrl,
        origin: OriginId,
    ) -> Result<String, LbError> {
        let owner = given.and_then(|g| spbhid_core(g, self.mesh.cores())).unwrap_or(self.mesh.owner(&player));
        let req = LbReq::HlsOpen { given: given.map(str::to_string), player, stream, origin };
        match self.mesh.call(owner, req).await {
            Ok(LbResp::HlsOpened(r)) => r.map_err(|e| LbError::Backend { reason: e.to_string() }),
            Ok(_) => Err(mesh_err(MeshError::NoHandler)),
            Err(e) => Err(mesh_err(e)),
        }
    }

    /// The live HLS session `id` (refreshed), if any.
    pub async fn hls_touch(&self, id: &str) -> Result<Option<(StreamUrl, OriginId)>, LbError> {
        let Some(owner) = spbhid_core(id, self.mesh.cores()) else { return Ok(None) };
        match self.mesh.call(owner, LbReq::HlsTouch(id.to_string())).await {
            Ok(LbResp::Hls(r)) => Ok(r),
            Ok(_) => Err(mesh_err(MeshError::NoHandler)),
            Err(e) => Err(mesh_err(e)),
        }
    }

    /// A pin learnt from its owning core that still holds (its origin has
    /// lived without a break since), with the origin's current data.
    fn learnt_pin(&self, key: &StreamUrl) -> Option<Origin> {
        let now = self.epoch.elapsed();
        let mut learnt = self.learnt.borrow_mut();
        let (id, since) = learnt.get(key)?;
        let hit = self.state.borrow().alive_since(now, id, *since).cloned();
        if hit.is_none() {
            learnt.remove(key);
        }
        hit
    }

    /// Holds `id` down on every core (see [`MemoryState::mark_down`]).
    pub async fn mark_down(&self, id: &OriginId) {
        for r in self.mesh.call_all(|| LbReq::MarkDown(id.clone())).await {
            if let Err(e) = r {
                tracing::warn!(id = %id, error = %e, "hold-down not sent to every core");
            }
        }
    }

    /// Every pin, gathered from all cores.
    pub async fn pins(&self) -> Vec<(StreamUrl, OriginId)> {
        let mut all = Vec::new();
        for r in self.mesh.call_all(|| LbReq::Pins).await {
            if let Ok(LbResp::Pins(v)) = r {
                all.extend(v);
            }
        }
        all.sort();
        all
    }
}

impl LoadBalancer for MemoryBalancer {
    /// Registers or refreshes an origin on every core; the outcome is this core's.
    async fn update(&self, origin: Origin) -> Result<UpdateOutcome, LbError> {
        let me = self.mesh.me();
        let mut mine = None;
        for (core, r) in self.mesh.call_all(|| LbReq::Update(Box::new(origin.clone()))).await.into_iter().enumerate() {
            match r {
                Ok(LbResp::Updated(r)) if core == me => mine = Some(r),
                Ok(_) => {}
                Err(e) => return Err(mesh_err(e)),
            }
        }
        match mine {
            Some(r) => r,
            None => Err(mesh_err(MeshError::NoHandler)),
        }
    }

    /// The origin for `key`, asked of the core that owns the key, unless
    /// this core learnt the pin from it and the origin has lived since.
    async fn pick(&self, key: &StreamUrl) -> Result<(Origin, PickOutcome), LbError> {
        let owner = self.mesh.owner(key.as_str());
        if owner != self.mesh.me() {
            if let Some(hit) = self.learnt_pin(key) {
                return Ok((hit, PickOutcome::Pinned));
            }
        }
        // Before the call: an origin that died and came back while it was
        // under way does not count as having lived since.
        let asked = self.epoch.elapsed();
        let picked = match self.mesh.call(owner, LbReq::Pick(key.clone())).await {
            Ok(LbResp::Picked(r)) => r.map(|b| *b),
            Ok(_) => Err(mesh_err(MeshError::NoHandler)),
            Err(e) => Err(mesh_err(e)),
        };
        if let (true, Ok((origin, _))) = (owner != self.mesh.me(), &picked) {
            let mut learnt = self.learnt.borrow_mut();
            if learnt.len() >= MAX_LEARNT_PINS {
                learnt.clear();
            }
            learnt.insert(key.clone(), (origin.id(), asked));
        }
        picked
    }
}

/// An HLS session id names the core that holds it: "<core>-<random>".
fn new_spbhid(core: usize, rng: &mut fastrand::Rng) -> String {
    let mut s = format!("{core}-");
    for _ in 0..10 {
        s.push(rng.alphanumeric().to_ascii_lowercase());
    }
    s
}

/// The core an id belongs to, if it is one of ours.
fn spbhid_core(id: &str, cores: usize) -> Option<usize> {
    let (c, rest) = id.split_once('-')?;
    let c: usize = c.parse().ok()?;
    (c < cores && !rest.is_empty()).then_some(c)
}

/// What `core.lb` is: one surface over either balancer, so the protocol
/// proxies never ask which one runs.
pub enum Balancer {
    Memory(MemoryBalancer),
    Redis(Rc<RedisBalancer>),
}

impl Balancer {
    /// HLS player sessions this core holds (memory balancer; in Redis mode
    /// they live in Redis, and none is counted here).
    pub fn hls_sessions(&self) -> usize {
        match self {
            Balancer::Memory(m) => m.hls_sessions(),
            Balancer::Redis(_) => 0,
        }
    }

    /// The core this handle belongs to.
    pub fn core(&self) -> usize {
        match self {
            Balancer::Memory(m) => m.mesh.me(),
            Balancer::Redis(r) => r.core(),
        }
    }

    /// The origins as this core sees them (Redis: its copy of the list, at
    /// most a second old).
    pub fn origins(&self) -> Vec<OriginView> {
        match self {
            Balancer::Memory(m) => m.origins(),
            Balancer::Redis(r) => r.origins(),
        }
    }

    /// A live origin by id.
    pub fn origin(&self, id: &OriginId) -> Option<Origin> {
        match self {
            Balancer::Memory(m) => m.origin(id),
            Balancer::Redis(r) => r.origin(id),
        }
    }

    /// Any live origin (for API requests that name no stream).
    pub fn any_origin(&self) -> Option<Origin> {
        match self {
            Balancer::Memory(m) => m.any_origin(),
            Balancer::Redis(r) => r.any_origin(),
        }
    }

    pub async fn hls_open(
        &self,
        given: Option<&str>,
        player: u64,
        stream: StreamUrl,
        origin: OriginId,
    ) -> Result<String, LbError> {
        match self {
            Balancer::Memory(m) => m.hls_open(given, player, stream, origin).await,
            Balancer::Redis(r) => r.hls_open(given, player, stream, origin).await,
        }
    }

    pub async fn hls_touch(&self, id: &str) -> Result<Option<(StreamUrl, OriginId)>, LbError> {
        match self {
            Balancer::Memory(m) => m.hls_touch(id).await,
            Balancer::Redis(r) => r.hls_touch(id).await,
        }
    }

    pub async fn pins(&self) -> Vec<(StreamUrl, OriginId)> {
        match self {
            Balancer::Memory(m) => m.pins().await,
            Balancer::Redis(r) => r.pins().await,
        }
    }

    /// An origin refused a connection (`why`, for the log): it leaves the
    /// picks of this proxy's cores (and, with Redis, of every proxy) for
    /// [`srs_lb::ORIGIN_HOLD_DOWN`], and comes back with its first
    /// heartbeat after that. Counted in this core's metrics.
    pub async fn mark_down(&self, id: &OriginId, why: &str) {
        crate::metrics::local().origin_down();
        tracing::warn!(origin = %id, reason = why, hold_ms = srs_lb::ORIGIN_HOLD_DOWN.as_millis() as u64,
            "origin refused a connection: held down, its streams move to live origins");
        match self {
            Balancer::Memory(m) => m.mark_down(id).await,
            Balancer::Redis(r) => {
                if let Err(e) = r.mark_down(id).await {
                    tracing::warn!(origin = %id, error = %e, "hold-down not written to redis");
                }
            }
        }
    }

    /// Shares a WebRTC session's record with the other proxies (Redis mode;
    /// with the memory balancer the proxy's own cores are all there is).
    pub async fn rtc_store(&self, rec: &srs_lb::redis::RtcRecord) {
        if let Balancer::Redis(r) = self {
            if let Err(e) = r.rtc_store(rec).await {
                tracing::warn!(ufrag = %rec.ufrag, stream = %rec.stream_url, error = %e,
                    "webrtc record not written to redis: another proxy will not find this session");
            }
        }
    }

    /// Removes a deleted WebRTC session's shared record (Redis mode).
    pub async fn rtc_forget(&self, ufrag: &str) {
        if let Balancer::Redis(r) = self {
            if let Err(e) = r.rtc_forget(ufrag).await {
                tracing::warn!(ufrag, error = %e, "webrtc record not removed from redis: it expires in 120 s");
            }
        }
    }

    /// A WebRTC session's record another proxy shared (Redis mode), its TTL
    /// refreshed.
    pub async fn rtc_lookup(&self, ufrag: &str) -> Result<Option<srs_lb::redis::RtcRecord>, LbError> {
        match self {
            Balancer::Memory(_) => Ok(None),
            Balancer::Redis(r) => r.rtc_touch(ufrag).await,
        }
    }
}

impl LoadBalancer for Balancer {
    async fn update(&self, origin: Origin) -> Result<UpdateOutcome, LbError> {
        match self {
            Balancer::Memory(m) => m.update(origin).await,
            Balancer::Redis(r) => r.update(origin).await,
        }
    }

    async fn pick(&self, key: &StreamUrl) -> Result<(Origin, PickOutcome), LbError> {
        match self {
            Balancer::Memory(m) => m.pick(key).await,
            Balancer::Redis(r) => r.pick(key).await,
        }
    }
}
