//! The runtime of srs-proxy: pinned glommio executors (one per core), their
//! listeners, the cross-core channel mesh, and the byte pumps that relay
//! between a client and an origin. Nothing here knows a media protocol.

pub mod idle;
pub mod mesh;
pub mod pump;
pub mod runtime;
pub mod shutdown;
pub mod signal;
pub mod splice;
#[cfg(test)]
mod testing;
pub mod udp;

pub use runtime::{start, CoreInfo, StartError};
pub use shutdown::Shutdown;

use std::future::Future;
use std::time::Duration;

/// Runs `fut` for at most `dur`; `None` when the time ran out.
pub async fn timeout<T>(dur: Duration, fut: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        glommio::timer::sleep(dur).await;
        None
    })
    .await
}
