//! The stream id a caller sends in its conclusion, in SRT's access-control
//! syntax `#!::key=value,key=value` (`r` resource, `h` host, `m` mode; other
//! keys are ignored), or the plain `app/stream` form (a whole stream id
//! without the `#!::` prefix is the resource).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `m=request` (SRT's default when `m` is absent): play.
    Request,
    /// `m=publish`.
    Publish,
    /// `m=bidirectional`.
    Bidirectional,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Request => "request",
            Mode::Publish => "publish",
            Mode::Bidirectional => "bidirectional",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamId<'a> {
    /// `r=` or the plain form: `app/stream`, maybe with `?query`.
    pub resource: &'a str,
    /// `h=`, when given and not empty.
    pub host: Option<&'a str>,
    pub mode: Mode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamIdError {
    Empty,
    /// `#!::` with no `r=` (or an empty one).
    NoResource,
    /// A `#!::` item without `=`.
    Malformed,
    /// The nested `#!:{...}` form, which nobody sends.
    Nested,
    /// `m=` other than request, publish, bidirectional.
    BadMode,
}

impl fmt::Display for StreamIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StreamIdError::Empty => "empty stream id",
            StreamIdError::NoResource => "no resource (r=) in stream id",
            StreamIdError::Malformed => "stream id item without '='",
            StreamIdError::Nested => "nested #!:{...} stream id is not supported",
            StreamIdError::BadMode => "m= is not publish, request or bidirectional",
        })
    }
}

pub fn parse(sid: &str) -> Result<StreamId<'_>, StreamIdError> {
    if sid.is_empty() {
        return Err(StreamIdError::Empty);
    }
    let Some(items) = sid.strip_prefix("#!::") else {
        if sid.starts_with("#!:") {
            return Err(StreamIdError::Nested);
        }
        return Ok(StreamId { resource: sid, host: None, mode: Mode::Request });
    };
    let (mut resource, mut host, mut mode) = (None, None, Mode::Request);
    for item in items.split(',') {
        let Some((k, v)) = item.split_once('=') else { return Err(StreamIdError::Malformed) };
        match k {
            "r" if resource.is_none() => resource = Some(v),
            "h" if host.is_none() => host = (!v.is_empty()).then_some(v),
            "m" => {
                mode = match v {
                    "request" => Mode::Request,
                    "publish" => Mode::Publish,
                    "bidirectional" => Mode::Bidirectional,
                    _ => return Err(StreamIdError::BadMode),
                }
            }
            _ => {}
        }
    }
    match resource {
        Some(r) if !r.is_empty() => Ok(StreamId { resource: r, host, mode }),
        _ => Err(StreamIdError::NoResource),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(resource: &str, host: Option<&str>, mode: Mode) -> Result<(String, Option<String>, Mode), StreamIdError> {
        Ok((resource.to_string(), host.map(String::from), mode))
    }

    macro_rules! sid {
        ($($name:ident: $s:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let got = parse($s).map(|s| (s.resource.to_string(), s.host.map(String::from), s.mode));
                assert_eq!(got, $want);
            }
        )*};
    }

    use Mode::*;
    use StreamIdError::*;
    sid! {
        publish: "#!::r=live/livestream,m=publish" => ok("live/livestream", None, Publish);
        request: "#!::r=live/livestream,m=request" => ok("live/livestream", None, Request);
        mode_default: "#!::r=live/s" => ok("live/s", None, Request);
        host_first: "#!::h=example.com,r=live/s,m=request" => ok("live/s", Some("example.com"), Request);
        other_keys_ignored: "#!::u=alice,r=live/s,s=secret,t=stream,m=publish" => ok("live/s", None, Publish);
        bidirectional: "#!::r=a/b,m=bidirectional" => ok("a/b", None, Bidirectional);
        empty_host_is_none: "#!::h=,r=a/b" => ok("a/b", None, Request);
        first_r_wins: "#!::r=a/b,r=c/d" => ok("a/b", None, Request);
        value_with_equals: "#!::r=live/s?token=a=b" => ok("live/s?token=a=b", None, Request);
        plain: "live/livestream" => ok("live/livestream", None, Request);
        plain_with_query: "live/s?vhost=v.com" => ok("live/s?vhost=v.com", None, Request);
        err_empty: "" => Err(Empty);
        err_no_resource: "#!::m=publish" => Err(NoResource);
        err_empty_resource: "#!::r=,m=publish" => Err(NoResource);
        err_bare_prefix: "#!::" => Err(Malformed);
        err_item_without_eq: "#!::r=a/b,publish" => Err(Malformed);
        err_trailing_comma: "#!::r=a/b," => Err(Malformed);
        err_bad_mode: "#!::r=a/b,m=play" => Err(BadMode);
        err_nested: "#!:{r=a/b}" => Err(Nested);
    }
}
