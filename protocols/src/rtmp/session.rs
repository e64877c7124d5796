//! What both RTMP session roles share: errors that say who is to blame, and
//! writers for the few control and command messages the proxy sends itself.

use super::amf0::{Amf0Error, Value};
use super::chunk::{self, ChunkError, Encoder, MessageHeader};
use super::command::{Command, CommandError};
use super::handshake::HandshakeError;
use std::fmt;

/// Chunk stream ids the proxy writes its own messages on.
pub const CID_CONTROL: u32 = 2;
pub const CID_COMMAND: u32 = 3;
/// Where SRS and nginx-rtmp send a stream's status (onStatus): the proxy
/// does the same, so that what it told a client leaves the client's chunk
/// stream 3 as the origin's answers left the proxy's (both end with the
/// createStream result), one of the conditions for splicing the relay.
pub const CID_STATUS: u32 = 5;
/// FFmpeg and librtmp send publish/play and stream commands here.
pub const CID_STREAM: u32 = 8;

/// Why an RTMP session failed, by blame.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionError {
    /// The peer's bytes are not RTMP (bad handshake, chunk or AMF0 encoding).
    Malformed(String),
    /// Well-formed RTMP used against the protocol (e.g. `play` before `connect`).
    Misbehaved(String),
    /// The origin refused what we asked (e.g. `_error` on connect, or a
    /// publish status other than Publish.Start).
    Rejected { code: String, description: String },
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Malformed(e) => write!(f, "malformed RTMP: {e}"),
            SessionError::Misbehaved(e) => write!(f, "protocol misuse: {e}"),
            SessionError::Rejected { code, description } => {
                write!(f, "refused: {code} ({description})")
            }
        }
    }
}

impl std::error::Error for SessionError {}

impl From<ChunkError> for SessionError {
    fn from(e: ChunkError) -> Self {
        SessionError::Malformed(e.to_string())
    }
}
impl From<HandshakeError> for SessionError {
    fn from(e: HandshakeError) -> Self {
        SessionError::Malformed(format!("handshake: {e}"))
    }
}
impl From<CommandError> for SessionError {
    fn from(e: CommandError) -> Self {
        SessionError::Malformed(format!("command: {e}"))
    }
}
impl From<Amf0Error> for SessionError {
    fn from(e: Amf0Error) -> Self {
        SessionError::Malformed(format!("amf0: {e}"))
    }
}

/// Publisher or player: what a client asked to do with a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Publish,
    Play,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Publish => "publish",
            Role::Play => "play",
        }
    }
}

pub(crate) fn write_control(enc: &mut Encoder, type_id: u8, payload: &[u8], out: &mut Vec<u8>) {
    let h = MessageHeader { timestamp: 0, length: payload.len() as u32, type_id, stream_id: 0 };
    enc.write_message(CID_CONTROL, &h, payload, out);
}

pub(crate) fn write_window_ack_size(enc: &mut Encoder, size: u32, out: &mut Vec<u8>) {
    write_control(enc, chunk::TYPE_WINDOW_ACK_SIZE, &size.to_be_bytes(), out);
}

pub(crate) fn write_peer_bandwidth(enc: &mut Encoder, size: u32, out: &mut Vec<u8>) {
    let b = size.to_be_bytes();
    write_control(enc, chunk::TYPE_SET_PEER_BANDWIDTH, &[b[0], b[1], b[2], b[3], 2], out);
}

/// Writes SetChunkSize and switches the encoder to it.
pub(crate) fn write_chunk_size(enc: &mut Encoder, size: u32, out: &mut Vec<u8>) {
    write_control(enc, chunk::TYPE_SET_CHUNK_SIZE, &size.to_be_bytes(), out);
    enc.set_chunk_size(size);
}

pub(crate) fn write_user_control(enc: &mut Encoder, event: u16, data: &[u8], out: &mut Vec<u8>) {
    let mut p = Vec::with_capacity(2 + data.len());
    p.extend_from_slice(&event.to_be_bytes());
    p.extend_from_slice(data);
    write_control(enc, chunk::TYPE_USER_CONTROL, &p, out);
}

pub(crate) fn write_command(enc: &mut Encoder, cid: u32, stream_id: u32, cmd: &Command<'_>, out: &mut Vec<u8>) {
    let mut p = Vec::with_capacity(256);
    cmd.encode(&mut p);
    let h = MessageHeader { timestamp: 0, length: p.len() as u32, type_id: chunk::TYPE_COMMAND_AMF0, stream_id };
    enc.write_message(cid, &h, &p, out);
}

/// An onStatus command with the usual info object.
pub(crate) fn on_status<'a>(level: &'a str, code: &'a str, description: &'a str) -> Command<'a> {
    Command::new("onStatus", 0.0).arg(Value::object([
        ("level", Value::str(level)),
        ("code", Value::str(code)),
        ("description", Value::str(description)),
        ("clientid", Value::str("ASAICiss")),
    ]))
}

/// A message a peer may receive again without effect, of exactly the type,
/// length and stream of `h` (the header a relay wants the peer to have seen
/// last on some chunk stream; see `chunk::Relay::resync`), or `None`:
/// * a SetChunkSize (4 bytes) of `chunk_size`, the size already in force;
/// * toward a client (`client: Some((role, stream_id))`), which was told
///   its stream began and started: a user control StreamBegin (6 bytes) of
///   its stream, and, on its stream, the start status again (onStatus
///   `NetStream.Play.Start` or `NetStream.Publish.Start`, level and code
///   and a description cut or padded with spaces to the length).
pub fn no_op_message(h: &MessageHeader, chunk_size: u32, client: Option<(Role, u32)>) -> Option<Vec<u8>> {
    match (h.type_id, h.length, client) {
        (chunk::TYPE_SET_CHUNK_SIZE, 4, _) => Some(chunk_size.to_be_bytes().to_vec()),
        (chunk::TYPE_USER_CONTROL, 6, Some((_, sid))) => {
            let mut p = vec![0, 0];
            p.extend_from_slice(&sid.to_be_bytes());
            Some(p)
        }
        (chunk::TYPE_COMMAND_AMF0, len, Some((role, sid))) if h.stream_id == sid => {
            let (code, text) = match role {
                Role::Play => ("NetStream.Play.Start", "Started playing stream."),
                Role::Publish => ("NetStream.Publish.Start", "Started publishing stream."),
            };
            let status = |description: &str| {
                let mut p = Vec::new();
                Command::new("onStatus", 0.0)
                    .arg(Value::object([
                        ("level", Value::str("status")),
                        ("code", Value::str(code)),
                        ("description", Value::str(description)),
                    ]))
                    .encode(&mut p);
                p
            };
            // The description takes what the length leaves: the text, cut
            // short or padded with spaces.
            let room = (len as usize).checked_sub(status("").len())?;
            Some(status(&format!("{text:room$.room$}")))
        }
        _ => None,
    }
}

/// Decodes a command message (AMF0 or AMF3-wrapped), `None` for other types.
pub(crate) fn decode_command<'a>(type_id: u8, payload: &'a [u8]) -> Result<Option<Command<'a>>, SessionError> {
    match type_id {
        chunk::TYPE_COMMAND_AMF0 => Ok(Some(Command::decode(payload, false)?)),
        chunk::TYPE_COMMAND_AMF3 => Ok(Some(Command::decode(payload, true)?)),
        _ => Ok(None),
    }
}

/// The result of feeding bytes to one step of a session: the caller drops
/// `consumed` bytes from its buffer and keeps the rest for the next call.
pub enum Advance<S, N> {
    /// Still in this step (more bytes needed).
    Stay { consumed: usize, state: S },
    /// This step is done; `next` takes over from byte `consumed`.
    Next { consumed: usize, next: N },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(length: u32, type_id: u8, stream_id: u32) -> MessageHeader {
        MessageHeader { timestamp: 0, length, type_id, stream_id }
    }

    const CLIENT: Option<(Role, u32)> = Some((Role::Play, 1));

    #[test]
    fn no_op_set_chunk_size_is_the_size_in_force_either_way() {
        let set = h(4, chunk::TYPE_SET_CHUNK_SIZE, 0);
        assert_eq!(no_op_message(&set, 4096, None), Some(4096u32.to_be_bytes().to_vec()));
        assert_eq!(no_op_message(&set, 128, CLIENT), Some(128u32.to_be_bytes().to_vec()));
        assert_eq!(no_op_message(&h(5, chunk::TYPE_SET_CHUNK_SIZE, 0), 128, CLIENT), None);
    }

    #[test]
    fn no_op_user_control_is_stream_begin_of_the_clients_stream_and_only_toward_it() {
        let uc = h(6, chunk::TYPE_USER_CONTROL, 0);
        assert_eq!(no_op_message(&uc, 128, Some((Role::Play, 7))), Some(vec![0, 0, 0, 0, 0, 7]));
        assert_eq!(no_op_message(&uc, 128, None), None, "nothing toward an origin");
        assert_eq!(no_op_message(&h(10, chunk::TYPE_USER_CONTROL, 0), 128, CLIENT), None);
    }

    #[test]
    fn no_op_status_repeats_the_start_at_exactly_the_length() {
        for (role, code) in [(Role::Play, "NetStream.Play.Start"), (Role::Publish, "NetStream.Publish.Start")] {
            for len in [90u32, 109, 121, 300] {
                let p = no_op_message(&h(len, chunk::TYPE_COMMAND_AMF0, 1), 128, Some((role, 1)))
                    .unwrap_or_else(|| panic!("{code} in {len} bytes"));
                assert_eq!(p.len(), len as usize);
                let c = Command::decode(&p, false).expect("a valid command");
                assert_eq!(c.name, "onStatus");
                let info = c.args.first().expect("the info object");
                assert_eq!(info.get("code").and_then(|v| v.as_str()), Some(code));
                assert_eq!(info.get("level").and_then(|v| v.as_str()), Some("status"));
            }
        }
    }

    #[test]
    fn no_op_status_none_when_too_short_off_the_stream_or_toward_an_origin() {
        assert_eq!(no_op_message(&h(29, chunk::TYPE_COMMAND_AMF0, 1), 128, CLIENT), None, "too short");
        assert_eq!(no_op_message(&h(120, chunk::TYPE_COMMAND_AMF0, 0), 128, CLIENT), None, "stream 0");
        assert_eq!(no_op_message(&h(120, chunk::TYPE_COMMAND_AMF0, 1), 128, None), None, "toward an origin");
        assert_eq!(no_op_message(&h(120, chunk::TYPE_DATA_AMF0, 1), 128, CLIENT), None, "data");
        assert_eq!(no_op_message(&h(8, chunk::TYPE_AUDIO, 1), 128, CLIENT), None, "media");
    }
}
