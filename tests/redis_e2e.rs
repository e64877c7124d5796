//! Many proxies acting as one through a shared Redis, end to end with real
//! peers: redis-server (and redis-sentinel), two srs-proxy processes,
//! nginx-rtmp and node-media-server origins registered through proxy A
//! only, FFmpeg publishing and ffprobe/ffmpeg playing through either proxy.
//! The keys and values are read back with redis-cli (B§5.3).

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// ---------------------------------------------------------------------------
// redis-server, redis-sentinel and redis-cli (peers.md).

struct Redis {
    guard: ProcGuard,
    _dir: TempDir,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        Redis::on_port(free_port(), &[])
    }

    /// A server without persistence, so a restart comes back empty.
    fn on_port(port: u16, extra: &[&str]) -> Redis {
        let dir = TempDir::new("redis");
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .args(extra);
        let guard = ProcGuard::spawn("redis-server", cmd, dir.path());
        let r = Redis { guard, _dir: dir, port };
        // With --requirepass it answers NOAUTH, which shows it is up too.
        let up = wait_until(secs(10), || {
            let a = r.cli(&["ping"]);
            a == "PONG" || a.starts_with("NOAUTH")
        });
        assert!(up, "redis-server on {port} did not answer PING");
        r
    }

    fn cli(&self, args: &[&str]) -> String {
        cli(self.port, args)
    }

    fn get(&self, key: &str) -> String {
        self.cli(&["get", key])
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli").args(["-p", &port.to_string()]).args(args).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim_end().to_string()).unwrap_or_default()
}

/// Two proxies on one Redis (two workers each).
fn proxies(redis_port: u16, extra: &[(&str, &str)]) -> (Proxy, Proxy) {
    let port = redis_port.to_string();
    let mut env = vec![("PROXY_LOAD_BALANCER_TYPE", "redis"), ("PROXY_REDIS_PORT", port.as_str())];
    env.extend_from_slice(extra);
    (Proxy::start(&env), Proxy::start(&env))
}

fn flv_url(proxy: &Proxy, name: &str) -> String {
    format!("http://127.0.0.1:{}/live/{name}.flv", proxy.http_server_port)
}

/// An FFmpeg player reading the stream through `url` until dropped.
fn ffmpeg_play(url: &str) -> ProcGuard {
    let dir = TempDir::new("ffplay");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i", url, "-c", "copy", "-f", "null", "-"]);
    ProcGuard::spawn("ffmpeg-play", cmd, dir.path())
}

// ---------------------------------------------------------------------------

#[test]
fn rtmp_through_a_plays_through_b_on_one_origin_and_redis_holds_the_b53_schema() {
    let redis = Redis::start();
    let origins: Vec<NginxRtmp> = (0..2).map(|_| NginxRtmp::start()).collect();
    let infos: Vec<OriginInfo> = origins.iter().map(|o| o.origin()).collect();
    let (a, b) = proxies(redis.port, &[]);
    let _hb = heartbeats(&a, &infos);

    let _publisher = ffmpeg_publish(&a.rtmp_url("crossrtmp"));
    let found = wait_holders(&origins, "crossrtmp");
    assert_eq!(found.len(), 1, "the stream must be on exactly one origin; /stat shows it on {found:?}");
    let holder = &infos[found[0]];

    // B never saw a heartbeat; the origin and the pin come from Redis.
    probe_clip(&b.rtmp_url("crossrtmp"), secs(20));
    assert_eq!(holders(&origins, "crossrtmp"), found, "the player moved the stream");
    assert_eq!(b.pinned_origin(&live_key("crossrtmp")), Some(holder.id()), "B's /api/v1/streams");
    assert!(wait_until(secs(5), || b.origins().len() == 2), "B lists the origins registered on A: {:?}", b.origins());

    // The keys and values of B§5.3, read back with redis-cli.
    let key = |o: &OriginInfo| format!("srs-proxy-server:{}", o.id());
    assert_eq!(redis.get(&format!("srs-proxy-url:{}", live_key("crossrtmp"))), key(holder));
    let all: Vec<String> = serde_json::from_str(&redis.get("srs-proxy-all-servers")).expect("all-servers is JSON");
    let all: BTreeSet<String> = all.into_iter().collect();
    assert_eq!(all, infos.iter().map(key).collect::<BTreeSet<_>>(), "srs-proxy-all-servers");
    assert_eq!(redis.cli(&["ttl", "srs-proxy-all-servers"]), "-1", "the list has no TTL");
    assert_eq!(redis.cli(&["ttl", &format!("srs-proxy-url:{}", live_key("crossrtmp"))]), "-1", "pins have no TTL");
    for o in &infos {
        let v: serde_json::Value = serde_json::from_str(&redis.get(&key(o))).expect("server value is JSON");
        assert_eq!(v["ip"], "127.0.0.1");
        assert_eq!(v["server_id"], o.server.as_str());
        assert_eq!(v["service_id"], o.service.as_str());
        assert_eq!(v["pid"], o.pid.as_str());
        assert_eq!(v["device_id"], o.device_id.as_str());
        assert_eq!(v["rtmp"], serde_json::json!([o.rtmp.to_string()]));
        let ttl: i64 = redis.cli(&["ttl", &key(o)]).parse().unwrap();
        assert!((1..=300).contains(&ttl), "server key TTL {ttl} (PROXY_ORIGIN_SERVER_TTL 300 s)");
    }
}

#[test]
fn http_flv_through_b_from_a_node_media_server_origin_registered_on_a() {
    let redis = Redis::start();
    let nms = Nms::start();
    let info = nms.origin();
    let (a, b) = proxies(redis.port, &[("PROXY_REDIS_KEY_PREFIX", "px")]);
    let _hb = heartbeats(&a, std::slice::from_ref(&info));

    let _publisher = ffmpeg_publish(&a.rtmp_url("crossflv"));
    assert_eq!(a.wait_pinned(&live_key("crossflv"), secs(20)), info.id());
    probe_clip(&flv_url(&b, "crossflv"), secs(20));
    // Under the prefix, as `<prefix>:<key>`.
    assert_eq!(
        redis.get(&format!("px:srs-proxy-url:{}", live_key("crossflv"))),
        format!("px:srs-proxy-server:{}", info.id())
    );
    assert_eq!(redis.get("px:srs-proxy-all-servers"), format!("[\"px:srs-proxy-server:{}\"]", info.id()));
    assert_eq!(redis.cli(&["exists", "srs-proxy-all-servers"]), "0", "nothing outside the prefix");
}

fn spbhid_of(line: &str) -> Option<String> {
    let i = line.find("spbhid=")?;
    Some(line[i + 7..].split('&').next()?.to_string())
}

#[test]
fn hls_playlist_from_a_and_its_segments_through_b_reach_the_holding_origin() {
    let mut redis = Redis::start();
    let origins: Vec<NginxRtmp> =
        (0..2).map(|_| NginxRtmp::launch("nginx-hls", "live", 1, 6, None, live_locations)).collect();
    let infos: Vec<OriginInfo> = origins.iter().map(|o| o.origin()).collect();
    let (a, b) = proxies(redis.port, &[]);
    let _hb = heartbeats(&a, &infos);

    let _publisher = ffmpeg_publish(&a.rtmp_url("crosshls"));
    let found = wait_holders(&origins, "crosshls");
    assert_eq!(found.len(), 1);
    let holder = &origins[found[0]];
    assert!(wait_until(secs(40), || holder.hls_segments("crosshls").len() >= 3), "no HLS segments at the origin");

    let a_addr = format!("127.0.0.1:{}", a.http_server_port);
    let b_addr = format!("127.0.0.1:{}", b.http_server_port);
    let pl = http("GET", &a_addr, "/live/crosshls.m3u8", &[], b"").unwrap();
    assert_eq!(pl.status, 200, "playlist through A: {}", pl.text());
    let uris: Vec<String> =
        pl.text().lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(String::from).collect();
    assert!(!uris.is_empty(), "no segment in {}", pl.text());
    let sid = spbhid_of(&uris[0]).expect("segment URI with spbhid");

    // The session record in Redis (B§5.3 JSON, 120 s).
    let rec: serde_json::Value = serde_json::from_str(&redis.get(&format!("srs-proxy-spbhid:{sid}"))).unwrap();
    assert_eq!(rec["spbhid"], sid.as_str());
    assert_eq!(rec["stream_url"], live_key("crosshls").as_str());
    let ttl: i64 = redis.cli(&["ttl", &format!("srs-proxy-spbhid:{sid}")]).parse().unwrap();
    assert!((1..=120).contains(&ttl), "spbhid TTL {ttl}");
    let rec2: serde_json::Value =
        serde_json::from_str(&redis.get(&format!("srs-proxy-hls:{}", live_key("crosshls")))).unwrap();
    assert_eq!(rec2["stream_url"], live_key("crosshls").as_str());

    // Every segment through B: served, by the origin holding the stream.
    for uri in &uris {
        let path = if uri.starts_with('/') { uri.clone() } else { format!("/live/{uri}") };
        let seg = http("GET", &b_addr, &path, &[], b"").unwrap();
        assert_eq!(seg.status, 200, "segment {path} through B: {}", seg.text());
        assert!(seg.body.len() > 188 && seg.body[0] == 0x47, "not MPEG-TS: {} bytes", seg.body.len());
    }
    // A segment request through B refreshes the record's TTL.
    thread::sleep(secs(2));
    let path = if uris[0].starts_with('/') { uris[0].clone() } else { format!("/live/{}", uris[0]) };
    let _ = http("GET", &b_addr, &path, &[], b"").unwrap();
    let ttl: i64 = redis.cli(&["ttl", &format!("srs-proxy-spbhid:{sid}")]).parse().unwrap();
    assert!(ttl >= 119, "segment through B did not refresh the session: TTL {ttl}");

    // Redis comes back empty: the proxies write the session back, so the
    // player's next segment (the origin's newest) still finds its origin.
    let port = redis.port;
    redis.guard.signal(libc::SIGKILL);
    assert!(redis.guard.wait_exit(secs(5)).is_some());
    redis = Redis::on_port(port, &[]);
    let key = format!("srs-proxy-spbhid:{sid}");
    assert!(wait_until(secs(10), || !redis.get(&key).is_empty()), "the HLS session was not written back");
    let newest = holder.hls_segments("crosshls").pop().expect("the origin's playlist has segments");
    let path = format!("/live/{newest}?spbhid={sid}");
    let seg = http("GET", &b_addr, &path, &[], b"").unwrap();
    assert_eq!(seg.status, 200, "segment {path} through B after Redis came back empty: {}", seg.text());
}

#[test]
fn twenty_concurrent_first_publishes_over_both_proxies_meet_their_players_through_the_other() {
    let redis = Redis::start();
    let origins: Vec<NginxRtmp> = (0..3).map(|_| NginxRtmp::start()).collect();
    let infos: Vec<OriginInfo> = origins.iter().map(|o| o.origin()).collect();
    let (a, b) = proxies(redis.port, &[]);
    let _hb = heartbeats(&a, &infos);
    assert!(wait_until(secs(5), || b.origins().len() == 3), "B sees the origins");

    let names: Vec<String> = (0..20).map(|i| format!("conc{i}")).collect();
    let via = |i: usize| if i.is_multiple_of(2) { (&a, &b) } else { (&b, &a) };
    let _pubs: Vec<ProcGuard> = names.iter().enumerate().map(|(i, n)| ffmpeg_publish(&via(i).0.rtmp_url(n))).collect();
    let mut used = BTreeSet::new();
    for n in &names {
        let found = wait_holders(&origins, n);
        assert_eq!(found.len(), 1, "{n} must be on exactly one origin: {found:?}");
        used.insert(found[0]);
        assert_eq!(
            redis.get(&format!("srs-proxy-url:{}", live_key(n))),
            format!("srs-proxy-server:{}", infos[found[0]].id())
        );
    }
    assert!(used.len() > 1, "twenty streams all on one origin");
    // Each played through the other proxy, all at once: a player sent to
    // another origin would find no publisher there and time out.
    let players: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let url = via(i).1.rtmp_url(n);
            thread::spawn(move || (url.clone(), ffprobe(&url, secs(40))))
        })
        .collect();
    for p in players {
        let (url, res) = p.join().unwrap();
        let out = res.unwrap_or_else(|e| panic!("play {url}: {e}"));
        assert!(is_test_clip(&out), "play {url}: {out:?}");
    }
    for n in &names {
        assert_eq!(holders(&origins, n).len(), 1, "{n} spread to another origin");
    }
}

#[test]
fn redis_down_keeps_relays_fails_new_requests_fast_and_an_empty_restart_recovers_the_pins() {
    let mut redis = Redis::start();
    let port = redis.port;
    let origins: Vec<NginxRtmp> = (0..3).map(|_| NginxRtmp::start()).collect();
    let infos: Vec<OriginInfo> = origins.iter().map(|o| o.origin()).collect();
    let (a, b) = proxies(port, &[]);
    let _hb = heartbeats(&a, &infos);

    // Several streams over several origins, published through A.
    let names: Vec<String> = (0..6).map(|i| format!("surv{i}")).collect();
    let _pubs: Vec<ProcGuard> = names.iter().map(|n| ffmpeg_publish(&a.rtmp_url(n))).collect();
    let placed: Vec<usize> = names
        .iter()
        .map(|n| {
            let f = wait_holders(&origins, n);
            assert_eq!(f.len(), 1, "{n}: {f:?}");
            f[0]
        })
        .collect();
    assert!(placed.iter().collect::<BTreeSet<_>>().len() > 1, "all streams on one origin: {placed:?}");
    // A live player through B.
    let mut player = ffmpeg_play(&b.rtmp_url(&names[0]));
    let holder0 = &origins[placed[0]];
    assert!(
        wait_until(secs(20), || stat_xml_players(&holder0.stat(), &names[0]) >= 1),
        "the player through B never reached the origin"
    );

    // Redis goes away.
    redis.guard.signal(libc::SIGKILL);
    assert!(redis.guard.wait_exit(secs(5)).is_some());
    thread::sleep(secs(2));
    // Relays already running go on: publishers still on their origins, the
    // player still playing.
    for (n, &h) in names.iter().zip(&placed) {
        assert!(origins[h].has_stream(n), "{n} left its origin while Redis was down");
    }
    assert!(player.is_running(), "the player through B ended: {}", player.stderr());
    assert!(stat_xml_players(&holder0.stat(), &names[0]) >= 1, "the player left the origin");
    // New requests that need Redis fail fast with a clear error.
    for p in [&a, &b] {
        let t = Instant::now();
        let r = http("GET", &format!("127.0.0.1:{}", p.http_server_port), &format!("/live/{}.flv", names[1]), &[], b"")
            .unwrap();
        let took = t.elapsed();
        assert_eq!(r.status, 503, "HTTP-FLV with Redis down: {}", r.text());
        let v: serde_json::Value = r.json().expect("a JSON error body");
        assert!(v["message"].as_str().unwrap_or("").contains("redis"), "error body {v}");
        assert!(took < secs(2), "HTTP-FLV with Redis down took {took:?}");
        let t = Instant::now();
        let res = ffprobe(&p.rtmp_url(&names[1]), secs(10));
        assert!(res.is_err(), "an RTMP play with Redis down worked: {res:?}");
        assert!(t.elapsed() < secs(3), "an RTMP play with Redis down took {:?}", t.elapsed());
    }
    assert!(a.log().contains("redis"), "A logged nothing about Redis");

    // Redis comes back empty on the same port; no proxy restarts.
    redis = Redis::on_port(port, &[]);
    let pins_back =
        wait_until(secs(10), || names.iter().all(|n| !redis.get(&format!("srs-proxy-url:{}", live_key(n))).is_empty()));
    assert!(pins_back, "the proxies did not write the pins back: {}", redis.cli(&["keys", "*"]));
    for (n, &h) in names.iter().zip(&placed) {
        assert_eq!(
            redis.get(&format!("srs-proxy-url:{}", live_key(n))),
            format!("srs-proxy-server:{}", infos[h].id()),
            "{n} written back to another origin"
        );
    }
    // New players of the still-live streams meet their publishers, through
    // either proxy.
    for (i, n) in names.iter().enumerate() {
        let p = if i % 2 == 0 { &a } else { &b };
        probe_clip(&p.rtmp_url(n), secs(20));
    }
    for (n, &h) in names.iter().zip(&placed) {
        assert_eq!(holders(&origins, n), vec![h], "{n} moved");
    }
    assert!(player.is_running(), "the player through B ended: {}", player.stderr());
    player.stop();
}

#[test]
fn startup_with_redis_unreachable_is_one_clear_line_and_a_non_zero_exit() {
    let port = free_port().to_string();
    let mut p = Proxy::spawn(ProxyOpts::new().env("PROXY_LOAD_BALANCER_TYPE", "redis").env("PROXY_REDIS_PORT", &port));
    let st = p.guard.wait_exit(secs(10)).expect("the proxy kept running without Redis");
    assert!(!st.success(), "exit status {st}");
    let err = fs::read_to_string(p.guard.stderr_path()).unwrap_or_default();
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("srs-proxy:")).collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    assert!(lines[0].contains("redis") && lines[0].contains(&port), "the line: {}", lines[0]);
}

// ---------------------------------------------------------------------------
// Both balancers: an origin killed while its heartbeat is still fresh.

/// Publishes `n` streams through `via` (one after another) and returns
/// them with the index of the origin each landed on.
fn place_streams(via: &Proxy, origins: &[NginxRtmp], prefix: &str, n: usize) -> (Vec<ProcGuard>, Vec<(String, usize)>) {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    let pubs: Vec<ProcGuard> = names.iter().map(|s| ffmpeg_publish(&via.rtmp_url(s))).collect();
    let placed = names
        .into_iter()
        .map(|s| {
            let f = wait_holders(origins, &s);
            assert_eq!(f.len(), 1, "{s}: {f:?}");
            (s, f[0])
        })
        .collect();
    (pubs, placed)
}

/// The heartbeats go on (the test sends them), the origin is SIGKILLed: the
/// next publish of one of its streams, through `again`, lands on the live
/// origin at once, and a player through `play` meets it there.
/// `held` runs right after the republish landed, inside the hold-down.
fn killed_origin_case(
    first: &Proxy,
    again: &Proxy,
    play: &Proxy,
    origins: &mut [NginxRtmp],
    infos: &[OriginInfo],
    held: &dyn Fn(),
) {
    let (mut pubs, placed) = place_streams(first, origins, "victim", 8);
    let Some(i) = placed.iter().position(|(_, o)| *o == 0) else {
        panic!("no stream landed on origin 0 of two: {placed:?}");
    };
    let name = placed[i].0.clone();
    pubs[i].stop();
    origins[0].guard.signal(libc::SIGKILL);
    assert!(origins[0].guard.wait_exit(secs(5)).is_some(), "nginx survived SIGKILL");

    let t = Instant::now();
    let _re = ffmpeg_publish(&again.rtmp_url(&name));
    assert!(
        wait_until(secs(15), || origins[1].has_stream(&name)),
        "{name} was not republished on the live origin: {}",
        again.log()
    );
    let took = t.elapsed();
    held();
    probe_clip(&play.rtmp_url(&name), secs(20));
    let refused = again.log_lines_with(&["origin refused the connection"]);
    assert!(!refused.is_empty(), "no refused-connect line in the log of the proxy that republished");
    assert!(refused.iter().any(|l| l.contains(&infos[0].id())), "the line names the dead origin: {refused:?}");
    let held: u64 = again.get("/api/v1/origins").json().unwrap()["held_down_total"].as_u64().unwrap();
    assert!(held >= 1, "hold-downs counted: {held}");
    eprintln!("republished on the live origin {took:?} after the publish started");
}

#[test]
fn an_origin_killed_while_registered_loses_its_next_publish_at_once_memory() {
    let mut origins: Vec<NginxRtmp> = (0..2).map(|_| NginxRtmp::start()).collect();
    let infos: Vec<OriginInfo> = origins.iter().map(|o| o.origin()).collect();
    let p = Proxy::start(&[]);
    let _hb = heartbeats(&p, &infos);
    let alive = |p: &Proxy| {
        p.origins().iter().any(|o| o["id"] == infos[0].id().as_str() && o["alive"] == serde_json::json!(true))
    };
    let held = || assert!(!alive(&p), "the refused origin is listed alive during its hold-down");
    killed_origin_case(&p, &p, &p, &mut origins, &infos, &held);
    // Held down, not forgotten: its heartbeats (still sent) bring it back
    // once the hold-down (10 s) is over.
    assert!(wait_until(secs(15), || alive(&p)), "the origin never came back after the hold-down: {:?}", p.origins());
}

#[test]
fn an_origin_killed_while_registered_loses_its_next_publish_at_once_redis_either_proxy() {
    let redis = Redis::start();
    let mut origins: Vec<NginxRtmp> = (0..2).map(|_| NginxRtmp::start()).collect();
    let infos: Vec<OriginInfo> = origins.iter().map(|o| o.origin()).collect();
    let (a, b) = proxies(redis.port, &[]);
    let _hb = heartbeats(&a, &infos);
    assert!(wait_until(secs(5), || b.origins().len() == 2), "B sees the origins");
    // The hold-down is in Redis for every proxy: the dead origin's key is
    // gone and its heartbeats (still arriving at A) do not bring it back.
    let dead = format!("srs-proxy-server:{}", infos[0].id());
    let held = || {
        assert_eq!(redis.cli(&["exists", &dead]), "0", "the dead origin is still listed");
        assert_eq!(redis.cli(&["exists", &format!("srs-proxy-down:{}", infos[0].id())]), "1");
    };
    // Published through A, republished through B, played through A.
    killed_origin_case(&a, &b, &a, &mut origins, &infos, &held);
    // After the hold-down its next heartbeat lists it again.
    assert!(wait_until(secs(15), || redis.cli(&["exists", &dead]) == "1"), "the origin never came back");
    let all = redis.get("srs-proxy-all-servers");
    assert!(all.contains(&dead), "back in srs-proxy-all-servers: {all}");
}

// ---------------------------------------------------------------------------
// Redis Sentinel: one master, one replica, three sentinels.

fn sentinel(master_port: u16) -> (ProcGuard, TempDir, u16) {
    let dir = TempDir::new("sentinel");
    let port = free_port();
    let conf = dir.join("sentinel.conf");
    fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {}\n\
             sentinel monitor mymaster 127.0.0.1 {master_port} 2\n\
             sentinel down-after-milliseconds mymaster 1000\n\
             sentinel failover-timeout mymaster 3000\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new("redis-sentinel");
    cmd.arg(&conf);
    let g = ProcGuard::spawn("redis-sentinel", cmd, dir.path());
    (g, dir, port)
}

fn master_of(sentinel_port: u16) -> String {
    cli(sentinel_port, &["sentinel", "get-master-addr-by-name", "mymaster"]).replace('\n', ":")
}

#[test]
fn sentinel_failover_is_followed_and_both_proxies_keep_serving() {
    let mut master = Redis::start();
    let replica = Redis::on_port(free_port(), &["--replicaof", "127.0.0.1", &master.port.to_string()]);
    assert!(
        wait_until(secs(10), || master.cli(&["info", "replication"]).contains("connected_slaves:1")),
        "the replica did not attach"
    );
    let sentinels: Vec<(ProcGuard, TempDir, u16)> = (0..3).map(|_| sentinel(master.port)).collect();
    // Every sentinel knows the replica and the two other sentinels before
    // the master can be failed over.
    let ready = wait_until(secs(30), || {
        sentinels.iter().all(|(_, _, p)| {
            let s = cli(*p, &["sentinel", "master", "mymaster"]);
            let lines: Vec<&str> = s.lines().collect();
            let field = |k: &str| lines.iter().position(|l| *l == k).and_then(|i| lines.get(i + 1)).copied();
            field("num-slaves") == Some("1") && field("num-other-sentinels") == Some("2")
        })
    });
    assert!(ready, "the sentinels never saw the replica and each other");
    let list: Vec<String> = sentinels.iter().map(|(_, _, p)| format!("127.0.0.1:{p}")).collect();
    let list = list.join(",");
    let env = [
        ("PROXY_LOAD_BALANCER_TYPE", "redis"),
        // HOST/PORT point nowhere: only the sentinels can name the master.
        ("PROXY_REDIS_PORT", "1"),
        ("PROXY_REDIS_SENTINELS", list.as_str()),
        ("PROXY_REDIS_SENTINEL_MASTER", "mymaster"),
    ];
    let (a, b) = (Proxy::start(&env), Proxy::start(&env));
    let origins: Vec<NginxRtmp> = (0..2).map(|_| NginxRtmp::start()).collect();
    let infos: Vec<OriginInfo> = origins.iter().map(|o| o.origin()).collect();
    let _hb = heartbeats(&a, &infos);

    let _p1 = ffmpeg_publish(&a.rtmp_url("before"));
    let f = wait_holders(&origins, "before");
    assert_eq!(f.len(), 1);
    probe_clip(&b.rtmp_url("before"), secs(20));
    assert!(master.get(&format!("srs-proxy-url:{}", live_key("before"))).starts_with("srs-proxy-server:"));

    // The master dies; the sentinels promote the replica.
    master.guard.signal(libc::SIGKILL);
    assert!(master.guard.wait_exit(secs(5)).is_some());
    let promoted = format!("127.0.0.1:{}", replica.port);
    assert!(
        wait_until(secs(30), || master_of(sentinels[0].2) == promoted),
        "no failover: sentinel names {}",
        master_of(sentinels[0].2)
    );

    // New publishes and plays through both proxies, no restart.
    let mut ok = false;
    let t = Instant::now();
    // Proxies find the new master within their backoff (≤ 1 s) of a request.
    while t.elapsed() < secs(15) {
        let r = http("GET", &format!("127.0.0.1:{}", b.http_server_port), "/live/probe.flv", &[], b"").unwrap();
        if r.status != 503 {
            ok = true;
            break;
        }
        thread::sleep(Duration::from_millis(300));
    }
    assert!(ok, "B still answers 503 after the failover: {}", b.log());
    let _p2 = ffmpeg_publish(&b.rtmp_url("after"));
    let f2 = wait_holders(&origins, "after");
    assert_eq!(f2.len(), 1);
    probe_clip(&a.rtmp_url("after"), secs(20));
    probe_clip(&a.rtmp_url("before"), secs(20));
    assert_eq!(
        replica.get(&format!("srs-proxy-url:{}", live_key("after"))),
        format!("srs-proxy-server:{}", infos[f2[0]].id()),
        "the pin is in the new master"
    );
    assert_eq!(replica.cli(&["role"]).lines().next(), Some("master"));
}

// ---------------------------------------------------------------------------
// Atomic where it matters.

#[test]
fn concurrent_first_picks_of_one_stream_agree_and_concurrent_heartbeats_lose_no_origin() {
    let redis = Redis::start();
    let (a, b) = proxies(redis.port, &[]);

    // Forty origins registering at once through both proxies (two cores
    // each): with a read-modify-write of the list some would be lost.
    let bodies: Vec<String> = (0..40)
        .map(|i| {
            serde_json::json!({"ip": "127.0.0.1", "server": format!("vid-c{i}"), "service": "s", "pid": "1",
                "rtmp": ["1935"], "http": ["8080"]})
            .to_string()
        })
        .collect();
    let regs: Vec<_> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let sys = if i % 2 == 0 { a.sys_api() } else { b.sys_api() };
            let body = body.clone();
            thread::spawn(move || register(&sys, &body, &[]).status)
        })
        .collect();
    for r in regs {
        assert_eq!(r.join().unwrap(), 200);
    }
    let all: Vec<String> = serde_json::from_str(&redis.get("srs-proxy-all-servers")).unwrap();
    let want: BTreeSet<String> = (0..40).map(|i| format!("srs-proxy-server:vid-c{i}-s-1")).collect();
    assert_eq!(all.iter().cloned().collect::<BTreeSet<_>>(), want, "origins lost from the list");
    assert_eq!(all.len(), 40, "duplicates in the list: {all:?}");

    // Real origins for the picks (their HTTP servers answer 404 at once).
    for k in &want {
        redis.cli(&["del", k]);
    }
    let origins: Vec<NginxRtmp> = (0..3).map(|_| NginxRtmp::start()).collect();
    let infos: Vec<OriginInfo> = origins.iter().map(|o| o.origin()).collect();
    let _hb = heartbeats(&a, &infos);
    assert!(wait_until(secs(5), || b.origins().len() == 3), "B sees the origins");
    // Twelve first requests per stream, half through each proxy, at once.
    let streams: Vec<String> = (0..8).map(|i| format!("race{i}")).collect();
    let reqs: Vec<_> = (0..12)
        .flat_map(|i| streams.iter().map(move |s| (i, s.clone())))
        .map(|(i, s)| {
            let addr = format!("127.0.0.1:{}", if i % 2 == 0 { a.http_server_port } else { b.http_server_port });
            thread::spawn(move || http("GET", &addr, &format!("/live/{s}.flv"), &[], b"").map(|r| r.status))
        })
        .collect();
    for r in reqs {
        assert_eq!(r.join().unwrap().unwrap(), 404, "the origin's answer for an unpublished stream");
    }
    for s in &streams {
        let key = live_key(s);
        let mut seen = BTreeSet::new();
        for p in [&a, &b] {
            for line in p.log_lines_with(&["http stream ended", &format!("stream={key} ")]) {
                seen.insert(log_field(&line, "origin").unwrap_or_default());
            }
        }
        assert_eq!(seen.len(), 1, "{s}: requests through both proxies went to {seen:?}");
        let pinned = redis.get(&format!("srs-proxy-url:{key}"));
        assert_eq!(pinned, format!("srs-proxy-server:{}", seen.iter().next().unwrap()), "{s}");
    }
}

#[test]
fn a_host_name_password_and_db_reach_the_data_node_and_a_wrong_password_stops_startup() {
    let redis = Redis::on_port(free_port(), &["--requirepass", "s3cret"]);
    let port = redis.port.to_string();
    // A host name, as in K8s: looked up off the core (localhost may give
    // ::1 first, where this redis-server does not listen).
    let base = [
        ("PROXY_LOAD_BALANCER_TYPE", "redis"),
        ("PROXY_REDIS_HOST", "localhost"),
        ("PROXY_REDIS_PORT", port.as_str()),
        ("PROXY_REDIS_DB", "3"),
    ];
    let mut bad = ProxyOpts::new().env("PROXY_REDIS_PASSWORD", "wrong");
    for (k, v) in base {
        bad = bad.env(k, v);
    }
    let mut p = Proxy::spawn(bad);
    let st = p.guard.wait_exit(secs(10)).expect("the proxy started with a wrong Redis password");
    assert!(!st.success());
    let err = fs::read_to_string(p.guard.stderr_path()).unwrap_or_default();
    assert!(err.lines().any(|l| l.starts_with("srs-proxy:") && l.contains("WRONGPASS")), "stderr: {err}");

    let mut env = base.to_vec();
    env.push(("PROXY_REDIS_PASSWORD", "s3cret"));
    let a = Proxy::start(&env);
    let o = OriginInfo {
        device_id: "d".into(),
        server: "vid-pw".into(),
        service: "s".into(),
        pid: "7".into(),
        ip: "127.0.0.1".into(),
        rtmp: 1935,
        http: None,
    };
    assert_eq!(a.register(&o.register_body()).status, 200);
    let authed = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-p", &port, "-a", "s3cret", "--no-auth-warning", "-n", "3"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    };
    assert_eq!(authed(&["exists", "srs-proxy-server:vid-pw-s-7"]), "1", "the origin is in database 3");
    assert_eq!(authed(&["-n", "0", "exists", "srs-proxy-server:vid-pw-s-7"]), "0", "not in database 0");
}

#[test]
fn a_redis_that_stops_answering_fails_new_requests_within_the_timeout_and_is_followed_back() {
    let mut redis = Redis::start();
    let origins: Vec<NginxRtmp> = (0..2).map(|_| NginxRtmp::start()).collect();
    let infos: Vec<OriginInfo> = origins.iter().map(|o| o.origin()).collect();
    let (a, b) = proxies(redis.port, &[]);
    let _hb = heartbeats(&a, &infos);
    let _publisher = ffmpeg_publish(&a.rtmp_url("slow"));
    let found = wait_holders(&origins, "slow");
    assert_eq!(found.len(), 1);
    let mut player = ffmpeg_play(&b.rtmp_url("slow"));
    assert!(wait_until(secs(20), || stat_xml_players(&origins[found[0]].stat(), "slow") >= 1), "player never came");

    // Redis hangs: its socket accepts, nothing answers.
    redis.guard.signal(libc::SIGSTOP);
    for p in [&a, &b] {
        let t = Instant::now();
        let r = http("GET", &format!("127.0.0.1:{}", p.http_server_port), "/live/slow.flv", &[], b"").unwrap();
        let took = t.elapsed();
        assert_eq!(r.status, 503, "with Redis hung: {}", r.text());
        assert!(r.text().contains("redis"), "{}", r.text());
        assert!(took < secs(3), "a request with Redis hung took {took:?}");
    }
    assert!(player.is_running(), "the relay through B ended while Redis hung");
    assert!(origins[found[0]].has_stream("slow"), "the publisher left while Redis hung");

    // Redis answers again: requests work without a restart.
    redis.guard.signal(libc::SIGCONT);
    let back = wait_until(secs(10), || {
        let r = http("GET", &format!("127.0.0.1:{}", b.http_server_port), "/live/nostream.flv", &[], b"").unwrap();
        r.status != 503
    });
    assert!(back, "B still answers 503 after Redis came back: {}", b.log());
    probe_clip(&b.rtmp_url("slow"), secs(20));
    assert!(player.is_running(), "the relay through B ended");
    player.stop();
}
