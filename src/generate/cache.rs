//! Key/value cache for batched decoding with left-padded rows.
//!
//! Each layer keeps keys and values as `[B, kv_heads, capacity, head_dim]`, grown in
//! blocks of [`KvCache::BLOCK`] columns and written in place (MLX donates the buffer of
//! an array that nothing else references), so a decode step copies only the new column.
//! Rows can be repeated (one prefilled prompt becomes a GRPO group) or dropped (finished
//! completions) with [`KvCache::select_rows`].

use mlx_rs::error::Exception;
use mlx_rs::ops::indexing::{TryIndexMutOp, TryIndexOp};
use mlx_rs::{ops, Array};

use crate::model::mask::BatchLayout;

/// Keys and values of every layer for a batch of rows.
#[derive(Debug)]
pub struct KvCache {
    /// Per layer: (keys, values), `None` before the first write.
    layers: Vec<Option<(Array, Array)>>,
    /// Columns written so far (padding included); equal for every row.
    len: i32,
    /// Leading padding columns of each row.
    left_padding: Vec<i32>,
}

impl KvCache {
    /// Columns added at a time when the cache grows.
    pub const BLOCK: i32 = 256;

    /// An empty cache for `num_layers` layers and rows with the given left padding
    /// (the padding the first forward pass's tokens carry).
    pub fn new(num_layers: usize, left_padding: Vec<i32>) -> Self {
        Self {
            layers: vec![None; num_layers],
            len: 0,
            left_padding,
        }
    }

    /// Number of rows.
    pub fn batch_size(&self) -> usize {
        self.left_padding.len()
    }

    /// Columns written so far, padding included.
    pub fn len(&self) -> i32 {
        self.len
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Leading padding columns of each row.
    pub fn left_padding(&self) -> &[i32] {
        &self.left_padding
    }

    /// Mask and positions for `num_queries` new columns.
    pub fn layout(&self, num_queries: i32) -> Result<BatchLayout, Exception> {
        BatchLayout::new(&self.left_padding, self.len, num_queries)
    }

    /// Writes a layer's new keys/values (`[B, kv_heads, T, head_dim]`) after the
    /// current columns and returns all of them (`[B, kv_heads, len + T, head_dim]`).
    /// Call [`KvCache::advance`] once every layer has written.
    pub fn update(
        &mut self,
        layer: usize,
        keys: &Array,
        values: &Array,
    ) -> Result<(Array, Array), Exception> {
        let new = keys.dim(2);
        let end = self.len + new;
        let slot = &mut self.layers[layer];
        let capacity = slot.as_ref().map_or(0, |(k, _)| k.dim(2));
        if end > capacity {
            let grow = |old: Option<&Array>, fresh: &Array| -> Result<Array, Exception> {
                let blocks = (end - capacity + Self::BLOCK - 1) / Self::BLOCK;
                let shape = [
                    fresh.dim(0),
                    fresh.dim(1),
                    blocks * Self::BLOCK,
                    fresh.dim(3),
                ];
                let zeros = ops::zeros_dtype(&shape, fresh.dtype())?;
                match old {
                    // Only the written columns are worth keeping.
                    Some(old) => {
                        ops::concatenate(&[old.try_index((.., .., ..self.len, ..))?, zeros], 2)
                    }
                    None => Ok(zeros),
                }
            };
            let (old_k, old_v) = match slot.take() {
                Some((k, v)) => (Some(k), Some(v)),
                None => (None, None),
            };
            *slot = Some((grow(old_k.as_ref(), keys)?, grow(old_v.as_ref(), values)?));
        }
        let Some((k, v)) = slot.as_mut() else {
            return Err(Exception::custom("KV cache slot missing after growth"));
        };
        k.try_index_mut((.., .., self.len..end, ..), keys)?;
        v.try_index_mut((.., .., self.len..end, ..), values)?;
        Ok((
            k.try_index((.., .., ..end, ..))?,
            v.try_index((.., .., ..end, ..))?,
        ))
    }

    /// Records that `columns` new columns were written by every layer.
    pub fn advance(&mut self, columns: i32) {
        self.len += columns;
    }

    /// Keeps rows `rows` in that order (indices may repeat): repeating rows turns one
    /// prefilled prompt into a group of completions; leaving rows out drops finished
    /// ones. Leading columns that became padding in every row are cut off.
    pub fn select_rows(&mut self, rows: &[usize]) -> Result<(), Exception> {
        if let Some(r) = rows.iter().find(|&&r| r >= self.batch_size()) {
            return Err(Exception::custom(format!(
                "row {r} is outside a cache of {} rows",
                self.batch_size()
            )));
        }
        let index = Array::from_iter(rows.iter().map(|&r| r as i32), &[rows.len() as i32]);
        let padding: Vec<i32> = rows.iter().map(|&r| self.left_padding[r]).collect();
        let trim = padding.iter().copied().min().unwrap_or(0).min(self.len);
        for slot in self.layers.iter_mut() {
            if let Some((k, v)) = slot.take() {
                let mut k = k.take_axis(&index, 0)?;
                let mut v = v.take_axis(&index, 0)?;
                if trim > 0 {
                    k = k.try_index((.., .., trim.., ..))?;
                    v = v.try_index((.., .., trim.., ..))?;
                }
                *slot = Some((k, v));
            }
        }
        self.len -= trim;
        self.left_padding = padding.iter().map(|p| p - trim).collect();
        Ok(())
    }

    /// The arrays held, for evaluation and memory accounting.
    pub fn arrays(&self) -> impl Iterator<Item = &Array> {
        self.layers.iter().flatten().flat_map(|(k, v)| [k, v])
    }
}
