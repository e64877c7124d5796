//! `udp`: WebRTC-shaped UDP load through a UDP relay. The loader plays both
//! ends: an origin that echoes every datagram back to its sender, and
//! `--sessions` clients, each on its own socket, sending RTP-sized
//! datagrams (`--size`, first byte 0x80) at `--pps` each and timing the
//! echo. Through srs-proxy (`--http-api`, `--system-api`) each session is
//! first signalled as a WHEP offer, with the loader's own origin API
//! answering (candidate: the echo port) and registered in place of the
//! bench origin (`--server`), and opened by a STUN check from its socket;
//! through nginx stream (or straight to the echo, `direct`) it just sends.
//! With `--ready-file F --go-file G` it writes F once every session is open
//! and starts sending when G exists (paired runs: two loaders, one per
//! relay, signalled apart and started together, with the relays' CPU read
//! between the two files).
//!
//! ```text
//! srs-load udp --to H:P --echo-port P --sessions N --pps R --size B --seconds S
//!              [--http-api H:P --system-api H:P --server NAME] [--threads T]
//!              [--ready-file F --go-file G]
//! ```
//! Prints {"sent","received","drops","bytes_sent","bytes_received","rtt":{ms}}.

use crate::hist::Hist;
use crate::Args;
use glommio::net::UdpSocket;
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn run(a: &Args) -> Result<serde_json::Value, String> {
    let to: SocketAddr = a.str("to")?.parse().map_err(|e| format!("--to: {e}"))?;
    let echo_port = a.count("echo-port", None)? as u16;
    let sessions = a.count("sessions", Some(100))?.max(1);
    let pps = a.num("pps", Some(50.0))?.max(1.0);
    let size = a.count("size", Some(1200))?.clamp(16, 65507);
    let seconds = a.dur("seconds", Some(10.0))?;
    let threads = a.threads()?;
    let stop = Arc::new(AtomicBool::new(false));
    let echo = std::net::UdpSocket::bind(("127.0.0.1", echo_port)).map_err(|e| format!("echo bind: {e}"))?;
    {
        let stop = stop.clone();
        std::thread::spawn(move || echo_loop(echo, stop));
    }
    let mut socks = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
        s.connect(to).map_err(|e| format!("connect {to}: {e}"))?;
        socks.push(s);
    }
    if let (Some(api), Some(sys)) = (a.opt_str("http-api"), a.opt_str("system-api")) {
        let server = a.opt_str("server").unwrap_or_else(|| "bench-udp".into());
        signal_all(&socks, &api, &sys, &server, echo_port)?;
    }
    if let (Some(ready), Some(go)) = (a.opt_str("ready-file"), a.opt_str("go-file")) {
        std::fs::write(&ready, "ready\n").map_err(|e| format!("--ready-file {ready}: {e}"))?;
        let t0 = Instant::now();
        while !std::path::Path::new(&go).exists() {
            if t0.elapsed() > Duration::from_secs(300) {
                return Err(format!("--go-file {go}: not there after 300 s"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // Sessions split over the executors, as raw descriptors (Send).
    let mut shares: Vec<Vec<i32>> = vec![Vec::new(); threads];
    for (i, s) in socks.into_iter().enumerate() {
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        shares[i % threads].push(s.into_raw_fd());
    }
    let epoch = Instant::now();
    let results = crate::run_threads(threads, false, move |i| {
        let fds = shares[i].clone();
        async move { load(fds, pps, size, seconds, epoch).await }
    })?;
    stop.store(true, Ordering::Relaxed);
    let (mut sent, mut recv, mut bs, mut br, mut hist) = (0u64, 0u64, 0u64, 0u64, Hist::new());
    for (s, r, b1, b2, h) in results {
        sent += s;
        recv += r;
        bs += b1;
        br += b2;
        hist.merge(&h);
    }
    Ok(json!({
        "mode": "udp", "sessions": sessions, "pps": pps, "size": size, "seconds": seconds.as_secs_f64(),
        "sent": sent, "received": recv, "drops": sent.saturating_sub(recv),
        "bytes_sent": bs, "bytes_received": br, "rtt": hist.json_ms(),
    }))
}

/// The origin: every datagram goes back to where it came from.
fn echo_loop(s: std::net::UdpSocket, stop: Arc<AtomicBool>) {
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut b = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        if let Ok((n, from)) = s.recv_from(&mut b) {
            let _ = s.send_to(&b[..n], from);
        }
    }
}

fn http(addr: &str, method: &str, path: &str, body: &str, ctype: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    let status = out.get(9..12).and_then(|c| c.parse().ok()).ok_or_else(|| format!("bad answer {out:?}"))?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// The origin's API: answers each offer `a=ice-ufrag:X` with ufrag `AX`
/// and a host candidate on the echo port.
fn api_loop(l: TcpListener, echo_port: u16) {
    for c in l.incoming() {
        let Ok(mut c) = c else { continue };
        let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let ufrag = loop {
            let Ok(n) = c.read(&mut chunk) else { break None };
            if n == 0 {
                break None;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if let Some(i) = text.find("a=ice-ufrag:") {
                if let Some(end) = text[i..].find("\r\n") {
                    break Some(text[i + 12..i + end].to_string());
                }
            }
        };
        let Some(u) = ufrag else { continue };
        let sdp = format!(
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:A{u}\r\na=ice-pwd:benchpasswordbenchpassword\r\na=candidate:1 1 udp 2130706431 127.0.0.1 {echo_port} typ host\r\n"
        );
        let resp = format!(
            "HTTP/1.1 201 Created\r\nContent-Type: application/sdp\r\nLocation: /rtc/v1/whep/?token={u}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{sdp}",
            sdp.len()
        );
        let _ = c.write_all(resp.as_bytes());
    }
}

/// Registers the loader's origin and opens every session: a WHEP offer
/// through the proxy, then STUN checks until one comes back (echoed).
fn signal_all(socks: &[std::net::UdpSocket], api: &str, sys: &str, server: &str, echo_port: u16) -> Result<(), String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let api_port = l.local_addr().map_err(|e| e.to_string())?.port();
    std::thread::spawn(move || api_loop(l, echo_port));
    let reg = format!(
        r#"{{"device_id":"bench-origin","ip":"127.0.0.1","server":"{server}","service":"s1","pid":"1","rtmp":["1"],"api":["{api_port}"],"rtc":["udp://0.0.0.0:{echo_port}"]}}"#
    );
    let (st, body) = http(sys, "POST", "/api/v1/srs/register", &reg, "application/json")?;
    if st != 200 {
        return Err(format!("register: {st} {body}"));
    }
    for (i, s) in socks.iter().enumerate() {
        let u = format!("b{i}x{}", fastrand::u32(..));
        let offer = format!(
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:{u}\r\na=ice-pwd:benchofferpasswordbench1\r\n"
        );
        let (st, body) = http(api, "POST", "/rtc/v1/whep/?app=live&stream=udp", &offer, "application/sdp")?;
        if st != 201 {
            return Err(format!("offer {i}: {st} {body}"));
        }
        let mut check = Vec::new();
        srs_protocols::stun::write_binding_request(&mut check, &[7; 12], &format!("A{u}:{u}"));
        s.set_read_timeout(Some(Duration::from_millis(100))).map_err(|e| e.to_string())?;
        let mut b = [0u8; 2048];
        let mut open = false;
        for _ in 0..50 {
            let _ = s.send(&check);
            if matches!(s.recv(&mut b), Ok(n) if b[..n] == check[..]) {
                open = true;
                break;
            }
        }
        if !open {
            return Err(format!("session {i}: no STUN echo through the relay"));
        }
        // Checks sent while the session opened come back too.
        while s.recv(&mut b).is_ok() {}
    }
    Ok(())
}

/// One executor's sessions: one pacing task sends a datagram on every
/// socket each 1/pps s; one receive task per socket times the echoes.
async fn load(fds: Vec<i32>, pps: f64, size: usize, seconds: Duration, epoch: Instant) -> (u64, u64, u64, u64, Hist) {
    // SAFETY: each descriptor is an open UDP socket handed to this executor alone.
    let socks: Vec<Rc<UdpSocket>> = fds.into_iter().map(|fd| Rc::new(unsafe { UdpSocket::from_raw_fd(fd) })).collect();
    let hist = Rc::new(std::cell::RefCell::new(Hist::new()));
    let got = Rc::new(std::cell::Cell::new((0u64, 0u64)));
    let mut rx = Vec::new();
    for s in &socks {
        let (s, hist, got) = (s.clone(), hist.clone(), got.clone());
        rx.push(glommio::spawn_local(async move {
            let mut b = vec![0u8; 65536];
            while let Ok(n) = s.recv(&mut b).await {
                if n < 16 {
                    continue;
                }
                let sent = u64::from_be_bytes(b[4..12].try_into().unwrap_or_default());
                let now = epoch.elapsed().as_micros() as u64;
                hist.borrow_mut().record(now.saturating_sub(sent));
                let (c, bytes) = got.get();
                got.set((c + 1, bytes + n as u64));
            }
        }));
    }
    let tick = Duration::from_secs_f64(1.0 / pps);
    let mut pkt = vec![0u8; size];
    pkt[0] = 0x80;
    pkt[1] = 96;
    let (mut sent, mut bytes) = (0u64, 0u64);
    let start = Instant::now();
    let mut next = start;
    while start.elapsed() < seconds {
        for s in &socks {
            let now = epoch.elapsed().as_micros() as u64;
            pkt[4..12].copy_from_slice(&now.to_be_bytes());
            if s.send(&pkt).await.is_ok() {
                sent += 1;
                bytes += size as u64;
            }
        }
        next += tick;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            glommio::timer::sleep(d).await;
        }
    }
    // The last echoes.
    glommio::timer::sleep(Duration::from_millis(500)).await;
    drop(rx);
    let (r, rb) = got.get();
    let h = hist.borrow().clone();
    (sent, r, bytes, rb, h)
}
