//! SRT as far as a proxy needs it, sans-IO: the packet header
//! ([`packet`]), the handshake and its extensions ([`handshake`]), the
//! stream id's access-control syntax ([`streamid`]) and the listener's SYN
//! cookie ([`cookie`]). Views borrow the caller's datagram, writers fill the
//! caller's buffer: nothing here allocates per packet. The proxy never
//! decrypts or reorders anything; it reads the handshake to learn the
//! stream and rewrites socket ids.

pub mod cookie;
pub mod handshake;
pub mod packet;
pub mod streamid;

use std::fmt;

/// An SRT socket id as it travels in the header's destination field and in
/// the handshake's SRT socket id field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SrtSocketId(pub u32);

impl fmt::Display for SrtSocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(w) => u32::from_be_bytes([w[0], w[1], w[2], w[3]]),
        None => 0,
    }
}

pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    if let Some(w) = b.get_mut(at..at + 4) {
        w.copy_from_slice(&v.to_be_bytes());
    }
}
