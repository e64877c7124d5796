//! The Redis balancer on one core: origins, stream pins and HLS sessions in
//! a Redis shared by every proxy (and SRS Go proxies: the keys and values
//! of B§5.3, [`srs_lb::redis`]). It owns this core's view of the origin list
//! (refreshed every second, for the synchronous lookups), the pins and
//! heartbeats this core has seen (written back when Redis comes back
//! empty), and the calls' mapping onto scripts and pipelines.

use super::client::{as_str, ok, Conn, RedisError};
use crate::balancer::OriginView;
use redis::Value;
use srs_lb::redis::{self as schema, HlsRecord, Keys, PickReply, RtcRecord};
use srs_lb::{LbError, Origin, OriginId, PickOutcome, UpdateOutcome, HLS_SESSION_TTL, ORIGIN_HOLD_DOWN};
use srs_protocols::stream_url::StreamUrl;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// WebRTC session records in Redis (B§5.1 `srsRTCAliveDuration`).
pub const RTC_TTL: Duration = Duration::from_secs(120);

/// The origin list is re-read this often; an origin registered on another
/// proxy is seen here within it (picks never wait for it: they run in Redis).
const CACHE_REFRESH: Duration = Duration::from_secs(1);
/// Bound on the pins a core remembers for write-back; cleared when full.
const MAX_REMEMBERED_PINS: usize = 100_000;
/// Past this many origins heard from, the silent ones are forgotten.
const MAX_HEARTBEATS: usize = 4096;
/// Past this many HLS sessions remembered for write-back, idle ones go.
const MAX_REMEMBERED_HLS: usize = 100_000;

struct Script {
    code: &'static str,
    sha: String,
}

impl Script {
    fn new(code: &'static str) -> Script {
        Script { code, sha: redis::Script::new(code).get_hash().to_string() }
    }
}

struct Cached {
    origin: Origin,
    key: String,
    expires: Instant,
}

/// What this core knows, shared with the connection's write-back hook.
struct Shared {
    keys: Keys,
    ttl: Duration,
    /// The live origins as last read (or registered, or picked here).
    cache: RefCell<HashMap<OriginId, Cached>>,
    /// Pins this core answered: stream -> server key.
    picked: RefCell<HashMap<StreamUrl, String>>,
    /// Origins whose heartbeats reach this core, and when last.
    heartbeats: RefCell<HashMap<OriginId, (Origin, Instant)>>,
    /// HLS sessions this core opened or served a segment of: id -> (its
    /// JSON record, last use), so a player mid-stream keeps its id across
    /// a Redis that came back empty.
    hls: RefCell<HashMap<String, (String, Instant)>>,
}

impl Shared {
    fn hls_used(&self, id: &str, json: String) {
        let mut hls = self.hls.borrow_mut();
        if hls.len() >= MAX_REMEMBERED_HLS {
            hls.retain(|_, (_, at)| at.elapsed() < HLS_SESSION_TTL);
        }
        hls.insert(id.to_string(), (json, Instant::now()));
    }

    fn remember(&self, origin: &Origin, key: String, ttl_left: Duration) {
        let c = Cached { origin: origin.clone(), key, expires: Instant::now() + ttl_left };
        self.cache.borrow_mut().insert(origin.id(), c);
    }

    /// The write-back after a reconnection: every origin still alive as
    /// this core last knew it, with the TTL it had left, then the pins
    /// this core answered whose origin is among them, then the HLS sessions
    /// it used within their TTL. NX throughout: what another proxy wrote
    /// since is newer and stays.
    fn restore_command(&self) -> Option<(Vec<u8>, usize)> {
        let now = Instant::now();
        let mut origins: HashMap<String, (String, u64, String)> = HashMap::new();
        for c in self.cache.borrow().values() {
            let left = c.expires.saturating_duration_since(now).as_millis() as u64;
            if left > 0 {
                let down = self.keys.down(&c.origin.id());
                origins.insert(c.key.clone(), (serde_json::to_string(&c.origin).ok()?, left, down));
            }
        }
        for (id, (o, at)) in self.heartbeats.borrow().iter() {
            let left = self.ttl.saturating_sub(now.duration_since(*at)).as_millis() as u64;
            if left > 0 {
                origins.insert(self.keys.server(id), (serde_json::to_string(o).ok()?, left, self.keys.down(id)));
            }
        }
        let mut p = redis::pipe();
        let mut n = 0;
        if !origins.is_empty() {
            p.add_command(self.restore_origins(&origins));
            n += 1;
        }
        let mut sessions = 0;
        for (id, (json, at)) in self.hls.borrow().iter() {
            let left = HLS_SESSION_TTL.saturating_sub(now.duration_since(*at)).as_millis() as u64;
            if left > 0 {
                p.cmd("SET").arg(self.keys.spbhid(id)).arg(json).arg("PX").arg(left).arg("NX");
                n += 1;
                sessions += 1;
            }
        }
        if n == 0 {
            return None;
        }
        tracing::info!(
            origins = origins.len(),
            hls_sessions = sessions,
            "redis: writing back origins, pins and HLS sessions"
        );
        Some((p.get_packed_pipeline(), n))
    }

    /// The RESTORE_SCRIPT call for `origins` and the pins to them.
    fn restore_origins(&self, origins: &HashMap<String, (String, u64, String)>) -> redis::Cmd {
        let mut c = redis::cmd("EVAL");
        c.arg(schema::RESTORE_SCRIPT).arg(1).arg(self.keys.all_servers()).arg(origins.len());
        for (k, (json, left, down)) in origins {
            c.arg(k).arg(json).arg(*left).arg(down);
        }
        for (stream, key) in self.picked.borrow().iter() {
            if origins.contains_key(key) {
                c.arg(self.keys.url(stream)).arg(key);
            }
        }
        c
    }
}

pub struct RedisBalancer {
    conn: Rc<Conn>,
    shared: Rc<Shared>,
    pick: Script,
    update: Script,
    list: Script,
    core: usize,
}

fn backend(e: RedisError) -> LbError {
    LbError::Backend { reason: e.to_string() }
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        _ => None,
    }
}

impl RedisBalancer {
    /// Connects (a failure is the startup error) and starts the origin
    /// list's refresh.
    pub async fn start(
        conn: Conn,
        prefix: &str,
        origin_ttl: Duration,
        core: usize,
    ) -> Result<Rc<RedisBalancer>, String> {
        conn.connect_now().await.map_err(|e| format!("cannot reach {}: {e}", conn.target()))?;
        let shared = Rc::new(Shared {
            keys: Keys::new(prefix),
            ttl: origin_ttl,
            cache: RefCell::default(),
            picked: RefCell::default(),
            heartbeats: RefCell::default(),
            hls: RefCell::default(),
        });
        {
            let shared = shared.clone();
            conn.set_restore(Box::new(move || shared.restore_command()));
        }
        let me = Rc::new(RedisBalancer {
            conn: Rc::new(conn),
            shared,
            pick: Script::new(schema::PICK_SCRIPT),
            update: Script::new(schema::UPDATE_SCRIPT),
            list: Script::new(schema::LIST_SCRIPT),
            core,
        });
        let _ = me.refresh().await;
        let weak = Rc::downgrade(&me);
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(CACHE_REFRESH).await;
                let Some(me) = weak.upgrade() else { break };
                if let Err(e) = me.refresh().await {
                    tracing::debug!(core = me.core, error = %e, "redis: origin list refresh failed");
                }
            }
        })
        .detach();
        Ok(me)
    }

    pub fn core(&self) -> usize {
        self.core
    }

    /// EVALSHA, and EVAL (which caches the script) when Redis does not
    /// know it yet (a restart, a failover, a SCRIPT FLUSH).
    async fn eval(&self, s: &Script, keys: &[&str], args: &[&[u8]]) -> Result<Value, RedisError> {
        let build = |name: &str, first: &str| {
            let mut c = redis::cmd(name);
            c.arg(first).arg(keys.len());
            for k in keys {
                c.arg(*k);
            }
            for a in args {
                c.arg(*a);
            }
            c.get_packed_command()
        };
        let v = self.conn.exec(&build("EVALSHA", &s.sha), 1).await?.pop().unwrap_or(Value::Nil);
        match ok(v) {
            Err(e) if e.is_noscript() => {
                let v = self.conn.exec(&build("EVAL", s.code), 1).await?.pop().unwrap_or(Value::Nil);
                ok(v)
            }
            r => r,
        }
    }

    /// Re-reads the live origins into this core's cache.
    async fn refresh(&self) -> Result<(), RedisError> {
        let all = self.shared.keys.all_servers();
        let v = self.eval(&self.list, &[&all], &[]).await?;
        let Value::Array(items) = v else { return Err(RedisError::Protocol("origin list is not an array".into())) };
        let now = Instant::now();
        let mut fresh = HashMap::new();
        for t in items.chunks_exact(3) {
            let (Some(key), Some(json)) = (as_str(&t[0]), bytes(&t[1])) else { continue };
            let pttl = match &t[2] {
                Value::Int(ms) if *ms > 0 => Duration::from_millis(*ms as u64),
                _ => self.shared.ttl,
            };
            match serde_json::from_slice::<Origin>(&json) {
                Ok(origin) => {
                    fresh.insert(origin.id(), Cached { origin, key, expires: now + pttl });
                }
                Err(e) => tracing::debug!(%key, error = %e, "redis: server value is not origin JSON; skipped"),
            }
        }
        *self.shared.cache.borrow_mut() = fresh;
        Ok(())
    }

    pub async fn update(&self, origin: Origin) -> Result<UpdateOutcome, LbError> {
        let id = origin.id();
        let key = self.shared.keys.server(&id);
        let json = serde_json::to_string(&origin).map_err(|e| LbError::Backend { reason: e.to_string() })?;
        let ttl = self.shared.ttl.as_secs().max(1).to_string();
        let keys = [key.as_str(), &self.shared.keys.all_servers(), &self.shared.keys.down(&id)];
        let v = self.eval(&self.update, &keys, &[json.as_bytes(), ttl.as_bytes()]).await.map_err(backend)?;
        {
            let mut hb = self.shared.heartbeats.borrow_mut();
            // Origins that stopped heartbeating (an SRS restart is a new id)
            // leave once silent for the TTL; checked only when it has grown.
            if hb.len() >= MAX_HEARTBEATS {
                let ttl = self.shared.ttl;
                hb.retain(|_, (_, at)| at.elapsed() < ttl);
            }
            hb.insert(id.clone(), (origin.clone(), Instant::now()));
        }
        match v {
            Value::Int(-1) => {
                tracing::debug!(id = %id, "heartbeat of an origin held down; not listed until the hold-down ends");
                Ok(UpdateOutcome::Refreshed)
            }
            Value::Int(n) => {
                self.shared.remember(&origin, key, self.shared.ttl);
                Ok(if n == 1 { UpdateOutcome::Registered } else { UpdateOutcome::Refreshed })
            }
            other => Err(LbError::Backend { reason: format!("redis register: unexpected answer {other:?}") }),
        }
    }

    pub async fn pick(&self, stream: &StreamUrl) -> Result<(Origin, PickOutcome), LbError> {
        let url = self.shared.keys.url(stream);
        let all = self.shared.keys.all_servers();
        let r = fastrand::u32(..).to_string();
        let v = self.eval(&self.pick, &[&url, &all], &[r.as_bytes()]).await.map_err(backend)?;
        let Value::Array(a) = v else {
            return Err(LbError::Backend { reason: format!("redis pick: unexpected answer {v:?}") });
        };
        let reply = PickReply {
            code: match a.first() {
                Some(Value::Int(c)) => *c,
                _ => -1,
            },
            server_key: a.get(1).and_then(as_str),
            json: a.get(2).and_then(bytes),
            from: a.get(3).and_then(as_str),
        };
        let key = reply.server_key.clone();
        let (origin, outcome) = schema::decode_pick(&self.shared.keys, stream, reply)?;
        if let Some(key) = key {
            let mut picked = self.shared.picked.borrow_mut();
            if picked.len() >= MAX_REMEMBERED_PINS {
                picked.clear();
            }
            picked.insert(stream.clone(), key.clone());
            drop(picked);
            if !self.shared.cache.borrow().contains_key(&origin.id()) {
                self.shared.remember(&origin, key, CACHE_REFRESH);
            }
        }
        Ok((origin, outcome))
    }

    /// The origin refused a connection: out of every proxy's picks (its
    /// server key goes, and the hold-down key keeps its heartbeats from
    /// bringing it back) until its first heartbeat after the hold-down.
    pub async fn mark_down(&self, id: &OriginId) -> Result<(), LbError> {
        self.shared.cache.borrow_mut().remove(id);
        let mut p = redis::pipe();
        p.cmd("SET").arg(self.shared.keys.down(id)).arg(1).arg("PX").arg(ORIGIN_HOLD_DOWN.as_millis() as u64);
        p.cmd("DEL").arg(self.shared.keys.server(id));
        let r = self.conn.exec(&p.get_packed_pipeline(), 2).await;
        // Again after the round trip: a list read in flight meanwhile may
        // have put it back into the cache.
        self.shared.cache.borrow_mut().remove(id);
        for v in r.map_err(backend)? {
            ok(v).map_err(backend)?;
        }
        Ok(())
    }

    pub fn origins(&self) -> Vec<OriginView> {
        let now = Instant::now();
        let ttl = self.shared.ttl;
        let mut v: Vec<OriginView> = self
            .shared
            .cache
            .borrow()
            .values()
            .map(|c| {
                let left = c.expires.saturating_duration_since(now);
                OriginView {
                    origin: c.origin.clone(),
                    alive: left > Duration::ZERO,
                    since_heartbeat: ttl - left.min(ttl),
                }
            })
            .collect();
        v.sort_by_key(|o| o.origin.id());
        v
    }

    pub fn origin(&self, id: &OriginId) -> Option<Origin> {
        let cache = self.shared.cache.borrow();
        cache.get(id).filter(|c| c.expires > Instant::now()).map(|c| c.origin.clone())
    }

    pub fn any_origin(&self) -> Option<Origin> {
        let now = Instant::now();
        let cache = self.shared.cache.borrow();
        let live: Vec<&Cached> = cache.values().filter(|c| c.expires > now).collect();
        (!live.is_empty()).then(|| live[fastrand::usize(..live.len())].origin.clone())
    }

    /// The HLS session for a playlist request (B§5.3 `srs-proxy-hls:` and
    /// `srs-proxy-spbhid:` records, 120 s, refreshed by every request of
    /// the player), so a segment through any proxy finds its origin.
    pub async fn hls_open(
        &self,
        given: Option<&str>,
        player: u64,
        stream: StreamUrl,
        origin: OriginId,
    ) -> Result<String, LbError> {
        let keys = &self.shared.keys;
        let player_key = keys.hls_player(player);
        let mut p = redis::pipe();
        p.cmd("GET").arg(&player_key);
        if let Some(g) = given {
            p.cmd("GET").arg(keys.spbhid(g));
        }
        let n = 1 + usize::from(given.is_some());
        let vals = self.conn.exec(&p.get_packed_pipeline(), n).await.map_err(backend)?;
        let vals: Vec<Option<Vec<u8>>> =
            vals.into_iter().map(|v| ok(v).map(|v| bytes(&v))).collect::<Result<_, _>>().map_err(backend)?;
        let by_player_rec = vals[0].as_deref();
        let by_player_id = by_player_rec
            .and_then(|b| serde_json::from_slice::<HlsRecord>(b).ok())
            .map(|r| r.spbhid)
            .filter(|id| srs_protocols::hls::valid_spbhid(id));
        let given_pair = given.map(|g| (g, vals.get(1).and_then(|v| v.as_deref())));
        let fresh = new_spbhid(self.core);
        let id =
            schema::choose_spbhid(&stream, given_pair, by_player_id.as_deref().map(|id| (id, by_player_rec)), fresh);
        let rec = HlsRecord {
            spbhid: id.clone(),
            stream_url: stream.as_str().to_string(),
            full_url: String::new(),
            origin: Some(origin.as_str().to_string()),
        };
        let json = serde_json::to_string(&rec).map_err(|e| LbError::Backend { reason: e.to_string() })?;
        let ttl = HLS_SESSION_TTL.as_secs();
        let mut p = redis::pipe();
        p.cmd("SET").arg(keys.spbhid(&id)).arg(&json).arg("EX").arg(ttl);
        p.cmd("SET").arg(keys.hls(&stream)).arg(&json).arg("EX").arg(ttl);
        p.cmd("SET").arg(&player_key).arg(&json).arg("EX").arg(ttl);
        for v in self.conn.exec(&p.get_packed_pipeline(), 3).await.map_err(backend)? {
            ok(v).map_err(backend)?;
        }
        self.shared.hls_used(&id, json);
        Ok(id)
    }

    /// The HLS session `id`, its TTL refreshed (GETEX), with its origin
    /// (read into this core's cache when not there yet). A record written
    /// by an SRS Go proxy names no origin: the stream's pin says it.
    pub async fn hls_touch(&self, id: &str) -> Result<Option<(StreamUrl, OriginId)>, LbError> {
        let mut c = redis::cmd("GETEX");
        c.arg(self.shared.keys.spbhid(id)).arg("EX").arg(HLS_SESSION_TTL.as_secs());
        let v = self.conn.exec(&c.get_packed_command(), 1).await.map_err(backend)?.pop().unwrap_or(Value::Nil);
        let Some(raw) = bytes(&ok(v).map_err(backend)?) else { return Ok(None) };
        let Ok(rec) = serde_json::from_slice::<HlsRecord>(&raw) else { return Ok(None) };
        if let Ok(json) = String::from_utf8(raw) {
            self.shared.hls_used(id, json);
        }
        let stream = StreamUrl::new_unchecked(rec.stream_url);
        let oid = match rec.origin {
            Some(o) => OriginId::new(o),
            None => return Ok(Some((stream.clone(), self.pick(&stream).await?.0.id()))),
        };
        if self.origin(&oid).is_none() {
            let key = self.shared.keys.server(&oid);
            let mut p = redis::pipe();
            p.cmd("GET").arg(&key).cmd("PTTL").arg(&key);
            let vals = self.conn.exec(&p.get_packed_pipeline(), 2).await.map_err(backend)?;
            if let (Some(json), Value::Int(ms)) = (bytes(&vals[0]), &vals[1]) {
                if let Ok(o) = serde_json::from_slice::<Origin>(&json) {
                    self.shared.remember(&o, key, Duration::from_millis((*ms).max(0) as u64));
                }
            }
        }
        Ok(Some((stream, oid)))
    }

    /// Writes a WebRTC session's record (B§5.3 `srs-proxy-ufrag:<ufrag>` and
    /// `srs-proxy-rtc:<stream>`, 120 s), so a client whose STUN check
    /// reaches another proxy is found there.
    pub async fn rtc_store(&self, rec: &RtcRecord) -> Result<(), LbError> {
        let keys = &self.shared.keys;
        let json = serde_json::to_string(rec).map_err(|e| LbError::Backend { reason: e.to_string() })?;
        let ttl = RTC_TTL.as_secs();
        let mut p = redis::pipe();
        p.cmd("SET").arg(keys.ufrag(&rec.ufrag)).arg(&json).arg("EX").arg(ttl);
        p.cmd("SET").arg(keys.rtc(&StreamUrl::new_unchecked(rec.stream_url.clone()))).arg(&json).arg("EX").arg(ttl);
        for v in self.conn.exec(&p.get_packed_pipeline(), 2).await.map_err(backend)? {
            ok(v).map_err(backend)?;
        }
        Ok(())
    }

    /// Removes the WebRTC record of `ufrag` (its resource was deleted).
    pub async fn rtc_forget(&self, ufrag: &str) -> Result<(), LbError> {
        let mut c = redis::cmd("DEL");
        c.arg(self.shared.keys.ufrag(ufrag));
        for v in self.conn.exec(&c.get_packed_command(), 1).await.map_err(backend)? {
            ok(v).map_err(backend)?;
        }
        Ok(())
    }

    /// The WebRTC record of `ufrag`, its TTL refreshed (GETEX): a live
    /// session keeps its record while it lasts.
    pub async fn rtc_touch(&self, ufrag: &str) -> Result<Option<RtcRecord>, LbError> {
        let mut c = redis::cmd("GETEX");
        c.arg(self.shared.keys.ufrag(ufrag)).arg("EX").arg(RTC_TTL.as_secs());
        let v = self.conn.exec(&c.get_packed_command(), 1).await.map_err(backend)?.pop().unwrap_or(Value::Nil);
        let Some(raw) = bytes(&ok(v).map_err(backend)?) else { return Ok(None) };
        Ok(serde_json::from_slice::<RtcRecord>(&raw).ok())
    }

    /// Every stream pin in Redis (SCAN, for the system API).
    pub async fn pins(&self) -> Vec<(StreamUrl, OriginId)> {
        let keys = &self.shared.keys;
        let pattern = keys.url_pattern();
        let mut cursor = "0".to_string();
        let mut found = Vec::new();
        loop {
            let mut c = redis::cmd("SCAN");
            c.arg(&cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000);
            let Ok(mut v) = self.conn.exec(&c.get_packed_command(), 1).await else {
                tracing::warn!(core = self.core, "redis SCAN failed: the pin listing is partial");
                break;
            };
            let Some(Value::Array(mut a)) = v.pop() else {
                tracing::warn!(core = self.core, "redis SCAN answered no array: the pin listing is partial");
                break;
            };
            if a.len() != 2 {
                tracing::warn!(core = self.core, "redis SCAN answered a bad array: the pin listing is partial");
                break;
            }
            let batch = a.pop();
            cursor = a.pop().as_ref().and_then(as_str).unwrap_or_else(|| "0".into());
            if let Some(Value::Array(ks)) = batch {
                found.extend(ks.iter().filter_map(as_str));
            }
            if cursor == "0" {
                break;
            }
        }
        let mut out = Vec::new();
        for chunk in found.chunks(500) {
            let mut c = redis::cmd("MGET");
            for k in chunk {
                c.arg(k);
            }
            let Ok(mut v) = self.conn.exec(&c.get_packed_command(), 1).await else {
                tracing::warn!(core = self.core, "redis MGET failed: the pin listing is partial");
                break;
            };
            let Some(Value::Array(vals)) = v.pop() else {
                tracing::warn!(core = self.core, "redis MGET answered no array: the pin listing is partial");
                break;
            };
            for (k, v) in chunk.iter().zip(vals) {
                let (Some(stream), Some(server)) = (keys.stream_of_url_key(k), as_str(&v)) else { continue };
                let Some(id) = keys.id_of_server_key(&server) else { continue };
                out.push((StreamUrl::new_unchecked(stream.to_string()), id));
            }
        }
        out.sort();
        out
    }
}

/// A fresh HLS session id, "<core>-<random>" like the memory balancer's.
fn new_spbhid(core: usize) -> String {
    let mut s = format!("{core}-");
    for _ in 0..10 {
        s.push(fastrand::alphanumeric().to_ascii_lowercase());
    }
    s
}
