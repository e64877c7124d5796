//! WebRTC signalling on PROXY_HTTP_API: WHIP and WHEP (`/rtc/v1/whip/`,
//! `/rtc/v1/whep/`, `?app=&stream=` or the path form) and SRS's legacy
//! `/rtc/v1/publish/` and `/rtc/v1/play/` (a JSON envelope around the SDP).
//!
//! POST: the offer goes to the stream's pinned origin (its `api` endpoint,
//! the client's path, query and end-to-end headers); the origin's status and
//! end-to-end headers come back, and its answer with every candidate
//! replaced by the proxy's (PROXY_WEBRTC_CANDIDATE or the address the offer
//! arrived on, PROXY_WEBRTC_SERVER's port). The session's ufrag is recorded
//! for the media port.
//!
//! The origin's `Location` is kept as the origin wrote it (made relative if
//! it named the origin's host) and recorded -> (origin, ufrag) on the core
//! owning it: clients and tools that build the resource URL the way SRS does
//! keep working, and a DELETE or PATCH on it, on any core, reaches the
//! origin that made it. A DELETE also ends the proxy's media session.

use super::{Record, Rtc};
use crate::http::{self, Request, Response};
use crate::http_proxy::{self, Body, ProxyError, Upstream};
use crate::metrics::Role;
use crate::worker::{ConnId, Core};
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use srs_lb::{LoadBalancer, Origin};
use srs_protocols::http as h;
use srs_protocols::sdp::{self, Envelope};
use srs_protocols::stream_url::{self, StreamUrl};
use std::net::SocketAddr;
use std::rc::Rc;

/// Serves one request under an RTC route (`route` is the prefix it matched).
pub async fn handle(
    core: &Rc<Core>,
    id: ConnId,
    s: &mut TcpStream,
    req: &Request,
    peer: SocketAddr,
    route: &'static str,
) -> Option<bool> {
    if req.method.eq_ignore_ascii_case("OPTIONS") {
        return s.write_all(&http_proxy::cors_preflight()).await.ok().map(|_| req.keep_alive);
    }
    let Some(rtc) = super::local() else {
        return reply(s, req, Response::error(503, "WebRTC is not running on this core (our bug)")).await;
    };
    if req.method.eq_ignore_ascii_case("POST") {
        offer(core, &rtc, id, s, req, peer, route).await
    } else {
        resource(core, &rtc, id, s, req, peer, route).await
    }
}

async fn reply(s: &mut TcpStream, req: &Request, mut resp: Response) -> Option<bool> {
    for (k, v) in http_proxy::CORS {
        resp.headers.push((k, String::from_utf8_lossy(v).into_owned()));
    }
    http::reply(s, req, resp).await
}

fn is_legacy(route: &str) -> bool {
    route == "/rtc/v1/publish/" || route == "/rtc/v1/play/"
}

/// The stream a request names: `?app=&stream=`, else the legacy body's
/// `streamurl`, else the path after the route (`/rtc/v1/whip/live/s`).
fn stream_key(req: &Request, route: &str, streamurl: Option<&str>) -> Result<StreamUrl, String> {
    let names = req.query.split('&').any(|kv| kv.starts_with("stream=") || kv.starts_with("app="));
    if !names {
        if let Some(u) = streamurl {
            let (tc, name) = sdp::split_streamurl(u).ok_or_else(|| format!("streamurl {u:?} has no app/stream"))?;
            return stream_url::from_rtmp(tc, name).map_err(|e| e.to_string());
        }
    }
    let rest = &req.path[route.len() - 1..];
    stream_url::from_http(req.header("host"), rest, &req.query).map(|(k, _)| k).map_err(|e| e.to_string())
}

/// Where clients reach the proxy's WebRTC port.
fn candidates(core: &Core, s: &TcpStream) -> Vec<SocketAddr> {
    let port = core.cfg.webrtc_server.0.port();
    if !core.cfg.webrtc_candidate.is_empty() {
        return core.cfg.webrtc_candidate.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
    }
    match s.local_addr() {
        Ok(a) => vec![SocketAddr::new(a.ip(), port)],
        Err(_) => Vec::new(),
    }
}

/// The path and query of a `Location`, and whether it was absolute.
fn resource_key(loc: &str) -> String {
    match loc.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or_else(|| "/".to_string(), |i| rest[i..].to_string()),
        None => loc.to_string(),
    }
}

/// The origin's answer to one signalling request, whole.
struct Answer {
    status: u16,
    reason: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

async fn ask_origin(api: SocketAddr, req: &Request, peer: SocketAddr, target: &str) -> Result<Answer, ProxyError> {
    // The whole exchange is bounded (fetch bounds each read only): an origin
    // that trickles its answer cannot hold the request open.
    let (head, body) = srs_io::timeout(http_proxy::HEAD_TIMEOUT, http_proxy::fetch(api, req, peer, target))
        .await
        .ok_or(ProxyError::Timeout(api))??;
    let headers = http_proxy::pass_headers(&head).into_iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect();
    Ok(Answer { status: head.status, reason: head.reason.clone(), headers, body })
}

async fn write_answer(
    s: &mut TcpStream,
    req: &Request,
    a: &Answer,
    location: Option<&str>,
    body: &[u8],
) -> Option<bool> {
    let mut hs: Vec<(&str, &[u8])> = Vec::with_capacity(a.headers.len() + 6);
    for (k, v) in &a.headers {
        if k.eq_ignore_ascii_case("location") {
            if let Some(l) = location {
                hs.push((k, l.as_bytes()));
                continue;
            }
        }
        hs.push((k, v));
    }
    hs.extend_from_slice(&http_proxy::CORS);
    // A page on another origin (the players are served on PROXY_HTTP_SERVER)
    // needs the resource URL to DELETE it.
    hs.push(("Access-Control-Expose-Headers", b"Location, ETag"));
    let len = body.len().to_string();
    hs.push(("Content-Length", len.as_bytes()));
    hs.push(("Connection", if req.keep_alive { b"keep-alive" } else { b"close" }));
    let mut out = Vec::with_capacity(512 + body.len());
    h::write_response_head(&mut out, a.status, &a.reason, &hs);
    out.extend_from_slice(body);
    s.write_all(&out).await.ok().map(|_| req.keep_alive)
}

async fn pick(core: &Core, key: &StreamUrl) -> Result<(Origin, SocketAddr), Response> {
    let picked = core.lb.pick(key).await;
    crate::metrics::local().pick(crate::metrics::Pick::of(&picked));
    let (origin, _) = picked.map_err(|e| Response::error(503, e))?;
    match origin.api_addr() {
        Ok(Some(a)) => Ok((origin, a)),
        Ok(None) => Err(Response::error(502, format!("origin {} has no api endpoint", origin.id()))),
        Err(e) => Err(Response::error(502, format!("origin {} api endpoint: {e}", origin.id()))),
    }
}

async fn offer(
    core: &Rc<Core>,
    rtc: &Rtc,
    id: ConnId,
    s: &mut TcpStream,
    req: &Request,
    peer: SocketAddr,
    route: &'static str,
) -> Option<bool> {
    let legacy = is_legacy(route);
    let envelope;
    let (offer_sdp, streamurl) = if legacy {
        match Envelope::parse(&req.body) {
            Ok(e) => {
                envelope = e;
                (envelope.sdp.as_str(), envelope.streamurl.as_deref())
            }
            Err(e) => return reply(s, req, Response::error(400, format!("client: {e}"))).await,
        }
    } else {
        match std::str::from_utf8(&req.body) {
            Ok(t) => (t, None),
            Err(_) => return reply(s, req, Response::error(400, "client: the offer is not UTF-8 text")).await,
        }
    };
    let offer_creds = match sdp::ice_credentials(offer_sdp) {
        Ok(c) => c,
        Err(e) => return reply(s, req, Response::error(400, format!("client: offer: {e}"))).await,
    };
    let key = match stream_key(req, route, streamurl) {
        Ok(k) => k,
        Err(e) => return reply(s, req, Response::error(400, format!("client: {e}"))).await,
    };
    let (origin, api) = match pick(core, &key).await {
        Ok(x) => x,
        Err(r) => return reply(s, req, r).await,
    };
    let target = req.target();
    let a = match ask_origin(api, req, peer, &target).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(conn = %id, %peer, stream = %key, origin = %origin.id(), error = %e, "rtc: offer to origin failed");
            return reply(s, req, Response::error(e.status(), format!("origin: {e}"))).await;
        }
    };
    if !(200..300).contains(&a.status) {
        tracing::warn!(conn = %id, %peer, stream = %key, origin = %origin.id(), status = a.status, "rtc: origin refused the offer");
        return write_answer(s, req, &a, None, &a.body).await;
    }
    let bad = |why: String| Response::error(502, format!("origin {}: answer: {why}", origin.id()));
    let mut json = serde_json::Value::Null;
    let answer_sdp = if legacy {
        json = match serde_json::from_slice(&a.body) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            _ => return reply(s, req, bad("not a JSON object".into())).await,
        };
        match json.get("sdp").and_then(|v| v.as_str()) {
            Some(t) => t.to_string(),
            // SRS's own refusal (`{"code":<non-zero>,…}` under HTTP 200)
            // reaches the client as the origin wrote it.
            None if json.get("code").and_then(|c| c.as_i64()).is_some_and(|c| c != 0) => {
                tracing::warn!(conn = %id, %peer, stream = %key, origin = %origin.id(), answer = %json, "rtc: origin refused the offer");
                return write_answer(s, req, &a, None, &a.body).await;
            }
            None => return reply(s, req, bad("no \"sdp\" string".into())).await,
        }
    } else {
        match std::str::from_utf8(&a.body) {
            Ok(t) => t.to_string(),
            Err(_) => return reply(s, req, bad("not UTF-8 text".into())).await,
        }
    };
    let answer_creds = match sdp::ice_credentials(&answer_sdp) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(conn = %id, %peer, stream = %key, origin = %origin.id(), error = %e, "rtc: origin answer unusable");
            return reply(s, req, bad(e.to_string())).await;
        }
    };
    let media_port = match sdp::first_udp_port(&answer_sdp)
        .map(Ok)
        .or_else(|| origin.rtc_addr().transpose().map(|r| r.map(|a| a.port())))
    {
        Some(Ok(p)) => p,
        Some(Err(e)) => return reply(s, req, bad(format!("no UDP candidate and rtc endpoint: {e}"))).await,
        None => return reply(s, req, bad("no UDP candidate and no rtc endpoint registered".into())).await,
    };
    let media = match origin.ip_addr() {
        Ok(ip) => SocketAddr::new(ip, media_port),
        Err(e) => return reply(s, req, bad(format!("origin ip: {e}"))).await,
    };
    let ufrag = format!("{}:{}", answer_creds.ufrag, offer_creds.ufrag);
    let rewritten = sdp::rewrite_candidates(&answer_sdp, &candidates(core, s));
    let role = match route {
        "/rtc/v1/whip/" | "/rtc/v1/publish/" => Some(Role::Publish),
        "/rtc/v1/whep/" | "/rtc/v1/play/" => Some(Role::Play),
        _ => None,
    };
    match rtc.store(&ufrag, Record { stream: key.clone(), origin: origin.id(), media, role }).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(conn = %id, %peer, stream = %key, "rtc: too many WebRTC sessions signalled and not yet started");
            return reply(s, req, Response::error(503, "proxy: too many WebRTC sessions; try again later")).await;
        }
        Err(e) => {
            return reply(s, req, Response::error(503, format!("proxy: cannot record the session: {e}"))).await;
        }
    }
    // With Redis, every proxy can find the session by its ufrag.
    let shared = srs_lb::redis::RtcRecord {
        stream_url: key.as_str().to_string(),
        ufrag: ufrag.clone(),
        origin: Some(origin.id().to_string()),
        media: Some(media.to_string()),
        role: role.map(|r| r.as_str().to_string()),
    };
    core.lb.rtc_store(&shared).await;
    let loc =
        a.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("location")).map(|(_, v)| String::from_utf8_lossy(v));
    let loc_key = loc.as_deref().map(resource_key);
    if let Some(k) = &loc_key {
        let _ = rtc.store_resource(k, api, &ufrag).await;
    }
    tracing::info!(
        conn = %id, %peer, core = core.index, stream = %key, origin = %origin.id(), %media, ufrag = %ufrag,
        status = a.status, location = loc_key.as_deref().unwrap_or("-"), "rtc offer answered"
    );
    let body = if legacy {
        json["sdp"] = serde_json::Value::String(rewritten);
        serde_json::to_vec(&json).unwrap_or_default()
    } else {
        rewritten.into_bytes()
    };
    write_answer(s, req, &a, loc_key.as_deref(), &body).await
}

/// DELETE, PATCH (or any other method) on a resource: to the origin that
/// made it; a DELETE the origin accepts ends the proxy's session too.
async fn resource(
    core: &Rc<Core>,
    rtc: &Rtc,
    id: ConnId,
    s: &mut TcpStream,
    req: &Request,
    peer: SocketAddr,
    route: &'static str,
) -> Option<bool> {
    let target = req.target();
    let (api, ufrag) = match rtc.find_resource(&target, false).await {
        Some((api, u)) => (api, Some(u)),
        // Not ours (made before a restart, or by a tool): the stream's origin.
        None => match stream_key(req, route, None) {
            Ok(k) => match pick(core, &k).await {
                Ok((_, api)) => (api, None),
                Err(r) => return reply(s, req, r).await,
            },
            Err(e) => {
                return reply(s, req, Response::error(404, format!("client: unknown WebRTC resource: {e}"))).await
            }
        },
    };
    if req.method.eq_ignore_ascii_case("PATCH") {
        return patch(core, id, s, req, peer, api, &target, ufrag.as_deref()).await;
    }
    let up = Upstream {
        addr: api,
        target: &target,
        body: Body::Finite,
        cors: true,
        idle: core.cfg.idle_timeout,
        metrics: None,
    };
    match http_proxy::forward(s, req, peer, up).await {
        Ok(f) => {
            let delete = req.method.eq_ignore_ascii_case("DELETE");
            if delete && (200..300).contains(&f.status) {
                let _ = rtc.find_resource(&target, true).await;
                if let Some(u) = &ufrag {
                    rtc.kill(u).await;
                    // Nor may another proxy reopen it from Redis.
                    core.lb.rtc_forget(u).await;
                }
            }
            tracing::info!(conn = %id, %peer, core = core.index, method = %req.method, resource = %target, ufrag = ufrag.as_deref().unwrap_or("-"), status = f.status, "rtc resource forwarded");
            Some(f.keep_alive)
        }
        Err(ProxyError::Client(_)) => None,
        Err(e @ (ProxyError::MidBody(_) | ProxyError::Local(_))) => {
            tracing::warn!(conn = %id, %peer, resource = %target, error = %e, "rtc: resource forward cut short");
            None
        }
        Err(e) => {
            tracing::warn!(conn = %id, %peer, resource = %target, error = %e, "rtc: resource forward failed");
            let _ = http::write_response(s, &Response::error(e.status(), &e), false).await;
            None
        }
    }
}

/// PATCH (trickle candidates, ICE restart) to the resource's origin. An
/// answering fragment (ICE restart: the origin's new ufrag, pwd and
/// candidates) gets its candidates replaced by the proxy's, as an answer
/// does. The client's checks with the new credentials come from its known
/// address and reach the same session.
#[allow(clippy::too_many_arguments)]
async fn patch(
    core: &Rc<Core>,
    id: ConnId,
    s: &mut TcpStream,
    req: &Request,
    peer: SocketAddr,
    api: SocketAddr,
    target: &str,
    ufrag: Option<&str>,
) -> Option<bool> {
    let a = match ask_origin(api, req, peer, target).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(conn = %id, %peer, resource = %target, error = %e, "rtc: PATCH to origin failed");
            return reply(s, req, Response::error(e.status(), format!("origin: {e}"))).await;
        }
    };
    let body = match std::str::from_utf8(&a.body) {
        Ok(t) if (200..300).contains(&a.status) && t.contains("a=candidate:") => {
            sdp::rewrite_candidates(t, &candidates(core, s)).into_bytes()
        }
        _ => a.body.clone(),
    };
    tracing::info!(conn = %id, %peer, core = core.index, resource = %target, ufrag = ufrag.unwrap_or("-"), status = a.status, "rtc resource patched");
    write_answer(s, req, &a, None, &body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str, query: &str) -> Request {
        Request {
            method: "POST".into(),
            path: path.into(),
            query: query.into(),
            headers: vec![("Host".into(), "proxy.example.com:11985".into())],
            body: Vec::new(),
            keep_alive: true,
        }
    }

    #[test]
    fn stream_keys_from_query_path_and_streamurl() {
        let key = |path: &str, query: &str, route: &str, su: Option<&str>| {
            stream_key(&req(path, query), route, su).map(|k| k.as_str().to_string())
        };
        let whep = "/rtc/v1/whep/";
        assert_eq!(key(whep, "app=live&stream=s", whep, None).unwrap(), "proxy.example.com/live/s");
        assert_eq!(key("/rtc/v1/whep/live/s", "", whep, None).unwrap(), "proxy.example.com/live/s");
        assert_eq!(key("/rtc/v1/whep/a/b/s", "", whep, None).unwrap(), "proxy.example.com/a/b/s");
        assert!(key(whep, "", whep, None).is_err());
        let play = "/rtc/v1/play/";
        assert_eq!(key(play, "", play, Some("webrtc://10.0.0.1/live/s?x=1")).unwrap(), "__defaultVhost__/live/s");
        assert_eq!(key(play, "", play, Some("webrtc://v.example.com:1985/live/s")).unwrap(), "v.example.com/live/s");
        // The query wins over the body's streamurl, as SRS's handler reads it.
        assert_eq!(
            key(play, "app=live&stream=q", play, Some("webrtc://h/live/s")).unwrap(),
            "proxy.example.com/live/q"
        );
        assert!(key(play, "", play, Some("webrtc://h")).is_err());
    }

    #[test]
    fn resource_keys() {
        assert_eq!(resource_key("/rtc/v1/whip/?action=delete&token=x"), "/rtc/v1/whip/?action=delete&token=x");
        assert_eq!(resource_key("http://10.0.0.1:1985/rtc/v1/whip/?token=x"), "/rtc/v1/whip/?token=x");
        assert_eq!(resource_key("http://10.0.0.1:1985"), "/");
    }
}
