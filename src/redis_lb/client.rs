//! One core's Redis connection: a glommio socket, commands packed by the
//! `redis` crate's builder and replies read by its RESP parser. It owns
//! finding the server (directly, or the master through Sentinels), the
//! handshake (AUTH, SELECT), timeouts, reconnecting with backoff, and the
//! write-back hook run on every reconnection.
//!
//! One connection per core, not one per owning core behind the mesh: a pick
//! is one round trip to Redis either way, and a cross-core hop would add a
//! second wait and a core that every other core queues behind; Redis itself
//! serialises the commands, so cores need not agree among themselves. The
//! core's callers take turns on it (one exchange at a time): a pick holds
//! it for one round trip, and a timed-out exchange closes it, so a reply
//! can never be taken for another caller's.

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::sync::Semaphore;
use redis::Value;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, Read};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Every call (waiting for the connection, connecting, the exchange) ends
/// within this; a slow Redis fails the request rather than hanging it.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(1500);
/// Connecting to one address (a sentinel or the server).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Reconnect backoff: first wait, doubling to the cap. While it runs,
/// calls fail at once (fail fast) instead of each trying to connect.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_millis(1000);
/// A Redis that stays unreachable is logged this often per core.
const CONNECT_WARN_EVERY: Duration = Duration::from_secs(10);

/// Where the data node is and how to log in.
#[derive(Clone)]
pub struct Settings {
    pub target: Target,
    pub password: Option<String>,
    pub db: i64,
}

#[derive(Clone)]
pub enum Target {
    Direct { host: String, port: u16 },
    Sentinel { sentinels: Vec<(String, u16)>, master: String, password: Option<String> },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Direct { host, port } => write!(f, "redis {host}:{port}"),
            Target::Sentinel { sentinels, master, .. } => {
                write!(f, "redis master {master:?} via sentinels ")?;
                for (i, (h, p)) in sentinels.iter().enumerate() {
                    write!(f, "{}{h}:{p}", if i > 0 { "," } else { "" })?;
                }
                Ok(())
            }
        }
    }
}

/// Why a Redis call failed. Every one is the shared store failing (the
/// balancer's backend), never the client's fault.
#[derive(Debug)]
pub enum RedisError {
    /// No connection, and the backoff says not to try yet.
    Unavailable { why: String },
    /// Connecting, logging in or finding the master failed.
    Connect(String),
    /// The exchange did not end within [`CALL_TIMEOUT`].
    Timeout,
    /// The socket failed or closed mid-exchange.
    Io(io::Error),
    /// The bytes were not RESP.
    Protocol(String),
    /// Redis answered an error.
    Server { code: String, detail: String },
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisError::Unavailable { why } => write!(f, "redis unavailable ({why})"),
            RedisError::Connect(e) => write!(f, "redis connect: {e}"),
            RedisError::Timeout => write!(f, "redis did not answer within {} ms", CALL_TIMEOUT.as_millis()),
            RedisError::Io(e) => write!(f, "redis connection: {e}"),
            RedisError::Protocol(e) => write!(f, "redis sent something not RESP: {e}"),
            RedisError::Server { code, detail } => write!(f, "redis error {code} {detail}"),
        }
    }
}

impl RedisError {
    pub fn is_noscript(&self) -> bool {
        matches!(self, RedisError::Server { code, .. } if code == "NOSCRIPT")
    }
}

/// Feeds the parser what the socket gave; says "would block" when empty,
/// which leaves the parser's partial state in place for the next bytes.
struct Feed<'a> {
    buf: &'a mut Vec<u8>,
    starved: bool,
}

impl Read for Feed<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.buf.is_empty() {
            self.starved = true;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf.drain(..n);
        Ok(n)
    }
}

/// RESP reply reading over any byte source: the parser keeps its state
/// (and any bytes past the reply) between calls.
pub struct Replies {
    parser: redis::Parser,
    inbox: Vec<u8>,
}

impl Default for Replies {
    fn default() -> Self {
        Replies { parser: redis::Parser::new(), inbox: Vec::new() }
    }
}

impl Replies {
    pub fn push(&mut self, bytes: &[u8]) {
        self.inbox.extend_from_slice(bytes);
    }

    /// The next whole reply, or `None` until more bytes come.
    pub fn next(&mut self) -> Result<Option<Value>, RedisError> {
        let mut feed = Feed { buf: &mut self.inbox, starved: false };
        match self.parser.parse_value(&mut feed) {
            Ok(v) => Ok(Some(v)),
            Err(_) if feed.starved => Ok(None),
            Err(e) => Err(RedisError::Protocol(e.to_string())),
        }
    }
}

struct Wire {
    s: TcpStream,
    replies: Replies,
    buf: Vec<u8>,
}

impl Wire {
    async fn connect(addr: SocketAddr) -> Result<Wire, String> {
        let s = TcpStream::connect_timeout(addr, CONNECT_TIMEOUT).await.map_err(|e| format!("{addr}: {e}"))?;
        let _ = s.set_nodelay(true);
        Ok(Wire { s, replies: Replies::default(), buf: vec![0; 16 * 1024] })
    }

    /// Sends `packed` and reads `n` replies; server errors come back as
    /// values, for the caller to judge.
    async fn exchange(&mut self, packed: &[u8], n: usize) -> Result<Vec<Value>, RedisError> {
        self.s.write_all(packed).await.map_err(RedisError::Io)?;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.replies.next()? {
                Some(v) => out.push(v),
                None => {
                    let got = self.s.read(&mut self.buf).await.map_err(RedisError::Io)?;
                    if got == 0 {
                        return Err(RedisError::Io(io::ErrorKind::UnexpectedEof.into()));
                    }
                    self.replies.push(&self.buf[..got]);
                }
            }
        }
        Ok(out)
    }
}

/// Fails a value that is a server error.
pub fn ok(v: Value) -> Result<Value, RedisError> {
    match v {
        Value::ServerError(e) => {
            Err(RedisError::Server { code: e.code().to_string(), detail: e.details().unwrap_or("").to_string() })
        }
        v => Ok(v),
    }
}

/// Resolves `host:port`: an IP needs no lookup; a name (a K8s service, say)
/// is looked up on glommio's blocking thread pool, so the core never waits
/// on DNS. Only on (re)connection.
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let name = host.to_string();
    let found = glommio::executor()
        .spawn_blocking(move || (name.as_str(), port).to_socket_addrs().map(|a| a.collect::<Vec<_>>()))
        .await;
    match found {
        Ok(v) if !v.is_empty() => Ok(v),
        Ok(_) => Err(format!("{host}:{port}: no address")),
        Err(e) => Err(format!("{host}:{port}: {e}")),
    }
}

/// The first of `addrs` that accepts (a name may give IPv6 and IPv4).
async fn connect_any(addrs: &[SocketAddr]) -> Result<(Wire, SocketAddr), String> {
    let mut errors = Vec::new();
    for &a in addrs {
        match Wire::connect(a).await {
            Ok(w) => return Ok((w, a)),
            Err(e) => errors.push(e),
        }
    }
    Err(errors.join("; "))
}

/// Produces the command to run right after a reconnection (the write-back
/// of what live sessions need), with its reply count.
pub type RestoreHook = Box<dyn Fn() -> Option<(Vec<u8>, usize)>>;

pub struct Conn {
    settings: Settings,
    turn: Semaphore,
    wire: RefCell<Option<Wire>>,
    retry_at: Cell<Option<Instant>>,
    backoff: Cell<Duration>,
    last_error: RefCell<String>,
    connected_once: Cell<bool>,
    restore: RefCell<Option<RestoreHook>>,
    last_warn: Cell<Option<Instant>>,
    core: usize,
}

impl Conn {
    pub fn new(settings: Settings, core: usize) -> Conn {
        Conn {
            settings,
            turn: Semaphore::new(1),
            wire: RefCell::new(None),
            retry_at: Cell::new(None),
            backoff: Cell::new(BACKOFF_MIN),
            last_error: RefCell::new(String::new()),
            connected_once: Cell::new(false),
            restore: RefCell::new(None),
            last_warn: Cell::new(None),
            core,
        }
    }

    pub fn set_restore(&self, hook: RestoreHook) {
        *self.restore.borrow_mut() = Some(hook);
    }

    pub fn target(&self) -> &Target {
        &self.settings.target
    }

    /// Sends one packed command or pipeline and reads its `n` replies
    /// (server errors among them as values), all within [`CALL_TIMEOUT`].
    pub async fn exec(&self, packed: &[u8], n: usize) -> Result<Vec<Value>, RedisError> {
        let started = Instant::now();
        let r = self.exec_timed(packed, n).await;
        let error = match &r {
            Ok(vals) if vals.iter().any(|v| matches!(v, Value::ServerError(_))) => Some("server error"),
            Ok(_) => None,
            Err(RedisError::Unavailable { .. }) => Some("unavailable"),
            Err(RedisError::Connect(_)) => Some("connect"),
            Err(RedisError::Timeout) => Some("timeout"),
            Err(RedisError::Io(_)) => Some("io"),
            Err(RedisError::Protocol(_)) => Some("protocol"),
            Err(RedisError::Server { .. }) => Some("server error"),
        };
        crate::metrics::local().redis(started.elapsed(), error);
        r
    }

    async fn exec_timed(&self, packed: &[u8], n: usize) -> Result<Vec<Value>, RedisError> {
        let work = async {
            let _permit = self.turn.acquire_permit(1).await.map_err(|e| RedisError::Connect(e.to_string()))?;
            let held = self.wire.borrow_mut().take();
            let mut wire = match held {
                Some(w) => w,
                None => self.connect().await?,
            };
            // The wire is out of the cell while in use: a timeout drops it
            // (this future), closing the socket with the half-read reply.
            match wire.exchange(packed, n).await {
                Ok(vals) => {
                    let readonly = vals.iter().any(|v| matches!(v, Value::ServerError(e) if e.code() == "READONLY"));
                    if readonly {
                        // A failover made this node a replica: find the master again.
                        tracing::warn!(core = self.core, target = %self.settings.target,
                            "redis answered READONLY: reconnecting to the current master");
                    } else {
                        *self.wire.borrow_mut() = Some(wire);
                    }
                    Ok(vals)
                }
                Err(e) => {
                    tracing::warn!(core = self.core, target = %self.settings.target, error = %e,
                        "redis connection lost; reconnecting");
                    self.failed(e.to_string());
                    Err(e)
                }
            }
        };
        futures_lite::future::or(work, async {
            glommio::timer::sleep(CALL_TIMEOUT).await;
            self.failed("timeout".into());
            Err(RedisError::Timeout)
        })
        .await
    }

    /// The backoff starts (or grows) after a failure.
    fn failed(&self, why: String) {
        let b = self.backoff.get();
        self.retry_at.set(Some(Instant::now() + b));
        self.backoff.set((b * 2).min(BACKOFF_MAX));
        *self.last_error.borrow_mut() = why;
    }

    async fn connect(&self) -> Result<Wire, RedisError> {
        if let Some(at) = self.retry_at.get() {
            let now = Instant::now();
            if now < at {
                let why = format!(
                    "last error: {}; next try in {} ms",
                    self.last_error.borrow(),
                    at.duration_since(now).as_millis()
                );
                return Err(RedisError::Unavailable { why });
            }
        }
        match self.open().await {
            Ok(mut wire) => {
                self.retry_at.set(None);
                self.backoff.set(BACKOFF_MIN);
                if self.connected_once.replace(true) {
                    tracing::info!(core = self.core, target = %self.settings.target, "redis reconnected");
                    let cmd = self.restore.borrow().as_ref().and_then(|h| h());
                    if let Some((packed, n)) = cmd {
                        let vals = match wire.exchange(&packed, n).await {
                            Ok(v) => v,
                            Err(e) => {
                                self.failed(e.to_string());
                                return Err(e);
                            }
                        };
                        for v in vals {
                            if let Err(e) = ok(v) {
                                tracing::warn!(core = self.core, error = %e, "redis write-back failed");
                            }
                        }
                    }
                }
                Ok(wire)
            }
            Err(e) => {
                // While Redis stays away: one line per core every 10 s.
                let now = Instant::now();
                let due = match self.last_warn.get() {
                    None => true,
                    Some(t) => now.duration_since(t) >= CONNECT_WARN_EVERY,
                };
                if due {
                    self.last_warn.set(Some(now));
                    tracing::warn!(core = self.core, target = %self.settings.target, error = %e,
                        "redis unreachable; requests that need it fail until it answers");
                }
                self.failed(e.clone());
                Err(RedisError::Connect(e))
            }
        }
    }

    /// Connects and logs in now (startup); the error says what failed.
    pub async fn connect_now(&self) -> Result<(), String> {
        let work = async {
            let w = self.open().await?;
            self.connected_once.set(true);
            *self.wire.borrow_mut() = Some(w);
            Ok(())
        };
        futures_lite::future::or(work, async {
            glommio::timer::sleep(CALL_TIMEOUT).await;
            Err(format!("no answer within {} ms", CALL_TIMEOUT.as_millis()))
        })
        .await
    }

    /// The data node's address: as configured, or the master the first
    /// answering sentinel names.
    async fn locate(&self) -> Result<Vec<SocketAddr>, String> {
        match &self.settings.target {
            Target::Direct { host, port } => resolve(host, *port).await,
            Target::Sentinel { sentinels, master, password } => {
                let mut errors = Vec::new();
                for (h, p) in sentinels {
                    match ask_sentinel(h, *p, master, password.as_deref()).await {
                        Ok(a) => return Ok(a),
                        Err(e) => errors.push(format!("sentinel {h}:{p}: {e}")),
                    }
                }
                Err(errors.join("; "))
            }
        }
    }

    async fn open(&self) -> Result<Wire, String> {
        let addrs = self.locate().await?;
        let (mut wire, addr) = connect_any(&addrs).await?;
        let mut p = redis::pipe();
        let mut n = 0;
        if let Some(pw) = &self.settings.password {
            p.cmd("AUTH").arg(pw);
            n += 1;
        }
        if self.settings.db != 0 {
            p.cmd("SELECT").arg(self.settings.db);
            n += 1;
        }
        let sentinel = matches!(self.settings.target, Target::Sentinel { .. });
        if sentinel {
            p.cmd("ROLE");
        } else {
            p.cmd("PING");
        }
        n += 1;
        let vals = wire.exchange(&p.get_packed_pipeline(), n).await.map_err(|e| format!("{addr}: {e}"))?;
        for v in vals {
            let v = ok(v).map_err(|e| format!("{addr}: {e}"))?;
            if sentinel {
                // A sentinel may still name the old master for a moment.
                let role = match &v {
                    Value::Array(a) => a.first().and_then(as_str),
                    _ => None,
                };
                if let Some(role) = role {
                    if role != "master" {
                        return Err(format!("{addr} is a {role}, not the master"));
                    }
                }
            }
        }
        tracing::debug!(core = self.core, %addr, "redis connected");
        Ok(wire)
    }
}

async fn ask_sentinel(host: &str, port: u16, master: &str, password: Option<&str>) -> Result<Vec<SocketAddr>, String> {
    let (mut wire, _) = connect_any(&resolve(host, port).await?).await?;
    let mut p = redis::pipe();
    let mut n = 1;
    if let Some(pw) = password {
        p.cmd("AUTH").arg(pw);
        n += 1;
    }
    p.cmd("SENTINEL").arg("get-master-addr-by-name").arg(master);
    let vals = wire.exchange(&p.get_packed_pipeline(), n).await.map_err(|e| e.to_string())?;
    let last = vals.into_iter().map(ok).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
    match last.last() {
        Some(Value::Array(a)) if a.len() == 2 => {
            let ip = as_str(&a[0]).ok_or("bad master address")?;
            let port: u16 = as_str(&a[1]).and_then(|p| p.parse().ok()).ok_or("bad master port")?;
            resolve(&ip, port).await
        }
        Some(Value::Nil) => Err(format!("no master named {master:?}")),
        _ => Err("unexpected answer to SENTINEL get-master-addr-by-name".into()),
    }
}

/// A string reply's text.
pub fn as_str(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Okay => Some("OK".into()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parser resumes where the bytes stopped: every split of a
    /// pipeline's replies gives the same values, and garbage is an error.
    #[test]
    fn replies_resume_across_any_split() {
        let wire = b"+OK\r\n$5\r\nhello\r\n*2\r\n:1\r\n$-1\r\n-NOSCRIPT No matching script\r\n";
        for split in 0..wire.len() {
            let mut r = Replies::default();
            let mut got = Vec::new();
            r.push(&wire[..split]);
            while let Some(v) = r.next().unwrap() {
                got.push(v);
            }
            r.push(&wire[split..]);
            while let Some(v) = r.next().unwrap() {
                got.push(v);
            }
            assert_eq!(got.len(), 4, "split at {split}: {got:?}");
            assert_eq!(got[0], Value::Okay);
            assert_eq!(got[1], Value::BulkString(b"hello".to_vec()));
            assert_eq!(got[2], Value::Array(vec![Value::Int(1), Value::Nil]));
            assert!(ok(got[3].clone()).unwrap_err().is_noscript());
        }
        let mut r = Replies::default();
        r.push(b"?what\r\n");
        assert!(matches!(r.next(), Err(RedisError::Protocol(_))));
    }
}
