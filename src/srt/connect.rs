//! The handshake toward the origin, one task per verified conclusion (not
//! per packet): pick the origin for the stream id's stream, replay the
//! caller's induction and then its conclusion (with the origin's cookie,
//! extensions untouched: HSREQ, KMREQ, SID, group, congestion) on a fresh
//! upstream socket connected to the origin, retransmitting every 250 ms
//! within an overall timeout. The origin's answer goes to the client with
//! our socket id in it; its rejection goes to the client as it is; silence
//! or a pick failure gets the client our own rejection. Nothing here blocks
//! the receive loop or another session.

use super::recvbuf::RecvBuf;
use super::session::{self, Flow, Session};
use super::{listen, AddrKey, ClientKey, Srt, ORIGIN_HANDSHAKE_TIMEOUT, ORIGIN_RETRANSMIT};
use glommio::net::UdpSocket;
use srs_lb::LoadBalancer;
use srs_protocols::srt::handshake::{self, Handshake, HsType, Reject, HS_LEN, MAX_SID_LEN};
use srs_protocols::srt::streamid::{self, Mode, StreamIdError};
use srs_protocols::srt::SrtSocketId;
use srs_protocols::stream_url::{self, StreamUrl};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

pub struct Target {
    pub stream: StreamUrl,
    pub mode: Mode,
}

/// The stream a conclusion asks for, or how to reject it and why.
pub fn target(hs: &Handshake<'_>) -> Result<Target, (Reject, String)> {
    let mut buf = [0u8; MAX_SID_LEN];
    let sid = match hs.stream_id(&mut buf) {
        Ok(Some(s)) => s,
        Ok(None) => return Err((Reject::BadRequest, "no stream id".into())),
        Err(e) => return Err((Reject::BadRequest, e.to_string())),
    };
    let parsed = streamid::parse(sid).map_err(|e| {
        let why = if e == StreamIdError::BadMode { Reject::BadMode } else { Reject::BadRequest };
        (why, format!("{e}: {sid:?}"))
    })?;
    let stream = stream_url::from_srt(parsed.host, parsed.resource)
        .map_err(|e| (Reject::BadRequest, format!("{e}: {sid:?}")))?;
    Ok(Target { stream, mode: parsed.mode })
}

enum Fail {
    /// The origin answered with a rejection; it went to the client as is.
    Rejected(u32, Vec<u8>),
    NoOrigin(String),
    Socket(std::io::Error),
    Timeout(&'static str),
    Shutdown,
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fail::Rejected(code, _) => write!(f, "origin rejected the handshake with code {code}"),
            Fail::NoOrigin(e) => write!(f, "no origin: {e}"),
            Fail::Socket(e) => write!(f, "origin socket: {e}"),
            Fail::Timeout(stage) => write!(f, "origin did not answer the {stage} in time"),
            Fail::Shutdown => f.write_str("proxy shutting down"),
        }
    }
}

/// Removes the client's pending mark however the task ends.
struct PendingGuard<'a>(&'a Srt, ClientKey);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.0.pending.borrow_mut().remove(&self.1);
    }
}

pub async fn run(srt: Rc<Srt>, client: SocketAddr, conclusion: Vec<u8>, target: Target) {
    let Ok(hs) = Handshake::parse(&conclusion) else { return };
    let _pending = PendingGuard(&srt, (AddrKey::of(client), hs.socket_id().0));
    let started = Instant::now();
    let mut origin_desc = String::from("-");
    let r = futures_lite::future::or(dial(&srt, &hs, &target, &mut origin_desc), async {
        srt.core.stopping.wait().await;
        Err(Fail::Shutdown)
    })
    .await;
    let (up, origin_addr, mut answer, buf) = match r {
        Ok(v) => v,
        Err(fail) => {
            let why = match &fail {
                Fail::Rejected(_, answer) => {
                    // Sent as the origin wrote it (its reason reaches the client).
                    let _ = srt.sock.send_to(answer, client).await;
                    None
                }
                Fail::NoOrigin(_) => Some(Reject::Unavailable),
                Fail::Socket(_) | Fail::Timeout(_) => Some(Reject::BadGateway),
                Fail::Shutdown => Some(Reject::Peer),
            };
            if let Some(why) = why {
                listen::reject(&srt, &hs, why, client).await;
            }
            tracing::warn!(stream = %target.stream, client = %client, origin = %origin_desc, core = srt.core.index,
                mode = target.mode.as_str(), duration_ms = started.elapsed().as_millis() as u64, reason = %fail,
                "srt session rejected");
            return;
        }
    };
    let proxy_id = srt.new_id();
    let origin_id = Handshake::parse(&answer).map(|a| a.socket_id().0).unwrap_or(0);
    handshake::set_socket_id(&mut answer, SrtSocketId(proxy_id));
    let s = Rc::new(Session {
        proxy_id,
        origin_id,
        client_id: hs.socket_id().0,
        client: Cell::new(client),
        up: Rc::new(up),
        stream: target.stream,
        origin: origin_desc,
        origin_addr,
        mode: target.mode,
        answer: answer.into_boxed_slice(),
        to_origin: Flow::default(),
        to_client: Flow::default(),
        last: Cell::new(srt.tick.get()),
        started,
        hs_core: srt.core.index,
        moves: Cell::new(0),
        moved_at: Cell::new(None),
        reader: RefCell::new(None),
        ended: Cell::new(false),
        _live: srt.core.hold_live(),
    });
    s.log_start(srt.core.index);
    session::install(&srt, s.clone(), buf);
    let _ = srt.sock.send_to(&s.answer, client).await;
}

/// Picks the origin and runs the caller's side of the handshake with it.
/// Returns the upstream socket, the origin's address, its conclusion
/// answer, and the receive buffer (kept for the session).
async fn dial(
    srt: &Srt,
    hs: &Handshake<'_>,
    target: &Target,
    desc: &mut String,
) -> Result<(UdpSocket, SocketAddr, Vec<u8>, RecvBuf), Fail> {
    let (origin, _) = srt.core.lb.pick(&target.stream).await.map_err(|e| Fail::NoOrigin(e.to_string()))?;
    *desc = origin.id().to_string();
    let addr = match origin.srt_addr() {
        Ok(Some(a)) => a,
        Ok(None) => return Err(Fail::NoOrigin(format!("origin {} has no srt endpoint", origin.id()))),
        Err(e) => return Err(Fail::NoOrigin(format!("origin {}: {e}", origin.id()))),
    };
    let up = srs_io::udp::connected(addr).map_err(Fail::Socket)?;
    let deadline = Instant::now() + ORIGIN_HANDSHAKE_TIMEOUT;
    let mut buf = RecvBuf::new().map_err(Fail::Socket)?;

    let mut induction = [0u8; HS_LEN];
    let n = handshake::write_induction_request(hs, srt.timestamp(), addr.ip(), &mut induction);
    let n =
        exchange(&up, &induction[..n], &mut buf, deadline, "induction", |a| a.hs_type() == HsType::Induction).await?;
    let origin_cookie = Handshake::parse(&buf[..n]).map(|a| a.cookie()).unwrap_or(0);

    let mut conclusion = hs.bytes().to_vec();
    handshake::set_cookie(&mut conclusion, origin_cookie);
    let n = exchange(&up, &conclusion, &mut buf, deadline, "conclusion", |a| {
        matches!(a.hs_type(), HsType::Conclusion | HsType::Rejection(_))
    })
    .await?;
    let answer = buf[..n].to_vec();
    if let Ok(a) = Handshake::parse(&answer) {
        if let HsType::Rejection(code) = a.hs_type() {
            return Err(Fail::Rejected(code, answer));
        }
    }
    Ok((up, addr, answer, buf))
}

/// Sends `req` every [`ORIGIN_RETRANSMIT`] until an answer `want` accepts
/// arrives (other datagrams are ignored) or `deadline` passes.
async fn exchange(
    up: &UdpSocket,
    req: &[u8],
    buf: &mut [u8],
    deadline: Instant,
    stage: &'static str,
    want: impl Fn(&Handshake<'_>) -> bool,
) -> Result<usize, Fail> {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(Fail::Timeout(stage));
        }
        up.send(req).await.map_err(|e| Fail::Socket(e.into()))?;
        let wait = ORIGIN_RETRANSMIT.min(deadline - now);
        let until = Instant::now() + wait;
        loop {
            let r = futures_lite::future::or(async { Some(up.recv_from(buf).await.map(|(n, _)| n)) }, async {
                glommio::timer::sleep(until.saturating_duration_since(Instant::now())).await;
                None
            })
            .await;
            match r {
                None => break,
                // ECONNREFUSED: nothing listens there (yet); keep trying until the deadline.
                Some(Err(_)) => {
                    glommio::timer::sleep(until.saturating_duration_since(Instant::now())).await;
                    break;
                }
                Some(Ok(n)) => {
                    if matches!(Handshake::parse(&buf[..n]), Ok(a) if want(&a)) {
                        return Ok(n);
                    }
                }
            }
        }
    }
}
