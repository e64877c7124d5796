//! The per-core receive loop on the SRT listening socket: client → origin
//! for sessions this core holds (one map lookup by address, one rewrite of
//! the destination socket id, one send), inductions answered with a cookie,
//! verified conclusions handed to [`super::connect`], packets for a
//! session another core holds handed to [`super::migrate`]. Also the
//! per-second sweeper (idle sessions) and the end at shutdown.

use super::drops::Drop;
use super::session::{self, End};
use super::{
    connect, id_core, migrate, AddrKey, Srt, MAX_DATAGRAM, MAX_MIGRATING, MAX_MIGRATIONS_PER_SEC, MAX_PENDING,
    MAX_SESSIONS,
};
use srs_protocols::srt::cookie;
use srs_protocols::srt::handshake::{self, Handshake, HsType, Reject, HS_LEN};
use srs_protocols::srt::packet;
use srs_protocols::srt::SrtSocketId;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

const DRAIN_POLL: Duration = Duration::from_millis(100);

/// Serves until shutdown, then drains: sessions go on (new ones are
/// refused) until they end or the grace period is nearly over, when the
/// rest are ended with a shutdown packet to both sides.
pub async fn run(srt: Rc<Srt>) {
    let sweeper = glommio::spawn_local(sweep(srt.clone()));
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut drain_until: Option<Instant> = None;
    loop {
        if drain_until.is_some() && srt.by_id.borrow().is_empty() && srt.pending.borrow().is_empty() {
            break;
        }
        let got = futures_lite::future::or(async { Some(srt.sock.recv_from(&mut buf).await) }, async {
            match drain_until {
                // Wakes now and then to see whether the last session ended.
                Some(t) => glommio::timer::sleep(t.saturating_duration_since(Instant::now()).min(DRAIN_POLL)).await,
                None => srt.core.stopping.wait().await,
            }
            None
        })
        .await;
        match got {
            None if drain_until.is_none() => {
                // Ahead of the executor's own end of the grace period, so the
                // ends are logged and both sides told.
                let grace = srt.core.cfg.grace_quit_timeout.saturating_sub(Duration::from_millis(300));
                drain_until = Some(Instant::now() + grace);
            }
            None => {
                if drain_until.is_some_and(|t| Instant::now() >= t) {
                    break;
                }
            }
            Some(Ok((n, from))) => on_datagram(&srt, &mut buf[..n], from).await,
            Some(Err(e)) => {
                tracing::warn!(core = srt.core.index, error = %e, "srt receive failed");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(sweeper);
    let all: Vec<_> = srt.by_id.borrow().values().cloned().collect();
    for s in all {
        session::end(&srt, &s, End::ProxyShutdown, false);
    }
}

/// Every second: advance the tick, end sessions idle past the timeout.
async fn sweep(srt: Rc<Srt>) {
    loop {
        glommio::timer::sleep(Duration::from_secs(1)).await;
        let now = srt.tick.get().wrapping_add(1);
        srt.tick.set(now);
        let limit = srt.idle_ticks();
        let idle: Vec<_> =
            srt.by_id.borrow().values().filter(|s| now.wrapping_sub(s.last.get()) >= limit).cloned().collect();
        for s in idle {
            session::end(&srt, &s, End::Idle, false);
        }
    }
}

fn now_bucket() -> u64 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    cookie::bucket(secs)
}

pub(super) async fn on_datagram(srt: &Rc<Srt>, d: &mut [u8], from: SocketAddr) {
    let h = match packet::parse(d) {
        Ok(h) => h,
        Err(e) => return srt.drops.hit(Drop::TooShort, srt.tick.get(), srt.core.index, from, &e),
    };
    if h.dst.0 == 0 {
        if h.is_handshake() {
            return on_handshake(srt, d, from).await;
        }
        return srt.drops.hit(Drop::UnknownSocket, srt.tick.get(), srt.core.index, from, &h.dst);
    }
    let found = srt.by_id.borrow().get(&h.dst.0).cloned();
    if let Some(s) = found {
        if s.client.get() != from {
            // The client moved to another address that still lands here.
            if !s.may_move(srt.tick.get()) {
                return srt.drops.hit(Drop::MoveTooSoon, srt.tick.get(), srt.core.index, from, &h.dst);
            }
            rebind(srt, &s, from);
        }
        return forward(srt, &s, d, h.is_shutdown()).await;
    }
    // One of our ids from a core that does not hold it: the client moved
    // here from another core (or the id is stale or made up).
    let home = id_core(h.dst.0);
    if home >= srt.mesh.cores() || h.dst.0 >> 30 != 0 {
        return srt.drops.hit(Drop::UnknownSocket, srt.tick.get(), srt.core.index, from, &h.dst);
    }
    let key = AddrKey::of(from);
    if srt.migrating.borrow().contains(&key) {
        return; // its session is on its way here; SRT retransmits
    }
    let (tick, n) = srt.migrations.get();
    let n = if tick == srt.tick.get() { n } else { 0 };
    if srt.migrating.borrow().len() >= MAX_MIGRATING || n >= MAX_MIGRATIONS_PER_SEC {
        return srt.drops.hit(Drop::Full, srt.tick.get(), srt.core.index, from, &"migrations");
    }
    srt.migrations.set((srt.tick.get(), n + 1));
    srt.migrating.borrow_mut().insert(key);
    glommio::spawn_local(migrate::fetch(srt.clone(), h.dst.0, from, d.to_vec())).detach();
}

/// The session's client now sends from `to`.
pub(super) fn rebind(srt: &Srt, s: &session::Session, to: SocketAddr) {
    let old = (AddrKey::of(s.client.get()), s.client_id);
    let mut by_client = srt.by_client.borrow_mut();
    if by_client.get(&old) == Some(&s.proxy_id) {
        by_client.remove(&old);
    }
    tracing::info!(stream = %s.stream, from = %s.client.get(), to = %to, core = srt.core.index,
        proxy_id = s.proxy_id, "srt client changed address");
    s.client.set(to);
    by_client.insert((AddrKey::of(to), s.client_id), s.proxy_id);
}

/// Client → origin: our id back to the origin's, out of the session's
/// upstream socket.
pub(super) async fn forward(srt: &Srt, s: &session::Session, d: &mut [u8], shutdown: bool) {
    packet::set_dst(d, SrtSocketId(s.origin_id));
    s.last.set(srt.tick.get());
    s.to_origin.add(d.len());
    let _ = s.up.send(d).await;
    if shutdown {
        session::end(srt, s, End::ClientShutdown, false);
    }
}

async fn on_handshake(srt: &Rc<Srt>, d: &[u8], from: SocketAddr) {
    let hs = match Handshake::parse(d) {
        Ok(hs) => hs,
        Err(e) => return srt.drops.hit(Drop::Malformed, srt.tick.get(), srt.core.index, from, &e),
    };
    if srt.core.stopping.is_fired() {
        // Draining: no new sessions.
        if hs.hs_type() == HsType::Conclusion {
            reject(srt, &hs, Reject::Close, from).await;
        }
        return;
    }
    match hs.hs_type() {
        HsType::Induction => {
            let mut out = [0u8; HS_LEN];
            let c = srt.key.cookie(from, now_bucket());
            let n = handshake::write_induction_response(&hs, c, srt.timestamp(), from.ip(), &mut out);
            let _ = srt.sock.send_to(&out[..n], from).await;
        }
        HsType::Conclusion => {
            if !srt.key.check(from, now_bucket(), hs.cookie()) {
                return srt.drops.hit(Drop::BadCookie, srt.tick.get(), srt.core.index, from, &hs.cookie());
            }
            let key = (AddrKey::of(from), hs.socket_id().0);
            let done = srt.by_client.borrow().get(&key).and_then(|id| srt.by_id.borrow().get(id).cloned());
            if let Some(s) = done {
                // A repeat (our answer was lost): the same answer again.
                let _ = srt.sock.send_to(&s.answer, from).await;
                return;
            }
            if srt.pending.borrow().contains(&key) {
                return srt.drops.hit(Drop::PendingRepeat, srt.tick.get(), srt.core.index, from, &"");
            }
            let target = match connect::target(&hs) {
                Ok(t) => t,
                Err((why, detail)) => {
                    tracing::warn!(core = srt.core.index, client = %from, reason = %detail,
                        "srt session rejected: bad stream id");
                    return reject(srt, &hs, why, from).await;
                }
            };
            if srt.pending.borrow().len() >= MAX_PENDING || srt.by_id.borrow().len() >= MAX_SESSIONS {
                srt.drops.hit(Drop::Full, srt.tick.get(), srt.core.index, from, &"sessions");
                return reject(srt, &hs, Reject::NoRoom, from).await;
            }
            srt.pending.borrow_mut().insert(key);
            glommio::spawn_local(connect::run(srt.clone(), from, d.to_vec(), target)).detach();
        }
        other => {
            srt.drops.hit(Drop::UnexpectedHandshake, srt.tick.get(), srt.core.index, from, &format_args!("{other:?}"))
        }
    }
}

pub(super) async fn reject(srt: &Srt, hs: &Handshake<'_>, why: Reject, to: SocketAddr) {
    let mut out = [0u8; HS_LEN];
    let n = handshake::write_rejection(hs, why, srt.timestamp(), &mut out);
    let _ = srt.sock.send_to(&out[..n], to).await;
}
