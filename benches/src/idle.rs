//! `idle`: opens K RTMP play sessions of a stream nobody publishes, so they
//! stay idle, holds them while the caller measures memory, then closes them.
//! When every open has finished (opened or failed) it writes
//! `{"open":N,"failed":F}` to `--ready-file`, then holds for `--hold`.

use crate::net::{Scheme, Target};
use crate::rtmp::{self, Role, Sink, STAMP_END};
use crate::{note_error, run_threads, Args};
use futures_lite::future;
use glommio::sync::Semaphore;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Stats {
    open: u64,
    failed: u64,
    /// Closed by the server while held.
    dropped: u64,
    error_samples: Vec<String>,
}

struct Ignore;

impl Sink for Ignore {
    fn media(&mut self, _video: bool) -> bool {
        false
    }
    fn video_head(&mut self, _head: &[u8; STAMP_END]) {}
}

pub fn run(a: &Args) -> Result<Value, String> {
    let url = a.str("url")?;
    let target = Target::parse(&url)?;
    if target.scheme != Scheme::Rtmp {
        return Err("idle needs an rtmp:// URL".into());
    }
    let clients = a.count("clients", None)?;
    let hold = a.dur("hold", None)?;
    let concurrency = a.count("concurrency", Some(64))?.max(1);
    let open_timeout = a.dur("open-timeout", Some(120.0))?;
    let ready_file = a.opt_str("ready-file");
    let threads = a.threads()?;
    let done = Arc::new(AtomicU64::new(0));
    let opened = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let open_deadline = t0 + open_timeout;
    let res = run_threads(threads, a.flag("pin"), move |t| {
        let target = Rc::new(target.clone());
        let (done, opened, ready_file) = (done.clone(), opened.clone(), ready_file.clone());
        async move {
            let st = Rc::new(RefCell::new(Stats::default()));
            let gate = Rc::new(Semaphore::new(concurrency as u64));
            let stop = Rc::new(Semaphore::new(0));
            let mut tasks = Vec::new();
            for _ in (t..clients).step_by(threads) {
                let (target, st, gate, stop) = (target.clone(), st.clone(), gate.clone(), stop.clone());
                let (done, opened) = (done.clone(), opened.clone());
                tasks.push(glommio::spawn_local(async move {
                    let permit = gate.acquire_permit(1).await;
                    let r = glommio::timer::timeout(open_deadline.saturating_duration_since(Instant::now()), async {
                        Ok(rtmp::open(&target, &target.path, Role::Play, 4096).await)
                    })
                    .await;
                    drop(permit);
                    let mut s = match r {
                        Ok(Ok(s)) => {
                            st.borrow_mut().open += 1;
                            opened.fetch_add(1, Ordering::Relaxed);
                            done.fetch_add(1, Ordering::Release);
                            s
                        }
                        Ok(Err(e)) => {
                            let mut s = st.borrow_mut();
                            s.failed += 1;
                            note_error(&mut s.error_samples, e);
                            done.fetch_add(1, Ordering::Release);
                            return;
                        }
                        Err(_) => {
                            let mut s = st.borrow_mut();
                            s.failed += 1;
                            note_error(&mut s.error_samples, "open timed out".into());
                            done.fetch_add(1, Ordering::Release);
                            return;
                        }
                    };
                    let bytes = Cell::new(0);
                    let held = future::or(
                        async {
                            let _ = rtmp::read_media(&mut s, &mut Ignore, &bytes).await;
                            false
                        },
                        async {
                            let _ = stop.acquire(1).await;
                            true
                        },
                    )
                    .await;
                    if !held {
                        st.borrow_mut().dropped += 1;
                    }
                }));
            }
            // Wait for every thread's opens to finish (bounded), then hold.
            while done.load(Ordering::Acquire) < clients as u64 && Instant::now() < open_deadline {
                glommio::timer::sleep(Duration::from_millis(20)).await;
            }
            if t == 0 {
                if let Some(f) = &ready_file {
                    let n = opened.load(Ordering::Relaxed);
                    let body = json!({"open": n, "failed": clients as u64 - n,
                        "seconds": t0.elapsed().as_secs_f64()});
                    let _ = std::fs::write(f, body.to_string());
                }
            }
            glommio::timer::sleep(hold).await;
            stop.close();
            for task in tasks {
                task.await;
            }
            Rc::try_unwrap(st).map(RefCell::into_inner).unwrap_or_default()
        }
    })?;
    let mut st = Stats::default();
    for r in res {
        st.open += r.open;
        st.failed += r.failed;
        st.dropped += r.dropped;
        for e in r.error_samples {
            note_error(&mut st.error_samples, e);
        }
    }
    Ok(json!({
        "mode": "idle",
        "url": url,
        "clients": clients,
        "open": st.open,
        "failed": st.failed,
        "dropped_while_held": st.dropped,
        "error_samples": st.error_samples,
        "hold_seconds": hold.as_secs_f64(),
        "elapsed": t0.elapsed().as_secs_f64(),
    }))
}
