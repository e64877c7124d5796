//! Metrics: plain per-core tallies (cells, no atomics: each core counts its
//! own, in a thread local, since an executor is a thread), summed at scrape
//! time over a glommio mesh and encoded for Prometheus with
//! `prometheus-client`. A scrape asks each core for its tallies once; it
//! never walks connections (relays add their bytes to a per-kind sink at the
//! idle sweep, `srs_io::idle::ByteSink`).

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use srs_io::idle::ByteSink;
use srs_io::mesh::{self, Mesh};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// What a session speaks toward the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Rtmp,
    HttpFlv,
    HttpTs,
    Hls,
    WebRtc,
    Srt,
}

impl Proto {
    pub const ALL: [Proto; 6] = [Proto::Rtmp, Proto::HttpFlv, Proto::HttpTs, Proto::Hls, Proto::WebRtc, Proto::Srt];

    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Rtmp => "rtmp",
            Proto::HttpFlv => "http-flv",
            Proto::HttpTs => "http-ts",
            Proto::Hls => "hls",
            Proto::WebRtc => "webrtc",
            Proto::Srt => "srt",
        }
    }
}

/// Which way the media flows for the client (any protocol's publish or play).
pub use srs_protocols::rtmp::session::Role;

/// Who ended a session: nobody (a normal close), or who is to blame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Blame {
    None,
    Client,
    Origin,
    Proxy,
    Timeout,
}

impl Blame {
    pub fn as_str(self) -> &'static str {
        match self {
            Blame::None => "none",
            Blame::Client => "client",
            Blame::Origin => "origin",
            Blame::Proxy => "proxy",
            Blame::Timeout => "timeout",
        }
    }
}

/// How a balancer pick went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pick {
    Pinned,
    NewPin,
    Repinned,
    Failed,
}

impl Pick {
    const ALL: [Pick; 4] = [Pick::Pinned, Pick::NewPin, Pick::Repinned, Pick::Failed];

    fn as_str(self) -> &'static str {
        match self {
            Pick::Pinned => "pinned",
            Pick::NewPin => "new_pin",
            Pick::Repinned => "repinned",
            Pick::Failed => "failed",
        }
    }

    /// The metric's view of a balancer answer.
    pub fn of<T>(r: &Result<(T, srs_lb::PickOutcome), srs_lb::LbError>) -> Pick {
        match r {
            Ok((_, srs_lb::PickOutcome::Pinned)) => Pick::Pinned,
            Ok((_, srs_lb::PickOutcome::NewPin)) => Pick::NewPin,
            Ok((_, srs_lb::PickOutcome::Repinned { .. })) => Pick::Repinned,
            Err(_) => Pick::Failed,
        }
    }
}

/// Why a two-way relay ended, as a metric reason and who is to blame.
pub fn pair_end(e: &srs_io::pump::PairEnd) -> (&'static str, Blame) {
    use srs_io::pump::{PairEnd, PumpEnd};
    match e {
        PairEnd::Idle | PairEnd::Upstream(PumpEnd::Idle) | PairEnd::Downstream(PumpEnd::Idle) => {
            ("idle timeout", Blame::Timeout)
        }
        PairEnd::Upstream(PumpEnd::Eof) => ("client closed", Blame::None),
        PairEnd::Downstream(PumpEnd::Eof) => ("origin closed", Blame::None),
        PairEnd::Upstream(PumpEnd::Finished) | PairEnd::Downstream(PumpEnd::Finished) => ("complete", Blame::None),
        PairEnd::Upstream(PumpEnd::Local(_)) | PairEnd::Downstream(PumpEnd::Local(_)) => {
            ("proxy short of resources", Blame::Proxy)
        }
        // How most players leave with data still unread.
        PairEnd::Upstream(PumpEnd::Read(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            ("client reset", Blame::Client)
        }
        PairEnd::Upstream(PumpEnd::Read(_)) => ("client read failed", Blame::Client),
        PairEnd::Upstream(PumpEnd::Write(_)) => ("origin write failed", Blame::Origin),
        PairEnd::Upstream(PumpEnd::Filter(_)) => ("client protocol error", Blame::Client),
        PairEnd::Downstream(PumpEnd::Read(_)) => ("origin read failed", Blame::Origin),
        PairEnd::Downstream(PumpEnd::Write(_)) => ("client write failed", Blame::Client),
        PairEnd::Downstream(PumpEnd::Filter(_)) => ("origin protocol error", Blame::Origin),
    }
}

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// A latency histogram's tallies: one count per bucket (not cumulative),
/// the overflow last.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hist {
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
}

impl Hist {
    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        let i = BUCKETS.iter().position(|b| s <= *b).unwrap_or(BUCKETS.len());
        self.counts[i] += 1;
        self.sum += s;
    }

    fn add(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += b;
        }
        self.sum += o.sum;
    }

    fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// (upper bound, cumulative count), `+Inf` last.
    fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut acc = 0;
        let mut out = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            acc += c;
            out.push((BUCKETS.get(i).copied().unwrap_or(f64::INFINITY), acc));
        }
        out
    }
}

const PROTOS: usize = Proto::ALL.len();

/// A session end's labels: protocol, role (if known), reason, blame.
type EndKey = (Proto, Option<Role>, &'static str, Blame);

/// One core's tallies. Everything here is touched by its own core only.
pub struct CoreMetrics {
    accepted: RefCell<BTreeMap<&'static str, u64>>,
    started: [[Cell<u64>; 2]; PROTOS],
    active: [[Cell<i64>; 2]; PROTOS],
    ended: RefCell<BTreeMap<EndKey, u64>>,
    bytes: [Rc<ByteSink>; PROTOS],
    setup: RefCell<[Hist; PROTOS]>,
    picks: [Cell<u64>; 4],
    origin_down: Cell<u64>,
    datagrams: RefCell<BTreeMap<(Proto, &'static str), u64>>,
    dropped: RefCell<BTreeMap<(Proto, &'static str), u64>>,
    udp_sessions: [Cell<i64>; PROTOS],
    redis: RefCell<(u64, BTreeMap<&'static str, u64>, Hist)>,
}

/// Keeps a session counted as active until dropped.
pub struct Active {
    m: Rc<CoreMetrics>,
    proto: Proto,
    role: Role,
}

impl Drop for Active {
    fn drop(&mut self) {
        let c = &self.m.active[self.proto as usize][self.role as usize];
        c.set(c.get() - 1);
    }
}

fn cells<T: Default, const N: usize>() -> [T; N] {
    std::array::from_fn(|_| T::default())
}

impl CoreMetrics {
    fn new() -> Self {
        CoreMetrics {
            accepted: RefCell::default(),
            started: cells(),
            active: cells(),
            ended: RefCell::default(),
            bytes: std::array::from_fn(|_| Rc::new([Cell::new(0), Cell::new(0)])),
            setup: RefCell::default(),
            picks: cells(),
            origin_down: Cell::new(0),
            datagrams: RefCell::default(),
            dropped: RefCell::default(),
            udp_sessions: cells(),
            redis: RefCell::default(),
        }
    }

    /// A connection accepted on a TCP listener (`rtmp`, `http`, …).
    pub fn accepted(&self, listener: &'static str) {
        *self.accepted.borrow_mut().entry(listener).or_default() += 1;
    }

    /// A session of `proto` started relaying as `role`; active while the
    /// returned guard lives.
    pub fn started(self: &Rc<Self>, proto: Proto, role: Role) -> Active {
        let (p, r) = (proto as usize, role as usize);
        self.started[p][r].set(self.started[p][r].get() + 1);
        self.active[p][r].set(self.active[p][r].get() + 1);
        Active { m: self.clone(), proto, role }
    }

    /// A session ended (`role` unknown when it failed before saying):
    /// `reason` is a short fixed phrase (a label value, so never built from
    /// input).
    pub fn ended(&self, proto: Proto, role: Option<Role>, reason: &'static str, blame: Blame) {
        *self.ended.borrow_mut().entry((proto, role, reason, blame)).or_default() += 1;
    }

    /// Where the relays of `proto` tally their bytes.
    pub fn bytes(&self, proto: Proto) -> Rc<ByteSink> {
        self.bytes[proto as usize].clone()
    }

    /// Accept to relaying (RTMP: the origin's start status out; HTTP: the
    /// response head).
    pub fn setup_time(&self, proto: Proto, d: Duration) {
        self.setup.borrow_mut()[proto as usize].observe(d);
    }

    pub fn pick(&self, p: Pick) {
        let c = &self.picks[p as usize];
        c.set(c.get() + 1);
    }

    pub fn origin_down(&self) {
        self.origin_down.set(self.origin_down.get() + 1);
    }

    /// `n` datagrams relayed `dir` ("to_origin" or "to_client").
    pub fn datagrams(&self, proto: Proto, dir: &'static str, n: u64) {
        *self.datagrams.borrow_mut().entry((proto, dir)).or_default() += n;
    }

    /// A datagram dropped, for a short fixed `reason`.
    pub fn dropped(&self, proto: Proto, reason: &'static str) {
        *self.dropped.borrow_mut().entry((proto, reason)).or_default() += 1;
    }

    /// UDP sessions (WebRTC, SRT) held by this core, up or down by `delta`.
    pub fn udp_sessions(&self, proto: Proto, delta: i64) {
        let c = &self.udp_sessions[proto as usize];
        c.set(c.get() + delta);
    }

    /// One Redis command: how long it took and, if it failed, a short reason.
    pub fn redis(&self, took: Duration, error: Option<&'static str>) {
        let mut r = self.redis.borrow_mut();
        r.0 += 1;
        if let Some(e) = error {
            *r.1.entry(e).or_default() += 1;
        }
        r.2.observe(took);
    }

    fn snapshot(&self, facts: CoreFacts) -> Snapshot {
        let get2 = |a: &[[Cell<u64>; 2]; PROTOS]| a.each_ref().map(|r| r.each_ref().map(Cell::get));
        let redis = self.redis.borrow();
        Snapshot {
            live: facts.live,
            hls_sessions: facts.hls_sessions,
            accepted: self.accepted.borrow().clone(),
            started: get2(&self.started),
            active: self.active.each_ref().map(|r| r.each_ref().map(Cell::get)),
            ended: self.ended.borrow().clone(),
            bytes: self.bytes.each_ref().map(|s| [s[0].get(), s[1].get()]),
            setup: self.setup.borrow().clone(),
            picks: self.picks.each_ref().map(Cell::get),
            origin_down: self.origin_down.get(),
            datagrams: self.datagrams.borrow().clone(),
            dropped: self.dropped.borrow().clone(),
            udp_sessions: self.udp_sessions.each_ref().map(Cell::get),
            redis_commands: redis.0,
            redis_errors: redis.1.clone(),
            redis_latency: redis.2.clone(),
        }
    }
}

/// One core's tallies as plain data, sent over the mesh and summed.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub live: u64,
    hls_sessions: u64,
    accepted: BTreeMap<&'static str, u64>,
    started: [[u64; 2]; PROTOS],
    active: [[i64; 2]; PROTOS],
    ended: BTreeMap<EndKey, u64>,
    bytes: [[u64; 2]; PROTOS],
    setup: [Hist; PROTOS],
    picks: [u64; 4],
    origin_down: u64,
    datagrams: BTreeMap<(Proto, &'static str), u64>,
    dropped: BTreeMap<(Proto, &'static str), u64>,
    udp_sessions: [i64; PROTOS],
    redis_commands: u64,
    redis_errors: BTreeMap<&'static str, u64>,
    redis_latency: Hist,
}

impl Snapshot {
    fn add(&mut self, o: &Snapshot) {
        fn map<K: Ord + Copy>(a: &mut BTreeMap<K, u64>, b: &BTreeMap<K, u64>) {
            for (k, v) in b {
                *a.entry(*k).or_default() += v;
            }
        }
        self.live += o.live;
        self.hls_sessions += o.hls_sessions;
        map(&mut self.accepted, &o.accepted);
        map(&mut self.ended, &o.ended);
        map(&mut self.datagrams, &o.datagrams);
        map(&mut self.dropped, &o.dropped);
        map(&mut self.redis_errors, &o.redis_errors);
        for p in 0..PROTOS {
            for r in 0..2 {
                self.started[p][r] += o.started[p][r];
                self.active[p][r] += o.active[p][r];
                self.bytes[p][r] += o.bytes[p][r];
            }
            self.setup[p].add(&o.setup[p]);
            self.udp_sessions[p] += o.udp_sessions[p];
        }
        for i in 0..4 {
            self.picks[i] += o.picks[i];
        }
        self.origin_down += o.origin_down;
        self.redis_commands += o.redis_commands;
        self.redis_latency.add(&o.redis_latency);
    }
}

type MetricsMesh = Mesh<(), Box<Snapshot>>;
pub type Builder = mesh::Builder<(), Box<Snapshot>>;

thread_local! {
    static LOCAL: Rc<CoreMetrics> = Rc::new(CoreMetrics::new());
    static MESH: RefCell<Option<Rc<MetricsMesh>>> = const { RefCell::new(None) };
}

/// This core's tallies.
pub fn local() -> Rc<CoreMetrics> {
    LOCAL.with(Rc::clone)
}

pub fn builder(cores: usize) -> Builder {
    mesh::builder(cores)
}

/// What a core reads from outside its tallies when a scrape asks.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoreFacts {
    /// Connections open on the core.
    pub live: u64,
    /// HLS player sessions the core owns.
    pub hls_sessions: u64,
}

/// Joins the scrape mesh on this core; `facts` is read when a scrape asks.
pub async fn join(index: usize, b: Builder, facts: impl Fn() -> CoreFacts + 'static) -> Result<(), mesh::MeshError> {
    let m = Mesh::join(index, b).await?;
    m.set_handler(move |()| Box::new(local().snapshot(facts())));
    MESH.with(|s| *s.borrow_mut() = Some(m));
    Ok(())
}

/// Every core's tallies, in core order.
pub async fn gather() -> Vec<Snapshot> {
    let Some(m) = MESH.with(|s| s.borrow().clone()) else {
        return vec![local().snapshot(CoreFacts::default())];
    };
    m.call_all(|| ()).await.into_iter().map(|r| r.map(|b| *b).unwrap_or_default()).collect()
}

/// Hold-downs of refused origins this proxy started, all cores (the system
/// API's `held_down_total`, from the same tallies as the metric).
pub async fn origin_down_total() -> u64 {
    gather().await.iter().map(|s| s.origin_down).sum()
}

/// What the balancer says at scrape time.
#[derive(Debug, Clone, Default)]
pub struct LbFacts {
    pub origins: u64,
    pub alive: u64,
    pub pins: u64,
    pub balancer: &'static str,
}

/// The scrape, as the Prometheus text format (0.0.4).
pub fn encode(cores: &[Snapshot], lb: &LbFacts) -> String {
    let mut total = Snapshot::default();
    for c in cores {
        total.add(c);
    }
    let per_core: Vec<u64> = cores.iter().map(|c| c.live).collect();
    let mut reg = Registry::with_prefix("srs_proxy");
    reg.register_collector(Box::new(Collected { total, per_core, lb: lb.clone() }));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &reg);
    out
}

#[derive(Debug)]
struct Collected {
    total: Snapshot,
    per_core: Vec<u64>,
    lb: LbFacts,
}

type Labels = Vec<(&'static str, String)>;

fn family<M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    rows: impl IntoIterator<Item = (Labels, M)>,
) -> Result<(), std::fmt::Error> {
    let rows: Vec<(Labels, M)> = rows.into_iter().collect();
    let Some(first) = rows.first() else { return Ok(()) };
    let mut m = enc.encode_descriptor(name, help, unit, first.1.metric_type())?;
    for (labels, v) in &rows {
        v.encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn hist_family(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, Hist)>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    for (labels, h) in rows {
        let mut f = m.encode_family(&labels)?;
        f.encode_histogram::<Labels>(h.sum, h.count(), &h.cumulative(), None)?;
    }
    Ok(())
}

fn l(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

impl prometheus_client::collector::Collector for Collected {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let t = &self.total;
        let roles = [Role::Publish, Role::Play];
        family(
            &mut e,
            "build",
            "srs-proxy's version (value 1)",
            Some(&Unit::Other("info".into())),
            [(l(&[("version", crate::VERSION), ("balancer", self.lb.balancer)]), ConstGauge::new(1i64))],
        )?;
        family(
            &mut e,
            "connections_accepted",
            "TCP connections accepted, by listener",
            None,
            t.accepted.iter().map(|(k, v)| (l(&[("listener", k)]), ConstCounter::new(*v))),
        )?;
        family(
            &mut e,
            "connections_live",
            "connections and SRT sessions open, by core (what a drain waits for)",
            None,
            self.per_core.iter().enumerate().map(|(i, v)| (l(&[("core", &i.to_string())]), ConstGauge::new(*v as i64))),
        )?;
        let pr = || Proto::ALL.iter().flat_map(|p| roles.iter().map(move |r| (*p, *r)));
        family(
            &mut e,
            "sessions_started",
            "sessions that started relaying, by protocol and role",
            None,
            pr().map(|(p, r)| {
                (
                    l(&[("protocol", p.as_str()), ("role", r.as_str())]),
                    ConstCounter::new(t.started[p as usize][r as usize]),
                )
            }),
        )?;
        family(
            &mut e,
            "sessions_active",
            "sessions relaying now, by protocol and role",
            None,
            pr().map(|(p, r)| {
                (
                    l(&[("protocol", p.as_str()), ("role", r.as_str())]),
                    ConstGauge::new(t.active[p as usize][r as usize]),
                )
            }),
        )?;
        family(
            &mut e,
            "sessions_ended",
            "sessions ended, by protocol, role, reason and who is to blame",
            None,
            t.ended.iter().map(|((p, r, reason, b), v)| {
                (
                    l(&[
                        ("protocol", p.as_str()),
                        ("role", r.map_or("unknown", Role::as_str)),
                        ("reason", reason),
                        ("blame", b.as_str()),
                    ]),
                    ConstCounter::new(*v),
                )
            }),
        )?;
        family(
            &mut e,
            "relayed",
            "bytes relayed, by protocol and direction",
            Some(&Unit::Bytes),
            Proto::ALL.iter().flat_map(|p| {
                [("to_origin", 0), ("to_client", 1)].map(|(d, i)| {
                    (l(&[("protocol", p.as_str()), ("direction", d)]), ConstCounter::new(t.bytes[*p as usize][i]))
                })
            }),
        )?;
        hist_family(
            &mut e,
            "session_setup",
            "from accept to relaying: the origin's start status out to the client (RTMP), the response head (HTTP)",
            Proto::ALL.iter().map(|p| (l(&[("protocol", p.as_str())]), t.setup[*p as usize].clone())),
        )?;
        family(
            &mut e,
            "balancer_picks",
            "balancer picks, by outcome",
            None,
            Pick::ALL.iter().map(|p| (l(&[("outcome", p.as_str())]), ConstCounter::new(t.picks[*p as usize]))),
        )?;
        family(
            &mut e,
            "origin_down_marks",
            "origins marked down after a failed connect",
            None,
            [(Labels::new(), ConstCounter::new(t.origin_down))],
        )?;
        family(
            &mut e,
            "origins",
            "origins registered, by liveness",
            None,
            [
                (l(&[("state", "alive")]), ConstGauge::new(self.lb.alive as i64)),
                (l(&[("state", "dead")]), ConstGauge::new(self.lb.origins.saturating_sub(self.lb.alive) as i64)),
            ],
        )?;
        family(&mut e, "pins", "stream pins held", None, [(Labels::new(), ConstGauge::new(self.lb.pins as i64))])?;
        family(
            &mut e,
            "hls_sessions",
            "HLS player sessions held",
            None,
            [(Labels::new(), ConstGauge::new(t.hls_sessions as i64))],
        )?;
        family(
            &mut e,
            "udp_sessions",
            "UDP sessions (WebRTC, SRT) held",
            None,
            [Proto::WebRtc, Proto::Srt]
                .map(|p| (l(&[("protocol", p.as_str())]), ConstGauge::new(t.udp_sessions[p as usize]))),
        )?;
        family(
            &mut e,
            "udp_datagrams",
            "UDP datagrams relayed, by protocol and direction",
            None,
            t.datagrams
                .iter()
                .map(|((p, d), v)| (l(&[("protocol", p.as_str()), ("direction", d)]), ConstCounter::new(*v))),
        )?;
        family(
            &mut e,
            "udp_dropped",
            "UDP datagrams dropped, by protocol and reason",
            None,
            t.dropped.iter().map(|((p, r), v)| (l(&[("protocol", p.as_str()), ("reason", r)]), ConstCounter::new(*v))),
        )?;
        if self.lb.balancer == "redis" {
            family(
                &mut e,
                "redis_commands",
                "Redis commands sent",
                None,
                [(Labels::new(), ConstCounter::new(t.redis_commands))],
            )?;
            family(
                &mut e,
                "redis_errors",
                "Redis commands that failed, by reason",
                None,
                t.redis_errors.iter().map(|(r, v)| (l(&[("reason", r)]), ConstCounter::new(*v))),
            )?;
            hist_family(&mut e, "redis_command", "Redis command latency", [(Labels::new(), t.redis_latency.clone())])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_sum_over_cores_and_encode_as_prometheus_text() {
        let a = CoreMetrics::new();
        let a = Rc::new(a);
        let guard = a.started(Proto::Rtmp, Role::Play);
        a.accepted("rtmp");
        a.bytes(Proto::Rtmp)[1].set(1000);
        a.setup_time(Proto::Rtmp, Duration::from_millis(30));
        a.pick(Pick::NewPin);
        let b = Rc::new(CoreMetrics::new());
        let g2 = b.started(Proto::Rtmp, Role::Play);
        drop(g2);
        b.ended(Proto::Rtmp, Some(Role::Play), "client closed", Blame::None);
        b.bytes(Proto::Rtmp)[1].set(24);
        b.dropped(Proto::Srt, "bad cookie");
        let text = encode(
            &[a.snapshot(CoreFacts { live: 3, hls_sessions: 1 }), b.snapshot(CoreFacts { live: 1, hls_sessions: 0 })],
            &LbFacts { origins: 3, alive: 2, pins: 5, balancer: "memory" },
        );
        for line in [
            r#"srs_proxy_connections_accepted_total{listener="rtmp"} 1"#,
            r#"srs_proxy_connections_live{core="0"} 3"#,
            r#"srs_proxy_connections_live{core="1"} 1"#,
            r#"srs_proxy_sessions_started_total{protocol="rtmp",role="play"} 2"#,
            r#"srs_proxy_sessions_active{protocol="rtmp",role="play"} 1"#,
            r#"srs_proxy_sessions_ended_total{protocol="rtmp",role="play",reason="client closed",blame="none"} 1"#,
            r#"srs_proxy_relayed_bytes_total{protocol="rtmp",direction="to_client"} 1024"#,
            r#"srs_proxy_session_setup_seconds_bucket{protocol="rtmp",le="0.05"} 1"#,
            r#"srs_proxy_session_setup_seconds_count{protocol="rtmp"} 1"#,
            r#"srs_proxy_balancer_picks_total{outcome="new_pin"} 1"#,
            r#"srs_proxy_origins{state="dead"} 1"#,
            r#"srs_proxy_pins 5"#,
            r#"srs_proxy_hls_sessions 1"#,
            r#"srs_proxy_udp_dropped_total{protocol="srt",reason="bad cookie"} 1"#,
            r#"srs_proxy_build_info{version=""#,
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("redis"), "no Redis series in memory mode");
        drop(guard);
    }

    #[test]
    fn histogram_buckets_are_cumulative_with_inf_last() {
        let mut h = Hist::default();
        for ms in [1, 3, 3, 20000] {
            h.observe(Duration::from_millis(ms));
        }
        let c = h.cumulative();
        assert_eq!(c.first(), Some(&(0.001, 1)));
        assert_eq!(c[2], (0.005, 3));
        assert_eq!(c.last(), Some(&(f64::INFINITY, 4)));
        assert_eq!(h.count(), 4);
    }
}
