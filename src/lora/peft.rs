//! Hugging Face PEFT's LoRA layout, to and from mlx-lm's.
//!
//! PEFT keeps `adapter_model.safetensors` with `base_model.model.<path>.lora_A.weight`
//! `(r, in)` and `.lora_B.weight` `(out, r)` (the transposes of mlx-lm's `lora_a`
//! `(in, r)` and `lora_b` `(r, out)`), and an `adapter_config.json` with `r`,
//! `lora_alpha` (mlx-lm's `scale` is `lora_alpha / r`), `target_modules` and
//! `layers_to_transform`. The conversion only transposes, so a round trip is bitwise
//! lossless.

use mlx_rs::Array;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::config::{AdapterConfig, LoraParameters, CONFIG_FILE, WEIGHTS_FILE};
use super::merge::check_output;
use super::weights;
use crate::error::{AdapterError, ExportError};

/// PEFT's adapter weights file.
pub const PEFT_WEIGHTS_FILE: &str = "adapter_model.safetensors";
/// Prefix of every PEFT key: the `PeftModel` wrapper, then the `*ForCausalLM` model.
const KEY_PREFIX: &str = "base_model.model.";
const A_SUFFIX: &str = ".lora_A.weight";
const B_SUFFIX: &str = ".lora_B.weight";

/// Whether `dir` holds a PEFT adapter (its config names a `peft_type`) rather than an
/// mlx-lm one.
pub fn is_peft_dir(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join(CONFIG_FILE))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .is_some_and(|v| v.get("peft_type").is_some())
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct PeftExport {
    pub out: PathBuf,
    /// Adapted modules (one `lora_A`/`lora_B` pair each).
    pub modules: usize,
    pub target_modules: Vec<String>,
    /// `None` when every block is adapted.
    pub layers_to_transform: Option<Vec<i64>>,
    pub base_model: Option<String>,
}

/// What an import wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct PeftImport {
    pub out: PathBuf,
    pub modules: usize,
    pub config: AdapterConfig,
}

/// Writes the mlx-lm adapter in `adapter_dir` (its `adapter_file`, default
/// `adapters.safetensors`) to `out` in PEFT's layout. `base_model` goes to
/// `base_model_name_or_path`; by default it is the `model` that `mlx_lm.lora` recorded.
pub fn export(
    adapter_dir: &Path,
    adapter_file: Option<&str>,
    out: &Path,
    base_model: Option<&str>,
    force: bool,
) -> Result<PeftExport, ExportError> {
    check_output(out, force, &[(adapter_dir, "adapter")])?;
    let config = AdapterConfig::read(adapter_dir)?;
    let source = adapter_dir.join(adapter_file.unwrap_or(WEIGHTS_FILE));
    let tensors = weights::load(&source)?;
    let p = &config.lora_parameters;
    let modules = mlx_pairs(&tensors, p.rank, &source)?;
    let layout = Layout::of(modules.keys().map(String::as_str), &source)?;
    let target_modules = leaf_names(&layout.keys(p.keys.as_deref()), &source)?;
    let layers_to_transform = (config.num_layers >= 0).then(|| layout.blocks.clone());
    let base_model = base_model.map(str::to_string).or_else(|| {
        config
            .extra
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let peft_config = json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": p.rank,
        // f64 holds scale * rank exactly, so the import's division gives `scale` back.
        "lora_alpha": p.scale as f64 * p.rank as f64,
        // The f32's shortest decimal (0.05, not 0.0500000007), which reads back to it.
        "lora_dropout": p.dropout.to_string().parse::<f64>().unwrap_or(p.dropout as f64),
        "target_modules": target_modules,
        "layers_to_transform": layers_to_transform,
        "bias": "none",
        "fan_in_fan_out": false,
        "use_rslora": false,
        "use_dora": false,
        "modules_to_save": null,
        "rank_pattern": {},
        "alpha_pattern": {},
        "init_lora_weights": true,
        "inference_mode": true,
    });
    let mut peft_tensors = BTreeMap::new();
    for (path, (a, b)) in &modules {
        peft_tensors.insert(format!("{KEY_PREFIX}{path}{A_SUFFIX}"), a.t());
        peft_tensors.insert(format!("{KEY_PREFIX}{path}{B_SUFFIX}"), b.t());
    }
    crate::atomic::write_dir(
        out,
        |staging| {
            weights::save(&staging.join(PEFT_WEIGHTS_FILE), &peft_tensors)?;
            super::merge::write::write_json(&staging.join(CONFIG_FILE), &peft_config)
        },
        |path, source| ExportError::Io {
            path: path.to_path_buf(),
            source,
        },
    )?;
    Ok(PeftExport {
        out: out.to_path_buf(),
        modules: modules.len(),
        target_modules,
        layers_to_transform,
        base_model,
    })
}

/// Writes the PEFT adapter in `peft_dir` to `out` as an mlx-lm adapter directory, which
/// `lora-grpo` and `mlx_lm` load for generation, merging or further training.
pub fn import(peft_dir: &Path, out: &Path, force: bool) -> Result<PeftImport, ExportError> {
    check_output(out, force, &[(peft_dir, "PEFT adapter")])?;
    let (config, tensors) = read(peft_dir)?;
    crate::atomic::write_dir(
        out,
        |staging| {
            weights::save(&staging.join(WEIGHTS_FILE), &tensors)?;
            config.write(staging)
        },
        |path, source| AdapterError::Io {
            path: path.to_path_buf(),
            source,
        },
    )?;
    Ok(PeftImport {
        out: out.to_path_buf(),
        modules: tensors.len() / 2,
        config,
    })
}

/// The mlx-lm view of a PEFT adapter: its config and its `lora_a` / `lora_b` tensors.
///
/// mlx-lm adapts the same modules in each of the last `num_layers` blocks, so the
/// adapted blocks must be consecutive and share one set of modules. Whether they are the
/// *last* blocks of the base is only known once the adapter meets the model: loading it
/// onto a base with more blocks fails there, naming the missing tensors.
pub fn read(dir: &Path) -> Result<(AdapterConfig, BTreeMap<String, Array>), AdapterError> {
    let config_path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&config_path).map_err(|source| AdapterError::Io {
        path: config_path.clone(),
        source,
    })?;
    let peft: PeftConfig = serde_json::from_str(&text).map_err(|source| AdapterError::Config {
        path: config_path.clone(),
        source,
    })?;
    peft.check(&config_path)?;
    let weights_path = dir.join(PEFT_WEIGHTS_FILE);
    if !weights_path.is_file() && dir.join("adapter_model.bin").is_file() {
        return Err(AdapterError::Unsupported {
            path: dir.join("adapter_model.bin"),
            detail:
                "PyTorch pickle weights are not read; save the adapter with safe_serialization=True"
                    .into(),
        });
    }
    let tensors = weights::load(&weights_path)?;
    let mut mlx_tensors = BTreeMap::new();
    for (path, (a, b)) in peft_pairs(&tensors, peft.r, &weights_path)? {
        mlx_tensors.insert(format!("{path}.lora_a"), a.t());
        mlx_tensors.insert(format!("{path}.lora_b"), b.t());
    }
    let paths: Vec<String> = mlx_tensors
        .keys()
        .filter_map(|k| k.strip_suffix(".lora_a"))
        .map(str::to_string)
        .collect();
    let layout = Layout::of(paths.iter().map(String::as_str), &weights_path)?;
    if layout.blocks.windows(2).any(|w| w[1] != w[0] + 1) {
        return Err(AdapterError::Unsupported {
            path: weights_path,
            detail: format!(
                "adapted blocks {:?} are not consecutive; mlx-lm adapters cover the last N blocks",
                layout.blocks
            ),
        });
    }
    // Blocks from the first one on mean all of them; otherwise the last N.
    let num_layers = match layout.blocks.first() {
        None | Some(0) => -1,
        Some(_) => layout.blocks.len() as i32,
    };
    let order = peft
        .target_modules
        .as_ref()
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
    let mut extra = Map::new();
    if let Some(base) = &peft.base_model_name_or_path {
        extra.insert("model".into(), Value::String(base.clone()));
    }
    let config = AdapterConfig {
        fine_tune_type: "lora".into(),
        num_layers,
        lora_parameters: LoraParameters {
            rank: peft.r,
            scale: peft.scale() as f32,
            dropout: peft.lora_dropout,
            keys: Some(layout.keys(order.as_deref())),
        },
        extra,
    };
    Ok((config, mlx_tensors))
}

/// The fields of PEFT's `LoraConfig` that decide the conversion.
#[derive(Debug, Deserialize)]
struct PeftConfig {
    peft_type: String,
    r: i32,
    lora_alpha: f64,
    #[serde(default)]
    lora_dropout: f32,
    #[serde(default)]
    target_modules: Option<Value>,
    #[serde(default)]
    use_rslora: bool,
    #[serde(default)]
    use_dora: bool,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default)]
    bias: Option<String>,
    #[serde(default)]
    lora_bias: bool,
    #[serde(default)]
    modules_to_save: Option<Vec<String>>,
    #[serde(default)]
    rank_pattern: Option<Map<String, Value>>,
    #[serde(default)]
    alpha_pattern: Option<Map<String, Value>>,
    #[serde(default)]
    base_model_name_or_path: Option<String>,
}

impl PeftConfig {
    /// Refuses what mlx-lm's LoRA cannot express, naming the key.
    fn check(&self, path: &Path) -> Result<(), AdapterError> {
        let refuse = |detail: String| {
            Err(AdapterError::Unsupported {
                path: path.to_path_buf(),
                detail,
            })
        };
        let non_empty = |m: &Option<Map<String, Value>>| m.as_ref().is_some_and(|m| !m.is_empty());
        if self.peft_type != "LORA" {
            return refuse(format!(
                "`peft_type` is \"{}\"; only \"LORA\" adapters can be converted",
                self.peft_type
            ));
        }
        if self.r <= 0 || !(self.lora_alpha.is_finite() && (0.0..1.0).contains(&self.lora_dropout))
        {
            return refuse(format!("`r` must be > 0, `lora_alpha` finite and 0 <= `lora_dropout` < 1; found {}, {}, {}", self.r, self.lora_alpha, self.lora_dropout));
        }
        if self.use_dora {
            return refuse("`use_dora` is true: DoRA adapters are not supported".into());
        }
        if self.fan_in_fan_out {
            return refuse(
                "`fan_in_fan_out` is true (GPT-2 style Conv1D weights); not supported".into(),
            );
        }
        if self.bias.as_deref().is_some_and(|b| b != "none") || self.lora_bias {
            return refuse(
                "`bias`/`lora_bias` train bias vectors, which mlx-lm adapters cannot hold".into(),
            );
        }
        if self.modules_to_save.as_ref().is_some_and(|m| !m.is_empty()) {
            return refuse(
                "`modules_to_save` stores fully trained modules, which mlx-lm adapters cannot hold"
                    .into(),
            );
        }
        if non_empty(&self.rank_pattern) || non_empty(&self.alpha_pattern) {
            return refuse("`rank_pattern`/`alpha_pattern` give modules their own rank or alpha; mlx-lm adapters use one".into());
        }
        Ok(())
    }

    /// mlx-lm's scale: `lora_alpha / r`, or `lora_alpha / sqrt(r)` with rsLoRA.
    fn scale(&self) -> f64 {
        match self.use_rslora {
            true => self.lora_alpha / (self.r as f64).sqrt(),
            false => self.lora_alpha / self.r as f64,
        }
    }
}

/// `(lora_a, lora_b)` by module path from mlx-lm tensors, with shapes checked.
fn mlx_pairs(
    tensors: &BTreeMap<String, Array>,
    rank: i32,
    file: &Path,
) -> Result<BTreeMap<String, (Array, Array)>, AdapterError> {
    fn split(key: &str) -> Option<(&str, bool)> {
        key.strip_suffix(".lora_a")
            .map(|p| (p, true))
            .or_else(|| key.strip_suffix(".lora_b").map(|p| (p, false)))
    }
    pairs(tensors, split, rank, file, "(in, r)", "(r, out)", |a, b| {
        (a[1], b[0])
    })
}

/// `(lora_A, lora_B)` by module path from PEFT tensors, with shapes checked.
fn peft_pairs(
    tensors: &BTreeMap<String, Array>,
    rank: i32,
    file: &Path,
) -> Result<BTreeMap<String, (Array, Array)>, AdapterError> {
    fn split(key: &str) -> Option<(&str, bool)> {
        let rest = key.strip_prefix(KEY_PREFIX)?;
        rest.strip_suffix(A_SUFFIX)
            .map(|p| (p, true))
            .or_else(|| rest.strip_suffix(B_SUFFIX).map(|p| (p, false)))
    }
    if let Some(key) = tensors.keys().find(|k| !k.starts_with(KEY_PREFIX)) {
        return Err(AdapterError::Unsupported {
            path: file.to_path_buf(),
            detail: format!("tensor `{key}` does not start with `{KEY_PREFIX}` (the PeftModel prefix of a causal LM)"),
        });
    }
    pairs(tensors, split, rank, file, "(r, in)", "(out, r)", |a, b| {
        (a[0], b[1])
    })
}

/// Groups `tensors` into A/B pairs by module path (`split` gives a key's path and whether
/// it is the A side); every pair must be complete, 2-D and of rank `rank` (`ranks` reads
/// it from the two shapes).
fn pairs(
    tensors: &BTreeMap<String, Array>,
    split: fn(&str) -> Option<(&str, bool)>,
    rank: i32,
    file: &Path,
    a_shape: &str,
    b_shape: &str,
    ranks: impl Fn(&[i32], &[i32]) -> (i32, i32),
) -> Result<BTreeMap<String, (Array, Array)>, AdapterError> {
    let mismatch = |detail: String| AdapterError::Mismatch {
        path: file.to_path_buf(),
        detail,
    };
    let mut sides: BTreeMap<&str, (Option<&Array>, Option<&Array>)> = BTreeMap::new();
    for (key, array) in tensors {
        let (path, is_a) = split(key).ok_or_else(|| AdapterError::Unsupported {
            path: file.to_path_buf(),
            detail: format!("tensor `{key}` is not a LoRA A/B matrix (embedding LoRA, DoRA magnitudes and bias vectors are not supported)"),
        })?;
        let entry = sides.entry(path).or_default();
        *(if is_a { &mut entry.0 } else { &mut entry.1 }) = Some(array);
    }
    let mut out = BTreeMap::new();
    for (path, side) in sides {
        let (Some(a), Some(b)) = side else {
            return Err(mismatch(format!(
                "module `{path}` has only one of its two LoRA matrices"
            )));
        };
        let (sa, sb) = (a.shape(), b.shape());
        if sa.len() != 2 || sb.len() != 2 || ranks(sa, sb) != (rank, rank) {
            return Err(mismatch(format!(
                "module `{path}`: LoRA shapes {sa:?} and {sb:?} are not {a_shape} and {b_shape} with r = {rank}"
            )));
        }
        out.insert(path.to_string(), (a.clone(), b.clone()));
    }
    if out.is_empty() {
        return Err(mismatch("the file holds no LoRA tensors".into()));
    }
    Ok(out)
}

/// Which modules of which blocks an adapter covers.
#[derive(Debug)]
struct Layout {
    /// Indices of the adapted blocks, ascending.
    blocks: Vec<i64>,
    /// Module paths inside a block (`self_attn.q_proj`), the same in every adapted block.
    in_block: BTreeSet<String>,
    /// Adapted modules outside the blocks (`lm_head`).
    outside: BTreeSet<String>,
}

impl Layout {
    fn of<'p>(paths: impl Iterator<Item = &'p str>, file: &Path) -> Result<Self, AdapterError> {
        let mut per_block: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
        let mut outside = BTreeSet::new();
        for path in paths {
            let block = path
                .strip_prefix("model.layers.")
                .and_then(|rest| rest.split_once('.'))
                .and_then(|(i, key)| Some((i.parse::<i64>().ok()?, key)));
            match block {
                Some((i, key)) => {
                    per_block.entry(i).or_default().insert(key.to_string());
                }
                None => {
                    outside.insert(path.to_string());
                }
            }
        }
        let in_block = per_block.values().next().cloned().unwrap_or_default();
        if let Some((i, keys)) = per_block.iter().find(|(_, keys)| **keys != in_block) {
            let first = per_block.keys().next().copied().unwrap_or_default();
            return Err(AdapterError::Unsupported {
                path: file.to_path_buf(),
                detail: format!(
                    "block {i} adapts {keys:?} but block {first} adapts {in_block:?}; mlx-lm adapters use the same modules in every adapted block"
                ),
            });
        }
        Ok(Self {
            blocks: per_block.into_keys().collect(),
            in_block,
            outside,
        })
    }

    /// Every adapted module key (in-block paths, then outside ones), ordered as `order`
    /// names them (mlx-lm keys, or PEFT target_modules that match a key's end), the rest
    /// after them in sorted order.
    fn keys(&self, order: Option<&[String]>) -> Vec<String> {
        let mut keys: Vec<String> = self.in_block.iter().chain(&self.outside).cloned().collect();
        let position = |key: &String| {
            order
                .and_then(|names| {
                    names
                        .iter()
                        .position(|m| key == m || key.ends_with(&format!(".{m}")))
                })
                .unwrap_or(usize::MAX)
        };
        keys.sort_by_key(|k| position(k));
        keys
    }
}

/// PEFT `target_modules`: the last component of each key (`q_proj`), which PEFT matches
/// against the end of module names; two keys with one leaf name would be ambiguous.
fn leaf_names(keys: &[String], file: &Path) -> Result<Vec<String>, AdapterError> {
    let mut seen = BTreeMap::new();
    for key in keys {
        let leaf = key.rsplit('.').next().unwrap_or(key);
        if let Some(other) = seen.insert(leaf.to_string(), key) {
            return Err(AdapterError::Unsupported {
                path: file.to_path_buf(),
                detail: format!("modules `{other}` and `{key}` share the name `{leaf}`, which PEFT's target_modules cannot tell apart"),
            });
        }
    }
    Ok(keys
        .iter()
        .map(|k| k.rsplit('.').next().unwrap_or(k).to_string())
        .collect())
}
