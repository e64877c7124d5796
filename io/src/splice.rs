//! Relaying bytes nobody needs to look at inside the kernel: `splice(2)`
//! from one TCP socket into a pipe, then from the pipe into the other
//! socket, so they are never copied into user space and back (HAProxy's
//! `splice-auto` does the same). For the body of a live HTTP stream, which
//! the proxy passes on untouched, and each way of an RTMP relay once both
//! chunk streams are in step ([`Switching`]).
//!
//! A pipe is borrowed from the core's pool only while bytes sit in it: a
//! relay waiting for its origin holds no descriptor of its own, and the
//! pipes a core has open are those of relays whose player is slower than
//! their origin right now, plus a few kept for reuse.

use crate::pump::{Dir, Direction, Filter, Handoff, PumpEnd, Spill};
use glommio::net::TcpStream;
use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::task::{Context, Poll};
use std::time::Instant;

/// What an empty pipe takes in one splice (Linux's default pipe holds 16
/// pages).
const PIPE_BYTES: usize = 64 * 1024;

/// Empty pipes a core keeps for its next splices.
const POOL_KEEP: usize = 32;

struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let mut fds: [libc::c_int; 2] = [-1; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both are open descriptors that nothing
        // else owns.
        Ok(unsafe { Pipe { r: OwnedFd::from_raw_fd(fds[0]), w: OwnedFd::from_raw_fd(fds[1]) } })
    }
}

thread_local! {
    /// Empty pipes of this core (executor thread).
    static POOL: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
    /// Splicing relays alive on this core: with none, the pool is emptied,
    /// so a proxy that splices nothing holds no pipe.
    static ACTIVE: Cell<usize> = const { Cell::new(0) };
}

fn take_pipe() -> io::Result<Pipe> {
    POOL.with(|p| p.borrow_mut().pop()).map_or_else(Pipe::new, Ok)
}

/// Only an empty pipe comes back; one with bytes left in it is closed.
fn give_back(p: Pipe) {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOL_KEEP {
            pool.push(p);
        }
    });
}

/// Pipes this core holds for reuse.
pub fn pooled_pipes() -> usize {
    POOL.with(|p| p.borrow().len())
}

/// One `splice` that never waits: `None` when either end would block.
fn splice(from: RawFd, to: RawFd, len: usize) -> Option<io::Result<usize>> {
    // SAFETY: no user memory is passed (null offsets: both ends are pipes
    // or sockets); a bad descriptor only fails the call.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
        )
    };
    if n >= 0 {
        return Some(Ok(n as usize));
    }
    let e = io::Error::last_os_error();
    match e.kind() {
        // A signal cut it short: the readiness poll answers at once if the
        // socket is still ready.
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => None,
        _ => Some(Err(e)),
    }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller's socket owns; no memory.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The direction of a relay that splices an origin's bytes to a client.
/// Bytes read before the relay began are written first; with a known
/// length, it ends ([`PumpEnd::Finished`]) after that many bytes in all,
/// else at the origin's close ([`PumpEnd::Eof`]).
pub struct Spliced {
    /// Bytes read before the relay began, written first.
    first: Spill,
    /// The borrowed pipe and how many bytes sit in it.
    pipe: Option<Pipe>,
    held: usize,
    /// Bytes still to move when the length is known.
    left: Option<u64>,
}

impl Spliced {
    /// Readies `from` and `to` for splicing: makes both non-blocking
    /// (`splice` honours nothing else) and takes a pipe. On an error nothing
    /// has been moved, and the caller relays by copying instead. `len`: the
    /// length of the whole stream, when it is known.
    pub fn new(from: &TcpStream, to: &TcpStream, len: Option<u64>) -> io::Result<Spliced> {
        let pipe = take_pipe()?;
        set_nonblocking(from.as_raw_fd())?;
        set_nonblocking(to.as_raw_fd())?;
        ACTIVE.with(|a| a.set(a.get() + 1));
        Ok(Spliced { first: Spill::default(), pipe: Some(pipe), held: 0, left: len })
    }

    /// Bytes read from `from` before the relay began, to be written first
    /// (they count toward the length).
    pub fn first(mut self, mut bytes: Vec<u8>) -> Spliced {
        if let Some(l) = self.left.as_mut() {
            bytes.truncate(usize::try_from(*l).unwrap_or(usize::MAX));
            *l -= bytes.len() as u64;
        }
        self.first.buf = bytes;
        self
    }

    /// Gives the (empty) pipe back to the core's pool.
    fn release(&mut self) {
        if let Some(p) = self.pipe.take() {
            give_back(p);
        }
    }
}

impl Drop for Spliced {
    fn drop(&mut self) {
        // `try_with`: a relay dropped while its thread is being torn down
        // finds the pool gone, and its pipes closed with it.
        let left = ACTIVE.try_with(|a| {
            a.set(a.get() - 1);
            a.get()
        });
        if left == Ok(0) {
            let _ = POOL.try_with(|p| p.borrow_mut().clear());
        }
    }
}

impl Direction<TcpStream, TcpStream> for Spliced {
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        r: &mut TcpStream,
        w: &mut TcpStream,
        _max: usize,
        bytes: &Cell<u64>,
    ) -> Poll<PumpEnd> {
        // A relay with data always ready yields after this many splices, so
        // the other connections on the core get their turn.
        let mut budget = 32;
        loop {
            if let Err(end) = std::task::ready!(self.first.poll_drain(cx, w, bytes)) {
                return Poll::Ready(end);
            }
            if let Some(pipe) = &self.pipe {
                // What the player could not take yet comes first.
                let from = pipe.r.as_raw_fd();
                while self.held > 0 {
                    let held = self.held;
                    match w.poll_write_with(cx, |to| splice(from, to, held)) {
                        Poll::Ready(Ok(0)) => return Poll::Ready(PumpEnd::Write(io::ErrorKind::WriteZero.into())),
                        Poll::Ready(Ok(n)) => {
                            self.held -= n;
                            bytes.set(bytes.get() + n as u64);
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(PumpEnd::Write(e)),
                        Poll::Pending => return Poll::Pending,
                    }
                }
            }
            // The pipe is empty here; it goes back to the pool whenever
            // this poll stops, and is kept across the loop's turns.
            if self.left == Some(0) {
                self.release();
                return Poll::Ready(PumpEnd::Finished);
            }
            if budget == 0 {
                self.release();
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            budget -= 1;
            let pipe = match self.pipe.take().map_or_else(take_pipe, Ok) {
                Ok(p) => p,
                Err(e) => {
                    return Poll::Ready(PumpEnd::Local(io::Error::new(
                        e.kind(),
                        format!("no pipe to splice through: {e}"),
                    )))
                }
            };
            let want = self.left.map_or(PIPE_BYTES, |l| l.min(PIPE_BYTES as u64) as usize);
            let to = pipe.w.as_raw_fd();
            match r.poll_read_with(cx, want, |from| splice(from, to, want)) {
                Poll::Ready(Ok(0)) => {
                    give_back(pipe);
                    return Poll::Ready(PumpEnd::Eof);
                }
                Poll::Ready(Ok(n)) => {
                    self.held = n;
                    self.pipe = Some(pipe);
                    if let Some(l) = self.left.as_mut() {
                        *l -= n as u64;
                    }
                }
                Poll::Ready(Err(e)) => {
                    give_back(pipe);
                    return Poll::Ready(PumpEnd::Read(e));
                }
                Poll::Pending => {
                    give_back(pipe);
                    return Poll::Pending;
                }
            }
        }
    }
}

/// One direction of a relay that reads its bytes through a filter (a
/// [`Dir`]) until the filter says it would pass everything on unchanged
/// ([`Filter::splice_ready`]), with nothing of its own left to write, and
/// from then on splices ([`Spliced`]): for RTMP once both ends' chunk
/// streams are in step. It counts into the same byte counter either way, so
/// the idle watch and its sink see spliced bytes too.
pub struct Switching<'f, 's, F> {
    mode: Mode<'f, F>,
    /// Set when it switched.
    switched: &'s Cell<Option<Instant>>,
}

enum Mode<'f, F> {
    Filter(Dir<'f, F>),
    /// No pipe could be had when it was time to switch: it filters to the end.
    FilterOnly(Dir<'f, F>),
    Spliced(Spliced),
    /// Only while switching.
    Gone,
}

impl<'f, 's, F: Filter> Switching<'f, 's, F> {
    /// `dir`: the direction as it starts (its first bytes already filtered);
    /// `switched` is set to the moment it starts to splice.
    pub fn new(dir: Dir<'f, F>, switched: &'s Cell<Option<Instant>>) -> Self {
        Switching { mode: Mode::Filter(dir), switched }
    }
}

impl<F: Filter> Direction<TcpStream, TcpStream> for Switching<'_, '_, F> {
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        r: &mut TcpStream,
        w: &mut TcpStream,
        max: usize,
        bytes: &Cell<u64>,
    ) -> Poll<PumpEnd> {
        match &mut self.mode {
            Mode::Spliced(s) => return s.poll(cx, r, w, max, bytes),
            Mode::FilterOnly(d) => return d.poll(cx, r, w, max, bytes),
            Mode::Filter(d) => match std::task::ready!(d.poll_until_splice(cx, r, w, max, bytes, true)) {
                Handoff::End(end) => return Poll::Ready(end),
                Handoff::Splice => {}
            },
            Mode::Gone => {
                return Poll::Ready(PumpEnd::Local(io::Error::other("relay direction polled while switching")))
            }
        }
        let Mode::Filter(dir) = std::mem::replace(&mut self.mode, Mode::Gone) else {
            return Poll::Ready(PumpEnd::Local(io::Error::other("relay direction lost while switching")));
        };
        self.mode = match Spliced::new(r, w, None) {
            Ok(s) => {
                self.switched.set(Some(Instant::now()));
                Mode::Spliced(s)
            }
            // Out of descriptors for a pipe: copying still works.
            Err(_) => Mode::FilterOnly(dir),
        };
        self.poll(cx, r, w, max, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{data, pair, run};
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    use std::time::Duration;

    /// An origin that sends `body` and then closes (or, with `hold`, keeps
    /// the connection open a while), a player that starts reading after
    /// `player_waits` and reads to the end (or stops after `player_takes`
    /// bytes and leaves), and a [`Spliced`] direction between them. Returns
    /// how it ended, what it counted, what the player got, and how many
    /// pipes the core pooled while it ran.
    struct Case {
        first: &'static [u8],
        body: usize,
        len: Option<u64>,
        hold: bool,
        player_waits: Duration,
        player_takes: Option<usize>,
    }

    impl Case {
        fn plain(body: usize) -> Case {
            Case { first: b"", body, len: None, hold: false, player_waits: Duration::ZERO, player_takes: None }
        }

        fn run(self) -> (PumpEnd, u64, Vec<u8>, usize) {
            run(async move {
                let (mut o, mut origin) = pair().await;
                let (mut client, mut player) = pair().await;
                let body = data(self.body);
                let hold = self.hold;
                let sender = glommio::spawn_local(async move {
                    let _ = origin.write_all(&body).await;
                    if hold {
                        glommio::timer::sleep(Duration::from_secs(2)).await;
                    }
                    drop(origin);
                });
                let (waits, takes) = (self.player_waits, self.player_takes);
                let reader = glommio::spawn_local(async move {
                    glommio::timer::sleep(waits).await;
                    let mut got = Vec::new();
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let want = takes.map_or(buf.len(), |t| (t - got.len()).min(buf.len()));
                        if want == 0 {
                            return got; // leaves: the socket closes here
                        }
                        match player.read(&mut buf[..want]).await {
                            Ok(0) | Err(_) => return got,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                });
                let bytes = Cell::new(0);
                let mut dir = Spliced::new(&o, &client, self.len).unwrap().first(self.first.to_vec());
                let mut pooled = 0;
                let end = futures_lite::future::poll_fn(|cx| {
                    let r = dir.poll(cx, &mut o, &mut client, 0, &bytes);
                    pooled = pooled.max(pooled_pipes());
                    r
                })
                .await;
                drop(dir);
                drop(client);
                drop(o);
                let got = reader.await;
                sender.await;
                (end, bytes.get(), got, pooled)
            })
        }
    }

    #[test]
    fn splices_every_byte_in_order_and_ends_at_the_origins_close() {
        let mut c = Case::plain(3 << 20);
        c.first = b"bytes read with the head";
        let (end, bytes, got, pooled) = c.run();
        assert!(matches!(end, PumpEnd::Eof), "{end:?}");
        let mut want = b"bytes read with the head".to_vec();
        want.extend_from_slice(&data(3 << 20));
        assert_eq!(got.len(), want.len());
        assert!(got == want, "the player's bytes differ from the origin's");
        assert_eq!(bytes, want.len() as u64);
        // The bytes went through a pipe of the pool, which is empty again
        // now that no splicing relay is left on this core.
        assert!(pooled >= 1, "no pipe was used");
        assert_eq!(pooled_pipes(), 0);
    }

    #[test]
    fn a_known_length_ends_complete_at_its_last_byte() {
        // The origin sends more than the length and keeps its connection.
        let mut c = Case::plain(300_000);
        c.first = b"0123456789";
        c.len = Some(200_000);
        c.hold = true;
        let (end, bytes, got, _) = c.run();
        assert!(matches!(end, PumpEnd::Finished), "{end:?}");
        assert_eq!(bytes, 200_000);
        assert_eq!(got.len(), 200_000);
        assert_eq!(&got[..10], b"0123456789");
        assert!(got[10..] == data(200_000 - 10)[..], "the player's bytes differ from the origin's");
    }

    #[test]
    fn a_length_inside_the_first_bytes_sends_only_those() {
        let mut c = Case::plain(1000);
        c.first = b"0123456789";
        c.len = Some(4);
        c.hold = true;
        let (end, bytes, got, _) = c.run();
        assert!(matches!(end, PumpEnd::Finished), "{end:?}");
        assert_eq!((bytes, got), (4, b"0123".to_vec()));
    }

    #[test]
    fn a_slow_player_gets_every_byte_once_it_reads() {
        // More than both sockets' buffers hold: the splice into the player
        // blocks with bytes in the pipe until the player reads.
        let mut c = Case::plain(24 << 20);
        c.player_waits = Duration::from_millis(300);
        let (end, bytes, got, _) = c.run();
        assert!(matches!(end, PumpEnd::Eof), "{end:?}");
        assert_eq!(bytes, 24 << 20);
        assert!(got == data(24 << 20), "the player's bytes differ from the origin's");
        assert_eq!(pooled_pipes(), 0);
    }

    #[test]
    fn a_player_that_leaves_ends_the_direction_with_a_write_error_and_keeps_no_pipe() {
        let mut c = Case::plain(24 << 20);
        c.player_takes = Some(100_000);
        c.hold = true;
        let (end, bytes, got, _) = c.run();
        assert!(matches!(end, PumpEnd::Write(_)), "{end:?}");
        assert_eq!(got.len(), 100_000);
        assert!(bytes >= 100_000, "{bytes}");
        assert_eq!(pooled_pipes(), 0);
    }

    /// Passes bytes through and counts them; ready to be bypassed once it
    /// has seen `after` bytes.
    struct CountUntil {
        seen: usize,
        after: usize,
    }

    impl Filter for CountUntil {
        type Error = std::convert::Infallible;
        fn filter<'a>(&'a mut self, buf: &'a mut [u8]) -> Result<(usize, &'a [u8]), Self::Error> {
            self.seen += buf.len();
            Ok((buf.len(), buf))
        }
        fn splice_ready(&self) -> bool {
            self.seen >= self.after
        }
    }

    /// An origin sends `first` (read before the relay) and then `body` and
    /// closes; a `Switching` direction relays to a player that reads it all.
    /// Returns the end, the bytes counted, what the player got, what the
    /// filter saw and whether it switched.
    fn switching(first: &'static [u8], body: usize, after: usize) -> (PumpEnd, u64, Vec<u8>, usize, bool) {
        run(async move {
            let (mut o, mut origin) = pair().await;
            let (mut client, mut player) = pair().await;
            let sender = glommio::spawn_local(async move {
                let _ = origin.write_all(&data(body)).await;
                drop(origin);
            });
            let reader = glommio::spawn_local(async move {
                let mut got = Vec::new();
                let _ = player.read_to_end(&mut got).await;
                got
            });
            let bytes = Cell::new(0);
            let switched = Cell::new(None);
            let mut filter = CountUntil { seen: 0, after };
            let dir = Dir::new(&mut filter, first.to_vec(), &mut client, &bytes);
            let mut dir = Switching::new(dir, &switched);
            let end = futures_lite::future::poll_fn(|cx| dir.poll(cx, &mut o, &mut client, 64 * 1024, &bytes)).await;
            drop(dir);
            drop(client);
            let got = reader.await;
            sender.await;
            (end, bytes.get(), got, filter.seen, switched.get().is_some())
        })
    }

    #[test]
    fn a_switching_direction_filters_then_splices_every_byte_in_order() {
        let (end, bytes, got, seen, switched) = switching(b"read before the relay", 4 << 20, 100_000);
        assert!(matches!(end, PumpEnd::Eof), "{end:?}");
        let mut want = b"read before the relay".to_vec();
        want.extend_from_slice(&data(4 << 20));
        assert!(got == want, "the player's bytes differ from the origin's");
        assert_eq!(bytes, want.len() as u64, "spliced bytes are counted like filtered ones");
        assert!(switched);
        assert!((100_000..want.len()).contains(&seen), "the filter saw {seen} of {} bytes", want.len());
        assert_eq!(pooled_pipes(), 0);
    }

    #[test]
    fn a_switching_direction_that_is_never_ready_filters_to_the_end() {
        let (end, bytes, got, seen, switched) = switching(b"", 1 << 20, usize::MAX);
        assert!(matches!(end, PumpEnd::Eof), "{end:?}");
        assert!(got == data(1 << 20));
        assert_eq!((bytes, seen, switched), (1 << 20, 1 << 20, false));
    }

    #[test]
    fn a_switching_direction_ready_from_the_start_splices_after_the_first_bytes() {
        let (end, bytes, got, seen, switched) = switching(b"first", 1 << 20, 0);
        assert!(matches!(end, PumpEnd::Eof), "{end:?}");
        assert_eq!(&got[..5], b"first");
        assert!(got[5..] == data(1 << 20));
        assert_eq!(bytes, 5 + (1 << 20));
        assert!(switched);
        assert_eq!(seen, 5, "only the bytes read before the relay went through the filter");
    }

    #[test]
    fn the_pool_keeps_at_most_its_bound_and_only_while_relays_live() {
        run(async {
            let (o, _origin) = pair().await;
            let (client, _player) = pair().await;
            let relays: Vec<Spliced> = (0..POOL_KEEP + 8).map(|_| Spliced::new(&o, &client, None).unwrap()).collect();
            // Each holds the pipe it was given until its first poll: give
            // them all back as a poll would.
            let mut relays = relays;
            for r in &mut relays {
                if let Some(p) = r.pipe.take() {
                    give_back(p);
                }
            }
            assert_eq!(pooled_pipes(), POOL_KEEP);
            relays.truncate(1);
            assert_eq!(pooled_pipes(), POOL_KEEP);
            drop(relays);
            assert_eq!(pooled_pipes(), 0);
        });
    }
}
