//! The proxy as an RTMP client, facing the origin: handshake, `connect`
//! (mirroring the client's own connect object, so strict servers such as
//! nginx-rtmp accept it), `createStream`, then `publish` or `play`, up to the
//! origin's start status. Messages the origin sends before that status are
//! consumed here; everything after it belongs to the relay.

use super::amf0::Value;
use super::chunk::{Assembler, Decoder, Encoder, Limits};
use super::command::Command;
use super::handshake::{self, Step, RANDOM_LEN};
use super::server::StreamRequest;
use super::session::{
    decode_command, write_command, write_user_control, write_window_ack_size, Role, SessionError, CID_COMMAND,
    CID_STREAM,
};

const TID_CONNECT: f64 = 1.0;

enum Phase {
    Handshake(handshake::ExpectS0S1S2),
    Connecting,
    CreatingStream { tid: f64 },
    Starting { stream_id: u32 },
    Ready { stream_id: u32 },
}

pub struct ClientSession {
    phase: Phase,
    asm: Assembler,
    enc: Encoder,
    role: Role,
    stream: String,
    app: String,
    tc_url: String,
    connect: Value<'static>,
}

/// What one `handle` call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientProgress {
    /// Drop `consumed` bytes and call again with more.
    NeedMore { consumed: usize },
    /// The origin started the stream; bytes after `consumed` belong to the relay.
    Ready { consumed: usize },
}

impl ClientSession {
    /// Starts the handshake; C0 and C1 are appended to `out`.
    pub fn start(
        random: &[u8; RANDOM_LEN],
        epoch: u32,
        req: &StreamRequest,
        limits: Limits,
        out: &mut Vec<u8>,
    ) -> Self {
        let hs = handshake::ClientHandshake::start(random, epoch, out);
        ClientSession {
            phase: Phase::Handshake(hs),
            asm: Assembler::new(limits),
            enc: Encoder::new(),
            role: req.role,
            stream: req.stream.clone(),
            app: req.app.clone(),
            tc_url: req.tc_url.clone(),
            connect: req.connect.clone(),
        }
    }

    fn connect_object(&self) -> Value<'static> {
        // The client's own object, with app and tcUrl guaranteed present.
        let mut props: Vec<(std::borrow::Cow<'static, str>, Value<'static>)> = match &self.connect {
            Value::Object(p) | Value::EcmaArray(p) => p.clone(),
            _ => Vec::new(),
        };
        let mut ensure = |k: &'static str, v: Value<'static>| {
            if !props.iter().any(|(n, _)| n == k) {
                props.push((k.into(), v));
            }
        };
        ensure("app", Value::String(self.app.clone().into()));
        ensure("tcUrl", Value::String(self.tc_url.clone().into()));
        ensure("type", Value::String("nonprivate".into()));
        ensure(
            "flashVer",
            Value::String(
                match self.role {
                    Role::Publish => "FMLE/3.0 (compatible; srs-proxy)",
                    Role::Play => "LNX 9,0,124,2",
                }
                .into(),
            ),
        );
        Value::Object(props)
    }

    pub fn handle(&mut self, buf: &[u8], out: &mut Vec<u8>) -> Result<ClientProgress, SessionError> {
        let mut pos = 0;
        if let Phase::Handshake(_) = self.phase {
            let Phase::Handshake(hs) = std::mem::replace(&mut self.phase, Phase::Connecting) else {
                return Err(SessionError::Misbehaved("client session phase (bug)".into()));
            };
            match hs.handle(buf, out)? {
                Step::Partial(hs) => {
                    self.phase = Phase::Handshake(hs);
                    return Ok(ClientProgress::NeedMore { consumed: 0 });
                }
                Step::Complete { consumed, .. } => {
                    pos = consumed;
                    let obj = self.connect_object();
                    let c = Command::new("connect", TID_CONNECT).with_object(obj);
                    write_command(&mut self.enc, CID_COMMAND, 0, &c, out);
                }
            }
        }
        loop {
            if let Phase::Ready { .. } = self.phase {
                return Ok(ClientProgress::Ready { consumed: pos });
            }
            let (n, msg) = self.asm.read(&buf[pos..])?;
            pos += n;
            let Some(msg) = msg else {
                return Ok(ClientProgress::NeedMore { consumed: pos });
            };
            let Some(cmd) = decode_command(msg.header.type_id, msg.payload)? else {
                continue; // window size, bandwidth, chunk size (decoder applies it), user control
            };
            let name = cmd.name.to_string();
            let tid = cmd.transaction_id;
            let first_arg = cmd.args.first().map(|v| v.clone().into_owned());
            match (&self.phase, name.as_str()) {
                (Phase::Connecting, "_result") if tid == TID_CONNECT => {
                    write_window_ack_size(&mut self.enc, super::server::ACK_WINDOW, out);
                    let mut next_tid = 2.0;
                    if self.role == Role::Publish {
                        for n in ["releaseStream", "FCPublish"] {
                            let c = Command::new(n, next_tid).arg(Value::str(&self.stream));
                            write_command(&mut self.enc, CID_COMMAND, 0, &c, out);
                            next_tid += 1.0;
                        }
                    }
                    let c = Command::new("createStream", next_tid);
                    write_command(&mut self.enc, CID_COMMAND, 0, &c, out);
                    self.phase = Phase::CreatingStream { tid: next_tid };
                }
                (Phase::Connecting, "_error") if tid == TID_CONNECT => return Err(rejected(first_arg, "connect")),
                (Phase::CreatingStream { tid: want }, "_result") if tid == *want => {
                    let sid = first_arg.as_ref().and_then(|v| v.as_f64()).unwrap_or(0.0);
                    if !(1.0..=16_777_215.0).contains(&sid) {
                        return Err(SessionError::Misbehaved(format!("origin gave stream id {sid}")));
                    }
                    let sid = sid as u32;
                    let c = match self.role {
                        Role::Publish => {
                            Command::new("publish", want + 1.0).arg(Value::str(&self.stream)).arg(Value::str("live"))
                        }
                        Role::Play => Command::new("play", want + 1.0).arg(Value::str(&self.stream)),
                    };
                    write_command(&mut self.enc, CID_STREAM, sid, &c, out);
                    if self.role == Role::Play {
                        // SetBufferLength 3 s, as players send.
                        let mut d = sid.to_be_bytes().to_vec();
                        d.extend_from_slice(&3000u32.to_be_bytes());
                        write_user_control(&mut self.enc, 3, &d, out);
                    }
                    self.phase = Phase::Starting { stream_id: sid };
                }
                (Phase::CreatingStream { tid: want }, "_error") if tid == *want => {
                    return Err(rejected(first_arg, "createStream"))
                }
                (Phase::Starting { stream_id }, "onStatus") => {
                    let code = first_arg.as_ref().and_then(|v| v.get("code")).and_then(|v| v.as_str()).unwrap_or("");
                    let level = first_arg.as_ref().and_then(|v| v.get("level")).and_then(|v| v.as_str()).unwrap_or("");
                    let want = match self.role {
                        Role::Publish => "NetStream.Publish.Start",
                        Role::Play => "NetStream.Play.Start",
                    };
                    if code == want {
                        self.phase = Phase::Ready { stream_id: *stream_id };
                    } else if level == "error" || code.ends_with("Failed") || code.ends_with("BadName") {
                        return Err(rejected(first_arg, self.role.as_str()));
                    }
                }
                // onBWDone, onFCPublish, _result of releaseStream/FCPublish, |RtmpSampleAccess...
                _ => {}
            }
        }
    }

    /// After `Ready`: the chunk state for the relay, and the origin's stream id.
    pub fn into_relay(self) -> Result<(Decoder, Encoder, u32), SessionError> {
        match self.phase {
            Phase::Ready { stream_id } => Ok((self.asm.into_decoder(), self.enc, stream_id)),
            _ => Err(SessionError::Misbehaved("relay requested before the origin started (bug)".into())),
        }
    }
}

fn rejected(info: Option<Value<'static>>, what: &str) -> SessionError {
    let get = |k: &str| info.as_ref().and_then(|v| v.get(k)).and_then(|v| v.as_str()).map(str::to_string);
    SessionError::Rejected {
        code: get("code").unwrap_or_else(|| format!("{what} refused")),
        description: get("description").unwrap_or_default(),
    }
}
