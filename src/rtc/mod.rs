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
}

/// Bounds per core.
const MAX_RECORDS: usize = 100_000;
const MAX_RESOURCES: usize = 100_000;

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

/// The records this core owns.
#[derive(Default)]
struct Owned {
    records: HashMap<String, Entry>,
    resources: HashMap<String, (SocketAddr, String, Duration)>,
}

/// This core's WebRTC state and its end of the mesh.
pub struct Rtc {
    pub mesh: Rc<RtcMesh>,
    owned: Rc<RefCell<Owned>>,
    epoch: Instant,
    /// A record nobody claims lives this long (SRS keeps its Redis one 120 s).
    unclaimed_ttl: Duration,
}

thread_local! {
    static RTC: RefCell<Option<Rc<Rtc>>> = const { RefCell::new(None) };
}

/// This executor's WebRTC state (set by [`start`]).
pub fn local() -> Option<Rc<Rtc>> {
    RTC.with(|r| r.borrow().clone())
}

/// Fails when the WebRTC port is held by anyone (see `probe` in main).
pub fn probe(cfg: &Config) -> Result<(), String> {
    let a = cfg.webrtc_server.0;
    if a.port() == 0 {
        return Ok(());
    }
    std::net::UdpSocket::bind(a).map(drop).map_err(|e| {
        let who = if e.kind() == std::io::ErrorKind::AddrInUse { " (another process holds it)" } else { "" };
        format!("PROXY_WEBRTC_SERVER={a}: cannot listen: {e}{who}")
    })
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
    let rtc = Rc::new(Rtc {
        mesh: mesh.clone(),
        owned: Rc::default(),
        epoch,
        unclaimed_ttl: (core.cfg.webrtc_session_timeout * 4).max(Duration::from_secs(60)),
    });
    {
        let owned = rtc.owned.clone();
        let media = media.clone();
        let ttl = rtc.unclaimed_ttl;
        mesh.set_handler(move |req| handle(&owned, &media, epoch.elapsed(), ttl, req));
    }
    RTC.with(|r| *r.borrow_mut() = Some(rtc.clone()));
    rtc.spawn_expiry(core.clone());
    Ok(glommio::spawn_local(media::serve(media)))
}

fn handle(owned: &RefCell<Owned>, media: &media::Media, now: Duration, ttl: Duration, req: Req) -> Resp {
    match req {
        Req::Store { ufrag, rec } => {
            let mut o = owned.borrow_mut();
            if o.records.len() >= MAX_RECORDS && !o.records.contains_key(&ufrag) {
                return Resp::Done;
            }
            o.records.insert(ufrag, Entry { rec, holder: None, expires: now + ttl });
            Resp::Done
        }
        Req::Claim { ufrag, core } => {
            let mut o = owned.borrow_mut();
            match o.records.get_mut(&ufrag) {
                Some(e) => {
                    let before = e.holder.replace(core).filter(|&c| c != core);
                    Resp::Claimed(Some((e.rec.clone(), before)))
                }
                None => Resp::Claimed(None),
            }
        }
        Req::Release { ufrag, core } => {
            let mut o = owned.borrow_mut();
            if o.records.get(&ufrag).is_some_and(|e| e.holder == Some(core)) {
                o.records.remove(&ufrag);
            }
            Resp::Done
        }
        Req::Kill { ufrag } => Resp::Killed(owned.borrow_mut().records.remove(&ufrag).and_then(|e| e.holder)),
        Req::Take { ufrag } => Resp::Taken(media.take(&ufrag)),
        Req::Close { ufrag } => {
            media.close(&ufrag, "deleted");
            Resp::Done
        }
        Req::Resource { key, api, ufrag } => {
            let mut o = owned.borrow_mut();
            if o.resources.len() < MAX_RESOURCES || o.resources.contains_key(&key) {
                o.resources.insert(key, (api, ufrag, now + ttl));
            }
            Resp::Done
        }
        Req::FindResource { key, forget } => {
            let mut o = owned.borrow_mut();
            let hit = if forget { o.resources.remove(&key) } else { o.resources.get(&key).cloned() };
            Resp::Found(hit.map(|(api, u, _)| (api, u)))
        }
    }
}

impl Rtc {
    /// Drops records never claimed and resources of sessions long gone.
    fn spawn_expiry(&self, core: Rc<Core>) {
        let owned = self.owned.clone();
        let epoch = self.epoch;
        let ttl = self.unclaimed_ttl;
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
                let now = epoch.elapsed();
                let mut o = owned.borrow_mut();
                o.records.retain(|_, e| e.holder.is_some() || e.expires > now);
                // A resource outlives its session by a while: a late DELETE still reaches its origin.
                o.resources.retain(|_, r| r.2 + ttl > now);
            }
        })
        .detach();
    }

    fn owner(&self, key: &str) -> usize {
        self.mesh.owner(key)
    }

    pub async fn store(&self, ufrag: &str, rec: Record) -> Result<(), MeshError> {
        self.mesh.call(self.owner(ufrag), Req::Store { ufrag: ufrag.to_string(), rec }).await.map(drop)
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
