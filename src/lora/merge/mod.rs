//! `lora-grpo merge`: fuse a LoRA adapter into its base model and write a standalone
//! model directory that lora-grpo and mlx-lm load like any other.
//!
//! Every adapted linear becomes `W' = W + scale * (lora_a @ lora_b)^T`, computed in
//! float32 on the dequantized base weight and rounded once to the output dtype. The
//! output is dense by default, so nothing of the adapter is lost; `--quantize` stores it
//! quantized again and reports how much of the adapter's change survived (see
//! [`survival`]).

pub mod plan;
pub mod survival;
pub mod write;

pub use plan::{OutputQuantization, QuantizeArg};
pub use survival::{LayerSurvival, SurvivalReport, MOSTLY_LOST};
pub use write::{is_support_file, WrittenFile, DEFAULT_MAX_SHARD_BYTES};

use mlx_rs::module::ModuleParameters;
use mlx_rs::{Array, Dtype};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{attach, peft, set_adapter_tensors, AdapterConfig};
use crate::error::ExportError;
use crate::model::linear::StoredMatrix;
use crate::model::loader::ComputeDtype;
use crate::model::{CausalLm, ConfigFile, Linear, LoadOptions, QuantParams};

/// What to merge and how to store it.
#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// Adapter weights file inside the adapter directory (default `adapters.safetensors`;
    /// e.g. a checkpoint `0000100_adapters.safetensors`).
    pub adapter_file: Option<String>,
    /// Re-quantize the merged model (default: dense output).
    pub quantize: Option<QuantizeArg>,
    /// Float dtype of the output (default: the base's, i.e. that of its norms).
    pub dtype: Option<Dtype>,
    /// Replace an existing output directory.
    pub force: bool,
    /// Shard the weights above this many bytes per file.
    pub max_shard_bytes: u64,
}

impl Default for MergeOptions {
    fn default() -> Self {
        Self {
            adapter_file: None,
            quantize: None,
            dtype: None,
            force: false,
            max_shard_bytes: DEFAULT_MAX_SHARD_BYTES,
        }
    }
}

/// Steps of a merge, for progress output.
#[derive(Debug)]
pub enum MergeProgress<'a> {
    /// Base and adapter are loaded; `adapted` linears will be fused.
    Loaded {
        adapted: usize,
        config: &'a AdapterConfig,
    },
    /// One adapted linear was fused (`index` counts from 1).
    Fused {
        path: &'a str,
        index: usize,
        total: usize,
    },
    /// One weights file was written.
    Wrote(&'a WrittenFile),
}

/// What a merge wrote.
#[derive(Debug, Clone)]
pub struct MergeSummary {
    pub out: PathBuf,
    /// Float dtype of the output.
    pub dtype: Dtype,
    /// The adapted linears, by checkpoint path.
    pub fused: Vec<String>,
    /// Default parameters of a quantized output; `None` for a dense one.
    pub quantization: Option<QuantParams>,
    /// Delta survival of the re-quantized adapted layers (empty for a dense output).
    pub survival: SurvivalReport,
    /// Matrices left dense in a quantized output because their inputs do not fill groups.
    pub left_dense: Vec<String>,
    pub weights: Vec<WrittenFile>,
    /// Tokenizer and other support files copied from the base.
    pub copied: Vec<String>,
}

/// Fuses the adapter in `adapter_dir` (mlx-lm or PEFT layout) into the model in
/// `model_dir` and writes the merged model to `out`, atomically: a failure leaves no
/// `out` behind (and an existing one, replaced under `force`, untouched).
pub fn merge(
    model_dir: &Path,
    adapter_dir: &Path,
    out: &Path,
    options: &MergeOptions,
    progress: &mut dyn FnMut(MergeProgress),
) -> Result<MergeSummary, ExportError> {
    check_output(
        out,
        options.force,
        &[(model_dir, "base model"), (adapter_dir, "adapter")],
    )?;
    let config = ConfigFile::read(model_dir)?;
    let load = LoadOptions {
        dtype: ComputeDtype::Checkpoint,
        ..LoadOptions::default()
    };
    let mut model = crate::model::load(model_dir, &load)?;
    let adapter = load_adapter(&mut model, adapter_dir, options.adapter_file.as_deref())?;
    let dtype = options.dtype.unwrap_or(model.model.norm.weight.dtype());
    let plan = match options.quantize {
        Some(arg) => Some(OutputQuantization::new(
            arg,
            model.spec().quantization.as_ref(),
        )?),
        None => None,
    };

    let fused = adapted_paths(&mut model);
    progress(MergeProgress::Loaded {
        adapted: fused.len(),
        config: &adapter,
    });
    let mut convert = Conversion {
        plan: plan.as_ref(),
        dtype,
        stored: Vec::new(),
        left_dense: Vec::new(),
        survival: SurvivalReport::default(),
    };
    let tensors = convert.model(model, &mut |path, index| {
        progress(MergeProgress::Fused {
            path,
            index,
            total: fused.len(),
        })
    })?;
    let values = output_config(&config, plan.as_ref(), &convert.stored);
    let (weights, copied) = crate::atomic::write_dir(
        out,
        |staging| {
            let weights =
                write::write_weights(staging, tensors, options.max_shard_bytes, &mut |f| {
                    progress(MergeProgress::Wrote(f))
                })?;
            write::write_json(&staging.join("config.json"), &values)?;
            Ok((weights, write::copy_support_files(model_dir, staging)?))
        },
        |path, source| ExportError::Io {
            path: path.to_path_buf(),
            source,
        },
    )?;
    Ok(MergeSummary {
        out: out.to_path_buf(),
        dtype,
        fused,
        quantization: plan.as_ref().map(|p| p.default),
        survival: convert.survival,
        left_dense: convert.left_dense,
        weights,
        copied,
    })
}

/// Refuses an existing output without `force`, and an output that is (or contains) one
/// of the inputs even with it.
pub fn check_output(
    out: &Path,
    force: bool,
    inputs: &[(&Path, &'static str)],
) -> Result<(), ExportError> {
    if !out.exists() {
        return Ok(());
    }
    let canonical = |p: &Path| {
        p.canonicalize().map_err(|source| ExportError::Io {
            path: p.to_path_buf(),
            source,
        })
    };
    let out_canonical = canonical(out)?;
    for (input, role) in inputs {
        if canonical(input)?.starts_with(&out_canonical) {
            return Err(ExportError::OutputIsInput {
                path: out.to_path_buf(),
                role,
            });
        }
    }
    if !force {
        return Err(ExportError::OutputExists {
            path: out.to_path_buf(),
        });
    }
    Ok(())
}

/// Attaches the adapter in `dir` to `model`: mlx-lm's layout, or PEFT's (converted on
/// the fly). Keys and shapes must match the model's exactly.
fn load_adapter(
    model: &mut CausalLm,
    dir: &Path,
    file: Option<&str>,
) -> Result<AdapterConfig, ExportError> {
    if !peft::is_peft_dir(dir) {
        return Ok(super::load(model, dir, file)?);
    }
    let (config, tensors) = peft::read(dir)?;
    attach(model, &config, 0)?;
    set_adapter_tensors(model, tensors, &dir.join(peft::PEFT_WEIGHTS_FILE))?;
    Ok(config)
}

/// The base's config.json with the output's `quantization` (and its `quantization_config`
/// copy, as mlx-lm writes both), or without either for a dense output.
fn output_config(
    base: &ConfigFile,
    plan: Option<&OutputQuantization>,
    stored: &[(String, QuantParams)],
) -> Value {
    let mut values = base.values.clone();
    values.remove("quantization");
    values.remove("quantization_config");
    if let Some(plan) = plan {
        let section =
            Value::Object(plan.config_section(stored.iter().map(|(p, q)| (p.as_str(), *q))));
        values.insert("quantization".into(), section.clone());
        values.insert("quantization_config".into(), section);
    }
    Value::Object(values)
}

/// `scale * (lora_a @ lora_b)^T` `[out, in]` of an adapted layer, in the adapter's
/// dtype (float32).
fn lora_delta(layer: &Linear) -> Result<Option<Array>, ExportError> {
    match (&layer.lora_a.value, &layer.lora_b.value) {
        (Some(a), Some(b)) => {
            let delta = a
                .matmul(b)
                .and_then(|ab| ab.t().multiply(Array::from_f32(layer.lora_scale)));
            Ok(Some(delta.map_err(mlx("lora delta"))?))
        }
        _ => Ok(None),
    }
}

fn adapted_paths(model: &mut CausalLm) -> Vec<String> {
    model
        .linear_layers_mut()
        .into_iter()
        .filter(|(_, l)| l.lora_a.value.is_some())
        .map(|(p, _)| p)
        .collect()
}

fn is_float(dtype: Dtype) -> bool {
    matches!(
        dtype,
        Dtype::Float32 | Dtype::Float16 | Dtype::Bfloat16 | Dtype::Float64
    )
}

fn mlx(op: &'static str) -> impl Fn(mlx_rs::error::Exception) -> ExportError {
    move |source| ExportError::Mlx { op, source }
}

/// Turns each stored matrix of the base into its stored form in the output.
struct Conversion<'a> {
    plan: Option<&'a OutputQuantization>,
    dtype: Dtype,
    /// Matrices stored quantized, with their parameters (for the config).
    stored: Vec<(String, QuantParams)>,
    left_dense: Vec<String>,
    survival: SurvivalReport,
}

impl Conversion<'_> {
    /// Every tensor of the merged model by checkpoint key, in the output dtype (lazy: they
    /// are computed as the shards are written). `on_fused` hears of each adapted linear.
    fn model(
        &mut self,
        mut model: CausalLm,
        on_fused: &mut dyn FnMut(&str, usize),
    ) -> Result<Vec<(String, Array)>, ExportError> {
        let mut tensors: BTreeMap<String, Array> = model
            .parameters()
            .flatten()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let embed = model.model.embed_tokens.clone().into_matrix();
        self.matrix("model.embed_tokens", embed, None, &mut tensors)?;
        let mut fused = 0;
        for (path, layer) in model.linear_layers_mut() {
            let delta = lora_delta(layer)?;
            for key in ["lora_a", "lora_b"] {
                tensors.remove(&format!("{path}.{key}"));
            }
            let adapted = delta.is_some();
            self.matrix(&path, layer.clone().into_parts().0, delta, &mut tensors)?;
            if adapted {
                fused += 1;
                on_fused(&path, fused);
            }
        }
        tensors
            .into_iter()
            .map(|(key, array)| {
                let cast = is_float(array.dtype()) && array.dtype() != self.dtype;
                match cast {
                    true => Ok((key, array.as_dtype(self.dtype).map_err(mlx("astype"))?)),
                    false => Ok((key, array)),
                }
            })
            .collect()
    }

    /// Replaces `<path>.weight/.scales/.biases` in `tensors` with the output's version of
    /// `matrix` plus the optional float32 `delta` `[out, in]`.
    fn matrix(
        &mut self,
        path: &str,
        matrix: StoredMatrix,
        delta: Option<Array>,
        tensors: &mut BTreeMap<String, Array>,
    ) -> Result<(), ExportError> {
        let base_params = matrix.quantized.as_ref().map(|(_, _, q)| *q);
        let wanted = self
            .plan
            .and_then(|p| p.wanted(path, base_params.is_some()));
        let target = wanted.filter(|q| matrix.cols() % q.group_size == 0);
        if wanted.is_some() && target.is_none() {
            self.left_dense.push(path.to_string());
        }
        let output = match (delta, target) {
            // Untouched matrices keep their stored values (the final cast sets the dtype).
            (None, t) if t == base_params => matrix,
            (None, None) => StoredMatrix {
                weight: matrix.dense(self.dtype).map_err(mlx("dequantize"))?,
                quantized: None,
            },
            (None, Some(q)) => matrix
                .dense(self.dtype)
                .and_then(|w| {
                    StoredMatrix {
                        weight: w,
                        quantized: None,
                    }
                    .quantize(q)
                })
                .map_err(mlx("quantize"))?,
            (Some(delta), None) => {
                let w = matrix
                    .dense(Dtype::Float32)
                    .and_then(|w| w.add(&delta))
                    .and_then(|w| w.as_dtype(self.dtype));
                StoredMatrix {
                    weight: w.map_err(mlx("merge"))?,
                    quantized: None,
                }
            }
            (Some(delta), Some(q)) => {
                let base = matrix.dense(Dtype::Float32).map_err(mlx("dequantize"))?;
                let (merged, survival) =
                    survival::quantize_and_measure(path, &base, &delta, self.dtype, q)
                        .map_err(mlx("quantize"))?;
                self.survival.layers.push(survival);
                merged
            }
        };
        for key in ["weight", "scales", "biases"] {
            tensors.remove(&format!("{path}.{key}"));
        }
        if let Some((scales, biases, q)) = output.quantized {
            tensors.insert(format!("{path}.scales"), scales);
            tensors.insert(format!("{path}.biases"), biases);
            self.stored.push((path.to_string(), q));
        }
        tensors.insert(format!("{path}.weight"), output.weight);
        Ok(())
    }
}
