//! SRT through srs-proxy, end to end, with real peers: FFmpeg (libsrt) and
//! srt-live-transmit as callers, srt-live-transmit in listener mode as the
//! SRT origin, registered through the register API with an `srt` endpoint.
//! The one in-test network element is [`Rebinder`], a UDP forwarder between
//! a caller and the proxy that can move its outbound socket to a new local
//! port mid-session: what a NAT rebinding does to a real client (no real
//! program changes its source port on demand).

mod common;

use common::*;
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const PASS: &str = "correct-horse-battery";

/// An SRT origin: `srt-live-transmit srt://:PORT?mode=listener file://con`,
/// what it receives going to its stdout file.
struct SltOrigin {
    guard: ProcGuard,
    _dir: TempDir,
    port: u16,
    name: String,
}

impl SltOrigin {
    fn start(name: &str, query: &str) -> SltOrigin {
        let dir = TempDir::new("slt-origin");
        let port = free_port();
        let mut cmd = Command::new("srt-live-transmit");
        cmd.arg("-q").arg(format!("srt://:{port}?mode=listener{query}")).arg("file://con");
        let guard = ProcGuard::spawn("slt-origin", cmd, dir.path());
        thread::sleep(Duration::from_millis(300));
        SltOrigin { guard, _dir: dir, port, name: name.into() }
    }

    fn got(&self) -> Vec<u8> {
        fs::read(self.guard.stdout_path()).unwrap_or_default()
    }

    fn got_path(&self) -> PathBuf {
        self.guard.stdout_path()
    }

    fn register_body(&self) -> String {
        srt_origin_body(&self.name, self.port)
    }

    fn id(&self) -> String {
        format!("{}-svc-1", self.name)
    }
}

/// A register body for an origin whose SRT endpoint is `port`.
fn srt_origin_body(name: &str, port: u16) -> String {
    serde_json::json!({
        "device_id": name, "ip": "127.0.0.1", "server": name, "service": "svc", "pid": "1",
        "rtmp": ["19350"], "srt": [format!("udp://0.0.0.0:{port}")],
    })
    .to_string()
}

/// An SRT origin that serves a live TS to one caller at a time: FFmpeg
/// pushes the clip as MPEG-TS over UDP into `srt-live-transmit udp://:U
/// srt://:P?mode=listener`.
struct SltSource {
    _feed: Proc,
    origin: SltOrigin,
}

impl SltSource {
    fn start(name: &str) -> SltSource {
        let dir = TempDir::new("slt-source");
        let (udp, port) = (free_port(), free_port());
        let mut cmd = Command::new("srt-live-transmit");
        cmd.arg("-q").arg(format!("udp://127.0.0.1:{udp}")).arg(format!("srt://:{port}?mode=listener"));
        let guard = ProcGuard::spawn("slt-source", cmd, dir.path());
        let feed = ffmpeg_ts(&format!("udp://127.0.0.1:{udp}?pkt_size=1316"), "", None);
        thread::sleep(Duration::from_millis(300));
        SltSource { _feed: feed, origin: SltOrigin { guard, _dir: dir, port, name: name.into() } }
    }
}

/// FFmpeg pushing the clip (looped) as MPEG-TS to `url`, with `service` as
/// the TS service name, for `dur` or until stopped.
/// A process and the directory of its logs (dropped in that order).
struct Proc {
    guard: ProcGuard,
    _dir: TempDir,
}

impl std::ops::Deref for Proc {
    type Target = ProcGuard;
    fn deref(&self) -> &ProcGuard {
        &self.guard
    }
}

impl std::ops::DerefMut for Proc {
    fn deref_mut(&mut self) -> &mut ProcGuard {
        &mut self.guard
    }
}

fn ffmpeg_ts(url: &str, service: &str, dur: Option<u64>) -> Proc {
    let dir = TempDir::new("ffmpeg-srt");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1", "-i"])
        .arg(test_clip())
        .args(["-c", "copy"]);
    if let Some(d) = dur {
        cmd.args(["-t", &d.to_string()]);
    }
    if !service.is_empty() {
        cmd.args(["-metadata", &format!("service_name={service}")]);
    }
    cmd.args(["-f", "mpegts", url]);
    Proc { guard: ProcGuard::spawn("ffmpeg-srt", cmd, dir.path()), _dir: dir }
}

fn srt_url(port: u16, sid: &str, extra: &str) -> String {
    format!("srt://127.0.0.1:{port}?streamid={sid}{extra}")
}

fn publish_sid(stream: &str) -> String {
    format!("#!::r=live/{stream},m=publish")
}

/// ffprobe on a file (`what` names it in the failure): H.264 320x240 + AAC.
fn assert_clip_file(path: &std::path::Path, what: &str) {
    eprintln!("checking {what}");
    probe_clip(&path.display().to_string(), secs(20));
}

fn session_lines(proxy: &Proxy, what: &str, stream: &str) -> Vec<String> {
    let key = live_key(stream);
    proxy.log_lines_with(&[what]).into_iter().filter(|l| log_field(l, "stream").as_deref() == Some(&key)).collect()
}

fn wait_line(proxy: &Proxy, what: &str, stream: &str, timeout: Duration) -> String {
    let mut line = None;
    wait_until(timeout, || {
        line = session_lines(proxy, what, stream).into_iter().next();
        line.is_some()
    });
    line.unwrap_or_else(|| panic!("no {what:?} line for {stream} in the proxy log"))
}

/// The length of `path` once it stopped growing for a second (the origin
/// writes what it received in blocks).
fn settled_len(path: &std::path::Path) -> usize {
    let len = || fs::metadata(path).map(|m| m.len() as usize).unwrap_or(0);
    let mut last = len();
    loop {
        thread::sleep(Duration::from_secs(1));
        let now = len();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Waits until `path` has at least `n` bytes.
fn wait_bytes(path: &std::path::Path, n: u64, timeout: Duration) -> bool {
    wait_until(timeout, || fs::metadata(path).map(|m| m.len() >= n).unwrap_or(false))
}

#[test]
fn ffmpeg_publishes_through_proxy_to_an_srt_origin() {
    let proxy = Proxy::start(&[]);
    let origin = SltOrigin::start("o1", "");
    let _hb = Heartbeat::start(&proxy.sys_api(), origin.register_body());

    let mut publisher = ffmpeg_ts(&srt_url(proxy.srt_port, &publish_sid("livestream"), ""), "", Some(4));
    let st = publisher.wait_exit(secs(30)).expect("ffmpeg still publishing after 30 s");
    assert!(st.success(), "ffmpeg publish through the proxy failed: {}", publisher.stderr());
    assert_clip_file(&origin.got_path(), "what the SRT origin received");

    let start = wait_line(&proxy, "srt session started", "livestream", secs(5));
    assert_eq!(log_field(&start, "origin").as_deref(), Some(origin.id().as_str()));
    assert_eq!(log_field(&start, "mode").as_deref(), Some("publish"));
    let end = wait_line(&proxy, "srt session ended", "livestream", secs(10));
    assert_eq!(log_field(&end, "reason").as_deref(), Some("client sent shutdown"), "{end}");
    assert!(field_u64(&end, "bytes_in") >= origin.got().len() as u64, "{end}");
    assert_eq!(proxy.pinned_origin(&live_key("livestream")), Some(origin.id()));

    // The ended session is in the metrics: its datagrams, bytes and why it ended.
    let m = proxy.get("/metrics").text();
    let value = |series: &str| metric(&m, series);
    assert!(value(r#"srs_proxy_udp_datagrams_total{protocol="srt",direction="to_origin"}"#) > 100.0, "{m}");
    assert!(
        value(r#"srs_proxy_relayed_bytes_total{protocol="srt",direction="to_origin"}"#) >= origin.got().len() as f64,
        "{m}"
    );
    assert_eq!(
        value(
            r#"srs_proxy_sessions_ended_total{protocol="srt",role="publish",reason="client sent shutdown",blame="none"}"#
        ),
        1.0,
        "{m}"
    );
    assert_eq!(value(r#"srs_proxy_udp_sessions{protocol="srt"}"#), 0.0, "{m}");
}

#[test]
fn players_get_ts_through_proxy_with_ffmpeg_and_srt_live_transmit() {
    let proxy = Proxy::start(&[]);
    let source = SltSource::start("src");
    let _hb = Heartbeat::start(&proxy.sys_api(), source.origin.register_body());
    let url = srt_url(proxy.srt_port, "#!::r=live/show,m=request", "");

    // FFmpeg plays 3 s into a file.
    let dir = TempDir::new("srt-play");
    let out = dir.join("ffmpeg.ts");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i", &url, "-t", "3", "-c", "copy", "-f", "mpegts"])
        .arg(&out);
    let mut player = ProcGuard::spawn("ffmpeg-play", cmd, dir.path());
    let st = player.wait_exit(secs(30)).expect("ffmpeg player still running after 30 s");
    assert!(st.success(), "ffmpeg play through the proxy failed: {}", player.stderr());
    assert_clip_file(&out, "what FFmpeg played through the proxy");
    drop(player);
    let end = wait_line(&proxy, "srt session ended", "show", secs(10));
    assert_eq!(log_field(&end, "mode").as_deref(), Some("request"));

    // srt-live-transmit plays next (the source listener takes one caller at a time).
    let mut cmd = Command::new("srt-live-transmit");
    cmd.args(["-q", &url, "file://con"]);
    let mut slt = ProcGuard::spawn("slt-play", cmd, dir.path());
    assert!(wait_bytes(&slt.stdout_path(), 300_000, secs(20)), "srt-live-transmit got too little: {}", slt.stderr());
    slt.stop();
    assert_clip_file(&slt.stdout_path(), "what srt-live-transmit played through the proxy");
    assert_eq!(session_lines(&proxy, "srt session started", "show").len(), 2);
}

#[test]
fn passphrase_aes256_passes_through_and_a_wrong_one_is_rejected() {
    let proxy = Proxy::start(&[]);
    let origin = SltOrigin::start("enc", &format!("&passphrase={PASS}&pbkeylen=32"));
    let _hb = Heartbeat::start(&proxy.sys_api(), origin.register_body());

    let good = format!("&passphrase={PASS}&pbkeylen=32");
    let mut publisher = ffmpeg_ts(&srt_url(proxy.srt_port, &publish_sid("secret"), &good), "", Some(4));
    let st = publisher.wait_exit(secs(30)).expect("encrypted publish still running after 30 s");
    assert!(st.success(), "encrypted publish failed: {}", publisher.stderr());
    assert_clip_file(&origin.got_path(), "what the encrypting origin decrypted");
    drop(publisher);
    wait_line(&proxy, "srt session ended", "secret", secs(10));
    let received = settled_len(&origin.got_path());
    assert!(received > 0);

    let bad = "&passphrase=not-the-right-one&pbkeylen=32";
    let mut wrong = ffmpeg_ts(&srt_url(proxy.srt_port, &publish_sid("secret"), bad), "", Some(4));
    let st = wrong.wait_exit(secs(20)).expect("a wrong passphrase must not hang the caller");
    assert!(!st.success(), "a wrong passphrase was accepted");
    let rej = wait_line(&proxy, "srt session rejected", "secret", secs(5));
    assert!(rej.contains("code 1010"), "the origin's BADSECRET rejection reaches the client: {rej}");
    // srt-live-transmit writes stdout in 4 KiB blocks: the first session's
    // last block may come out only now, so the check is that no session
    // was made and the origin itself refused the key.
    assert_eq!(session_lines(&proxy, "srt session started", "secret").len(), 1, "no session with the wrong key");
    assert!(origin.guard.stderr().contains("BADSECRET"), "the origin refused the key: {}", origin.guard.stderr());
}

/// Forwards datagrams between one caller and the proxy; `rebind` moves its
/// proxy-side socket to a fresh local port, as a NAT rebinding would.
struct Rebinder {
    port: u16,
    stop: Arc<AtomicBool>,
    rebinds: Arc<AtomicUsize>,
    out: Arc<Mutex<Arc<UdpSocket>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Rebinder {
    fn start(proxy: SocketAddr) -> Rebinder {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        front.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let port = front.local_addr().unwrap().port();
        let out = Arc::new(Mutex::new(Arc::new(Self::outbound(proxy))));
        let caller = Arc::new(Mutex::new(None::<SocketAddr>));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        {
            let (front, out, caller, stop) = (front.clone(), out.clone(), caller.clone(), stop.clone());
            threads.push(thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::SeqCst) {
                    if let Ok((n, from)) = front.recv_from(&mut buf) {
                        *caller.lock().unwrap() = Some(from);
                        let sock = out.lock().unwrap().clone();
                        let _ = sock.send(&buf[..n]);
                    }
                }
            }));
        }
        {
            let (out, stop) = (out.clone(), stop.clone());
            threads.push(thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::SeqCst) {
                    // Whatever socket is current: the old one's late packets are dropped, as by a NAT.
                    let sock = out.lock().unwrap().clone();
                    if let Ok(n) = sock.recv(&mut buf) {
                        if let Some(c) = *caller.lock().unwrap() {
                            let _ = front.send_to(&buf[..n], c);
                        }
                    }
                }
            }));
        }
        Rebinder { port, stop, rebinds: Arc::new(AtomicUsize::new(0)), out, threads }
    }

    fn outbound(proxy: SocketAddr) -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.connect(proxy).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        s
    }

    /// Moves to a new local port; returns it.
    fn rebind(&self) -> u16 {
        let mut cur = self.out.lock().unwrap();
        let proxy = cur.peer_addr().unwrap();
        *cur = Arc::new(Self::outbound(proxy));
        self.rebinds.fetch_add(1, Ordering::SeqCst);
        cur.local_addr().unwrap().port()
    }
}

impl Drop for Rebinder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn proxy_srt(proxy: &Proxy) -> SocketAddr {
    format!("127.0.0.1:{}", proxy.srt_port).parse().unwrap()
}

#[test]
fn a_client_that_changes_address_keeps_its_session() {
    let proxy = Proxy::start(&[]);
    let origin = SltOrigin::start("mv", "");
    let _hb = Heartbeat::start(&proxy.sys_api(), origin.register_body());
    let fwd = Rebinder::start(proxy_srt(&proxy));

    let mut publisher = ffmpeg_ts(&srt_url(fwd.port, &publish_sid("moving"), ""), "", None);
    wait_line(&proxy, "srt session started", "moving", secs(10));
    let mut seen = origin.got().len() as u64;
    for _ in 0..4 {
        assert!(wait_bytes(&origin.got_path(), seen + 50_000, secs(10)), "no packets after a rebind");
        fwd.rebind();
        seen = origin.got().len() as u64;
    }
    assert!(wait_bytes(&origin.got_path(), seen + 50_000, secs(10)), "no packets after the last rebind");
    publisher.stop();
    let end = wait_line(&proxy, "srt session ended", "moving", secs(10));
    assert_eq!(session_lines(&proxy, "srt session started", "moving").len(), 1, "one session throughout");
    assert_eq!(log_field(&end, "reason").as_deref(), Some("client sent shutdown"), "{end}");
    let changes = proxy.log_lines_with(&["srt client changed address"]).len()
        + proxy.log_lines_with(&["srt session moved"]).len();
    assert!(changes >= 4, "the proxy followed {changes} of 4 address changes:\n{}", proxy.log());
    assert_clip_file(&origin.got_path(), "what the origin got across the address changes");
}

#[test]
fn ten_sessions_on_two_cores_stay_separate_and_follow_their_clients_across_cores() {
    // One srt-live-transmit listener per session (it takes one caller), all
    // behind one registered origin whose SRT endpoint is registered again
    // before each session: every stream picks that origin, at the address
    // of the moment, so session i reaches listener i.
    let proxy = Proxy::start(&[]);
    let mut origins = Vec::new();
    let mut publishers = Vec::new();
    let mut fwds = Vec::new();
    for i in 0..10 {
        let o = SltOrigin::start(&format!("o{i}"), "");
        assert_eq!(proxy.register(&srt_origin_body("multi", o.port)).status, 200);
        let fwd = Rebinder::start(proxy_srt(&proxy));
        let stream = format!("many{i}");
        publishers.push(ffmpeg_ts(&srt_url(fwd.port, &publish_sid(&stream), ""), &format!("svc-{i}-x"), None));
        let start = wait_line(&proxy, "srt session started", &stream, secs(10));
        let at = format!("127.0.0.1:{}", o.port);
        assert_eq!(log_field(&start, "origin_addr").as_deref(), Some(at.as_str()), "{start}");
        origins.push(o);
        fwds.push(fwd);
    }
    // Every client moves three times; each move lands on either core.
    for round in 0..3 {
        for (i, o) in origins.iter().enumerate() {
            let n = o.got().len() as u64;
            assert!(wait_bytes(&o.got_path(), n + 20_000, secs(10)), "session {i} stalled in round {round}");
        }
        for f in &fwds {
            f.rebind();
        }
    }
    for (i, o) in origins.iter().enumerate() {
        let n = o.got().len() as u64;
        assert!(wait_bytes(&o.got_path(), n + 20_000, secs(10)), "session {i} stalled after the last move");
    }
    for p in &mut publishers {
        p.stop();
    }
    let mut crossed = 0;
    for (i, o) in origins.iter().enumerate() {
        let got = o.got();
        let mine = format!("svc-{i}-x");
        assert!(find(&got, mine.as_bytes()), "origin {i} never got its own stream");
        for j in (0..10).filter(|&j| j != i) {
            assert!(!find(&got, format!("svc-{j}-x").as_bytes()), "origin {i} got packets of session {j}");
        }
        assert_clip_file(&o.got_path(), &format!("origin {i}"));
        let stream = format!("many{i}");
        assert_eq!(session_lines(&proxy, "srt session started", &stream).len(), 1);
        let end = wait_line(&proxy, "srt session ended", &stream, secs(10));
        assert_eq!(log_field(&end, "reason").as_deref(), Some("client sent shutdown"), "{end}");
        if log_field(&end, "core") != log_field(&end, "hs_core") {
            crossed += 1;
        }
    }
    let moved = proxy.log_lines_with(&["srt session moved"]).len();
    assert!(crossed > 0 && moved > 0, "no session ended on another core than its handshake's ({moved} moves)");
    eprintln!("{crossed} of 10 sessions ended on another core than their handshake's; {moved} cross-core moves");
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn an_origin_that_never_answers_gets_the_client_rejected_while_others_go_on() {
    let proxy = Proxy::start(&[]);
    let good = SltOrigin::start("good", "");
    assert_eq!(proxy.register(&srt_origin_body("only", good.port)).status, 200);
    let mut publisher = ffmpeg_ts(&srt_url(proxy.srt_port, &publish_sid("alive"), ""), "", None);
    wait_line(&proxy, "srt session started", "alive", secs(10));

    // The one origin now announces an SRT port where nothing answers: a
    // bound socket that never reads. The live session keeps its relay.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(proxy.register(&srt_origin_body("only", silent.local_addr().unwrap().port())).status, 200);

    let before = good.got().len() as u64;
    let t0 = Instant::now();
    let mut doomed = ffmpeg_ts(&srt_url(proxy.srt_port, &publish_sid("void"), ""), "", Some(4));
    let st = doomed.wait_exit(secs(20)).expect("the caller of a dead origin hangs");
    let waited = t0.elapsed();
    assert!(!st.success(), "publishing to a dead origin succeeded");
    let rej = wait_line(&proxy, "srt session rejected", "void", secs(5));
    assert!(rej.contains("did not answer"), "{rej}");
    assert!(wait_bytes(&good.got_path(), before + 100_000, secs(10)), "the live session stalled");
    publisher.stop();
    let end = wait_line(&proxy, "srt session ended", "alive", secs(10));
    assert_eq!(log_field(&end, "reason").as_deref(), Some("client sent shutdown"), "{end}");
    eprintln!("the dead origin's caller gave up after {waited:?}");
}

// ---------------------------------------------------------------------------
// The proxy's drop and rejection paths, datagram by datagram.

/// A caller handshake: `kind` 1 induction, -1 conclusion; HSv5 conclusions
/// carry an HSREQ and, if given, the stream id (words byte-swapped).
fn hs(kind: i32, cookie: u32, sid: Option<&str>) -> Vec<u8> {
    let mut b = Vec::new();
    for w in [0x8000_0000u32, 0, 1, 0] {
        b.extend_from_slice(&w.to_be_bytes());
    }
    let (version, ext) = if kind == 1 { (4u32, 2u16) } else { (5, 5) };
    b.extend_from_slice(&version.to_be_bytes());
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(&ext.to_be_bytes());
    for w in [0x1234_5678u32, 1500, 8192, kind as u32, 0x0abc_def0, cookie] {
        b.extend_from_slice(&w.to_be_bytes());
    }
    b.extend_from_slice(&[1, 0, 0, 127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    if kind == -1 {
        b.extend_from_slice(&[0, 1, 0, 3, 0, 1, 5, 1, 0, 0, 0, 0xbf, 0, 0x78, 0, 0x78]);
        if let Some(s) = sid {
            let mut text = s.as_bytes().to_vec();
            while text.len() % 4 != 0 {
                text.push(0);
            }
            b.extend_from_slice(&[0, 5]);
            b.extend_from_slice(&((text.len() / 4) as u16).to_be_bytes());
            for w in text.chunks(4) {
                b.extend_from_slice(&[w[3], w[2], w[1], w[0]]);
            }
        }
    }
    b
}

fn answer(sock: &UdpSocket, d: &[u8]) -> Option<Vec<u8>> {
    sock.send(d).unwrap();
    let mut buf = [0u8; 2048];
    sock.set_read_timeout(Some(Duration::from_millis(400))).unwrap();
    sock.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

fn word(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

#[test]
fn malformed_and_unknown_datagrams_are_dropped_and_bad_stream_ids_rejected() {
    let mut proxy = Proxy::start(&[]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(proxy_srt(&proxy)).unwrap();
    let induction = hs(1, 0, None);
    let mut truncated_ext = hs(-1, 0x1111, Some("#!::r=live/s"));
    truncated_ext[66..68].copy_from_slice(&[0xff, 0xff]);
    let mut agreement = hs(-1, 0x1111, None);
    agreement[36..40].copy_from_slice(&0xFFFF_FFFEu32.to_be_bytes());
    let data_unknown = [0u8, 0, 0, 1, 0xc0, 0, 0, 0, 0, 0, 0, 1, 0, 0x01, 0x23, 0x45, 0x47, 0x47];
    let keepalive_no_such_core = [0x80u8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x3f, 0xf0, 0, 1];
    let shutdown_no_session = [0x80u8, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 1, 0, 0, 0, 0];
    let drops: Vec<(&str, Vec<u8>)> = vec![
        ("empty datagram", vec![]),
        ("15 bytes", vec![0x80; 15]),
        ("handshake header only", induction[..16].to_vec()),
        ("63-byte handshake", induction[..63].to_vec()),
        ("conclusion without the induction (wrong cookie)", hs(-1, 0x1234_5678, Some("#!::r=live/s"))),
        ("conclusion with cookie 0", hs(-1, 0, Some("#!::r=live/s"))),
        ("extension past the end", truncated_ext),
        ("agreement from a caller", agreement),
        ("data to an unknown socket id", data_unknown.to_vec()),
        ("keepalive for a core that does not exist", keepalive_no_such_core.to_vec()),
        ("shutdown for a session nobody holds", shutdown_no_session.to_vec()),
        ("64 KiB of garbage", vec![0x5a; 65507]),
    ];
    for (what, d) in &drops {
        assert_eq!(answer(&sock, d), None, "{what}: the proxy answered");
    }

    // The induction is answered with a cookie; conclusions with it get
    // rejections that say why.
    let ind = answer(&sock, &induction).expect("induction answered");
    assert_eq!((word(&ind, 16), word(&ind, 36), word(&ind, 40)), (5, 1, 0x0abc_def0), "HSv5 induction answer");
    assert_eq!(u16::from_be_bytes([ind[22], ind[23]]), 0x4A17);
    let cookie = word(&ind, 44);
    assert_ne!(cookie, 0);
    let rejections: Vec<(&str, Option<&str>, u32)> = vec![
        ("no stream id", None, 2400),
        ("no resource", Some("#!::m=publish"), 2400),
        ("no app in the resource", Some("#!::r=livestream,m=publish"), 2400),
        ("unknown mode", Some("#!::r=live/s,m=play"), 2405),
        ("no origin registered", Some("#!::r=live/s,m=publish"), 2503),
        ("plain form, no origin registered", Some("live/s"), 2503),
    ];
    for (what, sid, code) in rejections {
        let r = answer(&sock, &hs(-1, cookie, sid)).unwrap_or_else(|| panic!("{what}: no rejection"));
        assert_eq!(r.len(), 64, "{what}");
        assert_eq!((word(&r, 0), word(&r, 12), word(&r, 36)), (0x8000_0000, 0x0abc_def0, code), "{what}");
    }
    // Another address's cookie does not work here.
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    other.connect(proxy_srt(&proxy)).unwrap();
    assert_eq!(answer(&other, &hs(-1, cookie, Some("#!::r=live/s"))), None, "a cookie for another port");
    assert!(proxy.wait_log("srt datagram dropped", secs(2)), "drops are logged");
    assert!(proxy.guard.try_wait().is_none(), "the proxy died");
}

/// Induction then conclusion from `sock`; the conclusion's answer (or None).
fn handshake_through(sock: &UdpSocket, sid: &str) -> (u32, Option<Vec<u8>>) {
    let ind = answer(sock, &hs(1, 0, None)).expect("induction answered");
    let cookie = word(&ind, 44);
    (cookie, answer(sock, &hs(-1, cookie, Some(sid))))
}

#[test]
fn conclusions_repeated_while_the_origin_is_silent_start_one_handshake_and_get_one_rejection() {
    let proxy = Proxy::start(&[]);
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let _hb = Heartbeat::start(&proxy.sys_api(), srt_origin_body("silent", silent.local_addr().unwrap().port()));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(proxy_srt(&proxy)).unwrap();
    let sid = "#!::r=live/hush,m=publish";
    let (cookie, first) = handshake_through(&sock, sid);
    assert_eq!(first, None, "answered before the origin did");
    let t0 = Instant::now();
    for _ in 0..3 {
        assert_eq!(answer(&sock, &hs(-1, cookie, Some(sid))), None, "a repeat was answered while pending");
    }
    sock.set_read_timeout(Some(secs(5))).unwrap();
    let mut buf = [0u8; 2048];
    let n = sock.recv(&mut buf).expect("no rejection after the origin stayed silent");
    assert_eq!(word(&buf[..n], 36), 2502, "SRT_REJX_GW, after {:?}", t0.elapsed());
    sock.set_read_timeout(Some(secs(3))).unwrap();
    assert!(sock.recv(&mut buf).is_err(), "a second rejection: the repeats started another handshake");
    assert_eq!(session_lines(&proxy, "srt session rejected", "hush").len(), 1);

    // The silent origin saw one caller: inductions, retransmitted, from one port.
    silent.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut ports = std::collections::BTreeSet::new();
    let mut count = 0;
    while let Ok((n, from)) = silent.recv_from(&mut buf) {
        assert_eq!((n, word(&buf, 36), word(&buf, 44)), (64, 1, 0), "an induction with no cookie");
        ports.insert(from.port());
        count += 1;
    }
    assert_eq!(ports.len(), 1, "one upstream socket: {ports:?}");
    assert!(count >= 5, "the induction is retransmitted every 250 ms: {count} in 2.5 s");
}

#[test]
fn a_repeated_conclusion_gets_the_same_answer_and_a_silent_client_idles_out() {
    let proxy = Proxy::start(&[("PROXY_SRT_IDLE_TIMEOUT", "2s")]);
    let origin = SltOrigin::start("o", "");
    let _hb = Heartbeat::start(&proxy.sys_api(), origin.register_body());
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(proxy_srt(&proxy)).unwrap();
    let sid = "#!::r=live/quiet,m=publish";
    let (cookie, got) = handshake_through(&sock, sid);
    let got = got.expect("the origin's conclusion answer");
    assert_eq!((word(&got, 12), word(&got, 36)), (0x0abc_def0, 0xFFFF_FFFF), "a conclusion answer to our socket");
    let proxy_id = word(&got, 40);
    assert!(proxy_id >> 20 < 2 && proxy_id & 0xfffff != 0 && proxy_id >> 30 == 0, "a proxy id: {proxy_id:#x}");
    // Repeats (the answer was lost) get the same answer, not a new session.
    let mut buf = [0u8; 2048];
    for _ in 0..2 {
        sock.send(&hs(-1, cookie, Some(sid))).unwrap();
        let n = loop {
            let n = sock.recv(&mut buf).expect("a repeated conclusion was not answered");
            if word(&buf[..n], 0) == 0x8000_0000 {
                break n;
            }
        };
        assert_eq!(&buf[..n], &got[..], "the cached answer");
    }
    assert_eq!(session_lines(&proxy, "srt session started", "quiet").len(), 1);
    // Its id from five new addresses within a few milliseconds (a forger's
    // flood, or a client flapping): the session moves at most once a
    // second, so at most twice here (if a second boundary falls between).
    let mut keepalive = [0x80u8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    keepalive[12..16].copy_from_slice(&proxy_id.to_be_bytes());
    let others: Vec<UdpSocket> = (0..5).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
    for o in &others {
        o.send_to(&keepalive, proxy_srt(&proxy)).unwrap();
    }
    thread::sleep(Duration::from_millis(500));
    let moves = proxy.log_lines_with(&["srt client changed address"]).len()
        + proxy.log_lines_with(&["srt session moved"]).len();
    assert!((1..=2).contains(&moves), "{moves} address changes for 5 addresses within milliseconds");
    // Then the client says nothing more.
    let end = wait_line(&proxy, "srt session ended", "quiet", secs(15));
    assert_eq!(log_field(&end, "reason").as_deref(), Some("idle timeout"), "{end}");
}

#[test]
fn at_shutdown_sessions_drain_then_end_with_a_shutdown_to_the_client() {
    let mut proxy = Proxy::start(&[("PROXY_GRACE_QUIT_TIMEOUT", "3s")]);
    let origin = SltOrigin::start("o", "");
    let _hb = Heartbeat::start(&proxy.sys_api(), origin.register_body());
    let mut publisher = ffmpeg_ts(&srt_url(proxy.srt_port, &publish_sid("draining"), ""), "", None);
    wait_line(&proxy, "srt session started", "draining", secs(10));
    assert!(wait_bytes(&origin.got_path(), 50_000, secs(10)));
    proxy.guard.signal(libc::SIGTERM);
    // No new session while draining; the live one goes on.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(proxy_srt(&proxy)).unwrap();
    assert!(proxy.wait_log("got signal", secs(5)));
    // Each core learns of the signal on its next turn.
    assert!(wait_until(secs(2), || answer(&sock, &hs(1, 0, None)).is_none()), "inductions answered while draining");
    let n = origin.got().len() as u64;
    assert!(wait_bytes(&origin.got_path(), n + 30_000, secs(3)), "the live session stopped at once");
    let end = wait_line(&proxy, "srt session ended", "draining", secs(10));
    assert_eq!(log_field(&end, "reason").as_deref(), Some("proxy shutting down"), "{end}");
    // Told at once by the shutdown packet: libsrt's own peer idle timeout
    // (5 s) would end it only later.
    assert!(publisher.wait_exit(secs(3)).is_some(), "the publisher was not told the session ended");
    let st = proxy.guard.wait_exit(secs(10)).expect("the proxy did not exit");
    assert!(st.success(), "proxy exit status {st}");
}

#[test]
fn a_taken_srt_port_stops_startup() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut p = Proxy::spawn(ProxyOpts::new().env("PROXY_SRT_SERVER", &addr));
    let st = p.guard.wait_exit(secs(15)).expect("the SRT port is taken, yet the proxy kept running");
    assert!(!st.success(), "exit status {st}");
    let log = p.log();
    assert!(
        log.lines().any(|l| l.contains("PROXY_SRT_SERVER") && l.contains("another process holds it")),
        "no stderr line names PROXY_SRT_SERVER and says why:\n{log}"
    );
}
