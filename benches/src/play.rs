//! `play`: M players (RTMP or HTTP-FLV) reading and discarding media for a
//! fixed time, measuring time to first video and the delay of every
//! stamped video message (receive wall time minus the publisher's stamp).

use crate::hist::Hist;
use crate::net::{self, Scheme, Target};
use crate::rtmp::{self, Role, Sink, STAMP_END};
use crate::{flv, note_error, run_threads, Args};
use futures_lite::future;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

#[derive(Clone)]
struct Opts {
    target: Target,
    clients: usize,
    streams: usize,
    warmup: Duration,
    ramp: Duration,
    bufsize: usize,
}

#[derive(Default)]
struct Stats {
    connected: u64,
    errors: u64,
    error_samples: Vec<String>,
    bytes: u64,
    min_player_bytes: Option<u64>,
    max_player_bytes: u64,
    video_messages: u64,
    ttfm: Hist,
    delay: Hist,
}

impl Stats {
    fn merge(&mut self, o: Stats) {
        self.connected += o.connected;
        self.errors += o.errors;
        for e in o.error_samples {
            note_error(&mut self.error_samples, e);
        }
        self.bytes += o.bytes;
        self.min_player_bytes = match (self.min_player_bytes, o.min_player_bytes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max_player_bytes = self.max_player_bytes.max(o.max_player_bytes);
        self.video_messages += o.video_messages;
        self.ttfm.merge(&o.ttfm);
        self.delay.merge(&o.delay);
    }
}

struct PlaySink<'a> {
    start: Instant,
    first: Option<Instant>,
    warmup: Duration,
    st: &'a RefCell<Stats>,
}

impl Sink for PlaySink<'_> {
    fn media(&mut self, video: bool) -> bool {
        if video && self.first.is_none() {
            let now = Instant::now();
            self.first = Some(now);
            let us = now.duration_since(self.start).as_micros() as u64;
            self.st.borrow_mut().ttfm.record(us);
        }
        false
    }

    fn video_head(&mut self, head: &[u8; STAMP_END]) {
        let Some(stamp) = rtmp::stamp_of(head) else {
            return;
        };
        let mut st = self.st.borrow_mut();
        st.video_messages += 1;
        if self.first.is_some_and(|f| f.elapsed() >= self.warmup) {
            st.delay.record(net::wall_us().saturating_sub(stamp));
        }
    }
}

pub fn run(a: &Args) -> Result<Value, String> {
    let url = a.str("url")?;
    let o = Opts {
        target: Target::parse(&url)?,
        clients: a.count("clients", Some(1))?.max(1),
        streams: a.count("streams", Some(1))?.max(1),
        warmup: a.dur("warmup", Some(2.0))?,
        ramp: a.dur("ramp", Some(0.0))?,
        bufsize: a.count("bufsize", Some(64 * 1024))?,
    };
    let seconds = a.dur("seconds", None)?;
    let threads = a.threads()?;
    let end = Instant::now() + seconds;
    let o2 = o.clone();
    let res = run_threads(threads, a.flag("pin"), move |t| {
        let o = Rc::new(o2.clone());
        async move {
            let st = Rc::new(RefCell::new(Stats::default()));
            let t0 = Instant::now();
            let mut tasks = Vec::new();
            for i in (t..o.clients).step_by(threads) {
                let (o, st) = (o.clone(), st.clone());
                let at = t0 + o.ramp.mul_f64(i as f64 / o.clients as f64);
                tasks.push(glommio::spawn_local(async move {
                    sleep_until(at).await;
                    player(&o, i, end, &st).await
                }));
            }
            for task in tasks {
                task.await;
            }
            Rc::try_unwrap(st).map(RefCell::into_inner).unwrap_or_default()
        }
    })?;
    let mut st = Stats::default();
    for r in res {
        st.merge(r);
    }
    let secs = seconds.as_secs_f64().max(1e-9);
    let mbit = |b: u64| b as f64 * 8.0 / secs / 1e6;
    Ok(json!({
        "mode": "play",
        "url": url,
        "clients": o.clients,
        "seconds": secs,
        "connected": st.connected,
        "errors": st.errors,
        "error_samples": st.error_samples,
        "bytes": st.bytes,
        "throughput_mbit": mbit(st.bytes),
        "min_player_mbit": mbit(st.min_player_bytes.unwrap_or(0)),
        "max_player_mbit": mbit(st.max_player_bytes),
        "video_messages": st.video_messages,
        "ttfm_ms": st.ttfm.json_ms(),
        "delay_ms": st.delay.json_ms(),
    }))
}

pub async fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        glommio::timer::sleep(at - now).await;
    }
}

async fn player(o: &Opts, i: usize, end: Instant, st: &RefCell<Stats>) {
    let bytes = Cell::new(0u64);
    let mut sink = PlaySink { start: Instant::now(), first: None, warmup: o.warmup, st };
    let r = future::or(async { Some(play_one(o, i, &mut sink, &bytes).await) }, async {
        sleep_until(end).await;
        None
    })
    .await;
    let mut s = st.borrow_mut();
    let b = bytes.get();
    s.bytes += b;
    s.min_player_bytes = Some(s.min_player_bytes.map_or(b, |m| m.min(b)));
    s.max_player_bytes = s.max_player_bytes.max(b);
    if let Some(Err(e)) = r {
        s.errors += 1;
        note_error(&mut s.error_samples, e);
    }
}

/// Plays until the server closes (an error: the run was not over) or fails.
async fn play_one(o: &Opts, i: usize, sink: &mut PlaySink<'_>, bytes: &Cell<u64>) -> Result<(), String> {
    let name = o.target.nth(i, o.streams);
    match o.target.scheme {
        Scheme::Rtmp => {
            let mut s = rtmp::open(&o.target, &name, Role::Play, o.bufsize).await?;
            sink.st.borrow_mut().connected += 1;
            rtmp::read_media(&mut s, sink, bytes).await?;
        }
        Scheme::Http => {
            let mut s = flv::open(&o.target, &name, o.bufsize).await?;
            sink.st.borrow_mut().connected += 1;
            flv::read_media(&mut s, sink, bytes).await?;
        }
    }
    Err("the server closed the stream".into())
}
