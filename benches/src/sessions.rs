//! `sessions`: connection setup load at a steady rate (open loop). Each
//! session connects, handshakes, runs connect/createStream/play, waits for
//! the first media message and closes. Setup latency is connect start to
//! first media (which includes waiting for the origin's next keyframe);
//! `play_start_ms` is connect start to NetStream.Play.Start.

use crate::hist::Hist;
use crate::net::{Scheme, Target};
use crate::play::sleep_until;
use crate::rtmp::{self, Role, Sink, STAMP_END};
use crate::{note_error, run_threads, Args};
use futures_lite::AsyncWriteExt;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Stats {
    ok: u64,
    failed: u64,
    error_samples: Vec<String>,
    setup: Hist,
    start: Hist,
}

struct FirstMedia;

impl Sink for FirstMedia {
    fn media(&mut self, _video: bool) -> bool {
        true
    }
    fn video_head(&mut self, _head: &[u8; STAMP_END]) {}
}

pub fn run(a: &Args) -> Result<Value, String> {
    let url = a.str("url")?;
    let target = Target::parse(&url)?;
    if target.scheme != Scheme::Rtmp {
        return Err("sessions needs an rtmp:// URL".into());
    }
    let rate = a.num("rate", None)?;
    if rate <= 0.0 {
        return Err("--rate must be positive".into());
    }
    let seconds = a.dur("seconds", None)?;
    let timeout = a.dur("timeout", Some(10.0))?;
    let threads = a.threads()?;
    let total = (rate * seconds.as_secs_f64()).round() as usize;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let t0 = Instant::now();
    let res = run_threads(threads, a.flag("pin"), move |t| {
        let target = Rc::new(target.clone());
        async move {
            let st = Rc::new(RefCell::new(Stats::default()));
            let mut tasks = Vec::new();
            for k in (t..total).step_by(threads) {
                sleep_until(t0 + interval.mul_f64(k as f64)).await;
                let (target, st) = (target.clone(), st.clone());
                tasks.push(glommio::spawn_local(async move {
                    let start = Instant::now();
                    let r = glommio::timer::timeout(timeout, async { Ok(one(&target, start).await) }).await;
                    let mut s = st.borrow_mut();
                    match r {
                        Ok(Ok(started)) => {
                            s.ok += 1;
                            s.setup.record(start.elapsed().as_micros() as u64);
                            s.start.record(started);
                        }
                        Ok(Err(e)) => {
                            s.failed += 1;
                            note_error(&mut s.error_samples, e);
                        }
                        Err(_) => {
                            s.failed += 1;
                            note_error(&mut s.error_samples, "timed out".into());
                        }
                    }
                }));
            }
            for task in tasks {
                task.await;
            }
            Rc::try_unwrap(st).map(RefCell::into_inner).unwrap_or_default()
        }
    })?;
    let elapsed = t0.elapsed().as_secs_f64();
    let mut st = Stats::default();
    for r in res {
        st.ok += r.ok;
        st.failed += r.failed;
        for e in r.error_samples {
            note_error(&mut st.error_samples, e);
        }
        st.setup.merge(&r.setup);
        st.start.merge(&r.start);
    }
    Ok(json!({
        "mode": "sessions",
        "url": url,
        "rate": rate,
        "seconds": seconds.as_secs_f64(),
        "elapsed": elapsed,
        "sessions": total,
        "ok": st.ok,
        "failed": st.failed,
        "error_samples": st.error_samples,
        "setup_ms": st.setup.json_ms(),
        "play_start_ms": st.start.json_ms(),
    }))
}

/// One session; returns the microseconds from `start` to Play.Start.
async fn one(target: &Target, start: Instant) -> Result<u64, String> {
    let mut s = rtmp::open(target, &target.path, Role::Play, 16 * 1024).await?;
    let started = start.elapsed().as_micros() as u64;
    let bytes = Cell::new(0);
    let got = rtmp::read_media(&mut s, &mut FirstMedia, &bytes).await?;
    let _ = s.sock.close().await;
    if got {
        Ok(started)
    } else {
        Err("closed before the first media message".into())
    }
}
