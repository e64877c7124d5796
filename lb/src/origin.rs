//! Origins (SRS media servers) and their endpoint strings.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// `"<server_id>-<service_id>-<pid>"` (B§5.1 `ID()`). An SRS restart gets a
/// new service id and pid, hence a new identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OriginId(String);

impl OriginId {
    /// Wraps an id read back from Redis or JSON.
    pub fn new(s: String) -> Self {
        OriginId(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OriginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `SRSServer` JSON of B§5.1, the Redis value format shared with SRS Go
/// proxies. Every field is `omitempty` and optional when decoding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rtmp: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub srt: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rtc: Vec<String>,
    /// RFC 3339 time of the last heartbeat; informational only (liveness is
    /// tracked with injected time, or by the Redis key TTL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_at: Option<String>,
}

/// The services an origin lists endpoints for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Rtmp,
    Http,
    Api,
    Srt,
    Rtc,
}

impl Service {
    /// The JSON field name.
    pub fn name(self) -> &'static str {
        match self {
            Service::Rtmp => "rtmp",
            Service::Http => "http",
            Service::Api => "api",
            Service::Srt => "srt",
            Service::Rtc => "rtc",
        }
    }

    /// The transport the proxy uses toward this service.
    fn udp(self) -> bool {
        matches!(self, Service::Srt | Service::Rtc)
    }
}

impl Origin {
    /// `"<server_id>-<service_id>-<pid>"`.
    pub fn id(&self) -> OriginId {
        OriginId(format!("{}-{}-{}", self.server_id, self.service_id, self.pid))
    }

    /// The endpoint list of a service.
    pub fn endpoints(&self, service: Service) -> &[String] {
        match service {
            Service::Rtmp => &self.rtmp,
            Service::Http => &self.http,
            Service::Api => &self.api,
            Service::Srt => &self.srt,
            Service::Rtc => &self.rtc,
        }
    }

    /// The port of a service: the first entry whose protocol fits (entries
    /// marked `udp://` are skipped for RTMP/HTTP/API, `tcp://` for SRT/RTC,
    /// so RTC-over-TCP never shadows RTC UDP). `None` if none is listed.
    pub fn port(&self, service: Service) -> Result<Option<u16>, EndpointError> {
        for s in self.endpoints(service) {
            let ep = parse_endpoint(s)?;
            let wrong = if service.udp() { "tcp" } else { "udp" };
            if ep.proto.as_deref().is_some_and(|p| p.eq_ignore_ascii_case(wrong)) {
                continue;
            }
            return Ok(Some(ep.port));
        }
        Ok(None)
    }

    /// The origin's address for a service: `ip` (which must be an IP
    /// address; a host name gives [`EndpointError::NotAnIp`]) with the
    /// service's port. Only the port of an endpoint is used (B§6.2).
    pub fn addr(&self, service: Service) -> Result<Option<SocketAddr>, EndpointError> {
        let Some(port) = self.port(service)? else {
            return Ok(None);
        };
        Ok(Some(SocketAddr::new(self.ip_addr()?, port)))
    }

    /// `ip` as an address.
    pub fn ip_addr(&self) -> Result<IpAddr, EndpointError> {
        let ip = self.ip.trim();
        let ip = ip.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(ip);
        ip.parse().map_err(|_| EndpointError::NotAnIp { ip: self.ip.clone() })
    }

    /// The RTMP address (required for every origin).
    pub fn rtmp_addr(&self) -> Result<SocketAddr, EndpointError> {
        self.addr(Service::Rtmp)?.ok_or(EndpointError::Missing { service: "rtmp" })
    }

    pub fn http_addr(&self) -> Result<Option<SocketAddr>, EndpointError> {
        self.addr(Service::Http)
    }

    pub fn api_addr(&self) -> Result<Option<SocketAddr>, EndpointError> {
        self.addr(Service::Api)
    }

    pub fn srt_addr(&self) -> Result<Option<SocketAddr>, EndpointError> {
        self.addr(Service::Srt)
    }

    pub fn rtc_addr(&self) -> Result<Option<SocketAddr>, EndpointError> {
        self.addr(Service::Rtc)
    }
}

/// One line in the log style of SRS Go (`SRS ip=.., id=.., ...`), for the
/// `Register SRS media server, <..>` line the E2E scripts grep.
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SRS ip={}, id={}, pid={}, server={}, service={}",
            self.ip,
            self.id(),
            self.pid,
            self.server_id,
            self.service_id
        )?;
        if !self.device_id.is_empty() {
            write!(f, ", device={}", self.device_id)?;
        }
        for service in [Service::Rtmp, Service::Http, Service::Api, Service::Srt, Service::Rtc] {
            let list = self.endpoints(service);
            if !list.is_empty() {
                write!(f, ", {}=[{}]", service.name(), list.join(" "))?;
            }
        }
        if let Some(at) = &self.update_at {
            write!(f, ", update={at}")?;
        }
        Ok(())
    }
}

/// A parsed endpoint string. Only `port` is used to reach an origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `tcp`/`udp` when written; `None` for a bare port or `ip:port`.
    pub proto: Option<String>,
    /// The address when one is written and is an IP (`None` for an empty
    /// host or a host name).
    pub ip: Option<IpAddr>,
    pub port: u16,
}

/// Why an endpoint (or an origin's address) is unusable.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointError {
    /// The endpoint string is empty.
    Empty,
    /// The string does not have one of the accepted shapes.
    Malformed { value: String, reason: &'static str },
    /// The port is not a number in 1..=65535.
    BadPort { value: String, reason: &'static str },
    /// The origin lists no endpoint for a required service.
    Missing { service: &'static str },
    /// The origin's `ip` is not an IP address (a host name would need DNS).
    NotAnIp { ip: String },
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointError::Empty => f.write_str("empty endpoint"),
            EndpointError::Malformed { value, reason } => {
                write!(f, "invalid endpoint {value:?}: {reason}")
            }
            EndpointError::BadPort { value, reason } => {
                write!(f, "invalid endpoint {value:?}: port {reason}")
            }
            EndpointError::Missing { service } => write!(f, "no {service} endpoint"),
            EndpointError::NotAnIp { ip } => write!(f, "origin ip {ip:?} is not an IP address"),
        }
    }
}

impl std::error::Error for EndpointError {}

/// B§6.2 LATEST endpoint parsing, plus `ip:port` and `[v6]:port` (what an
/// SRS `listen 0.0.0.0:1935;` reports):
///
/// | input | proto | ip | port |
/// |---|---|---|---|
/// | `1935` | – | – | 1935 |
/// | `tcp://:1935` | tcp | – | 1935 |
/// | `tcp://0.0.0.0:1935` | tcp | 0.0.0.0 | 1935 |
/// | `udp://[::]:8000` | udp | :: | 8000 |
/// | `udp://8000` | udp | – | 8000 |
/// | `udp:0.0.0.0:8000` (legacy) | udp | 0.0.0.0 | 8000 |
/// | `0.0.0.0:1935`, `[::]:1935` | – | the ip | 1935 |
///
/// Ports outside 1..=65535 are an error (SRS Go wraps them silently).
pub fn parse_endpoint(s: &str) -> Result<Endpoint, EndpointError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(EndpointError::Empty);
    }
    let malformed = |reason| EndpointError::Malformed { value: s.to_owned(), reason };
    if let Some((proto, rest)) = s.split_once("://") {
        let proto = check_proto(proto).ok_or_else(|| malformed("bad protocol"))?;
        if !rest.contains(':') {
            // proto://port
            return Ok(Endpoint { proto: Some(proto), ip: None, port: parse_port(s, rest)? });
        }
        let (ip, port) = split_host_port(s, rest)?;
        return Ok(Endpoint { proto: Some(proto), ip, port });
    }
    if s.starts_with('[') {
        let (ip, port) = split_host_port(s, s)?;
        return Ok(Endpoint { proto: None, ip, port });
    }
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [port] => Ok(Endpoint { proto: None, ip: None, port: parse_port(s, port)? }),
        [host, port] => Ok(Endpoint { proto: None, ip: parse_host(s, host)?, port: parse_port(s, port)? }),
        [proto, host, port] => {
            let proto = check_proto(proto).ok_or_else(|| malformed("bad protocol"))?;
            Ok(Endpoint { proto: Some(proto), ip: parse_host(s, host)?, port: parse_port(s, port)? })
        }
        _ => Err(malformed("too many ':'")),
    }
}

fn check_proto(p: &str) -> Option<String> {
    let ok = !p.is_empty() && p.len() <= 16 && p.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| p.to_ascii_lowercase())
}

/// Go's `net.SplitHostPort` shape: `host:port`, `[v6]:port`, `:port`.
fn split_host_port(whole: &str, s: &str) -> Result<(Option<IpAddr>, u16), EndpointError> {
    let malformed = |reason| EndpointError::Malformed { value: whole.to_owned(), reason };
    if let Some(inner) = s.strip_prefix('[') {
        let (host, rest) = inner.split_once(']').ok_or_else(|| malformed("missing ']'"))?;
        let port = rest.strip_prefix(':').ok_or_else(|| malformed("missing port"))?;
        let ip: IpAddr = host.parse().map_err(|_| malformed("bad IPv6 address"))?;
        if !ip.is_ipv6() {
            return Err(malformed("bad IPv6 address"));
        }
        return Ok((Some(ip), parse_port(whole, port)?));
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(|| malformed("missing port"))?;
    if host.contains(':') {
        return Err(malformed("too many ':'"));
    }
    Ok((parse_host(whole, host)?, parse_port(whole, port)?))
}

/// An IP, an empty host (any address) or a host name (kept as `None`).
fn parse_host(whole: &str, host: &str) -> Result<Option<IpAddr>, EndpointError> {
    if host.is_empty() {
        return Ok(None);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Some(ip));
    }
    if is_host_name(host) {
        return Ok(None);
    }
    Err(EndpointError::Malformed { value: whole.to_owned(), reason: "bad host" })
}

fn parse_port(whole: &str, port: &str) -> Result<u16, EndpointError> {
    let bad = |reason| EndpointError::BadPort { value: whole.to_owned(), reason };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("is not a number"));
    }
    match port.parse::<u64>() {
        Ok(p @ 1..=65535) => Ok(p as u16),
        _ => Err(bad("is out of range 1..=65535")),
    }
}

/// A DNS-style host name: labels of letters, digits, `-` and `_`.
pub(crate) fn is_host_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The debugging backend of B§5.4 (`PROXY_DEFAULT_BACKEND_*`): `ip`, one
/// RTMP endpoint, the optional ones when given and non-empty,
/// `server_id = "default-<id7>"`, `service_id = <id7>`, `pid` = the proxy's.
/// The wiring re-registers it every 30 s.
#[allow(clippy::too_many_arguments)]
pub fn default_backend(
    ip: &str,
    rtmp: &str,
    http: Option<&str>,
    api: Option<&str>,
    rtc: Option<&str>,
    srt: Option<&str>,
    proxy_pid: u32,
    id7: &str,
) -> Origin {
    let list = |v: Option<&str>| -> Vec<String> {
        v.filter(|s| !s.is_empty()).map(|s| vec![s.to_owned()]).unwrap_or_default()
    };
    Origin {
        ip: ip.to_owned(),
        device_id: String::new(),
        server_id: format!("default-{id7}"),
        service_id: id7.to_owned(),
        pid: proxy_pid.to_string(),
        rtmp: list(Some(rtmp)),
        http: list(http),
        api: list(api),
        srt: list(srt),
        rtc: list(rtc),
        update_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(proto: Option<&str>, ip: Option<&str>, port: u16) -> Result<Endpoint, EndpointError> {
        Ok(Endpoint { proto: proto.map(str::to_owned), ip: ip.map(|s| s.parse().unwrap()), port })
    }

    fn malformed(v: &str, reason: &'static str) -> Result<Endpoint, EndpointError> {
        Err(EndpointError::Malformed { value: v.to_owned(), reason })
    }

    fn bad_port(v: &str, reason: &'static str) -> Result<Endpoint, EndpointError> {
        Err(EndpointError::BadPort { value: v.to_owned(), reason })
    }

    /// One `#[test]` per endpoint string.
    macro_rules! endpoint {
        ($($name:ident: $input:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(parse_endpoint($input), $want, "input {:?}", $input);
            }
        )*};
    }

    const NAN: &str = "is not a number";
    const RANGE: &str = "is out of range 1..=65535";

    endpoint! {
        ep_bare_port: "1935" => ep(None, None, 1935);
        ep_bare_port_trimmed: " 19351 " => ep(None, None, 19351);
        ep_tcp_empty_host: "tcp://:1935" => ep(Some("tcp"), None, 1935);
        ep_tcp_any_v4: "tcp://0.0.0.0:1935" => ep(Some("tcp"), Some("0.0.0.0"), 1935);
        ep_tcp_v4: "tcp://192.168.3.10:1935" => ep(Some("tcp"), Some("192.168.3.10"), 1935);
        ep_udp_any_v6: "udp://[::]:8000" => ep(Some("udp"), Some("::"), 8000);
        ep_udp_v6: "udp://[2001:db8::1]:10080" => ep(Some("udp"), Some("2001:db8::1"), 10080);
        ep_udp_port_only: "udp://8000" => ep(Some("udp"), None, 8000);
        ep_srs_srt: "udp://0.0.0.0:10081" => ep(Some("udp"), Some("0.0.0.0"), 10081);
        ep_proto_uppercase: "UDP://0.0.0.0:8001" => ep(Some("udp"), Some("0.0.0.0"), 8001);
        ep_tcp_host_name: "tcp://origin.local:1935" => ep(Some("tcp"), None, 1935);
        ep_legacy: "udp:0.0.0.0:8001" => ep(Some("udp"), Some("0.0.0.0"), 8001);
        ep_legacy_empty_ip: "tcp::1935" => ep(Some("tcp"), None, 1935);
        ep_ip_port: "0.0.0.0:1935" => ep(None, Some("0.0.0.0"), 1935);
        ep_v6_port: "[::]:1935" => ep(None, Some("::"), 1935);
        ep_colon_port: ":1935" => ep(None, None, 1935);
        ep_max_port: "65535" => ep(None, None, 65535);

        ep_err_empty: "" => Err(EndpointError::Empty);
        ep_err_blank: "   " => Err(EndpointError::Empty);
        ep_err_zero: "0" => bad_port("0", RANGE);
        ep_err_too_big: "65536" => bad_port("65536", RANGE);
        ep_err_huge: "99999999999999999999999" => bad_port("99999999999999999999999", RANGE);
        ep_err_udp_too_big: "udp://0.0.0.0:70000" => bad_port("udp://0.0.0.0:70000", RANGE);
        ep_err_negative: "-1" => bad_port("-1", NAN);
        ep_err_plus: "+1935" => bad_port("+1935", NAN);
        ep_err_alpha: "rtmp" => bad_port("rtmp", NAN);
        ep_err_tcp_no_port: "tcp://" => bad_port("tcp://", NAN);
        ep_err_tcp_empty_port: "tcp://0.0.0.0:" => bad_port("tcp://0.0.0.0:", NAN);
        ep_err_v6_unbracketed: "udp://:::8000" => malformed("udp://:::8000", "too many ':'");
        ep_err_v6_no_port: "udp://[::]" => malformed("udp://[::]", "missing port");
        ep_err_v6_unclosed: "udp://[::1:8000" => malformed("udp://[::1:8000", "missing ']'");
        ep_err_v6_bad: "udp://[1.2.3.4]:8000" => malformed("udp://[1.2.3.4]:8000", "bad IPv6 address");
        ep_err_no_proto: "://1935" => malformed("://1935", "bad protocol");
        ep_err_bad_proto: "t p://1935" => malformed("t p://1935", "bad protocol");
        ep_err_four_parts: "a:b:c:d" => malformed("a:b:c:d", "too many ':'");
        ep_err_bad_host: "tcp://a b:1935" => malformed("tcp://a b:1935", "bad host");
    }

    #[test]
    fn endpoint_error_display() {
        assert_eq!(
            parse_endpoint("65536").unwrap_err().to_string(),
            "invalid endpoint \"65536\": port is out of range 1..=65535"
        );
        assert_eq!(parse_endpoint("a:b:c:d").unwrap_err().to_string(), "invalid endpoint \"a:b:c:d\": too many ':'");
        assert_eq!(EndpointError::Empty.to_string(), "empty endpoint");
    }

    fn srs_origin() -> Origin {
        Origin {
            ip: "127.0.0.1".into(),
            device_id: "origin1".into(),
            server_id: "vid-3ax2y18".into(),
            service_id: "9d6628mo".into(),
            pid: "31283".into(),
            rtmp: vec!["19351".into()],
            http: vec!["8081".into()],
            api: vec!["19851".into()],
            srt: vec!["udp://0.0.0.0:10081".into()],
            rtc: vec!["tcp://0.0.0.0:8000".into(), "udp://0.0.0.0:8001".into()],
            update_at: None,
        }
    }

    #[test]
    fn origin_addresses() {
        let o = srs_origin();
        assert_eq!(o.id().as_str(), "vid-3ax2y18-9d6628mo-31283");
        assert_eq!(o.rtmp_addr(), Ok("127.0.0.1:19351".parse().unwrap()));
        assert_eq!(o.http_addr(), Ok(Some("127.0.0.1:8081".parse().unwrap())));
        assert_eq!(o.api_addr(), Ok(Some("127.0.0.1:19851".parse().unwrap())));
        assert_eq!(o.srt_addr(), Ok(Some("127.0.0.1:10081".parse().unwrap())));
        // The RTC-over-TCP entry does not shadow the UDP one.
        assert_eq!(o.rtc_addr(), Ok(Some("127.0.0.1:8001".parse().unwrap())));

        let v6 = Origin { ip: "::1".into(), ..srs_origin() };
        assert_eq!(v6.rtmp_addr(), Ok("[::1]:19351".parse().unwrap()));

        let none = Origin { rtmp: vec![], http: vec![], ..srs_origin() };
        assert_eq!(none.rtmp_addr(), Err(EndpointError::Missing { service: "rtmp" }));
        assert_eq!(none.http_addr(), Ok(None));

        let host = Origin { ip: "origin.example.com".into(), ..srs_origin() };
        assert!(matches!(host.rtmp_addr(), Err(EndpointError::NotAnIp { .. })));
        assert_eq!(host.port(Service::Rtmp), Ok(Some(19351)));

        let bad = Origin { http: vec!["x".into()], ..srs_origin() };
        assert!(matches!(bad.http_addr(), Err(EndpointError::BadPort { .. })));
    }

    #[test]
    fn origin_json_matches_go() {
        let json = r#"{"ip":"10.0.0.1","device_id":"origin1","server_id":"vid-xxxxxxx","service_id":"yyyyyyyy","pid":"12345",
 "rtmp":["19351"],"http":["8081"],"api":["19851"],"srt":["udp://0.0.0.0:10081"],"rtc":["udp://0.0.0.0:8001"],
 "update_at":"2024-10-15T19:00:07.123456+08:00"}"#;
        let o: Origin = serde_json::from_str(json).unwrap();
        assert_eq!(o.id().as_str(), "vid-xxxxxxx-yyyyyyyy-12345");
        assert_eq!(o.update_at.as_deref(), Some("2024-10-15T19:00:07.123456+08:00"));
        let back: Origin = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
        assert_eq!(back, o);

        // omitempty: empty fields are not written; missing ones decode.
        let minimal = Origin { ip: "10.0.0.1".into(), rtmp: vec!["1935".into()], ..Origin::default() };
        assert_eq!(serde_json::to_string(&minimal).unwrap(), r#"{"ip":"10.0.0.1","rtmp":["1935"]}"#);
        let o: Origin = serde_json::from_str("{}").unwrap();
        assert_eq!(o, Origin::default());
        // Unknown fields (newer Go versions) are ignored.
        let o: Origin = serde_json::from_str(r#"{"ip":"a","extra":{"x":1}}"#).unwrap();
        assert_eq!(o.ip, "a");
    }

    #[test]
    fn origin_display_like_go() {
        let o = srs_origin();
        assert_eq!(
            o.to_string(),
            "SRS ip=127.0.0.1, id=vid-3ax2y18-9d6628mo-31283, pid=31283, server=vid-3ax2y18, \
             service=9d6628mo, device=origin1, rtmp=[19351], http=[8081], api=[19851], \
             srt=[udp://0.0.0.0:10081], rtc=[tcp://0.0.0.0:8000 udp://0.0.0.0:8001]"
        );
    }

    #[test]
    fn default_backend_as_b54() {
        let o = default_backend("127.0.0.1", "1935", None, Some("1985"), Some("8000"), Some(""), 4242, "abc1234");
        assert_eq!(o.server_id, "default-abc1234");
        assert_eq!(o.service_id, "abc1234");
        assert_eq!(o.pid, "4242");
        assert_eq!(o.id().as_str(), "default-abc1234-abc1234-4242");
        assert_eq!(o.rtmp, vec!["1935"]);
        assert!(o.http.is_empty() && o.srt.is_empty());
        assert_eq!(o.api, vec!["1985"]);
        assert_eq!(o.rtc, vec!["8000"]);
        assert_eq!(o.rtc_addr(), Ok(Some("127.0.0.1:8000".parse().unwrap())));
    }

    #[test]
    fn host_names() {
        for ok in ["a", "origin1", "a.b.c", "x-y_z.example.com", "example.com."] {
            assert!(is_host_name(ok), "{ok}");
        }
        for bad in ["", ".", "a..b", ".a", "a b", "ñ.com", "a/b", "a:b"] {
            assert!(!is_host_name(bad), "{bad}");
        }
        assert!(!is_host_name(&"a".repeat(64)));
    }
}
