//! RTMP command messages (AMF0 type 20, AMF3-wrapped type 17) and data
//! messages (AMF0 type 18, AMF3-wrapped type 15).
//!
//! A command is `name, transaction id, command object, args...`, all AMF0
//! values. The AMF3 message types carry the same AMF0 body behind one format
//! byte (0x00 in practice), which is skipped whatever its value.

use std::borrow::Cow;
use std::fmt;

use super::amf0::{self, Amf0Error, Value};

/// A command message such as `connect`, `createStream`, `publish`, `play`,
/// `_result` or `onStatus`.
#[derive(Debug, Clone, PartialEq)]
pub struct Command<'a> {
    pub name: Cow<'a, str>,
    pub transaction_id: f64,
    /// The command object; `Null` when the peer sent none.
    pub object: Value<'a>,
    /// Every value after the command object, in order.
    pub args: Vec<Value<'a>>,
}

impl<'a> Command<'a> {
    /// A command with a `Null` command object and no args.
    pub fn new(name: &'a str, transaction_id: f64) -> Self {
        Command { name: Cow::Borrowed(name), transaction_id, object: Value::Null, args: Vec::new() }
    }

    /// Replaces the command object.
    pub fn with_object(mut self, v: Value<'a>) -> Self {
        self.object = v;
        self
    }

    /// Appends one argument.
    pub fn arg(mut self, v: Value<'a>) -> Self {
        self.args.push(v);
        self
    }

    /// The first argument, where `publish`/`play` carry the stream name and
    /// `_result`/`onStatus` their information object.
    pub fn first_arg(&self) -> Option<&Value<'a>> {
        self.args.first()
    }

    /// Decodes a command message payload.
    ///
    /// `amf3` = message type 17: the payload starts with one format byte to
    /// skip. A command with a name but no transaction id is rejected; a
    /// missing command object decodes as `Null`.
    pub fn decode(payload: &'a [u8], amf3: bool) -> Result<Command<'a>, CommandError> {
        let mut rest = skip_amf3_format(payload, amf3);
        let name = name(&mut rest)?;
        let transaction_id = match next(&mut rest)? {
            Some(Value::Number(n)) => n,
            _ => return Err(CommandError::MissingTransactionId),
        };
        let object = next(&mut rest)?.unwrap_or(Value::Null);
        let args = amf0::decode_all(rest)?;
        Ok(Command { name, transaction_id, object, args })
    }

    /// Appends the AMF0 body (message type 20) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        amf0::encode(&Value::String(Cow::Borrowed(&self.name)), out);
        amf0::encode(&Value::Number(self.transaction_id), out);
        amf0::encode(&self.object, out);
        for a in &self.args {
            amf0::encode(a, out);
        }
    }

    /// Copies every borrowed string so the command outlives the payload.
    pub fn into_owned(self) -> Command<'static> {
        Command {
            name: Cow::Owned(self.name.into_owned()),
            transaction_id: self.transaction_id,
            object: self.object.into_owned(),
            args: self.args.into_iter().map(Value::into_owned).collect(),
        }
    }
}

/// A data message (type 18, or 15 AMF3-wrapped), e.g. `@setDataFrame`
/// followed by `"onMetaData"` and an ECMA array, or a bare `onMetaData`.
#[derive(Debug, Clone, PartialEq)]
pub struct Data<'a> {
    pub name: Cow<'a, str>,
    /// Every value after the name, in order.
    pub values: Vec<Value<'a>>,
}

impl<'a> Data<'a> {
    /// Decodes a data message payload; `amf3` = message type 15 (one format
    /// byte to skip).
    pub fn decode(payload: &'a [u8], amf3: bool) -> Result<Data<'a>, CommandError> {
        let mut rest = skip_amf3_format(payload, amf3);
        let name = name(&mut rest)?;
        let values = amf0::decode_all(rest)?;
        Ok(Data { name, values })
    }

    /// Appends the AMF0 body (message type 18) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        amf0::encode(&Value::String(Cow::Borrowed(&self.name)), out);
        for v in &self.values {
            amf0::encode(v, out);
        }
    }

    /// Copies every borrowed string so the message outlives the payload.
    pub fn into_owned(self) -> Data<'static> {
        Data {
            name: Cow::Owned(self.name.into_owned()),
            values: self.values.into_iter().map(Value::into_owned).collect(),
        }
    }
}

/// Why a command or data message could not be decoded. Every case is the
/// peer's fault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// The AMF0 body itself is malformed.
    Amf0(Amf0Error),
    /// The payload is empty or does not start with a string.
    MissingName,
    /// The name is not followed by a number.
    MissingTransactionId,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Amf0(e) => write!(f, "malformed RTMP command: {e}"),
            CommandError::MissingName => f.write_str("RTMP command or data message does not start with a name"),
            CommandError::MissingTransactionId => f.write_str("RTMP command has no transaction id"),
        }
    }
}

impl std::error::Error for CommandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CommandError::Amf0(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Amf0Error> for CommandError {
    fn from(e: Amf0Error) -> Self {
        CommandError::Amf0(e)
    }
}

fn skip_amf3_format(payload: &[u8], amf3: bool) -> &[u8] {
    if amf3 {
        payload.get(1..).unwrap_or_default()
    } else {
        payload
    }
}

/// The next value of `rest`, advancing it; `None` at the end.
fn next<'a>(rest: &mut &'a [u8]) -> Result<Option<Value<'a>>, Amf0Error> {
    if rest.is_empty() {
        return Ok(None);
    }
    let (v, n) = amf0::decode(rest)?;
    *rest = rest.get(n..).unwrap_or_default();
    Ok(Some(v))
}

fn name<'a>(rest: &mut &'a [u8]) -> Result<Cow<'a, str>, CommandError> {
    match next(rest)? {
        Some(Value::String(s) | Value::LongString(s)) => Ok(s),
        _ => Err(CommandError::MissingName),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AMF0 string: marker, u16 length, bytes.
    fn s(text: &str) -> Vec<u8> {
        let mut b = vec![0x02];
        b.extend_from_slice(&(text.len() as u16).to_be_bytes());
        b.extend_from_slice(text.as_bytes());
        b
    }

    /// AMF0 number.
    fn n(x: f64) -> Vec<u8> {
        let mut b = vec![0x00];
        b.extend_from_slice(&x.to_be_bytes());
        b
    }

    /// Object property key: u16 length, bytes (no marker).
    fn key(k: &str) -> Vec<u8> {
        let mut b = (k.len() as u16).to_be_bytes().to_vec();
        b.extend_from_slice(k.as_bytes());
        b
    }

    /// What FFmpeg (libavformat 59.27.100) sends to publish to
    /// rtmp://127.0.0.1:1935/live, written out byte by byte.
    const FFMPEG_CONNECT: &[u8] = b"\
        \x02\x00\x07connect\
        \x00\x3F\xF0\x00\x00\x00\x00\x00\x00\
        \x03\
        \x00\x03app\x02\x00\x04live\
        \x00\x04type\x02\x00\x0Anonprivate\
        \x00\x08flashVer\x02\x00\x24FMLE/3.0 (compatible; Lavf59.27.100)\
        \x00\x05tcUrl\x02\x00\x1Artmp://127.0.0.1:1935/live\
        \x00\x00\x09";

    /// `payload, amf3, |result| { .. }`: one `#[test]` per command payload.
    macro_rules! command {
        ($($name:ident, $bytes:expr, $amf3:expr, |$res:ident| $body:block)*) => {$(
            #[test]
            fn $name() {
                let buf: Vec<u8> = $bytes.to_vec();
                let $res = Command::decode(&buf, $amf3);
                $body
            }
        )*};
    }

    command! {
        ffmpeg_connect, FFMPEG_CONNECT, false, |r| {
            let c = r.unwrap();
            assert_eq!(c.name, "connect");
            assert_eq!(c.transaction_id, 1.0);
            assert_eq!(c.object, Value::object([
                ("app", Value::str("live")),
                ("type", Value::str("nonprivate")),
                ("flashVer", Value::str("FMLE/3.0 (compatible; Lavf59.27.100)")),
                ("tcUrl", Value::str("rtmp://127.0.0.1:1935/live")),
            ]));
            assert_eq!(c.object.get("tcUrl").and_then(Value::as_str), Some("rtmp://127.0.0.1:1935/live"));
            assert_eq!(c.args, vec![]);
            let mut out = Vec::new();
            c.encode(&mut out);
            assert_eq!(out, FFMPEG_CONNECT);
        }
        ffmpeg_connect_amf3_wrapped, [&[0x00][..], FFMPEG_CONNECT].concat(), true, |r| {
            let c = r.unwrap();
            assert_eq!(c.name, "connect");
            assert_eq!(c.object.get("app"), Some(&Value::str("live")));
        }
        amf3_format_byte_is_skipped_whatever_it_is, [&[0x03][..], &s("createStream"), &n(2.0), &[0x05]].concat(), true, |r| {
            assert_eq!(r, Ok(Command::new("createStream", 2.0)));
        }
        amf3_without_format_byte_flag_fails, [&[0x00][..], FFMPEG_CONNECT].concat(), false, |r| {
            // Read as AMF0, the format byte is a Number marker, not a name.
            assert_eq!(r, Err(CommandError::MissingName));
        }
        create_stream, [s("createStream"), n(4.0), vec![0x05]].concat(), false, |r| {
            assert_eq!(r, Ok(Command::new("createStream", 4.0)));
        }
        publish, [s("publish"), n(5.0), vec![0x05], s("livestream"), s("live")].concat(), false, |r| {
            let c = r.unwrap();
            assert_eq!(c, Command::new("publish", 5.0).arg(Value::str("livestream")).arg(Value::str("live")));
            assert_eq!(c.first_arg().and_then(Value::as_str), Some("livestream"));
        }
        play_ffmpeg, [s("play"), n(4.0), vec![0x05], s("livestream"), vec![0x00, 0xC0, 0x9F, 0x40, 0, 0, 0, 0, 0]].concat(), false, |r| {
            assert_eq!(r, Ok(Command::new("play", 4.0).arg(Value::str("livestream")).arg(Value::Number(-2000.0))));
        }
        result_create_stream, [s("_result"), n(4.0), vec![0x05], n(1.0)].concat(), false, |r| {
            assert_eq!(r, Ok(Command::new("_result", 4.0).arg(Value::Number(1.0))));
        }
        result_connect, [
            s("_result"), n(1.0),
            vec![0x03], key("fmsVer"), s("FMS/3,5,3,888"), key("capabilities"), n(127.0), key("mode"), n(1.0), vec![0, 0, 9],
            vec![0x03], key("level"), s("status"), key("code"), s("NetConnection.Connect.Success"),
            key("data"), vec![0x08, 0, 0, 0, 1], key("srs_id"), s("x1"), vec![0, 0, 9],
            vec![0, 0, 9],
        ].concat(), false, |r| {
            let c = r.unwrap();
            assert_eq!(c.name, "_result");
            assert_eq!(c.object.get("capabilities"), Some(&Value::Number(127.0)));
            let info = c.first_arg().unwrap();
            assert_eq!(info.get("code").and_then(Value::as_str), Some("NetConnection.Connect.Success"));
            assert_eq!(info.get("data").and_then(|d| d.get("srs_id")), Some(&Value::str("x1")));
            assert_eq!(c.args.len(), 1);
        }
        on_status, [
            s("onStatus"), n(0.0), vec![0x05],
            vec![0x03], key("level"), s("status"), key("code"), s("NetStream.Publish.Start"), vec![0, 0, 9],
        ].concat(), false, |r| {
            let c = r.unwrap();
            assert_eq!(c, Command::new("onStatus", 0.0).arg(Value::object([
                ("level", Value::str("status")),
                ("code", Value::str("NetStream.Publish.Start")),
            ])));
        }
        on_status_without_command_object, [s("onStatus"), n(0.0)].concat(), false, |r| {
            assert_eq!(r, Ok(Command::new("onStatus", 0.0)));
        }
        name_as_long_string, [vec![0x0C, 0, 0, 0, 4], b"play".to_vec(), n(0.0)].concat(), false, |r| {
            assert_eq!(r, Ok(Command::new("play", 0.0)));
        }
        missing_transaction_id, s("connect"), false, |r| {
            assert_eq!(r, Err(CommandError::MissingTransactionId));
        }
        transaction_id_not_a_number, [s("connect"), vec![0x05]].concat(), false, |r| {
            assert_eq!(r, Err(CommandError::MissingTransactionId));
        }
        empty_payload, [], false, |r| {
            assert_eq!(r, Err(CommandError::MissingName));
        }
        empty_amf3_payload, [], true, |r| {
            assert_eq!(r, Err(CommandError::MissingName));
        }
        amf3_format_byte_only, [0x00], true, |r| {
            assert_eq!(r, Err(CommandError::MissingName));
        }
        name_not_a_string, [n(1.0), n(1.0)].concat(), false, |r| {
            assert_eq!(r, Err(CommandError::MissingName));
        }
        truncated_name, [0x02, 0x00, 0x07, b'c'], false, |r| {
            assert_eq!(r, Err(CommandError::Amf0(Amf0Error::Truncated)));
        }
        truncated_arg, [s("publish"), n(5.0), vec![0x05], vec![0x02, 0x00, 0x09, b'x']].concat(), false, |r| {
            assert_eq!(r, Err(CommandError::Amf0(Amf0Error::Truncated)));
        }
        unsupported_arg, [s("call"), n(3.0), vec![0x05, 0x11]].concat(), false, |r| {
            assert_eq!(r, Err(CommandError::Amf0(Amf0Error::Unsupported(0x11))));
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// `connect` payloads captured from FFmpeg 5.1 (Lavf59.27.100) talking
    /// to this crate's server handshake over TCP: publishing to
    /// rtmp://127.0.0.1:1935/live/livestream, and playing from port 19351.
    const CAPTURED_PUBLISH_CONNECT: &str = "020007636f6e6e656374003ff000000000000003\
        00036170700200046c69766500047479706502000a6e6f6e707269766174650008666c6173685665\
        72020024464d4c452f332e302028636f6d70617469626c653b204c61766635392e32372e31303029\
        0005746355726c02001a72746d703a2f2f3132372e302e302e313a313933352f6c697665000009";
    const CAPTURED_PLAY_CONNECT: &str = "020007636f6e6e656374003ff000000000000003\
        00036170700200046c6976650008666c61736856657202000d4c4e5820392c302c3132342c320005\
        746355726c02001b72746d703a2f2f3132372e302e302e313a31393335312f6c6976650004667061\
        640100000c6361706162696c697469657300402e000000000000000b617564696f436f6465637300\
        40afce0000000000000b766964656f436f6465637300406f800000000000000d766964656f46756e\
        6374696f6e003ff0000000000000000009";

    #[test]
    fn hand_built_connect_matches_ffmpeg_capture() {
        assert_eq!(hex(CAPTURED_PUBLISH_CONNECT), FFMPEG_CONNECT);
    }

    #[test]
    fn ffmpeg_play_connect_capture() {
        let payload = hex(CAPTURED_PLAY_CONNECT);
        assert_eq!(payload.len(), 197);
        let c = Command::decode(&payload, false).unwrap();
        assert_eq!(c.name, "connect");
        assert_eq!(c.transaction_id, 1.0);
        assert_eq!(
            c.object,
            Value::object([
                ("app", Value::str("live")),
                ("flashVer", Value::str("LNX 9,0,124,2")),
                ("tcUrl", Value::str("rtmp://127.0.0.1:19351/live")),
                ("fpad", Value::Boolean(false)),
                ("capabilities", Value::Number(15.0)),
                ("audioCodecs", Value::Number(4071.0)),
                ("videoCodecs", Value::Number(252.0)),
                ("videoFunction", Value::Number(1.0)),
            ])
        );
        assert!(c.args.is_empty());
        let mut out = Vec::new();
        c.encode(&mut out);
        assert_eq!(out, payload);
    }

    #[test]
    fn ffmpeg_connect_truncated_anywhere() {
        for cut in 0..FFMPEG_CONNECT.len() {
            let expected = match cut {
                0 => Err(CommandError::MissingName),
                // Right after the name: nothing follows it.
                10 => Err(CommandError::MissingTransactionId),
                // Right after the transaction id: a command without object.
                19 => Ok(Command::new("connect", 1.0)),
                _ => Err(CommandError::Amf0(Amf0Error::Truncated)),
            };
            assert_eq!(Command::decode(&FFMPEG_CONNECT[..cut], false), expected, "cut at {cut}");
        }
    }

    #[test]
    fn encode_builder_exact_bytes() {
        let mut out = Vec::new();
        Command::new("publish", 5.0).arg(Value::str("livestream")).arg(Value::str("live")).encode(&mut out);
        let expected = [s("publish"), n(5.0), vec![0x05], s("livestream"), s("live")].concat();
        assert_eq!(out, expected);

        let mut out = Vec::new();
        Command::new("connect", 1.0)
            .with_object(Value::object([("tcUrl", Value::str("rtmp://127.0.0.1:1935/live"))]))
            .encode(&mut out);
        let expected =
            [s("connect"), n(1.0), vec![0x03], key("tcUrl"), s("rtmp://127.0.0.1:1935/live"), vec![0, 0, 9]].concat();
        assert_eq!(out, expected);
    }

    #[test]
    fn round_trip_and_into_owned() {
        let c = Command::new("_result", 1.0)
            .with_object(Value::object([("fmsVer", Value::str("FMS/3,5,3,888"))]))
            .arg(Value::ecma_array([("srs_id", Value::str("abc"))]))
            .arg(Value::Undefined);
        let mut out = Vec::new();
        c.encode(&mut out);
        let owned = Command::decode(&out, false).unwrap().into_owned();
        assert_eq!(owned, c);
    }

    #[test]
    fn data_set_data_frame() {
        let payload = [
            s("@setDataFrame"),
            s("onMetaData"),
            vec![0x08, 0, 0, 0, 2],
            key("width"),
            n(1280.0),
            key("encoder"),
            s("Lavf59.27.100"),
            vec![0, 0, 9],
        ]
        .concat();
        let d = Data::decode(&payload, false).unwrap();
        assert_eq!(d.name, "@setDataFrame");
        assert_eq!(
            d.values,
            vec![
                Value::str("onMetaData"),
                Value::ecma_array([("width", Value::Number(1280.0)), ("encoder", Value::str("Lavf59.27.100")),]),
            ]
        );
        let mut out = Vec::new();
        d.encode(&mut out);
        assert_eq!(out, payload);

        let wrapped = [&[0x00][..], &payload].concat();
        assert_eq!(Data::decode(&wrapped, true).unwrap().into_owned(), d);
    }

    #[test]
    fn data_errors() {
        assert_eq!(Data::decode(&[], false), Err(CommandError::MissingName));
        assert_eq!(Data::decode(&n(1.0), false), Err(CommandError::MissingName));
        assert_eq!(
            Data::decode(&[s("onMetaData"), vec![0x08, 0, 0, 0, 0]].concat(), false),
            Err(CommandError::Amf0(Amf0Error::Truncated))
        );
        assert_eq!(
            Data::decode(&s("onMetaData"), false),
            Ok(Data { name: Cow::Borrowed("onMetaData"), values: vec![] })
        );
    }

    #[test]
    fn display_and_source() {
        use std::error::Error;
        let e = CommandError::Amf0(Amf0Error::Truncated);
        assert_eq!(e.to_string(), "malformed RTMP command: AMF0 value truncated");
        assert_eq!(e.source().map(|s| s.to_string()), Some("AMF0 value truncated".to_string()));
        assert_eq!(CommandError::MissingTransactionId.to_string(), "RTMP command has no transaction id");
        assert!(CommandError::MissingName.source().is_none());
    }
}
