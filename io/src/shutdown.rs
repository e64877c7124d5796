//! Process-wide shutdown flag, set from the signal thread, observed by every
//! executor. Executors poll it on a coarse timer: a signal is rare and a few
//! hundred milliseconds of latency to stop accepting is fine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

const POLL: Duration = Duration::from_millis(100);

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_triggered(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    /// Resolves once shutdown was triggered. Call from inside an executor.
    pub async fn wait(&self) {
        while !self.is_triggered() {
            glommio::timer::sleep(POLL).await;
        }
    }
}
