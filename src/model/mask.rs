//! Attention masks for left-padded batches, and the RoPE offsets that go with them.
//!
//! Rows are left-padded to a common length: row `b` has `pad[b]` padding columns, then
//! its tokens. A query at column `c` may attend to key columns `j` with `pad[b] <= j <= c`.
//! Queries at padding columns get only their own column, so no softmax row is empty;
//! their outputs are never used.

use mlx_rs::error::Exception;
use mlx_rs::{ops, Array};

use super::rope::RopeOffset;

/// How attention is masked for one forward pass.
#[derive(Debug, Clone)]
pub enum AttentionMask {
    /// Nothing to mask (one query per row, no padding).
    None,
    /// Plain causal masking, aligned to the last key (SDPA's "causal" mode).
    Causal,
    /// A boolean `[B, 1, T, S]` array: true where attention is allowed.
    Array(Array),
}

/// Positions and mask of `num_queries` new columns starting at column `start`, for rows
/// with the given left padding.
#[derive(Debug, Clone)]
pub struct BatchLayout {
    /// Which keys each query may attend to.
    pub mask: AttentionMask,
    /// Position of each row's first new column.
    pub rope_offset: RopeOffset,
}

impl BatchLayout {
    /// Layout of columns `start..start + num_queries` attending to columns `0..start + num_queries`.
    pub fn new(left_padding: &[i32], start: i32, num_queries: i32) -> Result<Self, Exception> {
        if left_padding.iter().all(|&p| p == 0) {
            let mask = if num_queries > 1 {
                AttentionMask::Causal
            } else {
                AttentionMask::None
            };
            return Ok(Self {
                mask,
                rope_offset: RopeOffset::Uniform(start),
            });
        }
        let batch = left_padding.len() as i32;
        let pads = Array::from_slice(left_padding, &[batch]);
        let starts = Array::from_int(start).subtract(&pads)?;
        let total = start + num_queries;
        let queries =
            ops::arange::<i32, i32>(start, total, None)?.reshape(&[1, 1, num_queries, 1])?;
        let keys = ops::arange::<i32, i32>(0, total, None)?.reshape(&[1, 1, 1, total])?;
        let pads = pads.reshape(&[batch, 1, 1, 1])?;
        let allowed = keys
            .le(&queries)?
            .logical_and(&keys.ge(&pads)?)?
            .logical_or(&keys.eq(&queries)?)?;
        Ok(Self {
            mask: AttentionMask::Array(allowed),
            rope_offset: RopeOffset::PerRow(starts),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_rows_see_only_their_tokens_and_the_past() {
        // Row 0: no padding; row 1: two padding columns. Three queries at columns 1..4.
        let layout = BatchLayout::new(&[0, 2], 1, 3).unwrap();
        let AttentionMask::Array(mask) = layout.mask else {
            panic!("expected an array mask")
        };
        assert_eq!(mask.shape(), &[2, 1, 3, 4]);
        let got: Vec<bool> = mask.as_slice::<bool>().to_vec();
        let t = true;
        let f = false;
        #[rustfmt::skip]
        let expected = vec![
            t, t, f, f,   t, t, t, f,   t, t, t, t,  // row 0: causal
            f, t, f, f,   f, f, t, f,   f, f, t, t,  // row 1: column 1 is padding (self only)
        ];
        assert_eq!(got, expected);
        let RopeOffset::PerRow(starts) = layout.rope_offset else {
            panic!("expected per-row offsets")
        };
        assert_eq!(starts.as_slice::<i32>(), &[1, -1]);
    }

    #[test]
    fn unpadded_batches_use_causal_mode_or_no_mask() {
        assert!(matches!(
            BatchLayout::new(&[0, 0], 0, 5).unwrap().mask,
            AttentionMask::Causal
        ));
        let decode = BatchLayout::new(&[0, 0], 7, 1).unwrap();
        assert!(matches!(decode.mask, AttentionMask::None));
        assert!(matches!(decode.rope_offset, RopeOffset::Uniform(7)));
    }
}
