//! WebRTC through the proxy: signalling (WHIP, WHEP, the legacy RTC API) in
//! `signal`, media on one UDP port per executor in `media`, and here the
//! state they share across cores:
//!
//! * the ufrag record (`<answer ufrag>:<offer ufrag>` -> stream, origin's
//!   media address, the core holding the media session) lives on the core
//!   that owns hash(ufrag); signalling stores it, the media core that sees
//!   the first STUN check claims it ([`lookup_ufrag`] is the one place that
//!   asks, so a Redis lookup can stand in for it);
//! * the WHIP/WHEP resource (the origin's `Location`) -> origin and ufrag,
//!   on the core that owns hash(resource), so a DELETE or PATCH that lands
//!   on any core reaches the origin that made it and ends the session.
//!
//! All maps are bounded; records of sessions that never start expire.

pub mod media;
pub mod signal;

use crate::worker::Core;
use srs_io::mesh::{self, Mesh, MeshError};
use srs_lb::OriginId;
use srs_protocols::stream_url::StreamUrl;
use srs_proxy::config::Config;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The STUN USERNAME a session is known by: `<answer ufrag>:<offer ufrag>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ufrag(pub Rc<str>);

impl std::borrow::Borrow<str> for Ufrag {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ufrag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What signalling learnt about a session (sent between cores).
#[derive(Debug, Clone)]
pub struct Record {
    pub stream: StreamUrl,
    pub origin: OriginId,
    /// Where the origin's ICE listens (its registered IP, the answer's port).
    pub media: SocketAddr,
    /// WHIP/publish or WHEP/play, for the metrics.
    pub role: Option<crate::metrics::Role>,
}

/// Bound per core on ufrag records, and on resources.
const MAX_RECORDS: usize = 100_000;

pub enum Req {
    Store {
        ufrag: String,
        rec: Record,
    },
    /// A media core saw a STUN check for `ufrag`: it holds the session now.
    /// Answers the record and the core that held it before, if another.
    Claim {
        ufrag: String,
        core: usize,
    },
    /// The session on `core` ended; forget the record if it still holds it.
    Release {
        ufrag: String,
        core: usize,
    },
    /// The resource is gone (DELETE): forget the record, answer its holder.
    Kill {
        ufrag: String,
    },
    /// To the holder: hand the session over to another core (address change).
    Take {
        ufrag: String,
    },
    /// To the holder: end the session (its resource was deleted).
    Close {
        ufrag: String,
    },
    Resource {
        key: String,
        api: SocketAddr,
        ufrag: String,
    },
    FindResource {
        key: String,
        forget: bool,
    },
}

/// A session's upstream socket and counters, handed from core to core.
pub struct Moved {
    pub fd: OwnedFd,
    pub started: Duration,
    pub counts: [u64; 4],
}

pub enum Resp {
    Done,
    /// Whether a record was stored (false: this core holds its maximum).
    Stored(bool),
    Claimed(Option<(Record, Option<usize>)>),
    Killed(Option<usize>),
    Taken(Option<Box<Moved>>),
    Found(Option<(SocketAddr, String)>),
}

pub type RtcMesh = Mesh<Req, Resp>;
pub type Builder = mesh::Builder<Req, Resp>;

pub fn builder(cores: usize) -> Builder {
    mesh::builder(cores)
}

struct Entry {
    rec: Record,
    holder: Option<usize>,
    /// When an unclaimed record is dropped.
    expires: Duration,
}

/// The records this core owns: ufrag -> session, resource -> (origin api,
/// ufrag). Bounded; an unclaimed record and a resource expire after `ttl`.
struct Owned {
    records: HashMap<String, Entry>,
    resources: HashMap<String, (SocketAddr, String, Duration)>,
    max: usize,
    ttl: Duration,
}

impl Owned {
    fn new(max: usize, ttl: Duration) -> Owned {
        Owned { records: HashMap::new(), resources: HashMap::new(), max, ttl }
    }

    fn store(&mut self, now: Duration, ufrag: String, rec: Record) -> bool {
        if self.records.len() >= self.max && !self.records.contains_key(&ufrag) {
            return false;
        }
        self.records.insert(ufrag, Entry { rec, holder: None, expires: now + self.ttl });
        true
    }

    /// The record for `core`, which holds the session from now on, and the
    /// core that held it before (if another).
    fn claim(&mut self, ufrag: &str, core: usize) -> Option<(Record, Option<usize>)> {
        let e = self.records.get_mut(ufrag)?;
        let before = e.holder.replace(core).filter(|&c| c != core);
        Some((e.rec.clone(), before))
    }

    /// The session ended on `core`: forget it, unless another core took it since.
    fn release(&mut self, ufrag: &str, core: usize) {
        if self.records.get(ufrag).is_some_and(|e| e.holder == Some(core)) {
            self.records.remove(ufrag);
        }
    }

    /// Forgets the record; answers the core holding its session.
    fn kill(&mut self, ufrag: &str) -> Option<usize> {
        self.records.remove(ufrag).and_then(|e| e.holder)
    }

    fn store_resource(&mut self, now: Duration, key: String, api: SocketAddr, ufrag: String) {
        if self.resources.len() < self.max || self.resources.contains_key(&key) {
            self.resources.insert(key, (api, ufrag, now + self.ttl));
        }
    }

    fn find_resource(&mut self, key: &str, forget: bool) -> Option<(SocketAddr, String)> {
        let hit = if forget { self.resources.remove(key) } else { self.resources.get(key).cloned() };
        hit.map(|(api, u, _)| (api, u))
    }

    /// Drops unclaimed records past their time, and resources a TTL past
    /// theirs (a late DELETE still reaches its origin).
    fn expire(&mut self, now: Duration) {
        self.records.retain(|_, e| e.holder.is_some() || e.expires > now);
        let ttl = self.ttl;
        self.resources.retain(|_, r| r.2 + ttl > now);
    }
}

/// This core's WebRTC state and its end of the mesh.
pub struct Rtc {
    pub mesh: Rc<RtcMesh>,
    owned: Rc<RefCell<Owned>>,
    epoch: Instant,
}

thread_local! {
    static RTC: RefCell<Option<Rc<Rtc>>> = const { RefCell::new(None) };
}

/// This executor's WebRTC state (set by [`start`]).
pub fn local() -> Option<Rc<Rtc>> {
    RTC.with(|r| r.borrow().clone())
}

/// Fails when the WebRTC port is held by anyone (see [`srs_io::udp::probe`]).
pub fn probe(cfg: &Config) -> Result<(), String> {
    srs_io::udp::probe("PROXY_WEBRTC_SERVER", cfg.webrtc_server.0)
}

/// Joins the mesh, binds PROXY_WEBRTC_SERVER on this executor and starts
/// its media loop; the task ends at shutdown once every session of the core
/// has ended (await it before leaving the executor, for their end lines).
pub async fn start(core: Rc<Core>, builder: Builder) -> Result<glommio::Task<()>, String> {
    let addr = core.cfg.webrtc_server.0;
    let mesh = Mesh::join(core.index, builder)
        .await
        .map_err(|e| format!("executor {}: cannot join the WebRTC mesh: {e}", core.index))?;
    let sock =
        glommio::net::UdpSocket::bind(addr).map_err(|e| format!("PROXY_WEBRTC_SERVER={addr}: cannot listen: {e}"))?;
    let epoch = Instant::now();
    let media = media::Media::new(core.clone(), sock, mesh.clone())
        .map_err(|e| format!("PROXY_WEBRTC_SERVER={addr}: cannot set up the socket: {e}"))?;
    let ttl = (core.cfg.webrtc_session_timeout * 4).max(Duration::from_secs(60));
    let rtc = Rc::new(Rtc { mesh: mesh.clone(), owned: Rc::new(RefCell::new(Owned::new(MAX_RECORDS, ttl))), epoch });
    {
        let owned = rtc.owned.clone();
        let media = media.clone();
        mesh.set_handler(move |req| handle(&owned, &media, epoch.elapsed(), req));
    }
    RTC.with(|r| *r.borrow_mut() = Some(rtc.clone()));
    rtc.spawn_expiry(core.clone());
    Ok(glommio::spawn_local(media::serve(media)))
}

fn handle(owned: &RefCell<Owned>, media: &media::Media, now: Duration, req: Req) -> Resp {
    match req {
        Req::Store { ufrag, rec } => Resp::Stored(owned.borrow_mut().store(now, ufrag, rec)),
        Req::Claim { ufrag, core } => Resp::Claimed(owned.borrow_mut().claim(&ufrag, core)),
        Req::Release { ufrag, core } => {
            owned.borrow_mut().release(&ufrag, core);
            Resp::Done
        }
        Req::Kill { ufrag } => Resp::Killed(owned.borrow_mut().kill(&ufrag)),
        Req::Take { ufrag } => Resp::Taken(media.take(&ufrag)),
        Req::Close { ufrag } => {
            media.close(&ufrag, "deleted");
            Resp::Done
        }
        Req::Resource { key, api, ufrag } => {
            owned.borrow_mut().store_resource(now, key, api, ufrag);
            Resp::Done
        }
        Req::FindResource { key, forget } => Resp::Found(owned.borrow_mut().find_resource(&key, forget)),
    }
}

impl Rtc {
    /// Drops records never claimed and resources of sessions long gone.
    fn spawn_expiry(&self, core: Rc<Core>) {
        let owned = self.owned.clone();
        let epoch = self.epoch;
        glommio::spawn_local(async move {
            loop {
                let stop = futures_lite::future::or(
                    async {
                        glommio::timer::sleep(Duration::from_secs(1)).await;
                        false
                    },
                    async {
                        core.stopping.wait().await;
                        true
                    },
                )
                .await;
                if stop {
                    break;
                }
                owned.borrow_mut().expire(epoch.elapsed());
            }
        })
        .detach();
    }

    fn owner(&self, key: &str) -> usize {
        self.mesh.owner(key)
    }

    /// Records a signalled session; `Ok(false)` when its owning core is full.
    pub async fn store(&self, ufrag: &str, rec: Record) -> Result<bool, MeshError> {
        match self.mesh.call(self.owner(ufrag), Req::Store { ufrag: ufrag.to_string(), rec }).await? {
            Resp::Stored(ok) => Ok(ok),
            _ => Err(MeshError::NoHandler),
        }
    }

    pub async fn store_resource(&self, key: &str, api: SocketAddr, ufrag: &str) -> Result<(), MeshError> {
        let req = Req::Resource { key: key.to_string(), api, ufrag: ufrag.to_string() };
        self.mesh.call(self.owner(key), req).await.map(drop)
    }

    pub async fn find_resource(&self, key: &str, forget: bool) -> Option<(SocketAddr, String)> {
        match self.mesh.call(self.owner(key), Req::FindResource { key: key.to_string(), forget }).await {
            Ok(Resp::Found(f)) => f,
            _ => None,
        }
    }

    /// Ends the session known by `ufrag`, wherever it lives.
    pub async fn kill(&self, ufrag: &str) {
        if let Ok(Resp::Killed(Some(holder))) =
            self.mesh.call(self.owner(ufrag), Req::Kill { ufrag: ufrag.to_string() }).await
        {
            let _ = self.mesh.call(holder, Req::Close { ufrag: ufrag.to_string() }).await;
        }
    }
}

/// The session for a STUN USERNAME, claimed for core `me`: its record, and
/// the core that held it before (the client moved to an address that lands
/// here). The one lookup of a ufrag: a Redis balancer answers it here too.
pub async fn lookup_ufrag(
    mesh: &RtcMesh,
    ufrag: &str,
    me: usize,
) -> Result<Option<(Record, Option<usize>)>, MeshError> {
    match mesh.call(mesh.owner(ufrag), Req::Claim { ufrag: ufrag.to_string(), core: me }).await? {
        Resp::Claimed(c) => Ok(c),
        _ => Err(MeshError::NoHandler),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(s: &str) -> Record {
        Record {
            stream: StreamUrl::new_unchecked(format!("__defaultVhost__/live/{s}")),
            origin: OriginId::new("o1".into()),
            media: "127.0.0.1:8000".parse().unwrap(),
            role: None,
        }
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn claim_moves_the_holder_and_release_only_frees_the_current_one() {
        let mut o = Owned::new(10, 60 * S);
        assert!(o.store(S, "a:b".into(), rec("x")));
        assert!(o.claim("nobody:here", 0).is_none());
        let (r, before) = o.claim("a:b", 0).unwrap();
        assert_eq!((r.stream.as_str(), before), ("__defaultVhost__/live/x", None));
        // The same core again (a second check): no handover.
        assert_eq!(o.claim("a:b", 0).unwrap().1, None);
        // The client's new address landed on core 1: it takes over from 0.
        assert_eq!(o.claim("a:b", 1).unwrap().1, Some(0));
        // Core 0's copy ending (moved) does not forget the record...
        o.release("a:b", 0);
        assert!(o.records.contains_key("a:b"));
        // ...core 1's does.
        o.release("a:b", 1);
        assert!(o.claim("a:b", 1).is_none());
    }

    #[test]
    fn kill_answers_the_holder_and_forgets() {
        let mut o = Owned::new(10, 60 * S);
        o.store(S, "a:b".into(), rec("x"));
        assert_eq!(o.kill("a:b"), None);
        o.store(S, "a:b".into(), rec("x"));
        o.claim("a:b", 1);
        assert_eq!(o.kill("a:b"), Some(1));
        assert!(o.claim("a:b", 1).is_none());
    }

    #[test]
    fn bounded_and_expiring() {
        let mut o = Owned::new(2, 60 * S);
        assert!(o.store(S, "a:1".into(), rec("1")));
        assert!(o.store(S, "a:2".into(), rec("2")));
        assert!(!o.store(S, "a:3".into(), rec("3")), "full");
        assert!(o.store(S, "a:2".into(), rec("2")), "a present key is not growth");
        o.claim("a:1", 0);
        o.store_resource(S, "/r1".into(), "127.0.0.1:1985".parse().unwrap(), "a:1".into());
        o.store_resource(S, "/r2".into(), "127.0.0.1:1985".parse().unwrap(), "a:2".into());
        o.store_resource(S, "/r3".into(), "127.0.0.1:1985".parse().unwrap(), "a:3".into());
        assert!(o.find_resource("/r3", false).is_none(), "resources are bounded too");
        // Past the TTL: the unclaimed record goes, the claimed one stays
        // (its session is alive); resources stay one TTL longer.
        o.expire(62 * S);
        assert!(o.records.contains_key("a:1"));
        assert!(!o.records.contains_key("a:2"));
        assert_eq!(o.find_resource("/r1", false).map(|r| r.1), Some("a:1".into()));
        o.expire(122 * S);
        assert!(o.find_resource("/r1", false).is_none());
        // DELETE forgets its resource at once.
        o.store_resource(S, "/r4".into(), "127.0.0.1:1985".parse().unwrap(), "a:4".into());
        assert!(o.find_resource("/r4", true).is_some());
        assert!(o.find_resource("/r4", false).is_none());
    }
}
