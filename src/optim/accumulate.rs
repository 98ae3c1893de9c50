//! Gradient accumulation: micro-batch gradients combined into one update.

use mlx_rs::error::Exception;
use mlx_rs::module::FlattenedModuleParam;
use mlx_rs::Array;

/// How the micro-batch gradients of one update combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradReduction {
    /// Add them (each micro-batch loss was normalized by batch-wide totals).
    Sum,
    /// Average them (each micro-batch loss is a mean of its own).
    Mean,
}

/// Running sum of micro-batch gradients, keyed by parameter name.
#[derive(Default)]
pub struct GradAccumulator {
    sum: FlattenedModuleParam,
    count: usize,
}

impl GradAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one micro-batch's gradients and evaluates the running sums, so the graph
    /// does not grow with the number of micro-batches.
    pub fn add(&mut self, gradients: FlattenedModuleParam) -> Result<(), Exception> {
        if self.count == 0 {
            self.sum = gradients;
        } else {
            for (name, g) in gradients {
                let total = match self.sum.remove(&name) {
                    Some(s) => s.add(&g)?,
                    None => g,
                };
                self.sum.insert(name, total);
            }
        }
        self.count += 1;
        mlx_rs::transforms::eval(self.sum.values())
    }

    /// Micro-batches added so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The combined gradients, and an empty accumulator left behind.
    pub fn finish(&mut self, reduction: GradReduction) -> Result<FlattenedModuleParam, Exception> {
        let count = std::mem::take(&mut self.count);
        let sum = std::mem::take(&mut self.sum);
        match reduction {
            GradReduction::Sum => Ok(sum),
            GradReduction::Mean => scale_gradients(sum, 1.0 / count.max(1) as f32),
        }
    }
}

/// Every gradient times `factor` (in the gradient's dtype).
pub fn scale_gradients(gradients: FlattenedModuleParam, factor: f32) -> Result<FlattenedModuleParam, Exception> {
    let scale = Array::from_f32(factor);
    gradients
        .into_iter()
        .map(|(name, g)| Ok((name, g.multiply(scale.as_dtype(g.dtype())?)?)))
        .collect()
}
