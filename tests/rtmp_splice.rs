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
    let frames = out.lines().filter_map(|l| l.strip_prefix("frame=")).filter_map(|v| v.trim().parse().ok()).last();
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

fn field_u64(line: &str, key: &str) -> u64 {
    log_field(line, key).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no {key}= in {line}"))
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
