//! Forwards one HTTP request to an origin and its response back to the
//! client: the origin's status and end-to-end headers reach the client
//! (hop-by-hop ones do not), `X-Forwarded-For`/`X-Real-IP` reach the origin,
//! bodies stream through as they arrive, and a playlist is rewritten with the
//! player's HLS session id on the way.

use crate::http::Request;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use srs_io::idle::{until_idle, Watch};
use srs_io::pump::{self, Dir, Discard, Filter, PairEnd, PumpEnd};
use srs_io::splice::Spliced;
use srs_protocols::http::{self as h, BodyFraming, ChunkedScanner, ResponseHead};
use srs_protocols::Status;
use std::fmt;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// From the request sent to the origin's complete response head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEAD: usize = 64 * 1024;
const MAX_PLAYLIST: usize = 4 << 20;
const BUF: usize = 64 * 1024;

/// What to do with the response body.
pub enum Body<'a> {
    /// A live stream (FLV/TS): relay until either side closes.
    Live,
    /// A finite response (segment, API answer): relay it, keep the client.
    Finite,
    /// A playlist: buffer, add this HLS session id to its URIs.
    Playlist(&'a str),
}

#[derive(Debug)]
pub enum ProxyError {
    /// Could not reach the origin (retryable elsewhere).
    Connect(SocketAddr, std::io::Error),
    /// The origin did not answer in time.
    Timeout(SocketAddr),
    /// The origin's answer is not HTTP or is too large.
    Origin(String),
    /// The client went away or failed mid-response.
    Client(std::io::Error),
    /// The origin failed after the response head went to the client: the
    /// only honest answer left is to close the connection.
    MidBody(String),
    /// The proxy itself ran short mid-body (no descriptor for a pipe).
    Local(String),
}

impl ProxyError {
    /// Status for the client when nothing was sent yet.
    pub fn status(&self) -> u16 {
        match self {
            ProxyError::Timeout(_) => 504,
            _ => 502,
        }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::Connect(a, e) => write!(f, "origin {a} unreachable: {e}"),
            ProxyError::Timeout(a) => write!(f, "origin {a} did not answer within {HEAD_TIMEOUT:?}"),
            ProxyError::Origin(e) => write!(f, "origin answered badly: {e}"),
            ProxyError::Client(e) => write!(f, "client i/o: {e}"),
            ProxyError::MidBody(e) => write!(f, "origin failed mid-body: {e}"),
            ProxyError::Local(e) => write!(f, "proxy failed mid-body: {e}"),
        }
    }
}

/// How a forwarded exchange ended.
pub struct Forwarded {
    pub status: u16,
    /// Body bytes delivered to the client.
    pub bytes: u64,
    /// The client connection may serve another request.
    pub keep_alive: bool,
    /// Why the body ended, for the log.
    pub end: &'static str,
    /// The body moved by splice(2), never through the proxy's memory.
    pub spliced: bool,
}

pub(crate) const CORS: [(&str, &[u8]); 3] = [
    ("Access-Control-Allow-Origin", b"*"),
    ("Access-Control-Allow-Headers", b"*"),
    ("Access-Control-Allow-Methods", b"*"),
];

/// The CORS preflight answer (SRS answers any OPTIONS on stream paths with 200).
pub fn cors_preflight() -> Vec<u8> {
    let mut out = Vec::new();
    let mut hs: Vec<(&str, &[u8])> = CORS.to_vec();
    hs.push(("Content-Length", b"0"));
    h::write_response_head(&mut out, 200, "OK", &hs);
    out
}

/// The request toward the origin. `whole`: ask for the whole body (a playlist
/// is rewritten, so a byte range of it means nothing).
pub(crate) fn origin_request(req: &Request, peer: SocketAddr, target: &str, whole: bool) -> Vec<u8> {
    let ip = peer.ip().to_string();
    let mut xff = None;
    let mut headers: Vec<(&str, &[u8])> = Vec::with_capacity(req.headers.len() + 4);
    let client = h::end_to_end(req.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
    for (k, v) in client {
        if k.eq_ignore_ascii_case("content-length") {
            continue;
        }
        if whole && (k.eq_ignore_ascii_case("range") || k.eq_ignore_ascii_case("if-range")) {
            continue;
        }
        if k.eq_ignore_ascii_case("x-forwarded-for") {
            xff = Some(format!("{}, {ip}", String::from_utf8_lossy(v)));
            continue;
        }
        if k.eq_ignore_ascii_case("x-real-ip") {
            continue;
        }
        headers.push((k, v));
    }
    let xff = xff.unwrap_or_else(|| ip.clone());
    headers.push(("X-Forwarded-For", xff.as_bytes()));
    headers.push(("X-Real-IP", ip.as_bytes()));
    let len = req.body.len().to_string();
    if !req.body.is_empty() {
        headers.push(("Content-Length", len.as_bytes()));
    }
    headers.push(("Connection", b"close"));
    let mut out = Vec::with_capacity(512 + req.body.len());
    h::write_request_head(&mut out, &req.method, target, &headers);
    out.extend_from_slice(&req.body);
    out
}

/// The origin's end-to-end headers, minus framing and CORS (the proxy sets those).
pub(crate) fn pass_headers(head: &ResponseHead) -> Vec<(&str, &[u8])> {
    head.end_to_end_headers()
        .into_iter()
        .filter(|(k, _)| {
            !k.eq_ignore_ascii_case("content-length")
                && !k.eq_ignore_ascii_case("transfer-encoding")
                && !k.to_ascii_lowercase().starts_with("access-control-")
                && !k.eq_ignore_ascii_case("server")
        })
        .collect()
}

pub(crate) async fn read_head(
    o: &mut TcpStream,
    addr: SocketAddr,
    head_req: bool,
) -> Result<(ResponseHead, Vec<u8>), ProxyError> {
    let mut buf = Vec::new();
    let deadline = Instant::now() + HEAD_TIMEOUT;
    loop {
        match h::parse_response_head(&buf, head_req) {
            Ok(Status::Complete((n, head))) => {
                let rest = buf.split_off(n);
                return Ok((head, rest));
            }
            Ok(Status::Partial) if buf.len() >= MAX_HEAD => {
                return Err(ProxyError::Origin(format!("response head over {MAX_HEAD} bytes")))
            }
            Ok(Status::Partial) => {}
            Err(e) => return Err(ProxyError::Origin(e.to_string())),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match srs_io::timeout(left, pump::read_append(o, &mut buf, pump::SETUP_READ)).await {
            None => return Err(ProxyError::Timeout(addr)),
            Some(Ok(0)) => return Err(ProxyError::Origin("closed before a response".into())),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ProxyError::Origin(format!("read: {e}"))),
        }
    }
}

/// Where and how to forward one request.
pub struct Upstream<'a> {
    pub addr: SocketAddr,
    /// Path and query to ask the origin for.
    pub target: &'a str,
    pub body: Body<'a>,
    /// Set the CORS headers on the answer (stream paths).
    pub cors: bool,
    /// A body silent this long ends the exchange.
    pub idle: Duration,
    /// Count this exchange in the metrics as `Proto`, its setup time from
    /// the `Instant` given to the response head sent.
    pub metrics: Option<(crate::metrics::Proto, Instant)>,
}

/// Sends `req` to the origin and relays the answer to `client`.
pub async fn forward(
    client: &mut TcpStream,
    req: &Request,
    peer: SocketAddr,
    up: Upstream<'_>,
) -> Result<Forwarded, ProxyError> {
    let Upstream { addr, target, body, cors, idle, metrics } = up;
    let mut o = match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT).await {
        Ok(s) => s,
        Err(e) => return Err(ProxyError::Connect(addr, e.into())),
    };
    let _ = o.set_nodelay(true);
    let head_req = req.method.eq_ignore_ascii_case("HEAD");
    o.write_all(&origin_request(req, peer, target, matches!(body, Body::Playlist(_))))
        .await
        .map_err(|e| ProxyError::Origin(format!("write: {e}")))?;
    let (head, rest) = read_head(&mut o, addr, head_req).await?;
    let mut headers = pass_headers(&head);
    if cors {
        headers.extend_from_slice(&CORS);
    }
    let client_keep = req.keep_alive;

    if let Body::Playlist(id) = body {
        let raw = read_all(&mut o, rest, head.framing, idle).await?;
        let text = if head.status == 200 { h_rewrite(&raw, id) } else { raw };
        let len = text.len().to_string();
        headers.push(("Content-Length", len.as_bytes()));
        headers.push(("Connection", if client_keep { b"keep-alive" } else { b"close" }));
        let mut out = Vec::with_capacity(512 + text.len());
        h::write_response_head(&mut out, head.status, &head.reason, &headers);
        if !head_req {
            out.extend_from_slice(&text);
        }
        client.write_all(&out).await.map_err(ProxyError::Client)?;
        if let Some((proto, _)) = metrics {
            let sink = crate::metrics::local().bytes(proto);
            sink[1].set(sink[1].get() + text.len() as u64);
        }
        return Ok(Forwarded {
            status: head.status,
            bytes: text.len() as u64,
            keep_alive: client_keep,
            end: "complete",
            spliced: false,
        });
    }

    let live = matches!(body, Body::Live);
    let len;
    match head.framing {
        BodyFraming::Length(n) => {
            len = n.to_string();
            headers.push(("Content-Length", len.as_bytes()));
        }
        BodyFraming::Chunked => headers.push(("Transfer-Encoding", b"chunked")),
        BodyFraming::UntilClose | BodyFraming::None => {}
    }
    let keep = client_keep && !live && !matches!(head.framing, BodyFraming::UntilClose);
    headers.push(("Connection", if keep { b"keep-alive" } else { b"close" }));
    let mut out = Vec::with_capacity(1024);
    h::write_response_head(&mut out, head.status, &head.reason, &headers);
    client.write_all(&out).await.map_err(ProxyError::Client)?;

    // A live body is a play session from its response head on (a refused
    // connect retried elsewhere never started one).
    let mut _active = None;
    let watch = match metrics {
        Some((proto, since)) => {
            let m = crate::metrics::local();
            m.setup_time(proto, since.elapsed());
            if live {
                _active = Some(m.started(proto, crate::metrics::Role::Play));
            }
            Watch::with_sink(idle, m.bytes(proto))
        }
        None => Watch::new(idle),
    };
    let mut was_spliced = false;
    let (bytes, end) = match body_filter(head.framing) {
        None => (0, "complete"),
        // A player that leaves ends the relay at once: its side is read too,
        // and whatever it sends is dropped.
        Some(mut f) if live => {
            // A live body goes to one player untouched and ends with the
            // connection, so it is spliced (never copied through the proxy)
            // unless this core cannot have a pipe. Chunked framing is then
            // not followed: the player reads it, and the end line says the
            // origin closed rather than whether its last chunk came.
            let mut discard = Discard;
            let known = match head.framing {
                BodyFraming::Length(n) => Some(n),
                _ => None,
            };
            let (spliced, end) = match Spliced::new(&o, client, known) {
                Ok(down) => {
                    let up = Dir::new(&mut discard, Vec::new(), &mut o, watch.bytes(0));
                    (true, pump::relay_with(&mut *client, &mut o, up, down.first(rest), BUF, &watch).await)
                }
                Err(e) => {
                    tracing::debug!(error = %e, "splice unavailable; copying the live body");
                    (
                        false,
                        pump::relay(&mut *client, &mut o, &mut discard, Vec::new(), &mut f, rest, BUF, &watch).await,
                    )
                }
            };
            was_spliced = spliced;
            let framing = match head.framing {
                BodyFraming::Chunked if spliced => BodyFraming::UntilClose,
                other => other,
            };
            let total = watch.bytes(1).get();
            match end {
                PairEnd::Upstream(_) => {
                    // The player left: the rest of the body is nobody's, so
                    // the origin is reset (as the RTMP relay does for a
                    // player) and no TIME_WAIT holds a port toward it.
                    let _ = pump::reset_on_close(o.as_raw_fd());
                    (total, "client closed")
                }
                PairEnd::Downstream(e) => body_end(e, framing, total).map_err(after_head)?,
                PairEnd::Idle => body_end(PumpEnd::Idle, framing, total).map_err(after_head)?,
            }
        }
        Some(mut f) => {
            let end = until_idle(pump::pump(&mut o, client, &mut f, BUF, rest, watch.bytes(1)), &watch).await;
            body_end(end.unwrap_or(PumpEnd::Idle), head.framing, watch.bytes(1).get()).map_err(after_head)?
        }
    };
    Ok(Forwarded { status: head.status, bytes, keep_alive: keep && end == "complete", end, spliced: was_spliced })
}

/// Once the head is out, an origin failure can only end the response.
fn after_head(e: ProxyError) -> ProxyError {
    match e {
        ProxyError::Origin(m) => ProxyError::MidBody(m),
        other => other,
    }
}

fn h_rewrite(raw: &[u8], id: &str) -> Vec<u8> {
    srs_protocols::hls::rewrite_playlist(raw, id).unwrap_or_else(|| raw.to_vec())
}

/// Reads a whole (bounded) body.
pub(crate) async fn read_all(
    o: &mut TcpStream,
    mut got: Vec<u8>,
    framing: BodyFraming,
    idle: Duration,
) -> Result<Vec<u8>, ProxyError> {
    loop {
        match framing {
            BodyFraming::None => return Ok(Vec::new()),
            BodyFraming::Length(n) if got.len() as u64 >= n => {
                got.truncate(n as usize);
                return Ok(got);
            }
            BodyFraming::Chunked => match h::dechunk(&got, MAX_PLAYLIST) {
                Ok(Status::Complete((_, body))) => return Ok(body),
                Ok(Status::Partial) => {}
                Err(e) => return Err(ProxyError::Origin(e.to_string())),
            },
            _ => {}
        }
        if got.len() > MAX_PLAYLIST {
            return Err(ProxyError::Origin(format!("playlist over {MAX_PLAYLIST} bytes")));
        }
        match srs_io::timeout(idle, pump::read_append(o, &mut got, pump::SETUP_READ)).await {
            None => return Err(ProxyError::Origin("body stalled".into())),
            Some(Ok(0)) if matches!(framing, BodyFraming::UntilClose) => return Ok(got),
            Some(Ok(0)) => return Err(ProxyError::Origin("closed mid-body".into())),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ProxyError::Origin(format!("read: {e}"))),
        }
    }
}

/// Frames an HTTP body for the pump: passes bytes through untouched and
/// says when the body is complete.
struct BodyFilter {
    left: Option<u64>,
    chunked: Option<ChunkedScanner>,
    done: bool,
}

impl Filter for BodyFilter {
    type Error = h::HttpError;
    fn filter<'a>(&'a mut self, buf: &'a mut [u8]) -> Result<(usize, &'a [u8]), h::HttpError> {
        let mut take = buf.len();
        if let Some(l) = self.left {
            take = take.min(usize::try_from(l).unwrap_or(usize::MAX));
            self.left = Some(l - take as u64);
            self.done = self.left == Some(0);
        }
        if let Some(sc) = self.chunked.as_mut() {
            let (n, end) = sc.scan(&buf[..take])?;
            take = n;
            self.done = end;
        }
        let buf: &'a [u8] = buf;
        Ok((take, &buf[..take]))
    }

    fn finished(&self) -> bool {
        self.done
    }
}

/// The filter that relays a body as it arrives, framing untouched; `None`
/// when the response has no body.
fn body_filter(framing: BodyFraming) -> Option<BodyFilter> {
    let left = match framing {
        BodyFraming::None | BodyFraming::Length(0) => return None,
        BodyFraming::Length(n) => Some(n),
        _ => None,
    };
    Some(BodyFilter { left, chunked: matches!(framing, BodyFraming::Chunked).then(ChunkedScanner::new), done: false })
}

/// Why a body relay ended, as bytes written and a reason ("complete" when
/// the framing said so), or whose failure it was.
fn body_end(end: PumpEnd, framing: BodyFraming, total: u64) -> Result<(u64, &'static str), ProxyError> {
    match end {
        PumpEnd::Finished => Ok((total, "complete")),
        PumpEnd::Idle => Ok((total, "idle timeout")),
        PumpEnd::Eof if matches!(framing, BodyFraming::UntilClose) => Ok((total, "origin closed")),
        PumpEnd::Eof => Err(ProxyError::Origin(format!("closed mid-body after {total} bytes"))),
        PumpEnd::Write(e) => Err(ProxyError::Client(e)),
        PumpEnd::Read(e) => Err(ProxyError::Origin(format!("read: {e}"))),
        PumpEnd::Filter(e) => Err(ProxyError::Origin(e)),
        PumpEnd::Local(e) => Err(ProxyError::Local(e.to_string())),
    }
}

/// One whole exchange with an origin whose answer the proxy reads itself
/// (the cluster API's fan-outs): `req`'s method, end-to-end headers and body
/// go to `target` on `addr` as [`forward`] sends them; the answer's head and
/// its body (bounded, de-chunked) come back. The caller bounds the time.
pub async fn fetch(
    addr: SocketAddr,
    req: &Request,
    peer: SocketAddr,
    target: &str,
) -> Result<(ResponseHead, Vec<u8>), ProxyError> {
    let mut o = match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT).await {
        Ok(s) => s,
        Err(e) => return Err(ProxyError::Connect(addr, e.into())),
    };
    let _ = o.set_nodelay(true);
    let head_req = req.method.eq_ignore_ascii_case("HEAD");
    o.write_all(&origin_request(req, peer, target, true))
        .await
        .map_err(|e| ProxyError::Origin(format!("write: {e}")))?;
    let (head, rest) = read_head(&mut o, addr, head_req).await?;
    let body = read_all(&mut o, rest, head.framing, HEAD_TIMEOUT).await?;
    Ok((head, body))
}
