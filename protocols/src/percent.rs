//! Percent-decoding, shared by stream keys, HLS queries and static paths.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PercentError {
    /// `%` not followed by two hex digits.
    BadEscape,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`, as in
/// form-encoded query components). Borrows when there is nothing to decode.
pub fn decode(s: &str, plus_is_space: bool) -> Result<Cow<'_, str>, PercentError> {
    if !s.bytes().any(|b| b == b'%' || (plus_is_space && b == b'+')) {
        return Ok(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|b| hex(*b));
                let lo = bytes.get(i + 2).and_then(|b| hex(*b));
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push(h << 4 | l),
                    _ => return Err(PercentError::BadEscape),
                }
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map(Cow::Owned).map_err(|_| PercentError::NotUtf8)
}

/// The value of one hex digit.
pub(crate) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! cases {
        ($($name:ident: ($input:expr, $plus:expr) => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(decode($input, $plus).map(|c| c.into_owned()), $want.map(|s: &str| s.to_string()));
            }
        )*};
    }

    cases! {
        plain_borrows: ("live/s", false) => Ok("live/s");
        escapes: ("a%20b%2Fc", false) => Ok("a b/c");
        plus_kept_in_paths: ("a+b", false) => Ok("a+b");
        plus_is_space_in_forms: ("a+b", true) => Ok("a b");
        utf8: ("%E4%B8%AD", false) => Ok("中");
        truncated: ("a%2", false) => Err(PercentError::BadEscape);
        not_hex: ("%zz", false) => Err(PercentError::BadEscape);
        trailing_percent: ("a%", true) => Err(PercentError::BadEscape);
        not_utf8: ("%ff%fe", false) => Err(PercentError::NotUtf8);
    }
}
