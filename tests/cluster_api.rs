//! The cluster-wide SRS API on PROXY_HTTP_API: `/api/v1/summaries`,
//! `/api/v1/streams/`, `/api/v1/clients/` gathered from every live origin,
//! and per-item paths (a client kicked with DELETE) sent to its holder.
//!
//! No real program other than SRS serves SRS's HTTP API, and SRS is not
//! packaged here, so the origins are an in-repo stand-in: a small HTTP server
//! answering SRS's JSON shapes (`{"code":0,"server":…,"streams":[…]}`, and so
//! on), one per origin, one of which can be made to hang.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// A stand-in SRS API: `name` prefixes every id it serves.
struct SrsApi {
    port: u16,
    name: String,
    /// Requests it saw: "METHOD path".
    seen: Arc<Mutex<Vec<String>>>,
}

impl SrsApi {
    /// Serves on a free loopback port; `hang` accepts and reads requests but
    /// never answers (an origin stuck mid-request).
    fn start(name: &str, hang: bool) -> SrsApi {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (n, s) = (name.to_string(), seen.clone());
        thread::spawn(move || {
            for c in l.incoming().flatten() {
                let (n, s) = (n.clone(), s.clone());
                thread::spawn(move || serve(c, &n, &s, hang));
            }
        });
        SrsApi { port, name: name.to_string(), seen }
    }

    fn origin(&self) -> OriginInfo {
        OriginInfo {
            device_id: self.name.clone(),
            server: format!("vid-{}", self.name),
            service: "svc".into(),
            pid: "1".into(),
            ip: "127.0.0.1".into(),
            // Never dialled here: the API is the only endpoint used.
            rtmp: 1,
            http: None,
        }
    }

    fn register_body(&self) -> String {
        let mut v: Value = serde_json::from_str(&self.origin().register_body()).unwrap();
        v["api"] = json!([self.port.to_string()]);
        v.to_string()
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(c: TcpStream, name: &str, seen: &Mutex<Vec<String>>, hang: bool) {
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    let _ = r.read_exact(&mut body);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let path = target.split('?').next().unwrap_or("").to_string();
    seen.lock().unwrap().push(format!("{method} {path}"));
    if hang {
        thread::sleep(Duration::from_secs(60));
        return;
    }
    let top = |extra: Value| {
        let mut v = json!({"code": 0, "server": format!("vid-{name}"), "service": "svc", "pid": "1"});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    let client_id = format!("c-{name}");
    let (status, v) = match (method.as_str(), path.as_str()) {
        ("GET", "/api/v1/summaries") => {
            (200, top(json!({"data": {"ok": true, "self": {"version": "6.0.0", "pid": 1, "name": name}}})))
        }
        ("GET", "/api/v1/streams/") => (
            200,
            top(json!({"streams": [{"id": format!("s-{name}"), "name": "livestream", "app": "live", "clients": 1}]})),
        ),
        ("GET", "/api/v1/clients/") => {
            (200, top(json!({"clients": [{"id": client_id, "type": "rtmp-play", "ip": "10.0.0.1"}]})))
        }
        ("GET", p) if p == format!("/api/v1/clients/{client_id}") => {
            (200, top(json!({"client": {"id": client_id, "type": "rtmp-play"}})))
        }
        ("DELETE", p) if p == format!("/api/v1/clients/{client_id}") => (200, top(json!({}))),
        // SRS answers an unknown client with a non-zero code.
        (_, p) if p.starts_with("/api/v1/clients/") => (404, json!({"code": 2049})),
        _ => (404, json!({"code": 404})),
    };
    let body = v.to_string();
    let resp = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut c = c;
    let _ = c.write_all(resp.as_bytes());
}

fn api(proxy: &Proxy) -> String {
    format!("127.0.0.1:{}", proxy.http_api_port)
}

fn timed(method: &str, proxy: &Proxy, path: &str) -> (HttpResponse, Duration) {
    let t = Instant::now();
    let r = http(method, &api(proxy), path, &[], b"").unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    (r, t.elapsed())
}

/// Three origins, one hanging: every list holds the two live origins' items,
/// tagged, the hanging one is listed as failed, and each answer comes within
/// the proxy's gather timeout (3 s) plus slack, not after the hang.
#[test]
fn lists_are_gathered_from_every_origin_and_a_hanging_one_is_named() {
    let a = SrsApi::start("a", false);
    let b = SrsApi::start("b", false);
    let stuck = SrsApi::start("stuck", true);
    let proxy = Proxy::start(&[]);
    for o in [&a, &b, &stuck] {
        let r = proxy.register(&o.register_body());
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let bound = Duration::from_secs(8);

    for (path, key, ids) in [
        ("/api/v1/streams/", "streams", ["s-a", "s-b"]),
        ("/api/v1/clients/", "clients", ["c-a", "c-b"]),
        ("/api/v1/streams", "streams", ["s-a", "s-b"]),
    ] {
        let (r, took) = timed("GET", &proxy, path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(took < bound, "{path} took {took:?}: the hanging origin held the answer");
        let v = r.json().unwrap();
        assert_eq!(v["code"], 0, "{v}");
        let items = v[key].as_array().unwrap_or_else(|| panic!("{path}: no {key} list in {v}"));
        let got: BTreeSet<(String, String)> = items
            .iter()
            .map(|i| (i["id"].as_str().unwrap().to_string(), i["origin"].as_str().unwrap().to_string()))
            .collect();
        let want: BTreeSet<(String, String)> =
            ids.iter().zip([&a, &b]).map(|(id, o)| (id.to_string(), o.origin().id())).collect();
        assert_eq!(got, want, "{path}: each item tagged with its origin");
        let origins = v["origins"].as_array().unwrap();
        assert_eq!(origins.len(), 3, "{v}");
        let st = origins.iter().find(|o| o["id"] == stuck.origin().id()).unwrap();
        assert_eq!(st["ok"], false, "{st}");
        assert!(st["error"].as_str().is_some_and(|e| e.contains("within")), "the failure says why: {st}");
        for o in [&a, &b] {
            assert_eq!(origins.iter().find(|x| x["id"] == o.origin().id()).unwrap()["ok"], true);
        }
    }

    let (r, took) = timed("GET", &proxy, "/api/v1/summaries");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(took < bound, "summaries took {took:?}");
    let v = r.json().unwrap();
    assert_eq!(v["code"], 0);
    assert_eq!(v["data"]["ok"], true, "SRS's console reads data.ok: {v}");
    assert!(v["data"]["self"]["version"].is_string(), "{v}");
    let per: Vec<&Value> = v["origins"].as_array().unwrap().iter().collect();
    assert_eq!(per.iter().filter(|o| o["ok"] == true && o["data"]["self"]["name"].is_string()).count(), 2, "{v}");
    assert!(per.iter().any(|o| o["id"] == stuck.origin().id() && o["ok"] == false), "{v}");
}

/// A client is read from and kicked at the origin that holds it; the other
/// origins only see the lookup, never the DELETE.
#[test]
fn a_client_is_kicked_at_the_origin_that_holds_it() {
    let a = SrsApi::start("a", false);
    let b = SrsApi::start("b", false);
    let proxy = Proxy::start(&[]);
    for o in [&a, &b] {
        assert_eq!(proxy.register(&o.register_body()).status, 200);
    }

    let (r, _) = timed("GET", &proxy, "/api/v1/clients/c-b");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json().unwrap();
    assert_eq!(v["client"]["id"], "c-b", "{v}");
    assert_eq!(v["origin"], b.origin().id(), "{v}");

    let (r, _) = timed("DELETE", &proxy, "/api/v1/clients/c-b");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().unwrap()["code"], 0);
    assert!(b.seen().contains(&"DELETE /api/v1/clients/c-b".to_string()), "b: {:?}", b.seen());
    assert!(!a.seen().iter().any(|s| s.starts_with("DELETE")), "a was sent a DELETE: {:?}", a.seen());

    let (r, _) = timed("DELETE", &proxy, "/api/v1/clients/nobody");
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.json().unwrap()["message"].as_str().unwrap().contains("nobody"));
    assert!(!a.seen().iter().chain(b.seen().iter()).any(|s| s == "DELETE /api/v1/clients/nobody"));
}
