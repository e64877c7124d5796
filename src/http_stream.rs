//! The HTTP stream server (PROXY_HTTP_SERVER): HTTP-FLV and HTTP-TS relayed
//! from the stream's origin, HLS playlists rewritten with the player's
//! session id (`spbhid`) and their segments sent back to the origin that
//! served the playlist, and the player pages as static files.

use crate::http::{self, reply, Request, Response};
use crate::http_proxy::{self, Body, ProxyError, Upstream};
use crate::metrics::{self, Blame, Pick, Proto, Role};
use crate::static_files::{self, Refused};
use crate::worker::{ConnId, Core};
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use serde_json::json;
use srs_lb::LoadBalancer;
use srs_lb::Origin;
use srs_protocols::stream_url::{self, StreamUrl};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

pub const LIMITS: http::Limits = http::Limits {
    max_body: 64 * 1024,
    request_timeout: Duration::from_secs(10),
    idle_timeout: Duration::from_secs(60),
};

pub struct HttpStream;

impl http::Service for HttpStream {
    const WHAT: &'static str = "http";
    const LIMITS: http::Limits = LIMITS;
    async fn handle(core: &Rc<Core>, id: ConnId, s: &mut TcpStream, req: &Request, peer: SocketAddr) -> Option<bool> {
        route(core, id, s, req, peer).await
    }
}

fn ext(path: &str) -> &str {
    let last = path.rsplit('/').next().unwrap_or("");
    last.rfind('.').map_or("", |i| &last[i..])
}

async fn route(core: &Rc<Core>, id: ConnId, s: &mut TcpStream, req: &Request, peer: SocketAddr) -> Option<bool> {
    if req.path == "/api/v1/versions" {
        let (major, minor, rev) = crate::version_triplet();
        return reply(
            s,
            req,
            Response::json(
                200,
                &json!({
                    "code": 0, "pid": std::process::id().to_string(),
                    "data": {"major": major, "minor": minor, "revision": rev, "version": crate::VERSION},
                }),
            ),
        )
        .await;
    }
    let e = ext(&req.path);
    let spbhid = srs_protocols::hls::spbhid_of(&req.query).map(|v| v.to_string());
    let media = e == ".m3u8" || e == ".flv" || e == ".ts" || spbhid.is_some();
    if media && req.method == "OPTIONS" {
        return s.write_all(&http_proxy::cors_preflight()).await.ok().map(|_| req.keep_alive);
    }
    if e == ".m3u8" {
        playlist(core, id, s, req, peer, spbhid).await
    } else if let Some(sid) = spbhid {
        segment(core, id, s, req, peer, &sid).await
    } else if e == ".flv" || e == ".ts" {
        live(core, id, s, req, peer).await
    } else {
        static_file(core, s, req).await
    }
}

fn stream_key(req: &Request) -> Result<StreamUrl, Response> {
    stream_url::from_http(req.header("host"), &req.path, &req.query)
        .map(|(k, _)| k)
        .map_err(|e| Response::error(400, format!("cannot tell the stream from {}: {e}", req.path)))
}

/// The stream's origin and its HTTP address, or the response to send instead.
async fn origin_for(core: &Core, key: &StreamUrl) -> Result<(Origin, SocketAddr), Response> {
    let picked = core.lb.pick(key).await;
    metrics::local().pick(Pick::of(&picked));
    let origin = match picked {
        Ok((o, outcome)) => {
            if let srs_lb::PickOutcome::Repinned { from } = &outcome {
                tracing::info!(stream = %key, from = %from, to = %o.id(), "stream re-pinned: its origin expired");
            }
            o
        }
        Err(e) => return Err(Response::error(503, e)),
    };
    http_addr(origin)
}

fn http_addr(origin: Origin) -> Result<(Origin, SocketAddr), Response> {
    match origin.http_addr() {
        Ok(Some(a)) => Ok((origin, a)),
        Ok(None) => Err(Response::error(502, format!("origin {} has no http endpoint", origin.id()))),
        Err(e) => Err(Response::error(502, format!("origin {} http endpoint: {e}", origin.id()))),
    }
}

/// How a forwarded request ended: done (keep the client connection or
/// not), or the origin refused the connection and nothing was sent, so the
/// caller may hold it down and try the stream's next origin once.
enum Sent {
    Done(Option<bool>),
    Refused(String),
}

/// Forwards and logs; answers the error itself when nothing was sent yet,
/// except a refused connect when `may_retry`.
#[allow(clippy::too_many_arguments)]
async fn proxied(
    core: &Core,
    id: ConnId,
    s: &mut TcpStream,
    req: &Request,
    peer: SocketAddr,
    what: &'static str,
    key: &StreamUrl,
    origin: &Origin,
    addr: SocketAddr,
    body: Body<'_>,
    may_retry: bool,
) -> Sent {
    let started = Instant::now();
    let target = req.target();
    let live = matches!(body, Body::Live);
    let proto = match what {
        "flv" => Proto::HttpFlv,
        "ts" => Proto::HttpTs,
        _ => Proto::Hls,
    };
    let m = metrics::local();
    let up = Upstream {
        addr,
        target: &target,
        body,
        cors: true,
        idle: core.cfg.idle_timeout,
        metrics: Some((proto, started)),
    };
    let r = http_proxy::forward(s, req, peer, up).await;
    let ms = started.elapsed().as_millis() as u64;
    if let (true, Err(e @ ProxyError::Connect(..))) = (may_retry, &r) {
        return Sent::Refused(e.to_string());
    }
    // Playlists and segments only add bytes; a live body is a session,
    // started in `forward` once its head went out.
    if live {
        let (reason, blame) = match &r {
            Ok(f) if f.status >= 400 => ("origin refused", Blame::Origin),
            Ok(f) => match f.end {
                "complete" => ("complete", Blame::None),
                "idle timeout" => ("idle timeout", Blame::Timeout),
                "client closed" => ("client closed", Blame::None),
                _ => ("origin closed", Blame::None),
            },
            Err(ProxyError::Client(_)) => ("client write failed", Blame::Client),
            Err(ProxyError::Local(_)) => ("proxy short of resources", Blame::Proxy),
            Err(ProxyError::Connect(..)) => ("origin unreachable", Blame::Origin),
            Err(ProxyError::Timeout(_)) => ("origin timeout", Blame::Origin),
            Err(_) => ("origin failed", Blame::Origin),
        };
        m.ended(proto, Some(Role::Play), reason, blame);
    }
    Sent::Done(match r {
        Ok(f) => {
            if live || f.status >= 400 {
                tracing::info!(conn = %id, core = core.index, %peer, kind = what, stream = %key, origin = %origin.id(),
                    status = f.status, bytes_out = f.bytes, spliced = f.spliced, duration_ms = ms, reason = f.end, "http stream ended");
            } else {
                tracing::debug!(conn = %id, %peer, kind = what, stream = %key, status = f.status, bytes_out = f.bytes, "http served");
            }
            Some(f.keep_alive)
        }
        Err(ProxyError::Client(e)) => {
            tracing::info!(conn = %id, core = core.index, %peer, kind = what, stream = %key, origin = %origin.id(),
                duration_ms = ms, reason = %e, "http stream ended: client gone");
            None
        }
        Err(e @ (ProxyError::MidBody(_) | ProxyError::Local(_))) => {
            tracing::warn!(conn = %id, core = core.index, %peer, kind = what, stream = %key, origin = %origin.id(),
                duration_ms = ms, reason = %e, "http stream failed; closing the response");
            None
        }
        Err(e) => {
            tracing::warn!(conn = %id, core = core.index, %peer, kind = what, stream = %key, origin = %origin.id(),
                duration_ms = ms, reason = %e, "http stream failed");
            // Nothing was sent yet (a head already out is MidBody, above).
            let _ = http::write_response(s, &cors(Response::error(e.status(), &e)), false).await;
            None
        }
    })
}

fn cors(r: Response) -> Response {
    r.header("Access-Control-Allow-Origin", "*")
        .header("Access-Control-Allow-Headers", "*")
        .header("Access-Control-Allow-Methods", "*")
}

async fn live(core: &Rc<Core>, id: ConnId, s: &mut TcpStream, req: &Request, peer: SocketAddr) -> Option<bool> {
    let key = match stream_key(req) {
        Ok(k) => k,
        Err(r) => return reply(s, req, cors(r)).await,
    };
    let what = if req.path.ends_with(".flv") { "flv" } else { "ts" };
    let mut refused = None;
    loop {
        let (origin, addr) = match origin_for(core, &key).await {
            Ok(v) => v,
            Err(r) => {
                let r = after_refusal(r, &refused);
                tracing::warn!(conn = %id, %peer, stream = %key, status = r.status, "http stream refused");
                return reply(s, req, cors(r)).await;
            }
        };
        match proxied(core, id, s, req, peer, what, &key, &origin, addr, Body::Live, refused.is_none()).await {
            Sent::Done(r) => return r,
            Sent::Refused(why) => refused = Some(retry_elsewhere(core, id, &key, &origin, why).await),
        }
    }
}

/// The origin refused the connection: held down, and the stream is picked
/// again among the live origins for the one retry. Answers `why`.
async fn retry_elsewhere(core: &Core, id: ConnId, key: &StreamUrl, origin: &Origin, why: String) -> String {
    tracing::warn!(conn = %id, stream = %key, origin = %origin.id(), error = %why,
        "origin refused the connection; retrying on another origin");
    core.lb.mark_down(&origin.id(), &why).await;
    why
}

/// No origin left for the retry after a refusal: the refusal is what the
/// client hears (502), not "no origin" (503).
fn after_refusal(r: Response, refused: &Option<String>) -> Response {
    match refused {
        Some(why) if r.status == 503 => Response::error(502, format!("{why}; no other live origin")),
        _ => r,
    }
}

async fn playlist(
    core: &Rc<Core>,
    id: ConnId,
    s: &mut TcpStream,
    req: &Request,
    peer: SocketAddr,
    given: Option<String>,
) -> Option<bool> {
    let key = match stream_key(req) {
        Ok(k) => k,
        Err(r) => return reply(s, req, cors(r)).await,
    };
    let mut refused = None;
    loop {
        let (origin, addr) = match origin_for(core, &key).await {
            Ok(v) => v,
            Err(r) => return reply(s, req, cors(after_refusal(r, &refused))).await,
        };
        match playlist_on(core, id, s, req, peer, given.as_deref(), &key, &origin, addr, refused.is_none()).await {
            Sent::Done(r) => return r,
            Sent::Refused(why) => refused = Some(retry_elsewhere(core, id, &key, &origin, why).await),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn playlist_on(
    core: &Rc<Core>,
    id: ConnId,
    s: &mut TcpStream,
    req: &Request,
    peer: SocketAddr,
    given: Option<&str>,
    key: &StreamUrl,
    origin: &Origin,
    addr: SocketAddr,
    may_retry: bool,
) -> Sent {
    // One id per (stream, player): the id the player sent, or the one its
    // address and user agent had, while that session lives.
    let player = {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let ua = req.header("user-agent").unwrap_or("");
        BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one((
            key.as_str(),
            peer.ip(),
            ua,
        ))
    };
    let given = given.filter(|g| srs_protocols::hls::valid_spbhid(g));
    let sid = match core.lb.hls_open(given, player, key.clone(), origin.id()).await {
        Ok(sid) => sid,
        Err(e) => return Sent::Done(reply(s, req, cors(Response::error(503, e))).await),
    };
    proxied(core, id, s, req, peer, "hls", key, origin, addr, Body::Playlist(&sid), may_retry).await
}

async fn segment(
    core: &Rc<Core>,
    id: ConnId,
    s: &mut TcpStream,
    req: &Request,
    peer: SocketAddr,
    sid: &str,
) -> Option<bool> {
    let not_found = |why: String| cors(Response::error(404, why));
    let (key, oid) = match core.lb.hls_touch(sid).await {
        Ok(Some(v)) => v,
        Ok(None) => return reply(s, req, not_found(format!("unknown or expired spbhid {sid}"))).await,
        Err(e) => return reply(s, req, cors(Response::error(503, e))).await,
    };
    // The session's origin, or, once it died or was held down, the
    // stream's origin now (as when its connect is refused below): the
    // player keeps its session id and the next playlist comes from there.
    let found = match core.lb.origin(&oid) {
        Some(o) => http_addr(o),
        None => {
            tracing::info!(conn = %id, %peer, stream = %key, spbhid = sid, origin = %oid,
                "hls segment: its origin is gone; asking the stream's origin now");
            origin_for(core, &key).await
        }
    };
    let (origin, addr) = match found {
        Ok(v) => v,
        Err(r) => return reply(s, req, cors(r)).await,
    };
    match proxied(core, id, s, req, peer, "hls-segment", &key, &origin, addr, Body::Finite, true).await {
        Sent::Done(r) => r,
        Sent::Refused(why) => {
            // The session's origin is gone: the stream's next origin serves
            // the segment if it has it (the playlist is re-read from there).
            let refused = Some(retry_elsewhere(core, id, &key, &origin, why).await);
            let (origin, addr) = match origin_for(core, &key).await {
                Ok(v) => v,
                Err(r) => return reply(s, req, cors(after_refusal(r, &refused))).await,
            };
            match proxied(core, id, s, req, peer, "hls-segment", &key, &origin, addr, Body::Finite, false).await {
                Sent::Done(r) => r,
                Sent::Refused(_) => None,
            }
        }
    }
}

async fn static_file(core: &Rc<Core>, s: &mut TcpStream, req: &Request) -> Option<bool> {
    let Some(root) = core.static_root.as_deref() else {
        return reply(s, req, Response::error(404, "no such path")).await;
    };
    let head = req.method == "HEAD";
    if req.method != "GET" && !head {
        return reply(s, req, Response::error(405, "static files take GET or HEAD").header("Allow", "GET, HEAD")).await;
    }
    let path = match static_files::resolve(root, &req.path) {
        Ok(p) => p,
        Err(Refused::BadPath) => return reply(s, req, Response::error(400, "malformed path")).await,
        Err(Refused::TooLarge) => return reply(s, req, Response::error(403, "file too large to serve")).await,
        Err(Refused::NotFound) => {
            return reply(s, req, Response::error(404, format!("no such file {}", req.path))).await
        }
    };
    // Player pages are small; a blocking read here costs microseconds.
    let body = match std::fs::read(&path) {
        Ok(b) => b,
        Err(_) => return reply(s, req, Response::error(404, format!("no such file {}", req.path))).await,
    };
    let ctype = srs_protocols::http::content_type(&path.to_string_lossy());
    let resp = Response { status: 200, headers: vec![("Content-Type", ctype.to_string())], body };
    http::write_response_as(s, &resp, req.keep_alive, !head).await.ok().map(|_| req.keep_alive)
}
