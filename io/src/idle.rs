//! Idle detection for every relay on a core. A relay holds one [`Watch`]
//! (its byte counters); one sweeper task per core looks at all of them each
//! tick and marks those whose counters stood still for their timeout. So a
//! relay costs no task and no timer of its own, and its wakeups never touch
//! a timer.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The shortest tick the sweeper uses, whatever the timeouts.
const MIN_TICK: Duration = Duration::from_millis(50);
/// The longest: a long timeout still gets looked at this often.
const MAX_TICK: Duration = Duration::from_secs(1);

/// A core-wide tally the relays of one kind add their bytes to (0: client
/// → origin, 1: origin → client), for metrics. Relays add what moved since
/// the last sweep, so the tally is at most a sweep behind and the data path
/// never touches it.
pub type ByteSink = [Cell<u64>; 2];

/// One relay's counters and idle state.
pub struct Watch {
    bytes: [Cell<u64>; 2],
    /// Where the counters are tallied, and how much of each already was.
    sink: Option<(Rc<ByteSink>, [Cell<u64>; 2])>,
    timeout: Duration,
    /// Sum of the counters at the last sweep, and since when it has not moved.
    last: Cell<u64>,
    since: Cell<Instant>,
    idle: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

struct Sweeper {
    watches: Vec<Weak<Watch>>,
    tick: Duration,
    running: bool,
}

thread_local! {
    static SWEEPER: RefCell<Sweeper> =
        const { RefCell::new(Sweeper { watches: Vec::new(), tick: MAX_TICK, running: false }) };
}

impl Watch {
    /// A watch that goes idle after `timeout` without a byte either way.
    /// Must be called on a glommio executor (it may start the core's sweeper).
    pub fn new(timeout: Duration) -> Rc<Watch> {
        Self::build(timeout, None)
    }

    /// A watch whose byte counts are also tallied into `sink`.
    pub fn with_sink(timeout: Duration, sink: Rc<ByteSink>) -> Rc<Watch> {
        Self::build(timeout, Some((sink, [Cell::new(0), Cell::new(0)])))
    }

    fn build(timeout: Duration, sink: Option<(Rc<ByteSink>, [Cell<u64>; 2])>) -> Rc<Watch> {
        let w = Rc::new(Watch {
            bytes: [Cell::new(0), Cell::new(0)],
            sink,
            timeout,
            last: Cell::new(0),
            since: Cell::new(Instant::now()),
            idle: Cell::new(false),
            waker: RefCell::new(None),
        });
        let start = SWEEPER.with(|s| {
            let mut s = s.borrow_mut();
            s.watches.push(Rc::downgrade(&w));
            s.tick = s.tick.min(timeout / 4).clamp(MIN_TICK, MAX_TICK);
            !std::mem::replace(&mut s.running, true)
        });
        if start {
            glommio::spawn_local(sweep()).detach();
        }
        w
    }

    /// The counter of one direction (0: client → origin, 1: origin → client).
    pub fn bytes(&self, dir: usize) -> &Cell<u64> {
        &self.bytes[dir]
    }

    pub fn total(&self) -> u64 {
        self.bytes[0].get() + self.bytes[1].get()
    }

    pub fn is_idle(&self) -> bool {
        self.idle.get()
    }

    /// Ready once idle; else remembers the task to wake when it goes idle.
    pub fn poll_idle(&self, cx: &Context<'_>) -> Poll<()> {
        if self.idle.get() {
            return Poll::Ready(());
        }
        let mut w = self.waker.borrow_mut();
        if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *w = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Adds what moved since the last tally to the sink.
    fn tally(&self) {
        if let Some((sink, done)) = &self.sink {
            for dir in 0..2 {
                let now = self.bytes[dir].get();
                sink[dir].set(sink[dir].get() + (now - done[dir].get()));
                done[dir].set(now);
            }
        }
    }

    /// One sweep, at `now`.
    fn check(&self, now: Instant) {
        self.tally();
        let total = self.total();
        if total != self.last.get() {
            self.last.set(total);
            self.since.set(now);
            return;
        }
        if now.duration_since(self.since.get()) >= self.timeout && !self.idle.replace(true) {
            if let Some(w) = self.waker.borrow_mut().take() {
                w.wake();
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.tally();
    }
}

/// The core's sweeper: runs while any watch lives.
async fn sweep() {
    loop {
        let tick = SWEEPER.with(|s| s.borrow().tick);
        glommio::timer::sleep(tick).await;
        let now = Instant::now();
        // Waking a task only queues it, so no code of a relay runs inside
        // this borrow.
        let done = SWEEPER.with(|s| {
            let mut s = s.borrow_mut();
            s.watches.retain(|w| match w.upgrade() {
                Some(w) => {
                    w.check(now);
                    true
                }
                None => false,
            });
            if s.watches.is_empty() {
                s.running = false;
                s.tick = MAX_TICK;
            }
            !s.running
        });
        if done {
            return;
        }
    }
}

/// Runs `fut` until it ends or `watch` goes idle (`None`).
pub struct UntilIdle<'w, F> {
    fut: F,
    watch: &'w Watch,
}

pub fn until_idle<F: Future + Unpin>(fut: F, watch: &Watch) -> UntilIdle<'_, F> {
    UntilIdle { fut, watch }
}

impl<F: Future + Unpin> Future for UntilIdle<'_, F> {
    type Output = Option<F::Output>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready(v) = Pin::new(&mut this.fut).poll(cx) {
            return Poll::Ready(Some(v));
        }
        this.watch.poll_idle(cx).map(|()| None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T>(f: impl Future<Output = T>) -> T {
        glommio::LocalExecutor::default().run(f)
    }

    #[test]
    fn a_silent_relay_goes_idle_after_its_timeout_not_before() {
        run(async {
            let w = Watch::new(Duration::from_millis(200));
            let t0 = std::time::Instant::now();
            let end = until_idle(futures_lite::future::pending::<()>(), &w).await;
            assert!(end.is_none());
            let took = t0.elapsed();
            assert!(took >= Duration::from_millis(200), "{took:?}");
            assert!(w.is_idle());
        });
    }

    #[test]
    fn traffic_keeps_it_alive_and_the_future_ends_first() {
        run(async {
            let w = Watch::new(Duration::from_millis(200));
            let busy = Box::pin(async {
                for i in 1..=25u64 {
                    w.bytes(i as usize % 2).set(i);
                    glommio::timer::sleep(Duration::from_millis(40)).await;
                }
                "done"
            });
            assert_eq!(until_idle(busy, &w).await, Some("done"));
            assert!(!w.is_idle());
        });
    }

    #[test]
    fn bytes_reach_the_sink_by_the_next_sweep_and_the_rest_at_drop() {
        run(async {
            let sink: Rc<ByteSink> = Rc::new([Cell::new(0), Cell::new(0)]);
            let a = Watch::with_sink(Duration::from_millis(200), sink.clone());
            let b = Watch::with_sink(Duration::from_millis(200), sink.clone());
            a.bytes(0).set(100);
            b.bytes(1).set(7);
            glommio::timer::sleep(Duration::from_millis(120)).await;
            assert_eq!((sink[0].get(), sink[1].get()), (100, 7), "tallied by a sweep");
            a.bytes(0).set(150);
            a.bytes(1).set(3);
            drop(a);
            assert_eq!((sink[0].get(), sink[1].get()), (150, 10), "the rest at drop, nothing twice");
            glommio::timer::sleep(Duration::from_millis(120)).await;
            assert_eq!((sink[0].get(), sink[1].get()), (150, 10));
            drop(b);
        });
    }

    #[test]
    fn dropped_watches_leave_the_sweeper_and_it_stops() {
        run(async {
            for _ in 0..100 {
                drop(Watch::new(Duration::from_millis(200)));
            }
            let keep = Watch::new(Duration::from_millis(200));
            glommio::timer::sleep(Duration::from_millis(120)).await;
            assert_eq!(SWEEPER.with(|s| s.borrow().watches.len()), 1);
            drop(keep);
            glommio::timer::sleep(Duration::from_millis(120)).await;
            SWEEPER.with(|s| {
                let s = s.borrow();
                assert!(s.watches.is_empty() && !s.running);
            });
        });
    }
}
