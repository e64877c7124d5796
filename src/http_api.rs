//! The HTTP API server (PROXY_HTTP_API): versions, the WebRTC signalling
//! paths (WHIP/WHEP, `rtc::signal`), the cluster-wide SRS API
//! (`cluster_api`), and every other `/api/...` request forwarded to an
//! origin's HTTP API, so SRS console tools keep working.

use crate::http::{self, reply, Request, Response};
use crate::http_proxy::{self, Body, ProxyError, Upstream};
use crate::worker::{ConnId, Core};
use glommio::net::TcpStream;
use srs_lb::LoadBalancer;
use srs_protocols::stream_url;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

pub const LIMITS: http::Limits =
    http::Limits { max_body: 1 << 20, request_timeout: Duration::from_secs(10), idle_timeout: Duration::from_secs(60) };

/// The WebRTC signalling routes (SRS's and LATEST's aliases).
const RTC_PATHS: [&str; 4] = ["/rtc/v1/whip/", "/rtc/v1/whep/", "/rtc/v1/publish/", "/rtc/v1/play/"];

pub struct HttpApi;

impl http::Service for HttpApi {
    const WHAT: &'static str = "http-api";
    const LIMITS: http::Limits = LIMITS;
    async fn handle(core: &Rc<Core>, id: ConnId, s: &mut TcpStream, req: &Request, peer: SocketAddr) -> Option<bool> {
        route(core, id, s, req, peer).await
    }
}

async fn route(core: &Rc<Core>, id: ConnId, s: &mut TcpStream, req: &Request, peer: SocketAddr) -> Option<bool> {
    let p = req.path.as_str();
    if p == "/api/v1/versions" {
        return reply(s, req, crate::api::versions()).await;
    }
    for rtc in RTC_PATHS {
        if p == rtc.trim_end_matches('/') {
            // As Go's ServeMux: the subtree root without its slash redirects.
            let loc = if req.query.is_empty() { rtc.to_string() } else { format!("{rtc}?{}", req.query) };
            return reply(s, req, Response::error(301, format!("moved to {rtc}")).header("Location", loc)).await;
        }
        if p.starts_with(rtc) {
            return crate::rtc::signal::handle(core, id, s, req, peer, rtc).await;
        }
    }
    if let Some(cluster) = crate::cluster_api::route(p, &req.query) {
        return crate::cluster_api::serve(core, s, req, peer, cluster).await;
    }
    if p.starts_with("/api/") {
        return forward_api(core, id, s, req, peer).await;
    }
    reply(s, req, Response::error(404, format!("no such path {p}"))).await
}

/// No origin to call: 503, or 502 naming the refusal when the first
/// origin refused and none was left for the retry.
fn no_origin(why: String, refused: &Option<String>) -> Response {
    match refused {
        Some(r) => Response::error(502, format!("{r}; no other live origin")),
        None => Response::error(503, why),
    }
}

/// The origin for an API call: the stream's pinned origin when the query
/// names a stream (`?app=&stream=`), else any live origin.
async fn forward_api(core: &Rc<Core>, id: ConnId, s: &mut TcpStream, req: &Request, peer: SocketAddr) -> Option<bool> {
    let names_stream = req.query.split('&').any(|kv| kv.starts_with("stream="));
    // A refused connect holds the origin down; the call is tried once more
    // on the next origin (the stream's new pin, or another live one).
    let mut refused: Option<String> = None;
    loop {
        let origin = if names_stream {
            match stream_url::from_http(req.header("host"), &req.path, &req.query) {
                Ok((key, _)) => match core.lb.pick(&key).await {
                    Ok((o, _)) => Some(o),
                    Err(e) => return reply(s, req, no_origin(e.to_string(), &refused)).await,
                },
                Err(e) => return reply(s, req, Response::error(400, format!("bad stream in query: {e}"))).await,
            }
        } else {
            core.lb.any_origin()
        };
        let Some(origin) = origin else {
            return reply(s, req, no_origin("no origin available".into(), &refused)).await;
        };
        let addr = match origin.api_addr() {
            Ok(Some(a)) => a,
            Ok(None) => {
                return reply(s, req, Response::error(502, format!("origin {} has no api endpoint", origin.id()))).await
            }
            Err(e) => {
                return reply(s, req, Response::error(502, format!("origin {} api endpoint: {e}", origin.id()))).await
            }
        };
        let target = req.target();
        let up = Upstream {
            addr,
            target: &target,
            body: Body::Finite,
            cors: false,
            idle: core.cfg.idle_timeout,
            metrics: None,
        };
        return match http_proxy::forward(s, req, peer, up).await {
            Ok(f) => {
                tracing::debug!(conn = %id, %peer, path = %req.path, origin = %origin.id(), status = f.status, "api forwarded");
                Some(f.keep_alive)
            }
            Err(e @ ProxyError::Connect(..)) if refused.is_none() => {
                tracing::warn!(conn = %id, %peer, path = %req.path, origin = %origin.id(), error = %e,
                    "origin refused the connection; retrying on another origin");
                core.lb.mark_down(&origin.id(), &e.to_string()).await;
                refused = Some(e.to_string());
                continue;
            }
            Err(ProxyError::Client(_)) => None,
            Err(e @ (ProxyError::MidBody(_) | ProxyError::Local(_))) => {
                tracing::warn!(conn = %id, %peer, path = %req.path, origin = %origin.id(), error = %e, "api forward cut short");
                None
            }
            Err(e) => {
                tracing::warn!(conn = %id, %peer, path = %req.path, origin = %origin.id(), error = %e, "api forward failed");
                let _ = http::write_response(s, &Response::error(e.status(), &e), false).await;
                None
            }
        };
    }
}
