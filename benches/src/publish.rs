//! `publish`: RTMP publishers sending an AVC sequence header, then video
//! messages at a fixed bitrate and frame rate, each stamped with its send
//! time: `0x17|0x27, 0x01, 0,0,0, send time (µs, 8 bytes BE), padding`.

use crate::net::{self, Target};
use crate::rtmp::{self, Role, Session, CID_VIDEO};
use crate::{note_error, run_threads, Args};
use futures_lite::future;
use serde_json::{json, Value};
use srs_protocols::rtmp::amf0::{self, Value as Amf};
use srs_protocols::rtmp::chunk::{TYPE_DATA_AMF0, TYPE_VIDEO};
use std::time::{Duration, Instant};

/// The AVC sequence header of a 1280x720 High profile x264 stream.
const AVC_SEQUENCE_HEADER: &[u8] = &[
    0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x18, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xb4,
    0x02, 0x80, 0x2d, 0xd8, 0x08, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x47, 0x8c, 0x19, 0x50, 0x01,
    0x00, 0x04, 0x68, 0xef, 0x0f, 0xcb, 0xfd, 0xf8, 0xf8, 0x00,
];
const CID_DATA: u32 = 4;

#[derive(Clone)]
struct Opts {
    target: Target,
    streams: usize,
    bitrate: f64,
    fps: f64,
    gop: Duration,
    seconds: Duration,
}

#[derive(Default)]
struct Stats {
    publishers: u64,
    errors: u64,
    error_samples: Vec<String>,
    frames: u64,
    bytes: u64,
    late_frames: u64,
}

pub fn run(a: &Args) -> Result<Value, String> {
    let target = Target::parse(&a.str("url")?)?;
    if target.scheme != net::Scheme::Rtmp {
        return Err("publish needs an rtmp:// URL".into());
    }
    let o = Opts {
        target,
        streams: a.count("streams", Some(1))?.max(1),
        bitrate: a.num("bitrate", Some(8e6))?,
        fps: a.num("fps", Some(30.0))?.max(1.0),
        gop: a.dur("gop", Some(2.0))?,
        seconds: a.dur("seconds", None)?,
    };
    let threads = a.threads()?;
    let o2 = o.clone();
    let res = run_threads(threads, a.flag("pin"), move |t| {
        let o = o2.clone();
        async move {
            let mut tasks = Vec::new();
            for i in (t..o.streams).step_by(threads) {
                let o = o.clone();
                tasks.push(glommio::spawn_local(async move { publisher(&o, i).await }));
            }
            let mut st = Stats::default();
            for task in tasks {
                match task.await {
                    Ok((frames, bytes, late)) => {
                        st.publishers += 1;
                        st.frames += frames;
                        st.bytes += bytes;
                        st.late_frames += late;
                    }
                    Err(e) => {
                        st.errors += 1;
                        note_error(&mut st.error_samples, e);
                    }
                }
            }
            st
        }
    })?;
    let mut st = Stats::default();
    for r in res {
        st.publishers += r.publishers;
        st.errors += r.errors;
        for x in r.error_samples {
            note_error(&mut st.error_samples, x);
        }
        st.frames += r.frames;
        st.bytes += r.bytes;
        st.late_frames += r.late_frames;
    }
    let secs = o.seconds.as_secs_f64().max(1e-9);
    Ok(json!({
        "mode": "publish",
        "url": a.str("url")?,
        "streams": o.streams,
        "bitrate": o.bitrate,
        "fps": o.fps,
        "seconds": secs,
        "publishers_ok": st.publishers,
        "errors": st.errors,
        "error_samples": st.error_samples,
        "frames": st.frames,
        "bytes": st.bytes,
        "throughput_mbit": st.bytes as f64 * 8.0 / secs / 1e6,
        "late_frames": st.late_frames,
    }))
}

fn metadata(o: &Opts) -> Vec<u8> {
    let mut p = Vec::with_capacity(256);
    amf0::encode(&Amf::str("@setDataFrame"), &mut p);
    amf0::encode(&Amf::str("onMetaData"), &mut p);
    let meta = Amf::ecma_array([
        ("width", Amf::Number(1280.0)),
        ("height", Amf::Number(720.0)),
        ("framerate", Amf::Number(o.fps)),
        ("videocodecid", Amf::Number(7.0)),
        ("videodatarate", Amf::Number(o.bitrate / 1000.0)),
        ("encoder", Amf::str("srs-load")),
    ]);
    amf0::encode(&meta, &mut p);
    p
}

/// One publisher: returns (frames, bytes, late frames).
async fn publisher(o: &Opts, i: usize) -> Result<(u64, u64, u64), String> {
    let name = o.target.nth(i, o.streams);
    let mut s = rtmp::open(&o.target, &name, Role::Publish, 16 * 1024).await?;
    rtmp::write_media(&mut s, CID_DATA, TYPE_DATA_AMF0, 0, &metadata(o));
    rtmp::write_media(&mut s, CID_VIDEO, TYPE_VIDEO, 0, AVC_SEQUENCE_HEADER);
    net::flush(&mut s.sock, &mut s.out).await.map_err(|e| format!("write: {e}"))?;

    let frame_len = ((o.bitrate / 8.0 / o.fps) as usize).max(rtmp::STAMP_END);
    let mut frame = vec![0u8; frame_len];
    frame[1] = 1;
    for (k, b) in frame.iter_mut().enumerate().skip(rtmp::STAMP_END) {
        *b = k as u8;
    }
    let interval = Duration::from_secs_f64(1.0 / o.fps);
    let gop_frames = ((o.gop.as_secs_f64() * o.fps).round() as u64).max(1);
    let start = Instant::now();
    let end = start + o.seconds;
    let (mut frames, mut bytes, mut late) = (0u64, 0u64, 0u64);
    loop {
        let due = start + interval.mul_f64(frames as f64);
        if due >= end {
            break;
        }
        let now = Instant::now();
        if now < due {
            if wait_or_read(&mut s, due - now).await? {
                continue;
            }
        } else if now > due + interval {
            late += 1;
        }
        frame[0] = if frames % gop_frames == 0 { 0x17 } else { 0x27 };
        frame[5..13].copy_from_slice(&net::wall_us().to_be_bytes());
        let ts = (frames as f64 * 1000.0 / o.fps) as u32;
        rtmp::write_media(&mut s, CID_VIDEO, TYPE_VIDEO, ts, &frame);
        net::flush(&mut s.sock, &mut s.out).await.map_err(|e| format!("write frame {frames}: {e}"))?;
        frames += 1;
        bytes += frame_len as u64;
    }
    Ok((frames, bytes, late))
}

/// Sleeps `d` while absorbing what the peer sends. Returns true when bytes
/// arrived (the caller re-checks the clock), false when the time is up.
async fn wait_or_read(s: &mut Session, d: Duration) -> Result<bool, String> {
    let read = {
        let Session { sock, inb, .. } = &mut *s;
        future::or(
            async {
                glommio::timer::sleep(d).await;
                None
            },
            async { Some(inb.fill(sock).await) },
        )
        .await
    };
    match read {
        None => Ok(false),
        Some(Ok(0)) => Err("the server closed the connection".into()),
        Some(Ok(_)) => {
            rtmp::absorb(s)?;
            net::flush(&mut s.sock, &mut s.out).await.map_err(|e| format!("write: {e}"))?;
            Ok(true)
        }
        Some(Err(e)) => Err(format!("read: {e}")),
    }
}
