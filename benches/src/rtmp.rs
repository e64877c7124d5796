//! The RTMP client side: handshake and command phase as a real encoder or
//! player does them (connect with app/tcUrl/type/flashVer, releaseStream,
//! FCPublish, createStream, publish or play, wait for the start status), then
//! the media phase, read with the zero-copy chunk [`Decoder`]: payload bytes
//! are never copied, except the first 13 bytes of each video message (where
//! the publisher's send stamp sits) and small control messages.

use crate::net::{self, InBuf, Target};
use glommio::net::TcpStream;
use srs_protocols::rtmp::amf0::Value;
use srs_protocols::rtmp::chunk::{
    Assembler, Decoder, Encoder, Item, Limits, MessageHeader, TYPE_ACK, TYPE_AUDIO, TYPE_COMMAND_AMF0,
    TYPE_COMMAND_AMF3, TYPE_SET_CHUNK_SIZE, TYPE_USER_CONTROL, TYPE_VIDEO, TYPE_WINDOW_ACK_SIZE,
};
use srs_protocols::rtmp::command::Command;
use srs_protocols::rtmp::handshake::{ClientHandshake, Step, RANDOM_LEN};
use srs_protocols::Status;
use std::time::Instant;

pub const CID_CONTROL: u32 = 2;
pub const CID_COMMAND: u32 = 3;
pub const CID_VIDEO: u32 = 6;
pub const CID_STREAM: u32 = 8;
/// Outgoing chunk size of publishers (what OBS and FFmpeg use).
pub const PUBLISH_CHUNK_SIZE: u32 = 4096;
/// Bytes at the start of a stamped video message: frame type/codec, AVC
/// packet type, composition time, then the 8-byte send time.
pub const STAMP_END: usize = 13;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Publish,
    Play,
}

/// An RTMP connection after the origin said Publish.Start or Play.Start.
pub struct Session {
    pub sock: TcpStream,
    pub inb: InBuf,
    pub dec: Decoder,
    pub enc: Encoder,
    pub out: Vec<u8>,
    pub stream_id: u32,
    /// The peer's acknowledgement window (0 = none announced).
    pub ack_window: u32,
    /// A media message arrived during the command phase (when it was parsed).
    pub early_media: Option<Instant>,
    pub bytes_in: u64,
    acked: u64,
}

fn command_bytes(c: &Command<'_>) -> Vec<u8> {
    let mut p = Vec::with_capacity(256);
    c.encode(&mut p);
    p
}

fn write_msg(enc: &mut Encoder, cid: u32, type_id: u8, sid: u32, ts: u32, p: &[u8], out: &mut Vec<u8>) {
    let h = MessageHeader { timestamp: ts, length: p.len() as u32, type_id, stream_id: sid };
    enc.write_message(cid, &h, p, out);
}

fn write_cmd(enc: &mut Encoder, cid: u32, sid: u32, c: &Command<'_>, out: &mut Vec<u8>) {
    write_msg(enc, cid, TYPE_COMMAND_AMF0, sid, 0, &command_bytes(c), out);
}

/// What the command phase does with one message it read.
enum Act {
    Nothing,
    Pong([u8; 4]),
    ConnectOk,
    CreateOk(f64),
    Started,
    Refused(String),
    Media,
}

/// Connects, handshakes and runs the command phase. `bufsize` sizes the
/// connection's one read buffer.
pub async fn open(t: &Target, stream: &str, role: Role, bufsize: usize) -> Result<Session, String> {
    let mut sock = net::connect(t.addr).await.map_err(|e| format!("connect {}: {e}", t.addr))?;
    let mut inb = InBuf::new(bufsize);
    let mut out = Vec::with_capacity(4096);
    let mut random = [0u8; RANDOM_LEN];
    fastrand::fill(&mut random);

    // Handshake: C0C1 out, S0S1S2 in, C2 out (sent with connect).
    let mut hs = ClientHandshake::start(&random, 0, &mut out);
    net::flush(&mut sock, &mut out).await.map_err(|e| format!("write C0C1: {e}"))?;
    loop {
        match hs.handle(inb.data(), &mut out).map_err(|e| format!("handshake: {e}"))? {
            Step::Partial(h) => {
                hs = h;
                inb.fill_some(&mut sock).await.map_err(|e| format!("handshake: {e}"))?;
            }
            Step::Complete { consumed, .. } => {
                inb.consume(consumed);
                break;
            }
        }
    }

    let mut enc = Encoder::new();
    let tc_url = t.tc_url();
    let flash_ver = match role {
        Role::Publish => "FMLE/3.0 (compatible; srs-load)",
        Role::Play => "LNX 9,0,124,2",
    };
    let mut props = vec![
        ("app", Value::str(&t.app)),
        ("type", Value::str("nonprivate")),
        ("flashVer", Value::str(flash_ver)),
        ("tcUrl", Value::str(&tc_url)),
    ];
    if role == Role::Play {
        props.extend([
            ("fpad", Value::Boolean(false)),
            ("capabilities", Value::Number(15.0)),
            ("audioCodecs", Value::Number(4071.0)),
            ("videoCodecs", Value::Number(252.0)),
            ("videoFunction", Value::Number(1.0)),
        ]);
    }
    let connect = Command::new("connect", 1.0).with_object(Value::object(props));
    write_cmd(&mut enc, CID_COMMAND, 0, &connect, &mut out);
    net::flush(&mut sock, &mut out).await.map_err(|e| format!("write connect: {e}"))?;

    let mut asm = Assembler::new(Limits::default());
    let mut ack_window = 0u32;
    let mut early_media = None;
    let mut create_tid = 0.0;
    let mut stream_id = 0u32;
    let mut bytes_in = inb.data().len() as u64;
    loop {
        let (n, act) = {
            let (n, msg) = asm.read(inb.data()).map_err(|e| format!("chunk: {e}"))?;
            let act = match msg {
                None => None,
                Some(m) => Some(match m.header.type_id {
                    TYPE_WINDOW_ACK_SIZE if m.payload.len() >= 4 => {
                        ack_window = u32::from_be_bytes([m.payload[0], m.payload[1], m.payload[2], m.payload[3]]);
                        Act::Nothing
                    }
                    TYPE_USER_CONTROL if m.payload.len() >= 6 && m.payload[1] == 6 => {
                        Act::Pong([m.payload[2], m.payload[3], m.payload[4], m.payload[5]])
                    }
                    TYPE_AUDIO | TYPE_VIDEO => Act::Media,
                    TYPE_COMMAND_AMF0 | TYPE_COMMAND_AMF3 => {
                        let c = Command::decode(m.payload, m.header.type_id == TYPE_COMMAND_AMF3)
                            .map_err(|e| format!("command: {e}"))?;
                        let info = c.first_arg();
                        let field =
                            |k: &str| info.and_then(|v| v.get(k)).and_then(|v| v.as_str()).unwrap_or("").to_string();
                        match (c.name.as_ref(), c.transaction_id) {
                            ("_result", 1.0) => Act::ConnectOk,
                            ("_result", t) if t == create_tid && create_tid > 0.0 => {
                                Act::CreateOk(info.and_then(|v| v.as_f64()).unwrap_or(0.0))
                            }
                            ("_error", _) => Act::Refused(format!("{} {}", field("code"), field("description"))),
                            ("onStatus", _) => {
                                let code = field("code");
                                let want = match role {
                                    Role::Publish => "NetStream.Publish.Start",
                                    Role::Play => "NetStream.Play.Start",
                                };
                                if code == want {
                                    Act::Started
                                } else if field("level") == "error"
                                    || code.ends_with("Failed")
                                    || code.ends_with("BadName")
                                    || code.ends_with("StreamNotFound")
                                {
                                    Act::Refused(format!("{code} {}", field("description")))
                                } else {
                                    Act::Nothing
                                }
                            }
                            _ => Act::Nothing,
                        }
                    }
                    _ => Act::Nothing,
                }),
            };
            (n, act)
        };
        inb.consume(n);
        let Some(act) = act else {
            net::flush(&mut sock, &mut out).await.map_err(|e| format!("write: {e}"))?;
            bytes_in += inb.fill_some(&mut sock).await.map_err(|e| format!("command phase: {e}"))? as u64;
            continue;
        };
        match act {
            Act::Nothing => {}
            Act::Pong(ts) => {
                let mut p = [0u8; 6];
                p[1] = 7;
                p[2..].copy_from_slice(&ts);
                write_msg(&mut enc, CID_CONTROL, TYPE_USER_CONTROL, 0, 0, &p, &mut out);
            }
            Act::Media => {
                early_media.get_or_insert_with(Instant::now);
            }
            Act::ConnectOk => {
                let mut tid = 2.0;
                if role == Role::Publish {
                    let size = PUBLISH_CHUNK_SIZE.to_be_bytes();
                    write_msg(&mut enc, CID_CONTROL, TYPE_SET_CHUNK_SIZE, 0, 0, &size, &mut out);
                    enc.set_chunk_size(PUBLISH_CHUNK_SIZE);
                    for name in ["releaseStream", "FCPublish"] {
                        let c = Command::new(name, tid).arg(Value::str(stream));
                        write_cmd(&mut enc, CID_COMMAND, 0, &c, &mut out);
                        tid += 1.0;
                    }
                }
                let c = Command::new("createStream", tid);
                write_cmd(&mut enc, CID_COMMAND, 0, &c, &mut out);
                create_tid = tid;
            }
            Act::CreateOk(sid) => {
                if !(1.0..=16_777_215.0).contains(&sid) {
                    return Err(format!("createStream gave stream id {sid}"));
                }
                stream_id = sid as u32;
                let c = match role {
                    Role::Publish => {
                        Command::new("publish", create_tid + 1.0).arg(Value::str(stream)).arg(Value::str("live"))
                    }
                    Role::Play => {
                        Command::new("play", create_tid + 1.0).arg(Value::str(stream)).arg(Value::Number(-2000.0))
                    }
                };
                write_cmd(&mut enc, CID_STREAM, stream_id, &c, &mut out);
                if role == Role::Play {
                    // SetBufferLength(stream, 3000 ms), as players send.
                    let mut p = [0u8; 10];
                    p[1] = 3;
                    p[2..6].copy_from_slice(&stream_id.to_be_bytes());
                    p[6..].copy_from_slice(&3000u32.to_be_bytes());
                    write_msg(&mut enc, CID_CONTROL, TYPE_USER_CONTROL, 0, 0, &p, &mut out);
                }
            }
            Act::Refused(why) => return Err(format!("refused: {}", why.trim())),
            Act::Started => {
                net::flush(&mut sock, &mut out).await.map_err(|e| format!("write: {e}"))?;
                let consumed = bytes_in - inb.data().len() as u64;
                return Ok(Session {
                    sock,
                    inb,
                    dec: asm.into_decoder(),
                    enc,
                    out,
                    stream_id,
                    ack_window,
                    early_media,
                    bytes_in,
                    acked: consumed,
                });
            }
        }
    }
}

/// What a player wants to hear about while it reads media.
pub trait Sink {
    /// The first bytes of an audio or video message arrived. Return true to
    /// stop reading.
    fn media(&mut self, video: bool) -> bool;
    /// A stamped video message: `stamp` holds its first [`STAMP_END`] bytes.
    fn video_head(&mut self, stamp: &[u8; STAMP_END]);
}

/// Reads the media phase until the sink says stop or the peer closes
/// (`Ok(false)`), counting bytes in `bytes` as they arrive. Answers pings
/// and sends acknowledgements like a real player.
pub async fn read_media(s: &mut Session, sink: &mut impl Sink, bytes: &std::cell::Cell<u64>) -> Result<bool, String> {
    // The video message whose head is being collected.
    let mut vcid = 0u32;
    let mut vhave = STAMP_END; // STAMP_END = not collecting
    let mut vhead = [0u8; STAMP_END];
    // A small control message being collected.
    let mut ccid = 0u32;
    let mut ctype = 0u8;
    let mut chave = 0usize;
    let mut cbuf = [0u8; 16];
    let mut collecting_ctl = false;
    if let Some(_t) = s.early_media {
        if sink.media(true) {
            return Ok(true);
        }
    }
    loop {
        loop {
            let (n, item) = match s.dec.decode(s.inb.data()) {
                Ok(Status::Complete(x)) => x,
                Ok(Status::Partial) => break,
                Err(e) => return Err(format!("chunk: {e}")),
            };
            match item {
                Item::Header(h) if h.first => {
                    let t = h.msg.type_id;
                    if t == TYPE_VIDEO || t == TYPE_AUDIO {
                        let stop = sink.media(t == TYPE_VIDEO);
                        if t == TYPE_VIDEO {
                            vcid = h.cid;
                            vhave = 0;
                        }
                        if stop {
                            s.inb.consume(n);
                            return Ok(true);
                        }
                    } else if h.msg.length as usize <= cbuf.len()
                        && (t == TYPE_USER_CONTROL || t == TYPE_WINDOW_ACK_SIZE)
                    {
                        ccid = h.cid;
                        ctype = t;
                        chave = 0;
                        collecting_ctl = true;
                    }
                }
                Item::Header(_) => {}
                Item::Payload { cid, len, end_of_message } => {
                    let data = &s.inb.data()[..len];
                    if cid == vcid && vhave < STAMP_END {
                        let k = (STAMP_END - vhave).min(len);
                        vhead[vhave..vhave + k].copy_from_slice(&data[..k]);
                        vhave += k;
                        if vhave == STAMP_END {
                            sink.video_head(&vhead);
                        }
                    }
                    if collecting_ctl && cid == ccid {
                        let k = (cbuf.len() - chave).min(len);
                        cbuf[chave..chave + k].copy_from_slice(&data[..k]);
                        chave += k;
                        if end_of_message {
                            collecting_ctl = false;
                            control(s, ctype, &cbuf[..chave]);
                        }
                    }
                }
            }
            s.inb.consume(n);
        }
        if s.ack_window > 0 && s.bytes_in - s.acked >= s.ack_window as u64 {
            s.acked = s.bytes_in;
            let seq = (s.bytes_in as u32).to_be_bytes();
            write_msg(&mut s.enc, CID_CONTROL, TYPE_ACK, 0, 0, &seq, &mut s.out);
        }
        net::flush(&mut s.sock, &mut s.out).await.map_err(|e| format!("write: {e}"))?;
        let n = s.inb.fill(&mut s.sock).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Ok(false);
        }
        s.bytes_in += n as u64;
        bytes.set(bytes.get() + n as u64);
    }
}

/// A control message read in the media phase: answer pings, note windows.
fn control(s: &mut Session, type_id: u8, p: &[u8]) {
    match type_id {
        TYPE_WINDOW_ACK_SIZE if p.len() >= 4 => {
            s.ack_window = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
        }
        TYPE_USER_CONTROL if p.len() >= 6 && p[0] == 0 && p[1] == 6 => {
            let mut r = [0u8; 6];
            r[1] = 7;
            r[2..].copy_from_slice(&p[2..6]);
            write_msg(&mut s.enc, CID_CONTROL, TYPE_USER_CONTROL, 0, 0, &r, &mut s.out);
        }
        _ => {}
    }
}

/// The send time in a stamped video message head, if it is one of ours
/// (an AVC NALU message, not a sequence header).
pub fn stamp_of(head: &[u8; STAMP_END]) -> Option<u64> {
    if (head[0] == 0x17 || head[0] == 0x27) && head[1] == 1 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&head[5..13]);
        Some(u64::from_be_bytes(b))
    } else {
        None
    }
}

/// Writes a publisher's message (media or data) and sends it.
pub fn write_media(s: &mut Session, cid: u32, type_id: u8, ts: u32, payload: &[u8]) {
    let sid = s.stream_id;
    write_msg(&mut s.enc, cid, type_id, sid, ts, payload, &mut s.out);
}

/// Drains whatever a publisher's peer sends (acks, pings) without blocking;
/// answers pings. Returns false when the peer closed.
pub fn absorb(s: &mut Session) -> Result<(), String> {
    loop {
        let (n, item) = match s.dec.decode(s.inb.data()) {
            Ok(Status::Complete(x)) => x,
            Ok(Status::Partial) => return Ok(()),
            Err(e) => return Err(format!("chunk: {e}")),
        };
        if let Item::Payload { len, .. } = item {
            // Pings to a publisher: answer with the 4 stamp bytes if they
            // came in one piece (they always do: 6 bytes).
            let d = &s.inb.data()[..len];
            if len == 6 && d[0] == 0 && d[1] == 6 {
                let mut r = [0u8; 6];
                r[1] = 7;
                r[2..].copy_from_slice(&d[2..6]);
                write_msg(&mut s.enc, CID_CONTROL, TYPE_USER_CONTROL, 0, 0, &r, &mut s.out);
            }
        }
        s.inb.consume(n);
    }
}
