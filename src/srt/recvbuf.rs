//! A session's receive buffer: [`MAX_DATAGRAM`] bytes from an anonymous
//! mapping. Its pages are the kernel's shared zero page until written, so a
//! session costs the pages its datagrams touched (one for a 1500-byte
//! datagram), not 64 KiB, while no datagram is ever truncated. (A heap
//! buffer from `calloc` is cleared, every page touched, whenever the
//! allocator reuses memory.)

use super::MAX_DATAGRAM;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

pub struct RecvBuf {
    ptr: NonNull<u8>,
}

impl RecvBuf {
    pub fn new() -> std::io::Result<RecvBuf> {
        // SAFETY: a fresh private anonymous mapping; checked for failure.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MAX_DATAGRAM,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        NonNull::new(p.cast()).map(|ptr| RecvBuf { ptr }).ok_or_else(|| std::io::Error::other("mmap gave null"))
    }
}

impl Deref for RecvBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: MAX_DATAGRAM mapped, zero-initialised bytes, owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), MAX_DATAGRAM) }
    }
}

impl DerefMut for RecvBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, borrowed mutably through &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), MAX_DATAGRAM) }
    }
}

impl Drop for RecvBuf {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), MAX_DATAGRAM) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_a_whole_64k_datagram_zeroed() {
        let mut b = RecvBuf::new().unwrap();
        assert_eq!(b.len(), 65536);
        assert!(b.iter().all(|&x| x == 0));
        b[65535] = 7;
        b[0] = 1;
        assert_eq!((b[0], b[65535]), (1, 7));
    }
}
