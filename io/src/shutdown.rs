//! Process-wide shutdown, triggered from the signal thread and seen by every
//! executor at once. Each waiting executor holds one end of a socket pair
//! whose other end the trigger closes: an executor that waits sleeps with
//! no timer (a polled flag woke every core five times a second, idle or not).

use crate::signal::LocalSignal;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Clone, Default)]
pub struct Shutdown(Arc<Inner>);

#[derive(Default)]
struct Inner {
    triggered: AtomicBool,
    /// The far ends of the waiters' socket pairs; closing them wakes each.
    waiters: Mutex<Vec<UnixStream>>,
}

/// Only if a socket pair cannot be had (descriptors exhausted at start).
const FALLBACK_POLL: Duration = Duration::from_millis(200);

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn trigger(&self) {
        self.0.triggered.store(true, Ordering::SeqCst);
        drop(std::mem::take(&mut *self.waiters()));
    }

    pub fn is_triggered(&self) -> bool {
        self.0.triggered.load(Ordering::SeqCst)
    }

    /// A poisoned lock only means a panic elsewhere; the list is still whole.
    fn waiters(&self) -> MutexGuard<'_, Vec<UnixStream>> {
        self.0.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves once shutdown was triggered. Each wait holds a socket pair
    /// until then (a wait dropped early too), so only [`Shutdown::watch`]
    /// waits, once per executor, and the rest of the core waits on its
    /// [`LocalSignal`].
    async fn wait(&self) {
        match self.register() {
            Ok(None) => return,
            Ok(Some(near)) => {
                // SAFETY: `into_raw_fd` hands over sole ownership of an open socket.
                let mut near = unsafe { glommio::net::UnixStream::from_raw_fd(near.into_raw_fd()) };
                let mut byte = [0u8; 1];
                // Nobody writes: the read ends with EOF when the trigger
                // closes the far end (or with an error: it is gone too).
                while let Ok(1..) = futures_lite::AsyncReadExt::read(&mut near, &mut byte).await {}
            }
            Err(e) => {
                tracing::warn!(error = %e, "no socket pair for the shutdown watcher; polling the flag instead");
            }
        }
        // The flag decides: after the far end closed it is set already; the
        // poll runs only when no pair could be had.
        while !self.is_triggered() {
            glommio::timer::sleep(FALLBACK_POLL).await;
        }
    }

    /// The near end of a new pair whose far end the trigger will close, or
    /// None when shutdown was triggered already.
    fn register(&self) -> std::io::Result<Option<UnixStream>> {
        let (near, far) = UnixStream::pair()?;
        near.set_nonblocking(true)?;
        let mut waiters = self.waiters();
        // Checked under the lock: a trigger either took the list before
        // (and set the flag first) or will close `far`.
        if self.is_triggered() {
            return Ok(None);
        }
        waiters.push(far);
        Ok(Some(near))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Executors on their own threads wait; a trigger from a plain thread
    /// ends every wait (a wait that missed it would hang, and the receive
    /// below would time out), and a wait that starts after it ends at once.
    #[test]
    fn a_trigger_from_another_thread_ends_every_wait_and_later_waits_at_once() {
        let sd = Shutdown::new();
        let (tx, rx) = mpsc::channel();
        let mut joins = Vec::new();
        for i in 0..2 {
            let (sd, tx) = (sd.clone(), tx.clone());
            joins.push(
                glommio::LocalExecutorBuilder::default()
                    .spawn(move || async move {
                        let sig = sd.watch();
                        tx.send(("waiting", i)).unwrap();
                        sig.wait().await;
                        assert!(sd.is_triggered());
                        tx.send(("ended", i)).unwrap();
                    })
                    .unwrap(),
            );
        }
        let mut waiting = 0;
        while waiting < 2 {
            let (what, _) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(what, "waiting");
            waiting += 1;
        }
        // Both watchers hold a pair before the trigger (a watcher that came
        // after it would end without the close this test is about).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sd.waiters().len() < 2 {
            assert!(std::time::Instant::now() < deadline, "the watchers never registered");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!sd.is_triggered());
        sd.trigger();
        let mut ended = [false; 2];
        for _ in 0..2 {
            let (what, i) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(what, "ended");
            ended[i] = true;
        }
        assert_eq!(ended, [true, true]);
        for j in joins {
            j.join().unwrap();
        }
        assert!(sd.waiters().is_empty(), "the trigger closed every far end");
        glommio::LocalExecutor::default().run(async {
            sd.wait().await;
        });
        assert!(sd.waiters().is_empty(), "a wait after the trigger registers nothing");
    }
}
