//! The SRT handshake (control type 0): a view over the 48-byte body after
//! the header, the HSv5 extension blocks after it, and the few writers a
//! listener in front of other listeners needs: the induction answer, a
//! rejection, and the caller's own induction toward the origin.
//!
//! Layout (offsets in the datagram): version @16, encryption field (u16)
//! @20, extension field (u16) @22, initial sequence number @24, MTU @28,
//! flow window @32, handshake type @36, SRT socket id @40, SYN cookie @44,
//! peer IP @48..64, extensions @64.. as `(type u16, length in 32-bit words
//! u16, body)`. The stream id extension's body is text stored as 32-bit
//! words in little-endian order: each 4 bytes reversed.

use super::{be32, put32, SrtSocketId};
use std::fmt;
use std::net::IpAddr;

/// Header and handshake body, without extensions.
pub const HS_LEN: usize = 64;
/// The HSv5 magic a listener puts in the extension field of its induction
/// answer.
pub const HSV5_MAGIC: u16 = 0x4A17;
/// The longest stream id SRT allows.
pub const MAX_SID_LEN: usize = 512;

/// Extension block types.
pub mod ext {
    pub const HSREQ: u16 = 1;
    pub const HSRSP: u16 = 2;
    pub const KMREQ: u16 = 3;
    pub const KMRSP: u16 = 4;
    pub const SID: u16 = 5;
    pub const CONGESTION: u16 = 6;
    pub const FILTER: u16 = 7;
    pub const GROUP: u16 = 8;
}

/// The handshake type field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HsType {
    Waveahand,
    Induction,
    Conclusion,
    Agreement,
    Done,
    /// 1000 + a rejection reason ([`Reject`]).
    Rejection(u32),
    Other(u32),
}

impl HsType {
    pub fn from_wire(v: u32) -> HsType {
        match v {
            0 => HsType::Waveahand,
            1 => HsType::Induction,
            0xFFFF_FFFF => HsType::Conclusion,
            0xFFFF_FFFE => HsType::Agreement,
            0xFFFF_FFFD => HsType::Done,
            1000..=0x7FFF_FFFF => HsType::Rejection(v),
            v => HsType::Other(v),
        }
    }
}

/// Why a listener refuses a caller, as the handshake type carries it (the
/// API value + 1000). `Srt` codes are libsrt's own (`SRT_REJ_*`), `Rejx`
/// the application codes adopted from HTTP (`SRT_REJX_*`, API value 1000 +
/// the HTTP status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// SRT_REJ_PEER: the peer (behind us) rejected.
    Peer,
    /// SRT_REJ_ROGUE: incorrect data in the handshake.
    Rogue,
    /// SRT_REJ_CLOSE: the listener is closing.
    Close,
    /// SRT_REJ_VERSION: the caller is older than HSv5.
    Version,
    /// SRT_REJ_TIMEOUT.
    Timeout,
    /// SRT_REJX_BAD_REQUEST: no usable stream id.
    BadRequest,
    /// SRT_REJX_BAD_MODE: `m=` is neither publish nor request.
    BadMode,
    /// SRT_REJX_GW: the origin could not be reached or did not answer.
    BadGateway,
    /// SRT_REJX_DOWN: no origin serves streams now.
    Unavailable,
    /// SRT_REJX_NOROOM: the proxy holds as many sessions as it may.
    NoRoom,
}

impl Reject {
    /// The handshake type value on the wire.
    pub fn wire(self) -> u32 {
        1000 + match self {
            Reject::Peer => 2,
            Reject::Rogue => 4,
            Reject::Close => 7,
            Reject::Version => 8,
            Reject::Timeout => 16,
            Reject::BadRequest => 1400,
            Reject::BadMode => 1405,
            Reject::BadGateway => 1502,
            Reject::Unavailable => 1503,
            Reject::NoRoom => 1507,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HsError {
    /// Not a control packet of type 0 with a zero subtype.
    NotHandshake,
    /// Fewer than [`HS_LEN`] bytes.
    TooShort(usize),
    /// An extension block runs past the datagram (offset of the block).
    ExtensionOverrun(usize),
    /// Bytes after the last extension block that make no block.
    TrailingBytes(usize),
    /// The stream id is longer than [`MAX_SID_LEN`].
    StreamIdTooLong(usize),
    /// The stream id is not UTF-8.
    StreamIdNotText,
    /// More than one stream id extension.
    DuplicateStreamId,
}

impl fmt::Display for HsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HsError::NotHandshake => f.write_str("not an SRT handshake"),
            HsError::TooShort(n) => write!(f, "{n}-byte handshake is shorter than {HS_LEN}"),
            HsError::ExtensionOverrun(at) => write!(f, "extension block at {at} runs past the datagram"),
            HsError::TrailingBytes(n) => write!(f, "{n} bytes after the last extension block"),
            HsError::StreamIdTooLong(n) => write!(f, "{n}-byte stream id is over {MAX_SID_LEN}"),
            HsError::StreamIdNotText => f.write_str("stream id is not UTF-8"),
            HsError::DuplicateStreamId => f.write_str("two stream id extensions"),
        }
    }
}

/// One extension block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    pub kind: u16,
    pub body: &'a [u8],
}

/// A checked handshake datagram. Extensions are walked once by
/// [`Handshake::parse`], so iterating them later cannot fail.
#[derive(Debug, Clone, Copy)]
pub struct Handshake<'a> {
    b: &'a [u8],
}

/// Whether a datagram is a handshake: control type 0, subtype 0 (SRS's test).
pub fn is_handshake(b: &[u8]) -> bool {
    be32(b, 0) == 0x8000_0000 && b.len() >= 4
}

impl<'a> Handshake<'a> {
    pub fn parse(b: &'a [u8]) -> Result<Handshake<'a>, HsError> {
        if b.len() < 4 || !is_handshake(b) {
            return Err(HsError::NotHandshake);
        }
        if b.len() < HS_LEN {
            return Err(HsError::TooShort(b.len()));
        }
        let hs = Handshake { b };
        if hs.has_extensions() {
            let mut at = HS_LEN;
            let mut sids = 0;
            while at < b.len() {
                if b.len() - at < 4 {
                    return Err(HsError::TrailingBytes(b.len() - at));
                }
                let kind = u16::from_be_bytes([b[at], b[at + 1]]);
                let words = usize::from(u16::from_be_bytes([b[at + 2], b[at + 3]]));
                let end = at + 4 + words * 4;
                if end > b.len() {
                    return Err(HsError::ExtensionOverrun(at));
                }
                if kind == ext::SID {
                    sids += 1;
                    if sids > 1 {
                        return Err(HsError::DuplicateStreamId);
                    }
                    if words * 4 > MAX_SID_LEN {
                        return Err(HsError::StreamIdTooLong(words * 4));
                    }
                }
                at = end;
            }
        }
        Ok(hs)
    }

    /// The whole datagram.
    pub fn bytes(&self) -> &'a [u8] {
        self.b
    }
    pub fn timestamp(&self) -> u32 {
        be32(self.b, 8)
    }
    pub fn dst(&self) -> SrtSocketId {
        SrtSocketId(be32(self.b, 12))
    }
    pub fn version(&self) -> u32 {
        be32(self.b, 16)
    }
    pub fn encryption(&self) -> u16 {
        u16::from_be_bytes([self.b[20], self.b[21]])
    }
    pub fn extension_field(&self) -> u16 {
        u16::from_be_bytes([self.b[22], self.b[23]])
    }
    pub fn isn(&self) -> u32 {
        be32(self.b, 24)
    }
    pub fn mtu(&self) -> u32 {
        be32(self.b, 28)
    }
    pub fn flow_window(&self) -> u32 {
        be32(self.b, 32)
    }
    pub fn hs_type(&self) -> HsType {
        HsType::from_wire(be32(self.b, 36))
    }
    pub fn socket_id(&self) -> SrtSocketId {
        SrtSocketId(be32(self.b, 40))
    }
    pub fn cookie(&self) -> u32 {
        be32(self.b, 44)
    }
    pub fn peer_ip(&self) -> &'a [u8] {
        &self.b[48..64]
    }

    /// HSv5 carries extension blocks after the body; HSv4 bytes there (if
    /// any) are not read.
    fn has_extensions(&self) -> bool {
        self.version() >= 5 && self.b.len() > HS_LEN
    }

    /// The extension blocks, in order.
    pub fn extensions(&self) -> Extensions<'a> {
        let rest = if self.has_extensions() { &self.b[HS_LEN..] } else { &[] };
        Extensions { rest }
    }

    /// The stream id, decoded into `out` (words byte-swapped, trailing NULs
    /// trimmed): `Ok(None)` when there is none.
    pub fn stream_id<'o>(&self, out: &'o mut [u8; MAX_SID_LEN]) -> Result<Option<&'o str>, HsError> {
        let Some(e) = self.extensions().find(|e| e.kind == ext::SID) else { return Ok(None) };
        let n = e.body.len();
        if n > MAX_SID_LEN {
            return Err(HsError::StreamIdTooLong(n));
        }
        for (dst, src) in out[..n].chunks_exact_mut(4).zip(e.body.chunks_exact(4)) {
            dst.copy_from_slice(&[src[3], src[2], src[1], src[0]]);
        }
        let mut len = n;
        while len > 0 && out[len - 1] == 0 {
            len -= 1;
        }
        std::str::from_utf8(&out[..len]).map(Some).map_err(|_| HsError::StreamIdNotText)
    }
}

pub struct Extensions<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Extensions<'a> {
    type Item = Extension<'a>;
    fn next(&mut self) -> Option<Extension<'a>> {
        let r = self.rest;
        if r.len() < 4 {
            return None;
        }
        let kind = u16::from_be_bytes([r[0], r[1]]);
        let end = 4 + usize::from(u16::from_be_bytes([r[2], r[3]])) * 4;
        let body = r.get(4..end)?;
        self.rest = &r[end..];
        Some(Extension { kind, body })
    }
}

/// The peer IP field as libsrt writes it: 32-bit words in host (little-
/// endian) order, so IPv4 127.0.0.1 is `01 00 00 7f`.
pub fn peer_ip_field(ip: IpAddr) -> [u8; 16] {
    let mut f = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            f[..4].copy_from_slice(&[o[3], o[2], o[1], o[0]]);
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            for (d, s) in f.chunks_exact_mut(4).zip(o.chunks_exact(4)) {
                d.copy_from_slice(&[s[3], s[2], s[1], s[0]]);
            }
        }
    }
    f
}

fn head(out: &mut [u8], timestamp: u32, dst: SrtSocketId) {
    put32(out, 0, 0x8000_0000);
    put32(out, 4, 0);
    put32(out, 8, timestamp);
    put32(out, 12, dst.0);
}

/// The listener's answer to an induction (as libsrt answers): HSv5 magic,
/// the caller's ISN, MTU, flow window and socket id echoed, `cookie`, and
/// the caller's address as seen. Writes [`HS_LEN`] bytes into `out`, which
/// must hold them; returns the length.
pub fn write_induction_response(
    req: &Handshake<'_>,
    cookie: u32,
    timestamp: u32,
    peer: IpAddr,
    out: &mut [u8; HS_LEN],
) -> usize {
    head(out, timestamp, req.socket_id());
    put32(out, 16, 5);
    out[20..22].copy_from_slice(&0u16.to_be_bytes());
    out[22..24].copy_from_slice(&HSV5_MAGIC.to_be_bytes());
    put32(out, 24, req.isn());
    put32(out, 28, req.mtu());
    put32(out, 32, req.flow_window());
    put32(out, 36, 1);
    put32(out, 40, req.socket_id().0);
    put32(out, 44, cookie);
    out[48..64].copy_from_slice(&peer_ip_field(peer));
    HS_LEN
}

/// A rejection of `req` (as libsrt's listener writes one: the request's
/// body with the reason as handshake type, no extensions).
pub fn write_rejection(req: &Handshake<'_>, reason: Reject, timestamp: u32, out: &mut [u8; HS_LEN]) -> usize {
    out.copy_from_slice(&req.bytes()[..HS_LEN]);
    head(out, timestamp, req.socket_id());
    put32(out, 16, 5);
    put32(out, 36, reason.wire());
    put32(out, 40, 0);
    HS_LEN
}

/// The induction a caller sends before `conclusion` (HSv4 form, cookie 0,
/// the same socket id, ISN, MTU and flow window), addressed to `peer`.
pub fn write_induction_request(
    conclusion: &Handshake<'_>,
    timestamp: u32,
    peer: IpAddr,
    out: &mut [u8; HS_LEN],
) -> usize {
    head(out, timestamp, SrtSocketId(0));
    put32(out, 16, 4);
    out[20..22].copy_from_slice(&0u16.to_be_bytes());
    out[22..24].copy_from_slice(&2u16.to_be_bytes());
    put32(out, 24, conclusion.isn());
    put32(out, 28, conclusion.mtu());
    put32(out, 32, conclusion.flow_window());
    put32(out, 36, 1);
    put32(out, 40, conclusion.socket_id().0);
    put32(out, 44, 0);
    out[48..64].copy_from_slice(&peer_ip_field(peer));
    HS_LEN
}

/// Rewrites the SYN cookie of a handshake datagram in place.
pub fn set_cookie(b: &mut [u8], cookie: u32) {
    put32(b, 44, cookie);
}

/// Rewrites the SRT socket id field of a handshake datagram in place.
pub fn set_socket_id(b: &mut [u8], id: SrtSocketId) {
    put32(b, 40, id.0);
}

#[cfg(test)]
mod tests;
