//! The system API (`PROXY_SYSTEM_API`): the register API exactly as SRS
//! origins use it, its errors, Bearer auth, versions, the origin listing,
//! and the limits a stranger on the network meets.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// What a real SRS 5+ origin posts (captured on the wire; peers.md), unchanged.
const SRS_HEARTBEAT: &str = r#"{"device_id":"origin1","ip":"127.0.0.1","server":"vid-3ax2y18","service":"9d6628mo","pid":"31283","rtmp":["19351"],"http":["8081"],"api":["19851"],"srt":["udp://0.0.0.0:10081"],"rtc":["udp://0.0.0.0:8001"]}"#;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn origin_by_id(proxy: &Proxy, id: &str) -> Option<Value> {
    proxy.origins().into_iter().find(|o| o["id"] == id)
}

/// A port list from the API as strings, whether it holds strings or numbers.
fn ports(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn assert_api_error(r: &HttpResponse, status: u16, what: &str) -> Value {
    assert_eq!(r.status, status, "{what}: status; body {:?}", r.text());
    let v = r.json().unwrap_or_else(|e| panic!("{what}: error body must be JSON: {e}"));
    let code = v["code"].as_i64().unwrap_or_else(|| panic!("{what}: no numeric code in {v}"));
    assert_ne!(code, 0, "{what}: an error must not have code 0: {v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: no message in {v}");
    assert!(v.get("pid").is_none(), "{what}: an error must not carry a success body: {v}");
    v
}

#[test]
fn a_real_srs_heartbeat_registers_unchanged() {
    let proxy = Proxy::start(&[]);
    // Exactly the request an SRS origin sends: same headers, same body.
    let r = http(
        "POST",
        &proxy.sys_api(),
        "/api/v1/srs/register",
        &[("Connection", "Keep-Alive"), ("User-Agent", "SRS/6.0.184(Bee)"), ("Content-Type", "application/json")],
        SRS_HEARTBEAT.as_bytes(),
    )
    .expect("POST /api/v1/srs/register");
    assert_eq!(r.status, 200, "body {:?}", r.text());
    assert_eq!(
        r.json().unwrap(),
        json!({"code": 0, "pid": proxy.pid().to_string()}),
        "the success body carries the proxy's own pid"
    );

    let id = "vid-3ax2y18-9d6628mo-31283";
    assert!(
        wait_until(secs(5), || !proxy.log_lines_with(&["origin registered", &format!("id={id}")]).is_empty()),
        "no `origin registered` log line with id={id}"
    );
    let o = origin_by_id(&proxy, id).unwrap_or_else(|| panic!("/api/v1/origins lacks {id}: {:?}", proxy.origins()));
    assert_eq!(o["ip"], "127.0.0.1");
    assert_eq!(o["device_id"], "origin1");
    assert_eq!(ports(&o["rtmp"]), vec!["19351"]);
    assert_eq!(ports(&o["http"]), vec!["8081"]);
    assert_eq!(ports(&o["api"]), vec!["19851"]);
    assert_eq!(o["alive"], true);
    assert!(o["since_heartbeat_ms"].is_u64(), "since_heartbeat_ms: {o}");

    // The next heartbeat refreshes the same origin; it does not add one.
    let r = proxy.register(SRS_HEARTBEAT);
    assert_eq!(r.status, 200);
    let same: Vec<Value> = proxy.origins().into_iter().filter(|o| o["id"] == id).collect();
    assert_eq!(same.len(), 1, "one origin per server-service-pid: {same:?}");
}

#[test]
fn register_errors_are_400_with_the_first_missing_field_named() {
    let proxy = Proxy::start(&[]);
    // Fields are checked in SRS's order: ip, server, service, pid, rtmp.
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "empty ip"),
        (json!({"ip": "127.0.0.1"}), "empty server"),
        (json!({"ip": "127.0.0.1", "server": "s1"}), "empty service"),
        (json!({"ip": "127.0.0.1", "server": "s1", "service": "v1"}), "empty pid"),
        (json!({"ip": "127.0.0.1", "server": "s1", "service": "v1", "pid": "7"}), "empty rtmp"),
        (json!({"ip": "127.0.0.1", "server": "s1", "service": "v1", "pid": "7", "rtmp": []}), "empty rtmp"),
        (json!({"ip": "", "server": "s1", "service": "v1", "pid": "7", "rtmp": ["1935"]}), "empty ip"),
        (json!({"ip": "127.0.0.1", "server": "", "service": "v1", "pid": "7", "rtmp": ["1935"]}), "empty server"),
        (json!({"ip": "127.0.0.1", "server": "s1", "service": "", "pid": "7", "rtmp": ["1935"]}), "empty service"),
        (json!({"ip": "127.0.0.1", "server": "s1", "service": "v1", "pid": "", "rtmp": ["1935"]}), "empty pid"),
    ];
    for (body, message) in cases {
        let r = proxy.register(&body.to_string());
        let v = assert_api_error(&r, 400, &body.to_string());
        assert_eq!(v["message"], message, "for {body}");
    }
    assert!(proxy.origins().is_empty(), "a refused registration must not register anything: {:?}", proxy.origins());
}

#[test]
fn malformed_register_bodies_are_400() {
    let proxy = Proxy::start(&[]);
    let cases = [
        ("truncated JSON", r#"{"ip":"#.to_string()),
        ("not JSON", "ip=127.0.0.1&server=s1".to_string()),
        ("a JSON array", "[1,2,3]".to_string()),
        ("an empty body", String::new()),
        ("a number pid", SRS_HEARTBEAT.replace(r#""pid":"31283""#, r#""pid":31283"#)),
        ("a string rtmp", SRS_HEARTBEAT.replace(r#""rtmp":["19351"]"#, r#""rtmp":"19351""#)),
    ];
    for (what, body) in cases {
        let r = proxy.register(&body);
        assert_api_error(&r, 400, what);
    }
    assert!(proxy.origins().is_empty(), "{:?}", proxy.origins());
}

#[test]
fn endpoint_formats_srs_versions_send_are_accepted() {
    let proxy = Proxy::start(&[]);
    for (i, rtmp) in ["1935", "tcp://:1935", "tcp://0.0.0.0:1935", "tcp:127.0.0.1:1935"].iter().enumerate() {
        let server = format!("vid-fmt{i}");
        let body = json!({
            "ip": "127.0.0.1", "server": server, "service": "svc", "pid": "100",
            "rtmp": [rtmp], "http": ["8080"], "api": ["1985"],
            "srt": ["udp://[::]:10080"], "rtc": ["udp://0.0.0.0:8000", "tcp://0.0.0.0:8000"],
        });
        let r = proxy.register(&body.to_string());
        assert_eq!(r.status, 200, "rtmp {rtmp:?}: {}", r.text());
        assert_eq!(r.json().unwrap()["code"], 0);
        let id = format!("{server}-svc-100");
        let o = origin_by_id(&proxy, &id).unwrap_or_else(|| panic!("{id} not listed: {:?}", proxy.origins()));
        assert!(ports(&o["rtmp"]).iter().any(|p| p.contains("1935")), "rtmp {rtmp:?} listed as {}", o["rtmp"]);
    }
}

#[test]
fn bearer_auth_guards_the_register_api() {
    let token = "s3cret-token";
    let proxy = Proxy::start(&[
        ("PROXY_HTTP_API_AUTH_ENABLED", "on"),
        ("PROXY_HTTP_API_AUTH_TYPE", "bearer"),
        ("PROXY_HTTP_API_AUTH_TOKEN", token),
    ]);
    let refused: [(&str, Vec<(&str, &str)>); 4] = [
        ("no Authorization", vec![]),
        ("a wrong token", vec![("Authorization", "Bearer not-the-token")]),
        ("Basic credentials", vec![("Authorization", "Basic dXNlcjpzM2NyZXQ=")]),
        ("the token without Bearer", vec![("Authorization", token)]),
    ];
    for (what, headers) in refused {
        let r = register(&proxy.sys_api(), SRS_HEARTBEAT, &headers);
        assert_api_error(&r, 401, what);
        let challenge = r.header("WWW-Authenticate").unwrap_or_default();
        assert!(
            challenge.to_ascii_lowercase().starts_with("bearer"),
            "{what}: 401 needs a Bearer challenge, got WWW-Authenticate {challenge:?}"
        );
    }
    assert!(origin_by_id(&proxy, "vid-3ax2y18-9d6628mo-31283").is_none(), "an unauthenticated register registered");

    let bearer = format!("Bearer {token}");
    let r = register(&proxy.sys_api(), SRS_HEARTBEAT, &[("Authorization", bearer.as_str())]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().unwrap(), json!({"code": 0, "pid": proxy.pid().to_string()}));
    assert!(origin_by_id(&proxy, "vid-3ax2y18-9d6628mo-31283").is_some());
}

/// One register POST from the source address `from` (any 127/8 address
/// reaches the proxy's 127.0.0.1 listener over loopback).
fn register_from(from: &str, sys_api: &str, body: &str) -> HttpResponse {
    use socket2::{Domain, Socket, Type};
    let to: std::net::SocketAddr = sys_api.parse().unwrap();
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let src: std::net::SocketAddr = format!("{from}:0").parse().unwrap();
    sock.bind(&src.into()).unwrap();
    sock.connect_timeout(&to.into(), secs(5)).unwrap();
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(secs(10))).unwrap();
    let req = format!(
        "POST /api/v1/srs/register HTTP/1.1\r\nHost: {sys_api}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    read_http_response(&mut s).unwrap()
}

#[test]
fn the_allow_list_refuses_registers_from_other_networks() {
    let proxy = Proxy::start(&[("PROXY_REGISTER_ALLOW", "127.0.0.2/32, 10.0.0.0/8")]);
    let id = "vid-3ax2y18-9d6628mo-31283";

    let r = register_from("127.0.0.1", &proxy.sys_api(), SRS_HEARTBEAT);
    let v = assert_api_error(&r, 403, "a register from 127.0.0.1");
    assert!(v["message"].as_str().unwrap().contains("127.0.0.1"), "the refusal names the address: {v}");
    assert!(origin_by_id(&proxy, id).is_none(), "a refused register registered");
    assert!(
        wait_until(secs(5), || !proxy
            .log_lines_with(&["register refused", "PROXY_REGISTER_ALLOW", "127.0.0.1"])
            .is_empty()),
        "no log line for the refused register"
    );

    let r = register_from("127.0.0.2", &proxy.sys_api(), SRS_HEARTBEAT);
    assert_eq!(r.status, 200, "a register from inside the list: {}", r.text());
    assert_eq!(r.json().unwrap(), json!({"code": 0, "pid": proxy.pid().to_string()}));
    assert!(origin_by_id(&proxy, id).is_some(), "the allowed register is not listed");
}

#[test]
fn a_public_unguarded_system_api_is_warned_about_at_startup() {
    let warning = "listens beyond loopback with neither PROXY_HTTP_API_AUTH_ENABLED nor PROXY_REGISTER_ALLOW";
    // 0.0.0.0: reachable from every network the machine is on.
    let port = free_port();
    let open = Proxy::start(&[("PROXY_SYSTEM_API", &format!("0.0.0.0:{port}"))]);
    assert!(open.wait_log(warning, secs(5)), "no warning for an open system API:\n{}", open.log());
    let guarded = Proxy::start(&[("PROXY_REGISTER_ALLOW", "10.0.0.0/8")]);
    let private = Proxy::start(&[]);
    // Both are up (ready) and have logged their startup line; neither warns.
    for p in [&guarded, &private] {
        assert!(p.wait_log("srs-proxy started", secs(5)));
        assert!(!p.log().contains(warning), "a guarded or loopback system API was warned about:\n{}", p.log());
    }
}

#[test]
fn json_logs_are_one_object_per_line() {
    let proxy = Proxy::start(&[("PROXY_LOG_FORMAT", "json")]);
    let r = proxy.register(SRS_HEARTBEAT);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(proxy.wait_log("origin registered", secs(5)), "{}", proxy.log());
    let mut messages = Vec::new();
    for line in proxy.log().lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{line}");
        messages.push(v);
    }
    let started = messages.iter().find(|v| v["message"] == "srs-proxy started").expect("the startup line");
    assert_eq!(started["pid"], proxy.pid(), "fields sit beside the message: {started}");
    let reg = messages.iter().find(|v| v["message"] == "origin registered").expect("the register line");
    assert_eq!(reg["id"], "vid-3ax2y18-9d6628mo-31283", "{reg}");
    assert_eq!(reg["level"], "INFO");
}

#[test]
fn versions_origins_and_unknown_paths() {
    let proxy = Proxy::start(&[]);
    let r = proxy.get("/api/v1/versions");
    assert_eq!(r.status, 200);
    assert!(
        r.header("Content-Type").unwrap_or_default().contains("json"),
        "Content-Type {:?}",
        r.header("Content-Type")
    );
    assert_eq!(r.json().unwrap(), json!({"signature": "srs-proxy", "version": env!("CARGO_PKG_VERSION")}));

    // No origin yet; then one, listed alive.
    let r = proxy.get("/api/v1/origins");
    assert_eq!(r.status, 200);
    assert_eq!(r.json().unwrap(), json!({"code": 0, "data": [], "held_down_total": 0}));
    let _hb = Heartbeat::start(&proxy.sys_api(), SRS_HEARTBEAT.to_string());
    let o = origin_by_id(&proxy, "vid-3ax2y18-9d6628mo-31283").expect("listed");
    assert_eq!(o["alive"], true);

    let r = proxy.get("/api/v1/streams");
    assert_eq!(r.status, 200);
    assert_eq!(r.json().unwrap(), json!({"code": 0, "data": []}));

    for path in ["/api/v1/nope", "/nope", "/api/v2/versions"] {
        assert_eq!(proxy.get(path).status, 404, "GET {path}");
    }
}

/// Reads until a response head arrives (Some(status)) or the peer closes
/// without one (None). Err if neither happens within `bound`.
fn response_or_close(s: &mut TcpStream, bound: Duration) -> Result<Option<u16>, String> {
    let deadline = Instant::now() + bound;
    let mut got = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..i]).into_owned();
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("bad response head {head:?}"))?;
            return Ok(Some(status));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no response and no close within {bound:?}"));
        }
        s.set_read_timeout(Some(left.min(secs(1)))).unwrap();
        match s.read(&mut tmp) {
            Ok(0) => return Ok(None),
            Ok(n) => got.extend_from_slice(&tmp[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return Ok(None),
        }
    }
}

#[test]
fn a_huge_header_is_refused() {
    let proxy = Proxy::start(&[]);
    let mut s = TcpStream::connect(loopback(proxy.system_api_port)).unwrap();
    s.set_write_timeout(Some(secs(10))).unwrap();
    let mut req = b"GET /api/v1/versions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ".to_vec();
    req.extend_from_slice(&vec![b'a'; 70 * 1024]);
    req.extend_from_slice(b"\r\n\r\n");
    let _ = s.write_all(&req);
    match response_or_close(&mut s, secs(30)) {
        Ok(None) => {}
        Ok(Some(status)) => assert_eq!(status, 431, "a 70 KiB header must be refused"),
        Err(e) => panic!("a 70 KiB header: {e}"),
    }
    // The server is still there for everyone else.
    assert_eq!(proxy.get("/api/v1/versions").status, 200);
}

#[test]
fn silent_and_slow_clients_are_closed() {
    let proxy = Proxy::start(&[]);
    let addr = loopback(proxy.system_api_port);
    let silent = thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        read_until_closed(&mut s, secs(30))
    });
    let slow = thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /api/v1/versions HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
        read_until_closed(&mut s, secs(30))
    });
    // While they hang around, others are served.
    assert_eq!(proxy.get("/api/v1/versions").status, 200);
    for (what, t) in [("silent", silent), ("slow", slow)] {
        let got = t.join().unwrap().unwrap_or_else(|e| panic!("a {what} client must be closed by the proxy: {e}"));
        assert!(!got.starts_with(b"HTTP/1.1 2"), "a {what} client got a success: {:?}", String::from_utf8_lossy(&got));
    }
}

#[test]
fn a_body_over_the_limit_is_413() {
    let proxy = Proxy::start(&[]);
    let mut s = TcpStream::connect(loopback(proxy.system_api_port)).unwrap();
    // The head announces 2 MiB; the proxy must refuse on the length alone,
    // before reading (or buffering) the body.
    s.write_all(
        b"POST /api/v1/srs/register HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Content-Type: application/json\r\nContent-Length: 2097152\r\n\r\n",
    )
    .unwrap();
    let status = response_or_close(&mut s, secs(15))
        .unwrap_or_else(|e| panic!("2 MiB body: {e}"))
        .expect("2 MiB body: closed without a response");
    assert_eq!(status, 413);
    assert_eq!(proxy.get("/api/v1/versions").status, 200);
}
