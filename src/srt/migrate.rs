//! Moving a session to the core its client's packets now reach. A client
//! that changes address may land on another core (SO_REUSEPORT hashes the
//! 4-tuple); the packet names our socket id, whose bits name the core that
//! made the session. That core is asked first, then the others (a session
//! may have moved before). The holder hands over the session's record and a
//! duplicate of its upstream socket's descriptor, so the origin keeps
//! seeing the one 5-tuple it bound the session to; the receiving core then
//! holds the session and needs no cross-core hop per packet.

use super::recvbuf::RecvBuf;
use super::session::{self, End, Flow, Session};
use super::{id_core, listen, AddrKey, Srt};
use glommio::net::UdpSocket;
use srs_io::mesh::{self, Mesh};
use srs_protocols::srt::streamid::Mode;
use srs_protocols::stream_url::StreamUrl;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::rc::Rc;
use std::time::Instant;

pub enum SrtReq {
    /// Hand over the session with this proxy socket id, if held here.
    Take(u32),
}

pub enum SrtResp {
    Taken(Option<Box<Moved>>),
}

pub type SrtMesh = Mesh<SrtReq, SrtResp>;
pub type SrtBuilder = mesh::Builder<SrtReq, SrtResp>;

/// A session in transit between cores.
pub struct Moved {
    /// A duplicate of the upstream socket's descriptor, owned by the message.
    fd: RawFd,
    proxy_id: u32,
    origin_id: u32,
    client_id: u32,
    stream: StreamUrl,
    origin: String,
    origin_addr: SocketAddr,
    mode: Mode,
    answer: Box<[u8]>,
    counts: [u64; 4],
    started: Instant,
    hs_core: usize,
    moves: u32,
}

impl Drop for Moved {
    fn drop(&mut self) {
        if self.fd >= 0 {
            // SAFETY: the descriptor is ours (a dup) until taken by `adopt`.
            unsafe { libc::close(self.fd) };
        }
    }
}

pub fn builder(cores: usize) -> SrtBuilder {
    mesh::builder(cores)
}

/// Answers other cores' `Take` calls from this core's sessions.
pub fn install(srt: &Rc<Srt>) {
    let weak = Rc::downgrade(srt);
    srt.mesh.set_handler(move |req| match req {
        SrtReq::Take(id) => SrtResp::Taken(weak.upgrade().and_then(|srt| take(&srt, id))),
    });
}

fn take(srt: &Srt, id: u32) -> Option<Box<Moved>> {
    let s = srt.by_id.borrow().get(&id).cloned()?;
    if !s.may_move(srt.tick.get()) {
        return None;
    }
    // SAFETY: dup of a descriptor this core owns; the copy goes in `Moved`.
    let fd = unsafe { libc::dup(s.up.as_raw_fd()) };
    if fd < 0 {
        return None;
    }
    session::end(srt, &s, End::Moved, false);
    Some(Box::new(Moved {
        fd,
        proxy_id: s.proxy_id,
        origin_id: s.origin_id,
        client_id: s.client_id,
        stream: s.stream.clone(),
        origin: s.origin.clone(),
        origin_addr: s.origin_addr,
        mode: s.mode,
        answer: s.answer.clone(),
        counts: [
            s.to_origin.packets.get(),
            s.to_origin.bytes.get(),
            s.to_client.packets.get(),
            s.to_client.bytes.get(),
        ],
        started: s.started,
        hs_core: s.hs_core,
        moves: s.moves.get(),
    }))
}

fn adopt(srt: &Rc<Srt>, mut m: Moved, client: SocketAddr, from_core: usize, buf: RecvBuf) -> Rc<Session> {
    let fd = std::mem::replace(&mut m.fd, -1);
    // SAFETY: `fd` came from `dup` on the holder and is owned by nobody else now.
    let up = unsafe { UdpSocket::from_raw_fd(fd) };
    let flow = |p, b| {
        let f = Flow::default();
        f.packets.set(p);
        f.bytes.set(b);
        f
    };
    let s = Rc::new(Session {
        proxy_id: m.proxy_id,
        origin_id: m.origin_id,
        client_id: m.client_id,
        client: Cell::new(client),
        up: Rc::new(up),
        stream: m.stream.clone(),
        origin: std::mem::take(&mut m.origin),
        origin_addr: m.origin_addr,
        mode: m.mode,
        answer: std::mem::take(&mut m.answer),
        to_origin: flow(m.counts[0], m.counts[1]),
        to_client: flow(m.counts[2], m.counts[3]),
        last: Cell::new(srt.tick.get()),
        started: m.started,
        hs_core: m.hs_core,
        moves: Cell::new(m.moves + 1),
        moved_at: Cell::new(Some(srt.tick.get())),
        reader: RefCell::new(None),
        ended: Cell::new(false),
        _live: srt.core.hold_live(),
    });
    tracing::info!(stream = %s.stream, client = %client, from_core, core = srt.core.index, hs_core = s.hs_core,
        proxy_id = s.proxy_id, "srt session moved to the core its client now reaches");
    session::install(srt, s.clone(), buf);
    s
}

/// Finds the session `id` on another core, moves it here and forwards the
/// packet that showed its client's new address.
pub async fn fetch(srt: Rc<Srt>, id: u32, client: SocketAddr, mut packet: Vec<u8>) {
    let me = srt.core.index;
    let home = id_core(id);
    let order = std::iter::once(home).chain((0..srt.mesh.cores()).filter(move |&c| c != home)).filter(|&c| c != me);
    let mut got = None;
    for core in order {
        if let Ok(SrtResp::Taken(Some(m))) = srt.mesh.call(core, SrtReq::Take(id)).await {
            got = Some((m, core));
            break;
        }
    }
    srt.migrating.borrow_mut().remove(&AddrKey::of(client));
    let Some((m, from_core)) = got else {
        let h = srs_protocols::srt::SrtSocketId(id);
        return srt.drops.hit(super::drops::Drop::UnknownSocket, srt.tick.get(), me, client, &h);
    };
    let buf = match RecvBuf::new() {
        Ok(b) => b,
        Err(e) => {
            // Out of memory or mappings: the session is lost with its record.
            tracing::warn!(core = me, %client, error = %e, "srt: no receive buffer for a moved session");
            return;
        }
    };
    let s = adopt(&srt, *m, client, from_core, buf);
    let shutdown = srs_protocols::srt::packet::parse(&packet).is_ok_and(|h| h.is_shutdown());
    listen::forward(&srt, &s, &mut packet, shutdown).await;
}
