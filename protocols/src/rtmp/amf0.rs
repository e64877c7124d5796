//! AMF0, the value encoding of RTMP command and data messages.
//!
//! Decoding borrows from the input where it can: strings that are valid UTF-8
//! are `Cow::Borrowed` slices of the caller's buffer. Strings that are not
//! UTF-8 are decoded lossily (`Cow::Owned`), never rejected, because real
//! encoders send Latin-1 stream names and titles.
//!
//! The decoder never panics and never trusts a length or count from the wire
//! to size an allocation: every claimed length is checked against the bytes
//! actually present, and nesting is limited to [`MAX_DEPTH`] containers so a
//! hostile payload cannot exhaust the stack.

use std::borrow::Cow;
use std::fmt;

/// How many containers (objects, ECMA arrays, strict arrays) may nest.
///
/// A value nested deeper than this is rejected with [`Amf0Error::TooDeep`].
/// Real RTMP payloads nest two or three levels.
pub const MAX_DEPTH: usize = 32;

/// Type markers (AMF0 specification, section 2.1).
mod marker {
    pub(super) const NUMBER: u8 = 0x00;
    pub(super) const BOOLEAN: u8 = 0x01;
    pub(super) const STRING: u8 = 0x02;
    pub(super) const OBJECT: u8 = 0x03;
    pub(super) const MOVIECLIP: u8 = 0x04;
    pub(super) const NULL: u8 = 0x05;
    pub(super) const UNDEFINED: u8 = 0x06;
    pub(super) const REFERENCE: u8 = 0x07;
    pub(super) const ECMA_ARRAY: u8 = 0x08;
    pub(super) const OBJECT_END: u8 = 0x09;
    pub(super) const STRICT_ARRAY: u8 = 0x0A;
    pub(super) const DATE: u8 = 0x0B;
    pub(super) const LONG_STRING: u8 = 0x0C;
    pub(super) const UNSUPPORTED: u8 = 0x0D;
    pub(super) const RECORDSET: u8 = 0x0E;
    pub(super) const XML_DOCUMENT: u8 = 0x0F;
    pub(super) const TYPED_OBJECT: u8 = 0x10;
    pub(super) const AVMPLUS: u8 = 0x11;
}

/// One AMF0 value.
///
/// Object and ECMA array properties keep their wire order (a `Vec`, not a
/// map): order is visible to peers and duplicates do occur in the wild.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Number(f64),
    Boolean(bool),
    /// A string of at most 65535 bytes on the wire (marker 0x02).
    String(Cow<'a, str>),
    Object(Vec<(Cow<'a, str>, Value<'a>)>),
    Null,
    Undefined,
    /// An associative array; the count on the wire is advisory.
    EcmaArray(Vec<(Cow<'a, str>, Value<'a>)>),
    StrictArray(Vec<Value<'a>>),
    /// Milliseconds since the Unix epoch, and a time zone the specification
    /// says to ignore (kept for round trips).
    Date {
        millis: f64,
        tz: i16,
    },
    /// A string with a 32-bit length (marker 0x0C).
    LongString(Cow<'a, str>),
}

impl<'a> Value<'a> {
    /// The first property named `key` of an `Object` or `EcmaArray`.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        match self {
            Value::Object(props) | Value::EcmaArray(props) => props.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a `String` or `LongString`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::LongString(s) => Some(s),
            _ => None,
        }
    }

    /// The value of a `Number`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The value of a `Boolean`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// Copies every borrowed string so the value outlives the input buffer.
    pub fn into_owned(self) -> Value<'static> {
        fn owned(s: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(s.into_owned())
        }
        fn props(p: Vec<(Cow<'_, str>, Value<'_>)>) -> Vec<(Cow<'static, str>, Value<'static>)> {
            p.into_iter().map(|(k, v)| (owned(k), v.into_owned())).collect()
        }
        match self {
            Value::Number(n) => Value::Number(n),
            Value::Boolean(b) => Value::Boolean(b),
            Value::String(s) => Value::String(owned(s)),
            Value::Object(p) => Value::Object(props(p)),
            Value::Null => Value::Null,
            Value::Undefined => Value::Undefined,
            Value::EcmaArray(p) => Value::EcmaArray(props(p)),
            Value::StrictArray(items) => Value::StrictArray(items.into_iter().map(Value::into_owned).collect()),
            Value::Date { millis, tz } => Value::Date { millis, tz },
            Value::LongString(s) => Value::LongString(owned(s)),
        }
    }

    /// An `Object` from `(name, value)` pairs, in order.
    pub fn object<I>(props: I) -> Value<'a>
    where
        I: IntoIterator<Item = (&'static str, Value<'a>)>,
    {
        Value::Object(props.into_iter().map(|(k, v)| (Cow::Borrowed(k), v)).collect())
    }

    /// An `EcmaArray` from `(name, value)` pairs, in order.
    pub fn ecma_array<I>(props: I) -> Value<'a>
    where
        I: IntoIterator<Item = (&'static str, Value<'a>)>,
    {
        Value::EcmaArray(props.into_iter().map(|(k, v)| (Cow::Borrowed(k), v)).collect())
    }

    /// A borrowed `String`.
    pub fn str(s: &'a str) -> Value<'a> {
        Value::String(Cow::Borrowed(s))
    }
}

/// Why an AMF0 payload could not be decoded. Every case is the peer's fault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Amf0Error {
    /// The input ends inside a value.
    Truncated,
    /// A type marker that AMF0 does not define (above 0x11).
    UnknownMarker(u8),
    /// A marker AMF0 defines but RTMP peers have no business sending us:
    /// movieclip 0x04, reference 0x07, unsupported 0x0D, recordset 0x0E,
    /// XML document 0x0F, typed object 0x10, AVM+ (AMF3) switch 0x11.
    Unsupported(u8),
    /// An object-end marker (0x09) where a value was expected.
    UnexpectedObjectEnd,
    /// Containers nest deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A strict array claims more items than there are bytes left.
    TooManyItems,
}

impl fmt::Display for Amf0Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amf0Error::Truncated => f.write_str("AMF0 value truncated"),
            Amf0Error::UnknownMarker(m) => write!(f, "unknown AMF0 marker 0x{m:02x}"),
            Amf0Error::Unsupported(m) => {
                let name = match *m {
                    marker::MOVIECLIP => "movieclip",
                    marker::REFERENCE => "reference",
                    marker::UNSUPPORTED => "unsupported",
                    marker::RECORDSET => "recordset",
                    marker::XML_DOCUMENT => "XML document",
                    marker::TYPED_OBJECT => "typed object",
                    marker::AVMPLUS => "AVM+ (AMF3)",
                    _ => "unknown",
                };
                write!(f, "AMF0 {name} marker 0x{m:02x} is not supported")
            }
            Amf0Error::UnexpectedObjectEnd => f.write_str("AMF0 object-end marker outside an object"),
            Amf0Error::TooDeep => write!(f, "AMF0 nesting deeper than {MAX_DEPTH} levels"),
            Amf0Error::TooManyItems => f.write_str("AMF0 strict array count exceeds the bytes left"),
        }
    }
}

impl std::error::Error for Amf0Error {}

/// Decodes one value from the front of `buf`; returns it and the bytes used.
pub fn decode(buf: &[u8]) -> Result<(Value<'_>, usize), Amf0Error> {
    let mut r = Reader { buf, pos: 0 };
    let v = r.value(0)?;
    Ok((v, r.pos))
}

/// Decodes values until `buf` is exhausted (an empty `buf` gives none).
pub fn decode_all(buf: &[u8]) -> Result<Vec<Value<'_>>, Amf0Error> {
    let mut r = Reader { buf, pos: 0 };
    let mut values = Vec::new();
    while !r.is_empty() {
        values.push(r.value(0)?);
    }
    Ok(values)
}

/// A cursor over the input. Every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], Amf0Error> {
        let end = self.pos.checked_add(n).ok_or(Amf0Error::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(Amf0Error::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Amf0Error> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn u16(&mut self) -> Result<u16, Amf0Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Amf0Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn f64(&mut self) -> Result<f64, Amf0Error> {
        Ok(f64::from_be_bytes(self.array()?))
    }

    fn text(&mut self, len: usize) -> Result<Cow<'a, str>, Amf0Error> {
        Ok(String::from_utf8_lossy(self.bytes(len)?))
    }

    fn short_string(&mut self) -> Result<Cow<'a, str>, Amf0Error> {
        let len = self.u16()?;
        self.text(usize::from(len))
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, Amf0Error> {
        let m = self.u8()?;
        Ok(match m {
            marker::NUMBER => Value::Number(self.f64()?),
            marker::BOOLEAN => Value::Boolean(self.u8()? != 0),
            marker::STRING => Value::String(self.short_string()?),
            marker::OBJECT => Value::Object(self.properties(depth)?),
            marker::NULL => Value::Null,
            marker::UNDEFINED => Value::Undefined,
            marker::ECMA_ARRAY => {
                // The count is advisory: encoders disagree about it, so the
                // properties run until the end marker whatever it says.
                let _count = self.u32()?;
                Value::EcmaArray(self.properties(depth)?)
            }
            marker::OBJECT_END => return Err(Amf0Error::UnexpectedObjectEnd),
            marker::STRICT_ARRAY => {
                let count = self.u32()?;
                let count = usize::try_from(count).map_err(|_| Amf0Error::TooManyItems)?;
                // Every value takes at least one byte (its marker).
                if count > self.remaining() {
                    return Err(Amf0Error::TooManyItems);
                }
                let depth = nested(depth)?;
                let mut items = Vec::new();
                for _ in 0..count {
                    items.push(self.value(depth)?);
                }
                Value::StrictArray(items)
            }
            marker::DATE => {
                let millis = self.f64()?;
                let tz = i16::from_be_bytes(self.array()?);
                Value::Date { millis, tz }
            }
            marker::LONG_STRING => {
                let len = self.u32()?;
                let len = usize::try_from(len).map_err(|_| Amf0Error::Truncated)?;
                Value::LongString(self.text(len)?)
            }
            marker::MOVIECLIP
            | marker::REFERENCE
            | marker::UNSUPPORTED
            | marker::RECORDSET
            | marker::XML_DOCUMENT
            | marker::TYPED_OBJECT
            | marker::AVMPLUS => return Err(Amf0Error::Unsupported(m)),
            _ => return Err(Amf0Error::UnknownMarker(m)),
        })
    }

    /// Object / ECMA array properties up to and including `00 00 09`.
    fn properties(&mut self, depth: usize) -> Result<Vec<(Cow<'a, str>, Value<'a>)>, Amf0Error> {
        let depth = nested(depth)?;
        let mut props = Vec::new();
        loop {
            let key = self.short_string()?;
            if key.is_empty() && self.peek() == Some(marker::OBJECT_END) {
                self.pos += 1;
                return Ok(props);
            }
            let value = self.value(depth)?;
            props.push((key, value));
        }
    }
}

/// A value kept as its AMF0 encoding, for values held across messages
/// (the client's `connect` object): one allocation however many properties
/// it has, where an owned [`Value`] takes one per string. Read it with
/// [`EncodedValue::value`], which borrows from it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct EncodedValue(Vec<u8>);

impl EncodedValue {
    pub fn new(v: &Value<'_>) -> Self {
        // FFmpeg's and OBS's connect objects take 150 to 250 bytes.
        let mut out = Vec::with_capacity(256);
        encode(v, &mut out);
        EncodedValue(out)
    }

    /// The value, decoded again; `Null` for an empty (default) one.
    pub fn value(&self) -> Value<'_> {
        // What `encode` wrote decodes: same nesting, lengths it checked.
        decode(&self.0).map_or(Value::Null, |(v, _)| v)
    }
}

impl fmt::Debug for EncodedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value().fmt(f)
    }
}

/// The depth of a container's children, or `TooDeep`.
fn nested(depth: usize) -> Result<usize, Amf0Error> {
    if depth >= MAX_DEPTH {
        Err(Amf0Error::TooDeep)
    } else {
        Ok(depth + 1)
    }
}

/// Appends the AMF0 encoding of `v` to `out`.
///
/// A `String` longer than 65535 bytes is written as a long string (0x0C) and
/// so decodes as [`Value::LongString`]. An object key longer than 65535
/// bytes, which AMF0 cannot carry, is cut at the last character boundary
/// that fits.
pub fn encode(v: &Value<'_>, out: &mut Vec<u8>) {
    match v {
        Value::Number(n) => {
            out.push(marker::NUMBER);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Value::Boolean(b) => {
            out.push(marker::BOOLEAN);
            out.push(u8::from(*b));
        }
        Value::String(s) => match u16::try_from(s.len()) {
            Ok(len) => {
                out.push(marker::STRING);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Err(_) => encode_long_string(s, out),
        },
        Value::Object(props) => {
            out.push(marker::OBJECT);
            encode_properties(props, out);
        }
        Value::Null => out.push(marker::NULL),
        Value::Undefined => out.push(marker::UNDEFINED),
        Value::EcmaArray(props) => {
            out.push(marker::ECMA_ARRAY);
            out.extend_from_slice(&saturating_u32(props.len()).to_be_bytes());
            encode_properties(props, out);
        }
        Value::StrictArray(items) => {
            out.push(marker::STRICT_ARRAY);
            let n = saturating_u32(items.len());
            out.extend_from_slice(&n.to_be_bytes());
            // `take` keeps the count honest for absurdly long arrays.
            for item in items.iter().take(n as usize) {
                encode(item, out);
            }
        }
        Value::Date { millis, tz } => {
            out.push(marker::DATE);
            out.extend_from_slice(&millis.to_be_bytes());
            out.extend_from_slice(&tz.to_be_bytes());
        }
        Value::LongString(s) => encode_long_string(s, out),
    }
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The longest prefix of `s` of at most `max` bytes ending on a char boundary.
fn prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

fn encode_long_string(s: &str, out: &mut Vec<u8>) {
    let s = prefix(s, u32::MAX as usize);
    out.push(marker::LONG_STRING);
    out.extend_from_slice(&saturating_u32(s.len()).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn encode_properties(props: &[(Cow<'_, str>, Value<'_>)], out: &mut Vec<u8>) {
    for (key, value) in props {
        let key = prefix(key, usize::from(u16::MAX));
        let len = u16::try_from(key.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(key.as_bytes());
        encode(value, out);
    }
    out.extend_from_slice(&[0x00, 0x00, marker::OBJECT_END]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &Value<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        encode(v, &mut out);
        out
    }

    /// One `#[test]` per byte vector: `name, bytes, |result, buf| { .. }`
    /// where `result` is what `decode` returned for `bytes`.
    macro_rules! amf0 {
        ($($name:ident, $bytes:expr, |$res:ident| $body:block)*) => {$(
            #[test]
            fn $name() {
                let buf: Vec<u8> = $bytes.to_vec();
                let $res = decode(&buf);
                $body
            }
        )*};
    }

    fn nested_objects(levels: usize) -> Vec<u8> {
        let mut b = Vec::new();
        for _ in 0..levels {
            b.extend_from_slice(&[0x03, 0x00, 0x01, b'a']);
        }
        b.push(0x05);
        for _ in 0..levels {
            b.extend_from_slice(&[0x00, 0x00, 0x09]);
        }
        b
    }

    fn nested_strict_arrays(levels: usize) -> Vec<u8> {
        let mut b = Vec::new();
        for _ in 0..levels {
            b.extend_from_slice(&[0x0A, 0x00, 0x00, 0x00, 0x01]);
        }
        b.push(0x05);
        b
    }

    amf0! {
        number, [0x00, 0x40, 0x59, 0x00, 0, 0, 0, 0, 0], |r| {
            assert_eq!(r, Ok((Value::Number(100.0), 9)));
        }
        number_negative_zero_and_nan, [0x00, 0x7F, 0xF8, 0, 0, 0, 0, 0, 0, 0xFF], |r| {
            let (v, n) = r.unwrap();
            assert_eq!(n, 9);
            assert!(v.as_f64().unwrap().is_nan());
        }
        boolean_true, [0x01, 0x01], |r| {
            assert_eq!(r, Ok((Value::Boolean(true), 2)));
        }
        boolean_nonzero_is_true, [0x01, 0x7F], |r| {
            assert_eq!(r, Ok((Value::Boolean(true), 2)));
        }
        boolean_false, [0x01, 0x00], |r| {
            assert_eq!(r, Ok((Value::Boolean(false), 2)));
        }
        string, b"\x02\x00\x04live", |r| {
            let (v, n) = r.unwrap();
            assert_eq!(n, 7);
            assert_eq!(v.as_str(), Some("live"));
            assert!(matches!(v, Value::String(Cow::Borrowed("live"))));
        }
        string_empty, [0x02, 0x00, 0x00], |r| {
            assert_eq!(r, Ok((Value::str(""), 3)));
        }
        string_invalid_utf8_is_lossy, [0x02, 0x00, 0x03, b'a', 0xFF, b'b'], |r| {
            let (v, n) = r.unwrap();
            assert_eq!(n, 6);
            assert!(matches!(&v, Value::String(Cow::Owned(s)) if s == "a\u{FFFD}b"));
        }
        string_utf8_multibyte, [0x02, 0x00, 0x03, 0xE7, 0x9B, 0xB4], |r| {
            assert_eq!(r, Ok((Value::str("直"), 6)));
        }
        null, [0x05], |r| {
            assert_eq!(r, Ok((Value::Null, 1)));
        }
        undefined, [0x06], |r| {
            assert_eq!(r, Ok((Value::Undefined, 1)));
        }
        trailing_bytes_not_consumed, [0x05, 0x05, 0x06], |r| {
            assert_eq!(r, Ok((Value::Null, 1)));
        }
        object, b"\x03\x00\x03app\x02\x00\x04live\x00\x01n\x00\x3F\xF0\0\0\0\0\0\0\x00\x00\x09", |r| {
            let (v, n) = r.unwrap();
            assert_eq!(n, 28);
            assert_eq!(v, Value::object([("app", Value::str("live")), ("n", Value::Number(1.0))]));
            assert_eq!(v.get("app").and_then(Value::as_str), Some("live"));
            assert_eq!(v.get("n").and_then(Value::as_f64), Some(1.0));
            assert_eq!(v.get("missing"), None);
        }
        object_empty, [0x03, 0x00, 0x00, 0x09], |r| {
            assert_eq!(r, Ok((Value::Object(vec![]), 4)));
        }
        object_empty_key_property, [0x03, 0x00, 0x00, 0x05, 0x00, 0x00, 0x09], |r| {
            assert_eq!(r, Ok((Value::Object(vec![(Cow::Borrowed(""), Value::Null)]), 7)));
        }
        object_duplicate_keys_keep_order, b"\x03\x00\x01k\x01\x01\x00\x01k\x01\x00\x00\x00\x09", |r| {
            let (v, _) = r.unwrap();
            assert_eq!(v.get("k"), Some(&Value::Boolean(true)));
            assert_eq!(v, Value::object([("k", Value::Boolean(true)), ("k", Value::Boolean(false))]));
        }
        object_nested, b"\x03\x00\x01o\x03\x00\x01p\x05\x00\x00\x09\x00\x00\x09", |r| {
            assert_eq!(r, Ok((Value::object([("o", Value::object([("p", Value::Null)]))]), 15)));
        }
        object_without_end, b"\x03\x00\x01a\x05", |r| {
            assert_eq!(r, Err(Amf0Error::Truncated));
        }
        object_key_non_utf8, [0x03, 0x00, 0x01, 0xE9, 0x05, 0x00, 0x00, 0x09], |r| {
            let (v, n) = r.unwrap();
            assert_eq!(n, 8);
            assert_eq!(v.get("\u{FFFD}"), Some(&Value::Null));
        }
        ecma_array, b"\x08\x00\x00\x00\x01\x00\x08duration\x00\0\0\0\0\0\0\0\0\x00\x00\x09", |r| {
            assert_eq!(r, Ok((Value::ecma_array([("duration", Value::Number(0.0))]), 27)));
        }
        ecma_array_count_is_advisory_low, b"\x08\x00\x00\x00\x00\x00\x01a\x05\x00\x01b\x06\x00\x00\x09", |r| {
            assert_eq!(r, Ok((Value::ecma_array([("a", Value::Null), ("b", Value::Undefined)]), 16)));
        }
        ecma_array_count_is_advisory_huge, b"\x08\xFF\xFF\xFF\xFF\x00\x01a\x05\x00\x00\x09", |r| {
            assert_eq!(r, Ok((Value::ecma_array([("a", Value::Null)]), 12)));
        }
        ecma_array_without_end, b"\x08\x00\x00\x00\x01\x00\x01a\x05", |r| {
            assert_eq!(r, Err(Amf0Error::Truncated));
        }
        strict_array, [0x0A, 0, 0, 0, 2, 0x05, 0x01, 0x01], |r| {
            assert_eq!(r, Ok((Value::StrictArray(vec![Value::Null, Value::Boolean(true)]), 8)));
        }
        strict_array_empty, [0x0A, 0, 0, 0, 0], |r| {
            assert_eq!(r, Ok((Value::StrictArray(vec![]), 5)));
        }
        strict_array_huge_count, [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x05], |r| {
            assert_eq!(r, Err(Amf0Error::TooManyItems));
        }
        strict_array_count_one_more_than_bytes, [0x0A, 0, 0, 0, 3, 0x05, 0x05], |r| {
            assert_eq!(r, Err(Amf0Error::TooManyItems));
        }
        strict_array_count_fits_bytes_but_values_truncated, [0x0A, 0, 0, 0, 2, 0x00, 0x00], |r| {
            assert_eq!(r, Err(Amf0Error::Truncated));
        }
        date, [0x0B, 0x42, 0x77, 0x00, 0, 0, 0, 0, 0, 0xFF, 0xC4], |r| {
            assert_eq!(r, Ok((Value::Date { millis: f64::from_be_bytes([0x42, 0x77, 0, 0, 0, 0, 0, 0]), tz: -60 }, 11)));
        }
        long_string, b"\x0C\x00\x00\x00\x05hello", |r| {
            let (v, n) = r.unwrap();
            assert_eq!(n, 10);
            assert!(matches!(v, Value::LongString(Cow::Borrowed("hello"))));
        }
        long_string_huge_length, [0x0C, 0xFF, 0xFF, 0xFF, 0xFF, b'a'], |r| {
            assert_eq!(r, Err(Amf0Error::Truncated));
        }
        long_string_invalid_utf8, [0x0C, 0, 0, 0, 2, 0xC3, 0x28], |r| {
            assert_eq!(r, Ok((Value::LongString(Cow::Owned("\u{FFFD}(".into())), 7)));
        }
        empty_input, [], |r| {
            assert_eq!(r, Err(Amf0Error::Truncated));
        }
        bare_object_end, [0x09], |r| {
            assert_eq!(r, Err(Amf0Error::UnexpectedObjectEnd));
        }
        object_end_as_property_value, [0x03, 0x00, 0x01, b'a', 0x09], |r| {
            assert_eq!(r, Err(Amf0Error::UnexpectedObjectEnd));
        }
        unknown_marker_0x12, [0x12], |r| {
            assert_eq!(r, Err(Amf0Error::UnknownMarker(0x12)));
        }
        unknown_marker_0xff, [0xFF, 0, 0], |r| {
            assert_eq!(r, Err(Amf0Error::UnknownMarker(0xFF)));
        }
        unknown_marker_inside_object, [0x03, 0x00, 0x01, b'a', 0x20], |r| {
            assert_eq!(r, Err(Amf0Error::UnknownMarker(0x20)));
        }
        unsupported_movieclip, [0x04], |r| { assert_eq!(r, Err(Amf0Error::Unsupported(0x04))); }
        unsupported_reference, [0x07, 0x00, 0x01], |r| { assert_eq!(r, Err(Amf0Error::Unsupported(0x07))); }
        unsupported_unsupported, [0x0D], |r| { assert_eq!(r, Err(Amf0Error::Unsupported(0x0D))); }
        unsupported_recordset, [0x0E], |r| { assert_eq!(r, Err(Amf0Error::Unsupported(0x0E))); }
        unsupported_xml, [0x0F, 0, 0, 0, 0], |r| { assert_eq!(r, Err(Amf0Error::Unsupported(0x0F))); }
        unsupported_typed_object, [0x10, 0, 1, b'T', 0, 0, 9], |r| { assert_eq!(r, Err(Amf0Error::Unsupported(0x10))); }
        unsupported_avmplus, [0x11, 0x01], |r| { assert_eq!(r, Err(Amf0Error::Unsupported(0x11))); }
        depth_max_objects_ok, nested_objects(MAX_DEPTH), |r| {
            let (mut v, n) = r.unwrap();
            assert_eq!(n, MAX_DEPTH * 7 + 1);
            for _ in 0..MAX_DEPTH {
                v = v.get("a").unwrap().clone();
            }
            assert_eq!(v, Value::Null);
        }
        depth_max_plus_one_objects, nested_objects(MAX_DEPTH + 1), |r| {
            assert_eq!(r, Err(Amf0Error::TooDeep));
        }
        depth_bomb_objects, nested_objects(100_000), |r| {
            assert_eq!(r, Err(Amf0Error::TooDeep));
        }
        depth_max_strict_arrays_ok, nested_strict_arrays(MAX_DEPTH), |r| {
            assert_eq!(r.unwrap().1, MAX_DEPTH * 5 + 1);
        }
        depth_bomb_strict_arrays, nested_strict_arrays(100_000), |r| {
            assert_eq!(r, Err(Amf0Error::TooDeep));
        }
        depth_bomb_ecma_arrays, [0x08, 0, 0, 0, 1, 0, 1, b'a'].repeat(100_000), |r| {
            assert_eq!(r, Err(Amf0Error::TooDeep));
        }
    }

    #[test]
    fn decode_all_reads_every_value() {
        let buf = b"\x02\x00\x07connect\x00\x3F\xF0\0\0\0\0\0\0\x05";
        assert_eq!(decode_all(buf), Ok(vec![Value::str("connect"), Value::Number(1.0), Value::Null]));
        assert_eq!(decode_all(&[]), Ok(vec![]));
        assert_eq!(decode_all(&[0x05, 0x02, 0x00]), Err(Amf0Error::Truncated));
    }

    /// One value of every kind, each with nesting where it can have any.
    fn every_kind() -> Vec<Value<'static>> {
        vec![
            Value::Number(-1.5e300),
            Value::Number(f64::INFINITY),
            Value::Boolean(true),
            Value::Boolean(false),
            Value::str("rtmp://127.0.0.1/live"),
            Value::String(Cow::Owned("x".repeat(65535))),
            Value::object([("a", Value::Null), ("b", Value::object([("c", Value::Undefined)]))]),
            Value::object([]),
            Value::Null,
            Value::Undefined,
            Value::ecma_array([
                ("width", Value::Number(1920.0)),
                ("list", Value::StrictArray(vec![Value::Boolean(false)])),
            ]),
            Value::StrictArray(vec![Value::Number(1.0), Value::str("two"), Value::StrictArray(vec![])]),
            Value::Date { millis: 1.7e12, tz: 0 },
            Value::Date { millis: -1.0, tz: -300 },
            Value::LongString(Cow::Borrowed("short but long-encoded")),
            Value::LongString(Cow::Owned("y".repeat(70_000))),
        ]
    }

    #[test]
    fn round_trip_every_kind() {
        for v in every_kind() {
            let bytes = enc(&v);
            assert_eq!(decode(&bytes), Ok((v.clone(), bytes.len())), "{v:?}");
            assert_eq!(decode(&bytes).unwrap().0.into_owned(), v);
        }
    }

    #[test]
    fn encoded_value_gives_back_every_kind() {
        for v in every_kind() {
            let kept = EncodedValue::new(&v);
            assert_eq!(kept.value(), v);
            assert_eq!(format!("{kept:?}"), format!("{v:?}"));
        }
        // Deepest nesting the decoder accepts, and a default: Null.
        let bytes = nested_objects(MAX_DEPTH);
        let deep = decode(&bytes).unwrap().0;
        assert_eq!(EncodedValue::new(&deep).value(), deep);
        assert_eq!(EncodedValue::default().value(), Value::Null);
    }

    #[test]
    fn round_trip_all_in_one_buffer() {
        let values = every_kind();
        let mut bytes = Vec::new();
        for v in &values {
            encode(v, &mut bytes);
        }
        assert_eq!(decode_all(&bytes), Ok(values));
    }

    #[test]
    fn encode_exact_bytes() {
        assert_eq!(enc(&Value::Number(1.0)), b"\x00\x3F\xF0\0\0\0\0\0\0");
        assert_eq!(enc(&Value::Boolean(true)), [0x01, 0x01]);
        assert_eq!(enc(&Value::str("ab")), b"\x02\x00\x02ab");
        assert_eq!(enc(&Value::Null), [0x05]);
        assert_eq!(enc(&Value::Undefined), [0x06]);
        assert_eq!(enc(&Value::object([("k", Value::Null)])), b"\x03\x00\x01k\x05\x00\x00\x09");
        assert_eq!(
            enc(&Value::ecma_array([("k", Value::Null), ("j", Value::Null)])),
            b"\x08\x00\x00\x00\x02\x00\x01k\x05\x00\x01j\x05\x00\x00\x09"
        );
        assert_eq!(enc(&Value::StrictArray(vec![Value::Null])), b"\x0A\x00\x00\x00\x01\x05");
        assert_eq!(enc(&Value::Date { millis: 0.0, tz: 1 }), b"\x0B\0\0\0\0\0\0\0\0\x00\x01");
        assert_eq!(enc(&Value::LongString(Cow::Borrowed("ab"))), b"\x0C\x00\x00\x00\x02ab");
    }

    #[test]
    fn string_longer_than_u16_encodes_as_long_string() {
        let s = "z".repeat(65536);
        let bytes = enc(&Value::String(Cow::Borrowed(&s)));
        assert_eq!(&bytes[..5], [0x0C, 0x00, 0x01, 0x00, 0x00]);
        assert_eq!(bytes.len(), 5 + 65536);
        assert_eq!(decode(&bytes), Ok((Value::LongString(Cow::Borrowed(&s)), bytes.len())));
    }

    #[test]
    fn overlong_key_is_cut_on_a_char_boundary() {
        // 21846 three-byte chars = 65538 bytes; 21845 of them fit in 65535.
        let key = "直".repeat(21846);
        let v = Value::Object(vec![(Cow::Owned(key.clone()), Value::Null)]);
        let bytes = enc(&v);
        let (back, n) = decode(&bytes).unwrap();
        assert_eq!(n, bytes.len());
        let Value::Object(props) = back else { panic!("not an object: {back:?}") };
        assert_eq!(props.len(), 1);
        assert_eq!(props[0].0.len(), 65535);
        assert_eq!(props[0].0, key[..65535]);
    }

    fn has_strict_array(v: &Value<'_>) -> bool {
        match v {
            Value::StrictArray(_) => true,
            Value::Object(p) | Value::EcmaArray(p) => p.iter().any(|(_, v)| has_strict_array(v)),
            _ => false,
        }
    }

    #[test]
    fn truncated_at_every_position() {
        for v in every_kind() {
            let bytes = enc(&v);
            for cut in 0..bytes.len() {
                let got = decode(&bytes[..cut]);
                // A strict array cut short may claim more items than the
                // bytes left, which is reported as such.
                if has_strict_array(&v) && got == Err(Amf0Error::TooManyItems) {
                    continue;
                }
                assert_eq!(got, Err(Amf0Error::Truncated), "{v:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn strict_array_cut_after_count_is_too_many_items() {
        let bytes = enc(&Value::StrictArray(vec![Value::Null, Value::Null]));
        assert_eq!(decode(&bytes[..5]), Err(Amf0Error::TooManyItems));
        assert_eq!(decode(&bytes[..6]), Err(Amf0Error::TooManyItems));
        assert_eq!(decode(&bytes[..7]), Ok((Value::StrictArray(vec![Value::Null, Value::Null]), 7)));
    }

    #[test]
    fn display_names_the_problem() {
        assert_eq!(Amf0Error::Truncated.to_string(), "AMF0 value truncated");
        assert_eq!(Amf0Error::UnknownMarker(0x42).to_string(), "unknown AMF0 marker 0x42");
        assert_eq!(Amf0Error::Unsupported(0x07).to_string(), "AMF0 reference marker 0x07 is not supported");
        assert_eq!(Amf0Error::Unsupported(0x11).to_string(), "AMF0 AVM+ (AMF3) marker 0x11 is not supported");
        assert_eq!(Amf0Error::TooDeep.to_string(), "AMF0 nesting deeper than 32 levels");
    }
}
