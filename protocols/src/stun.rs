//! STUN (RFC 5389) as the WebRTC port's demux needs it: classify a datagram
//! (RFC 7983), check a STUN message's header and attribute walk, and read
//! its USERNAME. A view over the caller's buffer: no copy, no allocation,
//! an error (never a panic) for any input.

use std::fmt;

pub const HEADER_LEN: usize = 20;
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Message type of a Binding request (class request, method binding).
pub const BINDING_REQUEST: u16 = 0x0001;
pub const ATTR_USERNAME: u16 = 0x0006;
/// RFC 5389 §15.3: USERNAME is under 513 bytes.
pub const MAX_USERNAME: usize = 512;

/// What a datagram on a WebRTC port is, by its first byte (RFC 7983).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Stun,
    Dtls,
    /// RTP or RTCP (SRTP/SRTCP once keyed).
    Rtp,
    Other,
}

pub fn classify(buf: &[u8]) -> Kind {
    match buf.first() {
        Some(0..=3) => Kind::Stun,
        Some(20..=63) => Kind::Dtls,
        Some(128..=191) => Kind::Rtp,
        _ => Kind::Other,
    }
}

/// Why bytes are not a STUN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunError {
    /// Shorter than the 20-byte header.
    Truncated,
    /// The two top bits of the type are not zero.
    NotStun,
    BadCookie,
    /// The header's length is not a multiple of 4.
    UnalignedLength,
    /// The header's length is not what the datagram holds after the header.
    LengthMismatch,
    /// An attribute runs past the message's end.
    AttributeOverrun,
    /// The USERNAME attribute is empty, too long, or not `<ufrag>:<ufrag>` text.
    BadUsername,
}

impl StunError {
    pub const ALL: [StunError; 7] = [
        StunError::Truncated,
        StunError::NotStun,
        StunError::BadCookie,
        StunError::UnalignedLength,
        StunError::LengthMismatch,
        StunError::AttributeOverrun,
        StunError::BadUsername,
    ];

    /// Position in [`StunError::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// A short static reason, for counters and logs.
    pub fn reason(self) -> &'static str {
        match self {
            StunError::Truncated => "stun truncated",
            StunError::NotStun => "stun type bits",
            StunError::BadCookie => "stun cookie",
            StunError::UnalignedLength => "stun length unaligned",
            StunError::LengthMismatch => "stun length mismatch",
            StunError::AttributeOverrun => "stun attribute overrun",
            StunError::BadUsername => "stun bad username",
        }
    }
}

impl fmt::Display for StunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for StunError {}

/// A checked STUN message borrowed from one datagram.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    buf: &'a [u8],
}

impl<'a> Message<'a> {
    /// Checks the header and walks every attribute once, so later reads
    /// cannot run past the end. One datagram holds exactly one message.
    pub fn parse(buf: &'a [u8]) -> Result<Self, StunError> {
        let head: &[u8; HEADER_LEN] =
            buf.get(..HEADER_LEN).and_then(|h| h.try_into().ok()).ok_or(StunError::Truncated)?;
        if head[0] & 0xC0 != 0 {
            return Err(StunError::NotStun);
        }
        if u32::from_be_bytes([head[4], head[5], head[6], head[7]]) != MAGIC_COOKIE {
            return Err(StunError::BadCookie);
        }
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        if len % 4 != 0 {
            return Err(StunError::UnalignedLength);
        }
        if len != buf.len() - HEADER_LEN {
            return Err(StunError::LengthMismatch);
        }
        let m = Message { buf };
        for a in m.attributes() {
            a?;
        }
        Ok(m)
    }

    pub fn msg_type(&self) -> u16 {
        u16::from_be_bytes([self.buf[0], self.buf[1]])
    }

    pub fn is_binding_request(&self) -> bool {
        self.msg_type() == BINDING_REQUEST
    }

    pub fn transaction_id(&self) -> &'a [u8] {
        &self.buf[8..HEADER_LEN]
    }

    /// The attributes in order, as `(type, value)`.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes { rest: &self.buf[HEADER_LEN..] }
    }

    /// The USERNAME, checked to be `<answer ufrag>:<offer ufrag>` text.
    /// `Ok(None)` when there is none (a Binding response, an indication).
    pub fn username(&self) -> Result<Option<&'a str>, StunError> {
        for a in self.attributes() {
            let (t, v) = a?;
            if t == ATTR_USERNAME {
                return check_username(v).map(Some);
            }
        }
        Ok(None)
    }
}

fn check_username(v: &[u8]) -> Result<&str, StunError> {
    if v.is_empty() || v.len() > MAX_USERNAME {
        return Err(StunError::BadUsername);
    }
    let s = std::str::from_utf8(v).map_err(|_| StunError::BadUsername)?;
    match s.split_once(':') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() && !s.chars().any(char::is_control) => Ok(s),
        _ => Err(StunError::BadUsername),
    }
}

/// Walks `type(2) length(2) value(length) padding(to 4)`.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<(u16, &'a [u8]), StunError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r = self.rest;
        let Some(&[t0, t1, l0, l1]) = r.get(..4) else {
            self.rest = &[];
            return Some(Err(StunError::AttributeOverrun));
        };
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        let padded = (len + 3) & !3;
        match (r.get(4..4 + len), r.get(4 + padded..)) {
            (Some(v), Some(rest)) => {
                self.rest = rest;
                Some(Ok((u16::from_be_bytes([t0, t1]), v)))
            }
            _ => {
                self.rest = &[];
                Some(Err(StunError::AttributeOverrun))
            }
        }
    }
}

/// Writes a Binding request with USERNAME into `out` (for tests and tools;
/// no MESSAGE-INTEGRITY: the proxy never answers STUN itself).
pub fn write_binding_request(out: &mut Vec<u8>, txid: &[u8; 12], username: &str) {
    let u = username.as_bytes();
    let padded = (u.len() + 3) & !3;
    let len = 4 + padded;
    out.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out.extend_from_slice(txid);
    out.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
    out.extend_from_slice(&(u.len() as u16).to_be_bytes());
    out.extend_from_slice(u);
    out.resize(out.len() + padded - u.len(), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(user: &str) -> Vec<u8> {
        let mut v = Vec::new();
        write_binding_request(&mut v, b"abcdefghijkl", user);
        v
    }

    /// One test per byte vector, httparse style.
    macro_rules! stun {
        ($($name:ident: $bytes:expr => $check:expr;)*) => {$(
            #[test]
            fn $name() {
                let b: Vec<u8> = $bytes;
                let check: &dyn Fn(Result<Message<'_>, StunError>) = &$check;
                check(Message::parse(&b));
            }
        )*};
    }

    fn hdr(ty: u16, len: u16, cookie: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&ty.to_be_bytes());
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(&cookie.to_be_bytes());
        v.extend_from_slice(&[7; 12]);
        v
    }

    fn with(mut v: Vec<u8>, tail: &[u8]) -> Vec<u8> {
        v.extend_from_slice(tail);
        v
    }

    stun! {
        binding_request_with_username: req("ans1:off2") => |r| {
            let m = r.unwrap();
            assert!(m.is_binding_request());
            assert_eq!(m.username().unwrap(), Some("ans1:off2"));
            assert_eq!(m.transaction_id(), b"abcdefghijkl");
        };
        username_padded_to_four: req("a:b") => |r| {
            let m = r.unwrap();
            assert_eq!(m.username().unwrap(), Some("a:b"));
            assert_eq!(m.attributes().count(), 1);
        };
        header_only_no_attributes: hdr(0x0101, 0, MAGIC_COOKIE) => |r| {
            let m = r.unwrap();
            assert_eq!(m.username().unwrap(), None);
            assert!(!m.is_binding_request());
        };
        empty: vec![] => |r| assert_eq!(r.unwrap_err(), StunError::Truncated);
        truncated_header: hdr(1, 0, MAGIC_COOKIE)[..19].to_vec() => |r| assert_eq!(r.unwrap_err(), StunError::Truncated);
        top_bits_set: hdr(0xC001, 0, MAGIC_COOKIE) => |r| assert_eq!(r.unwrap_err(), StunError::NotStun);
        wrong_cookie: hdr(1, 0, 0x2112_A443) => |r| assert_eq!(r.unwrap_err(), StunError::BadCookie);
        length_not_multiple_of_four: with(hdr(1, 2, MAGIC_COOKIE), &[0, 0]) => |r| assert_eq!(r.unwrap_err(), StunError::UnalignedLength);
        length_longer_than_datagram: with(hdr(1, 8, MAGIC_COOKIE), &[0, 6, 0, 0]) => |r| assert_eq!(r.unwrap_err(), StunError::LengthMismatch);
        length_shorter_than_datagram: with(hdr(1, 0, MAGIC_COOKIE), &[0, 6, 0, 0]) => |r| assert_eq!(r.unwrap_err(), StunError::LengthMismatch);
        truncated_message_body: { let mut v = req("a:b"); v.truncate(v.len() - 4); v } => |r| assert_eq!(r.unwrap_err(), StunError::LengthMismatch);
        attribute_header_cut: with(hdr(1, 4, MAGIC_COOKIE), &[0, 6, 0, 8]) => |r| assert_eq!(r.unwrap_err(), StunError::AttributeOverrun);
        attribute_value_past_end: with(hdr(1, 8, MAGIC_COOKIE), &[0, 6, 0, 5, b'a', b':', b'b', b'c']) => |r| assert_eq!(r.unwrap_err(), StunError::AttributeOverrun);
        padding_past_end: with(hdr(1, 8, MAGIC_COOKIE), &[0, 6, 0, 3, b'a', b':', b'b', 0, 0, 0x80, 0, 1]) => |r| {
            // 12 bytes after the header but the length says 8: mismatch first.
            assert_eq!(r.unwrap_err(), StunError::LengthMismatch);
        };
        padding_missing_on_last_attribute: with(hdr(1, 8, MAGIC_COOKIE), &[0, 0x80, 0, 1, 9, 0, 0, 0]) => |r| {
            // value 1 byte + 3 padding fit exactly: accepted.
            assert_eq!(r.unwrap().attributes().count(), 1);
        };
        padding_eats_next_attribute_header: with(hdr(1, 8, MAGIC_COOKIE), &[0, 0x80, 0, 2, 1, 2, 0, 6]) => |r| {
            // The "0 6" after the value is padding, not a USERNAME type.
            let m = r.unwrap();
            assert_eq!(m.username().unwrap(), None);
        };
        username_empty: with(hdr(1, 4, MAGIC_COOKIE), &[0, 6, 0, 0]) => |r| assert_eq!(r.unwrap().username().unwrap_err(), StunError::BadUsername);
        username_without_colon: req("abcd") => |r| assert_eq!(r.unwrap().username().unwrap_err(), StunError::BadUsername);
        username_half_empty: req(":abc") => |r| assert_eq!(r.unwrap().username().unwrap_err(), StunError::BadUsername);
        username_not_utf8: with(hdr(1, 8, MAGIC_COOKIE), &[0, 6, 0, 3, 0xff, b':', 0xfe, 0]) => |r| assert_eq!(r.unwrap().username().unwrap_err(), StunError::BadUsername);
        username_with_control: req("a\n:b") => |r| assert_eq!(r.unwrap().username().unwrap_err(), StunError::BadUsername);
        username_after_other_attribute: with(hdr(1, 16, MAGIC_COOKIE), &[0x80, 0x22, 0, 2, 1, 2, 0, 0, 0, 6, 0, 3, b'x', b':', b'y', 0]) => |r| {
            assert_eq!(r.unwrap().username().unwrap(), Some("x:y"));
        };
        username_too_long: req(&format!("{}:b", "a".repeat(600))) => |r| assert_eq!(r.unwrap().username().unwrap_err(), StunError::BadUsername);
    }

    #[test]
    fn classify_by_first_byte() {
        assert_eq!(classify(&[]), Kind::Other);
        assert_eq!(classify(&[0, 1]), Kind::Stun);
        assert_eq!(classify(&[3]), Kind::Stun);
        assert_eq!(classify(&[4]), Kind::Other);
        assert_eq!(classify(&[22, 254, 253]), Kind::Dtls);
        assert_eq!(classify(&[0x80, 96]), Kind::Rtp);
        assert_eq!(classify(&[0xBF]), Kind::Rtp);
        assert_eq!(classify(&[0xC0]), Kind::Other);
    }

    /// Every prefix and every one-byte corruption of a valid message parses
    /// or errs, and never reads out of bounds.
    #[test]
    fn prefixes_and_flips_never_panic() {
        let good = with(req("answer:offer"), &[]);
        for n in 0..=good.len() {
            if let Ok(m) = Message::parse(&good[..n]) {
                let _ = m.username();
            }
        }
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.clone();
                b[i] ^= 1 << bit;
                if let Ok(m) = Message::parse(&b) {
                    let _ = m.username();
                }
            }
        }
    }
}
