//! The proxy as an RTMP server, facing the publisher or player: handshake,
//! `connect`, the identify loop up to `publish` or `play`, and the start
//! status once the origin said yes. Typestate: each step owns only what it
//! needs and consumes itself into the next, so steps cannot be skipped.
//!
//! `ExpectC0C1 -> ExpectC2 -> ExpectConnect -> ExpectPublishOrPlay -> Identified`
//! then `Identified::start` (or `reject`) hands the chunk state to the relay.

use super::amf0::{EncodedValue, Value};
use super::chunk::{self, Assembler, Decoder, Encoder, Limits};
use super::command::Command;
use super::handshake::{self, Step, RANDOM_LEN};
use super::session::{
    decode_command, on_status, write_chunk_size, write_command, write_peer_bandwidth, write_user_control,
    write_window_ack_size, Advance, Role, SessionError, CID_COMMAND, CID_STATUS,
};

/// What the proxy says about itself in `connect`'s `_result`.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Goes to `data.srs_version`.
    pub version: String,
    /// Goes to `data.srs_id`: the connection's id, for correlating logs.
    pub conn_id: String,
}

/// The window acknowledgement size SRS announces.
pub const ACK_WINDOW: u32 = 2_500_000;
/// Chunk size for the proxy's own messages to the client.
pub const OUT_CHUNK_SIZE: u32 = 4096;

pub struct ExpectC0C1 {
    hs: handshake::ExpectC0C1,
    info: ServerInfo,
    limits: Limits,
}

impl ExpectC0C1 {
    pub fn new(random: &[u8; RANDOM_LEN], epoch: u32, info: ServerInfo, limits: Limits) -> Self {
        ExpectC0C1 { hs: handshake::ExpectC0C1::new(random, epoch), info, limits }
    }

    pub fn handle(self, buf: &[u8], out: &mut Vec<u8>) -> Result<Advance<Self, ExpectC2>, SessionError> {
        let ExpectC0C1 { hs, info, limits } = self;
        Ok(match hs.handle(buf, out)? {
            Step::Partial(hs) => Advance::Stay { consumed: 0, state: ExpectC0C1 { hs, info, limits } },
            Step::Complete { consumed, next } => Advance::Next { consumed, next: ExpectC2 { hs: next, info, limits } },
        })
    }
}

pub struct ExpectC2 {
    hs: handshake::ExpectC2,
    info: ServerInfo,
    limits: Limits,
}

impl ExpectC2 {
    pub fn kind(&self) -> handshake::HandshakeKind {
        self.hs.kind()
    }

    pub fn handle(self, buf: &[u8]) -> Result<Advance<Self, ExpectConnect>, SessionError> {
        let ExpectC2 { hs, info, limits } = self;
        Ok(match hs.handle(buf)? {
            Step::Partial(hs) => Advance::Stay { consumed: 0, state: ExpectC2 { hs, info, limits } },
            Step::Complete { consumed, .. } => Advance::Next {
                consumed,
                next: ExpectConnect { asm: Assembler::new(limits), enc: Encoder::new(), info },
            },
        })
    }
}

pub struct ExpectConnect {
    asm: Assembler,
    enc: Encoder,
    info: ServerInfo,
}

impl ExpectConnect {
    /// Reads until `connect`, answers it as SRS does.
    pub fn handle(mut self, buf: &[u8], out: &mut Vec<u8>) -> Result<Advance<Self, ExpectPublishOrPlay>, SessionError> {
        let mut pos = 0;
        loop {
            let (n, msg) = self.asm.read(&buf[pos..])?;
            pos += n;
            let Some(msg) = msg else {
                return Ok(Advance::Stay { consumed: pos, state: self });
            };
            let Some(cmd) = decode_command(msg.header.type_id, msg.payload)? else {
                continue; // control, data or media before connect: nothing to answer
            };
            if cmd.name != "connect" {
                return Err(SessionError::Misbehaved(format!("`{}` before `connect`", cmd.name)));
            }
            let tid = cmd.transaction_id;
            let tc_url = cmd.object.get("tcUrl").and_then(|v| v.as_str()).unwrap_or("").to_string();
            let app = cmd.object.get("app").and_then(|v| v.as_str()).unwrap_or("").to_string();
            let object = EncodedValue::new(&cmd.object);
            let mut enc = self.enc;
            write_window_ack_size(&mut enc, ACK_WINDOW, out);
            write_peer_bandwidth(&mut enc, ACK_WINDOW, out);
            write_chunk_size(&mut enc, OUT_CHUNK_SIZE, out);
            let result = Command::new("_result", tid)
                .with_object(Value::object([
                    ("fmsVer", Value::str("FMS/3,5,3,888")),
                    ("capabilities", Value::Number(127.0)),
                    ("mode", Value::Number(1.0)),
                ]))
                .arg(Value::object([
                    ("level", Value::str("status")),
                    ("code", Value::str("NetConnection.Connect.Success")),
                    ("description", Value::str("Connection succeeded")),
                    ("objectEncoding", Value::Number(0.0)),
                    (
                        "data",
                        Value::ecma_array([
                            ("version", Value::str("3,5,3,888")),
                            ("srs_version", Value::str(&self.info.version)),
                            ("srs_id", Value::str(&self.info.conn_id)),
                        ]),
                    ),
                ]));
            write_command(&mut enc, CID_COMMAND, 0, &result, out);
            return Ok(Advance::Next {
                consumed: pos,
                next: ExpectPublishOrPlay { asm: self.asm, enc, tc_url, app, connect: object, stream_id: 0 },
            });
        }
    }
}

pub struct ExpectPublishOrPlay {
    asm: Assembler,
    enc: Encoder,
    tc_url: String,
    app: String,
    connect: EncodedValue,
    /// The message stream the client's commands now go on (1 after createStream).
    stream_id: u32,
}

/// What the client asked for, once it said `publish` or `play`.
#[derive(Debug, Clone)]
pub struct StreamRequest {
    pub role: Role,
    pub tc_url: String,
    pub app: String,
    /// The stream name exactly as sent (it may carry `?query`).
    pub stream: String,
    /// The client's message stream id for media.
    pub stream_id: u32,
    /// The client's `connect` command object, to mirror toward the origin.
    pub connect: EncodedValue,
    /// The client's `publish` or `play` message as it came (AMF0 only), for
    /// the proxy to send the origin on the same chunk stream with the same
    /// header and payload: the origin's view of that chunk stream then
    /// matches the client's, one of the conditions for splicing the relay
    /// toward the origin.
    pub start_message: Option<StartMessage>,
}

/// A client's `publish` or `play` message (see [`StreamRequest::start_message`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartMessage {
    pub cid: u32,
    pub timestamp: u32,
    pub payload: Vec<u8>,
}

enum Action {
    Reply(f64),
    CreateStream(f64),
    Ignore,
    Start(Role, String, u32, Option<StartMessage>),
}

impl ExpectPublishOrPlay {
    pub fn handle(mut self, buf: &[u8], out: &mut Vec<u8>) -> Result<Advance<Self, Identified>, SessionError> {
        let mut pos = 0;
        loop {
            let (n, msg) = self.asm.read(&buf[pos..])?;
            pos += n;
            let Some(msg) = msg else {
                return Ok(Advance::Stay { consumed: pos, state: self });
            };
            let msg_sid = msg.header.stream_id;
            let action = match decode_command(msg.header.type_id, msg.payload)? {
                None => Action::Ignore,
                Some(cmd) => {
                    let name_arg = || cmd.args.first().and_then(|v| v.as_str()).map(str::to_string);
                    match cmd.name.as_ref() {
                        "createStream" => Action::CreateStream(cmd.transaction_id),
                        "getStreamLength" | "deleteStream" | "closeStream" | "receiveAudio" | "receiveVideo" => {
                            Action::Ignore
                        }
                        "connect" => return Err(SessionError::Misbehaved("second `connect`".into())),
                        "publish" | "play" => {
                            let role = if cmd.name == "publish" { Role::Publish } else { Role::Play };
                            match name_arg() {
                                Some(s) if !s.is_empty() => {
                                    let mirror =
                                        (msg.header.type_id == chunk::TYPE_COMMAND_AMF0).then(|| StartMessage {
                                            cid: msg.cid,
                                            timestamp: msg.header.timestamp,
                                            payload: msg.payload.to_vec(),
                                        });
                                    Action::Start(role, s, msg_sid, mirror)
                                }
                                _ => {
                                    return Err(SessionError::Misbehaved(format!(
                                        "`{}` without a stream name",
                                        cmd.name
                                    )))
                                }
                            }
                        }
                        _ if cmd.transaction_id > 0.0 => Action::Reply(cmd.transaction_id),
                        _ => Action::Ignore,
                    }
                }
            };
            match action {
                Action::Ignore => {}
                Action::Reply(tid) => {
                    let r = Command::new("_result", tid).arg(Value::Undefined);
                    write_command(&mut self.enc, CID_COMMAND, self.stream_id, &r, out);
                }
                Action::CreateStream(tid) => {
                    let r = Command::new("_result", tid).arg(Value::Number(1.0));
                    write_command(&mut self.enc, CID_COMMAND, self.stream_id, &r, out);
                    self.stream_id = 1;
                }
                Action::Start(role, stream, sid, start_message) => {
                    let sid = if sid == 0 { self.stream_id } else { sid };
                    match role {
                        Role::Publish => {
                            let c = Command::new("onFCPublish", 0.0).arg(Value::object([
                                ("code", Value::str("NetStream.Publish.Start")),
                                ("description", Value::str("Started publishing stream.")),
                            ]));
                            write_command(&mut self.enc, CID_STATUS, sid, &c, out);
                        }
                        Role::Play => {
                            let c = Command::new("onStatus", 0.0).arg(Value::object([
                                ("level", Value::str("status")),
                                ("code", Value::str("NetStream.Play.Reset")),
                                ("description", Value::str("Playing and resetting stream.")),
                                ("details", Value::str("stream")),
                                ("clientid", Value::str("ASAICiss")),
                            ]));
                            write_command(&mut self.enc, CID_STATUS, sid, &c, out);
                        }
                    }
                    let request = StreamRequest {
                        role,
                        tc_url: self.tc_url,
                        app: self.app,
                        stream,
                        stream_id: sid,
                        connect: self.connect,
                        start_message,
                    };
                    return Ok(Advance::Next {
                        consumed: pos,
                        next: Identified { request, asm: self.asm, enc: self.enc },
                    });
                }
            }
        }
    }
}

/// The client said what it wants; the proxy now asks an origin.
pub struct Identified {
    request: StreamRequest,
    asm: Assembler,
    enc: Encoder,
}

/// Chunk state handed to the relay.
pub struct Relaying {
    /// Reads what the client sends from now on.
    pub decoder: Decoder,
    /// Writes to the client (what it has seen so far).
    pub encoder: Encoder,
    pub stream_id: u32,
}

impl Identified {
    pub fn request(&self) -> &StreamRequest {
        &self.request
    }

    /// The origin accepted: tell the client it may start.
    pub fn start(mut self, out: &mut Vec<u8>) -> Relaying {
        let sid = self.request.stream_id;
        match self.request.role {
            Role::Publish => {
                let c = on_status("status", "NetStream.Publish.Start", "Started publishing stream.");
                write_command(&mut self.enc, CID_STATUS, sid, &c, out);
            }
            Role::Play => {
                // StreamBegin, as an origin would send before the media.
                write_user_control(&mut self.enc, 0, &sid.to_be_bytes(), out);
                let c = Command::new("onStatus", 0.0).arg(Value::object([
                    ("level", Value::str("status")),
                    ("code", Value::str("NetStream.Play.Start")),
                    ("description", Value::str("Started playing stream.")),
                    ("details", Value::str("stream")),
                    ("clientid", Value::str("ASAICiss")),
                ]));
                write_command(&mut self.enc, CID_STATUS, sid, &c, out);
            }
        }
        Relaying { decoder: self.asm.into_decoder(), encoder: self.enc, stream_id: sid }
    }

    /// No origin would take the stream: tell the client why before closing.
    pub fn reject(mut self, description: &str, out: &mut Vec<u8>) {
        let code = match self.request.role {
            Role::Publish => "NetStream.Publish.BadName",
            Role::Play => "NetStream.Play.StreamNotFound",
        };
        let c = on_status("error", code, description);
        write_command(&mut self.enc, CID_STATUS, self.request.stream_id, &c, out);
    }
}
