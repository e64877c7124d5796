//! `GET /metrics` read the way operators read it: a real Prometheus server
//! scrapes the proxy every second while FFmpeg publishes through it and
//! players play over RTMP and HTTP-FLV, and the test asks Prometheus (its
//! HTTP API), not the proxy, what it saw. `promtool check metrics` lints the
//! exposition.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

struct Prometheus {
    _guard: ProcGuard,
    _dir: TempDir,
    port: u16,
}

impl Prometheus {
    /// Debian's prometheus with a one-file config scraping `target`'s
    /// /metrics every second.
    fn start(target: &str) -> Prometheus {
        let dir = TempDir::new("prometheus");
        let port = free_port();
        let conf = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: srs-proxy\n    \
             metrics_path: /metrics\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), conf).unwrap();
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        let guard = ProcGuard::spawn("prometheus", cmd, dir.path());
        assert!(wait_port(port, secs(30)), "prometheus did not listen on {port}");
        Prometheus { _guard: guard, _dir: dir, port }
    }

    /// An instant query's samples: (labels, value).
    fn query(&self, q: &str) -> Vec<(Value, f64)> {
        let path = format!("/api/v1/query?query={}", encode(q));
        let Ok(r) = http("GET", &format!("127.0.0.1:{}", self.port), &path, &[], b"") else {
            return Vec::new();
        };
        let v = r.json().unwrap_or_default();
        v["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| Some((s["metric"].clone(), s["value"][1].as_str()?.parse().ok()?)))
            .collect()
    }

    /// The sum of a query's samples (0 when none).
    fn sum(&self, q: &str) -> f64 {
        self.query(q).iter().map(|(_, v)| v).sum()
    }
}

/// Percent-encodes a PromQL query for a URL.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `ffmpeg -i URL -c copy -f null -`: a player until dropped.
fn player(url: &str) -> (ProcGuard, TempDir) {
    let dir = TempDir::new("player");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i", url, "-c", "copy", "-f", "null", "-"]);
    (ProcGuard::spawn("ffmpeg-player", cmd, dir.path()), dir)
}

#[test]
fn prometheus_sees_bytes_players_and_why_a_session_ended() {
    let nms = Nms::start();
    let proxy = Proxy::start(&[]);
    assert_eq!(proxy.register(&nms.origin().register_body()).status, 200);
    let prom = Prometheus::start(&proxy.sys_api());

    let _publisher = ffmpeg_publish(&proxy.rtmp_url("metrics"));
    let key = "__defaultVhost__/live/metrics";
    proxy.wait_pinned(key, secs(15));
    assert!(wait_until(secs(15), || nms_has(&nms, "metrics")), "the publish never reached the origin");
    let (mut rtmp_player, _d1) = player(&proxy.rtmp_url("metrics"));
    let _flv_player = player(&format!("http://127.0.0.1:{}/live/metrics.flv", proxy.http_server_port));

    let active = |proto: &str, role: &str| {
        prom.sum(&format!("srs_proxy_sessions_active{{protocol=\"{proto}\",role=\"{role}\"}}"))
    };
    assert!(
        wait_until(secs(30), || active("rtmp", "play") >= 1.0
            && active("http-flv", "play") >= 1.0
            && active("rtmp", "publish") >= 1.0),
        "Prometheus never saw the players and the publisher as active: rtmp play {}, http-flv play {}, publish {}",
        active("rtmp", "play"),
        active("http-flv", "play"),
        active("rtmp", "publish")
    );

    // Bytes to the players grow while they play (relays tally at the idle sweep).
    let to_client = |proto: &str| {
        prom.sum(&format!("srs_proxy_relayed_bytes_total{{protocol=\"{proto}\",direction=\"to_client\"}}"))
    };
    let (rtmp0, flv0) = (to_client("rtmp"), to_client("http-flv"));
    assert!(
        wait_until(secs(20), || to_client("rtmp") > rtmp0 + 100_000.0 && to_client("http-flv") > flv0 + 100_000.0),
        "relayed bytes did not grow: rtmp {rtmp0} -> {}, http-flv {flv0} -> {}",
        to_client("rtmp"),
        to_client("http-flv")
    );
    assert!(prom.sum("srs_proxy_relayed_bytes_total{protocol=\"rtmp\",direction=\"to_origin\"}") > 100_000.0);
    assert!(prom.sum("srs_proxy_origins{state=\"alive\"}") >= 1.0);
    assert!(prom.sum("srs_proxy_pins") >= 1.0);
    assert!(prom.sum("srs_proxy_session_setup_seconds_count{protocol=\"rtmp\"}") >= 2.0);
    let live = prom.query("srs_proxy_connections_live");
    assert_eq!(live.len(), 2, "one series per core: {live:?}");

    // The RTMP player leaves (killed, so it closes or resets): the end
    // counter moves with that reason.
    let ended = || {
        prom.sum(
            "srs_proxy_sessions_ended_total{protocol=\"rtmp\",role=\"play\",reason=~\"client closed|client reset\"}",
        )
    };
    let before = ended();
    rtmp_player.stop();
    assert!(
        wait_until(secs(20), || ended() >= before + 1.0),
        "the ended counter with a client reason never moved: {:?}",
        prom.query("srs_proxy_sessions_ended_total")
    );

    // The exposition passes Prometheus's own linter.
    let body = proxy.get("/metrics");
    assert_eq!(body.status, 200);
    assert!(body.header("Content-Type").is_some_and(|c| c.starts_with("text/plain; version=0.0.4")));
    let mut lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    lint.stdin.take().unwrap().write_all(&body.body).unwrap();
    let out = lint.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        body.text()
    );
}

/// Whether node-media-server serves `stream` over HTTP-FLV (a publisher is on).
fn nms_has(nms: &Nms, stream: &str) -> bool {
    ffprobe(&nms.flv_url(stream), secs(8)).is_ok_and(|p| is_test_clip(&p))
}
