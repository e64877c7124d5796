//! The RTMP chunk stream (RTMP 1.0 §5.3): parsing, writing and relaying.
//!
//! * [`Decoder`]: an incremental, zero-copy parser. It yields chunk headers
//!   and runs of payload bytes ([`Item`]) and never buffers payload.
//! * [`Assembler`]: whole messages, for the command phase (bounded buffering).
//! * [`Encoder`]: writes whole messages as chunks, with the smallest headers
//!   that the receiving peer's per-chunk-stream state allows.
//! * [`Relay`]: forwards one peer's chunk stream to the other peer chunk by
//!   chunk. Messages are never reassembled or re-chunked: in the steady state
//!   the caller writes the very buffer it read ([`Forward::InPlace`]), and only
//!   a header the receiving peer would resolve differently is re-encoded.
//!
//! # Wire format
//!
//! A chunk is a basic header (1 to 3 bytes: `fmt` in the top two bits, then
//! the chunk stream id, "cid"), a message header of 11, 7, 3 or 0 bytes for
//! fmt 0, 1, 2 or 3, an optional 4-byte extended timestamp, then at most
//! *chunk size* payload bytes. The longest header is [`MAX_HEADER_LEN`] bytes.
//!
//! # Conventions, shared by every type here
//!
//! * Timestamps are `u32` and wrap; nothing masks them to 31 bits.
//! * After a fmt 0 header the chunk stream's delta is the timestamp field (as
//!   FFmpeg and SRS do), so a fmt 3 header that starts a new message after it
//!   adds that value.
//! * A 24-bit timestamp or delta field of `0xFFFFFF` means a 4-byte extended
//!   timestamp follows and holds the value. A fmt 3 header carries an extended
//!   timestamp iff the last fmt 0/1/2 header on its chunk stream did; the
//!   value in a fmt 3 header does not change any timestamp.
//! * A fresh chunk stream must start with fmt 0. The one exception is fmt 1 on
//!   chunk stream 2, resolved against timestamp 0 and stream 0: librtmp sends
//!   its first user-control or acknowledgement message that way.
//! * Only fmt 3 continues a message: a fmt 0/1/2 header on a chunk stream with
//!   a message in progress is an error.
//! * A message of length 0 is a single header with `payload == 0`; no
//!   [`Item::Payload`] follows it.

use std::fmt;

use crate::Status;

/// The chunk size both directions start with.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;

/// Protocol control: set the sender's chunk size (4 bytes, big-endian).
pub const TYPE_SET_CHUNK_SIZE: u8 = 1;
/// Protocol control: discard the partial message on a chunk stream (4 bytes: cid).
pub const TYPE_ABORT: u8 = 2;
/// Protocol control: acknowledgement (4 bytes: sequence number).
pub const TYPE_ACK: u8 = 3;
/// User control event (stream begin, ping, buffer length, ...).
pub const TYPE_USER_CONTROL: u8 = 4;
/// Protocol control: window acknowledgement size (4 bytes).
pub const TYPE_WINDOW_ACK_SIZE: u8 = 5;
/// Protocol control: set peer bandwidth (4 bytes + limit type).
pub const TYPE_SET_PEER_BANDWIDTH: u8 = 6;
/// Audio data.
pub const TYPE_AUDIO: u8 = 8;
/// Video data.
pub const TYPE_VIDEO: u8 = 9;
/// Data message (metadata), AMF3.
pub const TYPE_DATA_AMF3: u8 = 15;
/// Command message, AMF3.
pub const TYPE_COMMAND_AMF3: u8 = 17;
/// Data message (metadata), AMF0.
pub const TYPE_DATA_AMF0: u8 = 18;
/// Command message, AMF0.
pub const TYPE_COMMAND_AMF0: u8 = 20;
/// Aggregate message.
pub const TYPE_AGGREGATE: u8 = 22;

/// Longest chunk header: 3-byte basic header, 11-byte message header and a
/// 4-byte extended timestamp.
pub const MAX_HEADER_LEN: usize = 18;
/// Smallest chunk stream id (0 and 1 select the longer basic header forms).
pub const MIN_CHUNK_STREAM_ID: u32 = 2;
/// Largest chunk stream id (3-byte basic header: 64 + 255 + 255 * 256).
pub const MAX_CHUNK_STREAM_ID: u32 = 65599;
/// Largest chunk size: SetChunkSize must leave the top bit clear.
pub const MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFF;

/// A 24-bit timestamp field with this value means "see the extended timestamp".
const EXT: u32 = 0xFF_FFFF;
/// The per-cid tables index slots with `u16`.
const MAX_SLOTS: usize = u16::MAX as usize - 1;

/// A message's header, resolved (absolute timestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageHeader {
    /// Absolute timestamp in milliseconds (wrapping).
    pub timestamp: u32,
    /// Payload length of the whole message.
    pub length: u32,
    /// Message type id (`TYPE_*`).
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
}

/// One chunk header as parsed from the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    /// Chunk stream id, 2..=65599.
    pub cid: u32,
    /// Header type 0..=3 as on the wire.
    pub fmt: u8,
    /// Bytes of this header on the wire (basic + message header + extended timestamp).
    pub len: usize,
    /// The resolved message header (absolute timestamp).
    pub msg: MessageHeader,
    /// This chunk starts a new message.
    pub first: bool,
    /// Payload bytes that follow this header in this chunk.
    pub payload: u32,
}

/// What [`Decoder::decode`] found at the front of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// A chunk header; its payload follows as one or more `Payload` items.
    Header(ChunkHeader),
    /// `len` payload bytes of the current chunk (at the front of the buffer).
    Payload {
        /// Chunk stream the bytes belong to.
        cid: u32,
        /// Number of bytes (also the bytes consumed).
        len: usize,
        /// These are the last bytes of their message.
        end_of_message: bool,
    },
}

/// Bounds on what a peer may make us track or buffer.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest message accepted (the wire maximum is `0xFF_FFFF`).
    pub max_message_len: u32,
    /// Distinct chunk streams a peer may use over a connection (each keeps a
    /// header state for as long as the connection lives).
    pub max_chunk_streams: usize,
    /// [`Assembler`] only: longest message it buffers.
    pub max_buffered_message: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_len: 0xFF_FFFF,
            max_chunk_streams: 64,
            max_buffered_message: 256 * 1024,
        }
    }
}

/// A chunk stream the peer sent is invalid. Every variant blames the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkError {
    /// A chunk stream was used for the first time with a header other than
    /// fmt 0 (fmt 1 on cid 2 excepted).
    FirstChunkNotFmt0 { cid: u32 },
    /// SetChunkSize carried 0 or a value with the top bit set.
    InvalidChunkSize(u32),
    /// A message is longer than we accept.
    MessageTooLong { len: u32, limit: u32 },
    /// The peer used more distinct chunk streams than we track.
    TooManyChunkStreams { limit: usize },
    /// A SetChunkSize or Abort message is shorter than its 4-byte payload.
    ShortControlMessage { type_id: u8, len: u32 },
    /// A fmt 0/1/2 header arrived on a chunk stream while a message was in
    /// progress there (only fmt 3 continues a message).
    HeaderInsideMessage { cid: u32, fmt: u8 },
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FirstChunkNotFmt0 { cid } => write!(
                f,
                "peer started chunk stream {cid} without a type 0 chunk header"
            ),
            Self::InvalidChunkSize(n) => write!(
                f,
                "peer set chunk size {n}, outside 1..={MAX_CHUNK_SIZE}"
            ),
            Self::MessageTooLong { len, limit } => write!(
                f,
                "peer sent a {len}-byte message, over the {limit}-byte limit"
            ),
            Self::TooManyChunkStreams { limit } => {
                write!(f, "peer used more than {limit} chunk streams")
            }
            Self::ShortControlMessage { type_id, len } => write!(
                f,
                "peer sent a {len}-byte control message of type {type_id}, which needs 4 bytes"
            ),
            Self::HeaderInsideMessage { cid, fmt } => write!(
                f,
                "peer sent a type {fmt} chunk header on chunk stream {cid} in the middle of a message"
            ),
        }
    }
}

impl std::error::Error for ChunkError {}

// ---------------------------------------------------------------------------
// Per-chunk-stream state

/// The header state of one chunk stream: what the next header on it is
/// resolved against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Hdr {
    ts: u32,
    /// The last timestamp or delta field (the timestamp itself after fmt 0).
    delta: u32,
    len: u32,
    sid: u32,
    type_id: u8,
    /// The last fmt 0/1/2 header had an extended timestamp.
    ext: bool,
}

impl Hdr {
    fn message(&self) -> MessageHeader {
        MessageHeader {
            timestamp: self.ts,
            length: self.len,
            type_id: self.type_id,
            stream_id: self.sid,
        }
    }
}

/// What a [`Relay`] does with the message in progress on a chunk stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Mode {
    /// No message in progress (or not relaying).
    #[default]
    Idle,
    /// The first header went out verbatim: continuation headers do too.
    Pass,
    /// The first header was re-encoded: continuation headers are rewritten.
    Reencoded,
    /// The downstream never saw the start: drop the rest.
    Dropped,
}

#[derive(Debug, Clone, Default)]
struct Slot {
    h: Hdr,
    /// Payload bytes of the current message still to come (0: none in progress).
    remaining: u32,
    /// First bytes of a SetChunkSize or Abort message.
    ctl: [u8; 4],
    mode: Mode,
}

/// Per-cid table: direct index for cid < 64, a short linear scan above.
#[derive(Debug, Clone)]
struct Table<T> {
    /// `low[cid]` = slot index + 1, or 0.
    low: [u16; 64],
    slots: Vec<(u32, T)>,
}

impl<T> Table<T> {
    fn new() -> Self {
        Self {
            low: [0; 64],
            slots: Vec::new(),
        }
    }

    #[inline]
    fn find(&self, cid: u32) -> Option<usize> {
        match self.low.get(cid as usize) {
            Some(&i) if i != 0 => Some(usize::from(i) - 1),
            // Only a table that outgrew the u16 index has low cids unindexed.
            Some(_) if self.slots.len() < MAX_SLOTS => None,
            _ => self.slots.iter().position(|(c, _)| *c == cid),
        }
    }

    fn insert(&mut self, cid: u32, v: T) -> usize {
        let i = self.slots.len();
        self.slots.push((cid, v));
        if let (Some(l), Ok(n)) = (self.low.get_mut(cid as usize), u16::try_from(i + 1)) {
            *l = n;
        }
        i
    }

    #[inline]
    fn get(&self, i: usize) -> Option<&T> {
        self.slots.get(i).map(|(_, v)| v)
    }

    #[inline]
    fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.slots.get_mut(i).map(|(_, v)| v)
    }
}

#[inline]
fn be24(a: u8, b: u8, c: u8) -> u32 {
    u32::from_be_bytes([0, a, b, c])
}

/// Length of the basic header that starts with `b0`.
#[inline]
fn basic_len(b0: u8) -> usize {
    match b0 & 0x3f {
        0 => 2,
        1 => 3,
        _ => 1,
    }
}

/// Parses a basic header: `(fmt, cid, length)`, or `None` if incomplete.
#[inline]
fn basic_header(buf: &[u8]) -> Option<(u8, u32, usize)> {
    let (&b0, rest) = buf.split_first()?;
    let fmt = b0 >> 6;
    match (b0 & 0x3f, rest) {
        (0, [b1, ..]) => Some((fmt, 64 + u32::from(*b1), 2)),
        (1, [b1, b2, ..]) => Some((fmt, 64 + u32::from(*b1) + 256 * u32::from(*b2), 3)),
        (0 | 1, _) => None,
        (c, _) => Some((fmt, u32::from(c), 1)),
    }
}

fn put_basic(out: &mut Vec<u8>, fmt: u8, cid: u32) {
    let f = fmt << 6;
    match cid {
        0..=63 => out.push(f | cid as u8),
        64..=319 => out.extend_from_slice(&[f, (cid - 64) as u8]),
        _ => {
            let c = cid.saturating_sub(64);
            out.extend_from_slice(&[f | 1, c as u8, (c >> 8) as u8]);
        }
    }
}

#[inline]
fn put24(out: &mut Vec<u8>, v: u32) {
    let [_, a, b, c] = v.min(EXT).to_be_bytes();
    out.extend_from_slice(&[a, b, c]);
}

/// The fmt 3 continuation header for a chunk stream in state `st`, and its length.
fn continuation(cid: u32, st: &Hdr) -> ([u8; 7], usize) {
    let f = 3 << 6;
    let c = cid.saturating_sub(64);
    let (mut t, n) = match cid {
        0..=63 => ([f | cid as u8, 0, 0, 0, 0, 0, 0], 1),
        64..=319 => ([f, c as u8, 0, 0, 0, 0, 0], 2),
        _ => ([f | 1, c as u8, (c >> 8) as u8, 0, 0, 0, 0], 3),
    };
    if !st.ext {
        return (t, n);
    }
    for (d, s) in t.iter_mut().skip(n).zip(st.delta.to_be_bytes()) {
        *d = s;
    }
    (t, n + 4)
}

// ---------------------------------------------------------------------------
// Decoder

/// Incremental chunk-stream parser. Tracks per-cid previous headers, the input
/// chunk size, and messages in progress. Applies SetChunkSize (type 1) and
/// Abort (type 2) itself when such a message completes (it keeps their first
/// 4 payload bytes internally; the caller still receives the payload items).
///
/// Payload is never copied: the caller gets `(consumed, Item::Payload { len })`
/// and the bytes are `buf[..len]`.
#[derive(Debug, Clone)]
pub struct Decoder {
    limits: Limits,
    chunk_size: u32,
    tab: Table<Slot>,
    /// Slot of the chunk being read (meaningful when `chunk_left > 0`, and
    /// right after a header or payload item).
    cur: usize,
    /// Payload bytes of the current chunk not yet returned.
    chunk_left: u32,
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            chunk_size: DEFAULT_CHUNK_SIZE,
            tab: Table::new(),
            cur: 0,
            chunk_left: 0,
        }
    }

    /// Parses one item from the front of `buf`. Header: consumed = header.len.
    /// Payload: consumed = len = min(buf.len(), bytes left in this chunk).
    /// Partial when buf is empty or holds an incomplete header (nothing consumed).
    pub fn decode(&mut self, buf: &[u8]) -> Result<Status<(usize, Item)>, ChunkError> {
        if self.chunk_left > 0 {
            self.payload(buf)
        } else {
            self.header(buf)
        }
    }

    /// The peer's current chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// cids with a message in progress (some chunks seen, not all).
    pub fn in_progress(&self) -> impl Iterator<Item = u32> + '_ {
        self.tab
            .slots
            .iter()
            .filter(|(_, s)| s.remaining > 0)
            .map(|(cid, _)| *cid)
    }

    /// Are we between chunks (not inside a chunk's payload)?
    pub fn at_chunk_boundary(&self) -> bool {
        self.chunk_left == 0
    }

    fn max_streams(&self) -> usize {
        self.limits.max_chunk_streams.min(MAX_SLOTS)
    }

    fn header(&mut self, buf: &[u8]) -> Result<Status<(usize, Item)>, ChunkError> {
        let Some((fmt, cid, bh)) = basic_header(buf) else {
            return Ok(Status::Partial);
        };
        let found = self.tab.find(cid);
        let (prev, in_progress) = match found.and_then(|i| self.tab.get(i)) {
            Some(s) => (s.h, s.remaining > 0),
            None => {
                if !(fmt == 0 || (fmt == 1 && cid == 2)) {
                    return Err(ChunkError::FirstChunkNotFmt0 { cid });
                }
                if self.tab.slots.len() >= self.max_streams() {
                    return Err(ChunkError::TooManyChunkStreams {
                        limit: self.limits.max_chunk_streams,
                    });
                }
                (Hdr::default(), false)
            }
        };
        if in_progress && fmt != 3 {
            return Err(ChunkError::HeaderInsideMessage { cid, fmt });
        }
        let mlen = match fmt {
            0 => 11,
            1 => 7,
            2 => 3,
            _ => 0,
        };
        let Some(mh) = buf.get(bh..bh + mlen) else {
            return Ok(Status::Partial);
        };
        let mut h = prev;
        let field = match *mh {
            [t0, t1, t2, l0, l1, l2, ty, s0, s1, s2, s3] => {
                h.len = be24(l0, l1, l2);
                h.type_id = ty;
                h.sid = u32::from_le_bytes([s0, s1, s2, s3]);
                be24(t0, t1, t2)
            }
            [t0, t1, t2, l0, l1, l2, ty] => {
                h.len = be24(l0, l1, l2);
                h.type_id = ty;
                be24(t0, t1, t2)
            }
            [t0, t1, t2] => be24(t0, t1, t2),
            _ => 0,
        };
        let ext = if fmt == 3 { prev.ext } else { field == EXT };
        let end = bh + mlen + if ext { 4 } else { 0 };
        let value = match (ext, buf.get(bh + mlen..end)) {
            (false, _) => field,
            (true, Some(&[a, b, c, d])) => u32::from_be_bytes([a, b, c, d]),
            (true, _) => return Ok(Status::Partial),
        };
        match fmt {
            0 => {
                h.ts = value;
                h.delta = value;
                h.ext = ext;
            }
            1 | 2 => {
                h.ts = prev.ts.wrapping_add(value);
                h.delta = value;
                h.ext = ext;
            }
            _ if !in_progress => h.ts = prev.ts.wrapping_add(prev.delta),
            _ => {}
        }
        let first = !in_progress;
        if first {
            if h.len > self.limits.max_message_len {
                return Err(ChunkError::MessageTooLong {
                    len: h.len,
                    limit: self.limits.max_message_len,
                });
            }
            if matches!(h.type_id, TYPE_SET_CHUNK_SIZE | TYPE_ABORT) && h.len < 4 {
                return Err(ChunkError::ShortControlMessage {
                    type_id: h.type_id,
                    len: h.len,
                });
            }
        }
        // Commit: nothing above changed any state.
        let i = match found {
            Some(i) => i,
            None => self.tab.insert(cid, Slot::default()),
        };
        let chunk_size = self.chunk_size;
        let Some(slot) = self.tab.get_mut(i) else {
            return Ok(Status::Partial);
        };
        slot.h = h;
        if first {
            slot.remaining = h.len;
            slot.ctl = [0; 4];
        }
        let payload = slot.remaining.min(chunk_size);
        self.cur = i;
        self.chunk_left = payload;
        Ok(Status::Complete((
            end,
            Item::Header(ChunkHeader {
                cid,
                fmt,
                len: end,
                msg: h.message(),
                first,
                payload,
            }),
        )))
    }

    fn payload(&mut self, buf: &[u8]) -> Result<Status<(usize, Item)>, ChunkError> {
        if buf.is_empty() {
            return Ok(Status::Partial);
        }
        let n = buf.len().min(self.chunk_left as usize);
        let n32 = u32::try_from(n).unwrap_or(self.chunk_left);
        let Some((cid, slot)) = self.tab.slots.get_mut(self.cur) else {
            // Unreachable: `cur` always names a slot while a chunk is open.
            self.chunk_left = 0;
            return self.header(buf);
        };
        let cid = *cid;
        if matches!(slot.h.type_id, TYPE_SET_CHUNK_SIZE | TYPE_ABORT) {
            let off = slot.h.len.saturating_sub(slot.remaining) as usize;
            for (d, s) in slot.ctl.iter_mut().skip(off).zip(buf.iter().take(n)) {
                *d = *s;
            }
        }
        slot.remaining = slot.remaining.saturating_sub(n32);
        self.chunk_left = self.chunk_left.saturating_sub(n32);
        let end_of_message = slot.remaining == 0;
        if end_of_message {
            let (type_id, ctl) = (slot.h.type_id, slot.ctl);
            self.apply_control(type_id, ctl)?;
        }
        Ok(Status::Complete((
            n,
            Item::Payload {
                cid,
                len: n,
                end_of_message,
            },
        )))
    }

    fn apply_control(&mut self, type_id: u8, ctl: [u8; 4]) -> Result<(), ChunkError> {
        let v = u32::from_be_bytes(ctl);
        match type_id {
            TYPE_SET_CHUNK_SIZE => {
                if v == 0 || v > MAX_CHUNK_SIZE {
                    return Err(ChunkError::InvalidChunkSize(v));
                }
                self.chunk_size = v;
            }
            TYPE_ABORT => {
                if let Some(s) = self.tab.find(v).and_then(|i| self.tab.get_mut(i)) {
                    if s.remaining > 0 {
                        s.remaining = 0;
                        s.mode = Mode::Idle;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Assembler

/// A whole message read by an [`Assembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub cid: u32,
    pub header: MessageHeader,
    pub payload: &'a [u8],
}

#[derive(Debug)]
struct Partial {
    cid: u32,
    header: MessageHeader,
    buf: Vec<u8>,
}

/// Command-phase reader: whole messages, each at most
/// `limits.max_buffered_message` bytes (else [`ChunkError::MessageTooLong`]).
/// Buffers grow with the bytes actually received, not with announced lengths.
#[derive(Debug)]
pub struct Assembler {
    dec: Decoder,
    partial: Vec<Partial>,
    done: Vec<u8>,
}

impl Assembler {
    pub fn new(limits: Limits) -> Self {
        Self {
            dec: Decoder::new(limits),
            partial: Vec::new(),
            done: Vec::new(),
        }
    }

    /// Consumes bytes up to and including the end of the first message
    /// completed; returns (consumed, that message). (consumed, None) when buf
    /// ran out first (consumed may be > 0: partial messages are kept inside;
    /// `buf[consumed..]` is an incomplete chunk header to present again).
    pub fn read(&mut self, buf: &[u8]) -> Result<(usize, Option<Message<'_>>), ChunkError> {
        let mut pos = 0;
        let done = loop {
            let rest = buf.get(pos..).unwrap_or_default();
            let (n, item) = match self.dec.decode(rest)? {
                Status::Complete(x) => x,
                Status::Partial => break None,
            };
            pos += n;
            match item {
                Item::Header(h) if h.first => {
                    let limit = self.dec.limits.max_buffered_message;
                    if h.msg.length > limit {
                        return Err(ChunkError::MessageTooLong {
                            len: h.msg.length,
                            limit,
                        });
                    }
                    let p = match self.partial.iter().position(|p| p.cid == h.cid) {
                        Some(i) => self.partial.get_mut(i),
                        None => {
                            self.partial.push(Partial {
                                cid: h.cid,
                                header: h.msg,
                                buf: Vec::new(),
                            });
                            self.partial.last_mut()
                        }
                    };
                    if let Some(p) = p {
                        p.header = h.msg;
                        p.buf.clear();
                        if h.msg.length == 0 {
                            std::mem::swap(&mut p.buf, &mut self.done);
                            break Some((h.cid, h.msg));
                        }
                    }
                }
                Item::Header(_) => {}
                Item::Payload {
                    cid,
                    len,
                    end_of_message,
                } => {
                    let Some(p) = self.partial.iter_mut().find(|p| p.cid == cid) else {
                        continue;
                    };
                    p.buf.extend_from_slice(rest.get(..len).unwrap_or_default());
                    if end_of_message {
                        std::mem::swap(&mut p.buf, &mut self.done);
                        break Some((cid, p.header));
                    }
                }
            }
        };
        Ok((
            pos,
            done.map(|(cid, header)| Message {
                cid,
                header,
                payload: &self.done,
            }),
        ))
    }

    /// The peer's current chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.dec.chunk_size()
    }

    /// The underlying decoder (partially buffered messages are lost; they
    /// stay "in progress" in the decoder).
    pub fn into_decoder(self) -> Decoder {
        self.dec
    }
}

// ---------------------------------------------------------------------------
// Encoder

/// Chunk-stream writer: per-cid state of what the receiving peer has seen,
/// and the output chunk size.
#[derive(Debug, Clone)]
pub struct Encoder {
    chunk_size: u32,
    tab: Table<Hdr>,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// Chunk size 128, nothing sent yet.
    pub fn new() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            tab: Table::new(),
        }
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// The caller writes the SetChunkSize message itself (with
    /// [`write_message`](Self::write_message)) and then calls this.
    /// `n` is clamped to `1..=MAX_CHUNK_SIZE`.
    pub fn set_chunk_size(&mut self, n: u32) {
        self.chunk_size = n.clamp(1, MAX_CHUNK_SIZE);
    }

    /// Appends the message as chunks; `header.length` is taken from
    /// `payload.len()` (at most `0xFF_FFFF` bytes are written; the wire cannot
    /// say more). `cid` is clamped to `2..=65599`.
    ///
    /// Picks the smallest header the per-cid state allows: fmt 0 when nothing
    /// is known, the stream id changed or the timestamp went backwards; fmt 1
    /// when length or type changed; fmt 2 when only the delta changed; fmt 3
    /// otherwise. An extended timestamp is only ever written on fmt 0 (and on
    /// its fmt 3 continuations): where fmt 1/2 would need one (a delta of
    /// `0xFFFFFF` or more) fmt 0 is used instead, and fmt 3 is not used to
    /// start a message after an extended one. SRS assigns rather than adds the
    /// extended delta of fmt 1/2 headers and reads a new message's fmt 3
    /// extended timestamp as absolute, so those forms would be misread.
    pub fn write_message(
        &mut self,
        cid: u32,
        header: &MessageHeader,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) {
        let payload = payload.get(..EXT as usize).unwrap_or(payload);
        let cid = cid.clamp(MIN_CHUNK_STREAM_ID, MAX_CHUNK_STREAM_ID);
        let h = MessageHeader {
            length: payload.len() as u32,
            ..*header
        };
        let cs = self.chunk_size.max(1) as usize;
        let chunks = payload.len().div_ceil(cs);
        out.reserve(MAX_HEADER_LEN + payload.len() + chunks.saturating_sub(1) * 7);
        let st = self.write_header(cid, &h, out);
        let (tmp, n) = continuation(cid, &st);
        for (k, c) in payload.chunks(cs).enumerate() {
            if k > 0 {
                out.extend_from_slice(tmp.get(..n).unwrap_or_default());
            }
            out.extend_from_slice(c);
        }
    }

    fn state(&self, cid: u32) -> Option<Hdr> {
        self.tab.find(cid).and_then(|i| self.tab.get(i)).copied()
    }

    fn set_state(&mut self, cid: u32, h: Hdr) {
        match self.tab.find(cid).and_then(|i| self.tab.get_mut(i)) {
            Some(s) => *s = h,
            None => {
                self.tab.insert(cid, h);
            }
        }
    }

    /// Writes the header of a message's first chunk and records the state the
    /// receiver will have after it.
    fn write_header(&mut self, cid: u32, m: &MessageHeader, out: &mut Vec<u8>) -> Hdr {
        let prev = self.state(cid);
        let fmt = match prev {
            None => 0,
            Some(p) if p.sid != m.stream_id || m.timestamp < p.ts => 0,
            Some(p) if m.timestamp.wrapping_sub(p.ts) >= EXT => 0,
            Some(p) if p.len != m.length || p.type_id != m.type_id => 1,
            Some(p) if m.timestamp.wrapping_sub(p.ts) != p.delta || p.ext => 2,
            Some(_) => 3,
        };
        let p = prev.unwrap_or_default();
        let delta = m.timestamp.wrapping_sub(p.ts);
        put_basic(out, fmt, cid);
        let st = match fmt {
            0 => {
                put24(out, m.timestamp);
                put24(out, m.length);
                out.push(m.type_id);
                out.extend_from_slice(&m.stream_id.to_le_bytes());
                let ext = m.timestamp >= EXT;
                if ext {
                    out.extend_from_slice(&m.timestamp.to_be_bytes());
                }
                Hdr {
                    ts: m.timestamp,
                    delta: m.timestamp,
                    len: m.length,
                    sid: m.stream_id,
                    type_id: m.type_id,
                    ext,
                }
            }
            1 => {
                put24(out, delta);
                put24(out, m.length);
                out.push(m.type_id);
                Hdr {
                    ts: m.timestamp,
                    delta,
                    len: m.length,
                    type_id: m.type_id,
                    ext: false,
                    ..p
                }
            }
            2 => {
                put24(out, delta);
                Hdr {
                    ts: m.timestamp,
                    delta,
                    ext: false,
                    ..p
                }
            }
            _ => Hdr {
                ts: m.timestamp,
                ..p
            },
        };
        self.set_state(cid, st);
        st
    }

    #[cfg(test)]
    fn forget(&mut self, cid: u32) {
        let mut t = Table::new();
        for (c, h) in self.tab.slots.drain(..) {
            if c != cid {
                t.insert(c, h);
            }
        }
        self.tab = t;
    }
}

// ---------------------------------------------------------------------------
// Relay

/// Message stream id `from` upstream is `to` downstream; identity when equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamIdMap {
    pub from: u32,
    pub to: u32,
}

impl StreamIdMap {
    /// No remapping.
    pub const IDENTITY: Self = Self { from: 0, to: 0 };

    /// The downstream stream id for an upstream one.
    #[inline]
    pub fn apply(&self, stream_id: u32) -> u32 {
        if stream_id == self.from {
            self.to
        } else {
            stream_id
        }
    }
}

/// What [`Relay::process`] handled and where the bytes to write are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// Write `buf[..consumed]` as it now is.
    InPlace { consumed: usize },
    /// `buf[..consumed]` was handled; write [`Relay::output`] instead.
    Copied { consumed: usize },
}

/// One direction of a relay: parses the upstream chunk stream and forwards it
/// downstream, chunk by chunk, keeping the input's chunk boundaries (the
/// downstream chunk size always equals the upstream one).
///
/// For each header it compares the state the downstream peer will resolve it
/// against (kept in the [`Encoder`]) with the state the sender meant (kept in
/// the [`Decoder`]), on exactly the fields that header's fmt depends on. When
/// they agree the header goes out verbatim (a fmt 0 header gets its stream id
/// rewritten in place); otherwise the message's first header is re-encoded and
/// its continuation headers get their extended timestamp added or removed to
/// match, which makes that batch [`Forward::Copied`].
#[derive(Debug)]
pub struct Relay {
    up: Decoder,
    down: Encoder,
    map: StreamIdMap,
    out: Vec<u8>,
    /// `out` holds bytes written by `new` that the first `process` returns.
    keep_output: bool,
    messages: u64,
}

/// Switches a batch to copying: what was handled in place so far is copied.
#[inline]
fn begin_copy(out: &mut Vec<u8>, copying: &mut bool, handled: &[u8]) {
    if !*copying {
        *copying = true;
        out.extend_from_slice(handled);
    }
}

/// Does the downstream state `d` agree with the upstream state before a
/// header of `fmt` on the fields that header depends on? `u` is the upstream
/// state after it (the fields a header depends on are the ones it keeps, and
/// the previous timestamp is `ts - delta` for fmt 1, 2 and 3).
#[inline]
fn agrees(fmt: u8, d: &Hdr, u: &Hdr, sid: u32) -> bool {
    let base = d.ts == u.ts.wrapping_sub(u.delta) && d.sid == sid;
    match fmt {
        0 => true,
        1 => base,
        2 => base && d.len == u.len && d.type_id == u.type_id,
        _ => {
            base && d.len == u.len && d.type_id == u.type_id && d.delta == u.delta && d.ext == u.ext
        }
    }
}

impl Relay {
    /// `upstream`: the Decoder that read from this peer so far (its per-cid
    /// state and chunk size carry over). `downstream`: the Encoder that wrote
    /// to the other peer so far (what that peer has seen per cid).
    /// If the two chunk sizes differ, writes a SetChunkSize(upstream size)
    /// message (cid 2, stream 0) into its output, so the first `process` call
    /// returns Copied (even for an empty buf). Messages upstream has in
    /// progress now are dropped: the downstream never saw their start.
    pub fn new(upstream: Decoder, downstream: Encoder, map: StreamIdMap) -> Self {
        let mut up = upstream;
        let mut down = downstream;
        for (_, s) in &mut up.tab.slots {
            s.mode = if s.remaining > 0 {
                Mode::Dropped
            } else {
                Mode::Idle
            };
        }
        let mut out = Vec::new();
        if down.chunk_size != up.chunk_size {
            let m = MessageHeader {
                timestamp: 0,
                length: 4,
                type_id: TYPE_SET_CHUNK_SIZE,
                stream_id: 0,
            };
            down.write_message(2, &m, &up.chunk_size.to_be_bytes(), &mut out);
            down.set_chunk_size(up.chunk_size);
        }
        Self {
            up,
            down,
            map,
            keep_output: !out.is_empty(),
            out,
            messages: 0,
        }
    }

    /// Handles the bytes the caller read (it may edit them in place). Returns
    /// how much was handled: InPlace: write `buf[..consumed]` as it now is.
    /// Copied: write [`output`](Self::output) instead. `buf[consumed..]` is an
    /// incomplete chunk header (at most [`MAX_HEADER_LEN`] - 1 bytes) that the
    /// caller moves to the front and presents again with more bytes.
    pub fn process(&mut self, buf: &mut [u8]) -> Result<Forward, ChunkError> {
        if self.keep_output {
            self.keep_output = false;
        } else {
            self.out.clear();
        }
        let mut copying = !self.out.is_empty();
        let mut pos = 0;
        loop {
            let rest = buf.get(pos..).unwrap_or_default();
            let (n, item) = match self.up.decode(rest)? {
                Status::Complete(x) => x,
                Status::Partial => break,
            };
            let end = pos + n;
            match item {
                Item::Header(h) => self.header(&h, buf, pos, end, &mut copying),
                Item::Payload {
                    cid,
                    end_of_message,
                    ..
                } => self.payload(cid, end_of_message, buf, pos, end, &mut copying),
            }
            pos = end;
        }
        Ok(if copying {
            Forward::Copied { consumed: pos }
        } else {
            Forward::InPlace { consumed: pos }
        })
    }

    fn header(
        &mut self,
        h: &ChunkHeader,
        buf: &mut [u8],
        pos: usize,
        end: usize,
        copying: &mut bool,
    ) {
        let Some(slot) = self.up.tab.get_mut(self.up.cur) else {
            return;
        };
        let u = slot.h;
        if h.first {
            self.messages += 1;
            let sid = self.map.apply(u.sid);
            let verbatim = h.fmt == 0
                || self
                    .down
                    .state(h.cid)
                    .is_some_and(|d| agrees(h.fmt, &d, &u, sid));
            if verbatim {
                if h.fmt == 0 && sid != u.sid {
                    let at = pos + buf.get(pos).map_or(1, |b| basic_len(*b)) + 7;
                    if let Some(s) = buf.get_mut(at..at + 4) {
                        s.copy_from_slice(&sid.to_le_bytes());
                    }
                }
                if *copying {
                    self.out
                        .extend_from_slice(buf.get(pos..end).unwrap_or_default());
                }
                self.down.set_state(h.cid, Hdr { sid, ..u });
                slot.mode = Mode::Pass;
            } else {
                begin_copy(&mut self.out, copying, buf.get(..pos).unwrap_or_default());
                let m = MessageHeader {
                    stream_id: sid,
                    ..h.msg
                };
                self.down.write_header(h.cid, &m, &mut self.out);
                slot.mode = Mode::Reencoded;
            }
            return;
        }
        match slot.mode {
            Mode::Pass => {
                if *copying {
                    self.out
                        .extend_from_slice(buf.get(pos..end).unwrap_or_default());
                }
            }
            Mode::Reencoded => {
                let d = self.down.state(h.cid).unwrap_or_default();
                let (tmp, n) = continuation(h.cid, &d);
                let emit = tmp.get(..n).unwrap_or_default();
                if buf.get(pos..end) != Some(emit) {
                    begin_copy(&mut self.out, copying, buf.get(..pos).unwrap_or_default());
                }
                if *copying {
                    self.out.extend_from_slice(emit);
                }
            }
            Mode::Dropped | Mode::Idle => {
                begin_copy(&mut self.out, copying, buf.get(..pos).unwrap_or_default());
            }
        }
    }

    fn payload(
        &mut self,
        cid: u32,
        end_of_message: bool,
        buf: &[u8],
        pos: usize,
        end: usize,
        copying: &mut bool,
    ) {
        let chunk_size = self.up.chunk_size;
        let Some(slot) = self.up.tab.get_mut(self.up.cur) else {
            return;
        };
        let forwarded = matches!(slot.mode, Mode::Pass | Mode::Reencoded);
        if !forwarded {
            begin_copy(&mut self.out, copying, buf.get(..pos).unwrap_or_default());
        } else if *copying {
            self.out
                .extend_from_slice(buf.get(pos..end).unwrap_or_default());
        }
        if !end_of_message {
            return;
        }
        slot.mode = Mode::Idle;
        let (h, ctl) = (slot.h, slot.ctl);
        if forwarded {
            // The receiver applies it at the same point.
            if h.type_id == TYPE_SET_CHUNK_SIZE {
                self.down.set_chunk_size(chunk_size);
            }
        } else if matches!(h.type_id, TYPE_SET_CHUNK_SIZE | TYPE_ABORT) {
            // The downstream missed its start but must see its effect: send
            // it whole, on its own chunk stream (idle downstream).
            let m = MessageHeader {
                length: 4,
                stream_id: self.map.apply(h.sid),
                ..h.message()
            };
            self.down.write_message(cid, &m, &ctl, &mut self.out);
            if h.type_id == TYPE_SET_CHUNK_SIZE {
                self.down.set_chunk_size(chunk_size);
            }
        }
    }

    /// The bytes to write after [`Forward::Copied`].
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// The upstream peer's chunk size (also the downstream one).
    pub fn upstream_chunk_size(&self) -> u32 {
        self.up.chunk_size
    }

    /// Messages started, for logs.
    pub fn messages(&self) -> u64 {
        self.messages
    }
}
