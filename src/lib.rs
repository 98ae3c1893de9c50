//! lora-grpo: fine-tune LLMs with LoRA adapters using GRPO on MLX.
//!
//! The library is what the `lora-grpo` binary is built from; each domain has its
//! own module and typed errors (see `error`).

pub mod doctor;
pub mod mlx_info;
pub mod error;
pub mod generate;
pub mod model;
pub mod platform;
pub mod grpo;
pub mod optim;
pub mod recipe;
pub mod atomic;
pub mod bench;
pub mod lora;
pub mod plugin;
pub mod distributed;
pub mod tokenizer;
