//! Byte pumps: read from one socket, let a protocol filter look at (and if it
//! must, rewrite) the bytes, write them to the other socket. The filter sees
//! the very buffer that was read; in the steady state it hands the same
//! bytes back and nothing is copied.

use crate::idle::Watch;
use futures_lite::{AsyncRead, AsyncWrite};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

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

    /// Would this filter from now on pass every byte through unchanged, so
    /// that the rest of the direction may move without being read (spliced
    /// in the kernel)? Asked only between reads, with nothing of the
    /// filter's kept in the pump.
    fn splice_ready(&self) -> bool {
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

/// Reads and drops every byte (a side whose words go nowhere, such as a
/// player's after its request).
pub struct Discard;

impl Filter for Discard {
    type Error = std::convert::Infallible;
    fn filter<'a>(&'a mut self, buf: &'a mut [u8]) -> Result<(usize, &'a [u8]), Self::Error> {
        Ok((buf.len(), &[]))
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
    /// The proxy itself ran short (no descriptor for a pipe): neither peer
    /// is to blame.
    Local(io::Error),
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
            PumpEnd::Local(e) => write!(f, "proxy: {e}"),
        }
    }
}

/// Size of each core's shared read buffer.
pub const SCRATCH: usize = 64 * 1024;

thread_local! {
    /// One read buffer per core (executor thread), shared by every pump on
    /// it. A pump borrows it only inside one `poll` (read, filter, write,
    /// all synchronous), never across a suspension, so pumps never contend.
    static SCRATCH_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0u8; SCRATCH]);
}

/// Reads once from `r` (at most `max` bytes) through the core's shared
/// buffer and appends what came to `buf`: a caller collecting a handshake or
/// a request head keeps only the bytes it got, never a zeroed read window.
/// `Ok(0)` at end of stream.
pub async fn read_append<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    let max = max.clamp(1, SCRATCH);
    futures_lite::future::poll_fn(|cx| {
        SCRATCH_BUF.with(|cell| {
            let mut scratch = cell.borrow_mut();
            match Pin::new(&mut *r).poll_read(cx, &mut scratch[..max]) {
                Poll::Ready(Ok(n)) => {
                    buf.extend_from_slice(&scratch[..n]);
                    Poll::Ready(Ok(n))
                }
                other => other,
            }
        })
    })
    .await
}

/// Most bytes one [`read_append`] of a handshake, request or response head
/// takes (through the core's shared buffer).
pub const SETUP_READ: usize = 16 * 1024;

/// Capacity a setup buffer keeps once it is empty.
const SETUP_KEEP: usize = 512;

/// Drops the first `consumed` bytes of a buffer filled by [`read_append`]
/// and, once it is empty, frees it if it grew past a few hundred bytes (for
/// an RTMP handshake, a large request head): a connection that waits next
/// (on an origin's answer, a keep-alive client's next request) does not hold
/// it, and many setups in flight leave no heap mapped behind them.
pub fn consume(buf: &mut Vec<u8>, consumed: usize) {
    buf.drain(..consumed.min(buf.len()));
    if buf.is_empty() && buf.capacity() > SETUP_KEEP {
        *buf = Vec::new();
    }
}

/// Pumps `r` into `w` through `filter` until one side ends. `initial` holds
/// bytes already read from `r` before the relay began. `bytes` counts what was
/// written (shared with the idle watch and the session's log line).
///
/// Reads go into the core's shared buffer (at most `max_buf` bytes at a time)
/// and are filtered and written in the same step, so a relay owns no buffer
/// of its own: only the few bytes of an incomplete header between reads, and
/// a spill of what the writer could not take yet (while the pump waits for
/// it, it reads nothing more: backpressure).
///
/// A named future rather than an `async fn`: it is `Unpin` and small, so a
/// pair of them and the idle check nest without copies of each other.
pub fn pump<'a, R, W, F>(
    r: &'a mut R,
    w: &'a mut W,
    filter: &'a mut F,
    max_buf: usize,
    initial: Vec<u8>,
    bytes: &'a Cell<u64>,
) -> Pump<'a, R, W, F>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    F: Filter,
{
    let dir = Dir::new(filter, initial, w, bytes);
    Pump { r, w, dir, max: max_buf.clamp(1, SCRATCH), bytes }
}

/// See [`pump`].
pub struct Pump<'a, R, W, F> {
    r: &'a mut R,
    w: &'a mut W,
    dir: Dir<'a, F>,
    max: usize,
    bytes: &'a Cell<u64>,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin, F: Filter> std::future::Future for Pump<'_, R, W, F> {
    type Output = PumpEnd;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<PumpEnd> {
        let this = self.get_mut();
        Direction::poll(&mut this.dir, cx, this.r, this.w, this.max, this.bytes)
    }
}

/// One direction: its filter, its state, and what its bytes read before
/// the relay began left to say. A [`Pump`] is one; a [`Relay`] is two.
pub struct Dir<'f, F> {
    filter: &'f mut F,
    st: PumpState,
    /// The initial bytes were refused: the direction ends at its first poll.
    early: Option<PumpEnd>,
}

/// One direction of a [`Relay`]: moves bytes from `r` to `w`, counting what
/// it wrote into `bytes`, until it ends. A [`Dir`] reads through the core's
/// buffer and a filter; `splice::Spliced` moves bytes in the kernel.
pub trait Direction<R, W> {
    fn poll(&mut self, cx: &mut Context<'_>, r: &mut R, w: &mut W, max: usize, bytes: &Cell<u64>) -> Poll<PumpEnd>;
}

impl<'f, F: Filter> Dir<'f, F> {
    /// Filters `initial` (bytes read before the relay) into a spill for the
    /// first poll to write to `w`.
    pub fn new<W: AsyncWrite + Unpin>(filter: &'f mut F, initial: Vec<u8>, w: &mut W, bytes: &Cell<u64>) -> Self {
        let mut st = PumpState::new();
        let mut first = initial;
        let early = st.step(&mut first, w, filter, bytes, None).err();
        Dir { filter, st, early }
    }
}

impl<F: Filter, R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Direction<R, W> for Dir<'_, F> {
    fn poll(&mut self, cx: &mut Context<'_>, r: &mut R, w: &mut W, max: usize, bytes: &Cell<u64>) -> Poll<PumpEnd> {
        match self.poll_until_splice(cx, r, w, max, bytes, false) {
            Poll::Ready(Handoff::End(end)) => Poll::Ready(end),
            // Never: without `handoff` it does not stop for splicing.
            Poll::Ready(Handoff::Splice) | Poll::Pending => Poll::Pending,
        }
    }
}

/// How [`Dir::poll_until_splice`] stopped.
pub enum Handoff {
    /// The direction ended.
    End(PumpEnd),
    /// The filter is ready to be bypassed and the pump holds nothing: every
    /// byte it read was handled and written.
    Splice,
}

impl<F: Filter> Dir<'_, F> {
    /// Polls like [`Direction::poll`]; with `handoff`, stops at the first
    /// point where the pump holds no byte (no incomplete header, nothing
    /// unwritten) and the filter says [`Filter::splice_ready`].
    pub fn poll_until_splice<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        r: &mut R,
        w: &mut W,
        max: usize,
        bytes: &Cell<u64>,
        handoff: bool,
    ) -> Poll<Handoff> {
        if let Some(end) = self.early.take() {
            return Poll::Ready(Handoff::End(end));
        }
        self.st.poll(cx, r, w, self.filter, max, bytes, handoff)
    }
}

/// Bytes a writer has not taken yet, written before anything else.
#[derive(Default)]
pub(crate) struct Spill {
    pub(crate) buf: Vec<u8>,
    at: usize,
}

impl Spill {
    /// Writes what is left to `w`, counting into `bytes`; once all is
    /// written, gives the memory back.
    pub(crate) fn poll_drain<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        w: &mut W,
        bytes: &Cell<u64>,
    ) -> Poll<Result<(), PumpEnd>> {
        while self.at < self.buf.len() {
            match Pin::new(&mut *w).poll_write(cx, &self.buf[self.at..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(PumpEnd::Write(io::ErrorKind::WriteZero.into()))),
                Poll::Ready(Ok(n)) => {
                    self.at += n;
                    bytes.set(bytes.get() + n as u64);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(PumpEnd::Write(e))),
                Poll::Pending => return Poll::Pending,
            }
        }
        if !self.buf.is_empty() {
            *self = Spill::default();
        }
        Poll::Ready(Ok(()))
    }
}

struct PumpState {
    /// Unconsumed bytes (an incomplete header) to put in front of the next read.
    tail: Vec<u8>,
    /// Output the writer has not taken yet.
    spill: Spill,
    finished: bool,
}

impl PumpState {
    fn new() -> Self {
        PumpState { tail: Vec::new(), spill: Spill::default(), finished: false }
    }

    /// Filters `buf[..]`, writes what it can now (when `cx` is given) or
    /// spills it, and keeps the unconsumed tail.
    fn step<W: AsyncWrite + Unpin, F: Filter>(
        &mut self,
        buf: &mut [u8],
        w: &mut W,
        filter: &mut F,
        bytes: &Cell<u64>,
        cx: Option<&mut Context<'_>>,
    ) -> Result<(), PumpEnd> {
        let (consumed, out) = filter.filter(buf).map_err(|e| PumpEnd::Filter(e.to_string()))?;
        let mut written = 0;
        if let Some(cx) = cx {
            while written < out.len() {
                match Pin::new(&mut *w).poll_write(cx, &out[written..]) {
                    Poll::Ready(Ok(0)) => return Err(PumpEnd::Write(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => written += n,
                    Poll::Ready(Err(e)) => return Err(PumpEnd::Write(e)),
                    Poll::Pending => break,
                }
            }
        }
        bytes.set(bytes.get() + written as u64);
        self.spill.buf.extend_from_slice(&out[written..]);
        self.finished = filter.finished();
        self.tail.clear();
        if !self.finished {
            self.tail.extend_from_slice(&buf[consumed..]);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn poll<R: AsyncRead + Unpin, W: AsyncWrite + Unpin, F: Filter>(
        &mut self,
        cx: &mut Context<'_>,
        r: &mut R,
        w: &mut W,
        filter: &mut F,
        max: usize,
        bytes: &Cell<u64>,
        handoff: bool,
    ) -> Poll<Handoff> {
        // A relay with data always ready yields after this many reads, so
        // the other connections on the core get their turn.
        let mut budget = 32;
        loop {
            // What the writer could not take comes first.
            if let Err(end) = std::task::ready!(self.spill.poll_drain(cx, w, bytes)) {
                return Poll::Ready(Handoff::End(end));
            }
            if self.finished {
                return Poll::Ready(Handoff::End(PumpEnd::Finished));
            }
            // Everything read so far is written, no partial header waits.
            if handoff && self.tail.is_empty() && filter.splice_ready() {
                return Poll::Ready(Handoff::Splice);
            }
            if budget == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            budget -= 1;
            if self.tail.len() >= max {
                return Poll::Ready(Handoff::End(PumpEnd::Filter("filter made no progress on a full buffer".into())));
            }
            let res = SCRATCH_BUF.with(|cell| {
                let mut scratch = cell.borrow_mut();
                let t = self.tail.len();
                scratch[..t].copy_from_slice(&self.tail);
                match Pin::new(&mut *r).poll_read(cx, &mut scratch[t..max]) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Ok(0)) => Poll::Ready(Some(PumpEnd::Eof)),
                    Poll::Ready(Ok(n)) => {
                        Poll::Ready(self.step(&mut scratch[..t + n], w, filter, bytes, Some(cx)).err())
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Some(PumpEnd::Read(e))),
                }
            });
            match res {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(end)) => return Poll::Ready(Handoff::End(end)),
                Poll::Ready(None) => {}
            }
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

/// A relay socket that can be told to acknowledge what it receives at once.
///
/// Linux TCP delays its ACKs on a socket that sends soon after it received
/// ("pingpong" mode, for request/response traffic). A relay socket that
/// mostly receives and now and then passes a few bytes back, such as the
/// origin's side of an RTMP play when the player's acknowledgement goes
/// up, then holds its ACKs for up to 40 ms; with a receive window of a video
/// frame or two, the sender stalls and the next messages reach the player
/// that late. The relay calls this after writing such a light direction.
pub trait PromptAcks {
    fn ack_promptly(&self);
}

impl PromptAcks for glommio::net::TcpStream {
    fn ack_promptly(&self) {
        use std::os::fd::AsRawFd;
        // Failure (the socket is closing) costs only the prompt ACKs.
        let _ = set_quick_ack(self.as_raw_fd(), true);
    }
}

/// `TCP_QUICKACK` on (leave delayed ACKs now) or off (delay them).
fn set_quick_ack(fd: std::os::fd::RawFd, on: bool) -> io::Result<()> {
    set_option(fd, libc::IPPROTO_TCP, libc::TCP_QUICKACK, &libc::c_int::from(on))
}

/// Makes closing the socket abortive (`SO_LINGER` on, zero seconds): the
/// kernel drops what is unsent and answers with a reset instead of a FIN.
/// For a relay's origin side once nobody wants its remaining bytes (the
/// player has left): the origin learns at once that its reader is gone, and
/// the proxy's end of the connection leaves no TIME_WAIT, which would hold
/// one of the ephemeral ports toward that origin for a minute per session.
/// Never for a side that still has bytes to deliver (a publisher's).
pub fn reset_on_close(fd: std::os::fd::RawFd) -> io::Result<()> {
    set_option(fd, libc::SOL_SOCKET, libc::SO_LINGER, &libc::linger { l_onoff: 1, l_linger: 0 })
}

fn set_option<T>(fd: std::os::fd::RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live option value of its type's size; a closed
    // or foreign descriptor only makes the call fail.
    let r = unsafe {
        libc::setsockopt(fd, level, name, (value as *const T).cast(), std::mem::size_of::<T>() as libc::socklen_t)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Both directions between two sockets under one idle watch: `up` reads `a`
/// and writes `b`, `down` reads `b` and writes `a`. Each poll lends both
/// sockets to one direction, then the other, so neither socket is shared
/// through a cell. The first direction to end, or the watch going idle,
/// ends the relay. A direction that writes to a socket which mostly
/// receives (it has carried fewer bytes than the other) then asks that socket
/// for [`PromptAcks`]. See [`relay`].
pub struct Relay<'s, A, B, D1, D2> {
    a: &'s mut A,
    b: &'s mut B,
    up: D1,
    down: D2,
    max: usize,
    watch: &'s Watch,
}

/// `a_first`/`b_first`: bytes already read from `a`/`b` before the relay
/// began, which their direction filters first. The pumps count into
/// `watch.bytes(0)` (up) and `watch.bytes(1)` (down).
#[allow(clippy::too_many_arguments)]
pub fn relay<'s, A, B, F1, F2>(
    a: &'s mut A,
    b: &'s mut B,
    up: &'s mut F1,
    a_first: Vec<u8>,
    down: &'s mut F2,
    b_first: Vec<u8>,
    max_buf: usize,
    watch: &'s Watch,
) -> Relay<'s, A, B, Dir<'s, F1>, Dir<'s, F2>>
where
    A: AsyncRead + AsyncWrite + PromptAcks + Unpin,
    B: AsyncRead + AsyncWrite + PromptAcks + Unpin,
    F1: Filter,
    F2: Filter,
{
    let up = Dir::new(up, a_first, b, watch.bytes(0));
    let down = Dir::new(down, b_first, a, watch.bytes(1));
    relay_with(a, b, up, down, max_buf, watch)
}

/// [`relay`] with directions of the caller's making (a [`Dir`] each way, or
/// one that moves bytes in the kernel).
pub fn relay_with<'s, A, B, D1, D2>(
    a: &'s mut A,
    b: &'s mut B,
    up: D1,
    down: D2,
    max_buf: usize,
    watch: &'s Watch,
) -> Relay<'s, A, B, D1, D2>
where
    A: PromptAcks + Unpin,
    B: PromptAcks + Unpin,
    D1: Direction<A, B> + Unpin,
    D2: Direction<B, A> + Unpin,
{
    Relay { a, b, up, down, max: max_buf.clamp(1, SCRATCH), watch }
}

impl<A, B, D1, D2> std::future::Future for Relay<'_, A, B, D1, D2>
where
    A: PromptAcks + Unpin,
    B: PromptAcks + Unpin,
    D1: Direction<A, B> + Unpin,
    D2: Direction<B, A> + Unpin,
{
    type Output = PairEnd;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<PairEnd> {
        let this = self.get_mut();
        let (up, down) = (this.watch.bytes(0), this.watch.bytes(1));
        let before = up.get();
        let up_end = this.up.poll(cx, this.a, this.b, this.max, up);
        if up.get() > before && up.get() < down.get() {
            this.b.ack_promptly();
        }
        if let Poll::Ready(e) = up_end {
            return Poll::Ready(PairEnd::Upstream(e));
        }
        let before = down.get();
        let down_end = this.down.poll(cx, this.b, this.a, this.max, down);
        if down.get() > before && down.get() < up.get() {
            this.a.ack_promptly();
        }
        if let Poll::Ready(e) = down_end {
            return Poll::Ready(PairEnd::Downstream(e));
        }
        this.watch.poll_idle(cx).map(|()| PairEnd::Idle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{data, pair, run};
    use futures_lite::io::Cursor;

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
    fn reads_are_bounded_by_max_buf() {
        run(async {
            let mut r = Cursor::new(data(100_000));
            let mut w = Vec::new();
            let mut p = Probe::new();
            let end = pump(&mut r, &mut w, &mut p, 16 * 1024, Vec::new(), &Cell::new(0)).await;
            assert!(matches!(end, PumpEnd::Eof));
            // The bytes read before the relay (none here) are filtered first.
            assert_eq!(p.seen[0], 0);
            assert_eq!(p.seen.iter().copied().max(), Some(16 * 1024));
            assert_eq!(w, data(100_000));
        });
    }

    /// Takes at most `chunk` bytes per write and says Pending every other
    /// call (waking itself), like a slow peer's socket.
    struct Throttle {
        got: Vec<u8>,
        chunk: usize,
        flip: bool,
    }

    impl AsyncWrite for Throttle {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.flip = !self.flip;
            if self.flip {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let n = buf.len().min(self.chunk);
            self.got.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn a_slow_writer_gets_every_byte_in_order_through_the_spill() {
        run(async {
            let src = data(250_000);
            let mut r = Cursor::new(src.clone());
            let mut w = Throttle { got: Vec::new(), chunk: 3000, flip: false };
            let bytes = Cell::new(0);
            let end = pump(&mut r, &mut w, &mut Plain, 64 * 1024, b"pre".to_vec(), &bytes).await;
            assert!(matches!(end, PumpEnd::Eof), "{end:?}");
            assert_eq!(&w.got[..3], b"pre");
            assert_eq!(&w.got[3..], &src[..]);
            assert_eq!(bytes.get(), 250_003);
        });
    }

    #[test]
    fn a_tail_is_presented_again_in_front_of_the_next_read() {
        // Consumes only whole 10-byte records; the rest waits for more bytes.
        struct Records(Vec<usize>);
        impl Filter for Records {
            type Error = String;
            fn filter<'a>(&'a mut self, buf: &'a mut [u8]) -> Result<(usize, &'a [u8]), String> {
                self.0.push(buf.len());
                let n = buf.len() / 10 * 10;
                let buf: &'a [u8] = buf;
                Ok((n, &buf[..n]))
            }
        }
        run(async {
            let src = data(10_007);
            let mut r = Cursor::new(src.clone());
            let mut w = Vec::new();
            let mut f = Records(Vec::new());
            let end = pump(&mut r, &mut w, &mut f, 1024, Vec::new(), &Cell::new(0)).await;
            assert!(matches!(end, PumpEnd::Eof));
            assert_eq!(w, src[..10_000].to_vec());
            // A read of 1024 leaves 4 bytes; they come back in front of the
            // next read, which fills the rest of the 1024-byte window.
            assert_eq!(f.0[1], 1024);
            assert_eq!(f.0[2], 4 + 1020);
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

    /// A peer socket: has `says` to read once, then is silent (`ends`:
    /// at end of stream); takes every write into `got`.
    struct Peer {
        says: Option<Vec<u8>>,
        ends: bool,
        got: Vec<u8>,
    }

    impl Peer {
        fn quiet() -> Peer {
            Peer { says: None, ends: false, got: Vec::new() }
        }
        fn once(says: &[u8]) -> Peer {
            Peer { says: Some(says.to_vec()), ends: true, got: Vec::new() }
        }
    }

    impl AsyncRead for Peer {
        fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            match self.says.take() {
                Some(d) => {
                    buf[..d.len()].copy_from_slice(&d);
                    Poll::Ready(Ok(d.len()))
                }
                None if self.ends => Poll::Ready(Ok(0)),
                None => Poll::Pending,
            }
        }
    }

    /// Real sockets only (see the loopback test below).
    impl PromptAcks for Peer {
        fn ack_promptly(&self) {}
    }

    impl AsyncWrite for Peer {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.got.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn a_relay_with_no_traffic_ends_by_the_idle_watch_after_passing_the_early_bytes() {
        run(async {
            let w = Watch::new(std::time::Duration::from_millis(200));
            let (mut a, mut b) = (Peer::quiet(), Peer::quiet());
            let end =
                relay(&mut a, &mut b, &mut Plain, b"from a".to_vec(), &mut Plain, b"from b!".to_vec(), 1024, &w).await;
            assert!(matches!(end, PairEnd::Idle), "{end:?}");
            // What each side said before the relay reached the other side.
            assert_eq!((&b.got[..], &a.got[..]), (&b"from a"[..], &b"from b!"[..]));
            assert_eq!((w.bytes(0).get(), w.bytes(1).get()), (6, 7));
        });
    }

    #[test]
    fn the_first_side_to_end_ends_the_relay_after_its_bytes_crossed() {
        run(async {
            let w = Watch::new(std::time::Duration::from_secs(60));
            let mut a = Peer::quiet();
            let mut b = Peer::once(b"bye");
            let end = relay(&mut a, &mut b, &mut Plain, Vec::new(), &mut Plain, Vec::new(), 1024, &w).await;
            assert!(matches!(end, PairEnd::Downstream(PumpEnd::Eof)), "{end:?}");
            assert_eq!(a.got, b"bye");
        });
    }

    /// Whether a socket acknowledges at once (1) or has gone to delayed
    /// ACKs (0), as the kernel reports it.
    fn quick_ack(fd: std::os::fd::RawFd) -> libc::c_int {
        let mut v: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: out-pointers to a c_int and its length, on an open socket.
        let r = unsafe {
            libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_QUICKACK, (&mut v as *mut libc::c_int).cast(), &mut len)
        };
        assert_eq!(r, 0, "getsockopt: {}", io::Error::last_os_error());
        v
    }

    /// player or publisher <-> (a | relay | b) <-> origin, on loopback: the
    /// heavy side sends 256 KiB through the relay, the other answers a few
    /// bytes; returns whether the proxy's socket that received the media
    /// still acknowledges at once.
    fn light_answer_after_media(publish: bool) -> libc::c_int {
        use futures_lite::{AsyncReadExt, AsyncWriteExt};
        use std::os::fd::AsRawFd;
        run(async move {
            let (mut a, mut client) = pair().await;
            let (mut b, mut origin) = pair().await;
            let receiving_fd = if publish { a.as_raw_fd() } else { b.as_raw_fd() };
            let w = Watch::new(std::time::Duration::from_secs(30));
            let media = data(256 * 1024);
            let session = async {
                let (sender, receiver) = if publish { (&mut client, &mut origin) } else { (&mut origin, &mut client) };
                sender.write_all(&media).await.unwrap();
                let mut got = vec![0u8; media.len()];
                receiver.read_exact(&mut got).await.unwrap();
                assert_eq!(got, media);
                // Delayed ACKs from here, whatever this kernel's pingpong
                // threshold (1 on 6.x: the relay's own write would do it).
                set_quick_ack(receiving_fd, false).expect("TCP_QUICKACK off");
                assert_eq!(quick_ack(receiving_fd), 0, "the test could not turn prompt ACKs off");
                // An acknowledgement: a few bytes the other way.
                receiver.write_all(b"ack").await.unwrap();
                let mut ack = [0u8; 3];
                sender.read_exact(&mut ack).await.unwrap();
                assert_eq!(&ack, b"ack");
                let prompt = quick_ack(receiving_fd);
                client.close().await.unwrap();
                prompt
            };
            let (mut up, mut down) = (Plain, Plain);
            let relay = relay(&mut a, &mut b, &mut up, Vec::new(), &mut down, Vec::new(), 64 * 1024, &w);
            let (end, prompt) = futures_lite::future::zip(relay, session).await;
            assert!(matches!(end, PairEnd::Upstream(PumpEnd::Eof)), "{end:?}");
            prompt
        })
    }

    /// Sending just after receiving puts a Linux socket into delayed ACKs;
    /// the relay asks again for prompt ones after passing the few bytes.
    #[test]
    fn the_side_that_receives_the_media_keeps_acknowledging_at_once_after_a_light_answer() {
        for (what, publish) in [("play: the origin's side", false), ("publish: the publisher's side", true)] {
            assert_eq!(light_answer_after_media(publish), 1, "{what} delays its ACKs");
        }
    }

    /// What the far end reads once `near`, having written a few bytes, is
    /// dropped: the bytes and then EOF (a FIN), or a reset (abortive).
    fn far_end_after_close(reset: bool) -> (usize, io::Result<usize>) {
        use futures_lite::{AsyncReadExt, AsyncWriteExt};
        use std::os::fd::AsRawFd;
        run(async move {
            let (mut near, mut far) = pair().await;
            near.write_all(b"last words").await.unwrap();
            if reset {
                reset_on_close(near.as_raw_fd()).expect("SO_LINGER");
            }
            drop(near);
            let mut got = Vec::new();
            let r = far.read_to_end(&mut got).await;
            (got.len(), r)
        })
    }

    #[test]
    fn a_socket_reset_on_close_ends_with_a_reset_and_owes_nothing_and_otherwise_with_a_fin() {
        let (n, r) = far_end_after_close(false);
        assert_eq!((n, r.ok()), (10, Some(10)), "a plain close delivers the bytes, then EOF");
        let (n, r) = far_end_after_close(true);
        let kind = r.as_ref().map_err(|e| e.kind());
        assert_eq!(kind, Err(io::ErrorKind::ConnectionReset), "read {n} bytes, then {r:?}");
    }

    #[test]
    fn a_filter_refusing_the_early_bytes_ends_the_relay_on_its_side() {
        run(async {
            let w = Watch::new(std::time::Duration::from_secs(60));
            let mut p = Probe::new();
            p.fail_at = Some(2);
            let (mut a, mut b) = (Peer::quiet(), Peer::quiet());
            let end = relay(&mut a, &mut b, &mut Plain, Vec::new(), &mut p, b"garbage".to_vec(), 1024, &w).await;
            assert!(matches!(&end, PairEnd::Downstream(PumpEnd::Filter(e)) if e == "peer sent garbage"), "{end:?}");
        });
    }

    #[test]
    fn consume_frees_a_grown_buffer_once_used_up() {
        // (what, bytes in it, capacity, bytes consumed, capacity kept?)
        let table: &[(&str, usize, usize, usize, bool)] = &[
            ("S0S1S2 sent", 3073, 4096, 3073, false),
            ("a large request head served", 20_000, 32_768, 20_000, false),
            ("a partial message left", 1600, 2048, 1500, true),
            ("small buffer", 100, SETUP_KEEP, 100, true),
        ];
        for &(what, len, cap, consumed, kept) in table {
            let mut buf = Vec::with_capacity(cap);
            buf.resize(len, 7u8);
            consume(&mut buf, consumed);
            assert_eq!(buf.len(), len - consumed, "{what}");
            assert_eq!(buf.capacity() >= cap, kept, "{what}: capacity {}", buf.capacity());
        }
    }

    #[test]
    fn read_append_keeps_only_what_came_and_says_eof() {
        run(async {
            let mut r = Cursor::new(data(10_000));
            let mut buf = b"head".to_vec();
            assert_eq!(read_append(&mut r, &mut buf, 4096).await.unwrap(), 4096);
            assert_eq!(read_append(&mut r, &mut buf, 100_000).await.unwrap(), 10_000 - 4096);
            assert_eq!(&buf[..4], b"head");
            assert_eq!(&buf[4..], &data(10_000)[..]);
            assert_eq!(read_append(&mut r, &mut buf, 4096).await.unwrap(), 0);
            assert_eq!(buf.len(), 10_004);
        });
    }

    #[test]
    fn a_pump_stays_small() {
        // Every relay holds two: no buffer inside, nothing copied.
        let (mut r, mut w, mut f, c) = (Cursor::new(Vec::new()), Vec::new(), Plain, Cell::new(0));
        let p = pump(&mut r, &mut w, &mut f, 1024, Vec::new(), &c);
        assert!(std::mem::size_of_val(&p) <= 160, "{}", std::mem::size_of_val(&p));
    }
}
