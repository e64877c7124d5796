//! The listener's SYN cookie: an HMAC-SHA256 of the caller's address and
//! port and a coarse time bucket, under a per-process secret, cut to 32
//! bits. A conclusion is accepted only with the cookie its sender's address
//! got at its induction (this bucket or the one before), so a conclusion
//! spoofed without the induction is dropped and no state is kept between
//! the two. The caller supplies the secret and the time (sans-IO).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::SocketAddr;

/// Seconds per time bucket: a cookie lives one to two of them.
pub const BUCKET_SECS: u64 = 60;

pub struct CookieKey {
    secret: [u8; 32],
}

impl CookieKey {
    pub fn new(secret: [u8; 32]) -> CookieKey {
        CookieKey { secret }
    }

    /// The cookie for `peer` in time bucket `bucket` (never 0, which means
    /// "no cookie" on the wire).
    pub fn cookie(&self, peer: SocketAddr, bucket: u64) -> u32 {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.secret) else { return 1 };
        let ip = match peer.ip() {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(v6) => v6.octets(),
        };
        mac.update(&ip);
        mac.update(&peer.port().to_be_bytes());
        mac.update(&bucket.to_be_bytes());
        let d = mac.finalize().into_bytes();
        u32::from_be_bytes([d[0], d[1], d[2], d[3]]).max(1)
    }

    /// Whether `cookie` is what `peer` was given in `bucket` or the one before.
    pub fn check(&self, peer: SocketAddr, bucket: u64, cookie: u32) -> bool {
        cookie == self.cookie(peer, bucket) || (bucket > 0 && cookie == self.cookie(peer, bucket - 1))
    }
}

/// The bucket of `unix_secs`.
pub fn bucket(unix_secs: u64) -> u64 {
    unix_secs / BUCKET_SECS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_cookie_holds_for_its_bucket_and_the_next_only() {
        let k = CookieKey::new([7; 32]);
        let a = addr("192.0.2.1:5000");
        let c = k.cookie(a, 100);
        assert_ne!(c, 0);
        assert!(k.check(a, 100, c));
        assert!(k.check(a, 101, c));
        assert!(!k.check(a, 102, c));
        assert!(!k.check(a, 99, c));
    }

    #[test]
    fn the_cookie_depends_on_ip_port_and_secret() {
        let k = CookieKey::new([7; 32]);
        let c = k.cookie(addr("192.0.2.1:5000"), 1);
        assert_ne!(c, k.cookie(addr("192.0.2.1:5001"), 1));
        assert_ne!(c, k.cookie(addr("192.0.2.2:5000"), 1));
        assert_ne!(c, k.cookie(addr("[::1]:5000"), 1));
        assert_ne!(c, CookieKey::new([8; 32]).cookie(addr("192.0.2.1:5000"), 1));
        assert!(!k.check(addr("192.0.2.1:5000"), 1, 0));
        assert!(!k.check(addr("192.0.2.1:5000"), 0, c.wrapping_add(1)));
    }
}
