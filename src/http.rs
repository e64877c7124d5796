//! Minimal HTTP/1.1 server plumbing shared by the proxy's HTTP listeners:
//! reads one request head with httparse under size and time limits, reads a
//! bounded body, writes a response. Keep-alive is handled by the caller's loop.

use crate::worker::{ConnId, Core};
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};
use glommio::net::TcpStream;
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

pub const MAX_HEAD: usize = 64 * 1024;
pub const MAX_HEADERS: usize = 64;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body: usize,
    /// Time allowed for a whole request (head and body) once its first byte
    /// is expected.
    pub request_timeout: Duration,
    /// Time a kept-alive connection may sit idle between requests (a new
    /// connection gets `request_timeout` for its first byte).
    pub idle_timeout: Duration,
}

#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// The raw query, without '?'.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub keep_alive: bool,
}

impl Request {
    /// Path and query as the client sent them.
    pub fn target(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Why a request could not be read. Each maps to a status (or a silent close).
#[derive(Debug)]
pub enum HttpError {
    /// The peer closed before sending a request: not an error.
    Closed,
    Timeout,
    Malformed(httparse::Error),
    HeadTooLarge,
    BodyTooLarge(usize),
    BadContentLength,
    Chunked,
    Io(std::io::Error),
}

impl HttpError {
    /// The status to answer with, when an answer still makes sense.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Closed | HttpError::Io(_) => None,
            HttpError::Timeout => Some(408),
            HttpError::Malformed(_) | HttpError::BadContentLength => Some(400),
            HttpError::HeadTooLarge => Some(431),
            HttpError::BodyTooLarge(_) => Some(413),
            HttpError::Chunked => Some(411),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Closed => f.write_str("peer closed"),
            HttpError::Timeout => f.write_str("request timed out"),
            HttpError::Malformed(e) => write!(f, "malformed request: {e}"),
            HttpError::HeadTooLarge => write!(f, "request head over {MAX_HEAD} bytes"),
            HttpError::BodyTooLarge(n) => write!(f, "request body of {n} bytes over the limit"),
            HttpError::BadContentLength => f.write_str("bad Content-Length"),
            HttpError::Chunked => f.write_str("chunked request bodies are not accepted"),
            HttpError::Io(e) => write!(f, "read failed: {e}"),
        }
    }
}

/// Reads one request. `buf` carries bytes between requests on a kept-alive
/// connection (pipelining).
pub async fn read_request<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
    limits: &Limits,
    first: bool,
) -> Result<Request, HttpError> {
    // The wait for the first byte, then the whole request under its own limit.
    if buf.is_empty() {
        let wait = if first { limits.request_timeout } else { limits.idle_timeout };
        match srs_io::timeout(wait, read_into(s, buf)).await {
            None => return Err(HttpError::Closed),
            Some(r) => r?,
        }
    }
    match srs_io::timeout(limits.request_timeout, read_rest(s, buf, limits)).await {
        None => Err(HttpError::Timeout),
        Some(r) => r,
    }
}

/// Appends what one read brings to `buf` (through the core's shared buffer:
/// `buf` keeps only what came).
async fn read_into<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> Result<(), HttpError> {
    match srs_io::pump::read_append(s, buf, srs_io::pump::SETUP_READ).await {
        Ok(0) => Err(HttpError::Closed),
        Ok(_) => Ok(()),
        Err(e) => Err(HttpError::Io(e)),
    }
}

async fn read_rest<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>, limits: &Limits) -> Result<Request, HttpError> {
    loop {
        if let Some((mut req, head_len, body_len)) = parse_head(buf, limits)? {
            while buf.len() < head_len + body_len {
                read_into(s, buf).await?;
            }
            req.body = buf[head_len..head_len + body_len].to_vec();
            srs_io::pump::consume(buf, head_len + body_len);
            return Ok(req);
        }
        if buf.len() >= MAX_HEAD {
            return Err(HttpError::HeadTooLarge);
        }
        read_into(s, buf).await?;
    }
}

/// Parses a request head from `buf`: the request without its body, the
/// head's length and the body's, or `None` while incomplete. Synchronous, so
/// httparse's header array never lives in a connection's future.
fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<(Request, usize, usize)>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
        Err(e) => return Err(HttpError::Malformed(e)),
    };
    let target = req.path.unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.to_string(), String::new()),
    };
    let version = req.version.unwrap_or(1);
    let method = req.method.unwrap_or("GET").to_string();
    let headers: Vec<(String, String)> =
        req.headers.iter().map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned())).collect();
    let find = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str());
    if find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        return Err(HttpError::Chunked);
    }
    let body_len = match find("content-length") {
        None => 0,
        Some(v) => v.trim().parse::<usize>().map_err(|_| HttpError::BadContentLength)?,
    };
    if body_len > limits.max_body {
        return Err(HttpError::BodyTooLarge(body_len));
    }
    let conn = find("connection").map(|v| v.to_ascii_lowercase());
    let keep_alive = match conn.as_deref() {
        Some(c) if c.contains("close") => false,
        Some(c) if c.contains("keep-alive") => true,
        _ => version == 1,
    };
    Ok(Some((Request { method, path, query, headers, body: Vec::new(), keep_alive }, head_len, body_len)))
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, v: &serde_json::Value) -> Self {
        Response {
            status,
            headers: vec![("Content-Type", "application/json".into())],
            body: serde_json::to_vec(v).unwrap_or_default(),
        }
    }

    /// `{"code":<status>,"message":...}`: every API error has this shape.
    pub fn error(status: u16, message: impl fmt::Display) -> Self {
        Self::json(status, &serde_json::json!({"code": status, "message": message.to_string()}))
    }

    pub fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }
}

pub async fn write_response<S: AsyncWrite + Unpin>(
    s: &mut S,
    resp: &Response,
    keep_alive: bool,
) -> std::io::Result<()> {
    write_response_as(s, resp, keep_alive, true).await
}

/// `with_body: false` answers a HEAD request: the same head, no body.
pub async fn write_response_as<S: AsyncWrite + Unpin>(
    s: &mut S,
    resp: &Response,
    keep_alive: bool,
    with_body: bool,
) -> std::io::Result<()> {
    use std::fmt::Write;
    let mut head = String::with_capacity(256);
    let _ = write!(
        head,
        "HTTP/1.1 {} {}\r\nServer: {}\r\n",
        resp.status,
        srs_protocols::http::reason_phrase(resp.status),
        crate::SERVER
    );
    for (k, v) in &resp.headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    let _ = write!(
        head,
        "Content-Length: {}\r\nConnection: {}\r\n\r\n",
        resp.body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    let mut out = head.into_bytes();
    if with_body {
        out.extend_from_slice(&resp.body);
    }
    s.write_all(&out).await?;
    s.flush().await
}

/// One HTTP listener's request handler.
#[allow(async_fn_in_trait)]
pub trait Service {
    /// Names the listener in logs.
    const WHAT: &'static str;
    const LIMITS: Limits;
    /// Answers one request on `s`. `Some(keep_alive)`, or `None` when the
    /// connection must close (the client is gone or the response was cut).
    async fn handle(core: &Rc<Core>, id: ConnId, s: &mut TcpStream, req: &Request, peer: SocketAddr) -> Option<bool>;
}

/// Serves requests on one connection until it closes, errs or the proxy drains.
pub async fn serve<S: Service>(core: Rc<Core>, id: ConnId, mut s: TcpStream, peer: SocketAddr) {
    let mut buf = Vec::new();
    let mut first = true;
    loop {
        let req = match read_request(&mut s, &mut buf, &S::LIMITS, first).await {
            Ok(r) => r,
            Err(e) => {
                if let Some(status) = e.status() {
                    tracing::warn!(conn = %id, %peer, listener = S::WHAT, error = %e, "http: bad request");
                    let _ = write_response(&mut s, &Response::error(status, &e), false).await;
                }
                return;
            }
        };
        first = false;
        // Boxed: a connection idle between requests holds no handler state.
        let keep = match Box::pin(S::handle(&core, id, &mut s, &req, peer)).await {
            Some(k) => k && req.keep_alive && !core.stopping.is_fired(),
            None => false,
        };
        if !keep {
            return;
        }
    }
}

/// Writes a whole response; `Some(keep_alive)` unless the client is gone.
pub async fn reply(s: &mut TcpStream, req: &Request, resp: Response) -> Option<bool> {
    write_response(s, &resp, req.keep_alive).await.ok().map(|_| req.keep_alive)
}
