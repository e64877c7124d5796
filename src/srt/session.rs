//! A relayed SRT session: its ids, its upstream socket (connected to the
//! origin; one 5-tuple for the session's life, whichever core holds it),
//! its counters, and the origin→client path, one task per session reading
//! the upstream socket and writing out of the core's listening socket to
//! the client's current address.

use super::recvbuf::RecvBuf;
use super::{AddrKey, Srt};
use crate::metrics::{Blame, Proto, Role};
use glommio::net::UdpSocket;
use srs_protocols::srt::handshake::{self, HsType};
use srs_protocols::srt::packet;
use srs_protocols::srt::streamid::Mode;
use srs_protocols::stream_url::StreamUrl;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Instant;

/// Counters of one direction.
#[derive(Default)]
pub struct Flow {
    pub packets: Cell<u64>,
    pub bytes: Cell<u64>,
}

impl Flow {
    pub fn add(&self, n: usize) {
        self.packets.set(self.packets.get() + 1);
        self.bytes.set(self.bytes.get() + n as u64);
    }
}

pub struct Session {
    /// The id the client addresses (ours).
    pub proxy_id: u32,
    /// The origin's socket id, what client packets are rewritten to.
    pub origin_id: u32,
    /// The client's socket id (origin packets carry it unchanged).
    pub client_id: u32,
    pub client: Cell<SocketAddr>,
    pub up: Rc<UdpSocket>,
    pub stream: StreamUrl,
    pub origin: String,
    pub origin_addr: SocketAddr,
    pub mode: Mode,
    /// The origin's conclusion answer as the client got it, for repeats.
    pub answer: Box<[u8]>,
    pub to_origin: Flow,
    pub to_client: Flow,
    /// The tick of the client's last packet: a session is idle when its
    /// client is silent (an SRT caller sends ACKs or keepalives all the
    /// time; one silent this long is gone, as SRS's peer_idle_timeout says).
    pub last: Cell<u32>,
    pub started: Instant,
    /// The core that did the handshake, and how often the session moved.
    pub hs_core: usize,
    pub moves: Cell<u32>,
    /// The tick of the last address change or move: at most one a second
    /// (a forger who learnt the id cannot make the session flap per packet).
    pub moved_at: Cell<Option<u32>>,
    pub reader: RefCell<Option<glommio::Task<()>>>,
    pub ended: Cell<bool>,
    /// Counts the session as live on its core (the grace period waits).
    pub _live: crate::worker::LiveGuard,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    ClientShutdown,
    OriginShutdown,
    Idle,
    ProxyShutdown,
    /// The origin's socket failed (ICMP port unreachable: the origin is gone).
    OriginGone,
    /// Handed to another core (not an end; no line is logged).
    Moved,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            End::ClientShutdown => "client sent shutdown",
            End::OriginShutdown => "origin sent shutdown",
            End::Idle => "idle timeout",
            End::ProxyShutdown => "proxy shutting down",
            End::OriginGone => "origin unreachable",
            End::Moved => "moved to another core",
        }
    }
}

impl Session {
    /// Whether the client's address may change now (and marks it so).
    pub fn may_move(&self, tick: u32) -> bool {
        if self.moved_at.get().is_some_and(|t| tick.wrapping_sub(t) < 1) {
            return false;
        }
        self.moved_at.set(Some(tick));
        true
    }

    pub fn log_start(&self, core: usize) {
        tracing::info!(stream = %self.stream, client = %self.client.get(), origin = %self.origin,
            origin_addr = %self.origin_addr, core, mode = self.mode.as_str(),
            proxy_id = self.proxy_id, origin_id = self.origin_id, client_id = self.client_id,
            "srt session started");
    }
}

/// Adds `s` to this core's maps and starts its origin→client task with
/// `buf` (the session's receive buffer, kept for its life).
pub fn install(srt: &Rc<Srt>, s: Rc<Session>, buf: RecvBuf) {
    crate::metrics::local().udp_sessions(Proto::Srt, 1);
    srt.by_client.borrow_mut().insert((AddrKey::of(s.client.get()), s.client_id), s.proxy_id);
    srt.by_id.borrow_mut().insert(s.proxy_id, s.clone());
    let task = glommio::spawn_local(from_origin(srt.clone(), s.clone(), buf));
    *s.reader.borrow_mut() = Some(task);
}

/// Takes `s` out of this core's maps and stops its reader; logs the end
/// unless it moved. `from_reader`: called by the reader task itself, which
/// then returns on its own (it must not cancel itself).
pub fn end(srt: &Srt, s: &Session, why: End, from_reader: bool) {
    if s.ended.replace(true) {
        return;
    }
    let key = (AddrKey::of(s.client.get()), s.client_id);
    {
        let mut by_client = srt.by_client.borrow_mut();
        if by_client.get(&key) == Some(&s.proxy_id) {
            by_client.remove(&key);
        }
    }
    srt.by_id.borrow_mut().remove(&s.proxy_id);
    let m = crate::metrics::local();
    m.udp_sessions(Proto::Srt, -1);
    if let Some(t) = s.reader.borrow_mut().take() {
        if from_reader {
            drop(t.detach());
        } else {
            drop(t);
        }
    }
    if why == End::Moved {
        return;
    }
    if matches!(why, End::ProxyShutdown | End::Idle | End::OriginGone) {
        // Tell both ends now rather than let each time out.
        let mut b = [0u8; 20];
        let n = packet::write_shutdown(&mut b, srt.timestamp(), srs_protocols::srt::SrtSocketId(s.client_id));
        send_now(srt.sock.as_raw_fd(), &b[..n], Some(s.client.get()));
        let n = packet::write_shutdown(&mut b, srt.timestamp(), srs_protocols::srt::SrtSocketId(s.origin_id));
        send_now(s.up.as_raw_fd(), &b[..n], None);
    }
    let (to, from) = (&s.to_origin, &s.to_client);
    // Counted where the session ends (a moved session carries its counts).
    m.datagrams(Proto::Srt, "to_origin", to.packets.get());
    m.datagrams(Proto::Srt, "to_client", from.packets.get());
    let sink = m.bytes(Proto::Srt);
    sink[0].set(sink[0].get() + to.bytes.get());
    sink[1].set(sink[1].get() + from.bytes.get());
    let role = match s.mode {
        Mode::Publish => Some(Role::Publish),
        Mode::Request => Some(Role::Play),
        Mode::Bidirectional => None,
    };
    let blame = match why {
        End::ClientShutdown | End::OriginShutdown => Blame::None,
        End::Idle => Blame::Timeout,
        End::ProxyShutdown => Blame::Proxy,
        End::OriginGone => Blame::Origin,
        End::Moved => Blame::None,
    };
    m.ended(Proto::Srt, role, why.as_str(), blame);
    tracing::info!(stream = %s.stream, client = %s.client.get(), origin = %s.origin, core = srt.core.index,
        hs_core = s.hs_core, moves = s.moves.get(), mode = s.mode.as_str(),
        packets_in = to.packets.get(), bytes_in = to.bytes.get(),
        packets_out = from.packets.get(), bytes_out = from.bytes.get(),
        duration_ms = s.started.elapsed().as_millis() as u64, reason = why.as_str(),
        "srt session ended");
}

/// One datagram out now, without waiting (the session is going away; a
/// full socket buffer loses it, and SRT's own timeouts cover that).
fn send_now(fd: std::os::fd::RawFd, b: &[u8], to: Option<SocketAddr>) {
    use std::os::fd::FromRawFd;
    // SAFETY: the fd stays owned by its glommio socket; ManuallyDrop never closes it.
    let s = std::mem::ManuallyDrop::new(unsafe { std::net::UdpSocket::from_raw_fd(fd) });
    let _ = match to {
        Some(a) => s.send_to(b, a),
        None => s.send(b),
    };
}

/// Origin → client: each datagram out of the listening socket to the
/// client's address of the moment. Handshake answers the origin repeats get
/// our socket id, as the first one did.
async fn from_origin(srt: Rc<Srt>, s: Rc<Session>, mut buf: RecvBuf) {
    loop {
        // recv_from, not recv: glommio's recv asks the kernel for the peer's
        // address (getpeername) on every call; a connected socket hears
        // only from the origin anyway.
        let n = match s.up.recv_from(&mut buf).await {
            Ok((n, _)) => n,
            Err(_) => {
                end(&srt, &s, End::OriginGone, true);
                return;
            }
        };
        if s.ended.get() {
            return;
        }
        let d = &mut buf[..n];
        let Ok(h) = packet::parse(d) else {
            srt.drops.hit(super::drops::Drop::OriginGarbage, srt.tick.get(), srt.core.index, s.origin_addr, &"");
            continue;
        };
        if h.is_handshake() {
            if let Ok(hs) = handshake::Handshake::parse(d) {
                if hs.hs_type() == HsType::Conclusion {
                    handshake::set_socket_id(d, srs_protocols::srt::SrtSocketId(s.proxy_id));
                }
            }
        }
        s.to_client.add(n);
        let _ = srt.sock.send_to(d, s.client.get()).await;
        if h.is_shutdown() {
            end(&srt, &s, End::OriginShutdown, true);
            return;
        }
    }
}
