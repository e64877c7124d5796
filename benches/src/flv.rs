//! The HTTP-FLV player: one GET, then a streaming FLV tag walker (over an
//! optional chunked transfer decoder) that skips tag bodies without copying
//! them, keeping only the first bytes of each video tag.

use crate::net::{self, InBuf, Target};
use crate::rtmp::{Sink, STAMP_END};
use glommio::net::TcpStream;

pub struct HttpSession {
    pub sock: TcpStream,
    pub inb: InBuf,
    chunked: bool,
}

/// Connects, sends the GET and reads the response head (which must be 200).
pub async fn open(t: &Target, path: &str, bufsize: usize) -> Result<HttpSession, String> {
    let mut sock = net::connect(t.addr).await.map_err(|e| format!("connect {}: {e}", t.addr))?;
    let mut out = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: srs-load\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        t.authority
    )
    .into_bytes();
    net::flush(&mut sock, &mut out).await.map_err(|e| format!("write request: {e}"))?;
    let mut inb = InBuf::new(bufsize);
    let head_len = loop {
        if let Some(i) = find(inb.data(), b"\r\n\r\n") {
            break i + 4;
        }
        if inb.data().len() > 16 * 1024 {
            return Err("response head over 16 KiB".into());
        }
        inb.fill_some(&mut sock).await.map_err(|e| format!("response head: {e}"))?;
    };
    let head = String::from_utf8_lossy(&inb.data()[..head_len]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        let first = head.lines().next().unwrap_or("").to_string();
        return Err(format!("HTTP status: {first}"));
    }
    let chunked = head.lines().any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
    inb.consume(head_len);
    Ok(HttpSession { sock, inb, chunked })
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Chunked transfer decoding state.
enum Chunk {
    /// Reading the size line; value so far, seen a non-hex (extension).
    Size(u64, bool),
    /// `n` bytes of chunk data left.
    Data(u64),
    /// The CRLF after a chunk's data.
    Crlf(u8),
    Done,
}

/// FLV walker state.
enum Flv {
    /// Bytes of the 9-byte file header plus the first previous-tag-size.
    FileHeader(usize),
    /// Tag header bytes collected so far.
    TagHeader(usize),
    /// Video tag body: bytes of its head collected, body size.
    VideoHead(usize, u64),
    /// Bytes to skip (rest of a body and its previous-tag-size).
    Skip(u64),
}

pub struct Walker {
    chunk: Chunk,
    chunked: bool,
    flv: Flv,
    hdr: [u8; 11],
    head: [u8; STAMP_END],
}

impl Walker {
    pub fn new(chunked: bool) -> Walker {
        Walker { chunk: Chunk::Size(0, false), chunked, flv: Flv::FileHeader(0), hdr: [0; 11], head: [0; STAMP_END] }
    }

    /// Feeds response body bytes (all of `buf` is consumed). Returns true
    /// when the sink asked to stop, or the chunked body ended.
    pub fn feed(&mut self, mut buf: &[u8], sink: &mut impl Sink) -> Result<bool, String> {
        if !self.chunked {
            return self.flv(buf, sink);
        }
        while !buf.is_empty() {
            match &mut self.chunk {
                Chunk::Size(v, ext) => {
                    let b = buf[0];
                    buf = &buf[1..];
                    match b {
                        b'\n' => self.chunk = if *v == 0 { Chunk::Done } else { Chunk::Data(*v) },
                        b'\r' => {}
                        _ if *ext => {}
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            let d = (b as char).to_digit(16).unwrap_or(0) as u64;
                            *v = v.checked_mul(16).ok_or("chunk size overflow")? + d;
                        }
                        b';' | b' ' => *ext = true,
                        _ => return Err(format!("bad chunk size byte {b:#x}")),
                    }
                }
                Chunk::Data(n) => {
                    let k = (*n).min(buf.len() as u64) as usize;
                    *n -= k as u64;
                    if *n == 0 {
                        self.chunk = Chunk::Crlf(2);
                    }
                    let (now, rest) = buf.split_at(k);
                    buf = rest;
                    if self.flv(now, sink)? {
                        return Ok(true);
                    }
                }
                Chunk::Crlf(n) => {
                    buf = &buf[1..];
                    *n -= 1;
                    if *n == 0 {
                        self.chunk = Chunk::Size(0, false);
                    }
                }
                Chunk::Done => return Ok(true),
            }
        }
        Ok(matches!(self.chunk, Chunk::Done))
    }

    fn flv(&mut self, mut buf: &[u8], sink: &mut impl Sink) -> Result<bool, String> {
        while !buf.is_empty() {
            match &mut self.flv {
                Flv::FileHeader(have) => {
                    if *have < 3 && buf[0] != b"FLV"[*have] {
                        return Err("body is not FLV".into());
                    }
                    *have += 1;
                    buf = &buf[1..];
                    if *have == 13 {
                        self.flv = Flv::TagHeader(0);
                    }
                }
                Flv::TagHeader(have) => {
                    let k = (11 - *have).min(buf.len());
                    self.hdr[*have..*have + k].copy_from_slice(&buf[..k]);
                    *have += k;
                    buf = &buf[k..];
                    if *have == 11 {
                        let t = self.hdr[0] & 0x1f;
                        let size = u32::from_be_bytes([0, self.hdr[1], self.hdr[2], self.hdr[3]]) as u64;
                        if t == 8 || t == 9 {
                            let stop = sink.media(t == 9);
                            if stop {
                                return Ok(true);
                            }
                        }
                        self.flv = if t == 9 && size >= STAMP_END as u64 {
                            Flv::VideoHead(0, size)
                        } else {
                            Flv::Skip(size + 4)
                        };
                    }
                }
                Flv::VideoHead(have, size) => {
                    let k = (STAMP_END - *have).min(buf.len());
                    self.head[*have..*have + k].copy_from_slice(&buf[..k]);
                    *have += k;
                    buf = &buf[k..];
                    if *have == STAMP_END {
                        let rest = *size - STAMP_END as u64 + 4;
                        sink.video_head(&self.head);
                        self.flv = Flv::Skip(rest);
                    }
                }
                Flv::Skip(n) => {
                    let k = (*n).min(buf.len() as u64) as usize;
                    *n -= k as u64;
                    buf = &buf[k..];
                    if *n == 0 {
                        self.flv = Flv::TagHeader(0);
                    }
                }
            }
        }
        Ok(false)
    }
}

/// Reads the body until the sink says stop (`Ok(true)`) or the server
/// closes (`Ok(false)`), counting bytes in `bytes`.
pub async fn read_media(
    s: &mut HttpSession,
    sink: &mut impl Sink,
    bytes: &std::cell::Cell<u64>,
) -> Result<bool, String> {
    let mut w = Walker::new(s.chunked);
    loop {
        let data = s.inb.data();
        let n = data.len();
        let stop = w.feed(data, sink)?;
        s.inb.consume(n);
        if stop {
            return Ok(true);
        }
        let got = s.inb.fill(&mut s.sock).await.map_err(|e| format!("read: {e}"))?;
        if got == 0 {
            return Ok(false);
        }
        bytes.set(bytes.get() + got as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Rec {
        media: usize,
        stamps: Vec<[u8; STAMP_END]>,
    }
    impl Sink for Rec {
        fn media(&mut self, _video: bool) -> bool {
            self.media += 1;
            false
        }
        fn video_head(&mut self, h: &[u8; STAMP_END]) {
            self.stamps.push(*h);
        }
    }

    fn tag(t: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![t];
        v.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0]);
        v.extend_from_slice(body);
        v.extend_from_slice(&((body.len() + 11) as u32).to_be_bytes());
        v
    }

    fn stream() -> Vec<u8> {
        let mut f = b"FLV\x01\x05\0\0\0\x09\0\0\0\0".to_vec();
        f.extend(tag(18, b"meta"));
        let mut v = vec![0x17, 1, 0, 0, 0];
        v.extend_from_slice(&42u64.to_be_bytes());
        v.extend_from_slice(&[0xAA; 100]);
        f.extend(tag(9, &v));
        f.extend(tag(8, &[0xAF, 1, 2, 3]));
        f.extend(tag(9, &v));
        f
    }

    #[test]
    fn walks_plain_and_chunked_in_any_split() {
        let f = stream();
        for step in [1usize, 3, 7, 1000] {
            let mut r = Rec::default();
            let mut w = Walker::new(false);
            for c in f.chunks(step) {
                assert!(!w.feed(c, &mut r).unwrap());
            }
            assert_eq!(r.media, 3);
            assert_eq!(r.stamps.len(), 2);
            assert_eq!(crate::rtmp::stamp_of(&r.stamps[1]), Some(42));

            let mut body = Vec::new();
            for c in f.chunks(50) {
                body.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                body.extend_from_slice(c);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"0\r\n\r\n");
            let mut r = Rec::default();
            let mut w = Walker::new(true);
            let mut ended = false;
            for c in body.chunks(step) {
                ended = w.feed(c, &mut r).unwrap();
            }
            assert!(ended);
            assert_eq!(r.stamps.len(), 2);
        }
    }
}
