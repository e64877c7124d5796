//! The 16-byte SRT packet header, common to data and control packets:
//! what a relay needs to route a datagram (its kind and destination socket
//! id) and to rewrite that id in place.

use super::{be32, put32, SrtSocketId};
use std::fmt;

pub const HEADER_LEN: usize = 16;

/// Control packet types (the 15 bits after the control flag).
pub mod ctrl {
    pub const HANDSHAKE: u16 = 0;
    pub const KEEPALIVE: u16 = 1;
    pub const ACK: u16 = 2;
    pub const NAK: u16 = 3;
    pub const CONGESTION_WARNING: u16 = 4;
    pub const SHUTDOWN: u16 = 5;
    pub const ACKACK: u16 = 6;
    pub const DROPREQ: u16 = 7;
    pub const PEERERROR: u16 = 8;
    pub const USER_DEFINED: u16 = 0x7fff;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Data,
    /// A control packet of this type ([`ctrl`]).
    Control(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub timestamp: u32,
    pub dst: SrtSocketId,
}

impl Header {
    pub fn is_handshake(&self) -> bool {
        self.kind == Kind::Control(ctrl::HANDSHAKE)
    }
    pub fn is_shutdown(&self) -> bool {
        self.kind == Kind::Control(ctrl::SHUTDOWN)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketError {
    /// Fewer than [`HEADER_LEN`] bytes.
    TooShort(usize),
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::TooShort(n) => write!(f, "{n}-byte datagram is shorter than an SRT header"),
        }
    }
}

/// Reads the header of one datagram.
pub fn parse(b: &[u8]) -> Result<Header, PacketError> {
    if b.len() < HEADER_LEN {
        return Err(PacketError::TooShort(b.len()));
    }
    let kind = if b[0] & 0x80 != 0 { Kind::Control(u16::from_be_bytes([b[0] & 0x7f, b[1]])) } else { Kind::Data };
    Ok(Header { kind, timestamp: be32(b, 8), dst: SrtSocketId(be32(b, 12)) })
}

/// Rewrites the destination socket id of a datagram in place (no-op on a
/// datagram too short to have one).
pub fn set_dst(b: &mut [u8], id: SrtSocketId) {
    put32(b, 12, id.0);
}

/// A shutdown control packet to `dst` (header and the 4 zero bytes libsrt
/// pads it with). `out` must hold 20 bytes; returns the length.
pub fn write_shutdown(out: &mut [u8; 20], timestamp: u32, dst: SrtSocketId) -> usize {
    *out = [0; 20];
    put32(out, 0, 0x8005_0000);
    put32(out, 8, timestamp);
    put32(out, 12, dst.0);
    20
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! hdr {
        ($($name:ident: $bytes:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let b: &[u8] = &$bytes;
                assert_eq!(parse(b), $want);
            }
        )*};
    }

    const fn h(kind: Kind, ts: u32, dst: u32) -> Result<Header, PacketError> {
        Ok(Header { kind, timestamp: ts, dst: SrtSocketId(dst) })
    }

    hdr! {
        empty: [] => Err(PacketError::TooShort(0));
        fifteen: [0x80; 15] => Err(PacketError::TooShort(15));
        data: [0, 0, 0, 1, 0xc0, 0, 0, 0, 0, 0, 0, 9, 0x12, 0x34, 0x56, 0x78, 0x47] => h(Kind::Data, 9, 0x1234_5678);
        handshake: [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0] => h(Kind::Control(ctrl::HANDSHAKE), 1, 0);
        keepalive: [0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7] => h(Kind::Control(ctrl::KEEPALIVE), 0, 7);
        shutdown: [0x80, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff] => h(Kind::Control(ctrl::SHUTDOWN), 0, u32::MAX);
        user_defined: [0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1] => h(Kind::Control(ctrl::USER_DEFINED), 0, 1);
    }

    #[test]
    fn shutdown_parses_back() {
        let mut b = [0xffu8; 20];
        let n = write_shutdown(&mut b, 5, SrtSocketId(9));
        let h = parse(&b[..n]).unwrap();
        assert!(h.is_shutdown());
        assert_eq!((h.timestamp, h.dst), (5, SrtSocketId(9)));
    }

    #[test]
    fn set_dst_rewrites_only_the_id() {
        let mut b = [0xaau8; 20];
        set_dst(&mut b, SrtSocketId(0x0102_0304));
        assert_eq!(&b[12..16], &[1, 2, 3, 4]);
        assert!(b[..12].iter().chain(&b[16..]).all(|&x| x == 0xaa));
        let mut short = [0u8; 10];
        set_dst(&mut short, SrtSocketId(1));
        assert_eq!(short, [0u8; 10]);
    }
}
