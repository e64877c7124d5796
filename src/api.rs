//! The system API (PROXY_SYSTEM_API): origins register here with their
//! heartbeat, and operators read the registry and the stream pins.

use crate::http::{self, Response};
use crate::worker::{ConnId, Core};
use glommio::net::TcpStream;
use serde_json::json;
use srs_lb::LoadBalancer;
use srs_lb::{RegisterRequest, UpdateOutcome};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

pub const LIMITS: http::Limits =
    http::Limits { max_body: 1 << 20, request_timeout: Duration::from_secs(10), idle_timeout: Duration::from_secs(60) };

pub struct SystemApi;

impl http::Service for SystemApi {
    const WHAT: &'static str = "system-api";
    const LIMITS: http::Limits = LIMITS;
    async fn handle(
        core: &Rc<Core>,
        _id: ConnId,
        s: &mut TcpStream,
        req: &http::Request,
        peer: SocketAddr,
    ) -> Option<bool> {
        let resp = route(core, req, peer).await;
        http::reply(s, req, resp).await
    }
}

async fn route(core: &Core, req: &http::Request, peer: SocketAddr) -> Response {
    let read_only = matches!(req.method.as_str(), "GET" | "HEAD");
    match req.path.as_str() {
        // As SRS: the register endpoint takes any method.
        "/api/v1/srs/register" => register(core, req, peer).await,
        "/metrics" if !read_only => Response::error(405, "/metrics takes GET").header("Allow", "GET, HEAD"),
        "/metrics" => metrics(core).await,
        "/api/v1/versions" | "/api/v1/origins" | "/api/v1/streams" if !read_only => {
            Response::error(405, format!("{} takes GET", req.path)).header("Allow", "GET, HEAD")
        }
        "/api/v1/versions" => versions(),
        "/api/v1/origins" => origins(core).await,
        "/api/v1/streams" => streams(core).await,
        _ => Response::error(404, format!("no such path {}", req.path)),
    }
}

pub fn versions() -> Response {
    Response::json(200, &json!({"signature": crate::SIGNATURE, "version": crate::VERSION}))
}

fn authorized(core: &Core, req: &http::Request) -> bool {
    let Some(token) = core.cfg.api_auth.as_deref() else {
        return true;
    };
    let Some(v) = req.header("authorization") else {
        return false;
    };
    let mut parts = v.trim().splitn(2, ' ');
    let scheme = parts.next().unwrap_or("");
    let given = parts.next().unwrap_or("").trim();
    // Compare without an early exit so the time does not leak the token.
    scheme.eq_ignore_ascii_case("bearer")
        && given.len() == token.len()
        && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

async fn register(core: &Core, req: &http::Request, peer: SocketAddr) -> Response {
    if !core.cfg.allows_register(peer.ip()) {
        tracing::warn!(%peer, "register refused: the address is outside PROXY_REGISTER_ALLOW");
        return Response::error(403, format!("forbidden: {} may not register origins", peer.ip()));
    }
    if !authorized(core, req) {
        tracing::warn!(%peer, "register refused: missing or wrong bearer token");
        return Response::error(401, "unauthorized: a valid Authorization: Bearer token is required")
            .header("WWW-Authenticate", "Bearer realm=\"srs-proxy\"");
    }
    let origin = match RegisterRequest::parse(&req.body).and_then(|r| r.into_origin()) {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "register refused");
            return Response::error(400, e);
        }
    };
    let id = origin.id();
    match core.lb.update(origin.clone()).await {
        Ok(UpdateOutcome::Registered) => {
            tracing::info!(
                id = %id, device = %origin.device_id, ip = %origin.ip, rtmp = ?origin.rtmp,
                http = ?origin.http, api = ?origin.api, srt = ?origin.srt, rtc = ?origin.rtc, %peer,
                "origin registered"
            );
        }
        Ok(UpdateOutcome::Refreshed) => tracing::debug!(id = %id, "origin heartbeat"),
        Err(e) => {
            tracing::warn!(id = %id, error = %e, "register failed");
            return Response::error(503, e);
        }
    }
    Response::json(200, &json!({"code": 0, "pid": std::process::id().to_string()}))
}

/// The Prometheus scrape: every core's tallies, summed, and the balancer's
/// view of origins and pins.
async fn metrics(core: &Core) -> Response {
    let cores = crate::metrics::gather().await;
    let origins = core.lb.origins();
    let lb = crate::metrics::LbFacts {
        origins: origins.len() as u64,
        alive: origins.iter().filter(|o| o.alive).count() as u64,
        pins: core.lb.pins().await.len() as u64,
        balancer: match core.cfg.load_balancer {
            srs_proxy::config::LbType::Memory => "memory",
            srs_proxy::config::LbType::Redis => "redis",
        },
    };
    Response {
        status: 200,
        headers: vec![("Content-Type", "text/plain; version=0.0.4; charset=utf-8".into())],
        body: crate::metrics::encode(&cores, &lb).into_bytes(),
    }
}

async fn origins(core: &Core) -> Response {
    let data: Vec<_> = core
        .lb
        .origins()
        .into_iter()
        .map(|v| {
            let o = &v.origin;
            json!({
                "id": o.id().to_string(), "device_id": o.device_id, "ip": o.ip,
                "server_id": o.server_id, "service_id": o.service_id, "pid": o.pid,
                "rtmp": o.rtmp, "http": o.http, "api": o.api, "srt": o.srt, "rtc": o.rtc,
                "alive": v.alive, "since_heartbeat_ms": v.since_heartbeat.as_millis() as u64,
            })
        })
        .collect();
    Response::json(200, &json!({"code": 0, "data": data, "held_down_total": crate::metrics::origin_down_total().await}))
}

async fn streams(core: &Core) -> Response {
    let data: Vec<_> =
        core.lb.pins().await.into_iter().map(|(k, o)| json!({"stream": k.as_str(), "origin": o.to_string()})).collect();
    Response::json(200, &json!({"code": 0, "data": data}))
}
