//! Benchmarks behind `lora-grpo bench`: generation speed on a model directory, or on a
//! random model built from a config when no checkpoint can be brought along (GPU hosts).

pub mod generate;
pub mod random_model;
