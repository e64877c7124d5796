//! The relay path's per-datagram work allocates nothing: routing datagrams
//! of every kind (known client, new STUN, garbage) through the demux, with
//! a counting global allocator watching.

use srs_protocols::stun::write_binding_request;
use srs_protocols::udp_demux::{Demux, Route};
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn routing_a_datagram_allocates_nothing() {
    let mut d: Demux<Rc<u64>> = Demux::new(1000);
    let clients: Vec<SocketAddr> =
        (0..100).map(|i| format!("10.0.{}.{}:{}", i / 250, i % 250, 5000 + i).parse().unwrap()).collect();
    for (i, c) in clients.iter().enumerate() {
        d.insert(*c, Rc::new(i as u64)).unwrap();
    }
    let mut stun = Vec::new();
    write_binding_request(&mut stun, &[3; 12], "answerufrag:offerufrag");
    let rtp = vec![0x80u8; 1200];
    let big = vec![0x90u8; 65507];
    let stranger: SocketAddr = "192.0.2.9:9".parse().unwrap();
    let mut sum = 0u64;
    let before = ALLOCS.load(Ordering::Relaxed);
    for round in 0..1000 {
        for c in &clients {
            let pkt = if round % 2 == 0 { &rtp } else { &big };
            match d.route(*c, pkt) {
                Route::Session(s) => sum += *s,
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(d.route(stranger, &stun), Route::Identify("answerufrag:offerufrag")));
        assert!(matches!(d.route(stranger, &rtp), Route::Drop(_)));
        assert!(matches!(d.route(stranger, b"\x16\xfe\xfd"), Route::Drop(_)));
    }
    let after = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(after - before, 0, "allocations while routing 103,000 datagrams");
    assert_eq!(sum, 1000 * (0..100).sum::<u64>());
}
