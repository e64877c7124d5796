//! A one-shot, single-executor signal: tasks wait on it, one call fires it.
//! Waiting costs nothing while nothing happens (no timer, no polling).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
pub struct LocalSignal {
    fired: Cell<bool>,
    wakers: RefCell<Vec<Waker>>,
}

impl LocalSignal {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fire(&self) {
        self.fired.set(true);
        for w in self.wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }

    pub fn is_fired(&self) -> bool {
        self.fired.get()
    }

    /// Resolves once `fire` was called.
    pub fn wait(&self) -> Wait<'_> {
        Wait(self)
    }
}

pub struct Wait<'a>(&'a LocalSignal);

impl Future for Wait<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.fired.get() {
            return Poll::Ready(());
        }
        let mut ws = self.0.wakers.borrow_mut();
        // A task polled again registers once, not once per poll.
        if !ws.iter().any(|w| w.will_wake(cx.waker())) {
            ws.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_wake_once_fired_and_register_once() {
        glommio::LocalExecutor::default().run(async {
            let s = std::rc::Rc::new(LocalSignal::new());
            let s2 = s.clone();
            let t = glommio::spawn_local(async move {
                s2.wait().await;
                7
            });
            // Let the waiter poll a few times.
            for _ in 0..3 {
                glommio::executor().yield_task_queue_now().await;
            }
            assert_eq!(s.wakers.borrow().len(), 1);
            s.fire();
            assert_eq!(t.await, 7);
            assert!(s.is_fired());
            s.wait().await; // already fired: immediate
        });
    }
}
