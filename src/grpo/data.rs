//! The training data as the trainer walks it: every sample of the split in memory, and a
//! seeded order per epoch, so a position (one integer) is all resume needs.

use lora_grpo_plugin::Sample;

/// Samples plus the order they are drawn in.
pub struct DataOrder {
    samples: Vec<Sample>,
    seed: u64,
    shuffle: bool,
}

impl DataOrder {
    pub fn new(samples: Vec<Sample>, seed: u64, shuffle: bool) -> Self {
        DataOrder { samples, seed, shuffle }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The indices of the `count` samples starting at global position `cursor` (positions
    /// run on across epochs; each epoch has its own permutation).
    pub fn indices(&self, cursor: u64, count: usize) -> Vec<usize> {
        let n = self.samples.len() as u64;
        let mut out = Vec::with_capacity(count);
        let mut epoch_order: Option<(u64, Vec<usize>)> = None;
        for position in cursor..cursor + count as u64 {
            let epoch = position / n;
            if epoch_order.as_ref().is_none_or(|(e, _)| *e != epoch) {
                epoch_order = Some((epoch, self.epoch_order(epoch)));
            }
            let order = &epoch_order.as_ref().expect("set just above").1;
            out.push(order[(position % n) as usize]);
        }
        out
    }

    pub fn sample(&self, index: usize) -> &Sample {
        &self.samples[index]
    }

    /// Fisher-Yates over SplitMix64 seeded by (seed, epoch); identity when not shuffling.
    fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.samples.len()).collect();
        if self.shuffle {
            let mut state = self.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for i in (1..order.len()).rev() {
                let j = (splitmix64(&mut state) % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
        }
        order
    }
}

/// One step of SplitMix64 (Steele, Lea and Flood): small, fast and well mixed.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(n: usize, shuffle: bool) -> DataOrder {
        let samples = (0..n).map(|i| Sample::new(format!("q{i}"), format!("{i}"))).collect();
        DataOrder::new(samples, 7, shuffle)
    }

    #[test]
    fn each_epoch_is_a_permutation_and_epochs_differ() {
        let data = order(10, true);
        let first = data.indices(0, 10);
        let second = data.indices(10, 10);
        let mut sorted = first.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert_ne!(first, second);
        assert_ne!(first, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn positions_are_stable_across_calls() {
        let data = order(7, true);
        let whole = data.indices(3, 12);
        let parts = [data.indices(3, 5), data.indices(8, 7)].concat();
        assert_eq!(whole, parts);
        assert_eq!(order(4, false).indices(2, 4), vec![2, 3, 0, 1]);
    }

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // First outputs for seed 0, from the published SplitMix64 reference.
        let mut s = 0;
        assert_eq!(splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut s), 0x6E78_9E6A_A1B9_65F4);
    }
}
