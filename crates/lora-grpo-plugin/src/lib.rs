//! SDK for lora-grpo plugins: reward functions and dataset formats that the trainer
//! loads at run time from a shared library.
//!
//! A plugin is a crate built as a `cdylib` (plus `rlib`, so its own tests can call it)
//! that depends only on this SDK. You implement one safe trait, [`RewardFunction`] or
//! [`Dataset`], and name it in [`export_reward!`] or [`export_dataset!`]; the macro
//! writes the C ABI (see [`abi`]): a versioned entry symbol, a header the host checks
//! before calling anything, and `extern "C"` functions that catch panics and hand
//! errors back as messages. Settings arrive as the JSON object from the recipe
//! ([`Config`]).
//!
//! # A reward plugin
//!
//! `Cargo.toml`:
//! ```toml
//! [package]
//! name = "exact-match"
//! version = "0.1.0"
//! edition = "2021"
//! description = "1 when the completion equals the reference answer"
//!
//! [lib]
//! crate-type = ["cdylib", "rlib"]
//!
//! [dependencies]
//! lora-grpo-plugin = { path = "../lora-grpo/crates/lora-grpo-plugin" }
//! ```
//!
//! `src/lib.rs`:
//! ```
//! use lora_grpo_plugin::serde::Deserialize;
//! use lora_grpo_plugin::{export_reward, Config, Error, RewardFunction, RewardInput};
//!
//! #[derive(Deserialize)]
//! #[serde(crate = "lora_grpo_plugin::serde", deny_unknown_fields)]
//! struct Settings {
//!     #[serde(default = "one")]
//!     correct: f32,
//!     #[serde(default)]
//!     ignore_case: bool,
//! }
//!
//! fn one() -> f32 {
//!     1.0
//! }
//!
//! pub struct ExactMatch(Settings);
//!
//! impl RewardFunction for ExactMatch {
//!     fn new(config: &Config) -> Result<Self, Error> {
//!         Ok(ExactMatch(config.parse()?))
//!     }
//!
//!     fn score(&mut self, batch: &[RewardInput<'_>]) -> Result<Vec<f32>, Error> {
//!         let same = |a: &str, b: &str| match self.0.ignore_case {
//!             true => a.trim().eq_ignore_ascii_case(b.trim()),
//!             false => a.trim() == b.trim(),
//!         };
//!         Ok(batch
//!             .iter()
//!             .map(|s| if same(s.completion, s.answer) { self.0.correct } else { 0.0 })
//!             .collect())
//!     }
//! }
//!
//! export_reward!(ExactMatch, name = "exact-match");
//!
//! // Unit tests call the trait directly (that is what the `rlib` is for).
//! let config = Config::from_json(r#"{"ignore_case": true}"#)?;
//! let mut reward = ExactMatch::new(&config)?;
//! let scores = lora_grpo_plugin::score_pairs(&mut reward, &[(" paris", "Paris"), ("Lyon", "Paris")])?;
//! assert_eq!(scores, vec![1.0, 0.0]);
//! # Ok::<(), Error>(())
//! ```
//! Build it with `cargo build --release` and check it with
//! `lora-grpo plugins check target/release/libexact_match.so`.
//!
//! # A dataset plugin
//! ```
//! use lora_grpo_plugin::{export_dataset, Config, Dataset, Error, Sample};
//!
//! /// Counts from 1 to `n` (from the config) and asks for the successor.
//! pub struct Successor { next: u64, n: u64 }
//!
//! impl Dataset for Successor {
//!     fn open(config: &Config, split: &str) -> Result<Self, Error> {
//!         if split != "train" {
//!             return Err(Error::new(format!("only a `train` split, not `{split}`")));
//!         }
//!         let n = config.value().get("n").and_then(|v| v.as_u64()).unwrap_or(3);
//!         Ok(Successor { next: 1, n })
//!     }
//!
//!     fn next_sample(&mut self) -> Option<Result<Sample, Error>> {
//!         (self.next <= self.n).then(|| {
//!             let k = self.next;
//!             self.next += 1;
//!             Ok(Sample::new(format!("What comes after {k}?"), (k + 1).to_string()))
//!         })
//!     }
//!
//!     fn size_hint(&self) -> (usize, Option<usize>) {
//!         let left = (self.n + 1 - self.next) as usize;
//!         (left, Some(left))
//!     }
//! }
//!
//! export_dataset!(Successor, name = "successor");
//!
//! let samples = lora_grpo_plugin::read_all::<Successor>(r#"{"n": 2}"#, "train")?;
//! assert_eq!(samples[1], Sample::new("What comes after 2?", "3"));
//! # Ok::<(), Error>(())
//! ```
//!
//! # Rules the host relies on
//! - One plugin per library; the header's `name` is what recipes refer to.
//! - `score` returns exactly one finite value per input, in order; the host rejects
//!   anything else.
//! - Keep the default `panic = "unwind"`: with `panic = "abort"` a panic cannot be
//!   caught and ends the whole training run.
//! - The host calls one instance from one thread at a time, and never unloads the
//!   library.

pub mod abi;
mod config;
mod dataset;
mod error;
mod export;
pub mod jsonl;
mod reward;

pub use config::Config;
pub use dataset::{read_all, Dataset, Message, Prompt, Sample};
pub use error::Error;
pub use reward::{score_pairs, RewardFunction, RewardInput};

/// Re-exported so a plugin needs no direct dependency (`#[serde(crate = "lora_grpo_plugin::serde")]`).
pub use serde;
pub use serde_json;

/// Version of this SDK, recorded in every plugin's header.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Exports a [`RewardFunction`] as this library's plugin:
/// `export_reward!(MyReward, name = "my-reward");`
#[macro_export]
macro_rules! export_reward {
    ($ty:ty, name = $name:expr $(,)?) => {
        const _: () = {
            static VTABLE: $crate::abi::RewardVTable = $crate::abi::RewardVTable::of::<$ty>();
            static HEADER: $crate::abi::PluginHeader = $crate::abi::PluginHeader::new(
                $crate::abi::kind::REWARD,
                $name,
                ::core::env!("CARGO_PKG_VERSION"),
                ::core::env!("CARGO_PKG_DESCRIPTION"),
                &VTABLE as *const $crate::abi::RewardVTable as *const ::core::ffi::c_void,
                ::core::mem::size_of::<$crate::abi::RewardVTable>(),
            );
            $crate::__export_entry!(HEADER);
        };
    };
}

/// Exports a [`Dataset`] as this library's plugin:
/// `export_dataset!(MyFormat, name = "my-format");`
#[macro_export]
macro_rules! export_dataset {
    ($ty:ty, name = $name:expr $(,)?) => {
        const _: () = {
            static VTABLE: $crate::abi::DatasetVTable = $crate::abi::DatasetVTable::of::<$ty>();
            static HEADER: $crate::abi::PluginHeader = $crate::abi::PluginHeader::new(
                $crate::abi::kind::DATASET,
                $name,
                ::core::env!("CARGO_PKG_VERSION"),
                ::core::env!("CARGO_PKG_DESCRIPTION"),
                &VTABLE as *const $crate::abi::DatasetVTable as *const ::core::ffi::c_void,
                ::core::mem::size_of::<$crate::abi::DatasetVTable>(),
            );
            $crate::__export_entry!(HEADER);
        };
    };
}

/// The two exported symbols; their names must match `abi::ENTRY_SYMBOL` and
/// `abi::PROBE_SYMBOL`.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_entry {
    ($header:ident) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn lora_grpo_plugin_entry_v1() -> *const $crate::abi::PluginHeader {
            &$header
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn lora_grpo_plugin_abi() -> *const $crate::abi::AbiProbe {
            &$crate::abi::PROBE
        }
    };
}

#[cfg(test)]
mod tests;
