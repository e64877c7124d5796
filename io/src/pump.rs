//! Byte pumps: read from one socket, let a protocol filter look at (and if it
//! must, rewrite) the bytes, write them to the other socket. The filter sees
//! the very buffer that was read; in the steady state it hands the same
//! bytes back and nothing is copied.

use crate::signal::LocalSignal;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use std::cell::Cell;
use std::fmt;
use std::io;
use std::rc::Rc;
use std::time::Duration;

/// A protocol's view of one direction of a relay.
pub trait Filter {
    type Error: fmt::Display;
    /// Looks at `buf` (bytes read and not yet consumed). Returns how many
    /// bytes it handled and what to send for them: usually `&buf[..consumed]`
    /// itself, or bytes of its own when it had to rewrite. The unconsumed tail
    /// is presented again, in front of the next bytes read.
    fn filter<'a>(&'a mut self, buf: &'a mut [u8]) -> Result<(usize, &'a [u8]), Self::Error>;

    /// The stream this filter frames has ended (e.g. an HTTP body was
    /// complete); the pump stops after writing what it returned.
    fn finished(&self) -> bool {
        false
    }
}

/// Passes every byte through untouched (L4 relay).
pub struct Plain;

impl Filter for Plain {
    type Error = std::convert::Infallible;
    fn filter<'a>(&'a mut self, buf: &'a mut [u8]) -> Result<(usize, &'a [u8]), Self::Error> {
        Ok((buf.len(), buf))
    }
}

/// Why one direction of a relay stopped.
#[derive(Debug)]
pub enum PumpEnd {
    /// The reading side closed its half cleanly.
    Eof,
    /// The filter said the stream it frames is complete.
    Finished,
    Read(io::Error),
    Write(io::Error),
    /// The filter refused the bytes (malformed or misbehaving peer).
    Filter(String),
    /// Both directions were silent for the idle timeout.
    Idle,
}

impl fmt::Display for PumpEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PumpEnd::Eof => f.write_str("closed"),
            PumpEnd::Finished => f.write_str("complete"),
            PumpEnd::Read(e) => write!(f, "read failed: {e}"),
            PumpEnd::Write(e) => write!(f, "write failed: {e}"),
            PumpEnd::Filter(e) => write!(f, "{e}"),
            PumpEnd::Idle => f.write_str("idle timeout"),
        }
    }
}

/// First size of a pump's buffer: an idle relay holds only this much.
pub const MIN_BUF: usize = 1024;

/// Pumps `r` into `w` through `filter` until one side ends. `initial` holds
/// bytes already read from `r` before the relay began. `bytes` counts what was
/// written (shared with the idle watchdog and the session's log line).
///
/// The buffer starts at [`MIN_BUF`] and doubles, up to `max_buf`, each time a
/// read fills it: idle connections stay small, busy ones get few syscalls.
pub async fn pump<R, W, F>(
    r: &mut R,
    w: &mut W,
    filter: &mut F,
    max_buf: usize,
    initial: Vec<u8>,
    bytes: &Cell<u64>,
) -> PumpEnd
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    F: Filter,
{
    let mut filled = initial.len();
    // A fresh buffer of the starting size: `initial` may carry the capacity
    // of a setup-phase buffer, which an idle relay must not keep.
    let start = MIN_BUF.max(filled + MIN_BUF / 2).next_power_of_two();
    let mut buf = vec![0u8; start];
    buf[..filled].copy_from_slice(&initial);
    drop(initial);
    loop {
        let (consumed, out) = match filter.filter(&mut buf[..filled]) {
            Ok(v) => v,
            Err(e) => return PumpEnd::Filter(e.to_string()),
        };
        if !out.is_empty() {
            if let Err(e) = w.write_all(out).await {
                return PumpEnd::Write(e);
            }
            bytes.set(bytes.get() + out.len() as u64);
        }
        if filter.finished() {
            return PumpEnd::Finished;
        }
        buf.copy_within(consumed..filled, 0);
        filled -= consumed;
        if filled == buf.len() {
            return PumpEnd::Filter("filter made no progress on a full buffer".into());
        }
        match r.read(&mut buf[filled..]).await {
            Ok(0) => return PumpEnd::Eof,
            Ok(n) => {
                filled += n;
                if filled == buf.len() && buf.len() < max_buf {
                    let grown = (buf.len() * 2).min(max_buf);
                    buf.resize(grown, 0);
                }
            }
            Err(e) => return PumpEnd::Read(e),
        }
    }
}

/// Resolves when neither counter moved for `idle`.
pub async fn idle_watch(counters: &[&Cell<u64>], idle: Duration) -> PumpEnd {
    let tick = (idle / 4).max(Duration::from_millis(50));
    let sum = || counters.iter().map(|c| c.get()).sum::<u64>();
    let mut last = sum();
    let mut quiet = Duration::ZERO;
    loop {
        glommio::timer::sleep(tick).await;
        let now = sum();
        if now == last {
            quiet += tick;
            if quiet >= idle {
                return PumpEnd::Idle;
            }
        } else {
            quiet = Duration::ZERO;
            last = now;
        }
    }
}

/// Which direction of a pair ended the relay, and why.
#[derive(Debug)]
pub enum PairEnd {
    /// client → origin ended.
    Upstream(PumpEnd),
    /// origin → client ended.
    Downstream(PumpEnd),
    Idle,
}

impl fmt::Display for PairEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PairEnd::Upstream(PumpEnd::Eof) => f.write_str("client closed"),
            PairEnd::Downstream(PumpEnd::Eof) => f.write_str("origin closed"),
            PairEnd::Upstream(e) => write!(f, "client side: {e}"),
            PairEnd::Downstream(e) => write!(f, "origin side: {e}"),
            PairEnd::Idle => f.write_str("idle timeout"),
        }
    }
}

/// Runs both directions, and the idle watchdog as its own task (so the
/// relay's wakeups never touch its timer); the first to end ends all.
pub async fn run_pair(
    up: impl std::future::Future<Output = PumpEnd>,
    down: impl std::future::Future<Output = PumpEnd>,
    counters: [Rc<Cell<u64>>; 2],
    idle: Duration,
) -> PairEnd {
    let idle_sig = Rc::new(LocalSignal::new());
    let watchdog = {
        let sig = idle_sig.clone();
        glommio::spawn_local(async move {
            idle_watch(&[&*counters[0], &*counters[1]], idle).await;
            sig.fire();
        })
    };
    let end = futures_lite::future::or(
        futures_lite::future::or(async { PairEnd::Upstream(up.await) }, async { PairEnd::Downstream(down.await) }),
        async {
            idle_sig.wait().await;
            PairEnd::Idle
        },
    )
    .await;
    drop(watchdog); // cancels it
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::io::Cursor;

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        glommio::LocalExecutor::default().run(f)
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    /// Records the buffer sizes it is shown; can stop after `limit` bytes or fail.
    struct Probe {
        seen: Vec<usize>,
        passed: usize,
        limit: Option<usize>,
        fail_at: Option<usize>,
    }

    impl Probe {
        fn new() -> Self {
            Probe { seen: Vec::new(), passed: 0, limit: None, fail_at: None }
        }
    }

    impl Filter for Probe {
        type Error = String;
        fn filter<'a>(&'a mut self, buf: &'a mut [u8]) -> Result<(usize, &'a [u8]), String> {
            self.seen.push(buf.len());
            if self.fail_at.is_some_and(|f| self.passed + buf.len() > f) {
                return Err("peer sent garbage".into());
            }
            let take = match self.limit {
                Some(l) => buf.len().min(l - self.passed),
                None => buf.len(),
            };
            self.passed += take;
            let buf: &'a [u8] = buf;
            Ok((take, &buf[..take]))
        }
        fn finished(&self) -> bool {
            self.limit == Some(self.passed)
        }
    }

    #[test]
    fn copies_everything_in_order_and_ends_at_eof() {
        run(async {
            let src = data(300_000);
            let mut r = Cursor::new(src.clone());
            let mut w = Vec::new();
            let bytes = Cell::new(0);
            let end = pump(&mut r, &mut w, &mut Plain, 64 * 1024, b"head".to_vec(), &bytes).await;
            assert!(matches!(end, PumpEnd::Eof), "{end:?}");
            assert_eq!(&w[..4], b"head");
            assert_eq!(&w[4..], &src[..]);
            assert_eq!(bytes.get(), 300_004);
        });
    }

    #[test]
    fn the_buffer_starts_small_and_grows_only_when_reads_fill_it() {
        run(async {
            let mut r = Cursor::new(data(100_000));
            let mut w = Vec::new();
            let mut p = Probe::new();
            let end = pump(&mut r, &mut w, &mut p, 16 * 1024, Vec::new(), &Cell::new(0)).await;
            assert!(matches!(end, PumpEnd::Eof));
            // The first call sees nothing, the first read at most MIN_BUF.
            assert_eq!(p.seen[0], 0);
            assert_eq!(p.seen[1], MIN_BUF);
            // A reader that always fills the buffer doubles it up to the cap.
            assert_eq!(p.seen.iter().copied().max(), Some(16 * 1024));
            assert_eq!(w.len(), 100_000);
        });
    }

    #[test]
    fn a_finished_filter_stops_the_pump_at_its_boundary() {
        run(async {
            let mut r = Cursor::new(data(10_000));
            let mut w = Vec::new();
            let mut p = Probe::new();
            p.limit = Some(3000);
            let end = pump(&mut r, &mut w, &mut p, 4096, Vec::new(), &Cell::new(0)).await;
            assert!(matches!(end, PumpEnd::Finished), "{end:?}");
            assert_eq!(w, data(10_000)[..3000].to_vec());
        });
    }

    #[test]
    fn a_filter_error_ends_the_pump_with_its_reason() {
        run(async {
            let mut r = Cursor::new(data(10_000));
            let mut p = Probe::new();
            p.fail_at = Some(5000);
            let end = pump(&mut r, &mut Vec::new(), &mut p, 4096, Vec::new(), &Cell::new(0)).await;
            assert!(matches!(&end, PumpEnd::Filter(e) if e == "peer sent garbage"), "{end:?}");
        });
    }

    #[test]
    fn a_pair_with_no_traffic_ends_by_the_idle_watchdog() {
        run(async {
            let counters = [Rc::new(Cell::new(0)), Rc::new(Cell::new(0))];
            let end = run_pair(
                futures_lite::future::pending::<PumpEnd>(),
                futures_lite::future::pending::<PumpEnd>(),
                counters,
                Duration::from_millis(200),
            )
            .await;
            assert!(matches!(end, PairEnd::Idle), "{end:?}");
        });
    }

    #[test]
    fn traffic_keeps_a_pair_alive_and_the_first_side_to_end_ends_it() {
        run(async {
            let counters = [Rc::new(Cell::new(0)), Rc::new(Cell::new(0))];
            let c = counters[0].clone();
            let up = async move {
                // Busy for 5 idle periods, then closes.
                for i in 0..25 {
                    c.set(i);
                    glommio::timer::sleep(Duration::from_millis(40)).await;
                }
                PumpEnd::Eof
            };
            let end = run_pair(up, futures_lite::future::pending(), counters, Duration::from_millis(200)).await;
            assert!(matches!(end, PairEnd::Upstream(PumpEnd::Eof)), "{end:?}");
        });
    }
}
