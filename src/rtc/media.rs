//! WebRTC media on this executor's share of PROXY_WEBRTC_SERVER (UDP,
//! SO_REUSEPORT): the demux by client address, one session per client with
//! its own connected socket toward the origin (the origin sees one 5-tuple
//! per client), replies sent back from the shared port, idle expiry, and a
//! session handed to another core when its client's new address lands there.
//!
//! Per relayed datagram: a share of one recvmmsg(2) (up to 16 datagrams per
//! call, straight into the core's buffers), one map lookup by integer key,
//! counters, one non-blocking send.
//! No allocation, no task, no cross-core call (`udp_demux`'s counting test);
//! a new address costs one claim task and one cross-core call. Sockets are
//! drained with plain non-blocking calls (`Io`) and the runtime is asked
//! only to wait for the next datagram (an io_uring poll), so glommio's
//! receive path, which takes a buffer as large as the caller's (64 KiB
//! here) per operation and copies out of it, is off the relay path.

use super::{lookup_ufrag, Moved, Record, Req, Resp, RtcMesh, Ufrag};
use crate::metrics::{Blame, Proto};
use crate::worker::Core;
use glommio::net::UdpSocket;
use srs_io::signal::LocalSignal;
use srs_lb::{LoadBalancer, OriginId};
use srs_protocols::stream_url::StreamUrl;
use srs_protocols::udp_demux::{Demux, DropReason, Route};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Sessions per core (each holds two descriptors for its origin socket).
pub const MAX_SESSIONS: usize = 8192;
/// New addresses being looked up at once; more are dropped (a flood of
/// made-up ufrags cannot queue unbounded work).
const MAX_CLAIMS: usize = 256;
/// A UDP datagram's largest payload: nothing is ever truncated.
const DATAGRAM: usize = 65536;
/// Drops are logged at most this often (per core), with the counts so far.
const DROP_LOG_EVERY: Duration = Duration::from_secs(1);

const IN_PKTS: usize = 0;
const IN_BYTES: usize = 1;
const OUT_PKTS: usize = 2;
const OUT_BYTES: usize = 3;

/// A socket twice over: glommio's, to wait on, and a duplicate of its
/// descriptor as a std socket (non-blocking) for the calls that move data.
struct Io {
    wait: UdpSocket,
    now: std::net::UdpSocket,
}

impl Io {
    fn new(wait: UdpSocket) -> std::io::Result<Io> {
        // SAFETY: the descriptor is `wait`'s open socket, alive for the call.
        let fd = unsafe { BorrowedFd::borrow_raw(wait.as_raw_fd()) }.try_clone_to_owned()?;
        let now = std::net::UdpSocket::from(fd);
        now.set_nonblocking(true)?;
        Ok(Io { wait, now })
    }

    /// Until a datagram is ready (it stays queued): an io_uring poll, with
    /// no receive tried first (the caller has just drained the socket).
    async fn readable(&self) -> std::io::Result<()> {
        glommio::net::readable(self.wait.as_raw_fd()).await
    }

    /// Sends at once, or, when the socket buffer is full, through the runtime.
    async fn send(&self, pkt: &[u8]) -> std::io::Result<usize> {
        match self.now.send(pkt) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.wait.send(pkt).await.map_err(std::io::Error::from)
            }
            r => r,
        }
    }

    /// Sends at once; `None` when the socket buffer is full.
    fn try_send(&self, pkt: &[u8]) -> Option<std::io::Result<usize>> {
        match self.now.send(pkt) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            r => Some(r),
        }
    }

    /// Sends at once; `None` when the socket buffer is full.
    fn try_send_to(&self, pkt: &[u8], to: SocketAddr) -> Option<std::io::Result<usize>> {
        match self.now.send_to(pkt, to) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            r => Some(r),
        }
    }

    /// Sends through the runtime (it waits for room).
    async fn send_to_later(&self, pkt: Vec<u8>, to: SocketAddr) -> std::io::Result<usize> {
        self.wait.send_to(&pkt, to).await.map_err(std::io::Error::from)
    }
}

/// How often the Redis records of live sessions are refreshed (their TTL is 120 s).
const REDIS_REFRESH: Duration = Duration::from_secs(30);

/// Datagrams relayed before the loop lets the core's other tasks run.
const BATCH: u32 = 64;

pub struct Session {
    ufrag: Ufrag,
    rec: Record,
    up: Io,
    client: Cell<SocketAddr>,
    /// Client->origin packets and bytes, origin->client packets and bytes.
    counts: [Cell<u64>; 4],
    /// Client packets at the last sweep, and when that count last moved.
    seen: Cell<(u64, Instant)>,
    end: Cell<Option<&'static str>>,
    stop: LocalSignal,
    started: Instant,
}

impl Session {
    fn add(&self, i: usize, n: usize) {
        self.counts[i].set(self.counts[i].get() + 1);
        self.counts[i + 1].set(self.counts[i + 1].get() + n as u64);
    }

    fn ending(&self, why: &'static str) {
        if self.end.get().is_none() {
            self.end.set(Some(why));
        }
        self.stop.fire();
    }
}

pub struct Media {
    core: Rc<Core>,
    sock: Io,
    mesh: Rc<RtcMesh>,
    demux: RefCell<Demux<Rc<Session>>>,
    by_ufrag: RefCell<HashMap<Ufrag, Rc<Session>>>,
    claims: Cell<usize>,
    last_drop_log: Cell<Option<Instant>>,
    send_errors: Cell<u64>,
    /// Every session's origin -> client datagram passes through this one
    /// buffer, borrowed only between a receive and its send (no await in
    /// between), so a session costs no buffer of its own.
    relay_buf: RefCell<Vec<u8>>,
}

impl Media {
    pub fn new(core: Rc<Core>, sock: UdpSocket, mesh: Rc<RtcMesh>) -> std::io::Result<Rc<Self>> {
        Ok(Rc::new(Media {
            core,
            sock: Io::new(sock)?,
            mesh,
            demux: RefCell::new(Demux::new(MAX_SESSIONS)),
            by_ufrag: RefCell::default(),
            claims: Cell::new(0),
            last_drop_log: Cell::new(None),
            send_errors: Cell::new(0),
            relay_buf: RefCell::new(vec![0u8; DATAGRAM]),
        }))
    }

    fn drop_packet(&self, why: DropReason, from: SocketAddr) {
        crate::metrics::local().dropped(Proto::WebRtc, why.name());
        let now = Instant::now();
        if self.last_drop_log.get().is_some_and(|t| now.duration_since(t) < DROP_LOG_EVERY) {
            return;
        }
        self.last_drop_log.set(Some(now));
        let d = self.demux.borrow();
        let counts: Vec<String> = DropReason::all()
            .filter(|w| d.drops()[w.index()] > 0)
            .map(|w| format!("{}={}", w.name(), d.drops()[w.index()]))
            .collect();
        tracing::warn!(
            core = self.core.index, %from, reason = why.name(), totals = %counts.join(", "),
            send_errors = self.send_errors.get(),
            "rtc: datagram dropped (client garbage or unknown peer; logged at most once a second)"
        );
    }

    /// Ends the session known by `ufrag` on this core, if it is here.
    pub fn close(&self, ufrag: &str, why: &'static str) {
        let s = self.by_ufrag.borrow().get(ufrag).cloned();
        if let Some(s) = s {
            s.ending(why);
        }
    }

    /// Hands the session over to another core: its upstream socket (a
    /// duplicate of the descriptor, so the origin keeps its 5-tuple), its
    /// record and counters. This core's copy ends as "moved".
    pub fn take(&self, ufrag: &str) -> Option<Box<Moved>> {
        // A session already ending (idle, deleted) is not handed over: its
        // end line and counts are this core's.
        if self.by_ufrag.borrow().get(ufrag).is_some_and(|s| s.end.get().is_some()) {
            return None;
        }
        let s = self.by_ufrag.borrow_mut().remove(ufrag)?;
        self.unmap(&s);
        // SAFETY: the descriptor is the session's open socket, alive while `s` is.
        let fd = s.up.now.try_clone().ok().map(OwnedFd::from);
        s.ending("moved");
        let counts = [0, 1, 2, 3].map(|i| s.counts[i].get());
        fd.map(|fd| Box::new(Moved { fd, started: s.started.elapsed(), counts }))
    }

    fn unmap(&self, s: &Rc<Session>) {
        let mut d = self.demux.borrow_mut();
        let addr = s.client.get();
        if let Some(held) = d.remove(addr) {
            if !Rc::ptr_eq(&held, s) {
                let _ = d.insert(addr, held);
            }
        }
    }

    /// A STUN check from a new address for a session this core holds: the
    /// client moved (ICE restart, NAT rebinding). Remap and keep it.
    fn remap(&self, s: &Rc<Session>, from: SocketAddr) -> bool {
        if s.client.get() == from {
            // Two checks from one new address raced through the lookup.
            return true;
        }
        self.unmap(s);
        if self.demux.borrow_mut().insert(from, s.clone()).is_err() {
            return false;
        }
        let old = s.client.replace(from);
        tracing::info!(core = self.core.index, ufrag = %s.ufrag, stream = %s.rec.stream, from = %old, to = %from, "rtc session client address changed");
        true
    }
}

/// The receive loop of this core's shared port, until shutdown.
pub async fn serve(m: Rc<Media>) {
    glommio::spawn_local(sweep(m.clone())).detach();
    let mut batch = Batch::new(RECV_BATCH);
    let mut burst = 0u32;
    'recv: loop {
        let got = match batch.recv(&m.sock.now) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) => {
                tracing::warn!(core = m.core.index, error = %e, "rtc: receive failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        for i in 0..got {
            let (pkt, from) = batch.get(i);
            match from {
                Some(from) => relay_in(&m, pkt, from).await,
                None => m.demux.borrow_mut().count(DropReason::NotWebRtc),
            }
            burst += 1;
            if burst >= BATCH {
                burst = 0;
                glommio::yield_if_needed().await;
                if m.core.stopping.is_fired() {
                    break 'recv;
                }
            }
        }
        if got == RECV_BATCH {
            continue; // more may be queued
        }
        // The queue was empty when asked: wait for the next datagram.
        burst = 0;
        let ready = futures_lite::future::or(async { Some(m.sock.readable().await) }, async {
            m.core.stopping.wait().await;
            None
        })
        .await;
        match ready {
            None => break,
            Some(Ok(())) => {}
            Some(Err(e)) => {
                tracing::warn!(core = m.core.index, error = %e, "rtc: waiting for datagrams failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    let all: Vec<Rc<Session>> = m.by_ufrag.borrow().values().cloned().collect();
    for s in all {
        s.ending("shutdown");
    }
    // Each session's task logs its end line; give them a moment (bounded).
    for _ in 0..100 {
        if m.by_ufrag.borrow().is_empty() {
            break;
        }
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
}

/// One datagram from a client: to its session, or identified, or dropped.
async fn relay_in(m: &Rc<Media>, pkt: &[u8], from: SocketAddr) {
    let n = pkt.len();
    let route = m.demux.borrow_mut().route(from, pkt);
    match route {
        Route::Session(s) => {
            s.add(IN_PKTS, n);
            // Never waits: the shared port's loop serves every session of
            // the core, so a datagram an origin socket cannot take now is
            // dropped (UDP's own answer to a full buffer), not waited for.
            match s.up.try_send(pkt) {
                Some(Ok(_)) => {}
                Some(Err(_)) => m.send_errors.set(m.send_errors.get() + 1),
                None => {
                    m.send_errors.set(m.send_errors.get() + 1);
                    crate::metrics::local().dropped(Proto::WebRtc, "origin socket full");
                }
            }
        }
        Route::Identify(user) => {
            let local = m.by_ufrag.borrow().get(user).cloned();
            match local {
                Some(s) => {
                    if m.remap(&s, from) {
                        s.add(IN_PKTS, n);
                        let _ = s.up.try_send(pkt);
                    } else {
                        m.drop_packet(DropReason::Full, from);
                    }
                }
                None if m.claims.get() >= MAX_CLAIMS => {
                    m.demux.borrow_mut().count(DropReason::Full);
                    m.drop_packet(DropReason::Full, from);
                }
                None => {
                    m.claims.set(m.claims.get() + 1);
                    glommio::spawn_local(claim(m.clone(), user.to_string(), from, pkt.to_vec())).detach();
                }
            }
        }
        Route::Drop(why) => m.drop_packet(why, from),
    }
}

/// Datagrams taken from the shared port per system call.
const RECV_BATCH: usize = 16;

/// recvmmsg(2) state: `n` receive buffers of a whole datagram each, their
/// source addresses, and the headers pointing at both. Built once per core;
/// the heap blocks never move, so the pointers stay valid.
struct Batch {
    bufs: Vec<Vec<u8>>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl Batch {
    fn new(n: usize) -> Batch {
        let mut bufs: Vec<Vec<u8>> = (0..n).map(|_| vec![0u8; DATAGRAM]).collect();
        // SAFETY: all-zero is a valid sockaddr_storage and mmsghdr.
        let mut addrs: Vec<libc::sockaddr_storage> = (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
        let mut iovs: Vec<libc::iovec> =
            bufs.iter_mut().map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() }).collect();
        let mut hdrs: Vec<libc::mmsghdr> = (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
        for i in 0..n {
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
        }
        Batch { bufs, addrs, iovs, hdrs }
    }

    /// What is queued, at most `n` datagrams, without waiting.
    fn recv(&mut self, sock: &std::net::UdpSocket) -> std::io::Result<usize> {
        debug_assert_eq!(self.iovs.len(), self.bufs.len());
        for h in &mut self.hdrs {
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: every header points at this batch's own buffers and
        // address slots, sized as the header says.
        let r = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(r as usize)
        }
    }

    /// Datagram `i` of the last receive and where it came from.
    fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        let len = (self.hdrs[i].msg_len as usize).min(DATAGRAM);
        (&self.bufs[i][..len], sockaddr(&self.addrs[i]))
    }
}

fn sockaddr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::new(ip.into(), u16::from_be(a.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// A STUN check from a new address: find the session by its USERNAME (over
/// the mesh), bring it here, forward the check.
async fn claim(m: Rc<Media>, user: String, from: SocketAddr, pkt: Vec<u8>) {
    let me = m.core.index;
    let mut found = lookup_ufrag(&m.mesh, &user, me).await;
    if matches!(found, Ok(None)) {
        // Signalled through another proxy: its record is in Redis. It is
        // stored with this proxy's owning core, so the session can move
        // between this proxy's cores as any other.
        if let Some(rec) = shared_record(&m, &user).await {
            let owner = m.mesh.owner(user.as_str());
            if let Ok(Resp::Stored(true)) = m.mesh.call(owner, Req::Store { ufrag: user.clone(), rec }).await {
                found = lookup_ufrag(&m.mesh, &user, me).await;
            }
        }
    }
    m.claims.set(m.claims.get() - 1);
    let (rec, before) = match found {
        Ok(Some(x)) => x,
        Ok(None) => {
            m.demux.borrow_mut().count(DropReason::UnknownUfrag);
            m.drop_packet(DropReason::UnknownUfrag, from);
            return;
        }
        Err(e) => {
            tracing::warn!(core = me, %from, ufrag = %user, error = %e, "rtc: ufrag lookup failed (our bug or shutting down)");
            return;
        }
    };
    let ufrag = Ufrag(user.as_str().into());
    // Another check from this client got here first.
    let here = m.by_ufrag.borrow().get(&ufrag).cloned();
    if let Some(s) = here {
        if m.remap(&s, from) {
            let _ = s.up.send(&pkt).await;
        }
        return;
    }
    let mut moved = None;
    if let Some(core) = before {
        if let Ok(Resp::Taken(t)) = m.mesh.call(core, Req::Take { ufrag: user.clone() }).await {
            moved = t.map(|t| (t, core));
        }
    }
    let moved_from = moved.as_ref().map(|(_, c)| *c);
    let (up, started, counts) = match moved {
        Some((t, _)) => {
            // SAFETY: `t.fd` is an open UDP socket this call now owns alone.
            match Io::new(unsafe { UdpSocket::from_raw_fd(t.fd.into_raw_fd()) }) {
                Ok(up) => (up, Instant::now() - t.started, t.counts),
                Err(e) => {
                    tracing::warn!(core = me, client = %from, stream = %rec.stream, error = %e, "rtc: cannot take over the origin socket (out of descriptors?)");
                    release(&m, &user);
                    return;
                }
            }
        }
        None => match upstream_socket(rec.media) {
            Ok(up) => (up, Instant::now(), [0; 4]),
            Err(e) => {
                tracing::warn!(core = me, client = %from, stream = %rec.stream, origin = %rec.origin, media = %rec.media, error = %e, "rtc: cannot open a socket toward the origin");
                release(&m, &user);
                return;
            }
        },
    };
    let s = Rc::new(Session {
        ufrag: ufrag.clone(),
        rec,
        up,
        client: Cell::new(from),
        counts: counts.map(Cell::new),
        seen: Cell::new((counts[IN_PKTS], Instant::now())),
        end: Cell::new(None),
        stop: LocalSignal::new(),
        started,
    });
    if m.demux.borrow_mut().insert(from, s.clone()).is_err() {
        m.drop_packet(DropReason::Full, from);
        release(&m, &user);
        return;
    }
    m.by_ufrag.borrow_mut().insert(ufrag, s.clone());
    crate::metrics::local().udp_sessions(Proto::WebRtc, 1);
    let how = moved_from.map_or_else(|| "new".to_string(), |c| format!("moved from core {c}"));
    tracing::info!(
        core = me, client = %from, stream = %s.rec.stream, origin = %s.rec.origin, media = %s.rec.media,
        ufrag = %s.ufrag, how = %how, "rtc session start"
    );
    glommio::spawn_local(upstream(m.clone(), s.clone())).detach();
    s.add(IN_PKTS, pkt.len());
    let _ = s.up.send(&pkt).await;
}

/// The record another proxy shared for `ufrag` (Redis mode), as this
/// proxy's record: the origin it names (or the stream's pin, for a record
/// an SRS Go proxy wrote) and its media address (or the origin's `rtc`).
async fn shared_record(m: &Rc<Media>, ufrag: &str) -> Option<Record> {
    let shared = match m.core.lb.rtc_lookup(ufrag).await {
        Ok(r) => r?,
        Err(e) => {
            tracing::warn!(core = m.core.index, ufrag, error = %e, "rtc: ufrag lookup in redis failed");
            return None;
        }
    };
    let stream = StreamUrl::new_unchecked(shared.stream_url);
    let origin = match shared.origin.map(OriginId::new).and_then(|id| m.core.lb.origin(&id)) {
        Some(o) => o,
        None => m.core.lb.pick(&stream).await.ok()?.0,
    };
    let media = match shared.media.and_then(|a| a.parse().ok()) {
        Some(a) => a,
        None => origin.rtc_addr().ok()??,
    };
    let role = match shared.role.as_deref() {
        Some("publish") => Some(crate::metrics::Role::Publish),
        Some("play") => Some(crate::metrics::Role::Play),
        _ => None,
    };
    tracing::info!(core = m.core.index, ufrag, stream = %stream, origin = %origin.id(), %media,
        "rtc: session signalled through another proxy, found in redis");
    Some(Record { stream, origin: origin.id(), media, role })
}

fn release(m: &Rc<Media>, ufrag: &str) {
    let mesh = m.mesh.clone();
    let req = Req::Release { ufrag: ufrag.to_string(), core: m.core.index };
    let owner = mesh.owner(ufrag);
    glommio::spawn_local(async move {
        let _ = mesh.call(owner, req).await;
    })
    .detach();
}

/// A connected socket toward the origin's media address, on an ephemeral port.
fn upstream_socket(to: SocketAddr) -> std::io::Result<Io> {
    Io::new(srs_io::udp::connected(to)?)
}

/// Origin -> client for one session, until it ends; then it is unmapped,
/// logged and released (unless it moved to another core).
async fn upstream(m: Rc<Media>, s: Rc<Session>) {
    futures_lite::future::or(
        async {
            let mut burst = 0u32;
            loop {
                // Wait first: an origin socket carries one client's media, a
                // datagram now and then, so a receive tried before waiting
                // would mostly find nothing (one system call wasted per
                // datagram); the poll answers at once when one is queued.
                match s.up.readable().await {
                    Ok(()) => {}
                    // An ICMP error from the origin wakes the poll; the receive reports it.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                    Err(e) => {
                        tracing::warn!(core = m.core.index, stream = %s.rec.stream, origin = %s.rec.origin, error = %e, "rtc: origin socket failed");
                        s.ending("origin socket error");
                        return;
                    }
                }
                let got = {
                    let mut buf = m.relay_buf.borrow_mut();
                    match s.up.now.recv(&mut buf) {
                        Ok(n) => match m.sock.try_send_to(&buf[..n], s.client.get()) {
                            Some(sent) => Ok((n, sent.is_ok(), None)),
                            // The client's side is full: this datagram waits in a copy of its own.
                            None => Ok((n, true, Some(buf[..n].to_vec()))),
                        },
                        Err(e) => Err(e),
                    }
                };
                match got {
                    Ok((n, sent, later)) => {
                        s.add(OUT_PKTS, n);
                        let sent = match later {
                            Some(pkt) => m.sock.send_to_later(pkt, s.client.get()).await.is_ok(),
                            None => sent,
                        };
                        if !sent {
                            m.send_errors.set(m.send_errors.get() + 1);
                        }
                        burst += 1;
                        if burst >= BATCH {
                            burst = 0;
                            glommio::yield_if_needed().await;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => burst = 0,
                    // ICMP unreachable from the origin, one per send: keep going.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                    Err(e) => {
                        tracing::warn!(core = m.core.index, stream = %s.rec.stream, origin = %s.rec.origin, error = %e, "rtc: origin socket failed");
                        s.ending("origin socket error");
                        return;
                    }
                }
            }
        },
        s.stop.wait(),
    )
    .await;
    let why = s.end.get().unwrap_or("ended");
    let metrics = crate::metrics::local();
    metrics.udp_sessions(Proto::WebRtc, -1);
    if why == "moved" {
        tracing::info!(core = m.core.index, ufrag = %s.ufrag, stream = %s.rec.stream, "rtc session handed to another core");
        return;
    }
    {
        let mut by = m.by_ufrag.borrow_mut();
        if by.get(&s.ufrag).is_some_and(|h| Rc::ptr_eq(h, &s)) {
            by.remove(&s.ufrag);
        }
    }
    m.unmap(&s);
    let c = |i: usize| s.counts[i].get();
    // Counted where the session ends (a moved session carries its counts).
    metrics.datagrams(Proto::WebRtc, "to_origin", c(IN_PKTS));
    metrics.datagrams(Proto::WebRtc, "to_client", c(OUT_PKTS));
    let sink = metrics.bytes(Proto::WebRtc);
    sink[0].set(sink[0].get() + c(IN_BYTES));
    sink[1].set(sink[1].get() + c(OUT_BYTES));
    let blame = match why {
        "idle" => Blame::Timeout,
        "origin socket error" => Blame::Origin,
        "shutdown" => Blame::Proxy,
        _ => Blame::None,
    };
    metrics.ended(Proto::WebRtc, s.rec.role, why, blame);
    tracing::info!(
        core = m.core.index, client = %s.client.get(), stream = %s.rec.stream, origin = %s.rec.origin,
        ufrag = %s.ufrag, pkts_in = c(IN_PKTS), bytes_in = c(IN_BYTES), pkts_out = c(OUT_PKTS), bytes_out = c(OUT_BYTES),
        secs = s.started.elapsed().as_secs_f32(), reason = why, "rtc session end"
    );
    if why != "deleted" {
        release(&m, &s.ufrag.0);
    }
}

/// Ends sessions whose client has been silent for the session timeout.
async fn sweep(m: Rc<Media>) {
    let timeout = m.core.cfg.webrtc_session_timeout;
    let every = (timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut refreshed = Instant::now();
    while !m.core.stopping.is_fired() {
        glommio::timer::sleep(every).await;
        let now = Instant::now();
        let all: Vec<Rc<Session>> = m.by_ufrag.borrow().values().cloned().collect();
        if now.duration_since(refreshed) >= REDIS_REFRESH && matches!(*m.core.lb, crate::balancer::Balancer::Redis(_)) {
            // Redis records of live sessions expire in 120 s: refresh them
            // (GETEX) well before, so another proxy can still find them.
            refreshed = now;
            let ufrags: Vec<String> = all.iter().map(|s| s.ufrag.0.to_string()).collect();
            let m2 = m.clone();
            glommio::spawn_local(async move {
                for u in ufrags {
                    let _ = m2.core.lb.rtc_lookup(&u).await;
                }
            })
            .detach();
        }
        for s in all {
            let pkts = s.counts[IN_PKTS].get();
            let (seen, at) = s.seen.get();
            if pkts != seen {
                s.seen.set((pkts, now));
            } else if now.duration_since(at) >= timeout {
                s.ending("idle");
            }
        }
    }
}
