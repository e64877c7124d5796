//! One executor's world: its configuration, its balancer handle, its live
//! connection count, and the accept loop every TCP listener shares.

use crate::balancer::Balancer;
use glommio::net::{TcpListener, TcpStream};
use srs_io::signal::LocalSignal;
use srs_io::Shutdown;
use srs_proxy::config::Config;
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

/// A connection's id: the core that accepted it and a per-core sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    pub core: usize,
    pub seq: u64,
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.core, self.seq)
    }
}

pub struct Core {
    pub index: usize,
    pub cfg: Arc<Config>,
    pub lb: Rc<Balancer>,
    /// Fired on this core once shutdown is triggered (one watcher per core).
    pub stopping: Rc<LocalSignal>,
    /// PROXY_STATIC_FILES, canonical, when the folder exists.
    pub static_root: Option<std::path::PathBuf>,
    live: Cell<usize>,
    next: Cell<u64>,
}

impl Core {
    pub fn new(
        index: usize,
        cfg: Arc<Config>,
        lb: Rc<Balancer>,
        shutdown: Shutdown,
        static_root: Option<std::path::PathBuf>,
    ) -> Rc<Self> {
        let stopping = shutdown.watch();
        Rc::new(Core { index, cfg, lb, stopping, static_root, live: Cell::new(0), next: Cell::new(1) })
    }

    pub fn live(&self) -> usize {
        self.live.get()
    }

    fn conn_id(&self) -> ConnId {
        let seq = self.next.get();
        self.next.set(seq + 1);
        ConnId { core: self.index, seq }
    }
}

/// Counts a live connection for as long as it is held.
pub struct LiveGuard(Rc<Core>);

impl Core {
    /// Counts a session (an accepted connection, or an SRT session) as live
    /// while the guard is held, so the grace period at shutdown waits for it.
    pub fn hold_live(self: &Rc<Self>) -> LiveGuard {
        self.live.set(self.live.get() + 1);
        LiveGuard(self.clone())
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.set(self.0.live.get() - 1);
    }
}

/// Holds a value for as long as it is polled; never completes.
struct Held<T>(T);

impl<T: Unpin> Future for Held<T> {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Pending
    }
}

/// Accepts on `listener` until shutdown, running `handle` for each
/// connection in its own task.
pub async fn accept_loop<H, F>(core: Rc<Core>, listener: TcpListener, what: &'static str, handle: H)
where
    H: Fn(Rc<Core>, ConnId, TcpStream, SocketAddr) -> F + 'static,
    F: Future<Output = ()> + 'static,
{
    loop {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            core.stopping.wait().await;
            None
        })
        .await;
        let stream = match accepted {
            None => break,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                // EMFILE and friends: back off rather than spin.
                tracing::warn!(listener = what, core = core.index, error = %e, "accept failed");
                glommio::timer::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let peer = match stream.peer_addr() {
            Ok(p) => p,
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        crate::metrics::local().accepted(what);
        let id = core.conn_id();
        let guard = core.hold_live();
        // The session future goes into the task as is (an `Or` stores both
        // sides in place): wrapping it in an async block would store it, and
        // the socket it was made from, twice.
        let session = handle(core.clone(), id, stream, peer);
        glommio::spawn_local(futures_lite::future::or(session, Held(guard))).detach();
    }
    tracing::debug!(listener = what, core = core.index, "stopped accepting");
}
