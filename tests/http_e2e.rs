//! HTTP-FLV, HTTP-TS, HLS and the HTTP API through srs-proxy, end to end,
//! with real peers: FFmpeg publishes RTMP through the proxy and ffprobe /
//! FFmpeg play over HTTP through it; the origins are node-media-server
//! (HTTP-FLV), nginx-rtmp serving its HLS folder and a JSON API, and FFmpeg
//! itself serving HTTP-TS. Bad input and broken origins each get a clear
//! status or a closed connection, and nothing else is disturbed.
//!
//! An origin that closes mid-body or never answers is a `TcpListener` in
//! this file that speaks real HTTP: no real program misbehaves on cue.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const HANG_GUARD: Duration = Duration::from_secs(30);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `127.0.0.1:<the proxy's HTTP stream server port>`.
fn stream_addr(proxy: &Proxy) -> String {
    format!("127.0.0.1:{}", proxy.http_server_port)
}

/// `127.0.0.1:<the proxy's HTTP API port>`.
fn api_addr(proxy: &Proxy) -> String {
    format!("127.0.0.1:{}", proxy.http_api_port)
}

fn stream_url(proxy: &Proxy, path: &str) -> String {
    format!("http://{}{path}", stream_addr(proxy))
}

/// Registers every body and keeps it alive with a heartbeat thread each.
fn heartbeats(proxy: &Proxy, bodies: &[String]) -> Vec<Heartbeat> {
    bodies.iter().map(|b| Heartbeat::start(&proxy.sys_api(), b.clone())).collect()
}

/// The register body of `o` with an `api` endpoint as well.
fn body_with_api(o: &OriginInfo, api_port: u16) -> String {
    let mut v: Value = serde_json::from_str(&o.register_body()).unwrap();
    v["api"] = json!([api_port.to_string()]);
    v.to_string()
}

/// A made-up origin's identity with the given RTMP and HTTP ports.
fn fake_origin(name: &str, rtmp: u16, http: Option<u16>) -> OriginInfo {
    OriginInfo {
        device_id: format!("{name}-device"),
        server: format!("vid-{name}"),
        service: format!("svc-{name}"),
        pid: format!("{}", 40000 + rtmp % 20000),
        ip: "127.0.0.1".into(),
        rtmp,
        http,
    }
}

/// `ffmpeg -i <url> -t <media_secs> -c copy -f null -`: a player reading
/// that much media. Ok(stderr) on exit 0.
fn ffmpeg_pull(url: &str, media_secs: u32, bound: Duration) -> Result<String, String> {
    let dir = TempDir::new("ffmpeg-pull");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "warning", "-nostdin", "-i", url]).args([
        "-t",
        &media_secs.to_string(),
        "-c",
        "copy",
        "-f",
        "null",
        "-",
    ]);
    let mut g = ProcGuard::spawn("ffmpeg-pull", cmd, dir.path());
    let st = g.wait_exit(bound);
    let err = g.stderr();
    match st {
        Some(st) if st.success() => Ok(err),
        Some(st) => Err(format!("ffmpeg -i {url}: {st}; stderr {err:?}")),
        None => {
            g.stop();
            Err(format!("ffmpeg -i {url}: still running after {bound:?}; stderr {err:?}"))
        }
    }
}

/// The `http stream ended` / `http stream failed` lines for stream `key`.
fn http_stream_lines(proxy: &Proxy, key: &str) -> Vec<String> {
    proxy
        .log_lines_with(&["http stream"])
        .into_iter()
        .filter(|l| log_field(l, "stream").as_deref() == Some(key))
        .collect()
}

/// The `http stream ended` line of `key`, waiting for it up to 10 s.
fn wait_ended_line(proxy: &Proxy, key: &str) -> String {
    let mut line = None;
    assert!(
        wait_until(secs(10), || {
            line = http_stream_lines(proxy, key).into_iter().find(|l| l.contains("http stream ended"));
            line.is_some()
        }),
        "no `http stream ended` line for {key}"
    );
    line.unwrap_or_default()
}

/// Whether `id` looks like the proxy's HLS session id: `<core>-<10 chars>`.
fn is_spbhid(id: &str) -> bool {
    match id.split_once('-') {
        Some((core, rest)) => {
            !core.is_empty()
                && core.bytes().all(|b| b.is_ascii_digit())
                && rest.len() == 10
                && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        None => false,
    }
}

/// The `spbhid` value in a URI's query.
fn spbhid_in(uri: &str) -> Option<String> {
    let query = uri.split_once('?')?.1;
    query.split('&').find_map(|kv| kv.strip_prefix("spbhid=")).map(String::from)
}

// ---------------------------------------------------------------------------
// Raw HTTP on one connection, for what the blocking client cannot show:
// repeated headers, a live body, a connection cut mid-body.

struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).count()
    }
}

fn parse_head(bytes: &[u8]) -> Option<Head> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect();
    Some(Head { status, headers })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Sends `GET <path>` with `headers` on a new connection and reads the
/// response head. Returns the open connection, the head and the body bytes
/// that came with it.
fn open_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> (TcpStream, Head, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(secs(15))).unwrap();
    s.set_write_timeout(Some(secs(15))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap_or_else(|e| panic!("send GET {path}: {e}"));
    let mut buf = Vec::new();
    let mut tmp = [0u8; 16384];
    let end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut tmp).unwrap_or_else(|e| panic!("GET {path}: reading the head: {e}"));
        assert!(n > 0, "GET {path}: closed before a complete head ({:?})", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = parse_head(&buf[..end + 2]).unwrap_or_else(|| panic!("GET {path}: bad head {buf:?}"));
    let rest = buf[end + 4..].to_vec();
    (s, head, rest)
}

/// The payload of the chunks that have arrived in `raw` (a chunked body,
/// possibly cut anywhere).
fn dechunk_prefix(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(eol) = find(&raw[at..], b"\r\n") {
        let size_txt = String::from_utf8_lossy(&raw[at..at + eol]).into_owned();
        let Ok(size) = usize::from_str_radix(size_txt.split(';').next().unwrap_or("").trim(), 16) else {
            break;
        };
        let data = at + eol + 2;
        let have = raw.len().saturating_sub(data).min(size);
        out.extend_from_slice(&raw[data..data + have]);
        if size == 0 || have < size {
            break;
        }
        at = data + size + 2;
        if at > raw.len() {
            break;
        }
    }
    out
}

/// Reads a live body until at least `n` payload bytes have arrived (each
/// read bounded by the socket's timeout); undoes chunked framing.
fn read_media(s: &mut TcpStream, head: &Head, mut raw: Vec<u8>, n: usize) -> io::Result<Vec<u8>> {
    let chunked = head.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let mut tmp = [0u8; 16384];
    loop {
        let body = if chunked { dechunk_prefix(&raw) } else { raw.clone() };
        if body.len() >= n {
            return Ok(body);
        }
        let got = s.read(&mut tmp)?;
        if got == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("closed after {} bytes", body.len())));
        }
        raw.extend_from_slice(&tmp[..got]);
    }
}

/// A live HTTP-FLV play of `name` through the proxy: 200, an FLV header, and
/// media after it. The connection is closed again.
fn flv_plays(proxy: &Proxy, name: &str) {
    let path = format!("/live/{name}.flv");
    let (mut s, head, rest) = open_get(&stream_addr(proxy), &path, &[]);
    assert_eq!(head.status, 200, "GET {path} through the proxy: {:?}", head.headers);
    let body = read_media(&mut s, &head, rest, 16 * 1024).unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert!(body.starts_with(b"FLV"), "GET {path}: body does not start with an FLV header");
}

/// `GET /api/v1/versions` on the HTTP stream server still answers.
fn versions_answer(proxy: &Proxy) {
    let r = http("GET", &stream_addr(proxy), "/api/v1/versions", &[], b"")
        .unwrap_or_else(|e| panic!("GET /api/v1/versions on the HTTP server: {e}"));
    assert_eq!(r.status, 200, "versions: {}", r.text());
    let v = r.json().unwrap();
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(v["pid"], proxy.pid().to_string(), "{v}");
    assert_eq!(v["data"]["version"], "0.1.0", "{v}");
}

fn assert_json_error(r: &HttpResponse, status: u16, what: &str) -> Value {
    assert_eq!(r.status, status, "{what}: body {:?}", r.text());
    let ctype = r.header("content-type").unwrap_or("");
    assert!(ctype.starts_with("application/json"), "{what}: Content-Type {ctype:?}");
    let v = r.json().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(v["code"], status, "{what}: {v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: no message in {v}");
    v
}

/// Whether 127.0.0.1:`port` (or any address) has a listening TCP socket,
/// from /proc/net/tcp: no connect, so a one-client server is not used up.
fn is_listening(port: u16) -> bool {
    let want = format!(":{port:04X}");
    fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 3).then(|| (f[1].to_string(), f[3].to_string()))
        })
        .any(|(local, st)| local.ends_with(&want) && st == "0A")
}

// ---------------------------------------------------------------------------
// nginx-rtmp as an HLS + API origin.

/// nginx-rtmp as an origin with what these tests ask of one: the RTMP `live`
/// application with HLS into `<dir>/live` (1 s fragments, 6 s playlist); an
/// HTTP server serving that folder at `/live/<stream>.m3u8` (HLS types, its
/// own `Access-Control-Allow-Origin`), `/stat`, and `/api/v1/` answering
/// `{"code":0,"from":"<marker>"}`; every HTTP request logged to
/// `logs/access.log` with its query and the forwarding headers.
fn nginx_origin(marker: &str) -> NginxRtmp {
    let format = r#"uri="$request_uri" status=$status xff="$http_x_forwarded_for" xrealip="$http_x_real_ip" ua="$http_user_agent""#;
    NginxRtmp::launch("nginx-origin", "live", 1, 6, Some(format), |p| {
        format!(
            r#"{}
        location /api/v1/ {{
            default_type application/json;
            return 200 '{{"code":0,"from":"{marker}"}}';
        }}"#,
            live_locations(p)
        )
    })
}

/// One line of the origin's access log.
#[derive(Debug)]
struct Access {
    uri: String,
    xff: String,
    xrealip: String,
    ua: String,
}

fn quoted_field(line: &str, name: &str) -> String {
    let pat = format!("{name}=\"");
    line.find(&pat)
        .and_then(|i| {
            let rest = &line[i + pat.len()..];
            rest.find('"').map(|j| rest[..j].to_string())
        })
        .unwrap_or_default()
}

fn access_log(n: &NginxRtmp) -> Vec<Access> {
    fs::read_to_string(n.dir.join("logs/access.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            // nginx logs an absent header as "-".
            let field = |name: &str| Some(quoted_field(l, name)).filter(|v| v != "-").unwrap_or_default();
            Access { uri: field("uri"), xff: field("xff"), xrealip: field("xrealip"), ua: field("ua") }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// 1. HTTP-FLV from node-media-server origins.

#[test]
fn http_flv_plays_from_the_origin_that_holds_the_rtmp_publish() {
    let origins = [Nms::start(), Nms::start()];
    let proxy = Proxy::start(&[]);
    let infos: Vec<OriginInfo> = origins.iter().map(|o| o.origin()).collect();
    let _hb = heartbeats(&proxy, &infos.iter().map(|o| o.register_body()).collect::<Vec<_>>());
    let pipes = |p: &Proxy| list_fds(p.pid()).iter().filter(|f| f.contains("->pipe:")).count();
    let pipes_before = pipes(&proxy);

    // A user publishes over RTMP to the proxy.
    let publisher = ffmpeg_publish(&proxy.rtmp_url("flvstream"));
    let key = live_key("flvstream");
    let pinned = proxy.wait_pinned(&key, secs(20));
    let holder = infos.iter().position(|o| o.id() == pinned).unwrap_or_else(|| panic!("pinned to {pinned}?"));
    let other = 1 - holder;
    let time_waits_before = time_waits_to(origins[holder].http_port);
    assert!(
        wait_until(secs(20), || origins[holder].guard.stdout().contains("start push /live/flvstream")),
        "node-media-server {} never logged the publish",
        infos[holder].id()
    );

    // A player over HTTP-FLV through the proxy gets the clip.
    probe_clip(&stream_url(&proxy, "/live/flvstream.flv"), secs(30));

    // The FLV play went to the NMS holding the publish; the other saw neither.
    assert!(
        wait_until(secs(10), || origins[holder].guard.stdout().contains("start play /live/flvstream")),
        "the HTTP-FLV play did not reach {} (the publish's origin); its log:\n{}",
        infos[holder].id(),
        origins[holder].guard.stdout()
    );
    let other_log = origins[other].guard.stdout();
    assert!(
        !other_log.contains("/live/flvstream"),
        "the other origin {} saw the stream:\n{other_log}",
        infos[other].id()
    );
    // And the proxy says so in its log.
    let line = wait_ended_line(&proxy, &key);
    assert_eq!(log_field(&line, "kind").as_deref(), Some("flv"), "{line}");
    assert_eq!(log_field(&line, "origin").as_deref(), Some(pinned.as_str()), "{line}");
    assert_eq!(log_field(&line, "status").as_deref(), Some("200"), "{line}");
    let bytes: u64 = log_field(&line, "bytes_out").and_then(|b| b.parse().ok()).unwrap_or(0);
    assert!(bytes > 0, "bytes_out: {line}");
    assert!(log_field(&line, "reason").is_some_and(|r| !r.is_empty()), "no reason: {line}");

    // The response a browser gets: the origin's headers, CORS exactly once
    // (NMS sets its own Access-Control-Allow-Origin too), no keep-alive.
    let (mut s, head, rest) =
        open_get(&stream_addr(&proxy), "/live/flvstream.flv", &[("Origin", "http://player.example")]);
    assert_eq!(head.status, 200, "{:?}", head.headers);
    assert_eq!(head.count("access-control-allow-origin"), 1, "Access-Control-Allow-Origin: {:?}", head.headers);
    // Every end-to-end header the origin sends a player directly comes through.
    let (_direct_conn, direct, _) = open_get(
        &format!("127.0.0.1:{}", origins[holder].http_port),
        "/live/flvstream.flv",
        &[("Origin", "http://player.example")],
    );
    let hop_by_hop = ["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "date"];
    for (k, v) in &direct.headers {
        if hop_by_hop.contains(&k.to_ascii_lowercase().as_str()) {
            continue;
        }
        assert_eq!(head.header(k), Some(v.as_str()), "the origin's {k} did not come through: {:?}", head.headers);
    }
    assert!(head.header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close")), "{:?}", head.headers);
    let body = read_media(&mut s, &head, rest, 64 * 1024).expect("the live FLV body");
    assert!(body.starts_with(b"FLV"), "the body through the proxy is not FLV");

    // The body goes through the kernel (spliced), as its end line says. (A
    // count of the proxy's pipes cannot tell: the publisher's RTMP relay
    // splices too, and a core keeps empty pipes for reuse.)
    drop(s);
    assert!(
        wait_until(secs(10), || proxy
            .log_lines_with(&["http stream ended", "kind=\"flv\""])
            .iter()
            .filter(|l| log_field(l, "spliced").as_deref() == Some("true"))
            .count()
            >= 2),
        "the live FLV bodies were not spliced: {:?}",
        proxy.log_lines_with(&["http stream ended"])
    );
    // Once the player and the publisher have gone, no pipe is left.
    drop(publisher);
    assert!(
        wait_until(secs(10), || pipes(&proxy) == pipes_before),
        "pipes left after the player and the publisher left: {} ({pipes_before} before)",
        pipes(&proxy)
    );

    // Each player that left was let go at the origin with a reset, not a
    // FIN: the side that sends the first FIN ends in TIME_WAIT, which
    // holds a port toward the origin for a minute per player. (The test's
    // own direct connection is still open.)
    let left: Vec<_> = time_waits_to(origins[holder].http_port).difference(&time_waits_before).copied().collect();
    assert!(left.is_empty(), "connections toward the origin in TIME_WAIT (local, origin port): {left:?}");
}

// ---------------------------------------------------------------------------
// 2. HLS from nginx-rtmp origins.

#[test]
fn hls_segments_go_through_the_proxy_with_one_session_id_to_the_holding_origin() {
    let origins = [nginx_origin("origin-1"), nginx_origin("origin-2")];
    let proxy = Proxy::start(&[]);
    let infos: Vec<OriginInfo> = origins.iter().map(|o| o.origin()).collect();
    let _hb = heartbeats(&proxy, &infos.iter().map(|o| o.register_body()).collect::<Vec<_>>());

    let _publisher = ffmpeg_publish(&proxy.rtmp_url("hlsstream"));
    let found = wait_holders(&origins, "hlsstream");
    assert_eq!(found.len(), 1, "the stream must be on exactly one origin; /stat shows it on {found:?}");
    let (h, o) = (found[0], 1 - found[0]);
    let holder = &origins[h];
    assert_eq!(proxy.pinned_origin(&live_key("hlsstream")), Some(infos[h].id()));
    assert!(
        wait_until(secs(40), || holder.hls_segments("hlsstream").len() >= 3),
        "the origin's playlist never had three segments: {:?}",
        holder.hls_segments("hlsstream")
    );

    // A player reads ten seconds of it through the proxy: more than one
    // playlist holds (6 s), so it has to refresh the playlist on the way.
    let url = stream_url(&proxy, "/live/hlsstream.m3u8");
    ffmpeg_pull(&url, 10, secs(90)).unwrap_or_else(|e| panic!("{e}"));

    // What the holding origin saw: the player's playlist requests and its
    // segment requests, all through the proxy, every segment with the one
    // session id the player was given.
    let seen: Vec<Access> = access_log(holder).into_iter().filter(|a| a.uri.starts_with("/live/hlsstream")).collect();
    let proxied: Vec<&Access> = seen.iter().filter(|a| !a.xff.is_empty()).collect();
    for a in &proxied {
        assert_eq!(a.xff, "127.0.0.1", "X-Forwarded-For reaching the origin: {a:?}");
        assert_eq!(a.xrealip, "127.0.0.1", "X-Real-IP reaching the origin: {a:?}");
    }
    let playlists: Vec<&&Access> = proxied.iter().filter(|a| a.uri.contains(".m3u8")).collect();
    let segments: Vec<&Access> = seen.iter().filter(|a| a.uri.contains(".ts")).collect();
    assert!(playlists.len() >= 2, "the player's playlist requests (first and refreshes) reached the origin: {seen:?}");
    assert!(segments.len() >= 3, "fewer than three segment requests reached the origin: {seen:?}");
    let refresh = seen.iter().enumerate().filter(|(_, a)| !a.xff.is_empty() && a.uri.contains(".m3u8")).nth(1);
    let refresh = refresh.map(|(i, _)| i).unwrap();
    assert!(
        seen[refresh..].iter().any(|a| a.uri.contains(".ts")),
        "no segment request after the playlist refresh: {seen:?}"
    );
    for a in &segments {
        assert!(!a.xff.is_empty(), "a segment request reached the origin without going through the proxy: {a:?}");
        assert!(spbhid_in(&a.uri).is_some(), "a segment request without spbhid: {a:?}");
    }
    let ids: BTreeSet<String> = segments.iter().filter_map(|a| spbhid_in(&a.uri)).collect();
    assert_eq!(ids.len(), 1, "one player, one session id across playlist refreshes: {ids:?}");
    let id = ids.into_iter().next().unwrap();
    assert!(is_spbhid(&id), "spbhid {id:?} is not <core>-<10 chars>");
    let player_ua = &segments[0].ua;
    assert!(
        playlists.iter().all(|a| &a.ua == player_ua),
        "the playlist requests were not all the player's: {playlists:?}"
    );
    // The other origin saw none of it.
    let elsewhere: Vec<Access> = access_log(&origins[o]).into_iter().filter(|a| a.uri.contains("hlsstream")).collect();
    assert!(elsewhere.is_empty(), "the other origin was asked for the stream: {elsewhere:?}");

    // The playlist through the proxy is the origin's, with the session id
    // added to every segment URI and nothing else changed. Compared with
    // the origin's own copy fetched just before and after (the playlist
    // moves every segment; retried until both direct copies agree).
    let origin_addr = format!("127.0.0.1:{}", holder.http_port);
    let mut compared = false;
    for _ in 0..20 {
        let before = http("GET", &origin_addr, "/live/hlsstream.m3u8", &[], b"").unwrap();
        let through = http("GET", &stream_addr(&proxy), "/live/hlsstream.m3u8", &[], b"").unwrap();
        let after = http("GET", &origin_addr, "/live/hlsstream.m3u8", &[], b"").unwrap();
        if before.status != 200 || before.body != after.body {
            thread::sleep(Duration::from_millis(300));
            continue;
        }
        assert_eq!(through.status, 200, "playlist through the proxy: {}", through.text());
        assert_eq!(through.header("content-type"), Some("application/vnd.apple.mpegurl"));
        let acao = through.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("access-control-allow-origin"));
        assert_eq!(acao.count(), 1, "Access-Control-Allow-Origin on the playlist: {:?}", through.headers);
        let (direct, rewritten) = (before.text(), through.text());
        let (d, r): (Vec<&str>, Vec<&str>) = (direct.lines().collect(), rewritten.lines().collect());
        assert_eq!(d.len(), r.len(), "line count changed:\norigin:\n{direct}\nproxy:\n{rewritten}");
        let mut my_id = None;
        for (dl, rl) in d.iter().zip(&r) {
            if dl.starts_with('#') || dl.trim().is_empty() {
                assert_eq!(dl, rl, "a tag line changed:\norigin:\n{direct}\nproxy:\n{rewritten}");
                continue;
            }
            let sid = spbhid_in(rl).unwrap_or_else(|| panic!("URI line without spbhid: {rl:?}\n{rewritten}"));
            assert!(is_spbhid(&sid), "spbhid {sid:?}");
            assert_eq!(*my_id.get_or_insert(sid.clone()), sid, "two ids in one playlist:\n{rewritten}");
            let sep = if dl.contains('?') { '&' } else { '?' };
            assert_eq!(*rl, format!("{dl}{sep}spbhid={sid}"), "URI rewritten beyond the id");
        }
        assert!(my_id.is_some(), "no segment URI in the playlist:\n{rewritten}");
        compared = true;
        break;
    }
    assert!(compared, "the origin's playlist never held still long enough to compare");
}

// ---------------------------------------------------------------------------
// 3. HTTP-TS from an FFmpeg origin.

#[test]
fn http_ts_plays_from_an_ffmpeg_origin() {
    let proxy = Proxy::start(&[]);
    let ports = free_ports(2);
    let (ts_port, rtmp_port) = (ports[0], ports[1]);
    let dir = TempDir::new("ts-origin");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1", "-i"])
        .arg(test_clip())
        .args(["-c", "copy", "-f", "mpegts", "-listen", "1"])
        .arg(format!("http://127.0.0.1:{ts_port}/live/T.ts"));
    let mut server = ProcGuard::spawn("ffmpeg-ts-origin", cmd, dir.path());
    assert!(
        wait_until(secs(10), || is_listening(ts_port) || !server.is_running()),
        "ffmpeg never listened on {ts_port}"
    );
    assert!(server.is_running(), "ffmpeg (HTTP-TS origin) exited: {}", server.stderr());

    // Registered as any origin is (the register API wants an RTMP port).
    let info = fake_origin("ffmpeg-ts", rtmp_port, Some(ts_port));
    let r = proxy.register(&info.register_body());
    assert_eq!(r.status, 200, "register: {}", r.text());

    probe_clip(&stream_url(&proxy, "/live/T.ts"), secs(30));

    let key = live_key("T");
    let line = wait_ended_line(&proxy, &key);
    assert_eq!(log_field(&line, "kind").as_deref(), Some("ts"), "{line}");
    assert_eq!(log_field(&line, "origin").as_deref(), Some(info.id().as_str()), "{line}");
    assert_eq!(log_field(&line, "status").as_deref(), Some("200"), "{line}");
}

// ---------------------------------------------------------------------------
// 4. Bad input and broken origins.

/// A stand-in origin for failures no real program shows on cue. It reads
/// each request head and answers by path:
/// - `/live/cut.flv`: `200` with `Content-Length: 1000000`, 1000 bytes, close;
/// - `/live/silent.flv`: nothing at all, until the proxy gives up.
struct BrokenOrigin {
    port: u16,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// The 1000 bytes the broken origin sends before it closes.
fn cut_body() -> Vec<u8> {
    Rng::new(0xC07).bytes(1000)
}

impl BrokenOrigin {
    fn start() -> BrokenOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = thread::spawn(move || {
            let mut conns = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let stop3 = stop2.clone();
                        conns.push(thread::spawn(move || BrokenOrigin::serve(s, &stop3)));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(20)),
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        BrokenOrigin { port, stop, handle: Some(handle) }
    }

    fn serve(mut s: TcpStream, stop: &AtomicBool) {
        let _ = s.set_nonblocking(false);
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let deadline = Instant::now() + secs(60);
        let mut head = Vec::new();
        let mut tmp = [0u8; 4096];
        while find(&head, b"\r\n\r\n").is_none() {
            if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
                return;
            }
            match s.read(&mut tmp) {
                Ok(0) => return,
                Ok(n) => head.extend_from_slice(&tmp[..n]),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(_) => return,
            }
        }
        let line = String::from_utf8_lossy(&head).lines().next().unwrap_or("").to_string();
        if line.starts_with("GET /live/cut.flv") {
            let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nContent-Length: 1000000\r\n\r\n".to_vec();
            out.extend_from_slice(&cut_body());
            let _ = s.write_all(&out);
            return; // closed mid-body
        }
        // Never answers: holds the connection until the proxy drops it.
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            match s.read(&mut tmp) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(_) => return,
            }
        }
    }
}

impl Drop for BrokenOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Registers `body` (heartbeating) with nothing else alive, runs `f`, then
/// stops the heartbeat and waits until the proxy counts the origin dead, so
/// every stream `f` asked for was pinned to this origin alone.
fn with_only_origin(proxy: &Proxy, info: &OriginInfo, f: impl FnOnce()) {
    let alive = |p: &Proxy| -> Vec<String> {
        p.origins().iter().filter(|o| o["alive"] == true).filter_map(|o| o["id"].as_str().map(String::from)).collect()
    };
    assert!(wait_until(secs(20), || alive(proxy).is_empty()), "origins still alive: {:?}", alive(proxy));
    let hb = Heartbeat::start(&proxy.sys_api(), info.register_body());
    assert_eq!(alive(proxy), vec![info.id()]);
    f();
    drop(hb);
    assert!(
        wait_until(secs(20), || alive(proxy).is_empty()),
        "{} still alive after its heartbeats stopped: {:?}",
        info.id(),
        proxy.origins()
    );
}

/// Sends `bytes` on a new connection to the HTTP server and reads whatever
/// comes back until the proxy closes (bounded by the hang guard).
fn send_raw(proxy: &Proxy, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(stream_addr(proxy)).unwrap();
    s.set_write_timeout(Some(secs(10))).unwrap();
    write_ignoring_close(&mut s, bytes).unwrap();
    read_until_closed(&mut s, HANG_GUARD).unwrap_or_else(|e| panic!("the proxy must close: {e}"))
}

fn status_of(reply: &[u8]) -> Option<u16> {
    parse_head(reply).map(|h| h.status)
}

#[test]
fn bad_input_and_broken_origins_get_clear_answers_and_leak_nothing() {
    // A short TTL so that each broken origin can be the only live one while
    // its streams are asked for.
    let proxy = Proxy::start(&[("PROXY_ORIGIN_SERVER_TTL", "3s")]);
    let http_addr = stream_addr(&proxy);
    versions_answer(&proxy);

    // No origin registered: 503 with a JSON body.
    let r = http("GET", &http_addr, "/live/nobody.flv", &[], b"").unwrap();
    assert_json_error(&r, 503, "a stream with no origin registered");
    let fds = FdSnapshot::settled(&proxy);

    // An unknown or malformed HLS session id: 404 with a JSON body naming it.
    for sid in ["1-abcdefghij", "0-zzzzzzzzzz", "nonsense"] {
        let r = http("GET", &http_addr, &format!("/live/x-1.ts?spbhid={sid}"), &[], b"").unwrap();
        let v = assert_json_error(&r, 404, &format!("spbhid {sid}"));
        assert_eq!(v["message"], format!("unknown or expired spbhid {sid}"), "{v}");
    }
    versions_answer(&proxy);

    // An origin registered without an http endpoint: 502.
    let free = free_ports(2);
    with_only_origin(&proxy, &fake_origin("no-http", free[0], None), || {
        let r = http("GET", &http_addr, "/live/nohttp.flv", &[], b"").unwrap();
        assert_json_error(&r, 502, "an origin without an http endpoint");
    });
    versions_answer(&proxy);

    // An origin whose http port refuses connections: 502.
    with_only_origin(&proxy, &fake_origin("unreachable", free[0], Some(free[1])), || {
        let r = http("GET", &http_addr, "/live/unreachable.flv", &[], b"").unwrap();
        assert_json_error(&r, 502, "an unreachable origin");
    });
    versions_answer(&proxy);

    // An origin that closes mid-body, and one that never answers.
    let broken = BrokenOrigin::start();
    with_only_origin(&proxy, &fake_origin("broken", free[0], Some(broken.port)), || {
        let (mut s, head, mut body) = open_get(&http_addr, "/live/cut.flv", &[]);
        assert_eq!(head.status, 200, "{:?}", head.headers);
        assert_eq!(head.header("content-length"), Some("1000000"), "{:?}", head.headers);
        let rest = read_until_closed(&mut s, HANG_GUARD).expect("the proxy must end the cut response");
        body.extend_from_slice(&rest);
        assert!(body.len() < 1_000_000, "the client got {} bytes from an origin that sent 1000", body.len());
        assert!(
            body == cut_body(),
            "the client must get exactly the origin's 1000 bytes, then the close; it got {} bytes{}",
            body.len(),
            if body.len() > 1000 {
                format!(", ending in {:?}", String::from_utf8_lossy(&body[1000..]))
            } else {
                String::new()
            }
        );
        let key = live_key("cut");
        let mut line = None;
        assert!(
            wait_until(secs(10), || {
                line = http_stream_lines(&proxy, &key).into_iter().next();
                line.is_some()
            }),
            "no `http stream ...` line for {key}"
        );
        let line = line.unwrap();
        let reason = log_field(&line, "reason").unwrap_or_default();
        assert!(reason.to_ascii_lowercase().contains("clos"), "the reason must name the origin's close: {line}");

        let mut s = TcpStream::connect(&http_addr).unwrap();
        s.write_all(format!("GET /live/silent.flv HTTP/1.1\r\nHost: {http_addr}\r\n\r\n").as_bytes()).unwrap();
        s.set_read_timeout(Some(HANG_GUARD)).unwrap();
        let r = read_http_response(&mut s).expect("an answer when the origin never answers");
        assert_json_error(&r, 504, "an origin that never answers");
        assert!(
            wait_until(secs(10), || !http_stream_lines(&proxy, &live_key("silent")).is_empty()),
            "no `http stream ...` line for the origin that never answered"
        );
    });
    drop(broken);
    versions_answer(&proxy);

    // A real origin from here on: node-media-server with a live publish.
    let nms = Nms::start();
    let hb = Heartbeat::start(&proxy.sys_api(), nms.origin().register_body());
    let publisher = ffmpeg_publish(&proxy.rtmp_url("good"));
    assert!(
        wait_until(secs(20), || nms.guard.stdout().contains("start push /live/good")),
        "the publish through the proxy never reached node-media-server"
    );
    flv_plays(&proxy, "good");

    // The origin's own 404 (NMS serves no .ts) reaches the client as 404.
    let r = http("GET", &http_addr, "/live/good.ts", &[], b"").unwrap();
    assert_eq!(r.status, 404, "the origin's 404 must pass through: {} {:?}", r.status, r.text());

    type Case = (&'static str, fn(&Proxy));
    let cases: [Case; 6] = [
        ("malformed request line", |p| {
            let reply = send_raw(p, b"GET /live/good.flv HTTP/1.1 extra words\r\nHost: x\r\n\r\n");
            assert_eq!(status_of(&reply), Some(400), "{:?}", String::from_utf8_lossy(&reply));
        }),
        ("binary garbage for a request line", |p| {
            let mut bytes = Rng::new(0xBAD).bytes(512);
            bytes.extend_from_slice(b"\r\n\r\n");
            let reply = send_raw(p, &bytes);
            assert!(reply.is_empty() || status_of(&reply) == Some(400), "{:?}", String::from_utf8_lossy(&reply));
        }),
        ("a 70 KiB header", |p| {
            let big = "a".repeat(70 * 1024);
            let req = format!("GET /live/good.flv HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
            let reply = send_raw(p, req.as_bytes());
            assert_eq!(status_of(&reply), Some(431), "{:?}", String::from_utf8_lossy(&reply));
        }),
        ("half a head, then nothing (slowloris)", |p| {
            let reply = send_raw(p, b"GET /live/good.flv HTTP/1.1\r\nHost: x\r\nUser-Ag");
            assert!(reply.is_empty() || status_of(&reply) == Some(408), "{:?}", String::from_utf8_lossy(&reply));
        }),
        ("a head dripped a byte at a time (slowloris)", |p| {
            let mut s = TcpStream::connect(stream_addr(p)).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
            let mut head = b"GET /live/good.flv HTTP/1.1\r\nHost: x\r\nX-Drip: ".to_vec();
            head.extend_from_slice(&[b'a'; 10_000]);
            let deadline = Instant::now() + HANG_GUARD;
            let mut reply = Vec::new();
            let mut tmp = [0u8; 4096];
            let mut closed = false;
            for b in head {
                if Instant::now() > deadline {
                    break;
                }
                let _ = s.write_all(&[b]);
                match s.read(&mut tmp) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => reply.extend_from_slice(&tmp[..n]),
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
            assert!(closed, "a dripped head kept the connection open for {HANG_GUARD:?}");
            assert!(reply.is_empty() || status_of(&reply) == Some(408), "{:?}", String::from_utf8_lossy(&reply));
        }),
        ("a client that says nothing", |p| {
            let reply = send_raw(p, b"");
            assert!(reply.is_empty(), "{:?}", String::from_utf8_lossy(&reply));
        }),
    ];
    for (what, case) in cases {
        eprintln!("bad input: {what}");
        case(&proxy);
        // Nothing else was disturbed.
        versions_answer(&proxy);
        flv_plays(&proxy, "good");
    }

    // Everything closed: the proxy is back to its descriptors from before.
    drop(publisher);
    drop(hb);
    fds.assert_back(&proxy, HANG_GUARD, "the broken origins and bad requests");
}

// ---------------------------------------------------------------------------
// 5. The HTTP API server.

#[test]
fn http_api_answers_versions_and_forwards_to_the_right_origin() {
    let proxy = Proxy::start(&[]);
    let api = api_addr(&proxy);

    let r = http("GET", &api, "/api/v1/versions", &[], b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json().unwrap();
    assert_eq!(v["signature"], "srs-proxy", "{v}");
    assert_eq!(v["version"], "0.1.0", "{v}");

    // Nothing registered yet: 503.
    let r = http("GET", &api, "/api/v1/summaries", &[], b"").unwrap();
    assert_json_error(&r, 503, "an API call with no origin");
    // WebRTC signalling (tests/rtc_e2e.rs): an offer without ICE credentials is the client's fault.
    let r = http("POST", &api, "/rtc/v1/whip/?app=live&stream=S", &[("Content-Type", "application/sdp")], b"v=0\r\n")
        .unwrap();
    assert_json_error(&r, 400, "WHIP");

    let origins = [nginx_origin("origin-1"), nginx_origin("origin-2")];
    let markers = ["origin-1", "origin-2"];
    let infos: Vec<OriginInfo> = origins.iter().map(|o| o.origin()).collect();
    let bodies: Vec<String> = origins.iter().zip(&infos).map(|(o, i)| body_with_api(i, o.http_port)).collect();
    let _hb = heartbeats(&proxy, &bodies);

    // A console call goes to some origin and its answer comes back as is
    // (the summaries, streams and clients lists are gathered from every
    // origin instead: tests/cluster_api.rs).
    let r = http("GET", &api, "/api/v1/vhosts/", &[], b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"), "{:?}", r.headers);
    let v = r.json().unwrap();
    assert!(markers.contains(&v["from"].as_str().unwrap_or("")), "{v}");
    let r = http("GET", &api, "/api/v1/summaries", &[], b"").unwrap();
    let v = r.json().unwrap();
    let asked: Vec<&str> = v["origins"].as_array().unwrap().iter().filter_map(|o| o["id"].as_str()).collect();
    assert_eq!(asked.len(), 2, "summaries ask every origin: {v}");

    // A call naming a stream goes to the origin the stream is pinned to.
    let _publisher = ffmpeg_publish(&proxy.rtmp_url("apistream"));
    let found = wait_holders(&origins, "apistream");
    assert_eq!(found.len(), 1, "on exactly one origin: {found:?}");
    assert_eq!(proxy.pinned_origin(&live_key("apistream")), Some(infos[found[0]].id()));
    // Eight calls: a random origin each time would match all eight with p = 1/256.
    for _ in 0..8 {
        let r = http("GET", &api, "/api/v1/streams/?app=live&stream=apistream", &[], b"").unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json().unwrap();
        assert_eq!(v["from"], markers[found[0]], "the stream is pinned to {}: {v}", infos[found[0]].id());
    }
    // It went through the proxy, with the client's address forwarded.
    // nginx writes its access line after the answer is out, so the last
    // line can trail the answer the test already read.
    let forwarded =
        || access_log(&origins[found[0]]).into_iter().filter(|a| a.uri.starts_with("/api/v1/streams/")).count();
    wait_until(secs(5), || forwarded() >= 8);
    assert!(forwarded() >= 8, "the pinned origin logged {} stream API calls", forwarded());
    assert!(
        access_log(&origins[found[0]]).iter().filter(|a| a.uri.starts_with("/api/")).all(|a| a.xff == "127.0.0.1"),
        "API calls reached the origin without X-Forwarded-For"
    );
    assert!(
        access_log(&origins[1 - found[0]]).iter().all(|a| !a.uri.starts_with("/api/v1/streams/")),
        "a stream API call went to the origin the stream is not on"
    );
}

// ---------------------------------------------------------------------------
// 6. CORS.

#[test]
fn options_on_media_paths_answers_cors() {
    let proxy = Proxy::start(&[]);
    for path in ["/live/S.flv", "/live/S.ts", "/live/S.m3u8", "/live/S-1.ts?spbhid=0-abcdefghij"] {
        let r = http(
            "OPTIONS",
            &stream_addr(&proxy),
            path,
            &[("Origin", "http://player.example"), ("Access-Control-Request-Method", "GET")],
            b"",
        )
        .unwrap_or_else(|e| panic!("OPTIONS {path}: {e}"));
        assert_eq!(r.status, 200, "OPTIONS {path}: {}", r.text());
        for h in ["access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers"] {
            let n = r.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(h)).count();
            assert_eq!(n, 1, "OPTIONS {path}: {h}: {:?}", r.headers);
        }
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "OPTIONS {path}");
    }
}
