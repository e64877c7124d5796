//! What every mode shares: target URLs, the per-connection read buffer, the
//! wall clock the publisher stamps with, and a tiny random source.

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{SystemTime, UNIX_EPOCH};

/// A parsed `rtmp://host:port/app/stream` or `http://host:port/path`.
#[derive(Debug, Clone)]
pub struct Target {
    pub scheme: Scheme,
    pub addr: SocketAddr,
    /// `host:port` as given (for tcUrl and Host).
    pub authority: String,
    /// RTMP: the app (everything between the authority and the last `/`).
    pub app: String,
    /// RTMP: the stream name; HTTP: the path, starting with `/`.
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Rtmp,
    Http,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest, default_port) = if let Some(r) = url.strip_prefix("rtmp://") {
            (Scheme::Rtmp, r, 1935)
        } else if let Some(r) = url.strip_prefix("http://") {
            (Scheme::Http, r, 80)
        } else {
            return Err(format!("{url}: only rtmp:// and http:// URLs"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let hostport =
            if authority.contains(':') { authority.to_string() } else { format!("{authority}:{default_port}") };
        let addr = hostport
            .to_socket_addrs()
            .map_err(|e| format!("{url}: {e}"))?
            .next()
            .ok_or_else(|| format!("{url}: no address"))?;
        let (app, path) = match scheme {
            Scheme::Rtmp => {
                let p = path.trim_start_matches('/');
                let Some(i) = p.rfind('/') else {
                    return Err(format!("{url}: want rtmp://host:port/app/stream"));
                };
                (p[..i].to_string(), p[i + 1..].to_string())
            }
            Scheme::Http => (String::new(), path.to_string()),
        };
        if path.is_empty() || (scheme == Scheme::Rtmp && app.is_empty()) {
            return Err(format!("{url}: want rtmp://host:port/app/stream"));
        }
        Ok(Target { scheme, addr, authority: authority.to_string(), app, path })
    }

    /// The stream (RTMP) or path (HTTP) for client `i` of `n` streams:
    /// unchanged when `n <= 1`, else `name-i` (before `.flv` for HTTP).
    pub fn nth(&self, i: usize, n: usize) -> String {
        if n <= 1 {
            return self.path.clone();
        }
        let i = i % n;
        match self.path.rfind('.') {
            Some(dot) if self.scheme == Scheme::Http => {
                format!("{}-{i}{}", &self.path[..dot], &self.path[dot..])
            }
            _ => format!("{}-{i}", self.path),
        }
    }

    pub fn tc_url(&self) -> String {
        format!("rtmp://{}/{}", self.authority, self.app)
    }
}

/// Microseconds since the Unix epoch (CLOCK_REALTIME, so that processes on
/// one machine agree).
pub fn wall_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// One reusable read buffer per connection: bytes `head..tail` are read and
/// not yet parsed. Parsers consume from the front; the rest is moved to the
/// start only when the buffer's end is reached.
pub struct InBuf {
    buf: Box<[u8]>,
    head: usize,
    tail: usize,
}

impl InBuf {
    pub fn new(size: usize) -> InBuf {
        InBuf { buf: vec![0u8; size.max(256)].into_boxed_slice(), head: 0, tail: 0 }
    }

    pub fn data(&self) -> &[u8] {
        &self.buf[self.head..self.tail]
    }

    pub fn consume(&mut self, n: usize) {
        self.head = (self.head + n).min(self.tail);
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
    }

    /// Reads once; returns the bytes read (0 = EOF).
    pub async fn fill(&mut self, s: &mut TcpStream) -> io::Result<usize> {
        if self.tail == self.buf.len() {
            if self.head == 0 {
                return Err(io::Error::other("read buffer full of unparsed bytes"));
            }
            self.buf.copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
            self.head = 0;
        }
        let n = s.read(&mut self.buf[self.tail..]).await?;
        self.tail += n;
        Ok(n)
    }

    /// Reads until at least one byte arrived; EOF is an error.
    pub async fn fill_some(&mut self, s: &mut TcpStream) -> io::Result<usize> {
        match self.fill(s).await? {
            0 => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed the connection")),
            n => Ok(n),
        }
    }
}

/// Writes `out` and clears it.
pub async fn flush(s: &mut TcpStream, out: &mut Vec<u8>) -> io::Result<()> {
    if !out.is_empty() {
        s.write_all(out).await?;
        out.clear();
    }
    Ok(())
}

/// TCP connect with no-delay set.
pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("rtmp://127.0.0.1:1935/live/s").unwrap();
        assert_eq!((t.app.as_str(), t.path.as_str()), ("live", "s"));
        assert_eq!(t.tc_url(), "rtmp://127.0.0.1:1935/live");
        assert_eq!(t.nth(3, 2), "s-1");
        assert_eq!(t.nth(3, 1), "s");
        let t = Target::parse("rtmp://127.0.0.1:1935/a/b/s").unwrap();
        assert_eq!((t.app.as_str(), t.path.as_str()), ("a/b", "s"));
        let t = Target::parse("http://127.0.0.1:8080/live/s.flv").unwrap();
        assert_eq!(t.path, "/live/s.flv");
        assert_eq!(t.nth(1, 4), "/live/s-1.flv");
        assert!(Target::parse("rtmp://127.0.0.1:1935/s").is_err());
        assert!(Target::parse("srt://x").is_err());
    }
}
