//! Element-wise tails of layers compiled into single kernels: a decoding step is bound by
//! kernel launches, and MLX's `compile` fuses element-wise ops into one.

use std::cell::RefCell;

use mlx_rs::error::Exception;
use mlx_rs::transforms::compile::compile;
use mlx_rs::{ops, Array};

type Compiled2 = Box<dyn for<'a> FnMut((&'a Array, &'a Array)) -> Result<Array, Exception>>;
type Compiled3 = Box<dyn for<'a> FnMut((&'a Array, &'a Array, &'a Array)) -> Result<Array, Exception>>;

thread_local! {
    // Compiled once per thread: mlx-rs gives every `compile` call a new cache id, so a
    // function compiled at each call (as `nn::silu` is) is traced again every time.
    static SWIGLU: RefCell<Compiled2> = RefCell::new(Box::new(compile(
        |(gate, up): (&Array, &Array)| -> Result<Array, Exception> {
            gate.multiply(ops::sigmoid(gate)?)?.multiply(up)
        },
        true,
    )));
    static ADD_SCALED: RefCell<Compiled3> = RefCell::new(Box::new(compile(
        |(y, update, scale): (&Array, &Array, &Array)| -> Result<Array, Exception> {
            y.add(update.multiply(scale)?.as_dtype(y.dtype())?)
        },
        true,
    )));
}

/// `silu(gate) * up`.
pub fn swiglu(gate: &Array, up: &Array) -> Result<Array, Exception> {
    SWIGLU.with(|f| (f.borrow_mut())((gate, up)))
}

/// `y + scale * update`, cast to `y`'s dtype (a LoRA adapter's output may be f32).
pub fn add_scaled(y: &Array, update: &Array, scale: &Array) -> Result<Array, Exception> {
    ADD_SCALED.with(|f| (f.borrow_mut())((y, update, scale)))
}
