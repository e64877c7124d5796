//! The HTTP/1.x pieces the proxy needs, without IO.
//!
//! * [`parse_response_head`]: an origin's response head (httparse) and how
//!   its body is framed (RFC 9112 §6.3), so the proxy knows where the body
//!   ends and whether the origin connection can be reused.
//! * [`ChunkedScanner`]: follows a chunked body as it is relayed unchanged,
//!   without copying, to find where it ends; [`dechunk`] decodes a small one
//!   (a playlist) fully.
//! * [`write_request_head`] / [`write_response_head`]: heads that are always
//!   well formed, whatever the caller passes (no header injection).
//! * [`is_hop_by_hop`] / [`end_to_end`]: which headers a proxy forwards.
//! * [`percent_decode`] and [`content_type`] for the static file server.
//!
//! Everything is pure and never panics, whatever the input. Line endings in
//! chunked framing must be CRLF: a bare LF there is an error (lenient
//! chunk parsing is a classic request-smuggling and response-splitting
//! vector).

use std::fmt;

use crate::Status;

/// The most header fields [`parse_response_head`] accepts.
pub const MAX_HEADERS: usize = 100;

/// The longest response head [`parse_response_head`] accepts, in bytes.
pub const MAX_HEAD_LEN: usize = 64 * 1024;

/// The longest chunk-size line (size plus extensions) or trailer field line.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;

/// The most bytes of trailer fields after the last chunk.
pub const MAX_TRAILERS_LEN: usize = 16 * 1024;

/// Headers that only concern one connection (RFC 9110 §7.6.1), plus the
/// non-standard `Keep-Alive` and `Proxy-Connection`, lower-case.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// What went wrong in a message from the peer. Every variant blames the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The head is not valid HTTP/1.x, or its framing headers contradict
    /// each other.
    Malformed(String),
    /// Something is over its size limit; the text says what.
    TooLarge(&'static str),
    /// The chunked transfer coding is broken; the text says how.
    BadChunk(&'static str),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed HTTP message: {why}"),
            Self::TooLarge(what) => write!(f, "HTTP message too large: {what}"),
            Self::BadChunk(why) => write!(f, "bad chunked encoding: {why}"),
        }
    }
}

impl std::error::Error for HttpError {}

// ---------------------------------------------------------------------------
// Headers

/// Whether a header only concerns one connection, so a proxy must not
/// forward it: RFC 9110 §7.6.1 (`Connection`, `TE`, `Transfer-Encoding`,
/// `Upgrade`, `Trailer`, `Proxy-Authenticate`, `Proxy-Authorization`) plus
/// `Keep-Alive` and `Proxy-Connection`. Case-insensitive. Headers named in
/// `Connection` are hop-by-hop too: [`end_to_end`] drops both kinds.
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// The headers a proxy forwards: `headers` minus [`is_hop_by_hop`] ones and
/// minus any named in a `Connection` header. Order is kept.
pub fn end_to_end<'a, I>(headers: I) -> Vec<(&'a str, &'a [u8])>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    let all: Vec<(&str, &[u8])> = headers.into_iter().collect();
    let named: Vec<&[u8]> =
        all.iter().filter(|(n, _)| n.eq_ignore_ascii_case("connection")).flat_map(|(_, v)| list_items(v)).collect();
    all.into_iter()
        .filter(|(n, _)| !is_hop_by_hop(n) && !named.iter().any(|t| t.eq_ignore_ascii_case(n.as_bytes())))
        .collect()
}

/// The non-empty items of a comma-separated header value, blanks trimmed.
fn list_items(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',').map(|t| t.trim_ascii()).filter(|t| !t.is_empty())
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

// ---------------------------------------------------------------------------
// Response head

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code, 100..=999.
    pub status: u16,
    /// The reason phrase; empty if absent or not valid UTF-8.
    pub reason: String,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// The header fields in order, names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// How the body that follows the head is delimited.
    pub framing: BodyFraming,
}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding: see [`ChunkedScanner`].
    Chunked,
    /// Everything until the origin closes the connection.
    UntilClose,
    /// No body: a 1xx, 204 or 304 response, or the answer to a HEAD.
    None,
}

impl ResponseHead {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    /// The headers a proxy forwards (see [`end_to_end`]).
    pub fn end_to_end_headers(&self) -> Vec<(&str, &[u8])> {
        end_to_end(self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())))
    }

    /// Whether the connection can carry another request once this body is
    /// read: the body is delimited, the origin did not ask to close (HTTP/1.1)
    /// or asked to keep alive (HTTP/1.0), and the head did not carry both
    /// `Transfer-Encoding` and `Content-Length` (RFC 9112 §6.3 says close).
    pub fn keep_alive(&self) -> bool {
        if self.framing == BodyFraming::UntilClose {
            return false;
        }
        if self.header("transfer-encoding").is_some() && self.header("content-length").is_some() {
            return false;
        }
        let mut close = false;
        let mut keep = false;
        for (_, v) in self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("connection")) {
            for t in list_items(v) {
                close |= t.eq_ignore_ascii_case(b"close");
                keep |= t.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        !close && (self.version >= 1 || keep)
    }
}

/// Parses an HTTP/1.x response head from the start of `buf`.
///
/// `Complete((head_len, head))`: the head is `buf[..head_len]`, the body (or
/// the next response) starts after it. `Partial`: read more and call again
/// with the whole buffer. `request_was_head` says the request was a HEAD, so
/// the response has no body whatever its headers say. A 1xx response is
/// interim: the caller skips `head_len` bytes and parses the real one.
pub fn parse_response_head(buf: &[u8], request_was_head: bool) -> Result<Status<(usize, ResponseHead)>, HttpError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut slots);
    let len = match res.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_LEN => {
            return Err(HttpError::TooLarge("response head over 64 KiB"))
        }
        Ok(httparse::Status::Partial) => return Ok(Status::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooLarge("over 100 header fields")),
        Err(e) => return Err(HttpError::Malformed(format!("response head: {e}"))),
    };
    if len > MAX_HEAD_LEN {
        return Err(HttpError::TooLarge("response head over 64 KiB"));
    }
    let (Some(status), Some(version)) = (res.code, res.version) else {
        return Err(HttpError::Malformed("response head without status or version".into()));
    };
    if status < 100 {
        return Err(HttpError::Malformed(format!("status code {status:03}")));
    }
    let headers: Vec<(String, Vec<u8>)> = res.headers.iter().map(|h| (h.name.to_owned(), h.value.to_vec())).collect();
    let framing = framing(status, version, &headers, request_was_head)?;
    let reason = res.reason.unwrap_or("").to_owned();
    Ok(Status::Complete((len, ResponseHead { status, reason, version, headers, framing })))
}

/// RFC 9112 §6.3 for a response.
fn framing(
    status: u16,
    version: u8,
    headers: &[(String, Vec<u8>)],
    request_was_head: bool,
) -> Result<BodyFraming, HttpError> {
    if request_was_head || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(BodyFraming::None);
    }
    let named = |name: &'static str| headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name));
    if named("transfer-encoding").next().is_some() {
        if version == 0 {
            // RFC 9112 §6.1: faulty framing.
            return Err(HttpError::Malformed("Transfer-Encoding in an HTTP/1.0 response".into()));
        }
        let codings: Vec<&[u8]> = named("transfer-encoding").flat_map(|(_, v)| list_items(v)).collect();
        let chunked = codings.iter().filter(|c| c.eq_ignore_ascii_case(b"chunked")).count();
        return match (codings.last(), chunked) {
            (None, _) => Err(HttpError::Malformed("empty Transfer-Encoding".into())),
            (Some(last), 1) if last.eq_ignore_ascii_case(b"chunked") => Ok(BodyFraming::Chunked),
            (_, 0) => Ok(BodyFraming::UntilClose),
            _ => Err(HttpError::Malformed("chunked is not the last and only final transfer coding".into())),
        };
    }
    let mut length = None;
    for (_, v) in named("content-length") {
        // `Content-Length: 5, 5` is allowed (RFC 9110 §8.6); different values are not.
        for item in v.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            let n = parse_decimal(item)
                .ok_or_else(|| HttpError::Malformed(format!("Content-Length {:?}", String::from_utf8_lossy(v))))?;
            if length.is_some_and(|l| l != n) {
                return Err(HttpError::Malformed("conflicting Content-Length values".into()));
            }
            length = Some(n);
        }
    }
    Ok(length.map_or(BodyFraming::UntilClose, BodyFraming::Length))
}

/// `1*DIGIT` as a u64; `None` if empty, not digits, or too big.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

// ---------------------------------------------------------------------------
// Chunked transfer coding

/// Where the scanner is in `chunked-body` (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size.
    Size,
    /// Blanks after the size, before `;` or CR.
    SizeBlank,
    /// A chunk extension, up to CR.
    Ext,
    /// CR of the size line seen, LF expected.
    SizeLf,
    /// Inside chunk data (`remaining` bytes left).
    Data,
    /// CR after chunk data expected.
    DataCr,
    /// LF after chunk data expected.
    DataLf,
    /// After the last chunk: a trailer field line or the final CRLF.
    TrailerStart,
    /// Inside a trailer field line.
    Trailer,
    /// CR of a trailer line seen, LF expected.
    TrailerLf,
    /// CR of the final empty line seen, LF expected.
    EndLf,
    /// The body ended.
    Done,
    /// An error was returned; every later call returns it again.
    Failed,
}

/// Follows a chunked body as its bytes go by, without copying or buffering,
/// to tell where it ends. Extensions and trailers are checked for framing
/// and passed through. Feed it every byte of the body, in any splits.
#[derive(Debug, Clone)]
pub struct ChunkedScanner {
    state: State,
    /// The chunk size being read.
    size: u64,
    /// Bytes of the current size line or trailer line.
    line: usize,
    /// Bytes of trailer fields so far.
    trailers: usize,
    /// Chunk data bytes left in the current chunk.
    remaining: u64,
    /// Sum of the chunk sizes so far (saturating).
    total: u64,
    /// The most `total` may reach.
    limit: u64,
    /// The error returned, for later calls.
    error: Option<HttpError>,
}

impl Default for ChunkedScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedScanner {
    /// A scanner at the start of a chunked body, with no limit on its size.
    pub fn new() -> Self {
        Self::with_limit(u64::MAX)
    }

    /// A scanner that fails with [`HttpError::TooLarge`] as soon as the
    /// chunk sizes announced add up to more than `limit` bytes of data.
    pub fn with_limit(limit: u64) -> Self {
        Self { state: State::Size, size: 0, line: 0, trailers: 0, remaining: 0, total: 0, limit, error: None }
    }

    /// Whether the whole body (last chunk and trailers) has been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The chunk data bytes announced so far (the decoded body length once
    /// done).
    pub fn data_len(&self) -> u64 {
        self.total
    }

    /// Looks at the next bytes of a chunked body; returns how many belong to
    /// the body (all of `buf` unless it ended inside) and whether the body
    /// ended within them. Once ended, returns `(0, true)`. Once it returned an
    /// error, returns the same error.
    pub fn scan(&mut self, buf: &[u8]) -> Result<(usize, bool), HttpError> {
        self.run(buf, |_| {})
    }

    /// The scanner proper; `data` gets the chunk data in order.
    fn run(&mut self, buf: &[u8], mut data: impl FnMut(&[u8])) -> Result<(usize, bool), HttpError> {
        let mut i = 0;
        loop {
            match self.state {
                State::Done => return Ok((i, true)),
                State::Failed => {
                    return Err(self.error.clone().unwrap_or(HttpError::BadChunk("scanner failed before")))
                }
                _ if i == buf.len() => return Ok((i, false)),
                State::Data => {
                    let n = usize::try_from(self.remaining).unwrap_or(usize::MAX).min(buf.len() - i);
                    data(&buf[i..i + n]);
                    i += n;
                    self.remaining -= n as u64;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                }
                _ => {
                    let b = buf[i];
                    i += 1;
                    if let Err(e) = self.step(b) {
                        self.state = State::Failed;
                        self.error = Some(e.clone());
                        return Err(e);
                    }
                }
            }
        }
    }

    /// One byte of framing (anything but chunk data).
    fn step(&mut self, b: u8) -> Result<(), HttpError> {
        use State::*;
        let bad = HttpError::BadChunk;
        match self.state {
            Size | SizeBlank | Ext => {
                self.line += 1;
                if self.line > MAX_CHUNK_LINE {
                    return Err(HttpError::TooLarge("chunk size line over 4 KiB"));
                }
            }
            Trailer | TrailerStart => {
                self.trailers += 1;
                if self.trailers > MAX_TRAILERS_LEN {
                    return Err(HttpError::TooLarge("chunked trailers over 16 KiB"));
                }
            }
            _ => {}
        }
        self.state = match (self.state, b) {
            (Size, _) if crate::percent::hex(b).is_some() => {
                if self.size > u64::MAX >> 4 {
                    return Err(bad("chunk size over 64 bits"));
                }
                self.size = self.size << 4 | u64::from(crate::percent::hex(b).unwrap_or(0));
                Size
            }
            (Size, _) if self.line == 1 => return Err(bad("chunk size is not a hex number")),
            (Size | SizeBlank, b' ' | b'\t') => SizeBlank,
            (Size | SizeBlank, b';') => Ext,
            (Size | SizeBlank | Ext, b'\r') => SizeLf,
            (Size | SizeBlank, _) => return Err(bad("invalid byte after chunk size")),
            (Ext, _) if is_ctl(b) => return Err(bad("control byte in chunk extension")),
            (Ext, _) => Ext,
            (SizeLf, b'\n') => {
                self.total = self.total.saturating_add(self.size);
                if self.total > self.limit {
                    return Err(HttpError::TooLarge("chunked body over its limit"));
                }
                self.remaining = self.size;
                self.size = 0;
                self.line = 0;
                if self.remaining == 0 {
                    TrailerStart
                } else {
                    Data
                }
            }
            (SizeLf, _) => return Err(bad("chunk size line not ended by CRLF")),
            (DataCr, b'\r') => DataLf,
            (DataCr, _) => return Err(bad("chunk data longer than its size")),
            (DataLf, b'\n') => Size,
            (DataLf, _) => return Err(bad("chunk data not followed by CRLF")),
            (TrailerStart, b'\r') => EndLf,
            (Trailer, b'\r') => TrailerLf,
            (TrailerStart | Trailer, _) if is_ctl(b) => return Err(bad("control byte in trailer field")),
            (TrailerStart | Trailer, _) => Trailer,
            (TrailerLf, b'\n') => TrailerStart,
            (TrailerLf, _) => return Err(bad("trailer field not ended by CRLF")),
            (EndLf, b'\n') => Done,
            (EndLf, _) => return Err(bad("chunked body not ended by CRLF")),
            (Data | Done | Failed, _) => return Err(bad("internal: framing byte in data")),
        };
        Ok(())
    }
}

/// CTL bytes other than HTAB (which field values and extensions may hold).
fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7F
}

/// Decodes a whole chunked body from the start of `body` (for small bodies
/// such as playlists). `Complete((consumed, data))` once the last chunk and
/// trailers are in (`consumed` bytes of `body`; what follows belongs to the
/// next message); `Partial` if more bytes are needed (call again with all of
/// them); [`HttpError::TooLarge`] as soon as the announced chunk sizes exceed
/// `limit` bytes of data, before they arrive.
pub fn dechunk(body: &[u8], limit: usize) -> Result<Status<(usize, Vec<u8>)>, HttpError> {
    let mut scanner = ChunkedScanner::with_limit(limit as u64);
    let mut out = Vec::new();
    let (n, done) = scanner.run(body, |d| out.extend_from_slice(d))?;
    Ok(if done { Status::Complete((n, out)) } else { Status::Partial })
}

// ---------------------------------------------------------------------------
// Writing heads

/// Writes a request head: `METHOD target HTTP/1.1`, the headers, the empty
/// line. The output is always well formed: bytes of `method` that are not
/// token characters are dropped (an empty method becomes `GET`), an empty
/// target becomes `/`, bytes of `target` that may not appear in a
/// request-target (controls, space, non-ASCII) are percent-encoded, and a
/// header whose name is not a token or whose value holds CR, LF or NUL is
/// left out.
pub fn write_request_head(out: &mut Vec<u8>, method: &str, target: &str, headers: &[(&str, &[u8])]) {
    let start = out.len();
    out.extend(method.bytes().filter(|&b| is_tchar(b)));
    if out.len() == start {
        out.extend_from_slice(b"GET");
    }
    out.push(b' ');
    if target.is_empty() {
        out.push(b'/');
    }
    for b in target.bytes() {
        if b <= b' ' || b >= 0x7F {
            out.extend_from_slice(&[b'%', HEX_DIGITS[usize::from(b >> 4)], HEX_DIGITS[usize::from(b & 15)]]);
        } else {
            out.push(b);
        }
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    write_headers(out, headers);
}

/// Writes a response head: `HTTP/1.1 status reason`, the headers, the empty
/// line. A status outside 100..=999 is written as 500; control bytes in
/// `reason` are dropped, and an empty reason gets the standard one
/// ([`reason_phrase`]). Headers as in [`write_request_head`].
pub fn write_response_head(out: &mut Vec<u8>, status: u16, reason: &str, headers: &[(&str, &[u8])]) {
    let status = if (100..=999).contains(&status) { status } else { 500 };
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.to_string().as_bytes());
    out.push(b' ');
    let start = out.len();
    out.extend(reason.bytes().filter(|&b| !is_ctl(b)));
    if out[start..].iter().all(|&b| b == b' ' || b == b'\t') {
        out.truncate(start);
        out.extend_from_slice(reason_phrase(status).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    write_headers(out, headers);
}

const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";

fn write_headers(out: &mut Vec<u8>, headers: &[(&str, &[u8])]) {
    for (name, value) in headers {
        let name_ok = !name.is_empty() && name.bytes().all(is_tchar);
        let value_ok = !value.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0));
        if name_ok && value_ok {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// The standard reason phrase of a status code, or `""` for unknown ones.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

// ---------------------------------------------------------------------------
// Paths and file types

/// Percent-decodes a URL path (`+` stays `+`). `None` for a bad escape
/// (`%` not followed by two hex digits), a result that is not UTF-8, or one
/// that contains NUL.
pub fn percent_decode(s: &str) -> Option<String> {
    crate::percent::decode(s, false).ok().filter(|d| !d.contains('\0')).map(|d| d.into_owned())
}

/// The content type for a file name's extension (case-insensitive), or
/// `application/octet-stream`.
pub fn content_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some((_, ext)) = name.rsplit_once('.') else {
        return "application/octet-stream";
    };
    const TYPES: &[(&str, &str)] = &[
        ("html", "text/html; charset=utf-8"),
        ("htm", "text/html; charset=utf-8"),
        ("js", "text/javascript; charset=utf-8"),
        ("mjs", "text/javascript; charset=utf-8"),
        ("css", "text/css; charset=utf-8"),
        ("json", "application/json"),
        ("map", "application/json"),
        ("txt", "text/plain; charset=utf-8"),
        ("m3u8", "application/vnd.apple.mpegurl"),
        ("ts", "video/mp2t"),
        ("flv", "video/x-flv"),
        ("mp4", "video/mp4"),
        ("m4s", "video/iso.segment"),
        ("m4a", "audio/mp4"),
        ("aac", "audio/aac"),
        ("mp3", "audio/mpeg"),
        ("webm", "video/webm"),
        ("mpd", "application/dash+xml"),
        ("png", "image/png"),
        ("jpg", "image/jpeg"),
        ("jpeg", "image/jpeg"),
        ("gif", "image/gif"),
        ("webp", "image/webp"),
        ("svg", "image/svg+xml"),
        ("ico", "image/x-icon"),
        ("wasm", "application/wasm"),
        ("woff", "font/woff"),
        ("woff2", "font/woff2"),
        ("xml", "text/xml; charset=utf-8"),
    ];
    TYPES.iter().find(|(e, _)| e.eq_ignore_ascii_case(ext)).map_or("application/octet-stream", |(_, t)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kind of an error, for tables that do not spell out messages.
    #[derive(Debug, PartialEq, Eq)]
    enum Kind {
        Malformed,
        TooLarge,
        BadChunk,
    }

    fn kind(e: &HttpError) -> Kind {
        match e {
            HttpError::Malformed(_) => Kind::Malformed,
            HttpError::TooLarge(_) => Kind::TooLarge,
            HttpError::BadChunk(_) => Kind::BadChunk,
        }
    }

    type Head = Result<Status<(usize, ResponseHead)>, Kind>;

    fn head(
        len: usize,
        status: u16,
        reason: &str,
        version: u8,
        headers: &[(&str, &str)],
        framing: BodyFraming,
    ) -> Head {
        let headers = headers.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect();
        Ok(Status::Complete((len, ResponseHead { status, reason: reason.into(), version, headers, framing })))
    }

    /// One `#[test]` per response head: (bytes, request was HEAD) → result.
    macro_rules! res {
        ($($name:ident: $input:expr, $is_head:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let input: &[u8] = &$input[..];
                let got = parse_response_head(input, $is_head).map_err(|e| kind(&e));
                let want: Head = $want;
                assert_eq!(got, want, "input {:?}", String::from_utf8_lossy(input));
            }
        )*};
    }

    use BodyFraming::{Chunked, Length, UntilClose};

    res! {
        res_content_length: b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer: SRS\r\n\r\nabc", false
            => head(51, 200, "OK", 1, &[("Content-Length", "3"), ("Server", "SRS")], Length(3));
        res_chunked: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false
            => head(47, 200, "OK", 1, &[("Transfer-Encoding", "chunked")], Chunked);
        res_chunked_case_and_blanks: b"HTTP/1.1 200 OK\r\ntransfer-encoding:  CHUNKED \r\n\r\n", false
            => head(49, 200, "OK", 1, &[("transfer-encoding", "CHUNKED")], Chunked);
        res_gzip_then_chunked: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false
            => head(53, 200, "OK", 1, &[("Transfer-Encoding", "gzip, chunked")], Chunked);
        res_two_te_headers: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", false
            => head(72, 200, "OK", 1, &[("Transfer-Encoding", "gzip"), ("Transfer-Encoding", "chunked")], Chunked);
        res_te_not_chunked_reads_until_close: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false
            => head(44, 200, "OK", 1, &[("Transfer-Encoding", "gzip")], UntilClose);
        res_chunked_not_last: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false
            => Err(Kind::Malformed);
        res_chunked_twice: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", false
            => Err(Kind::Malformed);
        res_te_empty: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n", false => Err(Kind::Malformed);
        res_te_beats_content_length: b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n", false
            => head(66, 200, "OK", 1, &[("Content-Length", "9"), ("Transfer-Encoding", "chunked")], Chunked);
        res_te_in_http10: b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false => Err(Kind::Malformed);
        res_no_length_until_close: b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\n\r\nFLV", false
            => head(46, 200, "OK", 1, &[("Content-Type", "video/x-flv")], UntilClose);
        res_http10: b"HTTP/1.0 200 OK\r\n\r\n", false => head(19, 200, "OK", 0, &[], UntilClose);
        res_204_ignores_length: b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false
            => head(46, 204, "No Content", 1, &[("Content-Length", "5")], BodyFraming::None);
        res_304: b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false
            => head(57, 304, "Not Modified", 1, &[("Transfer-Encoding", "chunked")], BodyFraming::None);
        res_100_continue_interim: b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", false
            => head(25, 100, "Continue", 1, &[], BodyFraming::None);
        res_head_request: b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", true
            => head(41, 200, "OK", 1, &[("Content-Length", "1000")], BodyFraming::None);
        res_404_with_body: b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found", false
            => head(45, 404, "Not Found", 1, &[("Content-Length", "9")], Length(9));
        res_length_list_same: b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n", false
            => head(60, 200, "OK", 1, &[("Content-Length", "5, 5"), ("Content-Length", "5")], Length(5));
        res_length_conflict: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", false
            => Err(Kind::Malformed);
        res_length_list_conflict: b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", false => Err(Kind::Malformed);
        res_length_negative: b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false => Err(Kind::Malformed);
        res_length_plus: b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", false => Err(Kind::Malformed);
        res_length_hex: b"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", false => Err(Kind::Malformed);
        res_length_empty: b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", false => Err(Kind::Malformed);
        res_length_trailing_comma: b"HTTP/1.1 200 OK\r\nContent-Length: 5,\r\n\r\n", false => Err(Kind::Malformed);
        res_length_u64_max: b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n", false
            => head(57, 200, "OK", 1, &[("Content-Length", "18446744073709551615")], Length(u64::MAX));
        res_length_overflow: b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n", false
            => Err(Kind::Malformed);
        res_no_reason: b"HTTP/1.1 200\r\n\r\n", false => head(16, 200, "", 1, &[], UntilClose);
        res_reason_obs_text: b"HTTP/1.1 200 \xE6\x88\x90\xE5\x8A\x9F\r\nContent-Length: 0\r\n\r\n", false
            => head(42, 200, "", 1, &[("Content-Length", "0")], Length(0));
        res_bare_lf_head: b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", false
            => head(35, 200, "OK", 1, &[("Content-Length", "0")], Length(0));
        res_status_999: b"HTTP/1.1 999 Odd\r\n\r\n", false => head(20, 999, "Odd", 1, &[], UntilClose);
        res_partial_empty: b"", false => Ok(Status::Partial);
        res_partial_status_line: b"HTTP/1.1 20", false => Ok(Status::Partial);
        res_partial_header: b"HTTP/1.1 200 OK\r\nContent-Le", false => Ok(Status::Partial);
        res_partial_no_empty_line: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", false => Ok(Status::Partial);
        res_http2: b"HTTP/2 200 OK\r\n\r\n", false => Err(Kind::Malformed);
        res_http12: b"HTTP/1.2 200 OK\r\n\r\n", false => Err(Kind::Malformed);
        res_icy: b"ICY 200 OK\r\n\r\n", false => Err(Kind::Malformed);
        res_status_four_digits: b"HTTP/1.1 2000 OK\r\n\r\n", false => Err(Kind::Malformed);
        res_status_two_digits: b"HTTP/1.1 20 OK\r\n\r\n", false => Err(Kind::Malformed);
        res_status_letters: b"HTTP/1.1 abc OK\r\n\r\n", false => Err(Kind::Malformed);
        res_status_below_100: b"HTTP/1.1 099 Low\r\n\r\n", false => Err(Kind::Malformed);
        res_request_line: b"GET / HTTP/1.1\r\n\r\n", false => Err(Kind::Malformed);
        res_obs_fold: b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n", false => Err(Kind::Malformed);
        res_space_before_colon: b"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n", false => Err(Kind::Malformed);
        res_nul_in_value: b"HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n", false => Err(Kind::Malformed);
        res_cr_without_lf: b"HTTP/1.1 200 OK\rX-A: b\r\n\r\n", false => Err(Kind::Malformed);
        res_binary: b"\x00\xFF\x16\x03\x01", false => Err(Kind::Malformed);
        res_too_many_headers: [&b"HTTP/1.1 200 OK\r\n"[..], &b"X-A: 1\r\n".repeat(101), b"\r\n"].concat(), false
            => Err(Kind::TooLarge);
        res_head_too_long: [&b"HTTP/1.1 200 OK\r\nX-A: "[..], &b"a".repeat(MAX_HEAD_LEN)].concat(), false
            => Err(Kind::TooLarge);
        res_complete_head_too_long: [&b"HTTP/1.1 200 OK\r\nX-A: "[..], &b"a".repeat(MAX_HEAD_LEN), b"\r\n\r\n"].concat(), false
            => Err(Kind::TooLarge);
    }

    #[test]
    fn max_headers_fit() {
        let input = [&b"HTTP/1.1 200 OK\r\n"[..], &b"X-A: 1\r\n".repeat(MAX_HEADERS), b"\r\n"].concat();
        let Ok(Status::Complete((n, h))) = parse_response_head(&input, false) else { panic!("not complete") };
        assert_eq!((n, h.headers.len()), (input.len(), MAX_HEADERS));
    }

    #[test]
    fn malformed_messages() {
        let e = |b: &[u8]| parse_response_head(b, false).unwrap_err().to_string();
        assert_eq!(e(b"HTTP/1.1 099 x\r\n\r\n"), "malformed HTTP message: status code 099");
        assert_eq!(
            e(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            "malformed HTTP message: conflicting Content-Length values"
        );
        assert_eq!(e(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"), "malformed HTTP message: Content-Length \"x\"");
        assert_eq!(e(b"ICY 200 OK\r\n\r\n"), "malformed HTTP message: response head: invalid HTTP version");
        assert_eq!(HttpError::BadChunk("x").to_string(), "bad chunked encoding: x");
        assert_eq!(HttpError::TooLarge("y").to_string(), "HTTP message too large: y");
    }

    /// One `#[test]` per header set: Connection / version / framing → keep-alive.
    macro_rules! keep {
        ($($name:ident: $input:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let Ok(Status::Complete((_, h))) = parse_response_head($input, false) else { panic!("bad case") };
                assert_eq!(h.keep_alive(), $want);
            }
        )*};
    }

    keep! {
        keep_http11_default: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" => true;
        keep_http11_close: b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n" => false;
        keep_http11_close_in_list: b"HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\nContent-Length: 0\r\n\r\n" => false;
        keep_http10_default: b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n" => false;
        keep_http10_keep_alive: b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n" => true;
        keep_until_close: b"HTTP/1.1 200 OK\r\n\r\n" => false;
        keep_chunked: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" => true;
        keep_te_and_length: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n" => false;
        keep_no_body: b"HTTP/1.1 204 No Content\r\n\r\n" => true;
    }

    /// One `#[test]` per header name → hop-by-hop or not.
    macro_rules! hop {
        ($($name:ident: $header:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(is_hop_by_hop($header), $want, "{}", $header);
            }
        )*};
    }

    hop! {
        hop_connection: "Connection" => true;
        hop_keep_alive: "keep-alive" => true;
        hop_proxy_connection: "Proxy-Connection" => true;
        hop_proxy_authenticate: "PROXY-AUTHENTICATE" => true;
        hop_proxy_authorization: "Proxy-Authorization" => true;
        hop_te: "TE" => true;
        hop_trailer: "Trailer" => true;
        hop_transfer_encoding: "Transfer-Encoding" => true;
        hop_upgrade: "Upgrade" => true;
        hop_content_type: "Content-Type" => false;
        hop_content_length: "Content-Length" => false;
        hop_location: "Location" => false;
        hop_trailers_plural: "Trailers" => false;
        hop_empty: "" => false;
    }

    #[test]
    fn end_to_end_drops_connection_named() {
        let hs: Vec<(&str, &[u8])> = vec![
            ("Content-Type", b"video/x-flv"),
            ("Connection", b"keep-alive, X-Private ,"),
            ("x-private", b"1"),
            ("Keep-Alive", b"timeout=5"),
            ("Location", b"/rtc/v1/whip/?x"),
            ("Transfer-Encoding", b"chunked"),
            ("Connection", b"X-Other"),
            ("X-Other", b"2"),
        ];
        let want: Vec<(&str, &[u8])> = vec![("Content-Type", b"video/x-flv"), ("Location", b"/rtc/v1/whip/?x")];
        assert_eq!(end_to_end(hs), want);
        let Ok(Status::Complete((_, h))) =
            parse_response_head(b"HTTP/1.1 200 OK\r\nConnection: close, X-A\r\nX-A: 1\r\nX-B: 2\r\n\r\n", false)
        else {
            panic!("bad case")
        };
        assert_eq!(h.end_to_end_headers(), vec![("X-B", &b"2"[..])]);
        assert_eq!(h.header("x-b"), Some(&b"2"[..]));
        assert_eq!(h.header("x-c"), None);
    }

    // -----------------------------------------------------------------------
    // Chunked

    /// Scans `input` fed in the given pieces; the result of the first piece
    /// that ends or fails, with offsets made absolute.
    fn scan_split(input: &[u8], cuts: &[usize]) -> Result<(usize, bool), Kind> {
        let mut sc = ChunkedScanner::new();
        let mut at = 0;
        for &end in cuts.iter().chain(std::iter::once(&input.len())) {
            let (n, done) = sc.scan(&input[at..end]).map_err(|e| kind(&e))?;
            assert!(n <= end - at);
            if done {
                assert!(sc.is_done());
                assert_eq!(sc.scan(b"more"), Ok((0, true)));
                return Ok((at + n, true));
            }
            assert_eq!(n, end - at, "a body that did not end must take every byte");
            at = end;
        }
        Ok((at, false))
    }

    /// One `#[test]` per chunked body: bytes → (body bytes, ended) or error,
    /// the same whole, split at every offset, and byte by byte.
    macro_rules! chunked {
        ($($name:ident: $input:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let input: &[u8] = &$input[..];
                let want: Result<(usize, bool), Kind> = $want;
                assert_eq!(scan_split(input, &[]), want, "whole");
                // Every two-piece split (all of them for short inputs).
                let step = (input.len() / 256).max(1);
                for cut in (0..=input.len()).step_by(step) {
                    assert_eq!(scan_split(input, &[cut]), want, "split at {cut}");
                }
                let every: Vec<usize> = (1..input.len()).collect();
                assert_eq!(scan_split(input, &every), want, "byte by byte");
            }
        )*};
    }

    chunked! {
        ch_empty_body: b"0\r\n\r\n" => Ok((5, true));
        ch_two_chunks: b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n" => Ok((26, true));
        ch_next_response_follows: b"1\r\na\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n" => Ok((11, true));
        ch_hex_upper_lower: b"A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n" => Ok((35, true));
        ch_leading_zeros: b"0005\r\nhello\r\n000\r\n\r\n" => Ok((20, true));
        ch_extensions: b"5;name=val;q=\"a;b\\\"c\"\r\nhello\r\n0;last\r\n\r\n" => Ok((40, true));
        ch_blanks_before_ext: b"5 \t;x\r\nhello\r\n0 \r\n\r\n" => Ok((20, true));
        ch_trailers: b"0\r\nExpires: never\r\nX-Checksum: abc\r\n\r\n" => Ok((38, true));
        ch_partial_size: b"1" => Ok((1, false));
        ch_partial_data: b"5\r\nhel" => Ok((6, false));
        ch_partial_before_last_lf: b"0\r\n\r" => Ok((4, false));
        ch_partial_in_trailer: b"0\r\nX-A: 1\r\n" => Ok((11, false));
        ch_empty_input: b"" => Ok((0, false));
        ch_huge_chunk_partial: b"FFFFFFFFFFFFFFFF\r\nabc" => Ok((21, false));
        ch_not_hex: b"x\r\n" => Err(Kind::BadChunk);
        ch_no_digits: b"\r\n" => Err(Kind::BadChunk);
        ch_no_digits_ext: b";x\r\n" => Err(Kind::BadChunk);
        ch_negative: b"-1\r\n" => Err(Kind::BadChunk);
        ch_0x_prefix: b"0x5\r\nhello\r\n" => Err(Kind::BadChunk);
        ch_leading_space: b" 5\r\nhello\r\n" => Err(Kind::BadChunk);
        ch_digit_after_blank: b"5 5\r\n" => Err(Kind::BadChunk);
        ch_overflow: b"10000000000000000\r\n" => Err(Kind::BadChunk);
        ch_overflow_long: b"FFFFFFFFFFFFFFFFF\r\n" => Err(Kind::BadChunk);
        ch_bare_lf_size: b"5\nhello\r\n0\r\n\r\n" => Err(Kind::BadChunk);
        ch_bare_lf_ext: b"5;x\nhello" => Err(Kind::BadChunk);
        ch_cr_cr: b"5\r\r\nhello" => Err(Kind::BadChunk);
        ch_missing_crlf_after_data: b"5\r\nhello0\r\n\r\n" => Err(Kind::BadChunk);
        ch_data_longer_than_size: b"3\r\nhello\r\n" => Err(Kind::BadChunk);
        ch_bare_lf_after_data: b"5\r\nhello\n0\r\n\r\n" => Err(Kind::BadChunk);
        ch_cr_then_junk_after_data: b"5\r\nhello\rX" => Err(Kind::BadChunk);
        ch_nul_in_ext: b"5;a\0b\r\nhello\r\n" => Err(Kind::BadChunk);
        ch_bare_lf_trailer: b"0\r\nX-A: 1\n\r\n" => Err(Kind::BadChunk);
        ch_bare_lf_end: b"0\r\n\n" => Err(Kind::BadChunk);
        ch_cr_junk_end: b"0\r\n\rX" => Err(Kind::BadChunk);
        ch_ctl_in_trailer: b"0\r\nX-A: \x01\r\n\r\n" => Err(Kind::BadChunk);
        ch_size_line_too_long: [&b"5;"[..], &b"a".repeat(MAX_CHUNK_LINE)].concat() => Err(Kind::TooLarge);
        ch_zeros_too_long: b"0".repeat(MAX_CHUNK_LINE + 1) => Err(Kind::TooLarge);
        ch_trailers_too_long: [&b"0\r\n"[..], &b"X-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(MAX_TRAILERS_LEN / 36 + 1)].concat()
            => Err(Kind::TooLarge);
    }

    #[test]
    fn scanner_keeps_failing() {
        let mut sc = ChunkedScanner::new();
        let e = sc.scan(b"zz").unwrap_err();
        assert_eq!(e, HttpError::BadChunk("chunk size is not a hex number"));
        assert_eq!(sc.scan(b"0\r\n\r\n"), Err(e));
        assert!(!sc.is_done());
    }

    #[test]
    fn scanner_counts_data() {
        let mut sc = ChunkedScanner::default();
        assert_eq!(sc.scan(b"5\r\nhello\r\n10\r\n"), Ok((14, false)));
        assert_eq!(sc.data_len(), 21);
        let mut limited = ChunkedScanner::with_limit(20);
        assert_eq!(limited.scan(b"5\r\nhello\r\n10\r\n"), Err(HttpError::TooLarge("chunked body over its limit")));
    }

    /// One `#[test]` per chunked body to decode: (bytes, limit) → result.
    macro_rules! dechunk {
        ($($name:ident: $input:expr, $limit:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let want: Result<Status<(usize, &[u8])>, Kind> = $want;
                let got = dechunk(&$input[..], $limit).map_err(|e| kind(&e));
                let got = got.as_ref().map(|s| match s {
                    Status::Complete((n, v)) => Status::Complete((*n, &v[..])),
                    Status::Partial => Status::Partial,
                });
                assert_eq!(got, want.as_ref().map(|s| *s).map_err(|e| e));
            }
        )*};
    }

    fn done(n: usize, body: &[u8]) -> Result<Status<(usize, &[u8])>, Kind> {
        Ok(Status::Complete((n, body)))
    }

    dechunk! {
        de_two_chunks: b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 100 => done(26, b"hello world");
        de_exact_limit: b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 11 => done(26, b"hello world");
        de_over_limit: b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 10 => Err(Kind::TooLarge);
        de_declared_over_limit_early: b"FFFFFFFF\r\nab", 1 << 20 => Err(Kind::TooLarge);
        de_empty_body: b"0\r\n\r\n", 0 => done(5, b"");
        de_trailers_and_rest: b"3;x=y\r\n#EX\r\n0\r\nX-A: 1\r\n\r\nrest", 10 => done(25, b"#EX");
        de_partial: b"5\r\nhello\r\n", 100 => Ok(Status::Partial);
        de_partial_empty: b"", 100 => Ok(Status::Partial);
        de_bad: b"5\r\nhello\n", 100 => Err(Kind::BadChunk);
        de_binary: b"\x00\x01\x02", 100 => Err(Kind::BadChunk);
    }

    // -----------------------------------------------------------------------
    // Writing

    #[test]
    fn request_head() {
        let mut out = b"keep".to_vec();
        write_request_head(
            &mut out,
            "GET",
            "/live/s.m3u8?hls_ctx=a&spbhid=b",
            &[("Host", b"origin:8080"), ("X-Forwarded-For", b"1.2.3.4, 5.6.7.8")],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "keepGET /live/s.m3u8?hls_ctx=a&spbhid=b HTTP/1.1\r\nHost: origin:8080\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8\r\n\r\n"
        );
    }

    #[test]
    fn request_head_sanitised() {
        let mut out = Vec::new();
        write_request_head(
            &mut out,
            "G E\r\nT",
            "/a b\r\n\u{e9}\x7f",
            &[
                ("X-Bad", b"a\r\nInjected: 1"),
                ("X Bad", b"1"),
                ("", b"1"),
                ("X-Nul", b"a\0"),
                ("X-Ok", b"\xFFtab\there"),
            ],
        );
        assert_eq!(out, b"GET /a%20b%0D%0A%C3%A9%7F HTTP/1.1\r\nX-Ok: \xFFtab\there\r\n\r\n".to_vec());
        out.clear();
        write_request_head(&mut out, "", "", &[]);
        assert_eq!(out, b"GET / HTTP/1.1\r\n\r\n".to_vec());
    }

    /// One `#[test]` per response head to write: (status, reason) → status line.
    macro_rules! status_line {
        ($($name:ident: $status:expr, $reason:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let mut out = Vec::new();
                write_response_head(&mut out, $status, $reason, &[("Content-Length", b"0")]);
                let want = format!("{}\r\nContent-Length: 0\r\n\r\n", $want);
                assert_eq!(String::from_utf8_lossy(&out), want);
            }
        )*};
    }

    status_line! {
        st_ok: 200, "OK" => "HTTP/1.1 200 OK";
        st_custom_reason: 404, "Stream Not Here" => "HTTP/1.1 404 Stream Not Here";
        st_empty_reason: 502, "" => "HTTP/1.1 502 Bad Gateway";
        st_blank_reason: 201, " " => "HTTP/1.1 201 Created";
        st_unknown_empty: 599, "" => "HTTP/1.1 599 ";
        st_reason_injection: 200, "OK\r\nSet-Cookie: x" => "HTTP/1.1 200 OKSet-Cookie: x";
        st_zero: 0, "X" => "HTTP/1.1 500 X";
        st_too_big: 1000, "" => "HTTP/1.1 500 Internal Server Error";
        st_continue: 100, "" => "HTTP/1.1 100 Continue";
    }

    #[test]
    fn written_heads_parse_back() {
        let mut out = Vec::new();
        write_response_head(&mut out, 200, "OK", &[("Content-Type", b"video/x-flv"), ("Bad\n", b"x")]);
        let Ok(Status::Complete((n, h))) = parse_response_head(&out, false) else { panic!("does not parse") };
        assert_eq!(n, out.len());
        assert_eq!(h.headers, vec![("Content-Type".to_string(), b"video/x-flv".to_vec())]);
    }

    // -----------------------------------------------------------------------
    // Paths

    /// One `#[test]` per path → decoded path or None.
    macro_rules! decode {
        ($($name:ident: $input:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(percent_decode($input).as_deref(), $want, "{:?}", $input);
            }
        )*};
    }

    decode! {
        pd_plain: "/live/livestream.flv" => Some("/live/livestream.flv");
        pd_space: "/a%20b" => Some("/a b");
        pd_plus_kept: "/a+b" => Some("/a+b");
        pd_dots: "/%2e%2E/etc/passwd" => Some("/../etc/passwd");
        pd_slash: "/a%2Fb" => Some("/a/b");
        pd_utf8: "/%E4%B8%AD.html" => Some("/中.html");
        pd_percent_itself: "/100%25" => Some("/100%");
        pd_empty: "" => Some("");
        pd_nul: "/a%00b" => None;
        pd_raw_nul: "/a\0b" => None;
        pd_invalid_utf8: "/%FF" => None;
        pd_overlong_utf8: "/%C0%AE" => None;
        pd_truncated: "/a%2" => None;
        pd_lone_percent: "/a%" => None;
        pd_bad_hex: "/a%zz" => None;
        pd_percent_sign_then_valid: "/%%41" => None;
    }

    /// One `#[test]` per file name → content type.
    macro_rules! ctype {
        ($($name:ident: $input:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(content_type($input), $want, "{:?}", $input);
            }
        )*};
    }

    ctype! {
        ct_html: "players/index.html" => "text/html; charset=utf-8";
        ct_js: "/js/hls.min.js" => "text/javascript; charset=utf-8";
        ct_mjs: "a.mjs" => "text/javascript; charset=utf-8";
        ct_css: "a.css" => "text/css; charset=utf-8";
        ct_json: "a.json" => "application/json";
        ct_m3u8: "/live/s.m3u8" => "application/vnd.apple.mpegurl";
        ct_ts: "/live/s-1.ts" => "video/mp2t";
        ct_flv: "/live/s.flv" => "video/x-flv";
        ct_mp4: "v.MP4" => "video/mp4";
        ct_m4s: "seg.m4s" => "video/iso.segment";
        ct_png: "a.png" => "image/png";
        ct_jpg: "a.jpg" => "image/jpeg";
        ct_svg: "a.svg" => "image/svg+xml";
        ct_ico: "favicon.ico" => "image/x-icon";
        ct_wasm: "a.wasm" => "application/wasm";
        ct_txt: "a.txt" => "text/plain; charset=utf-8";
        ct_map: "a.js.map" => "application/json";
        ct_unknown: "a.bin" => "application/octet-stream";
        ct_no_ext: "/live/README" => "application/octet-stream";
        ct_dot_in_dir: "/a.html/b" => "application/octet-stream";
        ct_trailing_dot: "a." => "application/octet-stream";
        ct_empty: "" => "application/octet-stream";
    }
}
