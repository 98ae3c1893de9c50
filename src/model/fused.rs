//! Element-wise tails of layers compiled into single kernels: a decoding step is bound by
//! per-op costs, and MLX's `compile` fuses element-wise ops into one. `LORA_GRPO_COMPILE=0`
//! runs them uncompiled (mlx-rs's compile has crashed with frozen parameters before).

use std::cell::RefCell;
use std::sync::OnceLock;

use mlx_rs::error::Exception;
use mlx_rs::transforms::compile::compile;
use mlx_rs::{ops, Array};

type Compiled2 = Box<dyn for<'a> FnMut((&'a Array, &'a Array)) -> Result<Array, Exception>>;
type Compiled3 = Box<dyn for<'a> FnMut((&'a Array, &'a Array, &'a Array)) -> Result<Array, Exception>>;

fn swiglu_ops((gate, up): (&Array, &Array)) -> Result<Array, Exception> {
    gate.multiply(ops::sigmoid(gate)?)?.multiply(up)
}

fn add_scaled_ops((y, update, scale): (&Array, &Array, &Array)) -> Result<Array, Exception> {
    y.add(update.multiply(scale)?.as_dtype(y.dtype())?)
}

thread_local! {
    // Compiled once per thread: mlx-rs gives every `compile` call a new cache id, so a
    // function compiled at each call (as `nn::silu` is) is traced again every time.
    static SWIGLU: RefCell<Compiled2> = RefCell::new(Box::new(compile(swiglu_ops, true)));
    static ADD_SCALED: RefCell<Compiled3> = RefCell::new(Box::new(compile(add_scaled_ops, true)));
}

/// Whether to compile: on unless the environment sets `LORA_GRPO_COMPILE` to 0/false/off.
pub fn compile_enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        let value = std::env::var("LORA_GRPO_COMPILE").unwrap_or_default();
        !matches!(value.trim().to_ascii_lowercase().as_str(), "0" | "false" | "off")
    })
}

/// `silu(gate) * up`.
pub fn swiglu(gate: &Array, up: &Array) -> Result<Array, Exception> {
    match compile_enabled() {
        true => SWIGLU.with(|f| (f.borrow_mut())((gate, up))),
        false => swiglu_ops((gate, up)),
    }
}

/// `y + scale * update`, cast to `y`'s dtype (a LoRA adapter's output may be f32).
pub fn add_scaled(y: &Array, update: &Array, scale: &Array) -> Result<Array, Exception> {
    match compile_enabled() {
        true => ADD_SCALED.with(|f| (f.borrow_mut())((y, update, scale))),
        false => add_scaled_ops((y, update, scale)),
    }
}
