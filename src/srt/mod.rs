//! The SRT proxy. Owns, per executor: the SRT listening socket (UDP,
//! `PROXY_SRT_SERVER`, SO_REUSEPORT), the sessions whose clients' packets
//! land on this core, the handshakes under way toward origins, and the drop
//! counters. The proxy answers inductions itself with a SYN cookie, replays
//! a verified conclusion to the origin the balancer picks (by the stream
//! id's `h=` and `r=`), then relays datagrams both ways, rewriting only the
//! destination socket id of the client's packets and the socket id the
//! origin's conclusion answer announces (the client addresses the proxy's
//! own id, which names the core that made it).
//!
//! Modules: [`listen`] the per-core receive loop and client→origin path,
//! [`connect`] the handshake toward the origin, [`session`] a relayed
//! session and the origin→client path, [`migrate`] moving a session to the
//! core its client's packets now reach, [`drops`] counters of what is
//! dropped and why, [`recvbuf`] a session's receive buffer.

mod connect;
mod drops;
mod listen;
mod migrate;
mod recvbuf;
mod session;

use crate::worker::Core;
use glommio::net::UdpSocket;
use srs_protocols::srt::cookie::CookieKey;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub use migrate::{builder, SrtBuilder};

/// Largest UDP payload: no datagram is ever truncated.
pub const MAX_DATAGRAM: usize = 65536;
/// Overall time to get the origin's conclusion answer. Under libsrt's
/// default connect timeout (3 s), so the client hears the rejection.
pub const ORIGIN_HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(2500);
/// Handshake retransmission toward the origin, as libsrt callers do.
pub const ORIGIN_RETRANSMIT: Duration = Duration::from_millis(250);
/// Bounds per core.
pub const MAX_SESSIONS: usize = 20_000;
pub const MAX_PENDING: usize = 2_000;
pub const MAX_MIGRATING: usize = 1_000;
/// Migrations a core starts per second at most (each asks other cores).
pub const MAX_MIGRATIONS_PER_SEC: u32 = 2_000;

/// A client address as an integer map key (never a formatted string).
pub use srs_protocols::udp_demux::AddrKey;

/// A caller: its address and its own socket id.
pub type ClientKey = (AddrKey, u32);

/// Proxy-side socket ids: bits 20..30 the core that made it, bits 0..20 a
/// per-core sequence; bits 30 (libsrt's group flag) and 31 stay clear.
const SEQ_BITS: u32 = 20;
const SEQ_MASK: u32 = (1 << SEQ_BITS) - 1;

pub fn id_core(id: u32) -> usize {
    ((id >> SEQ_BITS) & 0x3ff) as usize
}

/// The per-process secret of the SYN cookies (one for every core, so a
/// conclusion is checked whichever core it reaches).
fn cookie_key() -> Arc<CookieKey> {
    static KEY: OnceLock<Arc<CookieKey>> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut secret = [0u8; 32];
        // SAFETY: getrandom writes at most `len` bytes into the buffer.
        let n = unsafe { libc::getrandom(secret.as_mut_ptr().cast(), secret.len(), 0) };
        if n != secret.len() as isize {
            // Never the case on Linux ≥ 3.17; a weaker secret beats none.
            let mut rng = fastrand::Rng::new();
            rng.fill(&mut secret);
        }
        Arc::new(CookieKey::new(secret))
    })
    .clone()
}

/// One core's SRT state.
pub struct Srt {
    pub core: Rc<Core>,
    pub sock: Rc<UdpSocket>,
    pub key: Arc<CookieKey>,
    pub mesh: Rc<migrate::SrtMesh>,
    /// Established sessions by proxy socket id: what every packet after the
    /// handshake names, so one address may carry several sessions (libsrt
    /// multiplexes sockets over one UDP port).
    pub by_id: RefCell<HashMap<u32, Rc<session::Session>>>,
    /// Proxy socket id by the client's current address and socket id, for
    /// repeated conclusions.
    pub by_client: RefCell<HashMap<ClientKey, u32>>,
    /// Clients whose conclusion is being replayed to an origin.
    pub pending: RefCell<HashSet<ClientKey>>,
    /// Addresses whose session is being fetched from another core.
    pub migrating: RefCell<HashSet<AddrKey>>,
    pub drops: drops::Drops,
    /// Migrations started this tick: (tick, count), bounded per second.
    pub migrations: Cell<(u32, u32)>,
    /// Seconds since start, advanced by the sweeper: the per-packet
    /// "last seen" mark without a clock read per packet.
    pub tick: Cell<u32>,
    pub epoch: Instant,
}

impl Srt {
    /// A fresh proxy socket id of this core, not in use here. Random, not
    /// sequential: a packet naming a live id from a new address moves the
    /// session there, so ids should not be guessable from one another.
    fn new_id(&self) -> u32 {
        let core = (self.core.index as u32 & 0x3ff) << SEQ_BITS;
        loop {
            let id = core | fastrand::u32(1..=SEQ_MASK);
            if !self.by_id.borrow().contains_key(&id) {
                return id;
            }
        }
    }

    /// Microseconds since start, the timestamp of packets we write.
    fn timestamp(&self) -> u32 {
        self.epoch.elapsed().as_micros() as u32
    }

    fn idle_ticks(&self) -> u32 {
        self.core.cfg.srt_idle_timeout.as_secs().max(1) as u32
    }
}

/// The listening socket's receive buffer, asked for.
const LISTEN_RCVBUF: libc::c_int = 4 << 20;

fn set_rcvbuf(sock: &UdpSocket, bytes: libc::c_int) {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt on a descriptor we own, with a c_int option value.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "srt: cannot set SO_RCVBUF");
    }
}

/// Checks that `PROXY_SRT_SERVER` is free (see [`srs_io::udp::probe`]).
pub fn probe(cfg: &srs_proxy::config::Config) -> Result<(), String> {
    srs_io::udp::probe("PROXY_SRT_SERVER", cfg.srt_server.0)
}

/// Binds this executor's SRT socket and joins the SRT mesh, then runs the
/// server until shutdown in the returned task.
pub async fn start(core: Rc<Core>, builder: SrtBuilder) -> Result<glommio::Task<()>, String> {
    let addr = core.cfg.srt_server.0;
    let sock = UdpSocket::bind(addr).map_err(|e| format!("PROXY_SRT_SERVER={addr}: cannot listen: {e}"))?;
    // One socket per core takes every client's packets: a deeper queue
    // than the default rides out a moment the core is busy elsewhere
    // (the kernel caps it at net.core.rmem_max).
    set_rcvbuf(&sock, LISTEN_RCVBUF);
    let mesh = srs_io::mesh::Mesh::join(core.index, builder)
        .await
        .map_err(|e| format!("executor {}: cannot join the SRT mesh: {e}", core.index))?;
    let srt = Rc::new(Srt {
        core,
        sock: Rc::new(sock),
        key: cookie_key(),
        mesh,
        by_id: RefCell::default(),
        by_client: RefCell::default(),
        pending: RefCell::default(),
        migrating: RefCell::default(),
        drops: drops::Drops::default(),
        migrations: Cell::new((0, 0)),
        tick: Cell::new(0),
        epoch: Instant::now(),
    });
    migrate::install(&srt);
    Ok(glommio::spawn_local(listen::run(srt)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addr_keys_tell_ports_and_families_apart() {
        let k = |s: &str| AddrKey::of(s.parse().unwrap());
        assert_eq!(k("127.0.0.1:5000"), k("127.0.0.1:5000"));
        assert_ne!(k("127.0.0.1:5000"), k("127.0.0.1:5001"));
        assert_ne!(k("127.0.0.1:5000"), k("127.0.0.2:5000"));
        assert_ne!(k("[::1]:5000"), k("127.0.0.1:5000"));
        // An IPv4 client and its IPv4-mapped IPv6 form are one client.
        assert_eq!(k("[::ffff:127.0.0.1]:5000"), k("127.0.0.1:5000"));
    }

    #[test]
    fn proxy_ids_name_their_core_and_keep_the_group_and_sign_bits_clear() {
        for core in [0u32, 1, 7, 1023] {
            for seq in [1u32, 0x12345, SEQ_MASK] {
                let id = (core << SEQ_BITS) | seq;
                assert_eq!(id_core(id), core as usize);
                assert_eq!(id >> 30, 0, "{id:#x}");
            }
        }
    }
}
