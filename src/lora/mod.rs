//! LoRA adapters in mlx-lm's format: the config, the weight file, and (with the model)
//! attaching, switching and saving the adapter tensors.

pub mod config;
pub mod weights;

pub use config::{checkpoint_file, AdapterConfig, LoraParameters, CONFIG_FILE, WEIGHTS_FILE};
