//! HLS playlist rewrite for the `spbhid` backend-id scheme (SPEC B§4.3, A2).
//!
//! The proxy serves a player's `.m3u8` from the origin pinned for the stream
//! and tags every URI the player will fetch *through the proxy* with
//! `spbhid=<id>`, so the segment (or sub-playlist, key, init section…)
//! request goes back to the origin that served the playlist.
//!
//! Unlike SRS's blind `ReplaceAll(".ts?", …)`, the rewrite here is line based
//! and only touches URIs:
//!
//! * URI lines (not blank, not starting with `#`) that are relative: media
//!   segments and, in master playlists, variant playlists;
//! * the quoted `URI="…"` attribute of the tags that carry one
//!   ([`URI_TAGS`]), when it is relative.
//!
//! Absolute URIs (`http://…`, `data:…`, `skd:…`, any scheme) and
//! scheme-relative ones (`//host/…`) do not come back through the proxy and
//! are left alone. Comments, other tags, blank lines, line endings (LF or
//! CRLF) and a missing final newline are kept byte for byte. The playlist is
//! handled as bytes, so invalid UTF-8 is passed through untouched.

use std::borrow::Cow;

/// The query parameter that names the origin which served a playlist.
pub const SPBHID: &str = "spbhid";

/// The longest id [`valid_spbhid`] accepts.
pub const MAX_SPBHID_LEN: usize = 32;

/// Tags whose attribute list may carry a URI the player fetches, with the
/// name of that attribute.
pub const URI_TAGS: &[(&str, &str)] = &[
    ("EXT-X-MAP", "URI"),
    ("EXT-X-KEY", "URI"),
    ("EXT-X-SESSION-KEY", "URI"),
    ("EXT-X-MEDIA", "URI"),
    ("EXT-X-I-FRAME-STREAM-INF", "URI"),
    ("EXT-X-PART", "URI"),
    ("EXT-X-PRELOAD-HINT", "URI"),
    ("EXT-X-RENDITION-REPORT", "URI"),
    ("EXT-X-SESSION-DATA", "URI"),
    ("EXT-X-CONTENT-STEERING", "SERVER-URI"),
];

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Adds `spbhid=<id>` to every relative URI in an M3U8 playlist (see the
/// module docs for which URIs count).
///
/// Returns `None` if `body` is not a playlist (no leading `#EXTM3U` after an
/// optional UTF-8 BOM and whitespace), and also if `spbhid` fails
/// [`valid_spbhid`]: the id is inserted verbatim, so an unchecked one could
/// otherwise break the playlist.
pub fn rewrite_playlist(body: &[u8], spbhid: &str) -> Option<Vec<u8>> {
    if !is_playlist(body) || !valid_spbhid(spbhid) {
        return None;
    }
    let id = spbhid.as_bytes();
    let mut out = Vec::with_capacity(body.len() + body.len() / 8 + 64);
    // The BOM is not part of the first line's content.
    let mut rest = match body.strip_prefix(BOM) {
        Some(after) => {
            out.extend_from_slice(BOM);
            after
        }
        None => body,
    };
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => rest.split_at(i + 1),
            None => (rest, &b""[..]),
        };
        rest = next;
        // The content without the line ending and surrounding blanks; the
        // blanks and the ending are copied as they were.
        let start = line.iter().position(|&b| !is_blank(b)).unwrap_or(line.len());
        let end = line.iter().rposition(|&b| !is_blank(b)).map_or(start, |i| i + 1);
        let content = &line[start..end];
        out.extend_from_slice(&line[..start]);
        if content.is_empty() {
            // Blank line.
        } else if content[0] == b'#' {
            rewrite_tag(content, id, &mut out);
        } else {
            rewrite_uri(content, id, &mut out);
        }
        out.extend_from_slice(&line[end..]);
    }
    Some(out)
}

/// Whether `body` starts like an M3U8 playlist: `#EXTM3U` after an optional
/// UTF-8 BOM and whitespace.
pub fn is_playlist(body: &[u8]) -> bool {
    let body = body.strip_prefix(BOM).unwrap_or(body);
    let start = body.iter().position(|&b| !is_blank(b)).unwrap_or(body.len());
    body[start..].starts_with(b"#EXTM3U")
}

/// The value of `spbhid` in a raw query string (without the `?`), if any:
/// the first occurrence, percent-decoded (`+` is a space, as in Go's
/// `url.ParseQuery`). A present but empty value gives `Some("")`. A pair whose
/// escapes are invalid or which decodes to invalid UTF-8 is skipped, as Go
/// does.
pub fn spbhid_of(query: &str) -> Option<Cow<'_, str>> {
    let query = query.strip_prefix('?').unwrap_or(query);
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != SPBHID && form_decode(key).as_deref() != Some(SPBHID) {
            continue;
        }
        if let Some(v) = form_decode(value) {
            return Some(v);
        }
    }
    None
}

/// Whether a client-sent id is acceptable: 1 to 32 characters of
/// `[0-9a-zA-Z_-]`.
pub fn valid_spbhid(s: &str) -> bool {
    (1..=MAX_SPBHID_LEN).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Blanks around a line's content (ASCII whitespace: SP, HT, LF, FF, CR),
/// the same set [`is_playlist`] skips before `#EXTM3U`.
fn is_blank(b: u8) -> bool {
    b.is_ascii_whitespace()
}

/// Copies a `#…` line to `out`, rewriting the URI attribute of the tags in
/// [`URI_TAGS`]. Comments and other tags are copied unchanged.
fn rewrite_tag(line: &[u8], id: &[u8], out: &mut Vec<u8>) {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        out.extend_from_slice(line);
        return;
    };
    let name = &line[1..colon];
    let Some(&(_, attr)) = URI_TAGS.iter().find(|(tag, _)| tag.as_bytes() == name) else {
        out.extend_from_slice(line);
        return;
    };
    let attr = attr.as_bytes();
    // Walk the attribute list `NAME=VALUE,NAME="quoted, value",…`; copy
    // everything, splicing in the rewritten URI values.
    let mut copied = 0; // bytes of `line` already in `out`
    let mut i = colon + 1;
    while i < line.len() {
        let name_end = line[i..].iter().position(|&b| b == b'=' || b == b',').map_or(line.len(), |p| i + p);
        if name_end == line.len() {
            break;
        }
        if line[name_end] == b',' {
            // An attribute with no value: skip it.
            i = name_end + 1;
            continue;
        }
        let key = trim_spaces(&line[i..name_end]);
        let mut v = name_end + 1;
        while v < line.len() && line[v] == b' ' {
            v += 1;
        }
        if v < line.len() && line[v] == b'"' {
            let Some(close) = line[v + 1..].iter().position(|&b| b == b'"').map(|p| v + 1 + p) else {
                break; // unterminated quote: leave the rest alone
            };
            if key == attr {
                out.extend_from_slice(&line[copied..v + 1]);
                rewrite_uri(&line[v + 1..close], id, out);
                copied = close;
            }
            i = line[close..].iter().position(|&b| b == b',').map_or(line.len(), |p| close + p + 1);
        } else {
            i = line[v..].iter().position(|&b| b == b',').map_or(line.len(), |p| v + p + 1);
        }
    }
    out.extend_from_slice(&line[copied..]);
}

fn trim_spaces(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != b' ').unwrap_or(s.len());
    let end = s.iter().rposition(|&b| b != b' ').map_or(start, |i| i + 1);
    &s[start..end]
}

/// Copies `uri` to `out`, with `spbhid=<id>` in its query if it is relative.
fn rewrite_uri(uri: &[u8], id: &[u8], out: &mut Vec<u8>) {
    if uri.is_empty() || !is_relative(uri) {
        out.extend_from_slice(uri);
        return;
    }
    let (main, fragment) = match uri.iter().position(|&b| b == b'#') {
        Some(i) => uri.split_at(i),
        None => (uri, &b""[..]),
    };
    let Some(q) = main.iter().position(|&b| b == b'?') else {
        out.extend_from_slice(main);
        out.push(b'?');
        push_id(id, out);
        out.extend_from_slice(fragment);
        return;
    };
    out.extend_from_slice(&main[..=q]);
    // Every `spbhid` parameter gets the id; without one, the id goes last
    // (into a trailing empty parameter if there is one, so `a?` and `a?x&`
    // give no `?&` or `&&`). Empty (or blank) parameters before the last are
    // dropped, so SRS Go's `spbhid=X&&hls_ctx=Y` loses its `&&`. The last
    // parameter is never dropped: that keeps the end of the URI, and so the
    // rewrite idempotent, whatever blanks the URI holds.
    let query = &main[q + 1..];
    let is_id = |p: &[u8]| p.iter().position(|&b| b == b'=').map_or(p, |i| &p[..i]) == SPBHID.as_bytes();
    let has_id = query.split(|&b| b == b'&').any(is_id);
    let count = query.split(|&b| b == b'&').count();
    let mut first = true;
    let mut placed = false;
    for (i, p) in query.split(|&b| b == b'&').enumerate() {
        let last = i + 1 == count;
        let blank = p.iter().all(|&b| is_blank(b));
        if blank && !last {
            continue;
        }
        if !first {
            out.push(b'&');
        }
        first = false;
        if is_id(p) || (blank && !has_id) {
            push_id(id, out);
            placed = true;
        } else {
            out.extend_from_slice(p);
        }
    }
    if !placed {
        out.push(b'&');
        push_id(id, out);
    }
    out.extend_from_slice(fragment);
}

fn push_id(id: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(SPBHID.as_bytes());
    out.push(b'=');
    out.extend_from_slice(id);
}

/// Whether a URI reference is relative to the playlist, i.e. the player
/// resolves it against the playlist URL and so fetches it through the proxy.
/// Absolute (`scheme:`) and scheme-relative (`//host`) references are not.
fn is_relative(uri: &[u8]) -> bool {
    if uri.starts_with(b"//") {
        return false;
    }
    // RFC 3986: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":",
    // before any '/', '?' or '#'.
    let Some(colon) = uri.iter().position(|&b| matches!(b, b':' | b'/' | b'?' | b'#')) else {
        return true;
    };
    if uri[colon] != b':' {
        return true;
    }
    let scheme = &uri[..colon];
    let is_scheme = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    !is_scheme
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a
/// space, `%XX` a byte. `None` for a bad escape or invalid UTF-8.
fn form_decode(s: &str) -> Option<Cow<'_, str>> {
    crate::percent::decode(s, true).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "ab12_-Z";

    /// One `#[test]` per playlist: input bytes → exact output bytes (or None).
    macro_rules! rewrite {
        ($($name:ident: $input:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let input: &[u8] = &$input[..];
                let want: Option<&[u8]> = $want.map(|w: &[u8]| w);
                let got = rewrite_playlist(input, ID);
                assert_eq!(
                    got.as_deref().map(String::from_utf8_lossy),
                    want.map(String::from_utf8_lossy),
                    "input: {:?}", String::from_utf8_lossy(input)
                );
                assert_eq!(got.as_deref(), want);
            }
        )*};
    }

    fn some(s: &[u8]) -> Option<&[u8]> {
        Some(s)
    }

    const NONE: Option<&[u8]> = None;

    rewrite! {
        nginx_rtmp_media:
            b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:12\n#EXT-X-TARGETDURATION:5\n\
              #EXT-X-DISCONTINUITY\n#EXTINF:5.000,\nlivestream-12.ts\n#EXTINF:4.167,\nlivestream-13.ts\n"
            => some(b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:12\n#EXT-X-TARGETDURATION:5\n\
              #EXT-X-DISCONTINUITY\n#EXTINF:5.000,\nlivestream-12.ts?spbhid=ab12_-Z\n\
              #EXTINF:4.167,\nlivestream-13.ts?spbhid=ab12_-Z\n");
        srs_media_hls_ctx:
            b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:5\n#EXT-X-TARGETDURATION:10\n\
              #EXT-X-DISCONTINUITY\n#EXTINF:10.005, no desc\nlivestream-5.ts?hls_ctx=o1h5gk93\n\
              #EXTINF:9.980, no desc\nlivestream-6.ts?hls_ctx=o1h5gk93\n"
            => some(b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:5\n#EXT-X-TARGETDURATION:10\n\
              #EXT-X-DISCONTINUITY\n#EXTINF:10.005, no desc\nlivestream-5.ts?hls_ctx=o1h5gk93&spbhid=ab12_-Z\n\
              #EXTINF:9.980, no desc\nlivestream-6.ts?hls_ctx=o1h5gk93&spbhid=ab12_-Z\n");
        srs_master:
            b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1\nlivestream.m3u8?hls_ctx=xxxx\n"
            => some(b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1\n\
              livestream.m3u8?hls_ctx=xxxx&spbhid=ab12_-Z\n");
        srs_master_absolute_path:
            b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1\n/live/livestream.m3u8?hls_ctx=5k3n7q1z\n"
            => some(b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1\n\
              /live/livestream.m3u8?hls_ctx=5k3n7q1z&spbhid=ab12_-Z\n");
        master_with_media_and_iframes:
            b"#EXTM3U\n\
              #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"en\",DEFAULT=YES,URI=\"audio/en.m3u8\"\n\
              #EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"cc1\",INSTREAM-ID=\"CC1\"\n\
              #EXT-X-STREAM-INF:BANDWIDTH=1280000,CODECS=\"avc1.4d401f,mp4a.40.2\",AUDIO=\"aac\"\n\
              low/index.m3u8\n\
              #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,URI=\"low/iframe.m3u8\"\n"
            => some(b"#EXTM3U\n\
              #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"en\",DEFAULT=YES,URI=\"audio/en.m3u8?spbhid=ab12_-Z\"\n\
              #EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"cc1\",INSTREAM-ID=\"CC1\"\n\
              #EXT-X-STREAM-INF:BANDWIDTH=1280000,CODECS=\"avc1.4d401f,mp4a.40.2\",AUDIO=\"aac\"\n\
              low/index.m3u8?spbhid=ab12_-Z\n\
              #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,URI=\"low/iframe.m3u8?spbhid=ab12_-Z\"\n");
        absolute_http_uris:
            b"#EXTM3U\n#EXTINF:4,\nhttp://cdn.example.com/live/s-1.ts\n#EXTINF:4,\nhttps://cdn.example.com/s-2.ts?a=1\n\
              #EXTINF:4,\nHTTP://CDN/s-3.ts\n"
            => some(b"#EXTM3U\n#EXTINF:4,\nhttp://cdn.example.com/live/s-1.ts\n#EXTINF:4,\nhttps://cdn.example.com/s-2.ts?a=1\n\
              #EXTINF:4,\nHTTP://CDN/s-3.ts\n");
        scheme_relative:
            b"#EXTM3U\n#EXTINF:4,\n//cdn.example.com/s-1.ts\n#EXT-X-MAP:URI=\"//cdn/init.mp4\"\n"
            => some(b"#EXTM3U\n#EXTINF:4,\n//cdn.example.com/s-1.ts\n#EXT-X-MAP:URI=\"//cdn/init.mp4\"\n");
        absolute_path_is_relative_ref:
            b"#EXTM3U\n#EXTINF:4,\n/live/s-1.ts\n#EXTINF:4,\n../other/s-2.ts\n"
            => some(b"#EXTM3U\n#EXTINF:4,\n/live/s-1.ts?spbhid=ab12_-Z\n#EXTINF:4,\n../other/s-2.ts?spbhid=ab12_-Z\n");
        colon_after_slash_is_relative:
            b"#EXTM3U\nlive/a:b.ts\n1abc:x.ts\n"
            => some(b"#EXTM3U\nlive/a:b.ts?spbhid=ab12_-Z\n1abc:x.ts?spbhid=ab12_-Z\n");
        fmp4_map:
            b"#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"720@0\"\n#EXTINF:2.0,\nseg-1.m4s\n"
            => some(b"#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-MAP:URI=\"init.mp4?spbhid=ab12_-Z\",BYTERANGE=\"720@0\"\n\
              #EXTINF:2.0,\nseg-1.m4s?spbhid=ab12_-Z\n");
        aes_key:
            b"#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"keys/k1.key?t=a,b\",IV=0x0123456789abcdef0123456789abcdef\n\
              #EXTINF:4,\ns-1.ts\n"
            => some(b"#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"keys/k1.key?t=a,b&spbhid=ab12_-Z\",\
              IV=0x0123456789abcdef0123456789abcdef\n#EXTINF:4,\ns-1.ts?spbhid=ab12_-Z\n");
        key_uri_after_quoted_comma:
            b"#EXTM3U\n#EXT-X-KEY:KEYFORMAT=\"a,URI=x\",METHOD=AES-128,URI=\"k.key\"\n"
            => some(b"#EXTM3U\n#EXT-X-KEY:KEYFORMAT=\"a,URI=x\",METHOD=AES-128,URI=\"k.key?spbhid=ab12_-Z\"\n");
        skd_and_data_keys_unchanged:
            b"#EXTM3U\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://key65\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n\
              #EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI=\"data:text/plain;base64,AAAA\"\n\
              #EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"https://k/x\"\n"
            => some(b"#EXTM3U\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://key65\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n\
              #EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI=\"data:text/plain;base64,AAAA\"\n\
              #EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"https://k/x\"\n");
        session_key_and_data:
            b"#EXTM3U\n#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"k.key\"\n\
              #EXT-X-SESSION-DATA:DATA-ID=\"com.example.title\",URI=\"title.json\"\n\
              #EXT-X-CONTENT-STEERING:SERVER-URI=\"steer.json\",PATHWAY-ID=\"a\"\n"
            => some(b"#EXTM3U\n#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"k.key?spbhid=ab12_-Z\"\n\
              #EXT-X-SESSION-DATA:DATA-ID=\"com.example.title\",URI=\"title.json?spbhid=ab12_-Z\"\n\
              #EXT-X-CONTENT-STEERING:SERVER-URI=\"steer.json?spbhid=ab12_-Z\",PATHWAY-ID=\"a\"\n");
        ll_hls_tags:
            b"#EXTM3U\n#EXT-X-PART:DURATION=0.33334,URI=\"p-1.1.m4s\",INDEPENDENT=YES\n\
              #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p-1.2.m4s\"\n\
              #EXT-X-RENDITION-REPORT:URI=\"../hi/index.m3u8\",LAST-MSN=1,LAST-PART=1\n"
            => some(b"#EXTM3U\n#EXT-X-PART:DURATION=0.33334,URI=\"p-1.1.m4s?spbhid=ab12_-Z\",INDEPENDENT=YES\n\
              #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p-1.2.m4s?spbhid=ab12_-Z\"\n\
              #EXT-X-RENDITION-REPORT:URI=\"../hi/index.m3u8?spbhid=ab12_-Z\",LAST-MSN=1,LAST-PART=1\n");
        crlf_kept:
            b"#EXTM3U\r\n#EXTINF:4,\r\ns-1.ts\r\n\r\n#EXT-X-MAP:URI=\"i.mp4\"\r\ns-2.ts?a=1\r\n"
            => some(b"#EXTM3U\r\n#EXTINF:4,\r\ns-1.ts?spbhid=ab12_-Z\r\n\r\n#EXT-X-MAP:URI=\"i.mp4?spbhid=ab12_-Z\"\r\n\
              s-2.ts?a=1&spbhid=ab12_-Z\r\n");
        mixed_line_endings:
            b"#EXTM3U\ns-1.ts\r\ns-2.ts\n"
            => some(b"#EXTM3U\ns-1.ts?spbhid=ab12_-Z\r\ns-2.ts?spbhid=ab12_-Z\n");
        no_trailing_newline:
            b"#EXTM3U\n#EXTINF:4,\ns-1.ts"
            => some(b"#EXTM3U\n#EXTINF:4,\ns-1.ts?spbhid=ab12_-Z");
        no_trailing_newline_crlf_last_cr:
            b"#EXTM3U\r\ns-1.ts\r"
            => some(b"#EXTM3U\r\ns-1.ts?spbhid=ab12_-Z\r");
        comments_with_ts_unchanged:
            b"#EXTM3U\n# old segment was s-0.ts?x=1\n#s-1.ts\n#EXTINF:4,title.ts\n#EXT-X-PROGRAM-DATE-TIME:2024-01-01T00:00:00.ts\n\
              s-1.ts\n"
            => some(b"#EXTM3U\n# old segment was s-0.ts?x=1\n#s-1.ts\n#EXTINF:4,title.ts\n#EXT-X-PROGRAM-DATE-TIME:2024-01-01T00:00:00.ts\n\
              s-1.ts?spbhid=ab12_-Z\n");
        ts_in_tag_values_unchanged:
            b"#EXTM3U\n#EXT-X-DATERANGE:ID=\"a.ts\",START-DATE=\"2024\",X-ASSET-URI=\"b.ts\"\n\
              #EXTINF:5,URI=\"x.ts\"\n#EXT-X-STREAM-INF:BANDWIDTH=1,NAME=\"v.ts\"\nv.m3u8\n"
            => some(b"#EXTM3U\n#EXT-X-DATERANGE:ID=\"a.ts\",START-DATE=\"2024\",X-ASSET-URI=\"b.ts\"\n\
              #EXTINF:5,URI=\"x.ts\"\n#EXT-X-STREAM-INF:BANDWIDTH=1,NAME=\"v.ts\"\nv.m3u8?spbhid=ab12_-Z\n");
        existing_spbhid_replaced:
            b"#EXTM3U\ns-1.ts?spbhid=old\ns-2.ts?a=1&spbhid=old&b=2&spbhid=x\ns-3.ts?spbhid\ns-4.ts?xspbhid=1\n\
              #EXT-X-MAP:URI=\"i.mp4?spbhid=zz\"\n"
            => some(b"#EXTM3U\ns-1.ts?spbhid=ab12_-Z\ns-2.ts?a=1&spbhid=ab12_-Z&b=2&spbhid=ab12_-Z\ns-3.ts?spbhid=ab12_-Z\n\
              s-4.ts?xspbhid=1&spbhid=ab12_-Z\n#EXT-X-MAP:URI=\"i.mp4?spbhid=ab12_-Z\"\n");
        srs_double_amp_cleaned:
            b"#EXTM3U\ns-1.ts?spbhid=old&&hls_ctx=c\n"
            => some(b"#EXTM3U\ns-1.ts?spbhid=ab12_-Z&hls_ctx=c\n");
        empty_query_parts:
            b"#EXTM3U\ns-1.ts?\ns-2.ts?a=1&\ns-3.ts?&a=1\ns-4.ts?&&\ns-5.ts?spbhid=x&b&&\x0C&\x0C\n"
            => some(b"#EXTM3U\ns-1.ts?spbhid=ab12_-Z\ns-2.ts?a=1&spbhid=ab12_-Z\ns-3.ts?a=1&spbhid=ab12_-Z\n\
              s-4.ts?spbhid=ab12_-Z\ns-5.ts?spbhid=ab12_-Z&b&\x0C\n");
        trailing_amp_kept_after_spbhid:
            b"#EXTM3U\ns-1.ts?spbhid=1&\ns-2.ts?a&b\r&\n#EXT-X-MAP:URI=\"i.mp4?a& #f\"\n"
            => some(b"#EXTM3U\ns-1.ts?spbhid=ab12_-Z&\ns-2.ts?a&b\r&spbhid=ab12_-Z\n\
              #EXT-X-MAP:URI=\"i.mp4?a&spbhid=ab12_-Z#f\"\n");
        fragments:
            b"#EXTM3U\ns-1.ts#t=1\ns-2.ts?a=1#frag?x&y\ns-3.ts?#f\n#EXT-X-MAP:URI=\"i.mp4#x\"\n"
            => some(b"#EXTM3U\ns-1.ts?spbhid=ab12_-Z#t=1\ns-2.ts?a=1&spbhid=ab12_-Z#frag?x&y\ns-3.ts?spbhid=ab12_-Z#f\n\
              #EXT-X-MAP:URI=\"i.mp4?spbhid=ab12_-Z#x\"\n");
        bom:
            b"\xEF\xBB\xBF#EXTM3U\ns-1.ts\n"
            => some(b"\xEF\xBB\xBF#EXTM3U\ns-1.ts?spbhid=ab12_-Z\n");
        leading_whitespace_and_blanks:
            b"\r\n  #EXTM3U\n\n   \n  s-1.ts  \n\ts-2.ts\t\r\n"
            => some(b"\r\n  #EXTM3U\n\n   \n  s-1.ts?spbhid=ab12_-Z  \n\ts-2.ts?spbhid=ab12_-Z\t\r\n");
        form_feed_before_header:
            b"\x0C\n#EXTM3U\x0C\n\x0Cs-1.ts\x0C\n\x0Bs-2.ts\n"
            => some(b"\x0C\n#EXTM3U\x0C\n\x0Cs-1.ts?spbhid=ab12_-Z\x0C\n\x0Bs-2.ts?spbhid=ab12_-Z\n");
        header_only:
            b"#EXTM3U" => some(b"#EXTM3U");
        empty_uri_attribute_unchanged:
            b"#EXTM3U\n#EXT-X-MAP:URI=\"\"\n" => some(b"#EXTM3U\n#EXT-X-MAP:URI=\"\"\n");
        unterminated_quote_unchanged:
            b"#EXTM3U\n#EXT-X-MAP:BYTERANGE=\"1@0,URI=\"i.mp4\n#EXT-X-KEY:URI=\"k\n"
            => some(b"#EXTM3U\n#EXT-X-MAP:BYTERANGE=\"1@0,URI=\"i.mp4\n#EXT-X-KEY:URI=\"k\n");
        unquoted_uri_attribute_unchanged:
            b"#EXTM3U\n#EXT-X-MAP:URI=i.mp4\n" => some(b"#EXTM3U\n#EXT-X-MAP:URI=i.mp4\n");
        lenient_attribute_spacing:
            b"#EXTM3U\n#EXT-X-KEY:METHOD=AES-128, URI = \"k.key\",,IV=0x1\n"
            => some(b"#EXTM3U\n#EXT-X-KEY:METHOD=AES-128, URI = \"k.key?spbhid=ab12_-Z\",,IV=0x1\n");
        tag_without_colon_unchanged:
            b"#EXTM3U\n#EXT-X-MAP\n#EXT-X-ENDLIST\n" => some(b"#EXTM3U\n#EXT-X-MAP\n#EXT-X-ENDLIST\n");
        invalid_utf8:
            b"#EXTM3U\n#\xFF\xFE comment\n\xFF\xFEseg.ts\n#EXT-X-MAP:URI=\"\xC3\x28.mp4\"\n\xF0\x9F\x8E\xA5.ts"
            => some(b"#EXTM3U\n#\xFF\xFE comment\n\xFF\xFEseg.ts?spbhid=ab12_-Z\n\
              #EXT-X-MAP:URI=\"\xC3\x28.mp4?spbhid=ab12_-Z\"\n\xF0\x9F\x8E\xA5.ts?spbhid=ab12_-Z");
        not_a_playlist_html: b"<html>#EXTM3U</html>" => NONE;
        not_a_playlist_uri_first: b"s-1.ts\n#EXTM3U\n" => NONE;
        not_a_playlist_lowercase: b"#extm3u\ns.ts\n" => NONE;
        not_a_playlist_bom_only: b"\xEF\xBB\xBF" => NONE;
        not_a_playlist_partial_header: b"#EXTM3" => NONE;
        empty_input: b"" => NONE;
        whitespace_only: b" \r\n\t" => NONE;
    }

    #[test]
    fn huge_line() {
        let mut input = b"#EXTM3U\n#EXTINF:4,\n".to_vec();
        input.extend_from_slice(&[b'a'].repeat(4 << 20));
        input.extend_from_slice(b".ts?x=1\n# ");
        input.extend_from_slice(&[b'#'].repeat(1 << 20));
        let got = rewrite_playlist(&input, ID).unwrap();
        let mut want = b"#EXTM3U\n#EXTINF:4,\n".to_vec();
        want.extend_from_slice(&[b'a'].repeat(4 << 20));
        want.extend_from_slice(b".ts?x=1&spbhid=ab12_-Z\n# ");
        want.extend_from_slice(&[b'#'].repeat(1 << 20));
        assert!(got == want);
    }

    #[test]
    fn many_lines() {
        let mut input = b"#EXTM3U\n".to_vec();
        let mut want = input.clone();
        for i in 0..10_000 {
            input.extend_from_slice(format!("#EXTINF:1,\ns-{i}.ts\n").as_bytes());
            want.extend_from_slice(format!("#EXTINF:1,\ns-{i}.ts?spbhid={ID}\n").as_bytes());
        }
        assert!(rewrite_playlist(&input, ID).unwrap() == want);
    }

    #[test]
    fn idempotent() {
        let input = b"#EXTM3U\n#EXT-X-MAP:URI=\"i.mp4\"\ns-1.ts?hls_ctx=a#f\nhttp://x/y.ts\n";
        let once = rewrite_playlist(input, ID).unwrap();
        assert_eq!(rewrite_playlist(&once, ID).unwrap(), once);
        // And a new id replaces the old one everywhere.
        let other = rewrite_playlist(&once, "new").unwrap();
        assert_eq!(other, rewrite_playlist(input, "new").unwrap());
    }

    #[test]
    fn invalid_ids_refused() {
        for id in ["", "a b", "a\nb", "a\"b", "a&b", "a=b", "a#b", "é", &"x".repeat(33)] {
            assert_eq!(rewrite_playlist(b"#EXTM3U\ns.ts\n", id), None, "{id:?}");
        }
        assert!(rewrite_playlist(b"#EXTM3U\ns.ts\n", &"x".repeat(32)).is_some());
    }

    /// One `#[test]` per query: raw query → spbhid value.
    macro_rules! query {
        ($($name:ident: $q:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let want: Option<&str> = $want;
                assert_eq!(spbhid_of($q).as_deref(), want, "query {:?}", $q);
            }
        )*};
    }

    query! {
        q_only: "spbhid=abc" => Some("abc");
        q_leading_question_mark: "?spbhid=abc" => Some("abc");
        q_after_hls_ctx: "hls_ctx=x&spbhid=abc" => Some("abc");
        q_srs_double_amp: "spbhid=abc&&hls_ctx=x" => Some("abc");
        q_first_wins: "spbhid=a&spbhid=b" => Some("a");
        q_empty_value: "spbhid=" => Some("");
        q_bare_key: "a=1&spbhid" => Some("");
        q_percent_decoded: "spbhid=a%2Db%5fc" => Some("a-b_c");
        q_plus_is_space: "spbhid=a+b" => Some("a b");
        q_key_percent_encoded: "sp%62hid=k" => Some("k");
        q_bad_escape_skipped: "spbhid=a%zz&spbhid=ok" => Some("ok");
        q_bad_utf8_skipped: "spbhid=%ff" => None;
        q_truncated_escape: "spbhid=%4" => None;
        q_absent: "a=1&b=2" => None;
        q_prefix_key_not_matched: "xspbhid=1&spbhidx=2" => None;
        q_case_sensitive: "SPBHID=1" => None;
        q_empty: "" => None;
    }

    #[test]
    fn spbhid_of_borrows_when_plain() {
        assert!(matches!(spbhid_of("a=1&spbhid=xyz"), Some(Cow::Borrowed("xyz"))));
    }

    #[test]
    fn valid_ids() {
        for ok in ["a", "0a1b2c3", "A-Z_z", &"9".repeat(32)] {
            assert!(valid_spbhid(ok), "{ok:?}");
        }
        for bad in ["", " ", "a.b", "a/b", "a%20", "ä", "a\0", &"9".repeat(33)] {
            assert!(!valid_spbhid(bad), "{bad:?}");
        }
    }
}
