//! SDP as WebRTC signalling through the proxy needs it, line by line
//! (RFC 8866, RFC 8839): the ICE credentials of an offer or answer, the
//! candidate lines, and the answer rewritten so its candidates name the
//! proxy. Also the legacy SRS RTC API's JSON envelope
//! (`{"sdp": ..., "streamurl": ...}`), decoded with serde_json so escaped
//! `\r\n` inside the JSON string never reaches the SDP reader as text.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Longest ufrag/pwd accepted (RFC 8839 allows 256 characters).
pub const MAX_ICE_CHAR: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpError {
    /// No `a=ice-ufrag` line, or an empty or oversized one.
    NoUfrag,
    NoPwd,
    /// ice-char is `ALPHA / DIGIT / "+" / "/"`; anything else is refused.
    BadIceChar,
    /// Two different ufrags (or pwds) in one description: bundling them into
    /// one proxy session would be wrong.
    Conflicting,
    /// The JSON envelope is not an object with a string `sdp`.
    BadEnvelope,
}

impl fmt::Display for SdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SdpError::NoUfrag => "no a=ice-ufrag line",
            SdpError::NoPwd => "no a=ice-pwd line",
            SdpError::BadIceChar => "ice-ufrag or ice-pwd holds a character outside ice-char",
            SdpError::Conflicting => "different ice-ufrag or ice-pwd values in one description",
            SdpError::BadEnvelope => "body is not a JSON object with a string \"sdp\"",
        })
    }
}

impl std::error::Error for SdpError {}

/// The SDP's lines, without their `\r\n` or `\n`.
pub fn lines(sdp: &str) -> impl Iterator<Item = &str> {
    sdp.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).filter(|l| !l.is_empty())
}

/// ICE credentials, borrowed from the description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IceCredentials<'a> {
    pub ufrag: &'a str,
    pub pwd: &'a str,
}

fn ice_char(s: &str) -> Result<&str, SdpError> {
    let s = s.trim_end_matches([' ', '\t']);
    if s.is_empty() || s.len() > MAX_ICE_CHAR {
        return Err(SdpError::BadIceChar);
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/') {
        return Err(SdpError::BadIceChar);
    }
    Ok(s)
}

/// The ICE ufrag and pwd, from the session level or any media section.
/// All sections must agree (one bundled transport, as WebRTC and SRS use).
pub fn ice_credentials(sdp: &str) -> Result<IceCredentials<'_>, SdpError> {
    let (mut ufrag, mut pwd) = (None, None);
    for l in lines(sdp) {
        let (slot, v) = if let Some(v) = l.strip_prefix("a=ice-ufrag:") {
            (&mut ufrag, v)
        } else if let Some(v) = l.strip_prefix("a=ice-pwd:") {
            (&mut pwd, v)
        } else {
            continue;
        };
        let v = ice_char(v)?;
        match slot {
            Some(old) if *old != v => return Err(SdpError::Conflicting),
            _ => *slot = Some(v),
        }
    }
    Ok(IceCredentials { ufrag: ufrag.ok_or(SdpError::NoUfrag)?, pwd: pwd.ok_or(SdpError::NoPwd)? })
}

/// One `a=candidate:` line's fields (RFC 8839 §5.1), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub foundation: &'a str,
    pub component: u16,
    pub transport: &'a str,
    pub priority: u32,
    pub addr: &'a str,
    pub port: u16,
    pub typ: &'a str,
}

impl<'a> Candidate<'a> {
    /// Parses the value after `a=candidate:` (or a whole `a=candidate:` line).
    pub fn parse(line: &'a str) -> Option<Self> {
        let v = line.strip_prefix("a=").unwrap_or(line);
        let v = v.strip_prefix("candidate:")?;
        let mut f = v.split_ascii_whitespace();
        let foundation = f.next()?;
        let component = f.next()?.parse().ok()?;
        let transport = f.next()?;
        let priority = f.next()?.parse().ok()?;
        let addr = f.next()?;
        let port = f.next()?.parse().ok()?;
        if f.next()? != "typ" {
            return None;
        }
        let typ = f.next()?;
        if foundation.is_empty() || foundation.len() > 32 || addr.is_empty() {
            return None;
        }
        Some(Candidate { foundation, component, transport, priority, addr, port, typ })
    }

    pub fn is_udp(&self) -> bool {
        self.transport.eq_ignore_ascii_case("udp")
    }
}

/// The port of the answer's first UDP candidate: where the origin's ICE
/// listens (an SRS origin: its `rtc` port; an origin with a port per peer
/// connection: that connection's).
pub fn first_udp_port(sdp: &str) -> Option<u16> {
    lines(sdp).filter_map(Candidate::parse).find(|c| c.is_udp() && c.port != 0).map(|c| c.port)
}

/// The answer with every candidate replaced by the proxy's: in each media
/// section that had candidates, where its first candidate stood, one host
/// candidate per address in `proxy` (component 1, UDP, the given port), and
/// the section's other candidates (the origin's, TCP ones too) dropped.
/// Every other line is kept byte for byte; the line ending of the input
/// (`\r\n` or `\n`) is kept.
pub fn rewrite_candidates(sdp: &str, proxy: &[SocketAddr]) -> String {
    let eol = if sdp.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(sdp.len() + 64 * proxy.len());
    let mut placed = false;
    for l in lines(sdp) {
        if l.starts_with("m=") {
            placed = false;
        }
        if Candidate::parse(l).is_some() || l.starts_with("a=candidate:") {
            if !placed {
                placed = true;
                for (i, a) in proxy.iter().enumerate() {
                    // Host-candidate priority (RFC 8445 §5.1.2.1), type
                    // preference 126, local preference falling by address.
                    let prio = (126u32 << 24) | ((65535 - i as u32) << 8) | 255;
                    let ip = a.ip();
                    out.push_str(&format!("a=candidate:{} 1 udp {prio} {ip} {} typ host{eol}", i + 1, a.port()));
                }
            }
            continue;
        }
        out.push_str(l);
        out.push_str(eol);
    }
    out
}

/// The addresses in `a=candidate` lines, for checks and logs.
pub fn candidate_addrs(sdp: &str) -> impl Iterator<Item = (IpAddr, u16)> + '_ {
    lines(sdp).filter_map(Candidate::parse).filter_map(|c| Some((c.addr.parse().ok()?, c.port)))
}

/// The legacy RTC API's request body: `{"sdp": "...", "streamurl": "webrtc://host/app/stream", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Envelope {
    pub sdp: String,
    #[serde(default)]
    pub streamurl: Option<String>,
    #[serde(default)]
    pub clientip: Option<String>,
}

impl Envelope {
    pub fn parse(body: &[u8]) -> Result<Self, SdpError> {
        serde_json::from_slice(body).map_err(|_| SdpError::BadEnvelope)
    }
}

/// The legacy API's `streamurl` (`webrtc://host[:port]/app/stream[?query]`)
/// as `(tcUrl, stream name)` for [`crate::stream_url::from_rtmp`].
pub fn split_streamurl(url: &str) -> Option<(&str, &str)> {
    let (_, rest) = url.split_once("://")?;
    let path_at = url.len() - rest.len() + rest.find('/')?;
    let q = url[path_at..].find('?').map_or(url.len(), |i| path_at + i);
    let slash = url[..q].rfind('/')?;
    (slash > path_at).then(|| (&url[..slash], &url[slash + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:ansU\r\na=ice-pwd:answerpassword0123456789\r\n\
a=candidate:0 1 udp 2130706431 10.0.0.5 8000 typ host generation 0\r\n\
a=candidate:1 1 tcp 1 10.0.0.5 8000 typ host tcptype passive\r\na=end-of-candidates\r\na=mid:0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n\
a=candidate:0 1 udp 2130706431 10.0.0.5 8000 typ host\r\na=ice-ufrag:ansU\r\na=ice-pwd:answerpassword0123456789\r\n";

    macro_rules! creds {
        ($($name:ident: $sdp:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let sdp: &str = $sdp;
                let want: Result<(&str, &str), SdpError> = $want;
                assert_eq!(ice_credentials(sdp).map(|c| (c.ufrag, c.pwd)), want);
            }
        )*};
    }

    creds! {
        creds_media_level: ANSWER => Ok(("ansU", "answerpassword0123456789"));
        creds_session_level: "v=0\na=ice-ufrag:ab+/\na=ice-pwd:pw\nm=video 9 X 96\n" => Ok(("ab+/", "pw"));
        creds_lf_only_and_trailing_space: "a=ice-ufrag:u1 \na=ice-pwd:p1\t\n" => Ok(("u1", "p1"));
        creds_no_ufrag: "v=0\r\na=ice-pwd:p\r\n" => Err(SdpError::NoUfrag);
        creds_no_pwd: "v=0\r\na=ice-ufrag:u\r\n" => Err(SdpError::NoPwd);
        creds_empty_ufrag: "a=ice-ufrag:\r\na=ice-pwd:p\r\n" => Err(SdpError::BadIceChar);
        creds_escaped_crlf_inside: "a=ice-ufrag:u\\r\\na=ice-pwd:p\r\n" => Err(SdpError::BadIceChar);
        creds_colon_refused: "a=ice-ufrag:a:b\na=ice-pwd:p\n" => Err(SdpError::BadIceChar);
        creds_conflicting: "a=ice-ufrag:u1\na=ice-pwd:p\nm=video 9 X 96\na=ice-ufrag:u2\n" => Err(SdpError::Conflicting);
        creds_not_prefix_of_other_attr: "a=x-ice-ufrag:u\na=ice-pwd:p\n" => Err(SdpError::NoUfrag);
        creds_empty: "" => Err(SdpError::NoUfrag);
    }

    #[test]
    fn candidate_fields() {
        let c = Candidate::parse("a=candidate:0 1 udp 2130706431 127.0.0.1 8001 typ host generation 0").unwrap();
        assert_eq!(
            (c.foundation, c.component, c.transport, c.addr, c.port, c.typ),
            ("0", 1, "udp", "127.0.0.1", 8001, "host")
        );
        assert!(Candidate::parse("a=candidate:0 1 udp 1 1.2.3.4 70000 typ host").is_none());
        assert!(Candidate::parse("a=candidate:0 1 udp 1 1.2.3.4 5 host").is_none());
        assert!(Candidate::parse("a=candidate:0 1 udp").is_none());
        assert!(Candidate::parse("a=candidates:0 1 udp 1 1.2.3.4 5 typ host").is_none());
        assert!(Candidate::parse("a=candidate:").is_none());
    }

    #[test]
    fn rewrite_replaces_each_sections_candidates_in_place() {
        let proxy: [SocketAddr; 2] = ["192.0.2.1:18000".parse().unwrap(), "[2001:db8::1]:18000".parse().unwrap()];
        let out = rewrite_candidates(ANSWER, &proxy);
        let cands: Vec<_> = candidate_addrs(&out).collect();
        assert_eq!(cands.len(), 4, "{out}");
        assert!(cands.iter().all(|(_, p)| *p == 18000));
        assert!(!out.contains("10.0.0.5"));
        assert!(!out.contains(" tcp "));
        // Everything else kept, in order, with CRLF.
        let kept: Vec<_> = lines(ANSWER).filter(|l| !l.starts_with("a=candidate:")).collect();
        let got: Vec<_> = lines(&out).filter(|l| !l.starts_with("a=candidate:")).collect();
        assert_eq!(kept, got);
        assert!(!out.replace("\r\n", "").contains('\n'));
        let first_audio = out.find("a=candidate:1 1 udp").unwrap();
        assert!(first_audio < out.find("a=end-of-candidates").unwrap());
        assert_eq!(ice_credentials(&out).unwrap().ufrag, "ansU");
        assert_eq!(first_udp_port(ANSWER), Some(8000));
    }

    #[test]
    fn rewrite_is_not_a_substring_replace() {
        // The origin port appears elsewhere (a payload type, an ssrc): untouched.
        let sdp = "m=video 8000 UDP/TLS/RTP/SAVPF 8000\na=ssrc:8000 cname:x 8000 typ host\n\
a=candidate:0 1 udp 1 127.0.0.1 8000 typ host\n";
        let out = rewrite_candidates(sdp, &["127.0.0.1:18000".parse().unwrap()]);
        assert!(out.starts_with("m=video 8000 UDP/TLS/RTP/SAVPF 8000\na=ssrc:8000 cname:x 8000 typ host\n"));
        assert!(out.ends_with("127.0.0.1 18000 typ host\n"));
    }

    #[test]
    fn envelope_escaped_crlf_decodes_to_lines() {
        let body = br#"{"api":"x","streamurl":"webrtc://localhost/live/s1","sdp":"v=0\r\na=ice-ufrag:offU\r\na=ice-pwd:pw\r\n"}"#;
        let e = Envelope::parse(body).unwrap();
        assert_eq!(e.streamurl.as_deref(), Some("webrtc://localhost/live/s1"));
        assert_eq!(ice_credentials(&e.sdp).unwrap().ufrag, "offU");
        // Read as raw text (no JSON decoding) the body is one line: no ufrag.
        assert_eq!(ice_credentials(std::str::from_utf8(body).unwrap()), Err(SdpError::NoUfrag));
    }

    #[test]
    fn envelope_bad_bodies() {
        for b in [&b""[..], b"{}", b"[]", b"{\"sdp\":1}", b"{\"sdp\":\"x\"", b"\xff"] {
            assert_eq!(Envelope::parse(b), Err(SdpError::BadEnvelope), "{b:?}");
        }
    }

    #[test]
    fn streamurl_split() {
        assert_eq!(split_streamurl("webrtc://h/live/s"), Some(("webrtc://h/live", "s")));
        assert_eq!(split_streamurl("webrtc://h:1/a/b/s?x=/y"), Some(("webrtc://h:1/a/b", "s?x=/y")));
        assert_eq!(split_streamurl("webrtc://h"), None);
        assert_eq!(split_streamurl("webrtc://h/"), None);
        assert_eq!(split_streamurl("nothing"), None);
    }
}
