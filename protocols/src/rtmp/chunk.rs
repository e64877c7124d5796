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
/// Output capacity a [`Relay`] keeps between batches.
const KEEP_OUT: usize = 4096;
/// Chunk streams per table at most, whatever [`Limits`] allows: tables are
/// lists scanned in order.
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
        Self { max_message_len: 0xFF_FFFF, max_chunk_streams: 64, max_buffered_message: 256 * 1024 }
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
            Self::FirstChunkNotFmt0 { cid } => {
                write!(f, "peer started chunk stream {cid} without a type 0 chunk header")
            }
            Self::InvalidChunkSize(n) => write!(f, "peer set chunk size {n}, outside 1..={MAX_CHUNK_SIZE}"),
            Self::MessageTooLong { len, limit } => {
                write!(f, "peer sent a {len}-byte message, over the {limit}-byte limit")
            }
            Self::TooManyChunkStreams { limit } => {
                write!(f, "peer used more than {limit} chunk streams")
            }
            Self::ShortControlMessage { type_id, len } => {
                write!(f, "peer sent a {len}-byte control message of type {type_id}, which needs 4 bytes")
            }
            Self::HeaderInsideMessage { cid, fmt } => {
                write!(f, "peer sent a type {fmt} chunk header on chunk stream {cid} in the middle of a message")
            }
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
        MessageHeader { timestamp: self.ts, length: self.len, type_id: self.type_id, stream_id: self.sid }
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

/// Per-cid table: a short list scanned in order. Real peers use a handful of
/// chunk streams and `Limits::max_chunk_streams` bounds a hostile one, so a
/// scan costs no more than an index would, and a relay (four tables) stays
/// small.
#[derive(Debug, Clone)]
struct Table<T> {
    slots: Vec<(u32, T)>,
}

impl<T> Table<T> {
    fn new() -> Self {
        Self { slots: Vec::new() }
    }

    #[inline]
    fn find(&self, cid: u32) -> Option<usize> {
        self.slots.iter().position(|(c, _)| *c == cid)
    }

    fn insert(&mut self, cid: u32, v: T) -> usize {
        self.slots.push((cid, v));
        self.slots.len() - 1
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
        Self { limits, chunk_size: DEFAULT_CHUNK_SIZE, tab: Table::new(), cur: 0, chunk_left: 0 }
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
        self.tab.slots.iter().filter(|(_, s)| s.remaining > 0).map(|(cid, _)| *cid)
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
                    return Err(ChunkError::TooManyChunkStreams { limit: self.limits.max_chunk_streams });
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
                return Err(ChunkError::MessageTooLong { len: h.len, limit: self.limits.max_message_len });
            }
            if matches!(h.type_id, TYPE_SET_CHUNK_SIZE | TYPE_ABORT) && h.len < 4 {
                return Err(ChunkError::ShortControlMessage { type_id: h.type_id, len: h.len });
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
        Ok(Status::Complete((end, Item::Header(ChunkHeader { cid, fmt, len: end, msg: h.message(), first, payload }))))
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
        Ok(Status::Complete((n, Item::Payload { cid, len: n, end_of_message })))
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
        Self { dec: Decoder::new(limits), partial: Vec::new(), done: Vec::new() }
    }

    /// Consumes bytes up to and including the end of the first message
    /// completed; returns (consumed, that message). (consumed, None) when buf
    /// ran out first (consumed may be > 0: partial messages are kept inside;
    /// `buf[consumed..]` is an incomplete chunk header to present again).
    pub fn read<'a>(&'a mut self, buf: &'a [u8]) -> Result<(usize, Option<Message<'a>>), ChunkError> {
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
                        return Err(ChunkError::MessageTooLong { len: h.msg.length, limit });
                    }
                    let p = match self.partial.iter().position(|p| p.cid == h.cid) {
                        Some(i) => self.partial.get_mut(i),
                        None => {
                            self.partial.push(Partial { cid: h.cid, header: h.msg, buf: Vec::new() });
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
                Item::Payload { cid, len, end_of_message } => {
                    let Some(p) = self.partial.iter_mut().find(|p| p.cid == cid) else {
                        continue;
                    };
                    let piece = rest.get(..len).unwrap_or_default();
                    if end_of_message && p.buf.is_empty() {
                        // The whole message in one piece of the caller's
                        // buffer (most commands): lent from there, not copied.
                        let header = p.header;
                        return Ok((pos, Some(Message { cid, header, payload: piece })));
                    }
                    p.buf.extend_from_slice(piece);
                    if end_of_message {
                        std::mem::swap(&mut p.buf, &mut self.done);
                        break Some((cid, p.header));
                    }
                }
            }
        };
        Ok((pos, done.map(|(cid, header)| Message { cid, header, payload: &self.done })))
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
        Self { chunk_size: DEFAULT_CHUNK_SIZE, tab: Table::new() }
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
    pub fn write_message(&mut self, cid: u32, header: &MessageHeader, payload: &[u8], out: &mut Vec<u8>) {
        let payload = payload.get(..EXT as usize).unwrap_or(payload);
        let cid = cid.clamp(MIN_CHUNK_STREAM_ID, MAX_CHUNK_STREAM_ID);
        let h = MessageHeader { length: payload.len() as u32, ..*header };
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
                Hdr { ts: m.timestamp, delta: m.timestamp, len: m.length, sid: m.stream_id, type_id: m.type_id, ext }
            }
            1 => {
                put24(out, delta);
                put24(out, m.length);
                out.push(m.type_id);
                Hdr { ts: m.timestamp, delta, len: m.length, type_id: m.type_id, ext: false, ..p }
            }
            2 => {
                put24(out, delta);
                Hdr { ts: m.timestamp, delta, ext: false, ..p }
            }
            _ => Hdr { ts: m.timestamp, ..p },
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

/// Why a [`Relay`] cannot be bypassed yet ([`Relay::out_of_step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfStep {
    /// Stream ids are rewritten (never in step).
    StreamIds {
        from: u32,
        to: u32,
    },
    /// The chunk sizes differ, or the relay's own SetChunkSize is still to go.
    ChunkSize,
    InsideChunk,
    MessageInProgress {
        cid: u32,
    },
    /// The two ends resolve the next header on this chunk stream differently.
    HeaderState {
        cid: u32,
    },
}

impl fmt::Display for OutOfStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutOfStep::StreamIds { from, to } => write!(f, "stream id {from} is {to} on the other side"),
            OutOfStep::ChunkSize => f.write_str("chunk sizes differ"),
            OutOfStep::InsideChunk => f.write_str("inside a chunk"),
            OutOfStep::MessageInProgress { cid } => write!(f, "message in progress on chunk stream {cid}"),
            OutOfStep::HeaderState { cid } => write!(f, "chunk stream {cid} out of step"),
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
    /// Batches that had to be copied (re-encoded headers), for logs.
    copied: u64,
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
        _ => base && d.len == u.len && d.type_id == u.type_id && d.delta == u.delta && d.ext == u.ext,
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
            s.mode = if s.remaining > 0 { Mode::Dropped } else { Mode::Idle };
        }
        let mut out = Vec::new();
        if down.chunk_size != up.chunk_size {
            let m = MessageHeader { timestamp: 0, length: 4, type_id: TYPE_SET_CHUNK_SIZE, stream_id: 0 };
            down.write_message(2, &m, &up.chunk_size.to_be_bytes(), &mut out);
            down.set_chunk_size(up.chunk_size);
        }
        Self { up, down, map, keep_output: !out.is_empty(), out, messages: 0, copied: 0 }
    }

    /// Handles the bytes the caller read (it may edit them in place). Returns
    /// how much was handled: InPlace: write `buf[..consumed]` as it now is.
    /// Copied: write [`output`](Self::output) instead. `buf[consumed..]` is an
    /// incomplete chunk header (at most [`MAX_HEADER_LEN`] - 1 bytes) that the
    /// caller moves to the front and presents again with more bytes.
    pub fn process(&mut self, buf: &mut [u8]) -> Result<Forward, ChunkError> {
        if self.keep_output {
            self.keep_output = false;
        } else if self.out.capacity() > KEEP_OUT {
            // Copies happen at relay start; a long relay need not keep the
            // buffer of its largest one.
            self.out = Vec::new();
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
                Item::Payload { cid, end_of_message, .. } => {
                    self.payload(cid, end_of_message, buf, pos, end, &mut copying)
                }
            }
            pos = end;
        }
        if copying {
            self.copied += 1;
            return Ok(Forward::Copied { consumed: pos });
        }
        Ok(Forward::InPlace { consumed: pos })
    }

    fn header(&mut self, h: &ChunkHeader, buf: &mut [u8], pos: usize, end: usize, copying: &mut bool) {
        let Some(slot) = self.up.tab.get_mut(self.up.cur) else {
            return;
        };
        let u = slot.h;
        if h.first {
            self.messages += 1;
            let sid = self.map.apply(u.sid);
            let verbatim = h.fmt == 0 || self.down.state(h.cid).is_some_and(|d| agrees(h.fmt, &d, &u, sid));
            if verbatim {
                if h.fmt == 0 && sid != u.sid {
                    let at = pos + buf.get(pos).map_or(1, |b| basic_len(*b)) + 7;
                    if let Some(s) = buf.get_mut(at..at + 4) {
                        s.copy_from_slice(&sid.to_le_bytes());
                    }
                }
                if *copying {
                    self.out.extend_from_slice(buf.get(pos..end).unwrap_or_default());
                }
                self.down.set_state(h.cid, Hdr { sid, ..u });
                slot.mode = Mode::Pass;
            } else {
                begin_copy(&mut self.out, copying, buf.get(..pos).unwrap_or_default());
                let m = MessageHeader { stream_id: sid, ..h.msg };
                self.down.write_header(h.cid, &m, &mut self.out);
                slot.mode = Mode::Reencoded;
            }
            return;
        }
        match slot.mode {
            Mode::Pass => {
                if *copying {
                    self.out.extend_from_slice(buf.get(pos..end).unwrap_or_default());
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

    fn payload(&mut self, cid: u32, end_of_message: bool, buf: &[u8], pos: usize, end: usize, copying: &mut bool) {
        let chunk_size = self.up.chunk_size;
        let Some(slot) = self.up.tab.get_mut(self.up.cur) else {
            return;
        };
        let forwarded = matches!(slot.mode, Mode::Pass | Mode::Reencoded);
        if !forwarded {
            begin_copy(&mut self.out, copying, buf.get(..pos).unwrap_or_default());
        } else if *copying {
            self.out.extend_from_slice(buf.get(pos..end).unwrap_or_default());
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
            let m = MessageHeader { length: 4, stream_id: self.map.apply(h.sid), ..h.message() };
            self.down.write_message(cid, &m, &ctl, &mut self.out);
            if h.type_id == TYPE_SET_CHUNK_SIZE {
                self.down.set_chunk_size(chunk_size);
            }
        }
    }

    /// May the rest of this direction bypass the relay, every byte passed on
    /// verbatim without being read (spliced in the kernel)? True only at a
    /// point where the two peers' chunk streams are in step, so that a
    /// relay that kept parsing would forward everything from here on in
    /// place, unchanged:
    ///
    /// * no stream id is rewritten (the map is the identity);
    /// * the upstream's chunk size is the downstream's, and nothing the
    ///   relay wrote itself (the SetChunkSize of [`new`](Self::new)) is
    ///   still to be returned;
    /// * the upstream is at a chunk boundary with no message in progress on
    ///   any chunk stream (none half forwarded, none dropped);
    /// * on every chunk stream the upstream used, the header state the
    ///   downstream peer resolves the next header against equals the
    ///   sender's, on every field (timestamp, delta, length, type, stream
    ///   id, extended timestamp): any fmt 1, 2 or 3 header the sender writes
    ///   next means the same to both. A chunk stream only the downstream
    ///   knows is safe (the sender starts it with fmt 0), except chunk
    ///   stream 2, which librtmp starts with fmt 1 against a zero state
    ///   (the relay re-encodes that): the sender must have used it.
    ///
    /// From such a point the two ends stay in step without the relay: the
    /// receiver decodes the very bytes the sender encoded, from the same
    /// state. A later SetChunkSize or Abort is among those bytes, so both
    /// ends apply it at the same chunk, as they would connected directly.
    pub fn can_splice(&self) -> bool {
        self.out_of_step().is_none()
    }

    /// Brings into step the chunk streams that the downstream peer would
    /// resolve differently from the upstream sender, where a message that
    /// changes nothing for the receiver can do it. For each such chunk
    /// stream, `no_op` is shown the header the sender wrote there last and
    /// gives a payload of exactly that length and type that the receiver
    /// may see again without effect (a SetChunkSize of the current size, a
    /// repeated StreamBegin or start status), or `None`. It is written only
    /// if the receiver's header state after it equals the sender's exactly.
    /// Call right after [`new`](Self::new): the first `process` returns
    /// these bytes after the SetChunkSize `new` may have written. Returns
    /// how many were written.
    ///
    /// Why: the proxy's own messages of the command phase leave the
    /// receiver's state on some chunk streams unlike the origin's, and a
    /// sender that never writes there again would keep the relay from
    /// splicing ([`can_splice`](Self::can_splice)) for the whole session.
    pub fn resync(&mut self, mut no_op: impl FnMut(&MessageHeader, u32) -> Option<Vec<u8>>) -> usize {
        let mut written = 0;
        for (cid, slot) in &self.up.tab.slots {
            let (cid, u) = (*cid, slot.h);
            if slot.remaining > 0 || self.down.state(cid) == Some(u) {
                continue;
            }
            let m = u.message();
            let Some(payload) = no_op(&m, self.up.chunk_size).filter(|p| p.len() == u.len as usize) else {
                continue;
            };
            let mut trial = self.down.clone();
            trial.write_message(cid, &m, &payload, &mut Vec::new());
            if trial.state(cid) == Some(u) {
                self.down.write_message(cid, &m, &payload, &mut self.out);
                written += 1;
            }
        }
        self.keep_output = !self.out.is_empty();
        written
    }

    /// Why [`can_splice`](Self::can_splice) says no (the first reason
    /// found), for logs.
    pub fn out_of_step(&self) -> Option<OutOfStep> {
        if self.map.from != self.map.to {
            return Some(OutOfStep::StreamIds { from: self.map.from, to: self.map.to });
        }
        if self.keep_output || self.up.chunk_size != self.down.chunk_size {
            return Some(OutOfStep::ChunkSize);
        }
        if self.up.chunk_left > 0 {
            return Some(OutOfStep::InsideChunk);
        }
        for (cid, s) in &self.up.tab.slots {
            if s.remaining > 0 {
                return Some(OutOfStep::MessageInProgress { cid: *cid });
            }
            if self.down.state(*cid) != Some(s.h) {
                return Some(OutOfStep::HeaderState { cid: *cid });
            }
        }
        // librtmp may start chunk stream 2 with fmt 1 against a zero state,
        // which the relay re-encodes as fmt 0 for the receiver: only once
        // the sender has used it (and it is in step, above) is every next
        // header passed on as it came.
        if self.up.tab.find(2).is_none() {
            return Some(OutOfStep::HeaderState { cid: 2 });
        }
        None
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

    /// Batches that were copied rather than passed in place, for logs: in
    /// the steady state this stops growing.
    pub fn copied_batches(&self) -> u64 {
        self.copied
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    // ---- helpers -----------------------------------------------------------

    /// Seeded, so every generated case can be replayed.
    struct Rng(fastrand::Rng);

    impl Rng {
        fn new(seed: u64) -> Self {
            Self(fastrand::Rng::with_seed(seed))
        }
        fn below(&mut self, n: u64) -> u64 {
            self.0.u64(..n.max(1))
        }
        fn chance(&mut self, pct: u64) -> bool {
            self.below(100) < pct
        }
        fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
            xs[self.0.usize(..xs.len())]
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            let mut b = vec![0u8; n];
            self.0.fill(&mut b);
            b
        }
    }

    fn t24(v: u32) -> [u8; 3] {
        let [_, a, b, c] = v.to_be_bytes();
        [a, b, c]
    }
    fn le32(v: u32) -> [u8; 4] {
        v.to_le_bytes()
    }
    fn be32(v: u32) -> [u8; 4] {
        v.to_be_bytes()
    }
    fn fill(n: usize, b: u8) -> Vec<u8> {
        vec![b; n]
    }
    fn mh(timestamp: u32, length: u32, type_id: u8, stream_id: u32) -> MessageHeader {
        MessageHeader { timestamp, length, type_id, stream_id }
    }
    fn head(
        cid: u32,
        fmt: u8,
        len: usize,
        (ts, mlen, ty, sid): (u32, u32, u8, u32),
        first: bool,
        payload: u32,
    ) -> Item {
        Item::Header(ChunkHeader { cid, fmt, len, msg: mh(ts, mlen, ty, sid), first, payload })
    }
    fn pay(cid: u32, len: usize, end_of_message: bool) -> Item {
        Item::Payload { cid, len, end_of_message }
    }

    /// Decodes items until Partial.
    fn decode_all(dec: &mut Decoder, buf: &[u8]) -> Result<(usize, Vec<Item>), ChunkError> {
        let mut pos = 0;
        let mut items = Vec::new();
        while let Status::Complete((n, item)) = dec.decode(&buf[pos..])? {
            assert!(n > 0, "Complete must consume");
            if let Item::Header(h) = item {
                assert_eq!(n, h.len);
            }
            pos += n;
            items.push(item);
        }
        Ok((pos, items))
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Ev {
        H(ChunkHeader),
        B(u32, u8, bool),
    }

    /// Items with payload expanded to single bytes, so that differently
    /// split payload items compare equal.
    fn events(dec: &mut Decoder, buf: &[u8]) -> Result<(usize, Vec<Ev>), ChunkError> {
        let mut pos = 0;
        let mut evs = Vec::new();
        while let Status::Complete((n, item)) = dec.decode(&buf[pos..])? {
            match item {
                Item::Header(h) => evs.push(Ev::H(h)),
                Item::Payload { cid, len, end_of_message } => {
                    assert_eq!(n, len);
                    for (k, b) in buf[pos..pos + len].iter().enumerate() {
                        evs.push(Ev::B(cid, *b, end_of_message && k + 1 == len));
                    }
                }
            }
            pos += n;
        }
        Ok((pos, evs))
    }

    /// Cut a valid stream at every byte: the prefix decodes to a prefix of
    /// the events with at most an incomplete header left, and presenting the
    /// rest again completes the stream exactly.
    fn check_truncations(bytes: &[u8]) {
        let mut whole = Decoder::new(Limits::default());
        let (used, all) = events(&mut whole, bytes).expect("valid stream");
        assert_eq!(used, bytes.len());
        for k in 0..=bytes.len() {
            let mut dec = Decoder::new(Limits::default());
            let (c, mut evs) = events(&mut dec, &bytes[..k]).expect("a valid prefix is no error");
            assert!(k - c < MAX_HEADER_LEN, "cut {k}: {} bytes left", k - c);
            assert_eq!(&all[..evs.len()], &evs[..], "cut {k}");
            let (c2, more) = events(&mut dec, &bytes[c..]).expect("valid rest");
            assert_eq!(c + c2, bytes.len(), "cut {k}");
            evs.extend(more);
            assert_eq!(evs, all, "cut {k}");
            assert_eq!(dec.chunk_size(), whole.chunk_size());
        }
    }

    // ---- decoder vectors ---------------------------------------------------

    macro_rules! vectors {
        ($($name:ident: [$($part:expr),* $(,)?], |$dec:ident, $items:ident| $body:block)*) => {$(
            #[test]
            fn $name() {
                let bytes: Vec<u8> = [$(&$part[..]),*].concat();
                let mut $dec = Decoder::new(Limits::default());
                let (used, $items) = decode_all(&mut $dec, &bytes).expect("valid vector");
                assert_eq!(used, bytes.len(), "whole vector consumed");
                $body
                check_truncations(&bytes);
            }
        )*};
    }

    vectors! {
        basic_1byte_cid2_set_chunk_size:
            [[0x02], t24(0), t24(4), [1], le32(0), be32(4096)],
            |dec, items| {
                assert_eq!(items, [head(2, 0, 12, (0, 4, 1, 0), true, 4), pay(2, 4, true)]);
                assert_eq!(dec.chunk_size(), 4096);
                assert!(dec.at_chunk_boundary());
            }
        basic_1byte_cid63:
            [[0x3f], t24(7), t24(2), [9], le32(1), [0xAA, 0xBB]],
            |_dec, items| {
                assert_eq!(items, [head(63, 0, 12, (7, 2, 9, 1), true, 2), pay(63, 2, true)]);
            }
        basic_2byte_cid64:
            [[0x00, 0x00], t24(7), t24(2), [9], le32(1), [0xAA, 0xBB]],
            |_dec, items| {
                assert_eq!(items, [head(64, 0, 13, (7, 2, 9, 1), true, 2), pay(64, 2, true)]);
            }
        basic_2byte_cid319:
            [[0x00, 0xFF], t24(7), t24(2), [9], le32(1), [0xAA, 0xBB]],
            |_dec, items| {
                assert_eq!(items, [head(319, 0, 13, (7, 2, 9, 1), true, 2), pay(319, 2, true)]);
            }
        basic_3byte_cid320:
            [[0x01, 0x00, 0x01], t24(7), t24(2), [9], le32(1), [0xAA, 0xBB]],
            |_dec, items| {
                // The SRS Go proxy read this as cid 64 and took 0x01 as timestamp.
                assert_eq!(items, [head(320, 0, 14, (7, 2, 9, 1), true, 2), pay(320, 2, true)]);
            }
        basic_3byte_cid65599:
            [[0x01, 0xFF, 0xFF], t24(7), t24(2), [9], le32(1), [0xAA, 0xBB]],
            |_dec, items| {
                assert_eq!(items, [head(65599, 0, 14, (7, 2, 9, 1), true, 2), pay(65599, 2, true)]);
            }
        basic_3byte_low_byte_first:
            [[0x01, 0x02, 0x03], t24(7), t24(2), [9], le32(1), [0xAA, 0xBB]],
            |_dec, items| {
                assert_eq!(items[0], head(64 + 2 + 3 * 256, 0, 14, (7, 2, 9, 1), true, 2));
            }
        basic_3byte_noncanonical_cid64:
            [[0x01, 0x00, 0x00], t24(7), t24(2), [9], le32(1), [0xAA, 0xBB],
             [0xC0, 0x00]],
            |_dec, items| {
                // Same chunk stream whichever form names it: the fmt 3 resolves.
                assert_eq!(items[0], head(64, 0, 14, (7, 2, 9, 1), true, 2));
                assert_eq!(items[2], head(64, 3, 2, (14, 2, 9, 1), true, 2));
                assert_eq!(items.len(), 3);
            }
        fmt_1_2_3_resolve_against_previous:
            [[0x04], t24(1000), t24(3), [8], le32(1), [1, 2, 3],
             [0x44], t24(20), t24(2), [9], [4, 5],
             [0x84], t24(30), [6, 7],
             [0xC4], [8, 9]],
            |_dec, items| {
                assert_eq!(items, [
                    head(4, 0, 12, (1000, 3, 8, 1), true, 3), pay(4, 3, true),
                    head(4, 1, 8, (1020, 2, 9, 1), true, 2), pay(4, 2, true),
                    head(4, 2, 4, (1050, 2, 9, 1), true, 2), pay(4, 2, true),
                    head(4, 3, 1, (1080, 2, 9, 1), true, 2), pay(4, 2, true),
                ]);
            }
        fmt3_after_fmt0_adds_the_timestamp:
            [[0x03], t24(100), t24(1), [8], le32(1), [1], [0xC3], [2], [0xC3], [3]],
            |_dec, items| {
                assert_eq!(items, [
                    head(3, 0, 12, (100, 1, 8, 1), true, 1), pay(3, 1, true),
                    head(3, 3, 1, (200, 1, 8, 1), true, 1), pay(3, 1, true),
                    head(3, 3, 1, (300, 1, 8, 1), true, 1), pay(3, 1, true),
                ]);
            }
        extended_timestamp_fmt0_and_continuation:
            [[0x06], t24(0xFF_FFFF), t24(200), [9], le32(1), be32(0x0100_0000), fill(128, 1),
             [0xC6], be32(0x0100_0000), fill(72, 2)],
            |dec, items| {
                assert_eq!(items, [
                    head(6, 0, 16, (0x0100_0000, 200, 9, 1), true, 128), pay(6, 128, false),
                    head(6, 3, 5, (0x0100_0000, 200, 9, 1), false, 72), pay(6, 72, true),
                ]);
                assert_eq!(dec.in_progress().count(), 0);
            }
        extended_delta_fmt1_is_added_and_carried_by_fmt3:
            [[0x05], t24(10), t24(1), [8], le32(1), [0xAA],
             [0x45], t24(0xFF_FFFF), t24(1), [8], be32(0x0200_0000), [0xBB],
             [0xC5], be32(0x0200_0000), [0xCC]],
            |_dec, items| {
                assert_eq!(items, [
                    head(5, 0, 12, (10, 1, 8, 1), true, 1), pay(5, 1, true),
                    head(5, 1, 12, (10 + 0x0200_0000, 1, 8, 1), true, 1), pay(5, 1, true),
                    head(5, 3, 5, (10 + 0x0400_0000, 1, 8, 1), true, 1), pay(5, 1, true),
                ]);
            }
        extended_delta_fmt2_then_plain_fmt2_clears_it:
            [[0x05], t24(0), t24(1), [8], le32(1), [1],
             [0x85], t24(0xFF_FFFF), be32(0x0100_0000), [2],
             [0x85], t24(40), [3],
             [0xC5], [4]],
            |_dec, items| {
                assert_eq!(items, [
                    head(5, 0, 12, (0, 1, 8, 1), true, 1), pay(5, 1, true),
                    head(5, 2, 8, (0x0100_0000, 1, 8, 1), true, 1), pay(5, 1, true),
                    head(5, 2, 4, (0x0100_0028, 1, 8, 1), true, 1), pay(5, 1, true),
                    head(5, 3, 1, (0x0100_0050, 1, 8, 1), true, 1), pay(5, 1, true),
                ]);
            }
        extended_field_with_small_value:
            [[0x03], t24(0xFF_FFFF), t24(200), [20], le32(0), be32(5), fill(128, 0),
             [0xC3], be32(5), fill(72, 0)],
            |_dec, items| {
                assert_eq!(items, [
                    head(3, 0, 16, (5, 200, 20, 0), true, 128), pay(3, 128, false),
                    head(3, 3, 5, (5, 200, 20, 0), false, 72), pay(3, 72, true),
                ]);
            }
        set_chunk_size_mid_stream:
            [[0x02], t24(0), t24(4), [1], le32(0), be32(10),
             [0x03], t24(0), t24(25), [20], le32(0), fill(10, 1),
             [0xC3], fill(10, 2), [0xC3], fill(5, 3)],
            |dec, items| {
                assert_eq!(items, [
                    head(2, 0, 12, (0, 4, 1, 0), true, 4), pay(2, 4, true),
                    head(3, 0, 12, (0, 25, 20, 0), true, 10), pay(3, 10, false),
                    head(3, 3, 1, (0, 25, 20, 0), false, 10), pay(3, 10, false),
                    head(3, 3, 1, (0, 25, 20, 0), false, 5), pay(3, 5, true),
                ]);
                assert_eq!(dec.chunk_size(), 10);
            }
        set_chunk_size_applies_to_interleaved_message:
            [[0x03], t24(0), t24(200), [9], le32(1), fill(128, 1),
             [0x02], t24(0), t24(4), [1], le32(0), be32(50),
             [0xC3], fill(50, 2), [0xC3], fill(22, 3)],
            |dec, items| {
                assert_eq!(items, [
                    head(3, 0, 12, (0, 200, 9, 1), true, 128), pay(3, 128, false),
                    head(2, 0, 12, (0, 4, 1, 0), true, 4), pay(2, 4, true),
                    head(3, 3, 1, (0, 200, 9, 1), false, 50), pay(3, 50, false),
                    head(3, 3, 1, (0, 200, 9, 1), false, 22), pay(3, 22, true),
                ]);
                assert_eq!(dec.chunk_size(), 50);
            }
        set_chunk_size_max_uses_first_four_bytes:
            [[0x02], t24(0), t24(8), [1], le32(0), be32(0x7FFF_FFFF), [9, 9, 9, 9]],
            |dec, items| {
                assert_eq!(items, [head(2, 0, 12, (0, 8, 1, 0), true, 8), pay(2, 8, true)]);
                assert_eq!(dec.chunk_size(), 0x7FFF_FFFF);
            }
        abort_discards_the_partial_message:
            [[0x04], t24(5), t24(200), [9], le32(1), fill(128, 1),
             [0x02], t24(0), t24(4), [2], le32(0), be32(4),
             [0xC4], fill(128, 2)],
            |dec, items| {
                assert_eq!(items, [
                    head(4, 0, 12, (5, 200, 9, 1), true, 128), pay(4, 128, false),
                    head(2, 0, 12, (0, 4, 2, 0), true, 4), pay(2, 4, true),
                    // A new message: first, timestamp advanced by the delta.
                    head(4, 3, 1, (10, 200, 9, 1), true, 128), pay(4, 128, false),
                ]);
                assert_eq!(dec.in_progress().collect::<Vec<_>>(), [4]);
            }
        cid2_may_start_with_fmt1:
            [[0x42], t24(7), t24(6), [4], [0, 3, 0, 0, 0, 1]],
            |_dec, items| {
                assert_eq!(items, [head(2, 1, 8, (7, 6, 4, 0), true, 6), pay(2, 6, true)]);
            }
        zero_length_messages_are_a_lone_header:
            [[0x03], t24(1), t24(0), [18], le32(1), [0xC3],
             [0x03], t24(9), t24(0), [18], le32(1)],
            |dec, items| {
                assert_eq!(items, [
                    head(3, 0, 12, (1, 0, 18, 1), true, 0),
                    head(3, 3, 1, (2, 0, 18, 1), true, 0),
                    head(3, 0, 12, (9, 0, 18, 1), true, 0),
                ]);
                assert_eq!(dec.in_progress().count(), 0);
            }
        two_byte_continuation:
            [[0x00, 36], t24(0), t24(130), [9], le32(1), fill(128, 1), [0xC0, 36], fill(2, 2)],
            |_dec, items| {
                assert_eq!(items, [
                    head(100, 0, 13, (0, 130, 9, 1), true, 128), pay(100, 128, false),
                    head(100, 3, 2, (0, 130, 9, 1), false, 2), pay(100, 2, true),
                ]);
            }
        three_byte_continuation:
            [[0x01, 0xA8, 0x03], t24(0), t24(130), [9], le32(1), fill(128, 1),
             [0xC1, 0xA8, 0x03], fill(2, 2)],
            |_dec, items| {
                assert_eq!(items, [
                    head(1000, 0, 14, (0, 130, 9, 1), true, 128), pay(1000, 128, false),
                    head(1000, 3, 3, (0, 130, 9, 1), false, 2), pay(1000, 2, true),
                ]);
            }
        interleaved_chunk_streams:
            [[0x04], t24(0), t24(130), [9], le32(1), fill(128, 1),
             [0x05], t24(3), t24(3), [8], le32(1), [7, 7, 7],
             [0xC4], [2, 2]],
            |dec, items| {
                assert_eq!(items, [
                    head(4, 0, 12, (0, 130, 9, 1), true, 128), pay(4, 128, false),
                    head(5, 0, 12, (3, 3, 8, 1), true, 3), pay(5, 3, true),
                    head(4, 3, 1, (0, 130, 9, 1), false, 2), pay(4, 2, true),
                ]);
                assert_eq!(dec.in_progress().count(), 0);
            }
    }

    macro_rules! errors {
        ($($name:ident: $limits:expr, [$($part:expr),* $(,)?] => $err:expr;)*) => {$(
            #[test]
            fn $name() {
                let bytes: Vec<u8> = [$(&$part[..]),*].concat();
                let mut dec = Decoder::new($limits);
                let mut pos = 0;
                let err = loop {
                    match dec.decode(&bytes[pos..]) {
                        Ok(Status::Complete((n, _))) => pos += n,
                        Ok(Status::Partial) => panic!("no error, Partial at {pos}"),
                        Err(e) => break e,
                    }
                };
                assert_eq!(err, $err);
            }
        )*};
    }

    fn limits_msg(max_message_len: u32) -> Limits {
        Limits { max_message_len, ..Limits::default() }
    }

    #[test]
    fn a_table_finds_every_cid_it_holds_and_no_other() {
        let mut t = Table::new();
        for cid in (2..300u32).rev() {
            t.insert(cid, cid * 10);
        }
        for cid in 2..300u32 {
            assert_eq!(t.find(cid).and_then(|i| t.get(i)), Some(&(cid * 10)));
        }
        assert_eq!(t.find(0), None);
        assert_eq!(t.find(300), None);
        assert_eq!(t.find(65599), None);
    }

    fn limits_cids(max_chunk_streams: usize) -> Limits {
        Limits { max_chunk_streams, ..Limits::default() }
    }

    errors! {
        fresh_cid_fmt1_rejected: Limits::default(),
            [[0x43], t24(0), t24(1), [8]] => ChunkError::FirstChunkNotFmt0 { cid: 3 };
        fresh_cid_fmt2_rejected: Limits::default(),
            [[0x83], t24(0)] => ChunkError::FirstChunkNotFmt0 { cid: 3 };
        fresh_cid_fmt3_rejected: Limits::default(),
            [[0xC3]] => ChunkError::FirstChunkNotFmt0 { cid: 3 };
        fresh_cid2_fmt2_rejected: Limits::default(),
            [[0x82], t24(0)] => ChunkError::FirstChunkNotFmt0 { cid: 2 };
        fresh_cid2_fmt3_rejected: Limits::default(),
            [[0xC2]] => ChunkError::FirstChunkNotFmt0 { cid: 2 };
        fresh_cid320_fmt1_rejected: Limits::default(),
            [[0x41, 0x00, 0x01], t24(0), t24(1), [8]] => ChunkError::FirstChunkNotFmt0 { cid: 320 };
        chunk_size_zero_rejected: Limits::default(),
            [[0x02], t24(0), t24(4), [1], le32(0), be32(0)] => ChunkError::InvalidChunkSize(0);
        chunk_size_2_pow_31_rejected: Limits::default(),
            [[0x02], t24(0), t24(4), [1], le32(0), be32(0x8000_0000)]
            => ChunkError::InvalidChunkSize(0x8000_0000);
        chunk_size_all_ones_rejected: Limits::default(),
            [[0x02], t24(0), t24(4), [1], le32(0), be32(u32::MAX)]
            => ChunkError::InvalidChunkSize(u32::MAX);
        message_over_limit_fmt0: limits_msg(100),
            [[0x03], t24(0), t24(101), [9], le32(1)]
            => ChunkError::MessageTooLong { len: 101, limit: 100 };
        message_over_limit_fmt1: limits_msg(100),
            [[0x03], t24(0), t24(100), [9], le32(1), fill(100, 0), [0x43], t24(1), t24(101), [9]]
            => ChunkError::MessageTooLong { len: 101, limit: 100 };
        too_many_chunk_streams: limits_cids(2),
            [[0x03], t24(0), t24(0), [9], le32(1),
             [0x00, 0xFF], t24(0), t24(0), [9], le32(1),
             [0x01, 0x00, 0x01], t24(0), t24(0), [9], le32(1)]
            => ChunkError::TooManyChunkStreams { limit: 2 };
        short_set_chunk_size: Limits::default(),
            [[0x02], t24(0), t24(3), [1], le32(0)]
            => ChunkError::ShortControlMessage { type_id: 1, len: 3 };
        short_abort: Limits::default(),
            [[0x02], t24(0), t24(0), [2], le32(0)]
            => ChunkError::ShortControlMessage { type_id: 2, len: 0 };
        fmt0_inside_message: Limits::default(),
            [[0x03], t24(0), t24(200), [9], le32(1), fill(128, 0), [0x03], t24(0)]
            => ChunkError::HeaderInsideMessage { cid: 3, fmt: 0 };
        fmt1_inside_message: Limits::default(),
            [[0x03], t24(0), t24(200), [9], le32(1), fill(128, 0), [0x43]]
            => ChunkError::HeaderInsideMessage { cid: 3, fmt: 1 };
        fmt2_inside_message: Limits::default(),
            [[0x03], t24(0), t24(200), [9], le32(1), fill(128, 0), [0x83]]
            => ChunkError::HeaderInsideMessage { cid: 3, fmt: 2 };
    }

    #[test]
    fn abort_of_idle_or_unknown_cid_is_ignored() {
        let bytes = [&[0x02][..], &t24(0), &t24(4), &[2], &le32(0), &be32(9), &[0xC2], &be32(70000)].concat();
        let mut dec = Decoder::new(Limits::default());
        let (used, items) = decode_all(&mut dec, &bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(items.len(), 4);
        assert_eq!(dec.in_progress().count(), 0);
    }

    #[test]
    fn in_progress_and_chunk_boundary() {
        let bytes = [&[0x04][..], &t24(0), &t24(200), &[9], &le32(1), &fill(100, 0)].concat();
        let mut dec = Decoder::new(Limits::default());
        assert!(dec.at_chunk_boundary());
        let (used, _) = decode_all(&mut dec, &bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert!(!dec.at_chunk_boundary());
        assert_eq!(dec.in_progress().collect::<Vec<_>>(), [4]);
        assert_eq!(dec.decode(&[]), Ok(Status::Partial));
        assert_eq!(dec.decode(&[0; 28]), Ok(Status::Complete((28, pay(4, 28, false)))));
        assert!(dec.at_chunk_boundary());
        assert_eq!(dec.in_progress().collect::<Vec<_>>(), [4]);
    }

    #[test]
    fn errors_blame_the_peer() {
        let all = [
            ChunkError::FirstChunkNotFmt0 { cid: 3 },
            ChunkError::InvalidChunkSize(0),
            ChunkError::MessageTooLong { len: 9, limit: 8 },
            ChunkError::TooManyChunkStreams { limit: 64 },
            ChunkError::ShortControlMessage { type_id: 1, len: 3 },
            ChunkError::HeaderInsideMessage { cid: 3, fmt: 0 },
        ];
        for e in all {
            let s = e.to_string();
            assert!(s.starts_with("peer "), "{s}");
        }
        assert_eq!(ChunkError::InvalidChunkSize(0).to_string(), "peer set chunk size 0, outside 1..=2147483647");
    }

    #[test]
    fn garbage_never_panics() {
        for seed in 0..200 {
            let mut rng = Rng::new(seed);
            let len = rng.below(400) as usize;
            let mut bytes = rng.bytes(len);
            // Make a valid start likely so that parsing gets further.
            if let Some(b) = bytes.first_mut() {
                *b &= 0x3F;
            }
            let mut dec = Decoder::new(limits_cids(8));
            let mut pos = 0;
            while let Ok(Status::Complete((n, _))) = dec.decode(&bytes[pos..]) {
                assert!(n > 0);
                pos += n;
            }
            let mut asm = Assembler::new(limits_cids(8));
            let mut pos = 0;
            while let Ok((n, Some(_))) = asm.read(&bytes[pos..]) {
                pos += n;
            }
        }
    }

    // ---- encoder -----------------------------------------------------------

    #[test]
    fn encoder_basic_header_forms() {
        let cases: [(u32, &[u8]); 7] = [
            (2, &[0x02]),
            (63, &[0x3F]),
            (64, &[0x00, 0x00]),
            (319, &[0x00, 0xFF]),
            (320, &[0x01, 0x00, 0x01]),
            (1000, &[0x01, 0xA8, 0x03]),
            (65599, &[0x01, 0xFF, 0xFF]),
        ];
        for (cid, basic) in cases {
            let mut enc = Encoder::new();
            let mut out = Vec::new();
            enc.write_message(cid, &mh(0, 0, 8, 0), &[0; 130], &mut out);
            let n = basic.len();
            assert_eq!(&out[..n], basic, "cid {cid}");
            // Continuation header: fmt 3, same form.
            let cont = 130 - 2 + n + 11;
            assert_eq!(out[cont] >> 6, 3);
            assert_eq!(&out[cont + 1..cont + n], &basic[1..]);
            let mut dec = Decoder::new(Limits::default());
            let (used, items) = decode_all(&mut dec, &out).unwrap();
            assert_eq!(used, out.len());
            assert_eq!(items[0], head(cid, 0, n + 11, (0, 130, 8, 0), true, 128));
        }
    }

    #[test]
    fn encoder_clamps_bad_arguments() {
        let mut enc = Encoder::new();
        enc.set_chunk_size(0);
        assert_eq!(enc.chunk_size(), 1);
        enc.set_chunk_size(u32::MAX);
        assert_eq!(enc.chunk_size(), MAX_CHUNK_SIZE);
        let mut out = Vec::new();
        enc.write_message(0, &mh(0, 99, 8, 0), &[1], &mut out);
        assert_eq!(out, [&[0x02][..], &t24(0), &t24(1), &[8], &le32(0), &[1]].concat());
        out.clear();
        enc.write_message(70000, &mh(0, 0, 8, 0), &[1], &mut out);
        assert_eq!(&out[..3], &[0x01, 0xFF, 0xFF]);
    }

    #[test]
    fn encoder_picks_the_smallest_header() {
        let mut enc = Encoder::new();
        let mut out = Vec::new();
        let mut write = |m: MessageHeader, len: usize| {
            out.clear();
            enc.write_message(4, &m, &vec![0xEE; len], &mut out);
            out[..out.len() - len].to_vec()
        };
        let hex = |v: &[&[u8]]| v.concat();
        // Nothing known: fmt 0.
        assert_eq!(write(mh(1000, 0, 8, 1), 3), hex(&[&[0x04], &t24(1000), &t24(3), &[8], &le32(1)]));
        // Same length and type, new delta: fmt 2.
        assert_eq!(write(mh(1020, 0, 8, 1), 3), hex(&[&[0x84], &t24(20)]));
        // Same delta: fmt 3.
        assert_eq!(write(mh(1040, 0, 8, 1), 3), [0xC4]);
        // Length changed: fmt 1.
        assert_eq!(write(mh(1060, 0, 8, 1), 5), hex(&[&[0x44], &t24(20), &t24(5), &[8]]));
        // Type changed: fmt 1.
        assert_eq!(write(mh(1060, 0, 9, 1), 5), hex(&[&[0x44], &t24(0), &t24(5), &[9]]));
        // Timestamp went backwards: fmt 0.
        assert_eq!(write(mh(1050, 0, 9, 1), 5), hex(&[&[0x04], &t24(1050), &t24(5), &[9], &le32(1)]));
        // Stream id changed: fmt 0.
        assert_eq!(write(mh(1050, 0, 9, 2), 5), hex(&[&[0x04], &t24(1050), &t24(5), &[9], &le32(2)]));
        // A delta that needs an extended timestamp: fmt 0, not fmt 2.
        let big = 1050 + 0x0100_0000;
        assert_eq!(write(mh(big, 0, 9, 2), 5), hex(&[&[0x04], &t24(0xFF_FFFF), &t24(5), &[9], &le32(2), &be32(big)]));
        // After an extended fmt 0, a small delta: plain fmt 2.
        assert_eq!(write(mh(big + 10, 0, 9, 2), 5), hex(&[&[0x84], &t24(10)]));
        assert_eq!(write(mh(big + 20, 0, 9, 2), 5), [0xC4]);
    }

    #[test]
    fn encoder_chunks_and_extended_continuations() {
        let mut enc = Encoder::new();
        let mut out = Vec::new();
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        enc.write_message(3, &mh(0x0123_4567, 0, 20, 0), &payload, &mut out);
        let expect = [
            &[0x03][..],
            &t24(0xFF_FFFF),
            &t24(300),
            &[20],
            &le32(0),
            &be32(0x0123_4567),
            &payload[..128],
            &[0xC3],
            &be32(0x0123_4567),
            &payload[128..256],
            &[0xC3],
            &be32(0x0123_4567),
            &payload[256..],
        ]
        .concat();
        assert_eq!(out, expect);
        out.clear();
        enc.set_chunk_size(200);
        enc.write_message(3, &mh(0x0123_4568, 0, 20, 0), &payload, &mut out);
        let expect = [&[0x83][..], &t24(1), &payload[..200], &[0xC3], &payload[200..]].concat();
        assert_eq!(out, expect);
    }

    // ---- random message sequences -----------------------------------------

    const CIDS: [u32; 10] = [2, 3, 4, 5, 6, 63, 64, 319, 320, 65599];
    const MEDIA_TYPES: [u8; 7] = [8, 9, 18, 20, 4, 3, 22];

    fn random_chunk_size(rng: &mut Rng) -> u32 {
        match rng.below(20) {
            0 => rng.pick(&[1, 2, 3, 5]),
            1 => 0x7FFF_FFFF,
            2..=5 => 4096,
            6..=9 => 60,
            _ => rng.pick(&[100, 128, 200, 1000, 65536]),
        }
    }

    /// Random but plausible headers: repeats, small deltas, jumps past the
    /// 24-bit range, timestamps going backwards.
    struct Gen {
        rng: Rng,
        last: HashMap<u32, (MessageHeader, u32)>,
    }

    impl Gen {
        fn new(seed: u64) -> Self {
            Self { rng: Rng::new(seed), last: HashMap::new() }
        }

        fn header(&mut self, cid: u32, ty: Option<u8>, len: Option<u32>) -> MessageHeader {
            let r = &mut self.rng;
            let (ts, delta, plen, pty, psid) = match self.last.get(&cid) {
                None => {
                    let ts = if r.chance(20) { 0xFF_FFF0 + r.below(32) as u32 } else { r.below(5000) as u32 };
                    (ts, ts, r.below(700) as u32, r.pick(&MEDIA_TYPES), r.pick(&[0, 1, 5]))
                }
                Some((p, d)) => {
                    let ts = match r.below(100) {
                        0..=44 => p.timestamp.wrapping_add(*d),
                        45..=79 => p.timestamp.wrapping_add(r.below(100) as u32),
                        80..=87 => p.timestamp.wrapping_add(0x0100_0000 + r.below(1000) as u32),
                        88..=94 => p.timestamp.wrapping_sub(r.below(1000) as u32),
                        _ => r.0.u32(..),
                    };
                    (ts, ts.wrapping_sub(p.timestamp), p.length, p.type_id, p.stream_id)
                }
            };
            let length = len.unwrap_or_else(|| match r.below(10) {
                0..=4 => plen,
                5 => 0,
                6 => 1 + r.below(4) as u32,
                _ => r.below(700) as u32,
            });
            let type_id = ty.unwrap_or_else(|| {
                if r.chance(60) && !matches!(pty, TYPE_SET_CHUNK_SIZE | TYPE_ABORT) {
                    pty
                } else {
                    r.pick(&MEDIA_TYPES)
                }
            });
            let stream_id = if r.chance(85) { psid } else { r.pick(&[0, 1, 5]) };
            let m = mh(ts, length, type_id, stream_id);
            self.last.insert(cid, (m, delta));
            m
        }
    }

    /// A writer that picks any valid header form at random (not only the
    /// smallest) and interleaves the chunks of several messages.
    struct Raw {
        rng: Rng,
        st: HashMap<u32, Hdr>,
        cs: u32,
        active: Vec<(u32, Vec<u8>, usize, u8)>,
        cid2_fmt1: bool,
    }

    impl Raw {
        fn new(seed: u64, cid2_fmt1: bool) -> Self {
            Self { rng: Rng::new(seed), st: HashMap::new(), cs: DEFAULT_CHUNK_SIZE, active: Vec::new(), cid2_fmt1 }
        }

        fn busy(&self, cid: u32) -> bool {
            self.active.iter().any(|a| a.0 == cid)
        }

        fn start(&mut self, cid: u32, m: &MessageHeader, payload: Vec<u8>, force0: bool, out: &mut Vec<u8>) {
            assert!(!self.busy(cid));
            let len = payload.len() as u32;
            let known = self.st.get(&cid).copied();
            let mut fmts = vec![0u8];
            let p = match known {
                Some(p) => {
                    let delta = m.timestamp.wrapping_sub(p.ts);
                    if p.sid == m.stream_id {
                        fmts.push(1);
                        if p.len == len && p.type_id == m.type_id {
                            fmts.push(2);
                            if delta == p.delta {
                                fmts.push(3);
                            }
                        }
                    }
                    p
                }
                None => {
                    if cid == 2 && self.cid2_fmt1 && m.stream_id == 0 {
                        fmts.push(1);
                    }
                    Hdr::default()
                }
            };
            let fmt = if force0 { 0 } else { self.rng.pick(&fmts) };
            let delta = m.timestamp.wrapping_sub(p.ts);
            put_basic(out, fmt, cid);
            let st = match fmt {
                0 => {
                    put24(out, m.timestamp);
                    put24(out, len);
                    out.push(m.type_id);
                    out.extend_from_slice(&le32(m.stream_id));
                    let ext = m.timestamp >= EXT;
                    if ext {
                        out.extend_from_slice(&be32(m.timestamp));
                    }
                    Hdr { ts: m.timestamp, delta: m.timestamp, len, sid: m.stream_id, type_id: m.type_id, ext }
                }
                1 | 2 => {
                    put24(out, delta);
                    if fmt == 1 {
                        put24(out, len);
                        out.push(m.type_id);
                    }
                    let ext = delta >= EXT;
                    if ext {
                        out.extend_from_slice(&be32(delta));
                    }
                    Hdr { ts: m.timestamp, delta, len, sid: p.sid, type_id: m.type_id, ext }
                }
                _ => {
                    if p.ext {
                        out.extend_from_slice(&be32(p.delta));
                    }
                    Hdr { ts: m.timestamp, ..p }
                }
            };
            self.st.insert(cid, st);
            let k = payload.len().min(self.cs as usize);
            out.extend_from_slice(&payload[..k]);
            if k == payload.len() {
                self.finish(m.type_id, &payload);
            } else {
                self.active.push((cid, payload, k, m.type_id));
            }
        }

        fn finish(&mut self, ty: u8, payload: &[u8]) {
            if ty == TYPE_SET_CHUNK_SIZE {
                self.cs = u32::from_be_bytes(payload[..4].try_into().unwrap());
            }
        }

        fn step(&mut self, out: &mut Vec<u8>) -> bool {
            if self.active.is_empty() {
                return false;
            }
            let i = self.rng.below(self.active.len() as u64) as usize;
            self.step_at(i, out);
            true
        }

        fn step_at(&mut self, i: usize, out: &mut Vec<u8>) {
            let st = self.st[&self.active[i].0];
            let (cid, payload, off, _) = &mut self.active[i];
            put_basic(out, 3, *cid);
            if st.ext {
                out.extend_from_slice(&be32(st.delta));
            }
            let k = (payload.len() - *off).min(self.cs as usize);
            out.extend_from_slice(&payload[*off..*off + k]);
            *off += k;
            if *off == payload.len() {
                let (_, payload, _, ty) = self.active.remove(i);
                self.finish(ty, &payload);
            }
        }

        /// Abandons `target`'s message and sends Abort for it on `via`.
        fn abort(&mut self, target: u32, via: u32, m: &MessageHeader, out: &mut Vec<u8>) {
            self.active.retain(|a| a.0 != target);
            self.start(via, m, be32(target).to_vec(), false, out);
            // `target` may only be used again once the Abort has arrived.
            while let Some(i) = self.active.iter().position(|a| a.0 == via) {
                self.step_at(i, out);
            }
        }
    }

    enum Up {
        Enc(Encoder),
        Raw(Raw),
    }

    /// One peer's outgoing chunk stream, written from random messages.
    struct Session {
        gen: Gen,
        up: Up,
        rng: Rng,
        /// Messages written, in the order they were started.
        sent: Vec<(u32, MessageHeader, Vec<u8>)>,
    }

    impl Session {
        fn new(seed: u64, raw: Option<bool>) -> Self {
            Self {
                gen: Gen::new(seed ^ 0xA5A5),
                up: match raw {
                    None => Up::Enc(Encoder::new()),
                    Some(cid2_fmt1) => Up::Raw(Raw::new(seed ^ 0x5A5A, cid2_fmt1)),
                },
                rng: Rng::new(seed),
                sent: Vec::new(),
            }
        }

        fn busy(&self, cid: u32) -> bool {
            match &self.up {
                Up::Enc(_) => false,
                Up::Raw(r) => r.busy(cid),
            }
        }

        fn free_cid(&mut self, out: &mut Vec<u8>) -> u32 {
            loop {
                let free: Vec<u32> = CIDS.iter().copied().filter(|c| !self.busy(*c)).collect();
                if free.len() > 6 || (!free.is_empty() && self.rng.chance(50)) {
                    return self.rng.pick(&free);
                }
                if let Up::Raw(r) = &mut self.up {
                    r.step(out);
                }
            }
        }

        fn send(&mut self, cid: u32, m: MessageHeader, payload: Vec<u8>, force0: bool, out: &mut Vec<u8>) {
            self.sent.push((cid, m, payload.clone()));
            match &mut self.up {
                Up::Enc(e) => {
                    if force0 {
                        e.forget(cid);
                    }
                    e.write_message(cid, &m, &payload, out);
                    if m.type_id == TYPE_SET_CHUNK_SIZE {
                        e.set_chunk_size(u32::from_be_bytes(payload[..4].try_into().unwrap()));
                    }
                }
                Up::Raw(r) => r.start(cid, &m, payload, force0, out),
            }
        }

        fn set_chunk_size(&mut self, size: u32, out: &mut Vec<u8>) {
            let cid = if self.busy(2) { self.free_cid(out) } else { 2 };
            let mut m = self.gen.header(cid, Some(TYPE_SET_CHUNK_SIZE), Some(4));
            if self.rng.chance(50) {
                m.stream_id = 0;
            }
            self.send(cid, m, be32(size).to_vec(), false, out);
        }

        /// Writes `n` random messages (media, SetChunkSize, Abort).
        fn produce(&mut self, n: usize, out: &mut Vec<u8>) {
            for _ in 0..n {
                if let Up::Raw(r) = &mut self.up {
                    for _ in 0..self.rng.below(4) {
                        r.step(out);
                    }
                }
                let roll = self.rng.below(100);
                if roll < 4 {
                    let size = random_chunk_size(&mut self.rng);
                    self.set_chunk_size(size, out);
                    continue;
                }
                if roll < 7 {
                    if let Up::Raw(r) = &self.up {
                        if let Some(target) = r.active.first().map(|a| a.0) {
                            let via = self.free_cid(out);
                            if self.busy(target) {
                                let m = self.gen.header(via, Some(TYPE_ABORT), Some(4));
                                if let Up::Raw(r) = &mut self.up {
                                    r.abort(target, via, &m, out);
                                }
                                continue;
                            }
                        }
                    }
                }
                let cid = self.free_cid(out);
                let m = self.gen.header(cid, None, None);
                let payload = self.rng.bytes(m.length as usize);
                self.send(cid, m, payload, false, out);
            }
        }

        fn flush(&mut self, out: &mut Vec<u8>) {
            if let Up::Raw(r) = &mut self.up {
                while r.step(out) {}
            }
        }

        /// One fmt 0 message on every chunk stream.
        fn sync(&mut self, out: &mut Vec<u8>) {
            self.flush(out);
            for cid in CIDS {
                let m = self.gen.header(cid, Some(TYPE_AUDIO), Some(5));
                let payload = self.rng.bytes(5);
                self.send(cid, m, payload, true, out);
            }
            self.flush(out);
        }
    }

    type Msg = (u32, MessageHeader, Vec<u8>);

    /// Reads whole messages, presenting the bytes in random pieces the way a
    /// caller does (keeping the unconsumed tail).
    fn assemble(bytes: &[u8], rng: &mut Rng) -> (Vec<Msg>, u32) {
        let mut asm = Assembler::new(Limits::default());
        let mut msgs = Vec::new();
        let mut carry: Vec<u8> = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let max = if rng.chance(10) { 5000 } else { 200 };
            let k = (1 + rng.below(max) as usize).min(bytes.len() - i);
            carry.extend_from_slice(&bytes[i..i + k]);
            i += k;
            let mut pos = 0;
            loop {
                let (n, m) = asm.read(&carry[pos..]).expect("valid stream");
                pos += n;
                match m {
                    Some(m) => msgs.push((m.cid, m.header, m.payload.to_vec())),
                    None => break,
                }
            }
            assert!(carry.len() - pos < MAX_HEADER_LEN);
            carry.drain(..pos);
        }
        assert!(carry.is_empty(), "stream ends at a chunk boundary");
        (msgs, asm.chunk_size())
    }

    #[test]
    fn encoder_assembler_round_trip() {
        for seed in 1..=40 {
            let mut s = Session::new(seed, None);
            let mut bytes = Vec::new();
            s.produce(300, &mut bytes);
            let mut rng = Rng::new(seed * 7);
            let (got, _) = assemble(&bytes, &mut rng);
            assert_eq!(got.len(), s.sent.len(), "seed {seed}");
            for (g, e) in got.iter().zip(&s.sent) {
                let expect = (e.0, MessageHeader { length: e.2.len() as u32, ..e.1 }, e.2.clone());
                assert_eq!(g, &expect, "seed {seed}");
            }
        }
    }

    #[test]
    fn random_streams_survive_every_truncation() {
        for seed in 1..=3 {
            let mut s = Session::new(seed, Some(true));
            let mut bytes = Vec::new();
            s.gen.last.clear();
            s.produce(12, &mut bytes);
            s.flush(&mut bytes);
            bytes.truncate(4000);
            // Cut back to the last whole item so the stream is valid.
            let mut dec = Decoder::new(Limits::default());
            let (used, _) = decode_all(&mut dec, &bytes).unwrap();
            check_truncations(&bytes[..used]);
        }
    }

    // ---- assembler ---------------------------------------------------------

    #[test]
    fn assembler_returns_messages_in_completion_order() {
        let bytes = [
            &[0x04][..],
            &t24(0),
            &t24(130),
            &[9],
            &le32(1),
            &fill(128, 1),
            &[0x05],
            &t24(3),
            &t24(3),
            &[8],
            &le32(1),
            &[7, 7, 7],
            &[0xC4],
            &[2, 2],
            &[0x06],
            &t24(4),
            &t24(0),
            &[18],
            &le32(0),
        ]
        .concat();
        let mut asm = Assembler::new(Limits::default());
        let (n, m) = asm.read(&bytes).unwrap();
        assert_eq!(n, 12 + 128 + 12 + 3);
        let m = m.unwrap();
        assert_eq!((m.cid, m.header, m.payload), (5, mh(3, 3, 8, 1), &[7, 7, 7][..]));
        // A message in one piece is lent from the caller's buffer, not copied.
        assert!(std::ptr::eq(m.payload.as_ptr(), bytes[12 + 128 + 12..].as_ptr()));
        let (n2, m) = asm.read(&bytes[n..]).unwrap();
        assert_eq!(n2, 3);
        let m = m.unwrap();
        let mut p = fill(128, 1);
        p.extend([2, 2]);
        assert_eq!((m.cid, m.header, m.payload), (4, mh(0, 130, 9, 1), &p[..]));
        let (n3, m) = asm.read(&bytes[n + n2..]).unwrap();
        assert_eq!(n3, 12);
        let m = m.unwrap();
        assert_eq!((m.cid, m.header, m.payload), (6, mh(4, 0, 18, 0), &[][..]));
        assert_eq!(asm.read(&[]).unwrap(), (0, None));
    }

    #[test]
    fn assembler_keeps_partial_messages() {
        let bytes = [&[0x04][..], &t24(0), &t24(130), &[9], &le32(1), &fill(128, 1), &[0xC4]].concat();
        let mut asm = Assembler::new(Limits::default());
        let (n, m) = asm.read(&bytes).unwrap();
        // The complete fmt 3 header is consumed too.
        assert_eq!((n, m), (141, None));
        let (n, m) = asm.read(&[5, 6, 0xC4]).unwrap();
        assert_eq!(n, 2);
        let m = m.unwrap();
        assert_eq!(m.payload.len(), 130);
        assert_eq!(&m.payload[128..], &[5, 6]);
    }

    #[test]
    fn assembler_limits_buffered_messages() {
        let limits = Limits { max_buffered_message: 100, ..Limits::default() };
        let ok = [&[0x04][..], &t24(0), &t24(100), &[9], &le32(1), &fill(100, 1)].concat();
        let mut asm = Assembler::new(limits);
        assert_eq!(asm.read(&ok).unwrap().0, ok.len());
        let long = [&[0x04][..], &t24(0), &t24(101), &[9], &le32(1)].concat();
        assert_eq!(asm.read(&long), Err(ChunkError::MessageTooLong { len: 101, limit: 100 }));
    }

    #[test]
    fn assembler_abort_drops_partial() {
        let bytes = [
            &[0x04][..],
            &t24(5),
            &t24(130),
            &[9],
            &le32(1),
            &fill(128, 1),
            &[0x02],
            &t24(0),
            &t24(4),
            &[2],
            &le32(0),
            &be32(4),
            &[0xC4],
            &fill(128, 2),
            &[0xC4],
            &[3, 3],
        ]
        .concat();
        let mut asm = Assembler::new(Limits::default());
        let (n, m) = asm.read(&bytes).unwrap();
        assert_eq!(m.unwrap().header, mh(0, 4, TYPE_ABORT, 0));
        let (_, m) = asm.read(&bytes[n..]).unwrap();
        let m = m.unwrap();
        let mut p = fill(128, 2);
        p.extend([3, 3]);
        assert_eq!((m.cid, m.header, m.payload), (4, mh(10, 130, 9, 1), &p[..]));
        let dec = asm.into_decoder();
        assert_eq!(dec.in_progress().count(), 0);
    }

    // ---- relay -------------------------------------------------------------

    #[derive(Default)]
    struct Fed {
        out: Vec<u8>,
        carry: Vec<u8>,
        in_place: usize,
        copied: usize,
        sizes_differed: bool,
        /// The relay said it could be bypassed (at `out.len()`): from then
        /// on every byte must pass unchanged.
        spliced_at: Option<usize>,
    }

    /// Feeds `data` to the relay in random pieces as a caller does: write
    /// the buffer or the relay's output, keep the incomplete tail.
    fn feed(relay: &mut Relay, data: &[u8], rng: &mut Rng, fed: &mut Fed, all_in_place: bool) {
        let mut i = 0;
        while i < data.len() {
            let max = if rng.chance(20) { 4000 } else { 300 };
            let k = (1 + rng.below(max) as usize).min(data.len() - i);
            fed.carry.extend_from_slice(&data[i..i + k]);
            i += k;
            let mut buf = std::mem::take(&mut fed.carry);
            let before = fed.spliced_at.map(|_| buf.clone());
            let f = relay.process(&mut buf).expect("valid upstream");
            if let Some(before) = before {
                // Past the switch a splice would move these very bytes.
                let Forward::InPlace { consumed } = f else { panic!("Copied after can_splice") };
                assert_eq!(buf[..consumed], before[..consumed], "bytes rewritten after can_splice");
            }
            let consumed = match f {
                Forward::InPlace { consumed } => {
                    fed.in_place += 1;
                    fed.out.extend_from_slice(&buf[..consumed]);
                    consumed
                }
                Forward::Copied { consumed } => {
                    assert!(!all_in_place, "Copied in the steady state");
                    fed.copied += 1;
                    fed.out.extend_from_slice(relay.output());
                    consumed
                }
            };
            assert!(buf.len() - consumed < MAX_HEADER_LEN);
            buf.drain(..consumed);
            fed.carry = buf;
            if fed.spliced_at.is_none() && fed.carry.is_empty() && relay.can_splice() {
                fed.spliced_at = Some(fed.out.len());
            }
        }
    }

    /// What the downstream must receive: the upstream messages whose first
    /// chunk came at or after `cut`, in completion order, stream ids mapped;
    /// plus SetChunkSize and Abort messages that started before `cut` and
    /// ended after it (their effect is re-sent whole). Also returns how many
    /// messages started at or after `cut`.
    fn oracle(up: &[u8], cut: usize, map: StreamIdMap) -> (Vec<Msg>, u64) {
        let mut dec = Decoder::new(Limits::default());
        let mut open: HashMap<u32, (usize, MessageHeader, Vec<u8>)> = HashMap::new();
        let mut res = Vec::new();
        let mut started = 0;
        let mut pos = 0;
        while let Status::Complete((n, item)) = dec.decode(&up[pos..]).unwrap() {
            let done = match item {
                Item::Header(h) if h.first => {
                    if pos >= cut {
                        started += 1;
                    }
                    open.insert(h.cid, (pos, h.msg, Vec::new()));
                    (h.msg.length == 0).then_some(h.cid)
                }
                Item::Header(_) => None,
                Item::Payload { cid, len, end_of_message } => {
                    open.get_mut(&cid).unwrap().2.extend_from_slice(&up[pos..pos + len]);
                    end_of_message.then_some(cid)
                }
            };
            pos += n;
            if let Some(cid) = done {
                let (at, mut h, mut p) = open.remove(&cid).unwrap();
                h.stream_id = map.apply(h.stream_id);
                if at >= cut {
                    res.push((cid, h, p));
                } else if pos > cut && matches!(h.type_id, TYPE_SET_CHUNK_SIZE | TYPE_ABORT) {
                    p.truncate(4);
                    h.length = 4;
                    res.push((cid, h, p));
                }
            }
        }
        assert_eq!(pos, up.len());
        (res, started)
    }

    #[derive(Clone, Copy)]
    enum Cut {
        /// The relay starts with the connection.
        None,
        /// An Assembler read the command phase (stops at a message end).
        Assembler,
        /// A raw Decoder stopped anywhere, even inside a payload.
        Decoder,
    }

    #[derive(Clone, Copy)]
    struct Scenario {
        /// `None`: upstream is an Encoder; `Some(cid2_fmt1)`: a Raw writer.
        raw: Option<bool>,
        cut: Cut,
        prefix_chunk_size: Option<u32>,
        down_pre: usize,
        down_chunk_size: Option<u32>,
        map: StreamIdMap,
        all_in_place: bool,
        verbatim: bool,
    }

    const BASE: Scenario = Scenario {
        raw: None,
        cut: Cut::None,
        prefix_chunk_size: None,
        down_pre: 0,
        down_chunk_size: None,
        map: StreamIdMap::IDENTITY,
        all_in_place: false,
        verbatim: false,
    };

    /// Runs one relay session and checks what the downstream decodes.
    /// Returns the batch counts of the random phase.
    fn run_relay(seed: u64, sc: Scenario) -> Fed {
        let mut rng = Rng::new(seed ^ 0xFEED);
        let mut s = Session::new(seed, sc.raw);
        let mut up = Vec::new();

        // Command phase, read by the proxy itself.
        if let Some(n) = sc.prefix_chunk_size {
            s.set_chunk_size(n, &mut up);
        }
        let (dec, cut) = match sc.cut {
            Cut::None => (Decoder::new(Limits::default()), 0),
            Cut::Assembler => {
                s.produce(40, &mut up);
                let mut asm = Assembler::new(Limits::default());
                let mut pos = 0;
                let stop = 1 + rng.below(40);
                for _ in 0..stop {
                    let (n, m) = asm.read(&up[pos..]).unwrap();
                    pos += n;
                    if m.is_none() {
                        break;
                    }
                }
                (asm.into_decoder(), pos)
            }
            Cut::Decoder => {
                s.produce(40, &mut up);
                let target = rng.below(up.len() as u64 + 1) as usize;
                let mut dec = Decoder::new(Limits::default());
                let (pos, _) = decode_all(&mut dec, &up[..target]).unwrap();
                (dec, pos)
            }
        };

        // What the downstream peer was sent before the relay.
        let mut down = Encoder::new();
        let mut down_pre = Vec::new();
        let mut dgen = Gen::new(seed ^ 0xD0D0);
        for _ in 0..sc.down_pre {
            let cid = rng.pick(&CIDS);
            let m = dgen.header(cid, None, None);
            down.write_message(cid, &m, &rng.bytes(m.length as usize), &mut down_pre);
        }
        if let Some(n) = sc.down_chunk_size {
            let m = mh(0, 4, TYPE_SET_CHUNK_SIZE, 0);
            down.write_message(2, &m, &be32(n), &mut down_pre);
            down.set_chunk_size(n);
        }
        let sizes_differ = down.chunk_size() != dec.chunk_size();
        let start_cs = dec.chunk_size();

        let mut relay = Relay::new(dec, down, sc.map);
        let mut fed = Fed { sizes_differed: sizes_differ, ..Fed::default() };
        if sizes_differ {
            // The SetChunkSize written by `new` comes out first, even for no input.
            assert_eq!(relay.process(&mut []), Ok(Forward::Copied { consumed: 0 }));
            let with_pre = [&down_pre[..], relay.output()].concat();
            let (msgs, cs) = assemble(&with_pre, &mut rng);
            let set = (2, mh(0, 4, TYPE_SET_CHUNK_SIZE, 0), be32(start_cs).to_vec());
            assert_eq!(msgs.last(), Some(&set));
            assert_eq!(cs, start_cs);
            fed.out.extend_from_slice(relay.output());
        }
        assert_eq!(relay.process(&mut []), Ok(Forward::InPlace { consumed: 0 }));

        // Relay phase: the rest of the command phase's bytes, then more.
        let start = up.len();
        s.produce(250, &mut up);
        s.flush(&mut up);
        feed(&mut relay, &up[cut..], &mut rng, &mut fed, sc.all_in_place);
        let random_phase = (fed.in_place, fed.copied);
        assert!(fed.carry.is_empty());
        assert!(start >= cut);

        // One fmt 0 message per chunk stream, then nothing may be copied.
        let sync = up.len();
        s.sync(&mut up);
        feed(&mut relay, &up[sync..], &mut rng, &mut fed, sc.all_in_place);
        // Every chunk stream saw a fmt 0: in step, unless stream ids differ.
        assert_eq!(relay.can_splice(), sc.map == StreamIdMap::IDENTITY, "seed {seed}");
        let steady = up.len();
        s.produce(250, &mut up);
        s.flush(&mut up);
        let before = fed.copied;
        feed(&mut relay, &up[steady..], &mut rng, &mut fed, true);
        assert_eq!(fed.copied, before);
        assert!(fed.carry.is_empty());

        if sc.verbatim {
            assert_eq!(fed.out, &up[cut..], "identity relay changes nothing");
        }

        // The downstream peer decodes what it got.
        let mut all = down_pre.clone();
        all.extend_from_slice(&fed.out);
        let (pre_msgs, _) = assemble(&down_pre, &mut rng);
        let (got, down_cs) = assemble(&all, &mut rng);
        let (mut expect, started) = oracle(&up, cut, sc.map);
        if sizes_differ {
            let m = mh(0, 4, TYPE_SET_CHUNK_SIZE, 0);
            expect.insert(0, (2, m, be32(start_cs).to_vec()));
        }
        assert_eq!(got[..pre_msgs.len()], pre_msgs[..]);
        let got = &got[pre_msgs.len()..];
        assert_eq!(got.len(), expect.len(), "seed {seed}");
        for (k, (g, e)) in got.iter().zip(&expect).enumerate() {
            assert_eq!(g, e, "seed {seed}, message {k}");
        }
        assert_eq!(relay.messages(), started);
        assert_eq!(down_cs, relay.upstream_chunk_size());
        let mut d = Decoder::new(Limits::default());
        decode_all(&mut d, &up).unwrap();
        assert_eq!(relay.upstream_chunk_size(), d.chunk_size());
        Fed { in_place: random_phase.0, copied: random_phase.1, ..fed }
    }

    #[test]
    fn relay_a_fresh_connection_is_all_in_place() {
        for seed in 1..=6 {
            for raw in [None, Some(false)] {
                let sc = Scenario { raw, all_in_place: true, verbatim: true, ..BASE };
                let fed = run_relay(seed, sc);
                assert_eq!(fed.copied, 0);
                assert!(fed.in_place > 0);
            }
        }
    }

    #[test]
    fn relay_b_downstream_saw_other_messages_on_the_same_cids() {
        let mut copied = 0;
        for seed in 1..=8 {
            for raw in [None, Some(true)] {
                let sc = Scenario { raw, cut: Cut::Assembler, down_pre: 30, ..BASE };
                copied += run_relay(seed, sc).copied;
            }
        }
        assert!(copied > 0, "re-encoding happened");
    }

    #[test]
    fn relay_c_stream_id_map() {
        let map = StreamIdMap { from: 1, to: 5 };
        for seed in 1..=6 {
            for raw in [None, Some(false)] {
                let sc = Scenario { raw, map, all_in_place: true, ..BASE };
                assert_eq!(run_relay(seed, sc).copied, 0);
                let sc = Scenario { raw, map, cut: Cut::Assembler, down_pre: 20, ..BASE };
                run_relay(seed, sc);
            }
        }
    }

    #[test]
    fn relay_d_different_chunk_sizes() {
        let (mut differed, mut runs) = (0, 0);
        for seed in 1..=6 {
            for raw in [None, Some(true)] {
                for down_chunk_size in [None, Some(4096), Some(1000)] {
                    let sc = Scenario {
                        raw,
                        cut: Cut::Assembler,
                        prefix_chunk_size: Some(1000),
                        down_chunk_size,
                        down_pre: 5,
                        ..BASE
                    };
                    differed += usize::from(run_relay(seed, sc).sizes_differed);
                    runs += 1;
                }
            }
        }
        assert!(differed > runs / 2, "{differed} of {runs}");
    }

    #[test]
    fn relay_e_starts_inside_interleaved_messages() {
        let mut copied = 0;
        for seed in 1..=12 {
            for down_pre in [0, 10] {
                let sc = Scenario { raw: Some(true), cut: Cut::Decoder, down_pre, ..BASE };
                copied += run_relay(seed, sc).copied;
            }
        }
        assert!(copied > 0);
    }

    fn set_chunk_size_msg(cid_byte: u8, n: u32) -> Vec<u8> {
        [&[cid_byte][..], &t24(0), &t24(4), &[1], &le32(0), &be32(n)].concat()
    }

    /// Feeds `buf` in one piece; returns what the caller writes.
    fn relay_once(relay: &mut Relay, buf: &[u8]) -> (Forward, Vec<u8>) {
        let mut buf = buf.to_vec();
        let f = relay.process(&mut buf).unwrap();
        let out = match f {
            Forward::InPlace { consumed } => buf[..consumed].to_vec(),
            Forward::Copied { .. } => relay.output().to_vec(),
        };
        (f, out)
    }

    #[test]
    fn relay_resends_a_dropped_set_chunk_size() {
        // SetChunkSize(2), then SetChunkSize(300) whose first chunk the
        // command phase read; the relay starts in the middle of it.
        let before =
            [set_chunk_size_msg(0x02, 2), [&[0x02][..], &t24(0), &t24(4), &[1], &le32(0), &[0, 0]].concat()].concat();
        let mut dec = Decoder::new(Limits::default());
        assert_eq!(decode_all(&mut dec, &before).unwrap().0, before.len());
        assert_eq!(dec.in_progress().collect::<Vec<_>>(), [2]);
        let media = [&[0x06][..], &t24(0), &t24(500), &[9], &le32(1), &fill(300, 7), &[0xC6], &fill(200, 8)].concat();
        let input = [&[0xC2][..], &[0x01, 0x2C], &media].concat();
        let mut relay = Relay::new(dec, Encoder::new(), StreamIdMap::IDENTITY);
        let (f, out) = relay_once(&mut relay, &input);
        assert_eq!(f, Forward::Copied { consumed: input.len() });
        let expect = [
            set_chunk_size_msg(0x02, 2),
            // Re-sent whole at chunk size 2; cid 2's state allows fmt 3.
            vec![0xC2, 0x00, 0x00, 0xC2, 0x01, 0x2C],
            media.clone(),
        ]
        .concat();
        assert_eq!(out, expect);
        assert_eq!(relay.upstream_chunk_size(), 300);
        assert_eq!(relay.messages(), 1);
        // And from now on nothing is copied.
        let (f, out) = relay_once(&mut relay, &[&[0xC6][..], &fill(300, 1), &[0xC6], &fill(200, 2)].concat());
        assert_eq!(f, Forward::InPlace { consumed: 502 });
        assert_eq!(out.len(), 502);
    }

    #[test]
    fn relay_resends_a_dropped_abort() {
        let before =
            [set_chunk_size_msg(0x02, 2), [&[0x02][..], &t24(0), &t24(4), &[2], &le32(0), &[0, 0]].concat()].concat();
        let mut dec = Decoder::new(Limits::default());
        decode_all(&mut dec, &before).unwrap();
        let started = [&[0x06][..], &t24(0), &t24(10), &[9], &le32(1), &[1, 1]].concat();
        let abort_end = [0xC2, 0, 6];
        let mut again = Vec::new();
        for b in 0..5 {
            again.extend([0xC6, b, b]);
        }
        let input = [&started[..], &abort_end, &again].concat();
        let mut relay = Relay::new(dec, Encoder::new(), StreamIdMap::IDENTITY);
        let (f, out) = relay_once(&mut relay, &input);
        assert_eq!(f, Forward::Copied { consumed: input.len() });
        let expect = [
            set_chunk_size_msg(0x02, 2),
            started.clone(),
            // Abort(6) re-sent whole: fmt 1 (type changed), two chunks.
            [&[0x42][..], &t24(0), &t24(4), &[2], &[0, 0], &[0xC2, 0, 6]].concat(),
            again.clone(),
        ]
        .concat();
        assert_eq!(out, expect);
        let (msgs, cs) = assemble(&out, &mut Rng::new(1));
        assert_eq!(cs, 2);
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[1], (2, mh(0, 4, TYPE_ABORT, 0), be32(6).to_vec()));
        assert_eq!(msgs[2], (6, mh(0, 10, 9, 1), vec![0, 0, 1, 1, 2, 2, 3, 3, 4, 4]));
    }

    #[test]
    fn relay_reencodes_and_adds_extended_timestamps() {
        let prefix = [&[0x06][..], &t24(10), &t24(200), &[9], &le32(1), &fill(128, 0), &[0xC6], &fill(72, 0)].concat();
        let mut asm = Assembler::new(Limits::default());
        assert_eq!(asm.read(&prefix).unwrap().0, prefix.len());
        let mut relay = Relay::new(asm.into_decoder(), Encoder::new(), StreamIdMap::IDENTITY);

        // fmt 1 with an extended delta; the downstream knows nothing of cid 6.
        let ext = be32(0x0100_0000);
        let m1 =
            [&[0x46][..], &t24(0xFF_FFFF), &t24(200), &[9], &ext, &fill(128, 2), &[0xC6], &ext, &fill(72, 3)].concat();
        let (f, out) = relay_once(&mut relay, &m1);
        assert_eq!(f, Forward::Copied { consumed: m1.len() });
        let ts = be32(0x0100_000A);
        let expect =
            [&[0x06][..], &t24(0xFF_FFFF), &t24(200), &[9], &le32(1), &ts, &fill(128, 2), &[0xC6], &ts, &fill(72, 3)]
                .concat();
        assert_eq!(out, expect);

        // fmt 3 new message: upstream delta 0x1000000, downstream delta differs.
        let m2 = [&[0xC6][..], &ext, &fill(128, 4), &[0xC6], &ext, &fill(72, 5)].concat();
        let (f, out) = relay_once(&mut relay, &m2);
        assert_eq!(f, Forward::Copied { consumed: m2.len() });
        let ts = be32(0x0200_000A);
        let expect =
            [&[0x06][..], &t24(0xFF_FFFF), &t24(200), &[9], &le32(1), &ts, &fill(128, 4), &[0xC6], &ts, &fill(72, 5)]
                .concat();
        assert_eq!(out, expect);

        // fmt 2 depends only on fields both sides agree on: verbatim.
        let m3 = [&[0x86][..], &t24(5), &fill(128, 6), &[0xC6], &fill(72, 7)].concat();
        let (f, out) = relay_once(&mut relay, &m3);
        assert_eq!(f, Forward::InPlace { consumed: m3.len() });
        assert_eq!(out, m3);
        assert_eq!(relay.messages(), 3);
    }

    #[test]
    fn relay_reencodes_and_removes_extended_timestamps() {
        let ext = be32(0x0100_0000);
        let prefix =
            [&[0x06][..], &t24(0xFF_FFFF), &t24(200), &[9], &le32(1), &ext, &fill(128, 0), &[0xC6], &ext, &fill(72, 0)]
                .concat();
        let mut asm = Assembler::new(Limits::default());
        assert_eq!(asm.read(&prefix).unwrap().0, prefix.len());
        let mut down = Encoder::new();
        down.write_message(6, &mh(0x01FF_FFF0, 0, 9, 1), &[0; 200], &mut Vec::new());
        let mut relay = Relay::new(asm.into_decoder(), down, StreamIdMap::IDENTITY);
        // Upstream: fmt 3 new message (timestamp 0x2000000), carrying ext.
        let m = [&[0xC6][..], &ext, &fill(128, 1), &[0xC6], &ext, &fill(72, 2)].concat();
        let (f, out) = relay_once(&mut relay, &m);
        assert_eq!(f, Forward::Copied { consumed: m.len() });
        let expect = [&[0x86][..], &t24(0x10), &fill(128, 1), &[0xC6], &fill(72, 2)].concat();
        assert_eq!(out, expect);
    }

    #[test]
    fn relay_rewrites_stream_id_in_place() {
        let mut relay = Relay::new(Decoder::new(Limits::default()), Encoder::new(), StreamIdMap { from: 1, to: 5 });
        let input = [
            &[0x04][..],
            &t24(0),
            &t24(2),
            &[9],
            &le32(1),
            &[1, 2],
            &[0x44],
            &t24(40),
            &t24(3),
            &[9],
            &[3, 4, 5],
            &[0x05],
            &t24(0),
            &t24(1),
            &[8],
            &le32(7),
            &[6],
        ]
        .concat();
        let (f, out) = relay_once(&mut relay, &input);
        assert_eq!(f, Forward::InPlace { consumed: input.len() });
        let mut expect = input.clone();
        expect[8..12].copy_from_slice(&le32(5));
        assert_eq!(out, expect);
        let (msgs, _) = assemble(&out, &mut Rng::new(3));
        assert_eq!(msgs[1].1, mh(40, 3, 9, 5));
        assert_eq!(msgs[2].1, mh(0, 1, 8, 7));
    }

    #[test]
    fn relay_reencodes_fresh_cid2_fmt1_as_fmt0() {
        let mut relay = Relay::new(Decoder::new(Limits::default()), Encoder::new(), StreamIdMap::IDENTITY);
        let input = [&[0x42][..], &t24(7), &t24(6), &[4], &[0, 3, 0, 0, 0, 1]].concat();
        let (f, out) = relay_once(&mut relay, &input);
        assert_eq!(f, Forward::Copied { consumed: input.len() });
        assert_eq!(out, [&[0x02][..], &t24(7), &t24(6), &[4], &le32(0), &[0, 3, 0, 0, 0, 1]].concat());
    }

    #[test]
    fn relay_leaves_an_incomplete_header() {
        let mut relay = Relay::new(Decoder::new(Limits::default()), Encoder::new(), StreamIdMap::IDENTITY);
        let msg = [&[0x04][..], &t24(0), &t24(2), &[9], &le32(1), &[1, 2]].concat();
        let mut buf = [&msg[..], &msg[..11]].concat();
        assert_eq!(relay.process(&mut buf), Ok(Forward::InPlace { consumed: msg.len() }));
        assert_eq!(relay.process(&mut []), Ok(Forward::InPlace { consumed: 0 }));
        let mut bad = [0xC9];
        assert_eq!(relay.process(&mut bad), Err(ChunkError::FirstChunkNotFmt0 { cid: 9 }));
    }

    /// The upstream read `prefix` (command phase), the downstream was sent
    /// `down` (cid, header, 1-byte payload); then `input` is relayed.
    fn relay_after(prefix: &[u8], down: &[(u32, MessageHeader)], input: &[u8]) -> (Forward, Vec<u8>) {
        let mut dec = Decoder::new(Limits::default());
        assert_eq!(decode_all(&mut dec, prefix).unwrap().0, prefix.len());
        let mut enc = Encoder::new();
        for (cid, m) in down {
            enc.write_message(*cid, m, &[0], &mut Vec::new());
        }
        let mut relay = Relay::new(dec, enc, StreamIdMap::IDENTITY);
        relay_once(&mut relay, input)
    }

    macro_rules! reencode {
        ($($name:ident: $prefix:expr, $down:expr, $input:expr => $out:expr;)*) => {$(
            #[test]
            fn $name() {
                let prefix: Vec<u8> = $prefix.concat();
                let input: Vec<u8> = $input.concat();
                let (f, out) = relay_after(&prefix, &$down, &input);
                let expect: Vec<u8> = $out.concat();
                let copied = Forward::Copied { consumed: input.len() };
                let in_place = Forward::InPlace { consumed: input.len() };
                assert_eq!(f, if expect == input { in_place } else { copied });
                assert_eq!(out, expect);
            }
        )*};
    }

    reencode! {
        relay_fmt1_passes_when_timestamp_and_stream_agree:
            [&[0x03][..], &t24(0), &t24(1), &[8], &le32(1), &[0]],
            [(3, mh(0, 1, 9, 1))],
            [&[0x43][..], &t24(10), &t24(1), &[8], &[7]]
            => [&[0x43][..], &t24(10), &t24(1), &[8], &[7]];
        relay_fmt1_reencoded_when_stream_differs:
            [&[0x03][..], &t24(0), &t24(1), &[8], &le32(1), &[0]],
            [(3, mh(0, 1, 8, 2))],
            [&[0x43][..], &t24(10), &t24(1), &[8], &[7]]
            => [&[0x03][..], &t24(10), &t24(1), &[8], &le32(1), &[7]];
        relay_fmt1_reencoded_when_timestamp_differs:
            [&[0x03][..], &t24(0), &t24(1), &[8], &le32(1), &[0]],
            [(3, mh(4, 1, 8, 1))],
            [&[0x43][..], &t24(10), &t24(1), &[8], &[7]]
            => [&[0x83][..], &t24(6), &[7]];
        relay_fmt2_reencoded_when_type_differs:
            [&[0x03][..], &t24(0), &t24(1), &[8], &le32(1), &[0]],
            [(3, mh(0, 1, 9, 1))],
            [&[0x83][..], &t24(10), &[7]]
            => [&[0x43][..], &t24(10), &t24(1), &[8], &[7]];
        relay_fmt3_reencoded_when_delta_differs:
            [&[0x03][..], &t24(0), &t24(1), &[8], &le32(1), &[0], &[0x83], &t24(10), &[0]],
            [(3, mh(6, 1, 8, 1)), (3, mh(10, 1, 8, 1))],
            [&[0xC3][..], &[7]]
            => [&[0x83][..], &t24(10), &[7]];
        relay_fmt3_reencoded_when_only_the_extended_flag_differs:
            // Upstream: field 0xFFFFFF with the small value 5 (delta 5, ext);
            // downstream: plain timestamp 5 (delta 5, no ext).
            [&[0x03][..], &t24(0xFF_FFFF), &t24(1), &[8], &le32(1), &be32(5), &[0]],
            [(3, mh(5, 1, 8, 1))],
            [&[0xC3][..], &be32(5), &[7]]
            => [&[0xC3][..], &[7]];
    }

    #[test]
    fn encoder_avoids_fmt3_after_an_extended_header() {
        let mut enc = Encoder::new();
        let weird = Hdr { ts: 5, delta: 5, len: 1, sid: 1, type_id: 8, ext: true };
        enc.set_state(3, weird);
        let mut out = Vec::new();
        enc.write_message(3, &mh(10, 0, 8, 1), &[7], &mut out);
        assert_eq!(out, [&[0x83][..], &t24(5), &[7]].concat());
    }

    #[test]
    fn relay_follows_chunk_size_changes_it_forwards() {
        // Chunk size 3; an Abort(9) on cid 2 is half read when the relay starts.
        let before =
            [set_chunk_size_msg(0x02, 3), [&[0x02][..], &t24(0), &t24(4), &[2], &le32(0), &[0, 0, 0]].concat()]
                .concat();
        let mut dec = Decoder::new(Limits::default());
        decode_all(&mut dec, &before).unwrap();
        let mut relay = Relay::new(dec, Encoder::new(), StreamIdMap::IDENTITY);
        // SetChunkSize(1) on cid 4 passes; then the Abort ends.
        let set = [&[0x04][..], &t24(0), &t24(4), &[1], &le32(0), &[0, 0, 0], &[0xC4], &[1]].concat();
        let input = [&set[..], &[0xC2, 9]].concat();
        let (f, out) = relay_once(&mut relay, &input);
        assert_eq!(f, Forward::Copied { consumed: input.len() });
        let expect = [
            set_chunk_size_msg(0x02, 3),
            set.clone(),
            // Abort(9) re-sent at the new chunk size 1.
            [&[0x42][..], &t24(0), &t24(4), &[2], &[0], &[0xC2, 0], &[0xC2, 0], &[0xC2, 9]].concat(),
        ]
        .concat();
        assert_eq!(out, expect);
        let (msgs, cs) = assemble(&out, &mut Rng::new(5));
        assert_eq!(cs, 1);
        assert_eq!(msgs[2], (2, mh(0, 4, TYPE_ABORT, 0), be32(9).to_vec()));
    }

    // ---- when the relay may be bypassed (spliced) --------------------------

    /// A relay whose upstream decoder first read `up_pre` (the command
    /// phase) and whose downstream peer was sent `down_pre` (whole messages
    /// on `(cid, header)`), then fed `feed` in the given pieces. Returns
    /// what `can_splice` says after `new` and after each piece.
    struct Splice {
        up_pre: Vec<u8>,
        down_pre: Vec<(u32, MessageHeader)>,
        down_chunk_size: Option<u32>,
        map: StreamIdMap,
        feed: Vec<Vec<u8>>,
    }

    impl Splice {
        /// Both ends start in step on chunk stream 2 (the command phase's
        /// last control message there was the same).
        fn new() -> Splice {
            Splice {
                up_pre: msg0(2, mh(0, 4, TYPE_WINDOW_ACK_SIZE, 0)),
                down_pre: vec![(2, mh(0, 4, TYPE_WINDOW_ACK_SIZE, 0))],
                down_chunk_size: None,
                map: StreamIdMap::IDENTITY,
                feed: Vec::new(),
            }
        }

        fn run(self) -> Vec<bool> {
            let mut dec = Decoder::new(Limits::default());
            let (used, _) = decode_all(&mut dec, &self.up_pre).expect("valid prefix");
            assert_eq!(used, self.up_pre.len());
            let mut down = Encoder::new();
            for (cid, m) in &self.down_pre {
                down.write_message(*cid, m, &vec![0; m.length as usize], &mut Vec::new());
            }
            if let Some(n) = self.down_chunk_size {
                down.write_message(2, &mh(0, 4, TYPE_SET_CHUNK_SIZE, 0), &be32(n), &mut Vec::new());
                down.set_chunk_size(n);
            }
            let mut relay = Relay::new(dec, down, self.map);
            let mut said = vec![relay.can_splice()];
            let mut carry = Vec::new();
            for piece in self.feed {
                carry.extend_from_slice(&piece);
                let consumed = match relay.process(&mut carry).expect("valid feed") {
                    Forward::InPlace { consumed } | Forward::Copied { consumed } => consumed,
                };
                carry.drain(..consumed);
                said.push(carry.is_empty() && relay.can_splice());
            }
            said
        }
    }

    /// A whole message as an Encoder with no state writes it (fmt 0).
    fn msg0(cid: u32, m: MessageHeader) -> Vec<u8> {
        let mut out = Vec::new();
        Encoder::new().write_message(cid, &m, &vec![7; m.length as usize], &mut out);
        out
    }

    #[test]
    fn splice_fresh_relay_with_equal_ids_may_splice_at_once() {
        assert_eq!(Splice::new().run(), [true]);
    }

    #[test]
    fn splice_never_when_stream_ids_differ() {
        let mut sc = Splice::new();
        sc.map = StreamIdMap { from: 1, to: 5 };
        sc.feed = vec![msg0(6, mh(0, 10, 9, 1)), msg0(6, mh(0, 10, 9, 0))];
        assert_eq!(sc.run(), [false, false, false]);
    }

    #[test]
    fn splice_not_before_the_relays_own_set_chunk_size_is_out() {
        // Upstream switched to 4096, downstream still at 128: `new` writes a
        // SetChunkSize that the first `process` returns.
        let mut sc = Splice::new();
        sc.up_pre = msg0(2, mh(0, 4, TYPE_SET_CHUNK_SIZE, 0))[..12].iter().copied().chain(be32(4096)).collect();
        sc.down_pre = vec![(2, mh(0, 4, TYPE_SET_CHUNK_SIZE, 0))];
        sc.feed = vec![Vec::new()];
        assert_eq!(sc.run(), [false, true]);
    }

    #[test]
    fn splice_not_while_chunk_sizes_differ_in_the_tracked_state() {
        // Downstream at 4096, upstream at 128: after `new` the relay's
        // SetChunkSize brings them level.
        let mut sc = Splice::new();
        sc.down_chunk_size = Some(4096);
        // Its SetChunkSize went out on cid 2, which the sender has not used:
        // in step once the sender's own fmt 0 there resets it.
        sc.feed = vec![Vec::new(), msg0(6, mh(0, 10, 9, 1)), msg0(2, mh(0, 4, TYPE_ACK, 0))];
        assert_eq!(sc.run(), [false, false, false, true]);
    }

    #[test]
    fn splice_not_inside_a_chunk_or_a_message() {
        // A 300-byte message at chunk size 128: header + 100 bytes (inside
        // the first chunk), + 28 (chunk boundary, message in progress), the
        // rest (message done).
        let whole = msg0(6, mh(0, 300, 9, 1));
        let mut sc = Splice::new();
        sc.feed = vec![whole[..112].to_vec(), whole[112..140].to_vec(), whole[140..].to_vec()];
        assert_eq!(sc.run(), [true, false, false, true]);
    }

    #[test]
    fn splice_not_while_a_message_from_before_the_relay_is_dropped() {
        let whole = msg0(6, mh(0, 300, 9, 1));
        let mut sc = Splice::new();
        sc.up_pre.extend_from_slice(&whole[..140]);
        // The receiver never saw that message's header: cid 6 is out of
        // step until the sender's next fmt 0 there.
        sc.feed = vec![whole[140..].to_vec(), msg0(6, mh(40, 10, 9, 1))];
        assert_eq!(sc.run(), [false, false, true]);
    }

    #[test]
    fn splice_waits_for_a_fmt0_on_a_chunk_stream_whose_states_differ() {
        // The command phase left different headers on cid 3 on each side.
        let mut sc = Splice::new();
        sc.up_pre.extend(msg0(3, mh(0, 20, TYPE_COMMAND_AMF0, 0)));
        sc.down_pre.push((3, mh(0, 33, TYPE_COMMAND_AMF0, 0)));
        sc.feed = vec![msg0(6, mh(0, 10, 9, 1)), msg0(3, mh(5, 20, TYPE_COMMAND_AMF0, 1))];
        assert_eq!(sc.run(), [false, false, true]);
    }

    #[test]
    fn splice_after_a_reencoded_message_once_a_fmt1_agrees() {
        // cid 6: upstream at ts 100, downstream at ts 1000 with another
        // length. A fmt 1 (delta 40) is re-encoded, which leaves the delta
        // unequal; the next fmt 1 goes out verbatim and brings it in step.
        let mut sc = Splice::new();
        sc.up_pre.extend(msg0(6, mh(100, 10, 9, 1)));
        sc.down_pre.push((6, mh(1000, 11, 9, 1)));
        let fmt1 = |len: u32| [&[0x46][..], &t24(40), &t24(len), &[9], &fill(len as usize, 1)].concat();
        sc.feed = vec![fmt1(12), fmt1(13)];
        assert_eq!(sc.run(), [false, false, true]);
    }

    #[test]
    fn splice_waits_until_the_sender_used_cid2() {
        // librtmp may start cid 2 with fmt 1 against a zero state, which the
        // relay re-encodes: in step only once the sender has set cid 2 with
        // a header of its own, whether the receiver knows cid 2 or not.
        for down_pre in [vec![], vec![(2, mh(0, 4, TYPE_WINDOW_ACK_SIZE, 0))]] {
            let mut sc = Splice::new();
            sc.up_pre = Vec::new();
            sc.down_pre = down_pre;
            sc.feed = vec![msg0(6, mh(0, 10, 9, 1)), msg0(2, mh(0, 4, TYPE_ACK, 0))];
            assert_eq!(sc.run(), [false, false, true]);
        }
    }

    #[test]
    fn splice_ignores_chunk_streams_only_the_receiver_knows() {
        // The sender must start those with fmt 0, which resets them.
        let mut sc = Splice::new();
        sc.down_pre.extend([(3, mh(0, 33, TYPE_COMMAND_AMF0, 0)), (5, mh(9, 3, 18, 1))]);
        assert_eq!(sc.run(), [true]);
    }

    #[test]
    fn splice_stays_possible_across_set_chunk_size_and_abort() {
        let mut sc = Splice::new();
        let scs = [&msg0(2, mh(0, 4, TYPE_SET_CHUNK_SIZE, 0))[..12], &be32(100)].concat();
        let abort = [&msg0(2, mh(0, 4, TYPE_ABORT, 0))[..12], &be32(6)].concat();
        // The first chunk (100 bytes at the new size) of a 300-byte message.
        let part = [&[0x06][..], &t24(0), &t24(300), &[9], &le32(1), &fill(100, 3)].concat();
        sc.feed = vec![scs, part, abort, msg0(6, mh(0, 10, 9, 1))];
        assert_eq!(sc.run(), [true, true, false, true, true]);
    }

    #[test]
    fn resync_brings_in_step_what_a_no_op_can_and_leaves_the_rest() {
        // The sender's last headers: cid 2 a user control event, cid 3 a
        // command, cid 5 a data message; the receiver saw others there.
        let up_pre = [
            msg0(2, mh(0, 6, TYPE_USER_CONTROL, 0)),
            msg0(3, mh(0, 29, TYPE_COMMAND_AMF0, 0)),
            msg0(5, mh(0, 40, TYPE_DATA_AMF0, 1)),
        ]
        .concat();
        let mut dec = Decoder::new(Limits::default());
        decode_all(&mut dec, &up_pre).unwrap();
        let mut down = Encoder::new();
        for (cid, m) in [(2, mh(0, 4, TYPE_SET_CHUNK_SIZE, 0)), (3, mh(0, 148, TYPE_COMMAND_AMF0, 1))] {
            down.write_message(cid, &m, &vec![0; m.length as usize], &mut Vec::new());
        }
        let mut relay = Relay::new(dec, down, StreamIdMap::IDENTITY);
        assert_eq!(relay.out_of_step(), Some(OutOfStep::HeaderState { cid: 2 }));
        let mut shown = Vec::new();
        let n = relay.resync(|h, _| {
            shown.push((h.type_id, h.length));
            match h.type_id {
                TYPE_USER_CONTROL => Some(vec![0, 0, 0, 0, 0, 1]),
                TYPE_COMMAND_AMF0 => Some(vec![1; 28]), // one byte short: not written
                _ => None,
            }
        });
        assert_eq!(n, 1);
        assert_eq!(shown, [(TYPE_USER_CONTROL, 6), (TYPE_COMMAND_AMF0, 29), (TYPE_DATA_AMF0, 40)]);
        // The first process returns the resync message, whole and decodable.
        let (f, out) = relay_once(&mut relay, &[]);
        assert_eq!(f, Forward::Copied { consumed: 0 });
        let (msgs, _) = assemble(&out, &mut Rng::new(1));
        assert_eq!(msgs, [(2, mh(0, 6, TYPE_USER_CONTROL, 0), vec![0, 0, 0, 0, 0, 1])]);
        // cid 2 is in step now; cid 3 is not.
        assert_eq!(relay.out_of_step(), Some(OutOfStep::HeaderState { cid: 3 }));
    }
}
