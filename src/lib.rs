//! lora-grpo: fine-tune LLMs with LoRA adapters using GRPO on MLX.
//!
//! The library is what the `lora-grpo` binary is built from; each domain has its
//! own module and typed errors (see `error`).

pub mod doctor;
pub mod mlx_info;
pub mod error;
pub mod platform;
pub mod tokenizer;
