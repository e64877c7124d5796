//! The proxy as an RTMP client, facing the origin: handshake, `connect`
//! (mirroring the client's own connect object, so strict servers such as
//! nginx-rtmp accept it), `createStream`, then `publish` or `play`, up to the
//! origin's start status. Messages the origin sends before that status are
//! consumed here; everything after it belongs to the relay.

use super::amf0::{EncodedValue, Value};
use super::chunk::{self, Assembler, Decoder, Encoder, Limits, MessageHeader};
use super::command::Command;
use super::handshake::{self, Step, RANDOM_LEN};
use super::server::{StartMessage, StreamRequest};
use super::session::{
    decode_command, write_command, write_user_control, write_window_ack_size, Role, SessionError, CID_COMMAND,
    CID_STREAM,
};

const TID_CONNECT: f64 = 1.0;

enum Phase {
    Handshake(handshake::ExpectS0S1S2),
    /// `connect` and `createStream` are in flight together (pipelined, one
    /// round trip fewer); `connected` once connect's `_result` came back.
    CreatingStream {
        tid: f64,
        connected: bool,
    },
    Starting {
        stream_id: u32,
    },
    Ready {
        stream_id: u32,
    },
}

pub struct ClientSession {
    phase: Phase,
    asm: Assembler,
    enc: Encoder,
    role: Role,
    stream: String,
    app: String,
    tc_url: String,
    connect: EncodedValue,
    start_message: Option<StartMessage>,
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
            start_message: req.start_message.clone(),
        }
    }

    pub fn handle(&mut self, buf: &[u8], out: &mut Vec<u8>) -> Result<ClientProgress, SessionError> {
        let mut pos = 0;
        if let Phase::Handshake(_) = self.phase {
            let parked = Phase::CreatingStream { tid: 0.0, connected: false };
            let Phase::Handshake(hs) = std::mem::replace(&mut self.phase, parked) else {
                return Err(SessionError::Misbehaved("client session phase (bug)".into()));
            };
            match hs.handle(buf, out)? {
                Step::Partial(hs) => {
                    self.phase = Phase::Handshake(hs);
                    return Ok(ClientProgress::NeedMore { consumed: 0 });
                }
                Step::Complete { consumed, .. } => {
                    pos = consumed;
                    let obj = connect_object(&self.connect, &self.app, &self.tc_url, self.role);
                    let c = Command::new("connect", TID_CONNECT).with_object(obj);
                    write_command(&mut self.enc, CID_COMMAND, 0, &c, out);
                    // Servers answer commands in order, so the stream can be
                    // asked for in the same write as the connection.
                    let mut next_tid = TID_CONNECT + 1.0;
                    if self.role == Role::Publish {
                        for n in ["releaseStream", "FCPublish"] {
                            let c = Command::new(n, next_tid).arg(Value::str(&self.stream));
                            write_command(&mut self.enc, CID_COMMAND, 0, &c, out);
                            next_tid += 1.0;
                        }
                    }
                    let c = Command::new("createStream", next_tid);
                    write_command(&mut self.enc, CID_COMMAND, 0, &c, out);
                    self.phase = Phase::CreatingStream { tid: next_tid, connected: false };
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
            let tid = cmd.transaction_id;
            let first_arg = cmd.args.first();
            match (&self.phase, cmd.name.as_ref()) {
                (Phase::CreatingStream { tid: want, connected: false }, "_result") if tid == TID_CONNECT => {
                    write_window_ack_size(&mut self.enc, super::server::ACK_WINDOW, out);
                    self.phase = Phase::CreatingStream { tid: *want, connected: true };
                }
                (Phase::CreatingStream { connected: false, .. }, "_error") if tid == TID_CONNECT => {
                    return Err(rejected(first_arg, "connect"))
                }
                (Phase::CreatingStream { tid: want, connected: false }, "_result" | "_error") if tid == *want => {
                    return Err(SessionError::Misbehaved("origin answered createStream before connect".into()))
                }
                (Phase::CreatingStream { tid: want, connected: true }, "_result") if tid == *want => {
                    let sid = first_arg.as_ref().and_then(|v| v.as_f64()).unwrap_or(0.0);
                    if !(1.0..=16_777_215.0).contains(&sid) {
                        return Err(SessionError::Misbehaved(format!("origin gave stream id {sid}")));
                    }
                    let sid = sid as u32;
                    match self.start_message.take() {
                        // The client's own message, header and all, on its
                        // stream (the ids differ only if the relay rewrites them).
                        Some(m) => {
                            let h = MessageHeader {
                                timestamp: m.timestamp,
                                length: m.payload.len() as u32,
                                type_id: chunk::TYPE_COMMAND_AMF0,
                                stream_id: sid,
                            };
                            self.enc.write_message(m.cid, &h, &m.payload, out);
                        }
                        None => {
                            let c = match self.role {
                                Role::Publish => Command::new("publish", want + 1.0)
                                    .arg(Value::str(&self.stream))
                                    .arg(Value::str("live")),
                                Role::Play => Command::new("play", want + 1.0).arg(Value::str(&self.stream)),
                            };
                            write_command(&mut self.enc, CID_STREAM, sid, &c, out);
                        }
                    }
                    if self.role == Role::Play {
                        // SetBufferLength 3 s, as players send.
                        let mut d = sid.to_be_bytes().to_vec();
                        d.extend_from_slice(&3000u32.to_be_bytes());
                        write_user_control(&mut self.enc, 3, &d, out);
                    }
                    self.phase = Phase::Starting { stream_id: sid };
                }
                (Phase::CreatingStream { tid: want, connected: true }, "_error") if tid == *want => {
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

/// The client's own `connect` object, with app and tcUrl guaranteed present.
fn connect_object<'a>(connect: &'a EncodedValue, app: &'a str, tc_url: &'a str, role: Role) -> Value<'a> {
    let mut props = match connect.value() {
        Value::Object(p) | Value::EcmaArray(p) => p,
        _ => Vec::new(),
    };
    let flash_ver = match role {
        Role::Publish => "FMLE/3.0 (compatible; srs-proxy)",
        Role::Play => "LNX 9,0,124,2",
    };
    let wanted = [("app", app), ("tcUrl", tc_url), ("type", "nonprivate"), ("flashVer", flash_ver)];
    for (k, v) in wanted {
        if !props.iter().any(|(n, _)| n == k) {
            props.push((k.into(), Value::str(v)));
        }
    }
    Value::Object(props)
}

fn rejected(info: Option<&Value<'_>>, what: &str) -> SessionError {
    let get = |k: &str| info.and_then(|v| v.get(k)).and_then(|v| v.as_str()).map(str::to_string);
    SessionError::Rejected {
        code: get("code").unwrap_or_else(|| format!("{what} refused")),
        description: get("description").unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    //! The proxy's two RTMP roles talking to each other in memory: our
    //! client session against our server session, no sockets.
    use super::*;
    use crate::rtmp::server::{self, Identified, ServerInfo};
    use crate::rtmp::session::Advance;

    enum Srv {
        C0C1(server::ExpectC0C1),
        C2(server::ExpectC2),
        Connect(server::ExpectConnect),
        Cmd(server::ExpectPublishOrPlay),
        Done(Identified),
    }

    /// Feeds the server everything in `inbuf` it can take; returns its state.
    fn serve(mut st: Srv, inbuf: &mut Vec<u8>, out: &mut Vec<u8>) -> Srv {
        loop {
            let (consumed, next, moved) = match st {
                Srv::C0C1(s) => match s.handle(inbuf, out).unwrap() {
                    Advance::Stay { consumed, state } => (consumed, Srv::C0C1(state), false),
                    Advance::Next { consumed, next } => (consumed, Srv::C2(next), true),
                },
                Srv::C2(s) => match s.handle(inbuf).unwrap() {
                    Advance::Stay { consumed, state } => (consumed, Srv::C2(state), false),
                    Advance::Next { consumed, next } => (consumed, Srv::Connect(next), true),
                },
                Srv::Connect(s) => match s.handle(inbuf, out).unwrap() {
                    Advance::Stay { consumed, state } => (consumed, Srv::Connect(state), false),
                    Advance::Next { consumed, next } => (consumed, Srv::Cmd(next), true),
                },
                Srv::Cmd(s) => match s.handle(inbuf, out).unwrap() {
                    Advance::Stay { consumed, state } => (consumed, Srv::Cmd(state), false),
                    Advance::Next { consumed, next } => (consumed, Srv::Done(next), true),
                },
                done @ Srv::Done(_) => (0, done, false),
            };
            inbuf.drain(..consumed);
            st = next;
            if !moved {
                return st;
            }
        }
    }

    fn request(role: Role) -> StreamRequest {
        StreamRequest {
            role,
            tc_url: "rtmp://127.0.0.1:1935/live".into(),
            app: "live".into(),
            stream: "cam1?token=abc".into(),
            stream_id: 1,
            connect: EncodedValue::new(&Value::object([("app", Value::str("live")), ("swfUrl", Value::str("x.swf"))])),
            start_message: None,
        }
    }

    /// Runs client and server until the server knows the stream; returns the
    /// server's step and how many writes the client made to get there.
    fn until_identified(role: Role) -> (ClientSession, Identified, Vec<u8>, usize) {
        let info = ServerInfo { version: "0.0.0".into(), conn_id: "t".into() };
        let mut srv = Srv::C0C1(server::ExpectC0C1::new(&[7; RANDOM_LEN], 0, info, Limits::default()));
        let (mut to_srv, mut to_cli) = (Vec::new(), Vec::new());
        let mut cli = ClientSession::start(&[9; RANDOM_LEN], 0, &request(role), Limits::default(), &mut to_srv);
        let mut writes = 1;
        for _ in 0..10 {
            let mut out = Vec::new();
            srv = serve(srv, &mut to_srv, &mut out);
            to_cli.extend_from_slice(&out);
            if let Srv::Done(id) = srv {
                return (cli, id, to_cli, writes);
            }
            let mut cout = Vec::new();
            match cli.handle(&to_cli, &mut cout).unwrap() {
                ClientProgress::NeedMore { consumed } => {
                    to_cli.drain(..consumed);
                }
                ClientProgress::Ready { .. } => panic!("ready before the server started the stream"),
            }
            if !cout.is_empty() {
                writes += 1;
                to_srv.extend_from_slice(&cout);
            }
        }
        panic!("no progress");
    }

    #[test]
    fn play_reaches_the_origin_in_three_writes_and_relays_on_stream_1() {
        let (mut cli, id, mut to_cli, writes) = until_identified(Role::Play);
        // C0C1; C2 + connect + createStream (pipelined); play.
        assert_eq!(writes, 3);
        let req = id.request();
        assert_eq!((req.role, req.app.as_str(), req.stream.as_str()), (Role::Play, "live", "cam1?token=abc"));
        assert_eq!(req.tc_url, "rtmp://127.0.0.1:1935/live");
        // The client mirrored its own connect object, with what strict servers need.
        for k in ["app", "tcUrl", "swfUrl", "type", "flashVer"] {
            assert!(req.connect.value().get(k).is_some(), "connect lacks {k}: {:?}", req.connect);
        }
        id.start(&mut to_cli);
        let mut out = Vec::new();
        match cli.handle(&to_cli, &mut out).unwrap() {
            ClientProgress::Ready { consumed } => assert_eq!(consumed, to_cli.len()),
            other => panic!("{other:?}"),
        }
        let (_, _, sid) = cli.into_relay().unwrap();
        assert_eq!(sid, 1);
    }

    #[test]
    fn publish_sends_release_and_fcpublish_in_the_same_pipelined_write() {
        let (mut cli, id, mut to_cli, writes) = until_identified(Role::Publish);
        assert_eq!(writes, 3);
        assert_eq!(id.request().role, Role::Publish);
        id.start(&mut to_cli);
        assert!(matches!(cli.handle(&to_cli, &mut Vec::new()).unwrap(), ClientProgress::Ready { .. }));
    }

    #[test]
    fn an_origin_refusal_reaches_the_proxy_with_its_code() {
        let (mut cli, id, mut to_cli, _) = until_identified(Role::Play);
        id.reject("no such stream here", &mut to_cli);
        match cli.handle(&to_cli, &mut Vec::new()) {
            Err(SessionError::Rejected { code, description }) => {
                assert_eq!(code, "NetStream.Play.StreamNotFound");
                assert_eq!(description, "no such stream here");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn relay_before_ready_is_refused() {
        let mut out = Vec::new();
        let cli = ClientSession::start(&[1; RANDOM_LEN], 0, &request(Role::Play), Limits::default(), &mut out);
        assert!(matches!(cli.into_relay(), Err(SessionError::Misbehaved(_))));
    }
}
