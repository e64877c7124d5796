//! UDP sockets the relays share the making of: the check that a shared port
//! is free, and a connected socket toward an origin.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{FromRawFd, IntoRawFd};

/// Fails when `addr` (named by the variable `var`) is held by anyone: a
/// plain bind, released at once, so a second proxy does not silently join
/// the port through SO_REUSEPORT.
pub fn probe(var: &str, addr: SocketAddr) -> Result<(), String> {
    if addr.port() == 0 {
        return Ok(());
    }
    std::net::UdpSocket::bind(addr).map(drop).map_err(|e| {
        let who = if e.kind() == std::io::ErrorKind::AddrInUse { " (another process holds it)" } else { "" };
        format!("{var}={addr}: cannot listen: {e}{who}")
    })
}

/// A socket of its own on an ephemeral port, connected to `to`, for one
/// session toward an origin (the origin sees one 5-tuple per client). Not
/// SO_REUSEPORT, as glommio's `bind` would make it: with it an ephemeral
/// port may be handed to two sockets at once, and two sessions to one
/// origin would share a 5-tuple.
pub fn connected(to: SocketAddr) -> std::io::Result<glommio::net::UdpSocket> {
    let local: SocketAddr =
        if to.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let s = std::net::UdpSocket::bind(local)?;
    s.connect(to)?;
    s.set_nonblocking(true)?;
    // SAFETY: the descriptor was just released by `s`; glommio owns it now.
    Ok(unsafe { glommio::net::UdpSocket::from_raw_fd(s.into_raw_fd()) })
}
