//! Process-wide shutdown flag, set from the signal thread, observed by every
//! executor. Executors poll it on a coarse timer: a signal is rare and a few
//! hundred milliseconds of latency to stop accepting is fine.

use crate::signal::LocalSignal;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

const POLL: Duration = Duration::from_millis(200);

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
    /// Resolves once shutdown was triggered. Call from inside an executor;
    /// one task per executor should, and fire a [`LocalSignal`] for the
    /// rest (see [`Shutdown::watch`]).
    pub async fn wait(&self) {
        while !self.is_triggered() {
            glommio::timer::sleep(POLL).await;
        }
    }

    /// Spawns this executor's one watcher, which fires the returned signal
    /// when shutdown is triggered: everything else on the core waits on it.
    pub fn watch(&self) -> Rc<LocalSignal> {
        let sig = Rc::new(LocalSignal::new());
        let (me, s) = (self.clone(), sig.clone());
        glommio::spawn_local(async move {
            me.wait().await;
            s.fire();
        })
        .detach();
        sig
    }
}
