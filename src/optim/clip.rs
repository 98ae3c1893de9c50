//! Global gradient-norm clipping, kept lazy: mlx-rs's `clip_grad_norm` reads the norm
//! back to the host to decide; here the scale is an array op, so the trainer can evaluate
//! clipped gradients, norm and parameters together.

use mlx_rs::error::Exception;
use mlx_rs::module::FlattenedModuleParam;
use mlx_rs::ops::minimum;
use mlx_rs::{Array, Dtype};

/// Scales all gradients by `min(1, max_norm / (norm + 1e-6))`, where `norm` is the L2
/// norm of all of them together (PyTorch's `clip_grad_norm_` rule). Returns the clipped
/// gradients and the norm before clipping (a scalar f32 array).
pub fn clip_grad_norm(
    gradients: &FlattenedModuleParam,
    max_norm: f32,
) -> Result<(FlattenedModuleParam, Array), Exception> {
    // Summed in name order: a HashMap's order changes from process to process, and with
    // it the norm's last bits, which made runs with the same seed drift apart.
    let mut names: Vec<_> = gradients.keys().collect();
    names.sort();
    let mut squares = Array::from_f32(0.0);
    for name in names {
        let g = &gradients[name];
        squares = squares.add(g.as_dtype(Dtype::Float32)?.square()?.sum(false)?)?;
    }
    let norm = squares.sqrt()?;
    let scale = minimum(
        Array::from_f32(max_norm).divide(norm.add(Array::from_f32(1e-6))?)?,
        Array::from_f32(1.0),
    )?;
    let clipped = gradients
        .iter()
        .map(|(name, g)| Ok((name.clone(), g.multiply(scale.as_dtype(g.dtype())?)?)))
        .collect::<Result<FlattenedModuleParam, Exception>>()?;
    Ok((clipped, norm))
}
