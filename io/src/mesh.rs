//! Cross-core calls over a glommio channel mesh. State that must be one per
//! process (a stream's pin) is owned by one core; other cores ask that core
//! with `call` and await its reply. Each core answers calls with a plain
//! synchronous handler over its own state, so there are no locks anywhere.

use glommio::channels::channel_mesh::{Full, MeshBuilder, Senders};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// What travels between cores.
pub enum Envelope<Req, Resp> {
    Call { id: u64, req: Req },
    Reply { id: u64, resp: Resp },
}

pub type Builder<Req, Resp> = MeshBuilder<Envelope<Req, Resp>, Full>;

/// Creates the mesh for `cores` executors; clone it into each of them.
pub fn builder<Req: Send + 'static, Resp: Send + 'static>(cores: usize) -> Builder<Req, Resp> {
    MeshBuilder::full(cores, 1024)
}

#[derive(Debug)]
pub enum MeshError {
    /// The peer's channel closed (it is shutting down).
    Closed,
    /// No handler was installed on this core.
    NoHandler,
}

impl fmt::Display for MeshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MeshError::Closed => f.write_str("cross-core channel closed"),
            MeshError::NoHandler => f.write_str("no handler on this core (bug)"),
        }
    }
}

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    closed: bool,
}

type SlotRef<T> = Rc<RefCell<Slot<T>>>;

struct Wait<T>(SlotRef<T>);

impl<T> Future for Wait<T> {
    type Output = Result<T, MeshError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.0.borrow_mut();
        if let Some(v) = s.value.take() {
            return Poll::Ready(Ok(v));
        }
        if s.closed {
            return Poll::Ready(Err(MeshError::Closed));
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

type Handler<Req, Resp> = Rc<dyn Fn(Req) -> Resp>;

/// One core's end of the mesh.
pub struct Mesh<Req: Send + 'static, Resp: Send + 'static> {
    me: usize,
    cores: usize,
    senders: Option<Senders<Envelope<Req, Resp>>>,
    pending: RefCell<HashMap<u64, SlotRef<Resp>>>,
    next_id: Cell<u64>,
    handler: RefCell<Option<Handler<Req, Resp>>>,
}

impl<Req: Send + 'static, Resp: Send + 'static> Mesh<Req, Resp> {
    /// Joins the mesh (waits for every core to join) and starts serving
    /// calls from the other cores in background tasks.
    pub async fn join(me: usize, builder: Builder<Req, Resp>) -> Result<Rc<Self>, MeshError> {
        let cores = builder.nr_peers();
        if cores <= 1 {
            return Ok(Rc::new(Self::new(me, cores, None)));
        }
        let (senders, mut receivers) = builder.join().await.map_err(|_| MeshError::Closed)?;
        let mesh = Rc::new(Self::new(senders.peer_id(), cores, Some(senders)));
        for (peer, rx) in receivers.streams() {
            let mesh = Rc::downgrade(&mesh);
            glommio::spawn_local(async move {
                while let Some(env) = rx.recv().await {
                    let Some(mesh) = mesh.upgrade() else { break };
                    match env {
                        Envelope::Call { id, req } => {
                            let resp = match mesh.handler.borrow().clone() {
                                Some(h) => h(req),
                                None => continue,
                            };
                            if let Some(s) = &mesh.senders {
                                let _ = s.send_to(peer, Envelope::Reply { id, resp }).await;
                            }
                        }
                        Envelope::Reply { id, resp } => {
                            let slot = mesh.pending.borrow_mut().remove(&id);
                            if let Some(slot) = slot {
                                let mut s = slot.borrow_mut();
                                s.value = Some(resp);
                                if let Some(w) = s.waker.take() {
                                    w.wake();
                                }
                            }
                        }
                    }
                }
            })
            .detach();
        }
        Ok(mesh)
    }

    fn new(me: usize, cores: usize, senders: Option<Senders<Envelope<Req, Resp>>>) -> Self {
        Mesh {
            me,
            cores: cores.max(1),
            senders,
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(1),
            handler: RefCell::new(None),
        }
    }

    /// Installs the function that answers calls on this core.
    pub fn set_handler(&self, h: impl Fn(Req) -> Resp + 'static) {
        *self.handler.borrow_mut() = Some(Rc::new(h));
    }

    pub fn me(&self) -> usize {
        self.me
    }

    pub fn cores(&self) -> usize {
        self.cores
    }

    /// Asks core `peer` (possibly this one) and awaits its answer.
    pub async fn call(&self, peer: usize, req: Req) -> Result<Resp, MeshError> {
        if peer == self.me || self.senders.is_none() {
            let h = self.handler.borrow().clone().ok_or(MeshError::NoHandler)?;
            return Ok(h(req));
        }
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let slot = Rc::new(RefCell::new(Slot { value: None, waker: None, closed: false }));
        self.pending.borrow_mut().insert(id, slot.clone());
        let senders = self.senders.as_ref().ok_or(MeshError::Closed)?;
        if senders.send_to(peer, Envelope::Call { id, req }).await.is_err() {
            self.pending.borrow_mut().remove(&id);
            return Err(MeshError::Closed);
        }
        let res = Wait(slot.clone()).await;
        if res.is_err() {
            self.pending.borrow_mut().remove(&id);
        }
        res
    }

    /// Calls every core (this one included) with the request `make` builds
    /// for it, and returns the answers in core order.
    pub async fn call_all(&self, make: impl Fn() -> Req) -> Vec<Result<Resp, MeshError>> {
        let mut out = Vec::with_capacity(self.cores);
        for peer in 0..self.cores {
            out.push(self.call(peer, make()).await);
        }
        out
    }

    /// The core that owns `key`: a stable hash, the same on every core.
    pub fn owner<K: std::hash::Hash + ?Sized>(&self, key: &K) -> usize {
        owner_of(key, self.cores)
    }
}

/// Owner of `key` among `cores` (std's SipHash with fixed keys: the same
/// answer on every thread of the process).
pub fn owner_of<K: std::hash::Hash + ?Sized>(key: &K, cores: usize) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault};
    let h = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(key);
    (h % cores.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::{LocalExecutorBuilder, Placement};

    /// Two executors: each owns the keys that hash to it, answers calls with
    /// its own state, and `call_all` reaches both.
    #[test]
    fn calls_cross_cores_and_each_core_answers_with_its_own_state() {
        let b = builder::<u64, (usize, u64)>(2);
        // Both cores stay up until both are done: a core that left could not
        // answer the other's calls.
        let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let b = b.clone();
                let done = done.clone();
                LocalExecutorBuilder::new(Placement::Unbound)
                    .spawn(move || async move {
                        let m = Mesh::join(i, b).await.unwrap();
                        let me = m.me();
                        m.set_handler(move |x: u64| (me, x * 10));
                        // Let the other core install its handler before calling it.
                        glommio::timer::sleep(std::time::Duration::from_millis(100)).await;
                        let other = 1 - me;
                        assert_eq!(m.call(other, 7).await.unwrap(), (other, 70));
                        assert_eq!(m.call(me, 3).await.unwrap(), (me, 30));
                        let all: Vec<_> = m.call_all(|| 1).await.into_iter().map(|r| r.unwrap()).collect();
                        assert_eq!(all, vec![(0, 10), (1, 10)]);
                        done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        while done.load(std::sync::atomic::Ordering::SeqCst) < 2 {
                            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
                        }
                        // Ownership is the same answer on every core.
                        (m.owner("__defaultVhost__/live/a"), m.owner("__defaultVhost__/live/b"))
                    })
                    .unwrap()
            })
            .collect();
        let owners: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(owners[0], owners[1]);
        assert_eq!(owners[0].0, owner_of("__defaultVhost__/live/a", 2));
    }

    #[test]
    fn one_core_answers_its_own_calls() {
        glommio::LocalExecutor::default().run(async {
            let m = Mesh::join(0, builder::<u32, u32>(1)).await.unwrap();
            assert!(matches!(m.call(0, 1).await, Err(MeshError::NoHandler)));
            m.set_handler(|x| x + 1);
            assert_eq!(m.call(0, 41).await.unwrap(), 42);
            assert_eq!(m.owner("anything"), 0);
        });
    }
}
