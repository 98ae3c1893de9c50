//! LoRA adapters in mlx-lm's format: the config, the weight file, and (with the model)
//! attaching, switching and saving the adapter tensors; merging an adapter into its base
//! model (`merge`) and converting it to and from Hugging Face PEFT (`peft`).

pub mod attach;
pub mod config;
pub mod merge;
pub mod peft;
pub mod weights;

pub use attach::{adapter_tensors, attach, block_keys, load, save, set_adapter_tensors, trainable_count};
pub use config::{checkpoint_file, AdapterConfig, LoraParameters, CONFIG_FILE, WEIGHTS_FILE};
