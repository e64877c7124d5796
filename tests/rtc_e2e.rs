//! WebRTC through the proxy with real peers: aiortc clients (WHIP publisher,
//! WHEP and legacy players) against an aiortc origin (tests/rtc/origin.py,
//! the stand-in for an SRS origin: no packaged program is a WHIP/WHEP
//! origin). Every ICE candidate stays on 127.0.0.1 at both ends; the origin
//! ignores the offer's candidates (as SRS does), so media can only flow
//! through the proxy's port. Plus raw-UDP sessions driven from the test
//! (64 KiB datagrams both ways, a client moving to another port) and the
//! port's drop paths.

mod common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn python() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".peers/py/bin/python");
    assert!(p.exists(), "{} missing: run scripts/install-peers.sh (aiortc, aiohttp)", p.display());
    p
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/rtc").join(name)
}

/// The aiortc origin, registered with `proxy`.
struct RtcOrigin {
    guard: ProcGuard,
    _dir: TempDir,
    api: u16,
}

impl RtcOrigin {
    fn start(proxy: &Proxy, id: &str) -> RtcOrigin {
        let dir = TempDir::new("rtc-origin");
        let api = free_port();
        let mut cmd = Command::new(python());
        cmd.arg(script("origin.py"))
            .args(["--api", &api.to_string(), "--register", &proxy.sys_api(), "--id", id])
            .current_dir(dir.path());
        let guard = ProcGuard::spawn("rtc-origin", cmd, dir.path());
        let o = RtcOrigin { guard, _dir: dir, api };
        let up = wait_until(Duration::from_secs(20), || {
            proxy.origins().iter().any(|v| v.to_string().contains(&api.to_string()))
        });
        if !up {
            o.guard.print_tails();
            panic!("the aiortc origin did not register");
        }
        o
    }

    fn stats(&self) -> Value {
        let r = http("GET", &format!("127.0.0.1:{}", self.api), "/stats", &[], b"").expect("origin /stats");
        r.json().unwrap()
    }
}

fn whip(proxy: &Proxy, stream: &str) -> String {
    format!("http://127.0.0.1:{}/rtc/v1/whip/?app=live&stream={stream}", proxy.http_api_port)
}

fn whep(proxy: &Proxy, stream: &str) -> String {
    format!("http://127.0.0.1:{}/rtc/v1/whep/?app=live&stream={stream}", proxy.http_api_port)
}

/// A WHIP publisher of a test picture and silence for `secs`; returns once
/// its answer came back.
fn publish(proxy: &Proxy, stream: &str, secs: u32) -> (ProcGuard, TempDir) {
    publish_with(&[&whip(proxy, stream), "--seconds", &secs.to_string()])
}

/// A publisher with client.py's `publish` arguments `args`.
fn publish_with(args: &[&str]) -> (ProcGuard, TempDir) {
    let dir = TempDir::new("rtc-pub");
    let mut cmd = Command::new(python());
    cmd.arg(script("client.py")).arg("publish").args(args);
    let g = ProcGuard::spawn("rtc-publisher", cmd, dir.path());
    let ok = wait_until(Duration::from_secs(20), || g.stdout().contains("\"published\": true"));
    if !ok {
        g.print_tails();
        panic!("the WHIP publisher got no answer");
    }
    (g, dir)
}

/// Runs client.py `play` with `args` and returns one JSON value per session.
fn play(args: &[&str], limit: Duration) -> Vec<Value> {
    let dir = TempDir::new("rtc-play");
    let mut cmd = Command::new(python());
    cmd.arg(script("client.py")).arg("play").args(args);
    let mut g = ProcGuard::spawn("rtc-player", cmd, dir.path());
    if g.wait_exit(limit).is_none() {
        g.print_tails();
        panic!("the player did not finish within {limit:?}");
    }
    let out: Vec<Value> = g.stdout().lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    if out.is_empty() {
        g.print_tails();
    }
    out
}

fn frames(v: &Value) -> u64 {
    v["frames"].as_u64().unwrap_or_else(|| panic!("no frame count: {v}"))
}

fn two_workers() -> Proxy {
    Proxy::start(&[("PROXY_WORKERS", "2"), ("PROXY_STATIC_FILES", "off")])
}

/// The proxy's log lines with `msg` whose `ufrag=` is `ufrag`.
fn lines_for(proxy: &Proxy, msg: &str, ufrag: &str) -> Vec<String> {
    proxy.log_lines_with(&[msg]).into_iter().filter(|l| log_field(l, "ufrag").as_deref() == Some(ufrag)).collect()
}

#[test]
fn whip_publish_and_whep_play_through_the_proxy() {
    let proxy = two_workers();
    let _origin = RtcOrigin::start(&proxy, "o1");
    let (_pub, _d) = publish(&proxy, "s1", 30);
    let out = play(&[&whep(&proxy, "s1"), "--seconds", "5"], Duration::from_secs(40));
    assert_eq!(out.len(), 1, "{out:?}");
    let p = &out[0];
    assert!(p.get("error").is_none(), "{p}");
    assert!(frames(p) >= 50, "decoded too few frames through the proxy: {p}");
    // Every candidate in the answer is the proxy's WebRTC port.
    let cands: Vec<&str> = p["candidates"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert!(!cands.is_empty(), "{p}");
    let want = format!(" 127.0.0.1 {} typ host", proxy.webrtc_port);
    assert!(cands.iter().all(|c| c.contains(&want)), "{cands:?} (want{want})");
    // The publisher's and the player's media sessions ran on the proxy.
    let key = "__defaultVhost__/live/s1";
    let starts = proxy.log_lines_with(&["rtc session start", key]);
    assert_eq!(starts.len(), 2, "{starts:?}");
    let ufrag = p["ufrag"].as_str().unwrap();
    assert_eq!(lines_for(&proxy, "rtc session start", ufrag).len(), 1);
}

#[test]
fn legacy_publish_and_play_api_through_the_proxy() {
    let proxy = two_workers();
    let _origin = RtcOrigin::start(&proxy, "o1");
    let publish_url = format!("http://127.0.0.1:{}/rtc/v1/publish/", proxy.http_api_port);
    let (_pub, _d) = publish_with(&[&publish_url, "--legacy", "webrtc://127.0.0.1/live/legacy", "--seconds", "30"]);
    let url = format!("http://127.0.0.1:{}/rtc/v1/play/", proxy.http_api_port);
    let stream_url = "webrtc://127.0.0.1/live/legacy";
    let out = play(&[&url, "--legacy", stream_url, "--seconds", "5"], Duration::from_secs(40));
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].get("error").is_none(), "{}", out[0]);
    assert!(frames(&out[0]) >= 50, "{}", out[0]);
    let ufrag = out[0]["ufrag"].as_str().unwrap();
    let answered = lines_for(&proxy, "rtc offer answered", ufrag);
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(log_field(&answered[0], "stream").as_deref(), Some("__defaultVhost__/live/legacy"));
    // Both sessions (the legacy publisher's and player's) went through the media port.
    let starts = proxy.log_lines_with(&["rtc session start", "__defaultVhost__/live/legacy"]);
    assert_eq!(starts.len(), 2, "{starts:?}");
}

#[test]
fn twenty_sessions_on_two_executors() {
    let proxy = two_workers();
    let _origin = RtcOrigin::start(&proxy, "o1");
    let (_pub, _d) = publish(&proxy, "many", 60);
    let out = play(&[&whep(&proxy, "many"), "--sessions", "20", "--seconds", "10"], Duration::from_secs(90));
    assert_eq!(out.len(), 20, "{out:?}");
    let mut split = 0;
    for p in &out {
        assert!(p.get("error").is_none(), "{p}");
        assert!(frames(p) >= 20, "a session decoded too few frames: {p}");
        let ufrag = p["ufrag"].as_str().unwrap();
        let sig = lines_for(&proxy, "rtc offer answered", ufrag);
        let media = lines_for(&proxy, "rtc session start", ufrag);
        assert_eq!((sig.len(), media.len()), (1, 1), "{sig:?} {media:?}");
        if log_field(&sig[0], "core") != log_field(&media[0], "core") {
            split += 1;
        }
    }
    // Signalling and media land on cores independently (the TCP and UDP
    // SO_REUSEPORT hashes): some sessions must have crossed.
    assert!(split > 0, "all 20 sessions had signalling and media on one core");
    eprintln!("{split} of 20 sessions had signalling and media on different cores");
}

#[test]
fn delete_through_the_proxy_ends_the_session_at_origin_and_proxy() {
    let proxy = two_workers();
    let origin = RtcOrigin::start(&proxy, "o1");
    let (_pub, _d) = publish(&proxy, "del", 30);
    let out =
        play(&[&whep(&proxy, "del"), "--seconds", "6", "--delete-after", "3", "--patch"], Duration::from_secs(40));
    let p = &out[0];
    // PATCH on the resource reaches its origin: a trickle gets its 204; an
    // ICE restart's answering fragment comes back with the origin's headers
    // and every candidate on the proxy's port.
    assert_eq!(p["patch_trickle_status"], 204, "{p}");
    assert_eq!(p["patch_restart_status"], 200, "{p}");
    assert_eq!(p["patch_restart_type"], "application/trickle-ice-sdpfrag", "{p}");
    assert_eq!(p["patch_restart_etag"], "\"restarted\"", "{p}");
    let frag = p["patch_restart_body"].as_str().unwrap();
    assert!(frag.contains("a=ice-ufrag:rstr"), "{frag}");
    let cands: Vec<&str> = frag.lines().filter(|l| l.starts_with("a=candidate:")).collect();
    assert!(!cands.is_empty(), "{frag}");
    let want = format!(" 127.0.0.1 {} typ host", proxy.webrtc_port);
    assert!(cands.iter().all(|c| c.contains(&want)), "{cands:?}");
    assert_eq!(p["delete_status"], 200, "{p}");
    assert!(p["frames_at_delete"].as_u64().unwrap() > 10, "{p}");
    let resource = p["resource"].as_str().unwrap();
    let token = resource.split("token=").nth(1).unwrap().split('&').next().unwrap();
    let st = origin.stats();
    assert!(st["deleted"].as_array().unwrap().iter().any(|t| t == token), "{st}");
    let ufrag = p["ufrag"].as_str().unwrap();
    let ends = lines_for(&proxy, "rtc session end", ufrag);
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(log_field(&ends[0], "reason").as_deref(), Some("deleted"), "{}", ends[0]);
    // The metrics say so too: a WHEP (play) session ended by its DELETE, its
    // datagrams counted; only the publisher's session is still held.
    let m = proxy.get("/metrics").text();
    let value = |series: &str| metric(&m, series);
    assert_eq!(
        value(r#"srs_proxy_sessions_ended_total{protocol="webrtc",role="play",reason="deleted",blame="none"}"#),
        1.0,
        "{m}"
    );
    assert!(value(r#"srs_proxy_udp_datagrams_total{protocol="webrtc",direction="to_client"}"#) > 10.0, "{m}");
    assert_eq!(value(r#"srs_proxy_udp_sessions{protocol="webrtc"}"#), 1.0, "{m}");
    // A second DELETE of the same resource is the origin's 404: the record is gone too.
    let path = &resource[resource.find("/rtc/").unwrap()..];
    let r = http("DELETE", &format!("127.0.0.1:{}", proxy.http_api_port), path, &[], b"").unwrap();
    assert_eq!(r.status, 404, "{}", r.text());
}

#[test]
fn client_address_change_mid_session_keeps_media() {
    let proxy = two_workers();
    let _origin = RtcOrigin::start(&proxy, "o1");
    let (_pub, _d) = publish(&proxy, "move", 30);
    let out = play(&[&whep(&proxy, "move"), "--seconds", "9", "--rebind-after", "3"], Duration::from_secs(40));
    let p = &out[0];
    assert!(p.get("error").is_none(), "{p}");
    assert!(p["frames_after_rebind"].as_u64().unwrap() >= 50, "media stopped after the move: {p}");
    let ufrag = p["ufrag"].as_str().unwrap();
    let new = format!("127.0.0.1:{}", p["new_port"]);
    // Either the new address landed on the same core (remapped there) or on
    // the other (the session and its origin socket moved).
    let changed = lines_for(&proxy, "client address changed", ufrag);
    let moved: Vec<String> =
        lines_for(&proxy, "rtc session start", ufrag).into_iter().filter(|l| l.contains("moved from core")).collect();
    let hit = changed.iter().any(|l| log_field(l, "to").as_deref() == Some(new.as_str()))
        || moved.iter().any(|l| log_field(l, "client").as_deref() == Some(new.as_str()));
    assert!(hit, "no address change to {new}: {changed:?} {moved:?}");
}

// ---------------------------------------------------------------------
// Raw UDP sessions: the test plays client and origin itself.

/// A misbehaving-or-not origin's HTTP API in a thread: answers every POST
/// with `status` and `body`, then stops after `n` requests.
fn fake_api(status: u16, body: String, n: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(n) {
            let Ok(mut s) = s else { continue };
            let mut buf = vec![0u8; 65536];
            let mut got = 0;
            // Head, then Content-Length bytes.
            loop {
                let n = s.read(&mut buf[got..]).unwrap_or(0);
                if n == 0 {
                    break;
                }
                got += n;
                let t = String::from_utf8_lossy(&buf[..got]).to_string();
                if let Some(h) = t.find("\r\n\r\n") {
                    let len = t[..h]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if got >= h + 4 + len {
                        break;
                    }
                }
            }
            let resp = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/sdp\r\nLocation: /rtc/v1/whep/?token=t1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes());
        }
    });
    port
}

fn register_fake(proxy: &Proxy, api: u16, rtc: u16) {
    let body = format!(
        r#"{{"device_id":"fake","ip":"127.0.0.1","server":"srv-fake","service":"svc","pid":"1","rtmp":["1"],"api":["{api}"],"rtc":["udp://0.0.0.0:{rtc}"]}}"#
    );
    assert_eq!(proxy.register(&body).status, 200);
}

fn offer(ufrag: &str) -> String {
    format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:{ufrag}\r\na=ice-pwd:offerpasswordoffer12345\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n")
}

fn stun(user: &str) -> Vec<u8> {
    let mut v = Vec::new();
    srs_protocols::stun::write_binding_request(&mut v, &[9; 12], user);
    v
}

fn recv(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut b = vec![0u8; 70000];
    let (n, from) = s.recv_from(&mut b).expect("datagram within the timeout");
    b.truncate(n);
    (b, from)
}

#[test]
fn raw_session_relays_64k_datagrams_both_ways_and_follows_the_client() {
    let proxy = two_workers();
    let origin_udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    origin_udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let media_port = origin_udp.local_addr().unwrap().port();
    let answer = format!(
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:ansR\r\na=ice-pwd:answerpassword12345678\r\na=candidate:1 1 udp 2130706431 10.9.9.9 {media_port} typ host\r\n"
    );
    let api = fake_api(201, answer, 1);
    register_fake(&proxy, api, media_port);
    let r = http(
        "POST",
        &format!("127.0.0.1:{}", proxy.http_api_port),
        "/rtc/v1/whep/?app=live&stream=raw",
        &[("Content-Type", "application/sdp")],
        offer("offR").as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/sdp"));
    assert_eq!(r.header("location"), Some("/rtc/v1/whep/?token=t1"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let text = r.text();
    assert!(
        text.contains(&format!("a=candidate:1 1 udp 2130706431 127.0.0.1 {} typ host\r\n", proxy.webrtc_port)),
        "{text}"
    );
    assert!(!text.contains("10.9.9.9"), "{text}");

    let proxy_udp: SocketAddr = format!("127.0.0.1:{}", proxy.webrtc_port).parse().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Garbage first: dropped, nothing reaches the origin.
    client.send_to(&[0x80; 100], proxy_udp).unwrap();
    client.send_to(&stun("ansR:offR")[..30], proxy_udp).unwrap();
    // The first STUN check opens the session.
    let check = stun("ansR:offR");
    let ok = wait_until(Duration::from_secs(5), || {
        client.send_to(&check, proxy_udp).unwrap();
        origin_udp.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let mut b = [0u8; 2048];
        matches!(origin_udp.recv_from(&mut b), Ok((n, _)) if b[..n] == check[..])
    });
    assert!(ok, "the STUN check never reached the origin");
    // Checks sent while the session was being set up may follow.
    let mut b = [0u8; 2048];
    while origin_udp.recv_from(&mut b).is_ok() {}
    origin_udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Client -> origin, the largest UDP payload, untouched.
    let big: Vec<u8> = (0..65507u32).map(|i| 0x80 | (i % 61) as u8).collect();
    client.send_to(&big, proxy_udp).unwrap();
    let (got, upstream) = recv(&origin_udp);
    assert_eq!(got.len(), big.len());
    assert!(got == big);
    // Origin -> client, from the proxy's shared port.
    let back: Vec<u8> = (0..65000u32).map(|i| (i % 251) as u8).collect();
    origin_udp.send_to(&back, upstream).unwrap();
    let (got, from) = recv(&client);
    assert_eq!(from, proxy_udp);
    assert!(got == back);

    // The client moves to other ports (some land on the other core): a
    // fresh check with the same ufrag keeps the session and the origin
    // still sees one 5-tuple.
    // Until both cases were seen: a move within a core and one to the other.
    let seen_both = || {
        let log = proxy.log();
        log.contains("rtc session client address changed") && log.contains("moved from core")
    };
    for round in 0..40 {
        if seen_both() {
            break;
        }
        let moved = UdpSocket::bind("127.0.0.1:0").unwrap();
        moved.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        moved.send_to(&check, proxy_udp).unwrap();
        let (got, up2) = recv(&origin_udp);
        assert_eq!(got, check, "round {round}");
        assert_eq!(up2, upstream, "round {round}: the origin saw a new 5-tuple");
        let payload = [0x90, round as u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        origin_udp.send_to(&payload, upstream).unwrap();
        let (got, from) = recv(&moved);
        assert_eq!((got.as_slice(), from), (&payload[..], proxy_udp), "round {round}");
        moved.send_to(&payload, proxy_udp).unwrap();
        assert_eq!(recv(&origin_udp).0, payload);
    }
    assert!(seen_both(), "{}", proxy.log());
    assert!(proxy.wait_log("rtp from unknown address", Duration::from_secs(2)), "{}", proxy.log());
}

/// Signals a WHEP session for `stream` through the proxy to a fake origin
/// whose media socket the test holds, and opens it with a STUN check from a
/// fresh client socket. Returns (client, origin media socket, the proxy's
/// upstream address as the origin sees it, the session's USERNAME).
fn open_raw_session(proxy: &Proxy, stream: &str) -> (UdpSocket, UdpSocket, SocketAddr, String) {
    let origin_udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let media_port = origin_udp.local_addr().unwrap().port();
    let (a, o) = (format!("a{media_port}"), format!("o{media_port}"));
    let answer = format!(
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:{a}\r\na=ice-pwd:answerpassword12345678\r\na=candidate:1 1 udp 2130706431 127.0.0.1 {media_port} typ host\r\n"
    );
    let api = fake_api(201, answer, 1);
    register_fake(proxy, api, media_port);
    let path = format!("/rtc/v1/whep/?app=live&stream={stream}");
    let r = http("POST", &format!("127.0.0.1:{}", proxy.http_api_port), &path, &[], offer(&o).as_bytes()).unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let user = format!("{a}:{o}");
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to: SocketAddr = format!("127.0.0.1:{}", proxy.webrtc_port).parse().unwrap();
    origin_udp.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let check = stun(&user);
    let mut up = None;
    let ok = wait_until(Duration::from_secs(5), || {
        client.send_to(&check, to).unwrap();
        let mut b = [0u8; 2048];
        match origin_udp.recv_from(&mut b) {
            Ok((n, from)) if b[..n] == check[..] => {
                up = Some(from);
                true
            }
            _ => false,
        }
    });
    assert!(ok, "the STUN check never reached the origin");
    (client, origin_udp, up.unwrap(), user)
}

#[test]
fn raw_sessions_end_when_idle_and_at_shutdown() {
    let mut proxy = Proxy::start(&[("PROXY_WORKERS", "2"), ("PROXY_WEBRTC_SESSION_TIMEOUT", "1s")]);
    let (_c1, _o1, _, idle) = open_raw_session(&proxy, "idle");
    let ended = wait_until(Duration::from_secs(5), || !lines_for(&proxy, "rtc session end", &idle).is_empty());
    assert!(ended, "no end line for the silent session: {}", proxy.log());
    let line = &lines_for(&proxy, "rtc session end", &idle)[0];
    assert_eq!(log_field(line, "reason").as_deref(), Some("idle"), "{line}");
    // A session that keeps talking is kept past the timeout.
    let (c2, o2, _, busy) = open_raw_session(&proxy, "busy");
    let to: SocketAddr = format!("127.0.0.1:{}", proxy.webrtc_port).parse().unwrap();
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        c2.send_to(&[0x80; 40], to).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(lines_for(&proxy, "rtc session end", &busy).is_empty(), "{}", proxy.log());
    let mut b = [0u8; 64];
    o2.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert!(o2.recv_from(&mut b).is_ok());
    // SIGTERM ends it, with its line.
    proxy.guard.signal(libc::SIGTERM);
    assert!(proxy.guard.wait_exit(Duration::from_secs(15)).is_some());
    let ends = lines_for(&proxy, "rtc session end", &busy);
    assert_eq!(ends.len(), 1, "{}", proxy.log());
    assert_eq!(log_field(&ends[0], "reason").as_deref(), Some("shutdown"), "{}", ends[0]);
}

#[test]
fn answer_without_ice_credentials_is_a_502_with_json() {
    let proxy = two_workers();
    let api = fake_api(
        201,
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=candidate:1 1 udp 1 127.0.0.1 5 typ host\r\n".into(),
        1,
    );
    register_fake(&proxy, api, 5);
    let r = http(
        "POST",
        &format!("127.0.0.1:{}", proxy.http_api_port),
        "/rtc/v1/whip/?app=live&stream=bad",
        &[("Content-Type", "application/sdp")],
        offer("offB").as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    let v = r.json().unwrap();
    assert_eq!(v["code"], 502);
    assert!(v["message"].as_str().unwrap().contains("ice-ufrag"), "{v}");
    // An offer without credentials is the client's fault: 400.
    let r = http(
        "POST",
        &format!("127.0.0.1:{}", proxy.http_api_port),
        "/rtc/v1/whip/?app=live&stream=bad",
        &[],
        b"v=0\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    // CORS preflight.
    let r = http("OPTIONS", &format!("127.0.0.1:{}", proxy.http_api_port), "/rtc/v1/whep/", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-methods"), Some("*"));
}

/// PROXY_WEBRTC_CANDIDATE names the answer's candidates, one per address,
/// on the WebRTC port.
#[test]
fn candidate_variable_names_the_answers_candidates() {
    let proxy = Proxy::start(&[("PROXY_WORKERS", "2"), ("PROXY_WEBRTC_CANDIDATE", "192.0.2.7,2001:db8::1")]);
    let answer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:ansC\r\na=ice-pwd:answerpassword12345678\r\n\
a=candidate:1 1 udp 2130706431 10.1.1.1 8000 typ host\r\na=candidate:2 1 tcp 1 10.1.1.1 8000 typ host tcptype passive\r\n";
    let api = fake_api(201, answer.into(), 1);
    register_fake(&proxy, api, 8000);
    let r = http(
        "POST",
        &format!("127.0.0.1:{}", proxy.http_api_port),
        "/rtc/v1/whip/live/cand",
        &[("Content-Type", "application/sdp")],
        offer("offC").as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let cands: Vec<String> = r.text().lines().filter(|l| l.starts_with("a=candidate:")).map(String::from).collect();
    let port = proxy.webrtc_port;
    assert_eq!(
        cands,
        [
            format!("a=candidate:1 1 udp 2130706431 192.0.2.7 {port} typ host"),
            format!("a=candidate:2 1 udp 2130706175 2001:db8::1 {port} typ host"),
        ]
    );
    // The path form named the stream.
    assert!(proxy.wait_log("stream=__defaultVhost__/live/cand", Duration::from_secs(2)), "{}", proxy.log());
}

/// A WebRTC port someone else holds stops startup with a clear error.
#[test]
fn webrtc_port_in_use_stops_startup() {
    let held = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let mut p = Proxy::spawn(ProxyOpts::new().env("PROXY_WEBRTC_SERVER", &format!("127.0.0.1:{port}")));
    let st = p.guard.wait_exit(Duration::from_secs(15)).expect("the proxy should exit");
    assert!(!st.success());
    let err = p.log();
    assert!(err.contains(&format!("PROXY_WEBRTC_SERVER=127.0.0.1:{port}: cannot listen")), "{err}");
}

/// Anything on the port from strangers: dropped by reason, the proxy lives
/// and still answers.
#[test]
fn garbage_on_the_webrtc_port_is_dropped_and_counted() {
    let proxy = two_workers();
    let to: SocketAddr = format!("127.0.0.1:{}", proxy.webrtc_port).parse().unwrap();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rng = 0x1234_5678_u32;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        rng
    };
    let mut wrong_len = stun("a:b");
    wrong_len[3] = 40;
    // The USERNAME's length runs into the padding and past the end.
    let mut bad_pad = stun("a:b");
    bad_pad[23] = 9;
    let vectors: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        stun("a:b")[..19].to_vec(),
        wrong_len,
        bad_pad,
        stun("nobody:knows"),
        vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        vec![0x80; 1200],
        vec![0x47; 65507],
    ];
    for v in &vectors {
        s.send_to(v, to).unwrap();
    }
    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed() < Duration::from_millis(500) {
        let n = (next() % 1400) as usize;
        let pkt: Vec<u8> = (0..n).map(|_| next() as u8).collect();
        let _ = s.send_to(&pkt, to);
        sent += 1;
    }
    assert!(sent > 100);
    // Each core logs at most once a second, with its totals by reason so
    // far: send the vectors again each second until every reason shows.
    let reasons = [
        "not webrtc",
        "dtls from unknown address",
        "rtp from unknown address",
        "stun truncated",
        "stun length mismatch",
        "stun attribute overrun",
        "unknown ufrag",
    ];
    let all_seen = wait_until(Duration::from_secs(15), || {
        for v in &vectors {
            s.send_to(v, to).unwrap();
        }
        std::thread::sleep(Duration::from_millis(1100));
        let log = proxy.log();
        reasons.iter().all(|r| log.contains(&format!("{r}=")))
    });
    let log = proxy.log();
    assert!(all_seen, "not every reason was counted: {log}");
    assert!(!log.contains("panicked"), "{log}");
    let r = http("GET", &format!("127.0.0.1:{}", proxy.http_api_port), "/api/v1/versions", &[], b"").unwrap();
    assert_eq!(r.status, 200);
}

/// Headless Chromium publishes its fake camera with players/whip.html and
/// plays it back with players/whep.html, both through the proxy, inside a
/// network namespace with only loopback (tests/browser/webrtc-netns.sh).
#[test]
fn browser_publishes_with_whip_html_and_plays_with_whep_html() {
    require_browser();
    let dir = TempDir::new("rtc-browser");
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new("unshare");
    cmd.arg("-n")
        .arg("sh")
        .arg(repo.join("tests/browser/webrtc-netns.sh"))
        .arg(proxy_bin())
        .arg(python())
        .arg(&repo)
        .arg(dir.path())
        .current_dir(repo.join("tests/browser"));
    let mut g = ProcGuard::spawn("webrtc-browser", cmd, dir.path());
    g.add_log(dir.join("proxy.log"));
    g.add_log(dir.join("origin.log"));
    if g.wait_exit(Duration::from_secs(150)).is_none() {
        g.print_tails();
        panic!("the browser check did not finish");
    }
    let line = g.stdout().lines().last().unwrap_or_default().to_string();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        g.print_tails();
        panic!("no JSON from webrtc.mjs ({e}): {line:?}")
    });
    if v["ok"] != true {
        g.print_tails();
        panic!("the WHEP page did not play through the proxy: {v}");
    }
    assert!(v["player"]["framesDecoded"].as_u64().unwrap() >= 30, "{v}");
    assert!(v["player"]["currentTime"].as_f64().unwrap() > v["firstTime"].as_f64().unwrap(), "{v}");
    let log = std::fs::read_to_string(dir.join("proxy.log")).unwrap();
    let starts =
        log.lines().filter(|l| l.contains("rtc session start") && l.contains("__defaultVhost__/live/cam")).count();
    assert_eq!(starts, 2, "{log}");
}

/// Two proxies sharing a redis-server (the Redis balancer): a player
/// signals through proxy A, and its media goes to proxy B's WebRTC port (a
/// UDP balancer in front of both may do that). B finds the session by the
/// ufrag A wrote to Redis (B§5.3 `srs-proxy-ufrag:`), relays it to the
/// origin that answered, and the frames decode. A publisher does the same
/// the other way round.
#[test]
fn a_session_signalled_through_one_proxy_is_found_by_another_through_redis() {
    let dir = TempDir::new("rtc-redis");
    let port = free_port();
    let mut cmd = Command::new("redis-server");
    cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir.path());
    let _redis = ProcGuard::spawn("redis-server", cmd, dir.path());
    assert!(wait_port(port, Duration::from_secs(10)), "redis-server did not listen");
    let env = [
        ("PROXY_WORKERS", "2"),
        ("PROXY_STATIC_FILES", "off"),
        ("PROXY_LOAD_BALANCER_TYPE", "redis"),
        ("PROXY_REDIS_PORT", &port.to_string()),
    ];
    let (a, b) = (Proxy::start(&env), Proxy::start(&env));
    // The origin registers on A only; B sees it through Redis.
    let _origin = RtcOrigin::start(&a, "o1");

    let b_port = b.webrtc_port.to_string();
    let (_pub, _d) =
        publish_with(&[&whip(&b, "across"), "--seconds", "30", "--media-port", &a.webrtc_port.to_string()]);
    let out = play(&[&whep(&a, "across"), "--seconds", "6", "--media-port", &b_port], Duration::from_secs(40));
    let p = &out[0];
    assert!(frames(p) > 20, "frames decoded with media through the other proxy: {p}");
    let ufrag = p["ufrag"].as_str().unwrap();
    assert!(
        a.log_lines_with(&["rtc offer answered"]).iter().any(|l| log_field(l, "ufrag").as_deref() == Some(ufrag)),
        "the offer went through A"
    );
    let found = lines_for(&b, "found in redis", ufrag);
    assert_eq!(found.len(), 1, "B found the session in Redis once: {found:?}");
    assert!(!lines_for(&b, "rtc session start", ufrag).is_empty(), "B relayed the session");
    assert!(lines_for(&a, "rtc session start", ufrag).is_empty(), "A never saw its media");
    // What B read: the record of B§5.3, with srs-proxy's extra fields.
    let key = format!("srs-proxy-ufrag:{ufrag}");
    let rec = Command::new("redis-cli").args(["-p", &port.to_string(), "GET", &key]).output().unwrap();
    let rec: Value = serde_json::from_slice(&rec.stdout).unwrap_or_else(|e| panic!("{key}: {e}"));
    assert_eq!(rec["stream_url"], "__defaultVhost__/live/across", "{rec}");
    assert_eq!(rec["ufrag"], ufrag, "{rec}");
    assert_eq!(rec["role"], "play", "{rec}");
}
