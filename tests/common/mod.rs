//! The harness every end-to-end test file uses (`mod common;`).
//!
//! Everything here drives REAL programs: the `srs-proxy` binary built by
//! cargo, nginx with the RTMP module, node-media-server 4, FFmpeg/ffprobe
//! (see `../shared/peers.md`; `scripts/install-peers.sh` installs them).
//! Each test starts its own instances on free loopback ports, in its own
//! temporary directories, and every process is stopped by its pid when its
//! guard is dropped. On a failing test, the guards print the tail of the
//! logs they captured.
//!
//! Only std, libc and serde_json: the tiny HTTP/1.1 client below is enough
//! for the proxy's system API and nginx's `/stat`.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The stream key the proxy derives for `rtmp://127.0.0.1:<port>/live/<name>`.
pub fn live_key(name: &str) -> String {
    format!("__defaultVhost__/live/{name}")
}

// ---------------------------------------------------------------------------
// Waiting (every wait in the tests is bounded: a hang guard, not a timing
// assertion).

/// Polls `f` every 100 ms until it returns true (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// True once a TCP connect to 127.0.0.1:`port` succeeds, within `timeout`.
pub fn wait_port(port: u16, timeout: Duration) -> bool {
    wait_until(timeout, || TcpStream::connect_timeout(&loopback(port), Duration::from_millis(500)).is_ok())
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

// ---------------------------------------------------------------------------
// Free ports.

/// One free loopback TCP port (bound, read, released).
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct free loopback ports: all are held before any is released,
/// and none was handed out before in this test process (tests run in
/// parallel, and the kernel may give a port just released to the next
/// caller: two proxies on one port would share it through SO_REUSEPORT).
/// Each is free for UDP too (the proxy's WebRTC and SRT ports are UDP, and
/// WebRTC peers in other tests hold many UDP ports).
pub fn free_ports(n: usize) -> Vec<u16> {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let mut held = Vec::new();
    let mut held_udp = Vec::new();
    let mut ports = Vec::with_capacity(n);
    while ports.len() < n {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local_addr").port();
        if let Ok(u) = std::net::UdpSocket::bind(("127.0.0.1", port)) {
            if given.insert(port) {
                ports.push(port);
            }
            held_udp.push(u);
        }
        held.push(l);
    }
    ports
}

// ---------------------------------------------------------------------------
// Temporary directories (std only).

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = UNIQUE.fetch_add(1, Ordering::SeqCst);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let path = std::env::temp_dir().join(format!("srs-proxy-test-{tag}-{}-{n}-{nanos:x}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// The test clip: made once per test binary with FFmpeg (peers.md command).

fn clip_dir() -> PathBuf {
    std::env::temp_dir().join(format!("srs-proxy-test-clip-{}", std::process::id()))
}

extern "C" fn remove_clip_dir() {
    let _ = fs::remove_dir_all(clip_dir());
}

/// A 10 s 320x240 H.264 + AAC FLV clip, generated on first use.
pub fn test_clip() -> PathBuf {
    static CLIP: OnceLock<PathBuf> = OnceLock::new();
    CLIP.get_or_init(|| {
        let dir = clip_dir();
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create clip dir");
        // SAFETY: registers a plain extern "C" fn with no captured state.
        unsafe {
            libc::atexit(remove_clip_dir);
        }
        let path = dir.join("source.flv");
        let out = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
            .args(["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency"])
            .args(["-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k"])
            .args(["-t", "10"])
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .expect("run ffmpeg (install the peers: scripts/install-peers.sh)");
        assert!(
            out.status.success() && path.exists(),
            "ffmpeg could not make the test clip: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    })
    .clone()
}

// ---------------------------------------------------------------------------
// Process guards.

/// A child process, its captured logs, and the promise to stop it:
/// on drop, SIGTERM, then SIGKILL if it is still there after 5 s.
/// If the test is panicking, the tail of each log is printed first.
pub struct ProcGuard {
    name: String,
    child: Child,
    exited: Option<ExitStatus>,
    logs: Vec<PathBuf>,
    tail_lines: usize,
    /// A directory owned by this guard (for helpers that make their own).
    _dir: Option<TempDir>,
}

impl ProcGuard {
    /// Spawns `cmd` with stdin closed and stdout/stderr captured to
    /// `<dir>/<name>.stdout.log` / `<dir>/<name>.stderr.log`.
    /// The child gets SIGKILL if the test process dies first.
    pub fn spawn(name: &str, mut cmd: Command, dir: &Path) -> ProcGuard {
        let out_path = dir.join(format!("{name}.stdout.log"));
        let err_path = dir.join(format!("{name}.stderr.log"));
        let out = File::create(&out_path).expect("create stdout log");
        let err = File::create(&err_path).expect("create stderr log");
        cmd.stdin(Stdio::null()).stdout(Stdio::from(out)).stderr(Stdio::from(err));
        // SAFETY: prctl is async-signal-safe; nothing else runs in the child.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name} ({cmd:?}): {e}"));
        ProcGuard {
            name: name.to_string(),
            child,
            exited: None,
            logs: vec![err_path, out_path],
            tail_lines: 40,
            _dir: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout_path(&self) -> PathBuf {
        self.logs[1].clone()
    }

    pub fn stderr_path(&self) -> PathBuf {
        self.logs[0].clone()
    }

    /// Another log file to print on failure (e.g. nginx's error.log).
    pub fn add_log(&mut self, path: PathBuf) {
        self.logs.push(path);
    }

    pub fn set_tail_lines(&mut self, n: usize) {
        self.tail_lines = n;
    }

    /// Exit status if the process has exited (reaps it).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.exited = Some(st);
            }
        }
        self.exited
    }

    pub fn is_running(&mut self) -> bool {
        self.try_wait().is_none()
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_wait() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `sig` (libc::SIGTERM, ...) unless the process was already reaped.
    pub fn signal(&mut self, sig: i32) {
        if self.try_wait().is_none() {
            // SAFETY: plain kill(2) on our own child's pid (not yet reaped).
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, sig);
            }
        }
    }

    /// SIGTERM, up to 5 s to exit, then SIGKILL; reaps the child.
    pub fn stop(&mut self) {
        if self.try_wait().is_some() {
            return;
        }
        self.signal(libc::SIGTERM);
        if self.wait_exit(Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            if let Ok(st) = self.child.wait() {
                self.exited = Some(st);
            }
        }
    }

    /// The captured stderr, ANSI escapes removed.
    pub fn stderr(&self) -> String {
        strip_ansi(&fs::read_to_string(&self.logs[0]).unwrap_or_default())
    }

    pub fn stdout(&self) -> String {
        strip_ansi(&fs::read_to_string(&self.logs[1]).unwrap_or_default())
    }

    pub fn print_tails(&self) {
        for path in &self.logs {
            let text = strip_ansi(&fs::read_to_string(path).unwrap_or_default());
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(self.tail_lines);
            eprintln!(
                "----- {} (pid {}): last {} lines of {} -----",
                self.name,
                self.child.id(),
                lines.len() - from,
                path.display()
            );
            for l in &lines[from..] {
                eprintln!("{l}");
            }
        }
    }
}

impl Drop for ProcGuard {
    fn drop(&mut self) {
        if thread::panicking() {
            self.print_tails();
        }
        self.stop();
    }
}

/// Removes ANSI escape sequences (in case a logger colours its output).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c2 in chars.by_ref() {
                    if ('@'..='~').contains(&c2) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------
// Origins: what the register API needs to know about one.

/// One origin as the proxy sees it: the heartbeat body fields.
#[derive(Clone, Debug)]
pub struct OriginInfo {
    pub device_id: String,
    pub server: String,
    pub service: String,
    pub pid: String,
    pub ip: String,
    pub rtmp: u16,
    pub http: Option<u16>,
}

impl OriginInfo {
    /// `<server>-<service>-<pid>`, the id `/api/v1/origins` and `/api/v1/streams` use.
    pub fn id(&self) -> String {
        format!("{}-{}-{}", self.server, self.service, self.pid)
    }

    /// The JSON body an SRS origin posts to `/api/v1/srs/register`.
    pub fn register_body(&self) -> String {
        let mut v = serde_json::json!({
            "device_id": self.device_id,
            "ip": self.ip,
            "server": self.server,
            "service": self.service,
            "pid": self.pid,
            "rtmp": [self.rtmp.to_string()],
        });
        if let Some(h) = self.http {
            v["http"] = serde_json::json!([h.to_string()]);
        }
        v.to_string()
    }

    /// Whether a log field value (`origin=...`) names this origin: its id,
    /// or its RTMP address.
    pub fn is_named_by(&self, value: &str) -> bool {
        value == self.id() || value == format!("{}:{}", self.ip, self.rtmp)
    }
}

// ---------------------------------------------------------------------------
// nginx with the RTMP module (peers.md).

pub struct NginxRtmp {
    pub guard: ProcGuard,
    pub dir: TempDir,
    pub rtmp_port: u16,
    pub http_port: u16,
}

impl NginxRtmp {
    /// Its own prefix dir and conf (RTMP `live` app with HLS, an HTTP server
    /// with `/stat` and `/hls`), error_log to a file; returns once both ports
    /// accept.
    pub fn start() -> NginxRtmp {
        Self::launch("nginx", "hls", 2, 10, None, |p| {
            format!(
                r#"location /stat {{ rtmp_stat all; }}
        location /hls {{
            alias {p}/hls;
            types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
            add_header Cache-Control no-cache;
        }}"#
            )
        })
    }

    /// Starts nginx with the RTMP `live` application (HLS into `<prefix>/<hls_dir>`)
    /// and an HTTP server holding `locations(prefix)`; every HTTP request is
    /// logged to `logs/access.log` (in `log_format`, when given). Returns once
    /// both ports accept.
    pub fn launch(
        tag: &str,
        hls_dir: &str,
        fragment_secs: u32,
        playlist_secs: u32,
        log_format: Option<&str>,
        locations: impl Fn(&str) -> String,
    ) -> NginxRtmp {
        let dir = TempDir::new(tag);
        let ports = free_ports(2);
        let (rtmp_port, http_port) = (ports[0], ports[1]);
        let p = dir.path().display().to_string();
        fs::create_dir_all(dir.join("logs")).unwrap();
        fs::create_dir_all(dir.join(hls_dir)).unwrap();
        let (format_line, format_name) = match log_format {
            Some(f) => (format!("log_format custom '{f}';"), " custom"),
            None => (String::new(), ""),
        };
        let locations = locations(&p);
        let conf = format!(
            r#"load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/logs/error.log info;
events {{ worker_connections 1024; }}
rtmp {{
    server {{
        listen 127.0.0.1:{rtmp_port};
        chunk_size 4096;
        application live {{
            live on;
            record off;
            hls on;
            hls_path {p}/{hls_dir};
            hls_fragment {fragment_secs}s;
            hls_playlist_length {playlist_secs}s;
        }}
    }}
}}
http {{
    {format_line}
    access_log {p}/logs/access.log{format_name};
    client_body_temp_path {p}/client_body_temp;
    proxy_temp_path {p}/proxy_temp;
    fastcgi_temp_path {p}/fastcgi_temp;
    uwsgi_temp_path {p}/uwsgi_temp;
    scgi_temp_path {p}/scgi_temp;
    server {{
        listen 127.0.0.1:{http_port};
        {locations}
    }}
}}
"#
        );
        let conf_path = dir.join("nginx.conf");
        fs::write(&conf_path, conf).unwrap();
        let mut cmd = Command::new("nginx");
        cmd.arg("-p").arg(dir.path()).arg("-e").arg(dir.join("logs/error.log")).arg("-c").arg(&conf_path);
        let mut guard = ProcGuard::spawn(tag, cmd, dir.path());
        guard.add_log(dir.join("logs/error.log"));
        guard.add_log(dir.join("logs/access.log"));
        let mut n = NginxRtmp { guard, dir, rtmp_port, http_port };
        let ready = wait_until(Duration::from_secs(10), || {
            n.guard.is_running()
                && TcpStream::connect(loopback(rtmp_port)).is_ok()
                && TcpStream::connect(loopback(http_port)).is_ok()
        });
        if !ready {
            n.guard.print_tails();
            panic!("{tag} did not start on {rtmp_port}/{http_port}");
        }
        n
    }

    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    pub fn rtmp_url(&self, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{stream}", self.rtmp_port)
    }

    /// This nginx as an origin (server/service unique per instance, pid its own).
    pub fn origin(&self) -> OriginInfo {
        OriginInfo {
            device_id: format!("nginx-{}", self.rtmp_port),
            server: format!("vid-ngx{}", self.rtmp_port),
            service: format!("svc{}", self.http_port),
            pid: self.pid().to_string(),
            ip: "127.0.0.1".into(),
            rtmp: self.rtmp_port,
            http: Some(self.http_port),
        }
    }

    /// The `/stat` XML.
    pub fn stat(&self) -> String {
        nginx_stat(self.http_port).unwrap_or_default()
    }

    /// Whether `/stat` shows stream `name` in the `live` application with an
    /// active publisher.
    pub fn has_stream(&self, name: &str) -> bool {
        nginx_stat_has_stream(self.http_port, name)
    }
}

pub fn nginx_stat(http_port: u16) -> io::Result<String> {
    let r = http("GET", &format!("127.0.0.1:{http_port}"), "/stat", &[], b"")?;
    if r.status != 200 {
        return Err(io::Error::other(format!("/stat answered {}", r.status)));
    }
    Ok(r.text())
}

/// Fetches nginx-rtmp's `/stat` XML and looks for `<name>NAME</name>` inside
/// the `live` application, with an active publisher.
pub fn nginx_stat_has_stream(http_port: u16, name: &str) -> bool {
    match nginx_stat(http_port) {
        Ok(xml) => stat_xml_has_stream(&xml, name),
        Err(_) => false,
    }
}

/// The parsing half of [`nginx_stat_has_stream`].
pub fn stat_xml_has_stream(xml: &str, name: &str) -> bool {
    for app in blocks(xml, "<application>", "</application>") {
        if first_between(app, "<name>", "</name>") != Some("live") {
            continue;
        }
        for stream in blocks(app, "<stream>", "</stream>") {
            if first_between(stream, "<name>", "</name>") == Some(name)
                && stream.contains("<publishing/>")
                && stream.contains("<active/>")
            {
                return true;
            }
        }
    }
    false
}

/// How many players (clients not publishing) `/stat` lists on stream `name`
/// of the `live` application.
pub fn stat_xml_players(xml: &str, name: &str) -> usize {
    blocks(xml, "<application>", "</application>")
        .into_iter()
        .filter(|app| first_between(app, "<name>", "</name>") == Some("live"))
        .flat_map(|app| blocks(app, "<stream>", "</stream>"))
        .filter(|stream| first_between(stream, "<name>", "</name>") == Some(name))
        .flat_map(|stream| blocks(stream, "<client>", "</client>"))
        .filter(|client| !client.contains("<publishing/>"))
        .count()
}

fn blocks<'a>(s: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find(open) {
        let after = &rest[i + open.len()..];
        match after.find(close) {
            Some(j) => {
                out.push(&after[..j]);
                rest = &after[j + close.len()..];
            }
            None => break,
        }
    }
    out
}

fn first_between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let i = s.find(open)? + open.len();
    let j = s[i..].find(close)?;
    Some(&s[i..i + j])
}

/// The (local, far) ports of this machine's IPv4 TCP connections in
/// TIME_WAIT whose far end is `port`, from `/proc/net/tcp`.
pub fn time_waits_to(port: u16) -> BTreeSet<(u16, u16)> {
    let table = fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let port_of = |addr: &str| addr.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st ...; 06 is TIME_WAIT.
            if f.len() < 4 || f[3] != "06" {
                return None;
            }
            Some((port_of(f[1])?, port_of(f[2])?))
        })
        .filter(|&(_, far)| far == port)
        .collect()
}

// ---------------------------------------------------------------------------
// node-media-server 4 (peers.md).

/// The repo's `tests/peers` (node_modules installed by scripts/install-peers.sh).
pub fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

pub struct Nms {
    pub guard: ProcGuard,
    pub dir: TempDir,
    pub rtmp_port: u16,
    pub http_port: u16,
}

impl Nms {
    /// node-media-server 4's CLI on four free ports, with its own config file
    /// and data dir (NMS writes generated secrets back into its config file,
    /// so every instance gets its own copy); returns once RTMP and HTTP accept.
    pub fn start() -> Nms {
        let app = peers_dir().join("node_modules/node-media-server/bin/app.js");
        assert!(app.exists(), "{} missing: run scripts/install-peers.sh", app.display());
        let bin = app.parent().unwrap().to_path_buf();
        let dir = TempDir::new("nms");
        let ports = free_ports(4);
        let (rtmp_port, http_port, https_port, rtmps_port) = (ports[0], ports[1], ports[2], ports[3]);
        let key = bin.join("key.pem").display().to_string();
        let cert = bin.join("cert.pem").display().to_string();
        let config = serde_json::json!({
            "bind": "127.0.0.1",
            "notify": {"url": ""},
            "store": {"path": "./data", "maxHistory": 100},
            "auth": {
                "play": false,
                "publish": false,
                "secret": "srs-proxy-tests",
                "jwt": {
                    "secret": "srs-proxy-tests-jwt",
                    "expiresIn": "24h",
                    "refreshExpiresIn": "7d",
                    "algorithm": "HS256",
                    "users": []
                }
            },
            "rtmp": {"port": rtmp_port},
            "rtmps": {"port": rtmps_port, "key": key, "cert": cert},
            "http": {"port": http_port},
            "https": {"port": https_port, "key": key, "cert": cert},
            "webadmin": {"enable": false},
            "record": {"auto": false, "path": "./record"}
        });
        let config_path = dir.join("config.json");
        fs::write(&config_path, config.to_string()).unwrap();
        let mut cmd = Command::new("node");
        cmd.arg(&app)
            .arg("-c")
            .arg(&config_path)
            .args(["-b", "127.0.0.1"])
            .args(["--rtmp-port", &rtmp_port.to_string()])
            .args(["--http-port", &http_port.to_string()])
            .args(["--https-port", &https_port.to_string()])
            .args(["--rtmps-port", &rtmps_port.to_string()])
            .arg("--data-path")
            .arg(dir.join("data"))
            .arg("--no-admin")
            .current_dir(dir.path());
        let guard = ProcGuard::spawn("node-media-server", cmd, dir.path());
        let mut n = Nms { guard, dir, rtmp_port, http_port };
        let ready = wait_until(Duration::from_secs(20), || {
            n.guard.is_running()
                && TcpStream::connect(loopback(rtmp_port)).is_ok()
                && TcpStream::connect(loopback(http_port)).is_ok()
        });
        if !ready {
            n.guard.print_tails();
            panic!("node-media-server did not start on {rtmp_port}/{http_port}");
        }
        n
    }

    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    pub fn rtmp_url(&self, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{stream}", self.rtmp_port)
    }

    pub fn flv_url(&self, stream: &str) -> String {
        format!("http://127.0.0.1:{}/live/{stream}.flv", self.http_port)
    }

    pub fn origin(&self) -> OriginInfo {
        OriginInfo {
            device_id: format!("nms-{}", self.rtmp_port),
            server: format!("vid-nms{}", self.rtmp_port),
            service: format!("svc{}", self.http_port),
            pid: self.pid().to_string(),
            ip: "127.0.0.1".into(),
            rtmp: self.rtmp_port,
            http: Some(self.http_port),
        }
    }
}

// ---------------------------------------------------------------------------
// The proxy.

/// The srs-proxy binary cargo built for these tests.
pub fn proxy_bin() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_srs-proxy") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/debug/srs-proxy"),
    }
}

/// The six listener variables, each given 127.0.0.1:<free port> by default.
pub const LISTENER_VARS: [&str; 6] = [
    "PROXY_RTMP_SERVER",
    "PROXY_HTTP_SERVER",
    "PROXY_HTTP_API",
    "PROXY_WEBRTC_SERVER",
    "PROXY_SRT_SERVER",
    "PROXY_SYSTEM_API",
];

/// How to start a proxy: env on top of the harness defaults (six listeners on
/// 127.0.0.1:<free port>, PROXY_WORKERS=2, RUST_LOG=info, NO_COLOR=1), vars
/// to leave unset, a `.env` file for its working dir, extra args.
#[derive(Default, Clone)]
pub struct ProxyOpts {
    pub env: Vec<(String, String)>,
    pub unset: Vec<String>,
    pub dotenv: Option<String>,
    pub args: Vec<String>,
}

impl ProxyOpts {
    pub fn new() -> ProxyOpts {
        ProxyOpts::default()
    }
    pub fn env(mut self, k: &str, v: &str) -> ProxyOpts {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn unset(mut self, k: &str) -> ProxyOpts {
        self.unset.push(k.into());
        self
    }
    pub fn dotenv(mut self, contents: &str) -> ProxyOpts {
        self.dotenv = Some(contents.into());
        self
    }
}

pub struct Proxy {
    pub guard: ProcGuard,
    pub dir: TempDir,
    /// The environment the proxy was given (after defaults and overrides).
    pub env: BTreeMap<String, String>,
    pub rtmp_port: u16,
    pub system_api_port: u16,
    pub http_server_port: u16,
    pub http_api_port: u16,
    pub webrtc_port: u16,
    pub srt_port: u16,
}

fn port_of(value: Option<&String>) -> u16 {
    value.and_then(|v| v.rsplit(':').next()).and_then(|p| p.parse().ok()).unwrap_or(0)
}

impl Proxy {
    /// Starts the proxy with `env` over the defaults and waits until
    /// `GET /api/v1/versions` answers 200 (up to 15 s).
    pub fn start(env: &[(&str, &str)]) -> Proxy {
        let mut opts = ProxyOpts::new();
        for (k, v) in env {
            opts = opts.env(k, v);
        }
        Proxy::start_opts(opts)
    }

    pub fn start_opts(opts: ProxyOpts) -> Proxy {
        let mut p = Proxy::spawn(opts);
        if let Err(e) = p.wait_ready(Duration::from_secs(15)) {
            p.guard.print_tails();
            panic!("srs-proxy did not become ready: {e}");
        }
        p
    }

    /// Spawns the proxy without waiting (for start-up failures and signals).
    pub fn spawn(opts: ProxyOpts) -> Proxy {
        let dir = TempDir::new("proxy");
        let ports = free_ports(LISTENER_VARS.len());
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for (var, port) in LISTENER_VARS.iter().zip(&ports) {
            env.insert(var.to_string(), format!("127.0.0.1:{port}"));
        }
        env.insert("PROXY_WORKERS".into(), "2".into());
        env.insert("RUST_LOG".into(), "info".into());
        env.insert("NO_COLOR".into(), "1".into());
        for (k, v) in &opts.env {
            env.insert(k.clone(), v.clone());
        }
        for k in &opts.unset {
            env.remove(k);
        }
        if let Some(dotenv) = &opts.dotenv {
            fs::write(dir.join(".env"), dotenv).unwrap();
        }
        let mut cmd = Command::new(proxy_bin());
        cmd.args(&opts.args).current_dir(dir.path());
        // Nothing from the caller's environment may configure the proxy.
        for (k, _) in std::env::vars_os() {
            if let Some(k) = k.to_str() {
                if k.starts_with("PROXY_") || k == "RUST_LOG" {
                    cmd.env_remove(k);
                }
            }
        }
        cmd.envs(&env);
        let mut guard = ProcGuard::spawn("srs-proxy", cmd, dir.path());
        guard.set_tail_lines(150);
        Proxy {
            guard,
            dir,
            rtmp_port: port_of(env.get("PROXY_RTMP_SERVER")),
            system_api_port: port_of(env.get("PROXY_SYSTEM_API")),
            http_server_port: port_of(env.get("PROXY_HTTP_SERVER")),
            http_api_port: port_of(env.get("PROXY_HTTP_API")),
            webrtc_port: port_of(env.get("PROXY_WEBRTC_SERVER")),
            srt_port: port_of(env.get("PROXY_SRT_SERVER")),
            env,
        }
    }

    /// Polls `GET /api/v1/versions` until 200 with signature `srs-proxy`.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let addr = self.sys_api();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.guard.try_wait() {
                return Err(format!("srs-proxy exited with {st} before it was ready"));
            }
            let last = match http("GET", &addr, "/api/v1/versions", &[], b"") {
                Ok(r) if r.status == 200 => match r.json() {
                    Ok(v) if v["signature"] == "srs-proxy" => return Ok(()),
                    _ => format!("200 with body {:?}", r.text()),
                },
                Ok(r) => format!("status {}", r.status),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(format!("GET /api/v1/versions on {addr}: {last}"));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// `127.0.0.1:<system api port>`.
    pub fn sys_api(&self) -> String {
        format!("127.0.0.1:{}", self.system_api_port)
    }

    pub fn rtmp_url(&self, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{stream}", self.rtmp_port)
    }

    pub fn log_path(&self) -> PathBuf {
        self.guard.stderr_path()
    }

    /// Everything the proxy logged so far (stderr, ANSI stripped).
    pub fn log(&self) -> String {
        self.guard.stderr()
    }

    /// Waits until the log contains `substr`.
    pub fn wait_log(&self, substr: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().contains(substr))
    }

    /// Complete log lines containing every one of `needles`. A line the
    /// proxy is still writing is left out: a reader can see the first part
    /// of a write that crosses a page of the log file before the rest.
    pub fn log_lines_with(&self, needles: &[&str]) -> Vec<String> {
        let log = self.log();
        let complete = log.rfind('\n').map_or("", |i| &log[..i]);
        complete.lines().filter(|l| needles.iter().all(|n| l.contains(n))).map(String::from).collect()
    }

    /// The `rtmp session ended` lines.
    pub fn session_lines(&self) -> Vec<String> {
        self.log_lines_with(&["rtmp session ended"])
    }

    /// The `rtmp session ended` lines whose `stream=` is `key`.
    pub fn session_lines_for(&self, key: &str) -> Vec<String> {
        self.session_lines().into_iter().filter(|l| log_field(l, "stream").as_deref() == Some(key)).collect()
    }

    /// The `rtmp session ended` line of the connection from 127.0.0.1:`port`.
    pub fn session_line_for_peer(&self, port: u16) -> Option<String> {
        let want = format!("127.0.0.1:{port}");
        self.session_lines().into_iter().find(|l| log_field(l, "peer").as_deref() == Some(want.as_str()))
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        http("GET", &self.sys_api(), path, &[], b"").unwrap_or_else(|e| panic!("GET {path} on the system API: {e}"))
    }

    /// `GET /api/v1/streams` → its `data` array.
    pub fn streams(&self) -> Vec<Value> {
        let r = self.get("/api/v1/streams");
        assert_eq!(r.status, 200, "GET /api/v1/streams: {}", r.text());
        let v = r.json().expect("/api/v1/streams is JSON");
        v["data"].as_array().cloned().unwrap_or_default()
    }

    /// `GET /api/v1/origins` → its `data` array.
    pub fn origins(&self) -> Vec<Value> {
        let r = self.get("/api/v1/origins");
        assert_eq!(r.status, 200, "GET /api/v1/origins: {}", r.text());
        let v = r.json().expect("/api/v1/origins is JSON");
        v["data"].as_array().cloned().unwrap_or_default()
    }

    /// The origin id `/api/v1/streams` pins `key` to, if any.
    pub fn pinned_origin(&self, key: &str) -> Option<String> {
        self.streams().iter().find(|s| s["stream"] == key).and_then(|s| s["origin"].as_str().map(String::from))
    }

    /// The origin `key` is pinned to, waiting up to `timeout` for the pin.
    pub fn wait_pinned(&self, key: &str, timeout: Duration) -> String {
        let mut pinned = None;
        assert!(
            wait_until(timeout, || {
                pinned = self.pinned_origin(key);
                pinned.is_some()
            }),
            "{key} never showed up in /api/v1/streams: {:?}",
            self.streams()
        );
        pinned.unwrap_or_default()
    }

    /// One POST of `body` to `/api/v1/srs/register`.
    pub fn register(&self, body: &str) -> HttpResponse {
        register(&self.sys_api(), body, &[])
    }

    /// Open descriptors of the proxy process.
    pub fn fds(&self) -> usize {
        count_fds(self.pid())
    }
}

/// One POST to `/api/v1/srs/register`, with the headers an SRS origin sends.
pub fn register(sys_api: &str, body: &str, extra: &[(&str, &str)]) -> HttpResponse {
    let mut headers = vec![("Content-Type", "application/json"), ("User-Agent", "SRS/6.0.0(Bee)")];
    headers.extend_from_slice(extra);
    http("POST", sys_api, "/api/v1/srs/register", &headers, body.as_bytes())
        .unwrap_or_else(|e| panic!("POST /api/v1/srs/register on {sys_api}: {e}"))
}

/// The integer value of `key=` in a log line; a missing or non-numeric one
/// fails the test.
pub fn field_u64(line: &str, key: &str) -> u64 {
    log_field(line, key).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no {key}= in {line}"))
}

/// Value of `key=` in a tracing fmt line: `key=value` or `key="quoted \"value\""`.
pub fn log_field(line: &str, key: &str) -> Option<String> {
    let pat = format!("{key}=");
    let mut from = 0;
    while let Some(i) = line[from..].find(&pat) {
        let start = from + i;
        let ok_before = start == 0
            || line[..start].chars().next_back().map(|c| c == ' ' || c == '{' || c == ',' || c == ':').unwrap_or(true);
        let vstart = start + pat.len();
        if !ok_before {
            from = vstart;
            continue;
        }
        let rest = &line[vstart..];
        if let Some(q) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = q.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => return Some(out),
                    _ => out.push(c),
                }
            }
            return Some(out);
        }
        // Unquoted (a `%display` field may hold spaces): up to the next
        // ` name=` field or the end of the line.
        let end = next_field_start(rest).unwrap_or(rest.len());
        return Some(rest[..end].trim_end().to_string());
    }
    None
}

/// Byte offset of the next ` name=` (a new tracing field) in `s`.
fn next_field_start(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(j) = s[i..].find(' ') {
        let at = i + j;
        let name_start = at + 1;
        let mut k = name_start;
        while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'_' || b[k] == b'.') {
            k += 1;
        }
        if k > name_start && k < b.len() && b[k] == b'=' && b[name_start].is_ascii_alphabetic() {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

// ---------------------------------------------------------------------------
// The heartbeat sender: what an SRS origin does every 9 s, every second here.

pub struct Heartbeat {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Heartbeat {
    /// Posts `body` to `http://<sys_api>/api/v1/srs/register` now (it must be
    /// answered 200 within 10 s), then every second until dropped.
    pub fn start(sys_api: &str, body: String) -> Heartbeat {
        let addr = sys_api.to_string();
        let ok = wait_until(Duration::from_secs(10), || {
            matches!(
                http(
                    "POST",
                    &addr,
                    "/api/v1/srs/register",
                    &[("Content-Type", "application/json")],
                    body.as_bytes()
                ),
                Ok(r) if r.status == 200
            )
        });
        assert!(ok, "register {body} on {addr} was not answered 200");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                for _ in 0..10 {
                    thread::sleep(Duration::from_millis(100));
                    if stop2.load(Ordering::SeqCst) {
                        return;
                    }
                }
                let _ = http(
                    "POST",
                    &addr,
                    "/api/v1/srs/register",
                    &[("Content-Type", "application/json")],
                    body.as_bytes(),
                );
            }
        });
        Heartbeat { stop, handle: Some(handle) }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

// ---------------------------------------------------------------------------
// FFmpeg and ffprobe.

/// `ffmpeg -re -stream_loop -1 -i <clip> -c copy -f flv <url>`, until dropped.
pub fn ffmpeg_publish(url: &str) -> ProcGuard {
    let clip = test_clip();
    let dir = TempDir::new("ffmpeg");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-re", "-stream_loop", "-1", "-i"])
        .arg(&clip)
        .args(["-c", "copy", "-f", "flv", url]);
    let mut g = ProcGuard::spawn("ffmpeg-publish", cmd, dir.path());
    g._dir = Some(dir);
    g
}

/// `ffprobe -v error -show_entries stream=codec_name,width,height -of compact URL`,
/// killed if it has not finished within `timeout`. Ok(stdout) on exit 0.
pub fn ffprobe(url: &str, timeout: Duration) -> Result<String, String> {
    let dir = TempDir::new("ffprobe");
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error", "-show_entries", "stream=codec_name,width,height"]).args(["-of", "compact", url]);
    let mut g = ProcGuard::spawn("ffprobe", cmd, dir.path());
    let st = g.wait_exit(timeout);
    let out = g.stdout();
    let err = g.stderr();
    match st {
        Some(st) if st.success() => Ok(out),
        Some(st) => Err(format!("ffprobe {url}: {st}; stdout {out:?}; stderr {err:?}")),
        None => {
            g.stop();
            Err(format!("ffprobe {url}: still running after {timeout:?}; stdout {out:?}; stderr {err:?}"))
        }
    }
}

/// ffprobe finds the test clip at `url` within `timeout`, or the test fails.
pub fn probe_clip(url: &str, timeout: Duration) {
    let out = ffprobe(url, timeout).unwrap_or_else(|e| panic!("play {url}: {e}"));
    assert!(is_test_clip(&out), "play {url}: expected h264 320x240 + aac, ffprobe printed {out:?}");
}

/// The value of one series (name and labels exactly as the proxy writes
/// them) in a `/metrics` text; a missing series fails the test.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
}

/// Registers every origin and keeps it alive with a heartbeat thread each.
pub fn heartbeats(proxy: &Proxy, origins: &[OriginInfo]) -> Vec<Heartbeat> {
    origins.iter().map(|o| Heartbeat::start(&proxy.sys_api(), o.register_body())).collect()
}

/// Indexes of the nginx origins whose /stat shows `name` being published.
pub fn holders(origins: &[NginxRtmp], name: &str) -> Vec<usize> {
    (0..origins.len()).filter(|&i| origins[i].has_stream(name)).collect()
}

/// Waits (up to 30 s) until some origin holds `name`; returns the holders then.
pub fn wait_holders(origins: &[NginxRtmp], name: &str) -> Vec<usize> {
    let mut found = Vec::new();
    wait_until(Duration::from_secs(30), || {
        found = holders(origins, name);
        !found.is_empty()
    });
    found
}

/// Whether ffprobe's compact output shows the test clip: H.264 320x240 and AAC.
pub fn is_test_clip(probe: &str) -> bool {
    probe.contains("codec_name=h264|width=320|height=240") && probe.contains("codec_name=aac")
}

// ---------------------------------------------------------------------------
// Descriptors.

/// Number of open file descriptors of process `pid`.
pub fn count_fds(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// The proxy's descriptors at one moment, to check later that everything
/// opened since was closed again.
pub struct FdSnapshot {
    count: usize,
    list: Vec<String>,
}

impl FdSnapshot {
    pub fn take(proxy: &Proxy) -> FdSnapshot {
        FdSnapshot { count: proxy.fds(), list: list_fds(proxy.pid()) }
    }

    /// Once the count has held still for a second (so no connection is
    /// mid-teardown).
    pub fn settled(proxy: &Proxy) -> FdSnapshot {
        let mut last = (proxy.fds(), 0);
        wait_until(Duration::from_secs(10), || {
            let n = proxy.fds();
            last = if n == last.0 { (n, last.1 + 1) } else { (n, 0) };
            last.1 >= 10
        });
        FdSnapshot { count: last.0, list: list_fds(proxy.pid()) }
    }

    /// Waits up to `timeout` for the proxy to be back at this count; fails
    /// with both descriptor lists.
    pub fn assert_back(&self, proxy: &Proxy, timeout: Duration, what: &str) {
        let mut now = 0;
        let settled = wait_until(timeout, || {
            now = proxy.fds();
            now == self.count
        });
        assert!(
            settled,
            "descriptors: {} before {what}, {now} after\nbefore: {:?}\nafter: {:?}",
            self.count,
            self.list,
            list_fds(proxy.pid())
        );
    }
}

/// What each descriptor of `pid` points at (for failure messages).
pub fn list_fds(pid: u32) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| {
                    let target = fs::read_link(e.path()).map(|t| t.display().to_string()).unwrap_or_default();
                    format!("{}->{}", e.file_name().to_string_lossy(), target)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// A tiny blocking HTTP/1.1 client.

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// First header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("not JSON ({e}): {:?}", self.text()))
    }
}

/// One request on a new connection: request line, `Host`, the given headers
/// (plus `Connection: close` unless a Connection header is given, and
/// `Content-Length` when there is a body or the method is POST/PUT), the
/// body; then reads the response up to its Content-Length, its last chunk,
/// or the close. Each read waits at most 15 s.
pub fn http(method: &str, addr: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<HttpResponse> {
    let sock = addr.to_socket_addrs()?.next().ok_or_else(|| io::Error::other("no address"))?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    s.set_write_timeout(Some(Duration::from_secs(15)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    let mut has_connection = false;
    let mut has_length = false;
    for (k, v) in headers {
        has_connection |= k.eq_ignore_ascii_case("connection");
        has_length |= k.eq_ignore_ascii_case("content-length");
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_connection {
        req.push_str("Connection: close\r\n");
    }
    if !has_length && (!body.is_empty() || method == "POST" || method == "PUT") {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    s.write_all(&bytes)?;
    read_http_response(&mut s)
}

/// Reads one HTTP/1.1 response from `s`.
pub fn read_http_response(s: &mut TcpStream) -> io::Result<HttpResponse> {
    let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
    let mut buf = Vec::new();
    let mut tmp = [0u8; 16384];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut tmp)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("closed before a complete response head ({} bytes)", buf.len()),
            ));
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(bad(format!("bad status line {status_line:?}")));
    }
    let status: u16 =
        parts.next().and_then(|c| c.parse().ok()).ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))).collect();
    let hdr = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let mut rest = buf[head_end + 4..].to_vec();
    let body = if let Some(len) = hdr("content-length") {
        let len: usize = len.parse().map_err(|_| bad(format!("bad Content-Length {len:?}")))?;
        while rest.len() < len {
            let n = s.read(&mut tmp)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed inside the body"));
            }
            rest.extend_from_slice(&tmp[..n]);
        }
        rest.truncate(len);
        rest
    } else if hdr("transfer-encoding").map(|v| v.eq_ignore_ascii_case("chunked")).unwrap_or(false) {
        read_chunked(s, rest)?
    } else if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else {
        loop {
            match s.read(&mut tmp) {
                Ok(0) => break,
                Ok(n) => rest.extend_from_slice(&tmp[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                Err(e) => return Err(e),
            }
        }
        rest
    };
    Ok(HttpResponse { status, headers, body })
}

fn read_chunked(s: &mut TcpStream, mut buf: Vec<u8>) -> io::Result<Vec<u8>> {
    let mut tmp = [0u8; 16384];
    let mut body = Vec::new();
    let mut more = |buf: &mut Vec<u8>, s: &mut TcpStream| -> io::Result<()> {
        let n = s.read(&mut tmp)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed inside a chunked body"));
        }
        buf.extend_from_slice(&tmp[..n]);
        Ok(())
    };
    loop {
        let line_end = loop {
            if let Some(i) = find(&buf, b"\r\n") {
                break i;
            }
            more(&mut buf, s)?;
        };
        let size_txt = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size = usize::from_str_radix(size_txt.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        buf.drain(..line_end + 2);
        if size == 0 {
            return Ok(body);
        }
        while buf.len() < size + 2 {
            more(&mut buf, s)?;
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------
// Raw connections.

/// Reads from `s` until the peer closes it (read returns 0 or a reset/abort
/// error): Ok(bytes received before the close). Err if it is still open
/// after `bound` (a hang guard).
pub fn read_until_closed(s: &mut TcpStream, bound: Duration) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + bound;
    let mut got = Vec::new();
    let mut tmp = [0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("connection still open after {bound:?} ({} bytes received)", got.len()));
        }
        s.set_read_timeout(Some(left.min(Duration::from_secs(1)))).map_err(|e| e.to_string())?;
        match s.read(&mut tmp) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&tmp[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe
                ) =>
            {
                return Ok(got)
            }
            Err(e) => return Err(format!("read error {e}")),
        }
    }
}

/// Writes `bytes`; a write refused because the peer already closed is not an
/// error here (the callers check the close itself).
pub fn write_ignoring_close(s: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    match s.write_all(bytes) {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Half-closes the write side (the peer reads EOF).
pub fn shutdown_write(s: &TcpStream) {
    let _ = s.shutdown(Shutdown::Write);
}

/// Reproducible garbage: a seeded fastrand generator.
pub struct Rng(fastrand::Rng);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(fastrand::Rng::with_seed(seed))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0.u64(..)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        self.0.fill(&mut b);
        b
    }
}

// ---------------------------------------------------------------------------
// nginx-rtmp as an HLS origin at the path the proxy asks for
// (`/live/<stream>.m3u8`), and the headless-browser check of the player pages.

impl NginxRtmp {
    /// An nginx-rtmp origin whose HLS lands in `<dir>/live` and is served by
    /// its HTTP server at `/live/<stream>.m3u8` and `/live/<stream>-N.ts`
    /// (HLS types, `Cache-Control: no-cache`, CORS open on every status),
    /// with `hls_fragment <fragment_secs>s`; `/stat` as in [`NginxRtmp::start`].
    pub fn start_live_hls(fragment_secs: u32) -> NginxRtmp {
        let playlist = (fragment_secs * 5).max(6);
        Self::launch("nginx-hls", "live", fragment_secs, playlist, None, live_locations)
    }

    /// The segment URIs of `/live/<stream>.m3u8` on this origin's HTTP server
    /// (empty while there is no playlist).
    pub fn hls_segments(&self, stream: &str) -> Vec<String> {
        match http("GET", &format!("127.0.0.1:{}", self.http_port), &format!("/live/{stream}.m3u8"), &[], b"") {
            Ok(r) if r.status == 200 => r
                .text()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from)
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The repo's `players/` folder (the pages the proxy serves by default).
pub fn players_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("players")
}

/// The repo's `tests/browser/` (check.mjs and its playwright-core).
pub fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Panics with what to run when the browser check cannot work here: Debian's
/// chromium, playwright-core in tests/browser, the player libraries in
/// players/vendor (all installed by scripts/install-players.sh).
pub fn require_browser() {
    let needed = [
        PathBuf::from("/usr/bin/chromium"),
        browser_dir().join("node_modules/playwright-core/package.json"),
        players_dir().join("vendor/mpegts.js"),
        players_dir().join("vendor/hls.min.js"),
    ];
    let missing: Vec<String> = needed.iter().filter(|p| !p.exists()).map(|p| p.display().to_string()).collect();
    assert!(missing.is_empty(), "missing {missing:?}: run scripts/install-players.sh");
}

/// Opens `url` in headless Chromium (tests/browser/check.mjs) and waits up to
/// `timeout` for the page's `<video>` to play: currentTime past `min_time`
/// seconds, then larger on a second sample. Saves a screenshot to
/// `screenshot` when given (also on failure). Ok(the JSON line check.mjs
/// printed) when the video played; Err(that line and node's stderr) if not.
pub fn browser_check(url: &str, timeout: Duration, min_time: f64, screenshot: Option<&Path>) -> Result<Value, String> {
    let dir = TempDir::new("browser");
    let mut cmd = Command::new("node");
    cmd.arg(browser_dir().join("check.mjs"))
        .arg(url)
        .args(["--timeout", &timeout.as_secs().max(1).to_string()])
        .args(["--min-time", &min_time.to_string()])
        .current_dir(browser_dir());
    if let Some(p) = screenshot {
        cmd.arg("--screenshot").arg(p);
    }
    let mut g = ProcGuard::spawn("browser-check", cmd, dir.path());
    // check.mjs bounds itself (timeout + browser start and close); this is
    // the hang guard above it.
    let st = g.wait_exit(timeout + Duration::from_secs(90));
    if st.is_none() {
        g.stop();
    }
    let out = g.stdout();
    let err = g.stderr();
    let line = out.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or("");
    let json: Option<Value> = serde_json::from_str(line).ok();
    match (st, json) {
        (Some(st), Some(v)) if st.success() && v["ok"] == true => Ok(v),
        (st, _) => Err(format!(
            "browser check of {url}: exit {st:?}; stdout {out:?}; stderr {:?}",
            err.chars().rev().take(4000).collect::<String>().chars().rev().collect::<String>()
        )),
    }
}

/// `/stat`, and the HLS folder `<prefix>/live` at `/live` with HLS types,
/// no-cache and CORS on every status.
pub fn live_locations(p: &str) -> String {
    format!(
        r#"location /stat {{ rtmp_stat all; }}
        location /live {{
            root {p};
            types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
            add_header Cache-Control no-cache always;
            add_header Access-Control-Allow-Origin * always;
        }}"#
    )
}
