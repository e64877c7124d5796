//! A fixed-size log-linear histogram of microsecond values (64 sub-buckets
//! per power of two, so a reported percentile is within 1.6% of the true
//! value). Recording is an index computation and an increment: no
//! allocation after creation, so players can record every message.

use serde_json::{json, Value};

const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

#[derive(Clone)]
pub struct Hist {
    counts: Vec<u64>,
    n: u64,
    max: u64,
    sum: u128,
}

impl Default for Hist {
    fn default() -> Self {
        Self::new()
    }
}

fn index(v: u64) -> usize {
    if v < SUB {
        v as usize
    } else {
        let e = 63 - v.leading_zeros(); // >= SUB_BITS
        let m = (v >> (e - SUB_BITS)) & (SUB - 1);
        ((e - SUB_BITS + 1) as usize) * SUB as usize + m as usize
    }
}

/// The middle of bucket `i`.
fn value_at(i: usize) -> u64 {
    let (band, m) = (i as u64 / SUB, i as u64 % SUB);
    if band == 0 {
        return m;
    }
    let shift = band - 1;
    let low = (SUB + m) << shift;
    low + ((1u64 << shift) >> 1)
}

impl Hist {
    pub fn new() -> Self {
        Hist { counts: vec![0; BUCKETS], n: 0, max: 0, sum: 0 }
    }

    pub fn record(&mut self, v: u64) {
        if let Some(c) = self.counts.get_mut(index(v)) {
            *c += 1;
        }
        self.n += 1;
        self.sum += v as u128;
        self.max = self.max.max(v);
    }

    pub fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.n += o.n;
        self.sum += o.sum;
        self.max = self.max.max(o.max);
    }

    /// The value at quantile `q` (0..=1); 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value_at(i).min(self.max);
            }
        }
        self.max
    }

    /// `{"n", "p50", "p99", "max", "mean"}` in milliseconds (µs recorded).
    pub fn json_ms(&self) -> Value {
        let ms = |us: u64| (us as f64 / 10.0).round() / 100.0;
        let mean = if self.n == 0 { 0 } else { (self.sum / self.n as u128) as u64 };
        json!({
            "n": self.n,
            "p50": ms(self.quantile(0.50)),
            "p99": ms(self.quantile(0.99)),
            "max": ms(self.max),
            "mean": ms(mean),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_close() {
        let mut last = 0;
        for v in [0u64, 1, 63, 64, 65, 127, 128, 1000, 123_456, 10_000_000, u64::MAX] {
            let i = index(v);
            assert!(i < BUCKETS, "{v} -> {i}");
            assert!(i >= last);
            last = i;
            let mid = value_at(i);
            let err = (mid as f64 - v as f64).abs() / (v.max(1) as f64);
            assert!(err <= 0.016, "{v}: bucket mid {mid}");
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Hist::new();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5) as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.02, "{p50}");
        let p99 = h.quantile(0.99) as f64;
        assert!((p99 - 990_000.0).abs() / 990_000.0 < 0.02, "{p99}");
        assert_eq!(h.quantile(1.0), 1_000_000);
        let mut g = Hist::new();
        g.merge(&h);
        assert_eq!(g.n, 1000);
    }
}
