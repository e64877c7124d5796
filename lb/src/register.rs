//! The body of `POST /api/v1/srs/register` (B§6.1), as SRS 5+ origins send
//! it with `heartbeat { ports on; }` (B§6.3).

use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;

use crate::origin::{is_host_name, parse_endpoint, EndpointError, Origin};

/// The register body. Unknown fields (`summaries`...) are ignored; `pid`
/// must be a JSON string, as SRS sends it (a number fails decoding, as in
/// SRS Go).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RegisterRequest {
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub device_id: Option<String>,
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub pid: Option<String>,
    #[serde(default)]
    pub rtmp: Option<Vec<String>>,
    #[serde(default)]
    pub http: Option<Vec<String>>,
    #[serde(default)]
    pub api: Option<Vec<String>>,
    #[serde(default)]
    pub srt: Option<Vec<String>>,
    #[serde(default)]
    pub rtc: Option<Vec<String>>,
}

/// Why a registration is refused. `Display` gives the message for the
/// `{"code":..,"message":..}` error body.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterError {
    /// The body is not the expected JSON.
    Json(String),
    /// A required field is missing or empty: `"empty <field>"`.
    Empty(&'static str),
    /// `ip` is neither an IP address nor a host name.
    BadIp { value: String },
    /// An endpoint does not parse.
    BadEndpoint { field: &'static str, value: String, reason: EndpointError },
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::Json(e) => write!(f, "invalid json: {e}"),
            RegisterError::Empty(field) => write!(f, "empty {field}"),
            RegisterError::BadIp { value } => {
                write!(f, "invalid ip {value:?}: not an IP address or host name")
            }
            RegisterError::BadEndpoint { field, value, reason } => write!(f, "invalid {field} {value:?}: {reason}"),
        }
    }
}

impl std::error::Error for RegisterError {}

impl RegisterRequest {
    /// Decodes a body. Like Go's `json.Decoder`, an empty body or `null`
    /// decodes to an empty request (which then fails validation), and bytes
    /// after the first JSON value are ignored.
    pub fn parse(body: &[u8]) -> Result<Self, RegisterError> {
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            None => return Ok(Self::default()),
            // serde would also take a struct from an array; Go does not.
            Some(b'{' | b'n') => {}
            Some(_) => return Err(RegisterError::Json("expected a JSON object".into())),
        }
        let mut values = serde_json::Deserializer::from_slice(body).into_iter::<Option<Self>>();
        match values.next() {
            Some(Ok(req)) => Ok(req.unwrap_or_default()),
            Some(Err(e)) => Err(RegisterError::Json(e.to_string())),
            None => Ok(Self::default()),
        }
    }

    /// Validates, in SRS Go's order (`empty ip`, `empty server`,
    /// `empty service`, `empty pid`, `empty rtmp`), then checks that `ip` is
    /// an IP address or host name and that `rtmp[0]` parses as an endpoint.
    /// `update_at` is left unset for the caller.
    pub fn into_origin(self) -> Result<Origin, RegisterError> {
        fn required(v: Option<String>, field: &'static str) -> Result<String, RegisterError> {
            v.filter(|s| !s.is_empty()).ok_or(RegisterError::Empty(field))
        }
        let ip = required(self.ip, "ip")?;
        let server_id = required(self.server, "server")?;
        let service_id = required(self.service, "service")?;
        let pid = required(self.pid, "pid")?;
        let rtmp = self.rtmp.filter(|v| !v.is_empty()).ok_or(RegisterError::Empty("rtmp"))?;
        let bare = ip.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(&ip);
        if bare.parse::<IpAddr>().is_err() && !is_host_name(&ip) {
            return Err(RegisterError::BadIp { value: ip });
        }
        if let Err(reason) = parse_endpoint(&rtmp[0]) {
            return Err(RegisterError::BadEndpoint { field: "rtmp", value: rtmp[0].clone(), reason });
        }
        Ok(Origin {
            ip,
            device_id: self.device_id.unwrap_or_default(),
            server_id,
            service_id,
            pid,
            rtmp,
            http: self.http.unwrap_or_default(),
            api: self.api.unwrap_or_default(),
            srt: self.srt.unwrap_or_default(),
            rtc: self.rtc.unwrap_or_default(),
            update_at: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured on the wire from an SRS 5+ origin (shared/peers.md).
    const SRS_BODY: &str = r#"{"device_id":"origin1","ip":"127.0.0.1","server":"vid-3ax2y18","service":"9d6628mo","pid":"31283","rtmp":["19351"],"http":["8081"],"api":["19851"],"srt":["udp://0.0.0.0:10081"],"rtc":["udp://0.0.0.0:8001"]}"#;

    #[test]
    fn real_srs_heartbeat_registers_unchanged() {
        let o = RegisterRequest::parse(SRS_BODY.as_bytes()).unwrap().into_origin().unwrap();
        assert_eq!(o.id().as_str(), "vid-3ax2y18-9d6628mo-31283");
        assert_eq!(o.device_id, "origin1");
        assert_eq!(o.ip, "127.0.0.1");
        assert_eq!(o.rtmp, vec!["19351"]);
        assert_eq!(o.http, vec!["8081"]);
        assert_eq!(o.api, vec!["19851"]);
        assert_eq!(o.srt, vec!["udp://0.0.0.0:10081"]);
        assert_eq!(o.rtc, vec!["udp://0.0.0.0:8001"]);
        assert_eq!(o.rtmp_addr(), Ok("127.0.0.1:19351".parse().unwrap()));
        assert_eq!(o.srt_addr(), Ok(Some("127.0.0.1:10081".parse().unwrap())));
        assert_eq!(o.rtc_addr(), Ok(Some("127.0.0.1:8001".parse().unwrap())));
        assert!(o.to_string().contains("device=origin1"));
    }

    #[test]
    fn unknown_fields_and_trailing_bytes_ignored() {
        let body = r#"{"ip":"10.0.0.1","server":"s","service":"v","pid":"1","rtmp":["1935"],
            "summaries":{"data":{"ok":true}},"future":[1,2]} trailing"#;
        let o = RegisterRequest::parse(body.as_bytes()).unwrap().into_origin().unwrap();
        assert_eq!(o.id().as_str(), "s-v-1");
        assert!(o.http.is_empty());
    }

    fn err(body: &str) -> String {
        match RegisterRequest::parse(body.as_bytes()) {
            Err(e) => e.to_string(),
            Ok(req) => req.into_origin().unwrap_err().to_string(),
        }
    }

    /// One `#[test]` per invalid body, checking the exact message.
    macro_rules! reject {
        ($($name:ident: $body:expr => $msg:expr;)*) => {$(
            #[test]
            fn $name() {
                let got = err($body);
                assert!(got.starts_with($msg), "body {:?}: got {got:?}, want {:?}", $body, $msg);
            }
        )*};
    }

    reject! {
        // Validation order: each case has every earlier field right.
        reg_empty_body: "" => "empty ip";
        reg_blank_body: " \r\n" => "empty ip";
        reg_null_body: "null" => "empty ip";
        reg_empty_object: "{}" => "empty ip";
        reg_empty_ip_string: r#"{"ip":"","server":"s","service":"v","pid":"1","rtmp":["1935"]}"# => "empty ip";
        reg_null_ip: r#"{"ip":null,"server":"s","service":"v","pid":"1","rtmp":["1935"]}"# => "empty ip";
        reg_empty_server: r#"{"ip":"1.2.3.4","service":"v","pid":"1","rtmp":["1935"]}"# => "empty server";
        reg_empty_service: r#"{"ip":"1.2.3.4","server":"s","pid":"1","rtmp":["1935"]}"# => "empty service";
        reg_empty_pid: r#"{"ip":"1.2.3.4","server":"s","service":"v","rtmp":["1935"]}"# => "empty pid";
        reg_empty_rtmp_missing: r#"{"ip":"1.2.3.4","server":"s","service":"v","pid":"1"}"# => "empty rtmp";
        reg_empty_rtmp_list: r#"{"ip":"1.2.3.4","server":"s","service":"v","pid":"1","rtmp":[]}"# => "empty rtmp";
        // An SRS origin without `heartbeat.ports on`.
        reg_srs_without_ports: r#"{"device_id":"origin1","ip":"127.0.0.1","server":"vid-3ax2y18","service":"9d6628mo","pid":"31283"}"# => "empty rtmp";
        reg_first_error_wins: r#"{"server":"","pid":""}"# => "empty ip";
        reg_bad_ip: r#"{"ip":"not an ip","server":"s","service":"v","pid":"1","rtmp":["1935"]}"# => "invalid ip \"not an ip\"";
        reg_bad_rtmp: r#"{"ip":"1.2.3.4","server":"s","service":"v","pid":"1","rtmp":["abc"]}"# => "invalid rtmp \"abc\": invalid endpoint \"abc\": port is not a number";
        reg_rtmp_out_of_range: r#"{"ip":"1.2.3.4","server":"s","service":"v","pid":"1","rtmp":["70000"]}"# => "invalid rtmp \"70000\"";
        reg_pid_number: r#"{"ip":"1.2.3.4","server":"s","service":"v","pid":31283,"rtmp":["1935"]}"# => "invalid json: invalid type: integer";
        reg_rtmp_not_list: r#"{"ip":"1.2.3.4","server":"s","service":"v","pid":"1","rtmp":"1935"}"# => "invalid json:";
        reg_array_body: "[]" => "invalid json: expected a JSON object";
        reg_array_of_fields: r#"["1.2.3.4","d","s","v","1",["1935"]]"# => "invalid json: expected a JSON object";
        reg_string_body: r#""x""# => "invalid json: expected a JSON object";
        reg_bad_null: "nul" => "invalid json:";
        reg_garbage: "{not json" => "invalid json:";
        reg_truncated: r#"{"ip":"1.2.3.4""# => "invalid json:";
    }

    #[test]
    fn ip_forms_accepted() {
        for ip in ["10.0.0.1", "::1", "[::1]", "origin1", "origin.example.com"] {
            let req = RegisterRequest {
                ip: Some(ip.into()),
                server: Some("s".into()),
                service: Some("v".into()),
                pid: Some("1".into()),
                rtmp: Some(vec!["tcp://0.0.0.0:1935".into()]),
                ..RegisterRequest::default()
            };
            assert_eq!(req.into_origin().unwrap().ip, ip);
        }
    }

    #[test]
    fn parse_never_panics_on_prefixes() {
        for n in 0..=SRS_BODY.len() {
            if let Ok(req) = RegisterRequest::parse(&SRS_BODY.as_bytes()[..n]) {
                let _ = req.into_origin();
            }
        }
        let _ = RegisterRequest::parse(&[0xff, 0xfe, b'{']);
    }
}
