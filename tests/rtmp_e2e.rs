//! RTMP through srs-proxy, end to end, with real peers: FFmpeg publishes and
//! ffprobe plays through the proxy; the origins are real nginx-rtmp and
//! node-media-server instances registered through the register API (the
//! test is their heartbeat sender, as an operator registering "any server").

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use common::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn publish_through_proxy_lands_on_exactly_one_of_three_nginx_origins() {
    let origins: Vec<NginxRtmp> = (0..3).map(|_| NginxRtmp::start()).collect();
    let proxy = Proxy::start(&[]);
    let infos: Vec<OriginInfo> = origins.iter().map(|o| o.origin()).collect();
    let _hb = heartbeats(&proxy, &infos);

    // A user publishes the clip to the proxy, as to any RTMP server.
    let _publisher = ffmpeg_publish(&proxy.rtmp_url("livestream"));
    let found = wait_holders(&origins, "livestream");
    assert_eq!(found.len(), 1, "the stream must be on exactly one origin; /stat shows it on {found:?}");
    let holder = &infos[found[0]];

    // A player through the proxy gets the clip back.
    probe_clip(&proxy.rtmp_url("livestream"), secs(20));

    // Still on exactly that one origin, and the proxy says so.
    assert_eq!(holders(&origins, "livestream"), found);
    assert_eq!(
        proxy.pinned_origin(&live_key("livestream")),
        Some(holder.id()),
        "/api/v1/streams must name the origin nginx /stat shows: {:?}",
        proxy.streams()
    );
}

#[test]
fn ten_streams_spread_over_origins_and_each_plays_back() {
    let origins: Vec<NginxRtmp> = (0..3).map(|_| NginxRtmp::start()).collect();
    let proxy = Proxy::start(&[]);
    let infos: Vec<OriginInfo> = origins.iter().map(|o| o.origin()).collect();
    let _hb = heartbeats(&proxy, &infos);

    let names: Vec<String> = (0..10).map(|i| format!("stream{i}")).collect();
    let _publishers: Vec<ProcGuard> = names.iter().map(|n| ffmpeg_publish(&proxy.rtmp_url(n))).collect();

    let mut placed: BTreeMap<String, usize> = BTreeMap::new();
    for name in &names {
        let found = wait_holders(&origins, name);
        assert_eq!(found.len(), 1, "{name} must be on exactly one origin; /stat shows it on {found:?}");
        placed.insert(name.clone(), found[0]);
    }
    let used: BTreeSet<usize> = placed.values().copied().collect();
    assert!(used.len() > 1, "ten streams all landed on one origin: {placed:?}");
    for (name, &i) in &placed {
        assert_eq!(proxy.pinned_origin(&live_key(name)), Some(infos[i].id()), "/api/v1/streams for {name}");
    }

    // One player per stream, all at once, through the proxy.
    let players: Vec<_> = names
        .iter()
        .map(|n| {
            let url = proxy.rtmp_url(n);
            thread::spawn(move || (url.clone(), ffprobe(&url, secs(30))))
        })
        .collect();
    for p in players {
        let (url, res) = p.join().unwrap();
        let out = res.unwrap_or_else(|e| panic!("play {url}: {e}"));
        assert!(is_test_clip(&out), "play {url}: ffprobe printed {out:?}");
    }
}

#[test]
fn node_media_server_origins_work_the_same_way() {
    let origins = [Nms::start(), Nms::start()];
    let proxy = Proxy::start(&[]);
    let infos: Vec<OriginInfo> = origins.iter().map(|o| o.origin()).collect();
    let _hb = heartbeats(&proxy, &infos);

    let _publisher = ffmpeg_publish(&proxy.rtmp_url("nmsstream"));
    let key = live_key("nmsstream");
    let pinned = proxy.wait_pinned(&key, secs(20));
    let idx = infos
        .iter()
        .position(|o| o.id() == pinned)
        .unwrap_or_else(|| panic!("{key} pinned to {pinned}, not one of {infos:?}"));

    // The publish landed on that NMS: its own HTTP-FLV plays the clip.
    probe_clip(&origins[idx].flv_url("nmsstream"), secs(30));
    // And a player through the proxy, over RTMP, gets it too.
    probe_clip(&proxy.rtmp_url("nmsstream"), secs(20));
}

#[test]
fn an_origin_that_stops_heartbeating_drops_out_and_its_stream_moves() {
    let origins: Vec<NginxRtmp> = (0..2).map(|_| NginxRtmp::start()).collect();
    let proxy = Proxy::start(&[("PROXY_ORIGIN_SERVER_TTL", "3s")]);
    let infos: Vec<OriginInfo> = origins.iter().map(|o| o.origin()).collect();
    let mut hb: Vec<Option<Heartbeat>> = heartbeats(&proxy, &infos).into_iter().map(Some).collect();
    let key = live_key("moving");

    // First publish: lands on A.
    let publisher = ffmpeg_publish(&proxy.rtmp_url("moving"));
    let found = wait_holders(&origins, "moving");
    assert_eq!(found.len(), 1, "on exactly one origin: {found:?}");
    let (a, b) = (found[0], 1 - found[0]);
    drop(publisher);
    assert!(
        wait_until(secs(15), || !origins[a].has_stream("moving")),
        "the stream stayed on A after the publisher left"
    );
    assert!(
        wait_until(secs(15), || proxy
            .session_lines_for(&key)
            .iter()
            .any(|l| { log_field(l, "origin").is_some_and(|o| infos[a].is_named_by(&o)) })),
        "no `rtmp session ended` line for {key} naming origin A ({})",
        infos[a].id()
    );

    // A dies: its heartbeats stop; with a 3 s TTL the proxy drops it.
    hb[a] = None;
    assert!(
        wait_until(secs(30), || !proxy.log_lines_with(&["origin expired", &infos[a].id()]).is_empty()),
        "no `origin expired` log line naming {}",
        infos[a].id()
    );
    assert!(
        proxy.log_lines_with(&["origin expired", &infos[b].id()]).is_empty(),
        "B kept heartbeating but was expired"
    );
    let listed_alive = proxy.origins().iter().any(|o| o["id"] == infos[a].id().as_str() && o["alive"] == true);
    assert!(!listed_alive, "/api/v1/origins still lists A alive");

    // The next publish of the same stream lands on B, the live one.
    let publisher = ffmpeg_publish(&proxy.rtmp_url("moving"));
    assert!(
        wait_until(secs(30), || origins[b].has_stream("moving")),
        "the second publish did not land on B; /stat of A: {}",
        origins[a].stat()
    );
    assert!(!origins[a].has_stream("moving"));
    assert_eq!(proxy.pinned_origin(&key), Some(infos[b].id()));
    drop(publisher);
    assert!(
        wait_until(secs(15), || proxy
            .session_lines_for(&key)
            .iter()
            .any(|l| { log_field(l, "origin").is_some_and(|o| infos[b].is_named_by(&o)) })),
        "no `rtmp session ended` line for {key} naming origin B ({}): the re-pin is not in the log",
        infos[b].id()
    );
    drop(hb);
}

#[test]
fn connections_for_one_stream_on_both_cores_reach_the_same_origin() {
    let origins: Vec<NginxRtmp> = (0..3).map(|_| NginxRtmp::start()).collect();
    let proxy = Proxy::start(&[("PROXY_WORKERS", "2")]);
    let infos: Vec<OriginInfo> = origins.iter().map(|o| o.origin()).collect();
    let _hb = heartbeats(&proxy, &infos);
    let key = live_key("shared");

    let publisher = ffmpeg_publish(&proxy.rtmp_url("shared"));
    let found = wait_holders(&origins, "shared");
    assert_eq!(found.len(), 1, "on exactly one origin: {found:?}");
    let holder = &infos[found[0]];

    // Many short plays at once; the kernel spreads them over the two
    // executors' SO_REUSEPORT listeners.
    let play_round = |n: usize| {
        let players: Vec<_> = (0..n)
            .map(|_| {
                let url = proxy.rtmp_url("shared");
                thread::spawn(move || ffprobe(&url, secs(60)))
            })
            .collect();
        for p in players {
            let out = p.join().unwrap().unwrap_or_else(|e| panic!("play: {e}"));
            assert!(is_test_clip(&out), "play through the proxy: {out:?}");
        }
        n
    };
    let cores = |proxy: &Proxy| -> BTreeSet<String> {
        proxy.session_lines_for(&key).iter().filter_map(|l| log_field(l, "core")).collect()
    };
    let mut plays = play_round(40);
    for _ in 0..3 {
        assert!(
            wait_until(secs(20), || proxy.session_lines_for(&key).len() >= plays),
            "{plays} plays ended but only {} `rtmp session ended` lines for {key}",
            proxy.session_lines_for(&key).len()
        );
        let c = cores(&proxy);
        if c.contains("0") && c.contains("1") {
            break;
        }
        plays += play_round(20);
    }
    drop(publisher);
    assert!(
        wait_until(secs(20), || proxy.session_lines_for(&key).len() > plays),
        "the publisher's session end was not logged"
    );

    let c = cores(&proxy);
    assert!(c.contains("0") && c.contains("1"), "sessions for {key} were served only by cores {c:?}");
    for line in proxy.session_lines_for(&key) {
        let origin = log_field(&line, "origin").unwrap_or_default();
        assert!(
            holder.is_named_by(&origin),
            "a session for {key} went to origin {origin:?}, not {} (the one /stat shows): {line}",
            holder.id()
        );
    }
}

/// Plays `name` through the proxy 8 at a time until sessions ended on both
/// cores after the first `skip` session lines for `key`; returns those lines.
fn play_until_both_cores(proxy: &Proxy, name: &str, key: &str, skip: usize) -> Vec<String> {
    let mut plays = 0;
    for _ in 0..6 {
        let players: Vec<_> = (0..8)
            .map(|_| {
                let url = proxy.rtmp_url(name);
                // A player sent to the wrong origin waits there: fail sooner.
                thread::spawn(move || probe_clip(&url, secs(30)))
            })
            .collect();
        for p in players {
            p.join().unwrap();
        }
        plays += 8;
        assert!(
            wait_until(secs(20), || proxy.session_lines_for(key).len() >= skip + plays),
            "{plays} plays ended but only {} new `rtmp session ended` lines for {key}",
            proxy.session_lines_for(key).len() - skip
        );
        let lines: Vec<String> = proxy.session_lines_for(key).into_iter().skip(skip).collect();
        let cores: BTreeSet<String> = lines.iter().filter_map(|l| log_field(l, "core")).collect();
        if cores.contains("0") && cores.contains("1") {
            return lines;
        }
    }
    panic!("{plays} plays of {key} were all served by one core");
}

/// Each core remembers the pins it learnt from the core owning the stream.
/// A remembered pin must not outlive its origin: once a stream moved while
/// A was dead, players on either core follow it, even after A comes back.
/// (Four streams: the move must happen on the owning core for a stale
/// memory to be left on the other one, and which core a connection lands on
/// is the kernel's choice.)
#[test]
fn after_a_re_pin_players_on_both_cores_follow_the_stream_even_when_the_old_origin_returns() {
    const STREAMS: [&str; 4] = ["comeback0", "comeback1", "comeback2", "comeback3"];
    let origins: Vec<NginxRtmp> = (0..2).map(|_| NginxRtmp::start()).collect();
    let proxy = Proxy::start(&[("PROXY_ORIGIN_SERVER_TTL", "3s"), ("PROXY_WORKERS", "2")]);
    let infos: Vec<OriginInfo> = origins.iter().map(|o| o.origin()).collect();
    let mut hb: Vec<Option<Heartbeat>> = vec![Some(Heartbeat::start(&proxy.sys_api(), infos[0].register_body())), None];

    // Only A lives: every stream is pinned to A, and players on both cores
    // learn it.
    for name in STREAMS {
        let key = live_key(name);
        let publisher = ffmpeg_publish(&proxy.rtmp_url(name));
        assert!(wait_until(secs(30), || origins[0].has_stream(name)), "{name} did not land on A");
        for line in play_until_both_cores(&proxy, name, &key, 0) {
            let origin = log_field(&line, "origin").unwrap_or_default();
            assert!(infos[0].is_named_by(&origin), "{key} went to {origin:?}, not A: {line}");
        }
        drop(publisher);
        assert!(wait_until(secs(15), || !origins[0].has_stream(name)), "{name} stayed on A");
    }

    // A dies, B lives: the next publish of each stream moves it to B.
    hb[0] = None;
    hb[1] = Some(Heartbeat::start(&proxy.sys_api(), infos[1].register_body()));
    assert!(
        wait_until(secs(30), || !proxy.log_lines_with(&["origin expired", &infos[0].id()]).is_empty()),
        "no `origin expired` log line naming {}",
        infos[0].id()
    );
    let publishers: Vec<_> = STREAMS
        .iter()
        .map(|name| {
            let p = ffmpeg_publish(&proxy.rtmp_url(name));
            assert!(wait_until(secs(30), || origins[1].has_stream(name)), "{name} did not move to B");
            assert_eq!(proxy.pinned_origin(&live_key(name)), Some(infos[1].id()));
            p
        })
        .collect();

    // A comes back. Every stream stays on B, whichever core a player meets.
    hb[0] = Some(Heartbeat::start(&proxy.sys_api(), infos[0].register_body()));
    assert!(
        wait_until(secs(15), || proxy
            .origins()
            .iter()
            .any(|o| o["id"] == infos[0].id().as_str() && o["alive"] == true)),
        "A is not listed alive again"
    );
    for name in STREAMS {
        let key = live_key(name);
        let skip = proxy.session_lines_for(&key).len();
        for line in play_until_both_cores(&proxy, name, &key, skip) {
            let origin = log_field(&line, "origin").unwrap_or_default();
            assert!(infos[1].is_named_by(&origin), "after A came back, {key} went to {origin:?}, not B: {line}");
        }
        assert_eq!(proxy.pinned_origin(&key), Some(infos[1].id()));
    }
    drop(publishers);
    drop(hb);
}

// ---------------------------------------------------------------------------
// Bad input, each on its own raw connection.

const HANG_GUARD: Duration = Duration::from_secs(30);

fn rtmp_conn(proxy: &Proxy) -> (TcpStream, u16) {
    let s = TcpStream::connect(loopback(proxy.rtmp_port)).expect("connect to the proxy's RTMP port");
    s.set_write_timeout(Some(secs(10))).unwrap();
    let port = s.local_addr().unwrap().port();
    (s, port)
}

/// A simple handshake as a client: C0=3, C1 zeros; S0S1S2; C2 = S1.
fn handshake(s: &mut TcpStream) {
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&[0u8; 1536]);
    s.write_all(&c0c1).expect("send C0C1");
    s.set_read_timeout(Some(secs(15))).unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
    s.read_exact(&mut s0s1s2).expect("read S0S1S2");
    assert_eq!(s0s1s2[0], 3, "S0 must be version 3");
    s.write_all(&s0s1s2[1..1537]).expect("send C2");
}

/// One RTMP message as fmt-0 chunk + fmt-3 continuations of `chunk_size`.
fn chunked(csid: u8, type_id: u8, stream_id: u32, payload: &[u8], chunk_size: usize) -> Vec<u8> {
    assert!((2..=63).contains(&csid));
    let mut out = vec![csid, 0, 0, 0];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(type_id);
    out.extend_from_slice(&stream_id.to_le_bytes());
    for (i, c) in payload.chunks(chunk_size).enumerate() {
        if i > 0 {
            out.push(0xC0 | csid);
        }
        out.extend_from_slice(c);
    }
    out
}

fn amf_string(out: &mut Vec<u8>, s: &str) {
    out.push(0x02);
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn amf_number(out: &mut Vec<u8>, n: f64) {
    out.push(0x00);
    out.extend_from_slice(&n.to_be_bytes());
}

fn amf_key(out: &mut Vec<u8>, k: &str) {
    out.extend_from_slice(&(k.len() as u16).to_be_bytes());
    out.extend_from_slice(k.as_bytes());
}

fn set_chunk_size(size: u32) -> Vec<u8> {
    chunked(2, 1, 0, &size.to_be_bytes(), 128)
}

struct Outcome {
    /// The client port of the connection (its `peer=` in the log).
    port: u16,
    /// Whether the proxy must have recognised the problem itself (so the
    /// reason it logs is not a timeout).
    detected: bool,
}

fn bad_random_bytes(proxy: &Proxy) -> Outcome {
    let garbage = Rng::new(0x5EED_0002).bytes(64 * 1024);
    let (mut s, port) = rtmp_conn(proxy);
    let _ = s.write_all(&garbage);
    read_until_closed(&mut s, HANG_GUARD).expect("random bytes: the proxy must close");
    // A first byte that is no RTMP version can only be refused at once.
    Outcome { port, detected: garbage[0] != 3 && garbage[0] != 6 }
}

fn bad_truncated_handshake(proxy: &Proxy) -> Outcome {
    let (mut s, port) = rtmp_conn(proxy);
    let mut bytes = vec![3u8];
    bytes.extend(Rng::new(7).bytes(100));
    s.write_all(&bytes).unwrap();
    shutdown_write(&s);
    read_until_closed(&mut s, HANG_GUARD).expect("truncated handshake: the proxy must close");
    Outcome { port, detected: true }
}

fn bad_chunk_size(proxy: &Proxy, size: u32) -> Outcome {
    let (mut s, port) = rtmp_conn(proxy);
    handshake(&mut s);
    let _ = s.write_all(&set_chunk_size(size));
    read_until_closed(&mut s, HANG_GUARD).unwrap_or_else(|e| panic!("SetChunkSize {size}: the proxy must close: {e}"));
    Outcome { port, detected: true }
}

fn bad_message_length(proxy: &Proxy) -> Outcome {
    let (mut s, port) = rtmp_conn(proxy);
    handshake(&mut s);
    // A type-20 command of length 16 MiB - 1 at chunk size 128: send its
    // header and 1 MiB of it. A proxy that buffers it all would wait for the
    // rest; it must refuse on the length instead.
    let mut first = vec![3u8, 0, 0, 0, 0xFF, 0xFF, 0xFF, 20, 0, 0, 0, 0];
    first.extend_from_slice(&[0x41u8; 128]);
    let _ = s.write_all(&first);
    let mut cont = Vec::new();
    for _ in 0..64 {
        cont.push(0xC3u8);
        cont.extend_from_slice(&[0x41u8; 128]);
    }
    for _ in 0..128 {
        if s.write_all(&cont).is_err() {
            break;
        }
    }
    read_until_closed(&mut s, HANG_GUARD).expect("oversized message: the proxy must close");
    Outcome { port, detected: true }
}

fn bad_deep_amf0(proxy: &Proxy) -> Outcome {
    let (mut s, port) = rtmp_conn(proxy);
    handshake(&mut s);
    let depth = 10_000;
    let mut p = Vec::new();
    amf_string(&mut p, "connect");
    amf_number(&mut p, 1.0);
    p.push(0x03);
    amf_key(&mut p, "app");
    amf_string(&mut p, "live");
    amf_key(&mut p, "tcUrl");
    amf_string(&mut p, &format!("rtmp://127.0.0.1:{}/live", proxy.rtmp_port));
    for _ in 0..depth {
        amf_key(&mut p, "x");
        p.push(0x03);
    }
    amf_key(&mut p, "x");
    p.push(0x05);
    for _ in 0..depth + 1 {
        p.extend_from_slice(&[0, 0, 9]);
    }
    let _ = s.write_all(&chunked(3, 20, 0, &p, 128));
    read_until_closed(&mut s, HANG_GUARD).expect("deep AMF0: the proxy must close");
    Outcome { port, detected: true }
}

fn bad_play_before_connect(proxy: &Proxy) -> Outcome {
    let (mut s, port) = rtmp_conn(proxy);
    handshake(&mut s);
    let mut p = Vec::new();
    amf_string(&mut p, "play");
    amf_number(&mut p, 0.0);
    p.push(0x05);
    amf_string(&mut p, "livestream");
    let _ = s.write_all(&chunked(8, 20, 1, &p, 128));
    read_until_closed(&mut s, HANG_GUARD).expect("play before connect: the proxy must close");
    Outcome { port, detected: true }
}

fn bad_silent_client(proxy: &Proxy) -> Outcome {
    let (mut s, port) = rtmp_conn(proxy);
    read_until_closed(&mut s, HANG_GUARD)
        .expect("a client that says nothing must be closed by the proxy's handshake timeout");
    Outcome { port, detected: false }
}

/// A real publish through the proxy, and a real play of it.
fn publish_and_play(proxy: &Proxy, origin: &NginxRtmp, name: &str) {
    let publisher = ffmpeg_publish(&proxy.rtmp_url(name));
    assert!(
        wait_until(secs(30), || origin.has_stream(name)),
        "publish of {name} through the proxy never reached the origin"
    );
    probe_clip(&proxy.rtmp_url(name), secs(20));
    drop(publisher);
    assert!(wait_until(secs(15), || !origin.has_stream(name)), "{name} stayed on the origin after its publisher left");
    // Publisher and player have both ended, and the proxy logged both.
    assert!(
        wait_until(secs(15), || proxy.session_lines_for(&live_key(name)).len() >= 2),
        "the proxy did not log the end of both sessions for {name}"
    );
}

fn is_timeout(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    r.contains("timeout") || r.contains("timed out")
}

#[test]
fn bad_input_closes_only_its_connection_and_leaks_nothing() {
    let origin = NginxRtmp::start();
    let proxy = Proxy::start(&[]);
    // One registration is enough here (default TTL 300 s), so no heartbeat
    // connection is open in the proxy while its descriptors are counted.
    let r = proxy.register(&origin.origin().register_body());
    assert_eq!(r.status, 200, "register: {}", r.text());

    // A known-good session first, then the baseline.
    publish_and_play(&proxy, &origin, "warmup");
    let fds = FdSnapshot::take(&proxy);

    type Case = (&'static str, fn(&Proxy) -> Outcome);
    let cases: [Case; 8] = [
        ("random bytes", bad_random_bytes),
        ("truncated handshake", bad_truncated_handshake),
        ("chunk size 0", |p| bad_chunk_size(p, 0)),
        ("chunk size 2^31", |p| bad_chunk_size(p, 1 << 31)),
        ("message length over the limit", bad_message_length),
        ("deeply nested AMF0", bad_deep_amf0),
        ("play before connect", bad_play_before_connect),
        ("a client that says nothing", bad_silent_client),
    ];
    for (i, (what, case)) in cases.iter().enumerate() {
        let outcome = case(&proxy);
        let mut line = None;
        assert!(
            wait_until(secs(10), || {
                line = proxy.session_line_for_peer(outcome.port);
                line.is_some()
            }),
            "{what}: no `rtmp session ended` line with peer=127.0.0.1:{}",
            outcome.port
        );
        let line = line.unwrap();
        assert!(line.contains("WARN"), "{what}: not a WARN line: {line}");
        let reason = log_field(&line, "reason").unwrap_or_default();
        assert!(!reason.trim().is_empty(), "{what}: no reason: {line}");
        if outcome.detected {
            assert!(
                !is_timeout(&reason),
                "{what}: the proxy must recognise the problem, not wait for a timeout: {line}"
            );
        }
        // The proxy still serves real clients.
        publish_and_play(&proxy, &origin, &format!("after{i}"));
    }

    fds.assert_back(&proxy, secs(30), "the bad input");
}

#[test]
fn the_default_backend_serves_when_enabled_and_takes_part_in_picks() {
    // Any RTMP server can be the default backend; nothing registers it.
    let fallback = NginxRtmp::start();
    let port = fallback.rtmp_port.to_string();
    let proxy = Proxy::start(&[
        ("PROXY_DEFAULT_BACKEND_ENABLED", "on"),
        ("PROXY_DEFAULT_BACKEND_IP", "127.0.0.1"),
        ("PROXY_DEFAULT_BACKEND_RTMP", &port),
    ]);
    assert!(
        wait_until(secs(10), || proxy.origins().iter().any(|o| o["alive"] == true)),
        "the default backend never showed up in /api/v1/origins: {:?}",
        proxy.origins()
    );
    let ids: Vec<String> = proxy.origins().iter().filter_map(|o| o["id"].as_str().map(str::to_string)).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(ids[0].starts_with("default-"), "the default backend's id is default-<id>: {ids:?}");
    publish_and_play(&proxy, &fallback, "fallback");
    assert_eq!(proxy.pinned_origin(&live_key("fallback")).as_deref(), Some(ids[0].as_str()));

    // A registered origin joins it: both take part in random picks.
    let other = NginxRtmp::start();
    let _hb = Heartbeat::start(&proxy.sys_api(), other.origin().register_body());
    let mut on_other = 0;
    for i in 0..12 {
        let name = format!("mix{i}");
        let publisher = ffmpeg_publish(&proxy.rtmp_url(&name));
        assert!(
            wait_until(secs(30), || fallback.has_stream(&name) || other.has_stream(&name)),
            "{name} reached no origin"
        );
        if other.has_stream(&name) {
            on_other += 1;
        }
        drop(publisher);
    }
    // 12 uniform picks over two origins all landing on one: 2 * 2^-12.
    assert!(on_other > 0 && on_other < 12, "picks were not spread: {on_other} of 12 on the registered origin");
}

#[test]
fn a_relay_silent_both_ways_is_closed_at_the_idle_timeout_and_a_busy_one_is_not() {
    let origin = NginxRtmp::start();
    let proxy = Proxy::start(&[("PROXY_IDLE_TIMEOUT", "2s")]);
    let _hb = heartbeats(&proxy, &[origin.origin()]);

    // A publish outlives the timeout many times over: media keeps it busy.
    let _publisher = ffmpeg_publish(&proxy.rtmp_url("busy"));
    assert!(wait_until(secs(30), || origin.has_stream("busy")), "the publish never reached the origin");
    thread::sleep(secs(6));
    assert!(origin.has_stream("busy"), "the busy publish was dropped");
    assert!(proxy.session_lines_for(&live_key("busy")).is_empty(), "a busy relay ended: {}", proxy.log());

    // A player of a stream nobody publishes: after play, neither side says a
    // word, so the proxy closes it once the timeout has passed, not before.
    let started = std::time::Instant::now();
    let _ = ffprobe(&proxy.rtmp_url("nobody"), secs(30));
    let took = started.elapsed();
    let key = live_key("nobody");
    assert!(wait_until(secs(10), || !proxy.session_lines_for(&key).is_empty()), "no end line: {}", proxy.log());
    let line = proxy.session_lines_for(&key).remove(0);
    let reason = log_field(&line, "reason").unwrap_or_default();
    assert!(reason.contains("idle timeout"), "ended for {reason:?}: {line}");
    let ms: u64 = log_field(&line, "duration_ms").and_then(|v| v.parse().ok()).expect("duration_ms");
    assert!((2000..10_000).contains(&ms), "closed after {ms} ms, the timeout is 2 s: {line}");
    assert!(took < secs(25), "the player waited {took:?}: the proxy never closed it");
}

/// The end line of the one RTMP session that played `name`.
fn end_line(proxy: &Proxy, name: &str) -> String {
    let key = live_key(name);
    wait_until(secs(10), || !proxy.session_lines_for(&key).is_empty());
    let lines = proxy.session_lines_for(&key);
    assert_eq!(lines.len(), 1, "one session played {key}: {lines:?}");
    lines.into_iter().next().unwrap_or_default()
}

#[test]
fn a_player_the_proxy_cannot_serve_is_told_why_by_ffmpeg_and_the_end_line_says_who_failed() {
    let proxy = Proxy::start(&[]);

    // No origin registered: refused at play, with the balancer's reason.
    let err = ffprobe(&proxy.rtmp_url("nobody"), secs(20)).expect_err("ffprobe played with no origin registered");
    assert!(!err.contains("still running"), "ffprobe was not refused, it hung: {err}");
    assert!(
        err.contains("Server error: no origin available for __defaultVhost__/live/nobody"),
        "ffprobe did not show the refusal: {err}"
    );
    let line = end_line(&proxy, "nobody");
    assert!(line.contains("WARN"), "a refused session is a failure: {line}");
    assert!(log_field(&line, "reason").is_some_and(|r| r.contains("no origin")), "{line}");

    // An origin that registered but does not listen: refused once the
    // connect fails, and the end line names that origin.
    let dead = OriginInfo {
        device_id: "dead".into(),
        server: "vid-dead".into(),
        service: "svc-dead".into(),
        pid: "1".into(),
        ip: "127.0.0.1".into(),
        rtmp: free_port(),
        http: None,
    };
    let _hb = Heartbeat::start(&proxy.sys_api(), dead.register_body());
    assert!(wait_until(secs(10), || proxy.origins().iter().any(|o| o["alive"] == true)), "{:?}", proxy.origins());
    let err = ffprobe(&proxy.rtmp_url("unreachable"), secs(20)).expect_err("ffprobe played from a dead origin");
    assert!(!err.contains("still running"), "ffprobe was not refused, it hung: {err}");
    assert!(err.contains("Server error: origin unreachable"), "ffprobe did not show the refusal: {err}");
    let line = end_line(&proxy, "unreachable");
    assert_eq!(log_field(&line, "origin").as_deref(), Some(dead.id().as_str()), "{line}");
    assert!(log_field(&line, "reason").is_some_and(|r| r.contains("origin failed: connect")), "{line}");
}

#[test]
fn players_that_leave_are_cut_off_at_the_origin_at_once_and_hold_no_port_toward_it() {
    let origin = NginxRtmp::start();
    let proxy = Proxy::start(&[]);
    let _hb = heartbeats(&proxy, &[origin.origin()]);
    let _publisher = ffmpeg_publish(&proxy.rtmp_url("live1"));
    wait_holders(std::slice::from_ref(&origin), "live1");
    let before = time_waits_to(origin.rtmp_port);

    // Two viewers of a live stream look and leave; two more wait for a
    // stream that has not started and give up.
    for _ in 0..2 {
        probe_clip(&proxy.rtmp_url("live1"), secs(20));
    }
    for _ in 0..2 {
        let url = proxy.rtmp_url("not_yet");
        let viewer = thread::spawn(move || ffprobe(&url, secs(3)));
        assert!(
            wait_until(secs(3), || stat_xml_players(&origin.stat(), "not_yet") == 1),
            "nginx never listed the waiting viewer: {}",
            origin.stat()
        );
        let r = viewer.join().expect("the viewer's thread");
        assert!(r.is_err(), "nobody publishes not_yet, yet ffprobe read {r:?}");
    }

    // The origin lets go of each of them (only the publisher is left)...
    assert!(
        wait_until(secs(10), || {
            let xml = origin.stat();
            stat_xml_players(&xml, "live1") + stat_xml_players(&xml, "not_yet") == 0
        }),
        "nginx still lists players after they left: {}",
        origin.stat()
    );
    assert!(origin.has_stream("live1"), "the publisher must be untouched");
    // ... and the proxy reset its connections to it rather than closing
    // them with a FIN. The side that sends the first FIN ends in TIME_WAIT,
    // which holds one port toward the origin for a minute per viewer (the
    // waiting viewers' connections were quiet, so a FIN would be answered
    // with a FIN).
    let after = time_waits_to(origin.rtmp_port);
    let left: Vec<_> = after.difference(&before).collect();
    assert!(left.is_empty(), "connections toward the origin in TIME_WAIT (local, origin port): {left:?}");
}
