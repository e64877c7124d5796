//! The RTMP proxy: reads a client's handshake and commands just far enough
//! to learn its stream, asks the balancer for the origin, plays the client's
//! part toward that origin, then relays chunks both ways without
//! reassembling messages.

use crate::metrics::{self, Blame, Pick, Proto};
use crate::worker::{ConnId, Core};
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use glommio::timer::Timer;
use srs_io::idle::Watch;
use srs_io::pump::{self, Dir, Filter, PairEnd, PumpEnd};
use srs_io::splice::Switching;
use srs_lb::LoadBalancer;
use srs_protocols::rtmp::chunk::{ChunkError, Decoder, Encoder, Forward, Limits, OutOfStep, Relay, StreamIdMap};
use srs_protocols::rtmp::client::{ClientProgress, ClientSession};
use srs_protocols::rtmp::handshake::RANDOM_LEN;
use srs_protocols::rtmp::server::{self, Identified, ServerInfo, StreamRequest};
use srs_protocols::rtmp::session::{self, Advance, Role, SessionError};
use srs_protocols::stream_url::{self, StreamUrl};
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// From accept to a known stream (handshake and commands).
pub const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(10);
pub const ORIGIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// From TCP connect to the origin's start status.
pub const ORIGIN_START_TIMEOUT: Duration = Duration::from_secs(10);
const RELAY_BUF: usize = 64 * 1024;
const MAX_PENDING: usize = 64 * 1024;

/// Why a session ended, by who is to blame.
enum End {
    /// The relay ran and one side ended it.
    Relay(PairEnd),
    /// The client closed before saying what it wanted, during this stage,
    /// after sending this many bytes.
    ClientGone(&'static str, u64),
    ClientTimeout(&'static str),
    Client(SessionError),
    BadStream(String),
    NoOrigin(String),
    Origin(String),
    Io(std::io::Error),
}

impl End {
    /// The metric's reason and who is to blame.
    fn metric(&self) -> (&'static str, Blame) {
        match self {
            End::Relay(e) => metrics::pair_end(e),
            End::ClientGone(_, 0) => ("client closed before a request", Blame::None),
            End::ClientGone(..) => ("client closed during setup", Blame::Client),
            End::ClientTimeout(_) => ("client setup timeout", Blame::Timeout),
            End::Client(_) => ("client protocol error", Blame::Client),
            End::BadStream(_) => ("bad stream name", Blame::Client),
            End::NoOrigin(_) => ("no origin", Blame::Proxy),
            End::Origin(_) => ("origin failed", Blame::Origin),
            End::Io(_) => ("client i/o error", Blame::Client),
        }
    }

    fn is_failure(&self) -> bool {
        // A connect-and-close with no bytes is a health check, not a failure.
        !matches!(
            self,
            End::Relay(PairEnd::Upstream(PumpEnd::Eof))
                | End::Relay(PairEnd::Downstream(PumpEnd::Eof))
                | End::ClientGone(_, 0)
        )
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Relay(e) => write!(f, "{e}"),
            End::ClientGone(stage, 0) => {
                write!(f, "client closed without sending anything ({stage})")
            }
            End::ClientGone(stage, n) => write!(f, "client closed during {stage} after {n} bytes"),
            End::ClientTimeout(stage) => write!(f, "client timed out during {stage}"),
            End::Client(e) => write!(f, "client sent {e}"),
            End::BadStream(e) => write!(f, "bad stream name: {e}"),
            End::NoOrigin(e) => write!(f, "no origin: {e}"),
            End::Origin(e) => write!(f, "origin failed: {e}"),
            End::Io(e) => write!(f, "client i/o: {e}"),
        }
    }
}

/// What the end-of-session log line reports.
#[derive(Default)]
struct Facts {
    stream: Option<StreamUrl>,
    origin: Option<String>,
    role: Option<Role>,
    bytes_in: Cell<u64>,
    bytes_out: Cell<u64>,
    /// Messages relayed each way (client → origin, origin → client).
    messages: (u64, u64),
    /// Relay batches that needed a copy (header re-encoding), each way.
    copied: (u64, u64),
    /// When each way (client → origin, origin → client) began to splice,
    /// in ms since the session was accepted: from then on its bytes moved
    /// in the kernel and its messages were no longer counted.
    spliced: (Option<u64>, Option<u64>),
    /// For a way that never spliced, what kept it on the chunk path at the
    /// end (`Relay::out_of_step`).
    unspliced: (Option<OutOfStep>, Option<OutOfStep>),
}

/// One RTMP connection. A plain function: the socket goes straight into the
/// boxed setup future, so the session's own future (held for the whole
/// relay) never stores it.
pub fn serve(core: Rc<Core>, id: ConnId, stream: TcpStream, peer: SocketAddr) -> impl Future<Output = ()> {
    let started = Instant::now();
    tracing::debug!(conn = %id, core = core.index, %peer, "rtmp connection accepted");
    let setup = Box::pin(prepare(core.clone(), id, stream));
    async move {
        let (mut facts, ready) = setup.await;
        let role = facts.role;
        let end = match ready {
            Ok(ready) => {
                let m = metrics::local();
                let _active = role.map(|r| m.started(Proto::Rtmp, r));
                // Setup ends when relaying begins: the origin's start status
                // is out to the client. (The relay may splice before its
                // filters see a byte, so "first byte relayed" is not seen.)
                m.setup_time(Proto::Rtmp, started.elapsed());
                relay(&core, started, ready, &mut facts).await
            }
            Err(end) => end,
        };
        let (reason, blame) = end.metric();
        metrics::local().ended(Proto::Rtmp, role, reason, blame);
        log_end(&core, id, peer, started, &facts, &end);
    }
}

fn log_end(core: &Core, id: ConnId, peer: SocketAddr, started: Instant, facts: &Facts, end: &End) {
    let stream = facts.stream.as_ref().map(|s| s.as_str()).unwrap_or("-");
    let origin = facts.origin.as_deref().unwrap_or("-");
    let role = facts.role.map_or("-", Role::as_str);
    let (bin, bout) = (facts.bytes_in.get(), facts.bytes_out.get());
    let ms = started.elapsed().as_millis() as u64;
    // Formatted only if the line is written.
    let msgs = Both(facts.messages);
    let copied = Both(facts.copied);
    let spliced = SplicedAt(facts.spliced);
    let unspliced = Why(facts.unspliced);
    if end.is_failure() {
        tracing::warn!(conn = %id, core = core.index, %peer, stream, origin, role, bytes_in = bin, bytes_out = bout,
            messages = %msgs, copied = %copied, spliced = %spliced, unspliced = %unspliced, duration_ms = ms, reason = %end, "rtmp session ended");
    } else {
        tracing::info!(conn = %id, core = core.index, %peer, stream, origin, role, bytes_in = bin, bytes_out = bout,
            messages = %msgs, copied = %copied, spliced = %spliced, unspliced = %unspliced, duration_ms = ms, reason = %end, "rtmp session ended");
    }
}

/// When each way began to splice, shown as `a/b` in ms since the session
/// was accepted, `-` for a way that never did (e.g. `-/312ms`).
struct SplicedAt((Option<u64>, Option<u64>));

impl fmt::Display for SplicedAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let one = |f: &mut fmt::Formatter<'_>, v: Option<u64>| match v {
            Some(ms) => write!(f, "{ms}ms"),
            None => f.write_str("-"),
        };
        one(f, self.0 .0)?;
        f.write_str("/")?;
        one(f, self.0 .1)
    }
}

/// Why each way stayed on the chunk path, `a/b`, `-` for a way that spliced
/// (or never relayed).
struct Why((Option<OutOfStep>, Option<OutOfStep>));

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let one = |f: &mut fmt::Formatter<'_>, v: Option<OutOfStep>| match v {
            Some(w) => write!(f, "{w}"),
            None => f.write_str("-"),
        };
        one(f, self.0 .0)?;
        f.write_str("/")?;
        one(f, self.0 .1)
    }
}

/// A count each way, shown as `a/b`.
struct Both((u64, u64));

impl fmt::Display for Both {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0 .0, self.0 .1)
    }
}

fn random_block() -> [u8; RANDOM_LEN] {
    let mut b = [0u8; RANDOM_LEN];
    fastrand::fill(&mut b);
    b
}

/// Reads more bytes into `buf` before `deadline` fires. One deadline timer
/// serves a whole phase: no timer is armed and cancelled per read.
async fn read_more(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: &mut Timer,
    counter: &Cell<u64>,
) -> Result<(), ReadFail> {
    if buf.len() >= MAX_PENDING {
        return Err(ReadFail::TooMuch);
    }
    // Through the core's shared buffer: `buf` keeps only what came.
    let r = futures_lite::future::or(async { Some(pump::read_append(s, buf, pump::SETUP_READ).await) }, async {
        deadline.await;
        None
    })
    .await;
    match r {
        None => Err(ReadFail::Timeout),
        Some(Ok(0)) => Err(ReadFail::Closed),
        Some(Ok(n)) => {
            counter.set(counter.get() + n as u64);
            Ok(())
        }
        Some(Err(e)) => Err(ReadFail::Io(e)),
    }
}

enum ReadFail {
    Timeout,
    Closed,
    TooMuch,
    Io(std::io::Error),
}

fn client_read_fail(f: ReadFail, stage: &'static str, bytes_in: u64) -> End {
    match f {
        ReadFail::Timeout => End::ClientTimeout(stage),
        ReadFail::Closed => End::ClientGone(stage, bytes_in),
        ReadFail::TooMuch => {
            End::Client(SessionError::Misbehaved(format!("over {MAX_PENDING} unparsed bytes during {stage}")))
        }
        ReadFail::Io(e) => End::Io(e),
    }
}

async fn send(s: &mut TcpStream, out: &mut Vec<u8>, counter: &Cell<u64>) -> std::io::Result<()> {
    if !out.is_empty() {
        s.write_all(out).await?;
        counter.set(counter.get() + out.len() as u64);
        let n = out.len();
        pump::consume(out, n);
    }
    Ok(())
}

/// Drives one typestate step to its next step, reading as needed. Each step
/// is its own future, awaited alone: the setup future then holds one step's
/// state at a time, where inline steps each took their own place in it
/// (its size was the sum of theirs).
#[allow(clippy::too_many_arguments)]
async fn step<S, N>(
    c: &mut TcpStream,
    buf: &mut Vec<u8>,
    out: &mut Vec<u8>,
    deadline: &mut Timer,
    facts: &Facts,
    stage: &'static str,
    mut state: S,
    mut handle: impl FnMut(S, &[u8], &mut Vec<u8>) -> Result<Advance<S, N>, SessionError>,
) -> Result<N, End> {
    loop {
        match handle(state, buf, out) {
            Ok(Advance::Stay { consumed, state: s }) => {
                pump::consume(buf, consumed);
                state = s;
                send(c, out, &facts.bytes_out).await.map_err(End::Io)?;
                if let Err(f) = read_more(c, buf, deadline, &facts.bytes_in).await {
                    return Err(client_read_fail(f, stage, facts.bytes_in.get()));
                }
            }
            Ok(Advance::Next { consumed, next }) => {
                pump::consume(buf, consumed);
                send(c, out, &facts.bytes_out).await.map_err(End::Io)?;
                return Ok(next);
            }
            Err(e) => {
                let _ = send(c, out, &facts.bytes_out).await;
                return Err(End::Client(e));
            }
        }
    }
}

/// Both sides ready to relay: the sockets, each direction's chunk relay, and
/// the bytes already read from each side that the relay must handle first.
struct Ready {
    client: TcpStream,
    parts: Parts,
}

/// What the setup hands the relay besides the client's socket.
struct Parts {
    origin: TcpStream,
    up: RelayFilter,
    down: RelayFilter,
    client_rest: Vec<u8>,
    origin_rest: Vec<u8>,
}

/// The handshake and command phases, run boxed: their state is freed before
/// the relay starts, so a long-lived relay holds only what it needs. Returns
/// what the end line reports, whatever happened.
///
/// Not an `async fn`: an async fn's future keeps a `mut` argument twice (the
/// argument and the local it is moved into: 2552 bytes against 2424 here, by
/// `-Zprint-type-sizes`); this block captures the socket once, and the steps
/// below borrow it.
#[allow(clippy::manual_async_fn)]
fn prepare(
    core: Rc<Core>,
    id: ConnId,
    mut client: TcpStream,
) -> impl Future<Output = (Facts, Result<Box<Ready>, End>)> {
    async move {
        let mut facts = Facts::default();
        // The client's start status, or why it was refused.
        let mut reply = Vec::new();
        let ready = match setup(&core, id, &mut client, &mut facts, &mut reply).await {
            Ok(parts) => match send(&mut client, &mut reply, &facts.bytes_out).await {
                Ok(()) => Ok(Box::new(Ready { client, parts })),
                Err(e) => Err(End::Io(e)),
            },
            Err(end) => {
                let _ = send(&mut client, &mut reply, &facts.bytes_out).await;
                Err(end)
            }
        };
        (facts, ready)
    }
}

/// The client's handshake and commands, up to the stream it asks for.
async fn identify(
    c: &mut TcpStream,
    id: ConnId,
    buf: &mut Vec<u8>,
    out: &mut Vec<u8>,
    facts: &Facts,
    limits: Limits,
) -> Result<Identified, End> {
    let mut deadline = Timer::new(IDENTIFY_TIMEOUT);
    let info = ServerInfo { version: crate::VERSION.to_string(), conn_id: id.to_string() };
    let st = server::ExpectC0C1::new(&random_block(), 0, info, limits);
    let st = step(c, buf, out, &mut deadline, facts, "handshake", st, |s, b, o| s.handle(b, o)).await?;
    let st = step(c, buf, out, &mut deadline, facts, "handshake", st, |s, b, _o| s.handle(b)).await?;
    let st = step(c, buf, out, &mut deadline, facts, "connect", st, |s, b, o| s.handle(b, o)).await?;
    step(c, buf, out, &mut deadline, facts, "publish or play", st, |s, b, o| s.handle(b, o)).await
}

/// Why the origin did not start the stream: what the client is told (if
/// anything), and what the end line says.
struct OriginFail {
    tell_client: Option<String>,
    detail: String,
    /// The connection itself failed (refused, unreachable, timed out): the
    /// origin is held down and the stream tried elsewhere.
    connect: bool,
}

impl OriginFail {
    fn new(tell_client: impl Into<String>, detail: String) -> Self {
        OriginFail { tell_client: Some(tell_client.into()), detail, connect: false }
    }
}

/// The relay's origin side once the origin has started the stream.
struct OriginSide {
    up: TcpStream,
    /// Bytes after the start status, for the relay to handle first.
    rest: Vec<u8>,
    relay: (Decoder, Encoder, u32),
}

/// Toward the origin, as a client would: connect, handshake, commands, up
/// to the origin's start status.
async fn start_origin(addr: SocketAddr, req: &StreamRequest, limits: Limits) -> Result<OriginSide, OriginFail> {
    let counter = Cell::new(0u64);
    let mut up = match TcpStream::connect_timeout(addr, ORIGIN_CONNECT_TIMEOUT).await {
        Ok(s) => s,
        Err(e) => {
            let f = OriginFail::new("origin unreachable", format!("connect {addr}: {e}"));
            return Err(OriginFail { connect: true, ..f });
        }
    };
    let _ = up.set_nodelay(true);
    let mut deadline = Timer::new(ORIGIN_START_TIMEOUT);
    let mut obuf: Vec<u8> = Vec::new();
    let mut oout: Vec<u8> = Vec::new();
    let mut cs = ClientSession::start(&random_block(), 0, req, limits, &mut oout);
    loop {
        if let Err(e) = send(&mut up, &mut oout, &counter).await {
            return Err(OriginFail::new("origin write failed", format!("write to {addr}: {e}")));
        }
        let fail = match read_more(&mut up, &mut obuf, &mut deadline, &counter).await {
            Ok(()) => None,
            Err(ReadFail::Timeout) => Some("timed out waiting for the start status".to_string()),
            Err(ReadFail::Closed) => Some("closed the connection".to_string()),
            Err(ReadFail::TooMuch) => Some("sent too much before the start status".to_string()),
            Err(ReadFail::Io(e)) => Some(format!("read: {e}")),
        };
        if let Some(f) = fail {
            return Err(OriginFail::new("origin did not start the stream", format!("{addr} {f}")));
        }
        match cs.handle(&obuf, &mut oout) {
            Ok(ClientProgress::NeedMore { consumed }) => {
                pump::consume(&mut obuf, consumed);
            }
            Ok(ClientProgress::Ready { consumed }) => {
                pump::consume(&mut obuf, consumed);
                if let Err(e) = send(&mut up, &mut oout, &counter).await {
                    return Err(OriginFail {
                        tell_client: None,
                        detail: format!("write to {addr}: {e}"),
                        connect: false,
                    });
                }
                break;
            }
            Err(e) => {
                return Err(OriginFail::new(format!("origin: {e}"), format!("{addr}: {e}")));
            }
        }
    }
    match cs.into_relay() {
        Ok(relay) => Ok(OriginSide { up, rest: obuf, relay }),
        Err(e) => Err(OriginFail { tell_client: None, detail: e.to_string(), connect: false }),
    }
}

/// Everything up to the relay but the client's last reply, which it leaves
/// in `out` for the caller to send: the start status, or why the stream was
/// refused. Its only awaits are the three phases, each a future of its own,
/// so little lives across them.
async fn setup(
    core: &Rc<Core>,
    id: ConnId,
    c: &mut TcpStream,
    facts: &mut Facts,
    out: &mut Vec<u8>,
) -> Result<Parts, End> {
    let limits = Limits::default();
    let mut buf: Vec<u8> = Vec::new();
    let ident = identify(c, id, &mut buf, out, facts, limits).await?;

    let req = ident.request();
    facts.role = Some(req.role);
    let key = match stream_url::from_rtmp(&req.tc_url, &req.stream) {
        Ok(k) => k,
        Err(e) => {
            let detail = format!("{e} (tcUrl={:?}, stream={:?})", req.tc_url, req.stream);
            ident.reject(&format!("bad stream: {e}"), out);
            return Err(End::BadStream(detail));
        }
    };
    facts.stream = Some(key.clone());
    // A refused connect holds the origin down and the stream is picked
    // again among the live ones: the client is retried there once.
    let mut refused: Option<String> = None;
    let (side, addr) = loop {
        let picked = core.lb.pick(&key).await;
        metrics::local().pick(Pick::of(&picked));
        let (origin, outcome) = match picked {
            Ok(picked) => picked,
            Err(e) => {
                // After a refusal, the refusal is what went wrong.
                if let Some(why) = refused {
                    ident.reject("origin unreachable", out);
                    return Err(End::Origin(format!("{why}; no other live origin")));
                }
                ident.reject(&e.to_string(), out);
                return Err(End::NoOrigin(e.to_string()));
            }
        };
        let oid = origin.id();
        if let srs_lb::PickOutcome::Repinned { from } = &outcome {
            tracing::info!(stream = %key, from = %from, to = %oid, "stream re-pinned: its origin expired or was held down");
        }
        facts.origin = Some(oid.to_string());
        let addr = match origin.rtmp_addr() {
            Ok(a) => a,
            Err(e) => {
                ident.reject("origin has no usable rtmp endpoint", out);
                return Err(End::Origin(format!("rtmp endpoint {:?}: {e}", origin.rtmp)));
            }
        };
        drop((origin, outcome));
        match start_origin(addr, ident.request(), limits).await {
            Ok(side) => break (side, addr),
            Err(f) if f.connect && refused.is_none() => {
                tracing::warn!(conn = %id, stream = %key, origin = %oid, %addr, error = %f.detail,
                    "origin refused the connection; retrying on another origin");
                core.lb.mark_down(&oid, &f.detail).await;
                refused = Some(f.detail);
            }
            Err(f) => {
                if let Some(m) = &f.tell_client {
                    ident.reject(m, out);
                }
                return Err(End::Origin(f.detail));
            }
        }
    };
    drop(key);
    let (odec, oenc, osid) = side.relay;
    let relaying = ident.start(out);
    tracing::info!(conn = %id, core = core.index, stream = facts.stream.as_ref().map_or("-", |s| s.as_str()),
        origin = facts.origin.as_deref().unwrap_or("-"), %addr, role = facts.role.map_or("-", Role::as_str), "rtmp session relaying");
    let mut up = Relay::new(relaying.decoder, oenc, StreamIdMap { from: relaying.stream_id, to: osid });
    let mut down = Relay::new(odec, relaying.encoder, StreamIdMap { from: osid, to: relaying.stream_id });
    // What the proxy said itself left some chunk streams unlike the origin's
    // (or the client's): no-op control messages bring what they can in step,
    // so that the relay can splice.
    let client = Some((facts.role.unwrap_or(Role::Play), relaying.stream_id));
    up.resync(|h, cs| session::no_op_message(h, cs, None));
    down.resync(|h, cs| session::no_op_message(h, cs, client));
    let (up, down) = (RelayFilter(up), RelayFilter(down));
    Ok(Parts { origin: side.up, up, down, client_rest: buf, origin_rest: side.rest })
}

/// Relays chunks both ways; each way switches to splicing once its two
/// chunk streams are in step (`Relay::can_splice`: same stream ids and chunk
/// sizes, no message half relayed, every chunk stream in the same header
/// state on both ends). From then on the receiver decodes exactly the bytes
/// the sender encoded, from the same state, as if they were connected
/// directly: a later SetChunkSize or Abort is among those bytes and takes
/// effect at the same chunk on both ends, so nothing needs reading.
async fn relay(core: &Rc<Core>, started: Instant, mut ready: Box<Ready>, facts: &mut Facts) -> End {
    // Everything stays in the box; the relay borrows it.
    let Ready { client, parts: p } = &mut *ready;
    let client_rest = std::mem::take(&mut p.client_rest);
    let origin_rest = std::mem::take(&mut p.origin_rest);
    let watch = Watch::with_sink(core.cfg.idle_timeout, metrics::local().bytes(Proto::Rtmp));
    let switched = (Cell::new(None), Cell::new(None));
    let up = Switching::new(Dir::new(&mut p.up, client_rest, &mut p.origin, watch.bytes(0)), &switched.0);
    let down = Switching::new(Dir::new(&mut p.down, origin_rest, client, watch.bytes(1)), &switched.1);
    let end = pump::relay_with(client, &mut p.origin, up, down, RELAY_BUF, &watch).await;
    let since = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(started).as_millis() as u64);
    facts.spliced = (since(switched.0.get()), since(switched.1.get()));
    if facts.role == Some(Role::Play) && matches!(end, PairEnd::Upstream(_)) {
        // The player left: nothing more from the origin is wanted, and
        // nothing owed to it matters (acknowledgements, a deleteStream).
        let _ = pump::reset_on_close(p.origin.as_raw_fd());
    }
    let why = |r: &Relay, at: Option<u64>| if at.is_none() { r.out_of_step() } else { None };
    facts.unspliced = (why(&p.up.0, facts.spliced.0), why(&p.down.0, facts.spliced.1));
    facts.messages = (p.up.0.messages(), p.down.0.messages());
    facts.copied = (p.up.0.copied_batches(), p.down.0.copied_batches());
    facts.bytes_in.set(facts.bytes_in.get() + watch.bytes(0).get());
    facts.bytes_out.set(facts.bytes_out.get() + watch.bytes(1).get());
    End::Relay(end)
}

/// The chunk relay as a pump filter.
struct RelayFilter(Relay);

impl Filter for RelayFilter {
    type Error = ChunkError;
    fn filter<'a>(&'a mut self, buf: &'a mut [u8]) -> Result<(usize, &'a [u8]), ChunkError> {
        match self.0.process(buf)? {
            Forward::InPlace { consumed } => {
                let buf: &'a [u8] = buf;
                Ok((consumed, &buf[..consumed]))
            }
            Forward::Copied { consumed } => Ok((consumed, self.0.output())),
        }
    }

    fn splice_ready(&self) -> bool {
        self.0.can_splice()
    }
}
