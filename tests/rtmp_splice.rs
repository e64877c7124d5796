//! RTMP relays that splice: once both ends of a direction are in step
//! (same message stream ids, same chunk size, every chunk stream in the same
//! header state, nothing half relayed), the proxy stops reading that
//! direction's chunks and moves its bytes with splice(2). Real peers: FFmpeg
//! publishes and plays, nginx-rtmp and node-media-server are the origins.
//! The end line says when each way switched (`spliced=<up>/<down>`, ms after
//! accept, `-` for never).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use srs_protocols::rtmp::amf0::Value;
use srs_protocols::rtmp::chunk::{Assembler, Encoder, Limits, MessageHeader, TYPE_COMMAND_AMF0, TYPE_VIDEO};
use srs_protocols::rtmp::command::Command;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `ffmpeg -i URL -t S -f null -`: plays and decodes `seconds` of the
/// stream; returns the frames decoded, or why it failed (exit status and
/// what it printed at level error: a decoder that lost the chunk stream's
/// framing says so).
fn play_decoding(url: &str, seconds: u64) -> Result<u64, String> {
    let dir = TempDir::new("ffplay");
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i", url, "-t", &seconds.to_string()]).args([
        "-map",
        "0:v",
        "-f",
        "null",
        "-progress",
        "pipe:1",
        "-",
    ]);
    let mut g = ProcGuard::spawn("ffmpeg-play", cmd, dir.path());
    let st = g.wait_exit(secs(seconds + 30));
    let (out, err) = (g.stdout(), g.stderr());
    let frames = out.lines().filter_map(|l| l.strip_prefix("frame=")).filter_map(|v| v.trim().parse().ok()).next_back();
    match (st, frames) {
        (Some(st), Some(f)) if st.success() && err.trim().is_empty() => Ok(f),
        (st, _) => Err(format!("ffmpeg play {url}: {st:?}; stderr {err:?}; progress {out:?}")),
    }
}

/// The `spliced=` field of an end line: (client → origin, origin → client).
fn spliced(line: &str) -> (Option<u64>, Option<u64>) {
    let v = log_field(line, "spliced").unwrap_or_else(|| panic!("no spliced= in {line}"));
    let (a, b) = v.split_once('/').unwrap_or_else(|| panic!("spliced={v} in {line}"));
    let ms = |s: &str| s.strip_suffix("ms").map(|n| n.parse::<u64>().unwrap_or_else(|e| panic!("{s}: {e}")));
    (ms(a), ms(b))
}

/// The end lines of the sessions of `key`, once there are `n`.
fn end_lines(proxy: &Proxy, key: &str, n: usize) -> Vec<String> {
    assert!(
        wait_until(secs(15), || proxy.session_lines_for(key).len() >= n),
        "{n} sessions of {key} did not end: {:?}",
        proxy.session_lines_for(key)
    );
    proxy.session_lines_for(key)
}

/// Publish through the proxy with FFmpeg, play through it with FFmpeg
/// (decoding every frame for 8 s), then stop the publisher: both sessions
/// must have switched the way their media goes, and the player must have
/// decoded the whole time.
fn publish_and_play_spliced(proxy: &Proxy, name: &str, holds: impl Fn(&str) -> bool) {
    let key = live_key(name);
    let publisher = ffmpeg_publish(&proxy.rtmp_url(name));
    assert!(wait_until(secs(30), || holds(name)), "the publish of {name} never reached the origin");
    let frames = play_decoding(&proxy.rtmp_url(name), 8).unwrap_or_else(|e| panic!("{e}"));
    // 25 fps for 8 s; an origin may start with a GOP it had cached.
    assert!(frames >= 150, "the player decoded only {frames} frames in 8 s");
    let lines = end_lines(proxy, &key, 1);
    let play = lines.iter().find(|l| log_field(l, "role").as_deref() == Some("play")).expect("the player's end line");
    let (_, down) = spliced(play);
    let down = down.unwrap_or_else(|| panic!("the player's relay never switched to splicing: {play}"));
    let ms = field_u64(play, "duration_ms");
    assert!(down < ms, "switched at {down} ms of {ms}: {play}");
    // Spliced bytes are counted like copied ones: 8 s of the clip.
    assert!(field_u64(play, "bytes_out") > 100_000, "{play}");
    assert!(play.contains("INFO"), "{play}");

    drop(publisher);
    let lines = end_lines(proxy, &key, 2);
    let publish =
        lines.iter().find(|l| log_field(l, "role").as_deref() == Some("publish")).expect("the publisher's end line");
    let (up, _) = spliced(publish);
    assert!(up.is_some(), "the publisher's relay never switched to splicing: {publish}");
    assert!(field_u64(publish, "bytes_in") > 100_000, "{publish}");
}

#[test]
fn ffmpeg_through_the_proxy_is_spliced_once_in_step_on_nginx_rtmp() {
    let origin = NginxRtmp::start();
    let proxy = Proxy::start(&[]);
    let _hb = Heartbeat::start(&proxy.sys_api(), origin.origin().register_body());
    publish_and_play_spliced(&proxy, "spliced1", |n| origin.has_stream(n));
}

#[test]
fn ffmpeg_through_the_proxy_is_spliced_once_in_step_on_node_media_server() {
    let origin = Nms::start();
    let proxy = Proxy::start(&[]);
    let _hb = Heartbeat::start(&proxy.sys_api(), origin.origin().register_body());
    let flv = |n: &str| origin.flv_url(n);
    publish_and_play_spliced(&proxy, "spliced2", |n| ffprobe(&flv(n), secs(10)).is_ok_and(|o| is_test_clip(&o)));
}

// ---------------------------------------------------------------------------
// A player whose message stream id differs from the origin's.

/// A player no packaged program is: it plays on message stream 0 without
/// `createStream` (the origin's stream is 1), so the proxy must rewrite the
/// id in every media header and may never splice. Speaks real RTMP: simple
/// handshake, connect, play, then reads whole messages.
struct RawPlayer {
    s: TcpStream,
    asm: Assembler,
    enc: Encoder,
    buf: Vec<u8>,
}

impl RawPlayer {
    fn connect(proxy: &Proxy, name: &str) -> RawPlayer {
        let mut s = TcpStream::connect(loopback(proxy.rtmp_port)).expect("connect to the proxy");
        s.set_read_timeout(Some(secs(15))).unwrap();
        let mut c0c1 = vec![3u8];
        c0c1.extend_from_slice(&[0u8; 1536]);
        s.write_all(&c0c1).unwrap();
        let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
        s.read_exact(&mut s0s1s2).expect("S0S1S2");
        s.write_all(&s0s1s2[1..1537]).unwrap();
        let mut p = RawPlayer { s, asm: Assembler::new(Limits::default()), enc: Encoder::new(), buf: Vec::new() };
        let tc_url = format!("rtmp://127.0.0.1:{}/live", proxy.rtmp_port);
        let connect = Command::new("connect", 1.0)
            .with_object(Value::object([("app", Value::str("live")), ("tcUrl", Value::str(&tc_url))]));
        p.command(0, &connect);
        let play = Command::new("play", 0.0).arg(Value::str(name));
        p.command(0, &play);
        p
    }

    fn command(&mut self, stream_id: u32, c: &Command<'_>) {
        let mut payload = Vec::new();
        c.encode(&mut payload);
        let h = MessageHeader { timestamp: 0, length: payload.len() as u32, type_id: TYPE_COMMAND_AMF0, stream_id };
        let mut out = Vec::new();
        self.enc.write_message(3, &h, &payload, &mut out);
        self.s.write_all(&out).unwrap();
    }

    /// The next whole message: (type, stream id, timestamp, payload length).
    fn next(&mut self) -> (u8, u32, u32, usize) {
        loop {
            let (n, got) = {
                let (n, m) = self.asm.read(&self.buf).expect("a valid chunk stream from the proxy");
                (n, m.map(|m| (m.header.type_id, m.header.stream_id, m.header.timestamp, m.payload.len())))
            };
            self.buf.drain(..n);
            if let Some(m) = got {
                return m;
            }
            let mut tmp = [0u8; 65536];
            let k = self.s.read(&mut tmp).expect("read from the proxy");
            assert!(k > 0, "the proxy closed the player");
            self.buf.extend_from_slice(&tmp[..k]);
        }
    }
}

#[test]
fn a_player_whose_stream_id_differs_stays_on_the_chunk_path_and_plays() {
    let origin = NginxRtmp::start();
    let proxy = Proxy::start(&[]);
    let _hb = Heartbeat::start(&proxy.sys_api(), origin.origin().register_body());
    let name = "ids_differ";
    let _publisher = ffmpeg_publish(&origin.rtmp_url(name));
    assert!(wait_until(secs(30), || origin.has_stream(name)), "the publish never reached the origin");

    let mut p = RawPlayer::connect(&proxy, name);
    // 6 s of video, every message on the player's stream 0, timestamps
    // rising (the rewrite keeps each header whole).
    let start = Instant::now();
    let (mut videos, mut last) = (0u64, None::<u32>);
    while start.elapsed() < secs(6) {
        let (ty, sid, ts, len) = p.next();
        if ty == TYPE_VIDEO {
            assert_eq!(sid, 0, "a video message reached the player on stream {sid}");
            assert!(len > 0);
            if let Some(l) = last {
                assert!(ts >= l, "video timestamps went back: {l} then {ts}");
            }
            last = Some(ts);
            videos += 1;
        }
    }
    assert!(videos >= 100, "only {videos} video messages in 6 s");
    drop(p);

    let lines = end_lines(&proxy, &live_key(name), 1);
    assert_eq!(spliced(&lines[0]), (None, None), "a relay that rewrites stream ids switched: {}", lines[0]);
    let (msgs_up, msgs_down) = log_field(&lines[0], "messages")
        .and_then(|m| m.split_once('/').map(|(a, b)| (a.parse::<u64>().ok(), b.parse::<u64>().ok())))
        .unwrap_or_else(|| panic!("{}", lines[0]));
    assert!(msgs_up.is_some() && msgs_down.is_some_and(|d| d >= videos), "{}", lines[0]);
}

// ---------------------------------------------------------------------------
// Publishers with the chunk sizes encoders use (128, 4096, 60000), and one
// that changes its chunk size while the relay splices.

/// The tags of an FLV file: (type, timestamp ms, body).
fn flv_tags(path: &std::path::Path) -> Vec<(u8, u32, Vec<u8>)> {
    let b = std::fs::read(path).expect("read the clip");
    assert_eq!(&b[..3], b"FLV");
    let mut at = u32::from_be_bytes([b[5], b[6], b[7], b[8]]) as usize + 4;
    let mut tags = Vec::new();
    while at + 11 <= b.len() {
        let ty = b[at];
        let size = u32::from_be_bytes([0, b[at + 1], b[at + 2], b[at + 3]]) as usize;
        let ts = u32::from_be_bytes([b[at + 7], b[at + 4], b[at + 5], b[at + 6]]);
        let body = b[at + 11..at + 11 + size].to_vec();
        tags.push((ty, ts, body));
        at += 11 + size + 4;
    }
    tags
}

/// A publisher that sends the test clip's tags at their pace with its own
/// chunk sizes, as OBS (4096) or other encoders (128, 60000) do: no
/// packaged encoder here lets one choose. `sizes`: the chunk size set
/// before `connect`, then one more set every `change_every` tags. Speaks
/// real RTMP (simple handshake, connect, createStream, publish), the
/// test's own thread.
fn publish_with_chunk_sizes(
    proxy_port: u16,
    name: &str,
    sizes: &[u32],
    change_every: usize,
    stop: &std::sync::atomic::AtomicBool,
) {
    use std::sync::atomic::Ordering;
    let mut s = TcpStream::connect(loopback(proxy_port)).expect("connect to the proxy");
    s.set_read_timeout(Some(secs(15))).unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&[0u8; 1536]);
    s.write_all(&c0c1).unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
    s.read_exact(&mut s0s1s2).expect("S0S1S2");
    s.write_all(&s0s1s2[1..1537]).unwrap();

    let mut enc = Encoder::new();
    let mut out = Vec::new();
    let set_size = |enc: &mut Encoder, out: &mut Vec<u8>, n: u32| {
        let h = MessageHeader { timestamp: 0, length: 4, type_id: 1, stream_id: 0 };
        enc.write_message(2, &h, &n.to_be_bytes(), out);
        enc.set_chunk_size(n);
    };
    let command = |enc: &mut Encoder, out: &mut Vec<u8>, sid: u32, c: Command<'_>| {
        let mut p = Vec::new();
        c.encode(&mut p);
        let h = MessageHeader { timestamp: 0, length: p.len() as u32, type_id: TYPE_COMMAND_AMF0, stream_id: sid };
        enc.write_message(3, &h, &p, out);
    };
    set_size(&mut enc, &mut out, sizes[0]);
    let tc_url = format!("rtmp://127.0.0.1:{proxy_port}/live");
    let connect = Command::new("connect", 1.0).with_object(Value::object([
        ("app", Value::str("live")),
        ("type", Value::str("nonprivate")),
        ("tcUrl", Value::str(&tc_url)),
    ]));
    command(&mut enc, &mut out, 0, connect);
    command(&mut enc, &mut out, 0, Command::new("createStream", 2.0));
    s.write_all(&out).unwrap();
    out.clear();

    // Reads until the createStream result (stream id) and then the start.
    let mut asm = Assembler::new(Limits::default());
    let mut buf = Vec::new();
    let mut wait_for = |s: &mut TcpStream, want: &dyn Fn(&Command<'_>) -> Option<f64>| -> f64 {
        loop {
            loop {
                let (n, found) = {
                    let (n, m) = asm.read(&buf).expect("a valid chunk stream from the proxy");
                    let found = m
                        .filter(|m| m.header.type_id == TYPE_COMMAND_AMF0)
                        .and_then(|m| Command::decode(m.payload, false).ok().and_then(|c| want(&c)));
                    (n, (n, m.is_some(), found))
                };
                buf.drain(..n);
                match found {
                    (_, _, Some(v)) => return v,
                    (0, false, None) => break,
                    _ => {}
                }
            }
            let mut tmp = [0u8; 65536];
            let k = s.read(&mut tmp).expect("read from the proxy");
            assert!(k > 0, "the proxy closed the publisher");
            buf.extend_from_slice(&tmp[..k]);
        }
    };
    let sid = wait_for(&mut s, &|c| {
        (c.name == "_result" && c.transaction_id == 2.0).then(|| c.args.first().and_then(|v| v.as_f64())).flatten()
    }) as u32;
    let publish = Command::new("publish", 0.0).arg(Value::str(name)).arg(Value::str("live"));
    command(&mut enc, &mut out, sid, publish);
    s.write_all(&out).unwrap();
    out.clear();
    wait_for(&mut s, &|c| {
        let code = c.args.first().and_then(|o| o.get("code")).and_then(|v| v.as_str());
        (c.name == "onStatus" && code == Some("NetStream.Publish.Start")).then_some(1.0)
    });

    // The clip at its pace, looped, until told to stop.
    let tags = flv_tags(&test_clip());
    let start = Instant::now();
    let (mut base, mut sent, mut next_size) = (0u32, 0usize, 1usize);
    while !stop.load(Ordering::Relaxed) {
        for (ty, ts, body) in &tags {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let at = base + ts;
            let due = start + Duration::from_millis(u64::from(at));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if change_every > 0 && sent > 0 && sent % change_every == 0 && next_size < sizes.len() {
                set_size(&mut enc, &mut out, sizes[next_size]);
                next_size += 1;
            }
            let cid = if *ty == 8 { 4 } else { 6 };
            let h = MessageHeader { timestamp: at, length: body.len() as u32, type_id: *ty, stream_id: sid };
            enc.write_message(cid, &h, body, &mut out);
            s.write_all(&out).expect("send media");
            out.clear();
            sent += 1;
        }
        base += tags.last().map_or(0, |t| t.1) + 40;
    }
}

/// Publishes with `sizes` through the proxy onto `origin_holds`' origin,
/// plays through the proxy decoding 6 s, and checks both relays spliced
/// the way their media goes.
fn chunk_sizes_case(proxy: &Proxy, name: &str, sizes: &[u32], change_every: usize) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let stop = Arc::new(AtomicBool::new(false));
    let port = proxy.rtmp_port;
    let (n, sz, st) = (name.to_string(), sizes.to_vec(), stop.clone());
    let publisher = std::thread::spawn(move || publish_with_chunk_sizes(port, &n, &sz, change_every, &st));
    std::thread::sleep(secs(1));
    let played = play_decoding(&proxy.rtmp_url(name), 6);
    stop.store(true, Ordering::Relaxed);
    publisher.join().expect("the publisher thread");
    let frames = played.unwrap_or_else(|e| panic!("chunk sizes {sizes:?}: {e}"));
    // 25 fps; nginx-rtmp keeps no GOP, so the first keyframe may come 2 s in.
    assert!(frames >= 75, "chunk sizes {sizes:?}: the player decoded only {frames} frames in 6 s");
    let lines = end_lines(proxy, &live_key(name), 2);
    for (role, way) in [("publish", 0), ("play", 1)] {
        let line = lines.iter().find(|l| log_field(l, "role").as_deref() == Some(role)).expect("end line");
        let s = spliced(line);
        let at = if way == 0 { s.0 } else { s.1 };
        assert!(at.is_some(), "chunk sizes {sizes:?}: the {role} relay never spliced: {line}");
    }
}

#[test]
fn publishers_with_encoder_chunk_sizes_splice_and_play_on_nginx_rtmp_and_node_media_server() {
    let ngx = NginxRtmp::start();
    let nms = Nms::start();
    for (k, origin) in [ngx.origin(), nms.origin()].into_iter().enumerate() {
        let proxy = Proxy::start(&[]);
        let _hb = Heartbeat::start(&proxy.sys_api(), origin.register_body());
        for size in [128, 4096, 60000] {
            chunk_sizes_case(&proxy, &format!("cs{k}_{size}"), &[size], 0);
        }
        // The chunk size changes while the publisher's way splices (a
        // SetChunkSize every 60 tags, about 1 s): it passes through. Only
        // growing: nginx-rtmp 1.2.2 itself loses the framing when a
        // publisher's chunk size shrinks (4096 then 128, straight to it
        // with no proxy: "too big message").
        chunk_sizes_case(&proxy, &format!("cs{k}_changes"), &[128, 4096, 60000], 60);
    }
}
