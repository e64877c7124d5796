//! Load balancing for srs-proxy: the origin registry, endpoint parsing, the
//! register body, the memory balancer's per-core state, and the Redis
//! balancer's schema, scripts and decisions ([`redis`]).
//!
//! Nothing here does IO or reads a clock: time (`now`) and randomness
//! (`fastrand::Rng`) are passed in, so a seed replays a run. The async
//! wiring (cross-core broadcast, timers, Redis) lives elsewhere and
//! implements [`LoadBalancer`].
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

use std::fmt;

use srs_protocols::stream_url::StreamUrl;

pub mod hls;
pub mod memory;
pub mod origin;
pub mod redis;
pub mod register;

pub use hls::{HlsError, HlsSession, HlsSessions, HLS_SESSION_TTL};
pub use memory::{MemoryConfig, MemoryState, PickOutcome, UpdateOutcome, ORIGIN_HOLD_DOWN};
pub use origin::{default_backend, parse_endpoint, Endpoint, EndpointError, Origin, OriginId, Service};
pub use register::{RegisterError, RegisterRequest};

/// Why a balancer could not register an origin or pick one.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LbError {
    /// No live origin to serve the stream.
    NoOrigin { stream: String },
    /// The registry holds `limit` live origins.
    TooManyOrigins { limit: usize },
    /// This core holds `limit` pins to live origins.
    TooManyPins { limit: usize },
    /// The shared store (Redis) failed or returned something unreadable.
    Backend { reason: String },
}

impl fmt::Display for LbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LbError::NoOrigin { stream } => write!(f, "no origin available for {stream}"),
            LbError::TooManyOrigins { limit } => {
                write!(f, "too many origins: {limit} live origins registered")
            }
            LbError::TooManyPins { limit } => {
                write!(f, "too many streams: {limit} stream pins held")
            }
            LbError::Backend { reason } => write!(f, "load balancer backend: {reason}"),
        }
    }
}

impl std::error::Error for LbError {}

/// The balancer interface the memory (mesh) and Redis balancers implement.
/// The outcomes are what the proxy logs (a new origin, a re-pin).
#[allow(async_fn_in_trait)]
pub trait LoadBalancer {
    /// A register or heartbeat.
    async fn update(&self, origin: Origin) -> Result<UpdateOutcome, LbError>;
    /// The origin serving a stream (sticky), and how it was chosen.
    async fn pick(&self, key: &StreamUrl) -> Result<(Origin, PickOutcome), LbError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages() {
        let cases = [
            (
                LbError::NoOrigin { stream: "__defaultVhost__/live/s".into() },
                "no origin available for __defaultVhost__/live/s",
            ),
            (LbError::TooManyOrigins { limit: 3 }, "too many origins: 3 live origins registered"),
            (LbError::TooManyPins { limit: 9 }, "too many streams: 9 stream pins held"),
            (LbError::Backend { reason: "redis: timeout".into() }, "load balancer backend: redis: timeout"),
        ];
        for (e, msg) in cases {
            assert_eq!(e.to_string(), msg);
        }
    }
}
