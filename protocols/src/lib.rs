//! Sans-IO protocol code for srs-proxy.
//!
//! Everything here is a pure state machine: callers hand in bytes they read
//! and get back events and bytes to write. No sockets, no clocks, no random
//! sources (time and random bytes are injected), no async. Every parser
//! returns an error instead of panicking, whatever the input.
#![forbid(unsafe_code)]
// Bad input gets an error, never a panic: no unwrap, expect or panic outside
// tests (fuzzed too).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
#![warn(unreachable_pub)]

pub mod hls;
pub mod http;
pub mod percent;
pub mod rtmp;
pub mod sdp;
pub mod srt;
pub mod stream_url;
pub mod stun;
pub mod udp_demux;

/// Result of feeding bytes to an incremental parser, in httparse's style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// A whole item was parsed; `T` usually carries the bytes consumed.
    Complete(T),
    /// More bytes are needed; nothing was consumed.
    Partial,
}

impl<T> Status<T> {
    pub fn is_complete(&self) -> bool {
        matches!(self, Status::Complete(_))
    }
}
