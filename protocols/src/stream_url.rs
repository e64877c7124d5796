//! The stream key `vhost/app/stream` that pins a stream to one origin.
//!
//! Every protocol reduces a request to the same key (SPEC B§1.3), so a stream
//! published over RTMP and played over HTTP-FLV, HLS, WebRTC or SRT lands on
//! the same origin. The rules, with the A2 fixes:
//!
//! * vhost = the host name, lower-cased, port dropped. A host with no `.`,
//!   an IPv4 or IPv6 address (bracketed or not) or an empty host gives
//!   [`DEFAULT_VHOST`]. HTTP takes it from the `Host` header with or without
//!   a port (SRS Go needed a port).
//! * An SRS-style `?vhost=` or `?domain=` query parameter (tcUrl, stream
//!   name, HTTP query, SRT resource) overrides the host; `domain` wins over
//!   `vhost`, the stream's query over the tcUrl's, as SRS does. The legacy
//!   `app...vhost...example.com` form of an RTMP app is understood too.
//! * app/stream: the path is percent-decoded, split on `/` (empty segments
//!   are skipped); the last segment is the stream, the others form the app.
//!   `.` and `..` segments and control characters are refused.
//! * Queries are dropped from the key.
//!
//! Everything here is pure: no allocation beyond the key, no panics on any
//! input (see the table tests at the bottom).

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The vhost used when the host is an IP address, has no `.`, or is absent.
pub const DEFAULT_VHOST: &str = "__defaultVhost__";

/// The longest key accepted, in bytes. Keys are stored in Redis and logged;
/// SRS keys are short, so this only stops abuse.
pub const MAX_KEY_LEN: usize = 2048;

/// The longest host name accepted (DNS limit, plus room for a port).
const MAX_HOST_LEN: usize = 260;

/// "vhost/app/stream", e.g. "__defaultVhost__/live/livestream". The key that
/// pins a stream to an origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamUrl(String);

impl StreamUrl {
    /// The whole key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The vhost: everything before the first `/`.
    pub fn vhost(&self) -> &str {
        self.parts().0
    }

    /// The app: between the vhost and the last `/` (may itself contain `/`).
    pub fn app(&self) -> &str {
        self.parts().1
    }

    /// The stream: everything after the last `/`.
    pub fn stream(&self) -> &str {
        self.parts().2
    }

    /// Wraps a key read back from Redis or JSON without checking it. The
    /// accessors never panic, whatever the string.
    pub fn new_unchecked(s: String) -> Self {
        StreamUrl(s)
    }

    /// Consumes the key, returning the string.
    pub fn into_string(self) -> String {
        self.0
    }

    fn parts(&self) -> (&str, &str, &str) {
        let s = self.0.as_str();
        let Some((vhost, rest)) = s.split_once('/') else {
            return (s, "", "");
        };
        match rest.rsplit_once('/') {
            Some((app, stream)) => (vhost, app, stream),
            None => (vhost, "", rest),
        }
    }
}

impl fmt::Display for StreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for StreamUrl {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Why a request could not be reduced to a stream key.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamUrlError {
    /// No app segment (e.g. `rtmp://host` with stream `s`, or `/s.flv`).
    MissingApp,
    /// No stream segment (empty stream name, `/live/`, `/live/.flv`).
    MissingStream,
    /// The URL, path or query is malformed; the text says what.
    BadUrl(&'static str),
    /// The host (or `vhost=`/`domain=` value) is malformed.
    BadHost(&'static str),
    /// The input or the resulting key is longer than [`MAX_KEY_LEN`].
    TooLong,
}

impl fmt::Display for StreamUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamUrlError::MissingApp => f.write_str("stream url: missing app"),
            StreamUrlError::MissingStream => f.write_str("stream url: missing stream"),
            StreamUrlError::BadUrl(why) => write!(f, "stream url: {why}"),
            StreamUrlError::BadHost(why) => write!(f, "stream url: bad host: {why}"),
            StreamUrlError::TooLong => {
                write!(f, "stream url: longer than {MAX_KEY_LEN} bytes")
            }
        }
    }
}

impl std::error::Error for StreamUrlError {}

/// RTMP: from connect's tcUrl (`rtmp://host[:port]/app[?query]`) and the
/// publish/play stream name (`stream[?query]`).
pub fn from_rtmp(tc_url: &str, stream_name: &str) -> Result<StreamUrl, StreamUrlError> {
    check_input_len(tc_url.len() + stream_name.len())?;
    let (scheme, rest) = tc_url.split_once("://").ok_or(StreamUrlError::BadUrl("tcUrl has no scheme"))?;
    if !is_scheme(scheme) {
        return Err(StreamUrlError::BadUrl("tcUrl has a bad scheme"));
    }
    // Drop a fragment; it never reaches a server.
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(auth_end);
    // Drop userinfo.
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() {
        return Err(StreamUrlError::BadUrl("tcUrl has no host"));
    }
    // SRS legacy form: rtmp://host/app...vhost...example.com
    let after: Cow<'_, str> = if after.contains("...vhost...") {
        Cow::Owned(after.replacen("...vhost...", "?vhost=", 1))
    } else {
        Cow::Borrowed(after)
    };
    let (tc_path, tc_query) = split_query(&after);
    let (name, name_query) = split_query(stream_name);
    let vhost = resolve_vhost(Some(host), &[tc_query, name_query])?;
    let app = percent_decode(tc_path, false)?;
    let stream = percent_decode(name, false)?;
    assemble(vhost, &[&app, &stream])
}

/// HTTP: from the `Host` header (may be absent), the path, and the raw query
/// (without `?`). Returns the key and the path's extension (`.flv`, `.ts`,
/// `.m3u8`, `""`...).
///
/// The `?app=&stream=` query form (WHIP/WHEP, legacy RTC APIs) wins over the
/// path; otherwise the path minus its extension gives app and stream.
pub fn from_http<'a>(host: Option<&str>, path: &'a str, query: &str) -> Result<(StreamUrl, &'a str), StreamUrlError> {
    check_input_len(path.len() + query.len() + host.map_or(0, str::len))?;
    if !path.starts_with('/') {
        return Err(StreamUrlError::BadUrl("path does not start with '/'"));
    }
    if path.contains(['?', '#']) {
        return Err(StreamUrlError::BadUrl("path carries a query or fragment"));
    }
    let last = &path[path.rfind('/').map_or(0, |i| i + 1)..];
    let ext = last.rfind('.').map_or("", |i| &last[i..]);
    if ext.contains('%') {
        return Err(StreamUrlError::BadUrl("percent-encoded extension"));
    }
    let vhost = resolve_vhost(host, &[query])?;

    let q_app = query_get(query, "app")?;
    let q_stream = query_get(query, "stream")?;
    let key = if q_app.is_some() || q_stream.is_some() {
        let app = q_app.unwrap_or_default();
        let stream = q_stream.unwrap_or_default();
        assemble(vhost, &[&app, &stream])?
    } else {
        let base = percent_decode(&path[..path.len() - ext.len()], false)?;
        let (dir, stream) = base.rsplit_once('/').unwrap_or(("", &base));
        assemble(vhost, &[dir, stream])?
    };
    Ok((key, ext))
}

/// SRT: from the streamid's `h=` (None → `localhost`) and `r=`
/// (`live/livestream`, optionally with `?query`).
pub fn from_srt(host: Option<&str>, resource: &str) -> Result<StreamUrl, StreamUrlError> {
    check_input_len(resource.len() + host.map_or(0, str::len))?;
    let host = host.unwrap_or("localhost");
    let (path, query) = split_query(resource);
    let vhost = resolve_vhost(Some(host), &[query])?;
    let path = percent_decode(path, false)?;
    let (dir, stream) = path.rsplit_once('/').unwrap_or(("", &path));
    assemble(vhost, &[dir, stream])
}

fn check_input_len(n: usize) -> Result<(), StreamUrlError> {
    // Inputs may carry long queries (tokens), so allow some slack over the key.
    if n > 4 * MAX_KEY_LEN {
        Err(StreamUrlError::TooLong)
    } else {
        Ok(())
    }
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn split_query(s: &str) -> (&str, &str) {
    s.split_once('?').unwrap_or((s, ""))
}

/// Joins the pieces' segments into `vhost/app.../stream`. The last piece is
/// the stream part: if it has no segment the stream is missing.
fn assemble(vhost: String, pieces: &[&str]) -> Result<StreamUrl, StreamUrlError> {
    let mut key = vhost;
    let mut count = 0usize;
    let mut stream_present = false;
    for (i, piece) in pieces.iter().enumerate() {
        let last = i + 1 == pieces.len();
        for seg in piece.split('/').filter(|s| !s.is_empty()) {
            check_segment(seg)?;
            key.push('/');
            key.push_str(seg);
            count += 1;
            stream_present |= last;
        }
    }
    if !stream_present {
        return Err(StreamUrlError::MissingStream);
    }
    if count < 2 {
        return Err(StreamUrlError::MissingApp);
    }
    if key.len() > MAX_KEY_LEN {
        return Err(StreamUrlError::TooLong);
    }
    Ok(StreamUrl(key))
}

fn check_segment(seg: &str) -> Result<(), StreamUrlError> {
    if seg == "." || seg == ".." {
        return Err(StreamUrlError::BadUrl("dot segment in path"));
    }
    if seg.chars().any(char::is_control) {
        return Err(StreamUrlError::BadUrl("control character in path"));
    }
    Ok(())
}

/// The vhost from the host and the queries (later queries win; `domain`
/// wins over `vhost` within one query, as SRS's `srs_vhost_resolve`).
fn resolve_vhost(host: Option<&str>, queries: &[&str]) -> Result<String, StreamUrlError> {
    let mut chosen: Option<Cow<'_, str>> = None;
    for q in queries {
        for name in ["vhost", "domain"] {
            if let Some(v) = query_get(q, name)? {
                if !v.is_empty() {
                    chosen = Some(v);
                }
            }
        }
    }
    match chosen {
        Some(v) => normalize_host(&v),
        None => normalize_host(host.unwrap_or("")),
    }
}

/// Host (optionally with port, IPv6 bracketed or not) → vhost.
fn normalize_host(raw: &str) -> Result<String, StreamUrlError> {
    let s = raw.trim();
    if s.len() > MAX_HOST_LEN {
        return Err(StreamUrlError::BadHost("too long"));
    }
    if s.is_empty() {
        return Ok(DEFAULT_VHOST.to_owned());
    }
    if let Some(inner) = s.strip_prefix('[') {
        let (addr, rest) = inner.split_once(']').ok_or(StreamUrlError::BadHost("unclosed '['"))?;
        // Allow a zone id (fe80::1%eth0) inside brackets.
        let addr = addr.split_once('%').map_or(addr, |(a, _)| a);
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(StreamUrlError::BadHost("bad IPv6 address"));
        }
        if !rest.is_empty() {
            check_port(rest.strip_prefix(':').ok_or(StreamUrlError::BadHost("junk after ']'"))?)?;
        }
        return Ok(DEFAULT_VHOST.to_owned());
    }
    if s.parse::<IpAddr>().is_ok() {
        return Ok(DEFAULT_VHOST.to_owned());
    }
    let host = match s.rsplit_once(':') {
        Some((h, port)) => {
            if h.contains(':') {
                return Err(StreamUrlError::BadHost("bad IPv6 address"));
            }
            check_port(port)?;
            h
        }
        None => s,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.parse::<Ipv4Addr>().is_ok() {
        return Ok(DEFAULT_VHOST.to_owned());
    }
    if !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')) {
        return Err(StreamUrlError::BadHost("invalid character"));
    }
    if !host.contains('.') {
        return Ok(DEFAULT_VHOST.to_owned());
    }
    if host.starts_with('.') || host.contains("..") {
        return Err(StreamUrlError::BadHost("empty label"));
    }
    Ok(host.to_ascii_lowercase())
}

/// The port after a host: digits that fit in u16 (empty allowed, as Go's
/// `url.Parse` does for `host:`).
fn check_port(port: &str) -> Result<(), StreamUrlError> {
    if port.is_empty() {
        return Ok(());
    }
    if port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StreamUrlError::BadHost("bad port"));
    }
    match port.parse::<u32>() {
        Ok(p) if p <= u32::from(u16::MAX) => Ok(()),
        _ => Err(StreamUrlError::BadHost("bad port")),
    }
}

/// The first value of `name` in a raw `a=b&c=d` query, form-decoded.
fn query_get<'q>(query: &'q str, name: &str) -> Result<Option<Cow<'q, str>>, StreamUrlError> {
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == name {
            return percent_decode(v, true).map(Some);
        }
    }
    Ok(None)
}

/// Decodes `%XX` (and `+` as space when `plus` is set). Bad escapes and
/// non-UTF-8 results are errors.
fn percent_decode(s: &str, plus: bool) -> Result<Cow<'_, str>, StreamUrlError> {
    crate::percent::decode(s, plus).map_err(|e| match e {
        crate::percent::PercentError::BadEscape => StreamUrlError::BadUrl("bad percent escape"),
        crate::percent::PercentError::NotUtf8 => StreamUrlError::BadUrl("percent escape is not UTF-8"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = DEFAULT_VHOST;

    fn ok(key: &str) -> Result<String, StreamUrlError> {
        Ok(key.replace("D/", &format!("{D}/")))
    }

    /// One `#[test]` per RTMP case: (tcUrl, stream name) → key or error.
    macro_rules! rtmp {
        ($($name:ident: $tc:expr, $stream:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let got = from_rtmp($tc, $stream).map(|k| k.to_string());
                assert_eq!(got, $want, "tcUrl={:?} stream={:?}", $tc, $stream);
            }
        )*};
    }

    /// One `#[test]` per HTTP case: (host, path, query) → (key, ext) or error.
    macro_rules! http {
        ($($name:ident: $host:expr, $path:expr, $query:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let host: Option<&str> = $host;
                let got = from_http(host, $path, $query).map(|(k, e)| (k.to_string(), e.to_owned()));
                let want: Result<(&str, &str), StreamUrlError> = $want;
                let want = want.map(|(k, e)| (ok(k).unwrap(), e.to_owned()));
                assert_eq!(got, want, "host={:?} path={:?} query={:?}", host, $path, $query);
            }
        )*};
    }

    /// One `#[test]` per SRT case: (h=, r=) → key or error.
    macro_rules! srt {
        ($($name:ident: $host:expr, $res:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let host: Option<&str> = $host;
                let got = from_srt(host, $res).map(|k| k.to_string());
                assert_eq!(got, $want, "h={:?} r={:?}", host, $res);
            }
        )*};
    }

    use StreamUrlError::*;

    rtmp! {
        rtmp_default_vhost_localhost: "rtmp://localhost/live", "livestream" => ok("D/live/livestream");
        rtmp_default_vhost_ipv4_port: "rtmp://127.0.0.1:1935/live", "livestream" => ok("D/live/livestream");
        rtmp_domain: "rtmp://example.com/live", "livestream" => ok("example.com/live/livestream");
        rtmp_domain_port: "rtmp://example.com:1935/live", "livestream" => ok("example.com/live/livestream");
        rtmp_domain_lowercased: "rtmp://Example.COM/live", "s" => ok("example.com/live/s");
        rtmp_ipv6_bracketed: "rtmp://[::1]:1935/live", "s" => ok("D/live/s");
        rtmp_ipv6_bracketed_no_port: "rtmp://[2001:db8::1]/live", "s" => ok("D/live/s");
        rtmp_ipv6_zone: "rtmp://[fe80::1%25eth0]:1935/live", "s" => ok("D/live/s");
        rtmp_userinfo_dropped: "rtmp://user:pw@example.com/live", "s" => ok("example.com/live/s");
        rtmp_rtmps_scheme: "rtmps://example.com:443/live", "s" => ok("example.com/live/s");
        rtmp_nested_app: "rtmp://h/live/sub", "s" => ok("D/live/sub/s");
        rtmp_slash_in_stream_name: "rtmp://h/live", "sub/s" => ok("D/live/sub/s");
        rtmp_app_in_stream_name: "rtmp://h", "live/s" => ok("D/live/s");
        rtmp_trailing_slash_app: "rtmp://h/live/", "s" => ok("D/live/s");
        rtmp_double_slash_collapsed: "rtmp://h//live", "s" => ok("D/live/s");
        rtmp_stream_query_dropped: "rtmp://h/live", "s?token=x" => ok("D/live/s");
        rtmp_tcurl_query_dropped: "rtmp://h/live?token=x", "s" => ok("D/live/s");
        rtmp_tcurl_vhost_keeps_stream: "rtmp://1.2.3.4/live?vhost=example.com", "livestream" => ok("example.com/live/livestream");
        rtmp_stream_vhost: "rtmp://1.2.3.4/live", "s?vhost=example.com" => ok("example.com/live/s");
        rtmp_stream_domain: "rtmp://1.2.3.4/live", "s?domain=example.com&token=1" => ok("example.com/live/s");
        rtmp_domain_wins_over_vhost: "rtmp://h/live", "s?domain=a.com&vhost=b.com" => ok("a.com/live/s");
        rtmp_stream_query_wins_over_tcurl: "rtmp://h/live?vhost=a.com", "s?vhost=b.com" => ok("b.com/live/s");
        rtmp_vhost_query_ip_is_default: "rtmp://example.com/live?vhost=10.0.0.1", "s" => ok("D/live/s");
        rtmp_vhost_query_empty_ignored: "rtmp://example.com/live?vhost=", "s" => ok("example.com/live/s");
        rtmp_legacy_dots_vhost: "rtmp://1.2.3.4/live...vhost...example.com", "s" => ok("example.com/live/s");
        rtmp_percent_decoded: "rtmp://h/li%76e", "my%20stream" => ok("D/live/my stream");
        rtmp_percent_slash_splits: "rtmp://h/live%2Fsub", "s" => ok("D/live/sub/s");
        rtmp_unicode_stream: "rtmp://h/live", "直播" => ok("D/live/直播");
        rtmp_fragment_dropped: "rtmp://h/live#frag", "s" => ok("D/live/s");
        rtmp_host_no_dot: "rtmp://origin1:19351/live", "s" => ok("D/live/s");
        rtmp_host_trailing_dot: "rtmp://example.com./live", "s" => ok("example.com/live/s");
        rtmp_empty_port: "rtmp://example.com:/live", "s" => ok("example.com/live/s");

        rtmp_err_empty: "", "" => Err(BadUrl("tcUrl has no scheme"));
        rtmp_err_no_scheme: "example.com/live", "s" => Err(BadUrl("tcUrl has no scheme"));
        rtmp_err_only_slashes: "//", "s" => Err(BadUrl("tcUrl has no scheme"));
        rtmp_err_empty_scheme: "://h/live", "s" => Err(BadUrl("tcUrl has a bad scheme"));
        rtmp_err_junk_after_v6: "rtmp://[::1]x/live", "s" => Err(BadHost("junk after ']'"));
        rtmp_err_scheme_only: "rtmp://", "s" => Err(BadUrl("tcUrl has no host"));
        rtmp_err_empty_host_with_path: "rtmp:///live", "s" => Err(BadUrl("tcUrl has no host"));
        rtmp_err_only_host: "rtmp://example.com", "" => Err(MissingStream);
        rtmp_err_only_host_slash: "rtmp://example.com/", "s" => Err(MissingApp);
        rtmp_err_missing_stream: "rtmp://h/live", "" => Err(MissingStream);
        rtmp_err_stream_only_query: "rtmp://h/live", "?token=x" => Err(MissingStream);
        rtmp_err_stream_slash: "rtmp://h/live", "/" => Err(MissingStream);
        rtmp_err_dotdot: "rtmp://h/live/..", "s" => Err(BadUrl("dot segment in path"));
        rtmp_err_bad_escape: "rtmp://h/live", "s%zz" => Err(BadUrl("bad percent escape"));
        rtmp_err_truncated_escape: "rtmp://h/live", "s%4" => Err(BadUrl("bad percent escape"));
        rtmp_err_escape_not_utf8: "rtmp://h/live", "s%ff" => Err(BadUrl("percent escape is not UTF-8"));
        rtmp_err_control_char: "rtmp://h/live", "s\n" => Err(BadUrl("control character in path"));
        rtmp_err_unicode_host: "rtmp://ñandú.example/live", "s" => Err(BadHost("invalid character"));
        rtmp_err_bad_port: "rtmp://example.com:99999/live", "s" => Err(BadHost("bad port"));
        rtmp_err_alpha_port: "rtmp://example.com:rtmp/live", "s" => Err(BadHost("bad port"));
        rtmp_err_unbracketed_v6_port: "rtmp://fe80::1::2:1935/live", "s" => Err(BadHost("bad IPv6 address"));
        rtmp_err_unclosed_bracket: "rtmp://[::1/live", "s" => Err(BadHost("unclosed '['"));
        rtmp_err_bad_v6: "rtmp://[zz]/live", "s" => Err(BadHost("bad IPv6 address"));
        rtmp_err_empty_label: "rtmp://a..b/live", "s" => Err(BadHost("empty label"));
        rtmp_err_bad_vhost_query: "rtmp://h/live?vhost=bad%20host.com", "s" => Err(BadHost("invalid character"));
    }

    #[test]
    fn rtmp_err_very_long() {
        let long = "x".repeat(10 * MAX_KEY_LEN);
        assert_eq!(from_rtmp("rtmp://h/live", &long), Err(TooLong));
        let just_over = "x".repeat(MAX_KEY_LEN);
        assert_eq!(from_rtmp("rtmp://h/live", &just_over), Err(TooLong));
        let long_host = format!("rtmp://{}.com/live", "a".repeat(300));
        assert_eq!(from_rtmp(&long_host, "s"), Err(BadHost("too long")));
    }

    http! {
        http_flv_no_host: None, "/live/livestream.flv", "" => Ok(("D/live/livestream", ".flv"));
        http_flv_host_ip_port: Some("127.0.0.1:8080"), "/live/livestream.flv", "" => Ok(("D/live/livestream", ".flv"));
        http_host_without_port_a2: Some("example.com"), "/live/s.flv", "" => Ok(("example.com/live/s", ".flv"));
        http_host_with_port: Some("example.com:8080"), "/live/s.flv", "" => Ok(("example.com/live/s", ".flv"));
        http_host_v6: Some("[::1]:8080"), "/live/s.ts", "" => Ok(("D/live/s", ".ts"));
        http_host_v6_no_port: Some("[::1]"), "/live/s.ts", "" => Ok(("D/live/s", ".ts"));
        http_host_localhost: Some("localhost:8080"), "/live/s.m3u8", "" => Ok(("D/live/s", ".m3u8"));
        http_host_empty: Some(""), "/live/s.flv", "" => Ok(("D/live/s", ".flv"));
        http_no_ext: None, "/live/s", "" => Ok(("D/live/s", ""));
        http_nested_app: None, "/live/sub/s.flv", "" => Ok(("D/live/sub/s", ".flv"));
        http_dotted_stream_keeps_first_part: None, "/live/s.v2.flv", "" => Ok(("D/live/s.v2", ".flv"));
        http_dot_in_dir_not_ext: None, "/live.x/s", "" => Ok(("D/live.x/s", ""));
        http_query_dropped: None, "/live/s.flv", "token=1&x=2" => Ok(("D/live/s", ".flv"));
        http_query_form_whip: Some("example.com"), "/rtc/v1/whip/", "app=live&stream=s" => Ok(("example.com/live/s", ""));
        http_query_form_wins: None, "/x/y.flv", "app=live&stream=s" => Ok(("D/live/s", ".flv"));
        http_query_form_decoded: None, "/rtc/v1/whep/", "app=li%76e&stream=a+b" => Ok(("D/live/a b", ""));
        http_query_first_value_wins: None, "/rtc/v1/whep/", "app=live&app=other&stream=s" => Ok(("D/live/s", ""));
        http_query_nested_app: None, "/rtc/v1/whep/", "app=live/sub&stream=s" => Ok(("D/live/sub/s", ""));
        http_query_vhost: Some("1.2.3.4"), "/live/s.flv", "vhost=example.com" => Ok(("example.com/live/s", ".flv"));
        http_percent_path: None, "/live/my%20s.flv", "" => Ok(("D/live/my s", ".flv"));
        http_unicode_path: None, "/live/%E7%9B%B4%E6%92%AD.flv", "" => Ok(("D/live/直播", ".flv"));
        http_double_slash: None, "//live//s.flv", "" => Ok(("D/live/s", ".flv"));

        http_err_query_app_only: None, "/rtc/v1/whip/", "app=live" => Err(MissingStream);
        http_err_query_stream_only: None, "/rtc/v1/whip/", "stream=s" => Err(MissingApp);
        http_err_query_empty_values: None, "/live/s.flv", "app=&stream=" => Err(MissingStream);
        http_err_root: None, "/", "" => Err(MissingStream);
        http_err_empty: None, "", "" => Err(BadUrl("path does not start with '/'"));
        http_err_no_app: None, "/s.flv", "" => Err(MissingApp);
        http_err_dir_only: None, "/live/", "" => Err(MissingStream);
        http_err_only_ext: None, "/live/.flv", "" => Err(MissingStream);
        http_err_double_slash_only: None, "//", "" => Err(MissingStream);
        http_err_relative: None, "live/s.flv", "" => Err(BadUrl("path does not start with '/'"));
        http_err_query_in_path: None, "/live/s.flv?x=1", "" => Err(BadUrl("path carries a query or fragment"));
        http_err_escaped_ext: None, "/live/s.fl%76", "" => Err(BadUrl("percent-encoded extension"));
        http_err_dotdot: None, "/live/../s.flv", "" => Err(BadUrl("dot segment in path"));
        http_err_bad_escape: None, "/live/%G0.flv", "" => Err(BadUrl("bad percent escape"));
        http_err_bad_query_escape: None, "/rtc/v1/whip/", "app=live&stream=%" => Err(BadUrl("bad percent escape"));
        http_err_bad_host: Some("exa mple.com"), "/live/s.flv", "" => Err(BadHost("invalid character"));
        http_err_unicode_host: Some("例子.测试"), "/live/s.flv", "" => Err(BadHost("invalid character"));
        http_err_host_many_colons: Some("a:b:c"), "/live/s.flv", "" => Err(BadHost("bad IPv6 address"));
    }

    #[test]
    fn http_err_very_long() {
        let path = format!("/live/{}.flv", "s".repeat(MAX_KEY_LEN));
        assert_eq!(from_http(None, &path, "").map(|_| ()), Err(TooLong));
        let path = format!("/live/{}.flv", "s".repeat(100 * MAX_KEY_LEN));
        assert_eq!(from_http(None, &path, "").map(|_| ()), Err(TooLong));
    }

    srt! {
        srt_default_host: None, "live/livestream" => ok("D/live/livestream");
        srt_host_domain: Some("example.com"), "live/s" => ok("example.com/live/s");
        srt_host_with_port: Some("example.com:10080"), "live/s" => ok("example.com/live/s");
        srt_host_ip: Some("10.0.0.1"), "live/s" => ok("D/live/s");
        srt_host_v6_unbracketed: Some("::1"), "live/s" => ok("D/live/s");
        srt_nested_app: None, "live/sub/s" => ok("D/live/sub/s");
        srt_leading_slash: None, "/live/s" => ok("D/live/s");
        srt_query_dropped: None, "live/s?token=1" => ok("D/live/s");
        srt_query_vhost: None, "live/s?vhost=example.com" => ok("example.com/live/s");
        srt_err_empty: None, "" => Err(MissingStream);
        srt_err_no_app: None, "livestream" => Err(MissingApp);
        srt_err_trailing_slash: None, "live/" => Err(MissingStream);
        srt_err_bad_host: Some("bad/host"), "live/s" => Err(BadHost("invalid character"));
    }

    #[test]
    fn same_key_across_protocols() {
        let rtmp = from_rtmp("rtmp://example.com:1935/live", "s?token=1").unwrap();
        let (http, _) = from_http(Some("example.com"), "/live/s.flv", "").unwrap();
        let (hls, _) = from_http(Some("example.com:8080"), "/live/s.m3u8", "").unwrap();
        let (whip, _) = from_http(Some("example.com"), "/rtc/v1/whip/", "app=live&stream=s").unwrap();
        let srt = from_srt(Some("example.com"), "live/s").unwrap();
        for k in [&http, &hls, &whip, &srt] {
            assert_eq!(k, &rtmp);
        }
        let rtmp = from_rtmp("rtmp://127.0.0.1/live", "s").unwrap();
        let (http, _) = from_http(None, "/live/s.flv", "").unwrap();
        let srt = from_srt(None, "live/s").unwrap();
        assert_eq!(rtmp, http);
        assert_eq!(rtmp, srt);
        assert_eq!(rtmp.as_str(), "__defaultVhost__/live/s");
    }

    #[test]
    fn accessors() {
        let k = from_rtmp("rtmp://example.com/live/sub", "s").unwrap();
        assert_eq!((k.vhost(), k.app(), k.stream()), ("example.com", "live/sub", "s"));
        let k = StreamUrl::new_unchecked("__defaultVhost__/live/livestream".into());
        assert_eq!((k.vhost(), k.app(), k.stream()), (D, "live", "livestream"));
        // Arbitrary strings never panic.
        for s in ["", "/", "//", "a", "a/", "a/b", "/a/b/c/", "é/é"] {
            let k = StreamUrl::new_unchecked(s.into());
            let _ = (k.vhost(), k.app(), k.stream(), k.to_string());
        }
        let k = StreamUrl::new_unchecked("v/s".into());
        assert_eq!((k.vhost(), k.app(), k.stream()), ("v", "", "s"));
    }

    #[test]
    fn errors_display() {
        assert_eq!(MissingApp.to_string(), "stream url: missing app");
        assert_eq!(MissingStream.to_string(), "stream url: missing stream");
        assert_eq!(BadUrl("x").to_string(), "stream url: x");
        assert_eq!(BadHost("y").to_string(), "stream url: bad host: y");
    }

    /// Cheap deterministic fuzz: no input panics, every Ok key re-splits
    /// into non-empty parts.
    #[test]
    fn no_panic_on_garbage() {
        let alphabet: &[&str] = &[
            "/", "?", "&", "=", "%", "%2", "%2F", "%ff", ".", "..", ":", "[", "]", "::1", "a", "é", "vhost", "domain",
            "app", "stream", "rtmp://", "#", " ", "\0", "+", "@", "1.2",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let mut parts = [String::new(), String::new(), String::new()];
            for p in parts.iter_mut() {
                for _ in 0..(next() % 8) {
                    p.push_str(alphabet[(next() % alphabet.len() as u64) as usize]);
                }
            }
            let [a, b, c] = &parts;
            let check = |k: &StreamUrl| {
                assert!(!k.vhost().is_empty() && !k.app().is_empty() && !k.stream().is_empty());
                assert!(k.as_str().len() <= MAX_KEY_LEN);
            };
            if let Ok(k) = from_rtmp(a, b) {
                check(&k);
            }
            if let Ok((k, _)) = from_http(Some(a), b, c) {
                check(&k);
            }
            if let Ok(k) = from_srt(Some(a), b) {
                check(&k);
            }
        }
    }
}
