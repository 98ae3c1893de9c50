//! SplitMix64 (Steele, Lea and Flood 2014): tiny, fast and fully specified, so a seed
//! gives the same problems on every platform and in any port (see
//! `tests/reference.py`). A library RNG could change its stream between versions.

/// The SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` without modulo bias (rejects the top partial block); `n > 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        let threshold = n.wrapping_neg() % n;
        loop {
            let r = self.next_u64();
            if r >= threshold {
                return r % n;
            }
        }
    }

    /// Uniform in `lo..=hi`; `lo <= hi` and the span fits in a u64 below `u64::MAX`.
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        let span = hi.abs_diff(lo) + 1;
        lo.wrapping_add(self.below(span) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_stream() {
        // From tests/reference.py (a direct transcription of the published algorithm).
        let mut rng = SplitMix64::new(0);
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(
            first,
            [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
        );
        let mut rng = SplitMix64::new(1234567);
        assert_eq!(rng.next_u64(), 6457827717110365317);
    }

    #[test]
    fn between_stays_in_range_and_hits_both_ends() {
        let mut rng = SplitMix64::new(7);
        let draws: Vec<i64> = (0..2000).map(|_| rng.between(-3, 3)).collect();
        assert!(draws.iter().all(|d| (-3..=3).contains(d)));
        for v in -3..=3 {
            let n = draws.iter().filter(|&&d| d == v).count();
            // 2000 / 7 ~ 286 per value; a fair draw stays well inside 200..380.
            assert!((200..380).contains(&n), "{v} drawn {n} times");
        }
        assert_eq!(rng.between(5, 5), 5);
    }
}
