//! The cluster-wide SRS HTTP API on PROXY_HTTP_API. `/api/v1/summaries`,
//! `/api/v1/streams/` and `/api/v1/clients/` ask every live origin at once
//! and answer in SRS's own JSON shape, each item tagged with the origin that
//! holds it; an origin that fails or is slow is listed as failed instead of
//! failing the answer. `/api/v1/streams/<id>` and `/api/v1/clients/<id>`
//! (including `DELETE` to kick a client) go to the origin holding the item.

use crate::http::{self, Request, Response};
use crate::http_proxy;
use crate::worker::Core;
use serde_json::{json, Map, Value};
use srs_lb::Origin;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// How long the slowest origin may take before the answer goes without it.
pub const GATHER_TIMEOUT: Duration = Duration::from_secs(3);

/// The collections SRS lists: the path segment, and the JSON key of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Streams,
    Clients,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Streams => "streams",
            Kind::Clients => "clients",
        }
    }

    /// SRS answers one item under the singular key.
    fn item_key(self) -> &'static str {
        match self {
            Kind::Streams => "stream",
            Kind::Clients => "client",
        }
    }
}

/// A path this module answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    Summaries,
    List(Kind),
    Item(Kind, &'a str),
}

/// Which cluster path `path` is, if any. `/api/v1/streams` without the slash
/// is the list too (SRS's router takes both). A query naming a stream
/// (`?app=&stream=`) is not a cluster call: it goes to the stream's pinned
/// origin, as every stream-scoped API call does.
pub fn route<'a>(path: &'a str, query: &str) -> Option<Route<'a>> {
    if query.split('&').any(|kv| kv.starts_with("stream=")) {
        return None;
    }
    if path == "/api/v1/summaries" {
        return Some(Route::Summaries);
    }
    for kind in [Kind::Streams, Kind::Clients] {
        let Some(rest) = path.strip_prefix("/api/v1/").and_then(|p| p.strip_prefix(kind.key())) else {
            continue;
        };
        return match rest {
            "" | "/" => Some(Route::List(kind)),
            _ => {
                let id = rest.strip_prefix('/')?.trim_end_matches('/');
                (!id.is_empty() && !id.contains('/')).then_some(Route::Item(kind, id))
            }
        };
    }
    None
}

/// One origin's answer to a fan-out: its parsed JSON, or why there is none.
struct Answer {
    origin: Origin,
    result: Result<(u16, Value), String>,
}

/// Answers a cluster path.
pub async fn handle(core: &Rc<Core>, req: &Request, peer: SocketAddr, route: Route<'_>) -> Response {
    let read_only = matches!(req.method.as_str(), "GET" | "HEAD");
    match route {
        Route::Summaries | Route::List(_) if !read_only => {
            Response::error(405, format!("{} takes GET", req.path)).header("Allow", "GET, HEAD")
        }
        Route::Summaries => match gather(core, req, peer, &req.target()).await {
            Some(answers) => summaries(answers),
            None => no_origin(),
        },
        // Origins are asked for SRS's own form of the list path, with the slash.
        Route::List(kind) => {
            let q = if req.query.is_empty() { String::new() } else { format!("?{}", req.query) };
            match gather(core, req, peer, &format!("/api/v1/{}/{q}", kind.key())).await {
                Some(answers) => list(kind, answers),
                None => no_origin(),
            }
        }
        Route::Item(kind, id) => item(core, req, peer, kind, id).await,
    }
}

fn no_origin() -> Response {
    Response::error(503, "no origin available")
}

/// Asks every live origin for `req` at `target` at once (`None` when no
/// origin is live); each
/// answer within [`GATHER_TIMEOUT`], else that origin's error.
async fn gather(core: &Rc<Core>, req: &Request, peer: SocketAddr, target: &str) -> Option<Vec<Answer>> {
    let origins: Vec<Origin> = core.lb.origins().into_iter().filter(|v| v.alive).map(|v| v.origin).collect();
    if origins.is_empty() {
        return None;
    }
    let target = Rc::new(target.to_string());
    let req = Rc::new(Request {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        headers: req.headers.clone(),
        body: req.body.clone(),
        keep_alive: false,
    });
    let tasks: Vec<_> = origins
        .into_iter()
        .map(|origin| {
            let (req, target) = (req.clone(), target.clone());
            glommio::spawn_local(async move {
                let result = ask(&origin, &req, peer, &target).await;
                Answer { origin, result }
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await);
    }
    out.sort_by_key(|a| a.origin.id());
    Some(out)
}

/// One origin's answer as JSON, within the gather timeout.
async fn ask(origin: &Origin, req: &Request, peer: SocketAddr, target: &str) -> Result<(u16, Value), String> {
    let addr = match origin.api_addr() {
        Ok(Some(a)) => a,
        Ok(None) => return Err("no api endpoint".into()),
        Err(e) => return Err(format!("api endpoint: {e}")),
    };
    match srs_io::timeout(GATHER_TIMEOUT, http_proxy::fetch(addr, req, peer, target)).await {
        None => Err(format!("no answer within {GATHER_TIMEOUT:?}")),
        Some(Err(e)) => Err(e.to_string()),
        Some(Ok((head, body))) => match serde_json::from_slice::<Value>(&body) {
            Ok(v) => Ok((head.status, v)),
            Err(e) => Err(format!("status {}, not JSON: {e}", head.status)),
        },
    }
}

/// An SRS answer counts when its status is 2xx and its `code` is 0.
fn ok_body(a: &Answer) -> Option<&Value> {
    match &a.result {
        Ok((status, v)) if (200..300).contains(status) && v["code"].as_i64() == Some(0) => Some(v),
        _ => None,
    }
}

/// `{"id":…,"ok":…}` per origin, with its error when it failed.
fn origin_status(a: &Answer) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(a.origin.id().as_str()));
    m.insert("ip".into(), json!(a.origin.ip));
    match (&a.result, ok_body(a)) {
        (_, Some(_)) => {
            m.insert("ok".into(), json!(true));
        }
        (Ok((status, v)), None) => {
            m.insert("ok".into(), json!(false));
            m.insert("error".into(), json!(format!("status {status}, code {}", v["code"])));
        }
        (Err(e), None) => {
            m.insert("ok".into(), json!(false));
            m.insert("error".into(), json!(e));
        }
    }
    Value::Object(m)
}

/// The fields SRS puts at the top of every answer, as the proxy's own.
fn envelope() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("code".into(), json!(0));
    m.insert("server".into(), json!(crate::SIGNATURE));
    m.insert("service".into(), json!(crate::VERSION));
    m.insert("pid".into(), json!(std::process::id().to_string()));
    m
}

/// Every origin's list concatenated, each item with `"origin": <id>`.
fn list(kind: Kind, answers: Vec<Answer>) -> Response {
    let mut items = Vec::new();
    for a in &answers {
        let Some(v) = ok_body(a) else { continue };
        for item in v[kind.key()].as_array().into_iter().flatten() {
            let mut item = item.clone();
            if let Value::Object(m) = &mut item {
                m.insert("origin".into(), json!(a.origin.id().as_str()));
            }
            items.push(item);
        }
    }
    let mut m = envelope();
    m.insert(kind.key().into(), Value::Array(items));
    m.insert("origins".into(), answers.iter().map(origin_status).collect());
    Response::json(200, &Value::Object(m))
}

/// SRS's console reads `data` of one server: the first origin that answered
/// gives it; every origin's own summary is under `origins`, tagged.
fn summaries(answers: Vec<Answer>) -> Response {
    let mut m = envelope();
    let first = answers.iter().find_map(ok_body).map(|v| v["data"].clone());
    m.insert("data".into(), first.unwrap_or_else(|| json!({"ok": false})));
    let origins: Vec<Value> = answers
        .iter()
        .map(|a| {
            let mut s = origin_status(a);
            if let (Value::Object(o), Some(v)) = (&mut s, ok_body(a)) {
                o.insert("data".into(), v["data"].clone());
            }
            s
        })
        .collect();
    m.insert("origins".into(), Value::Array(origins));
    Response::json(200, &Value::Object(m))
}

/// One stream or client: the origin that knows the id answers (found by
/// asking every origin with a GET); a DELETE then goes to that origin alone.
async fn item(core: &Rc<Core>, req: &Request, peer: SocketAddr, kind: Kind, id: &str) -> Response {
    let probe = Request {
        method: "GET".into(),
        path: req.path.clone(),
        query: req.query.clone(),
        headers: req.headers.clone(),
        body: Vec::new(),
        keep_alive: false,
    };
    let Some(answers) = gather(core, &probe, peer, &req.target()).await else {
        return no_origin();
    };
    let Some(holder) = answers.iter().find(|a| ok_body(a).is_some_and(|v| !v[kind.item_key()].is_null())) else {
        let failed = answers.iter().filter(|a| ok_body(a).is_none() && a.result.is_err()).count();
        let mut resp = Response::error(404, format!("no live origin holds {} {id}", kind.item_key()));
        if failed > 0 {
            resp = Response::error(
                503,
                format!(
                    "no live origin that answered holds {} {id}; {failed} origin(s) did not answer",
                    kind.item_key()
                ),
            );
        }
        return resp;
    };
    let origin = holder.origin.id();
    if req.method.eq_ignore_ascii_case("GET") || req.method.eq_ignore_ascii_case("HEAD") {
        let mut v = ok_body(holder).cloned().unwrap_or_default();
        if let Value::Object(m) = &mut v {
            m.insert("origin".into(), json!(origin.as_str()));
        }
        return Response::json(200, &v);
    }
    // Anything else (DELETE kicks a client) goes to the holder only.
    let result = ask(&holder.origin, req, peer, &req.target()).await;
    tracing::info!(%peer, method = %req.method, path = %req.path, origin = %origin, ok = result.is_ok(), "cluster api item request");
    match result {
        Ok((status, mut v)) => {
            if let Value::Object(m) = &mut v {
                m.insert("origin".into(), json!(origin.as_str()));
            }
            Response::json(status, &v)
        }
        Err(e) => Response::error(502, format!("origin {origin}: {e}")),
    }
}

/// Writes the answer to a cluster path.
pub async fn serve(
    core: &Rc<Core>,
    s: &mut glommio::net::TcpStream,
    req: &Request,
    peer: SocketAddr,
    route: Route<'_>,
) -> Option<bool> {
    let resp = handle(core, req, peer, route).await;
    http::reply(s, req, resp).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let cases: &[(&str, Option<Route<'_>>)] = &[
            ("/api/v1/summaries", Some(Route::Summaries)),
            ("/api/v1/streams/", Some(Route::List(Kind::Streams))),
            ("/api/v1/streams", Some(Route::List(Kind::Streams))),
            ("/api/v1/clients/", Some(Route::List(Kind::Clients))),
            ("/api/v1/clients/abc123", Some(Route::Item(Kind::Clients, "abc123"))),
            ("/api/v1/clients/abc123/", Some(Route::Item(Kind::Clients, "abc123"))),
            ("/api/v1/streams/vid-1", Some(Route::Item(Kind::Streams, "vid-1"))),
            ("/api/v1/clients/a/b", None),
            ("/api/v1/clientsx", None),
            ("/api/v1/vhosts/", None),
            ("/api/v1/summaries/", None),
            ("/rtc/v1/whip/", None),
        ];
        for (path, want) in cases {
            assert_eq!(&route(path, ""), want, "{path}");
        }
        assert_eq!(route("/api/v1/streams/", "app=live&stream=s"), None, "a stream-scoped call");
        assert_eq!(route("/api/v1/streams/", "count=10"), Some(Route::List(Kind::Streams)));
    }
}
