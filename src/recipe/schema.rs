//! The recipe's sections and keys, with their defaults. Field names are the YAML keys.
//!
//! Relative paths (`model.path`, `output_dir`, `plugin_dirs`) are taken relative to the
//! directory the command runs in, as with mlx-lm.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::distributed::Backend;
use crate::grpo::{ImportanceSampling, LossType, ScaleRewards};
use crate::optim::Schedule;

/// A whole training recipe: everything `lora-grpo run` needs, in one YAML file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// The base model (required).
    pub model: ModelConfig,
    /// Which layers get LoRA adapters and their shape.
    #[serde(default)]
    pub lora: LoraConfig,
    /// The GRPO algorithm: group sizes, loss, clipping, KL, step counts.
    #[serde(default)]
    pub grpo: GrpoConfig,
    /// How completions are sampled during rollouts.
    #[serde(default)]
    pub sampling: SamplingConfig,
    /// AdamW and its learning-rate schedule.
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    /// The dataset plugin and its splits (required).
    pub data: DataConfig,
    /// Reward functions; a completion's reward is their weighted sum (required, at least one).
    pub rewards: Vec<RewardConfig>,
    /// Where adapters, checkpoints, metrics and the resolved recipe are written.
    /// Default: `adapters`.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// Save a checkpoint every this many GRPO steps (and always at the end); 0 = only at
    /// the end. Default: 100.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// Held-out evaluation.
    #[serde(default)]
    pub eval: EvalConfig,
    /// Seed for data order, sampling and adapter initialisation. Default: 0.
    #[serde(default)]
    pub seed: u64,
    /// Extra folders searched for plugin libraries, before the built-in locations.
    /// Default: none.
    #[serde(default)]
    pub plugin_dirs: Vec<PathBuf>,
    /// Data-parallel training over several processes (Macs, GPUs). Default: off.
    #[serde(default)]
    pub distributed: DistributedConfig,
}

fn default_output_dir() -> PathBuf {
    PathBuf::from("adapters")
}

fn default_checkpoint_every() -> u64 {
    100
}

/// The base model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// A local model directory (an mlx-community or Hugging Face layout). Required.
    pub path: PathBuf,
    /// Quantize an unquantized checkpoint's linears and embeddings while loading.
    /// Default: none (load as stored).
    #[serde(default)]
    pub quantize: Option<QuantizeConfig>,
    /// Dequantize a quantized checkpoint to its float dtype while loading (more memory,
    /// exact gradients through the base). Default: false.
    #[serde(default)]
    pub dequantize: bool,
}

/// Affine quantization applied at load time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantizeConfig {
    /// Bits per weight: 2, 3, 4, 5, 6 or 8. Default: 4.
    #[serde(default = "default_bits")]
    pub bits: u32,
    /// Weights sharing one scale and bias: 32, 64 or 128. Default: 64.
    #[serde(default = "default_quant_group")]
    pub group_size: u32,
}

fn default_bits() -> u32 {
    4
}

fn default_quant_group() -> u32 {
    64
}

/// LoRA adapters, written in mlx-lm's `adapter_config.json` terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraConfig {
    /// Adapt the last this many transformer blocks; -1 = all. Default: 16 (as mlx-lm).
    pub num_layers: i64,
    /// Adapter rank r. Default: 8.
    pub rank: u32,
    /// Output scale: `y = base(x) + scale * (x @ A) @ B`. Default: 20.0 (as mlx-lm).
    pub scale: f64,
    /// Dropout on the adapter input, in [0, 1). Default: 0.0.
    pub dropout: f64,
    /// Module keys inside a block to adapt, e.g. `[self_attn.q_proj, self_attn.v_proj]`.
    /// Default: none given = every linear layer of the block.
    pub keys: Option<Vec<String>>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            num_layers: 16,
            rank: 8,
            scale: 20.0,
            dropout: 0.0,
            keys: None,
        }
    }
}

/// The GRPO algorithm (formulas in `crate::grpo::loss` and `crate::grpo::advantages`).
/// Defaults follow TRL's `GRPOConfig` where it has the same option.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpoConfig {
    /// Completions sampled per prompt (G), at least 2. Default: 8.
    pub group_size: u32,
    /// Prompts per GRPO step (B); a step trains on B * G completions. Default: 4.
    pub batch_size: u32,
    /// How per-token losses are averaged: `grpo`, `bnpo`, `dr_grpo` or `dapo`.
    /// Default: `dapo` (TRL's default).
    pub loss_type: LossType,
    /// Lower clipping range: the ratio is clipped below at `1 - epsilon`, in [0, 1).
    /// Default: 0.2.
    pub epsilon: f64,
    /// Upper clipping range (`1 + epsilon_high`); none = same as `epsilon`. DAPO uses 0.28.
    /// Default: none.
    pub epsilon_high: Option<f64>,
    /// KL penalty weight against the base model (adapters off); 0 skips the reference
    /// pass entirely. Default: 0.0.
    pub beta: f64,
    /// Optimizer updates made from each rollout (TRL's mu). Default: 1.
    pub num_iterations: u32,
    /// Importance ratio per `token`, or per `sequence` (GSPO). Default: `token`.
    pub importance_sampling: ImportanceSampling,
    /// Advantage scaling: by the reward std of each `group`, of the whole `batch`, or
    /// `none` (Dr. GRPO). Default: `group`.
    pub scale_rewards: ScaleRewards,
    /// Leave completions cut off at `max_completion_length` out of the loss. Default: false.
    pub mask_truncated_completions: bool,
    /// Drop groups whose completions all got the same reward (zero advantage) before the
    /// update, as DAPO's dynamic sampling does. Default: false.
    pub filter_equal_reward_groups: bool,
    /// Longest completion in tokens; longer ones are truncated. Default: 256.
    pub max_completion_length: u32,
    /// Micro-batches per optimizer update: the B * G completions are split into this many
    /// parts (as evenly as possible), at most B * G. Default: 1.
    pub gradient_accumulation_steps: u32,
    /// Clip the global gradient norm to this value; none = no clipping. Default: 1.0.
    pub max_grad_norm: Option<f64>,
    /// GRPO steps (rollouts) to train for. Default: 100.
    pub steps: u64,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        GrpoConfig {
            group_size: 8,
            batch_size: 4,
            loss_type: LossType::Dapo,
            epsilon: 0.2,
            epsilon_high: None,
            beta: 0.0,
            num_iterations: 1,
            importance_sampling: ImportanceSampling::Token,
            scale_rewards: ScaleRewards::Group,
            mask_truncated_completions: false,
            filter_equal_reward_groups: false,
            max_completion_length: 256,
            gradient_accumulation_steps: 1,
            max_grad_norm: Some(1.0),
            steps: 100,
        }
    }
}

impl GrpoConfig {
    /// The upper clipping range in effect (`epsilon_high`, or `epsilon` when unset).
    pub fn epsilon_high(&self) -> f64 {
        self.epsilon_high.unwrap_or(self.epsilon)
    }

    /// Optimizer updates over the whole run: `steps * num_iterations`.
    pub fn total_updates(&self) -> u64 {
        self.steps * u64::from(self.num_iterations)
    }
}

/// Rollout sampling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingConfig {
    /// Softmax temperature, > 0; log-probs for the loss use the same temperature.
    /// Default: 1.0.
    pub temperature: f64,
    /// Nucleus sampling mass in (0, 1]; 1 = off. Default: 1.0.
    pub top_p: f64,
    /// Keep only the k most likely tokens; 0 = off. Default: 0.
    pub top_k: u32,
    /// Drop tokens below `min_p` times the top token's probability, in [0, 1); 0 = off.
    /// Default: 0.0.
    pub min_p: f64,
    /// Stop a completion when its text ends with one of these (EOS always stops).
    /// Default: none.
    pub stop: Vec<String>,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            stop: Vec::new(),
        }
    }
}

/// AdamW and the learning-rate schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Peak learning rate. Default: 1e-5.
    pub lr: f64,
    /// Decoupled weight decay (AdamW's lambda). Default: 0.0 (as TRL; decay would pull the
    /// adapters toward zero, i.e. toward the base model).
    pub weight_decay: f64,
    /// Adam's moment decay rates, each in [0, 1). Default: [0.9, 0.999].
    pub betas: [f64; 2],
    /// Adam's denominator epsilon. Default: 1e-8.
    pub eps: f64,
    /// Correct the moments' zero-initialisation bias, as PyTorch's AdamW (TRL) does;
    /// false gives MLX's AdamW as is (mlx-lm). Default: true.
    pub bias_correction: bool,
    /// Learning-rate shape after warmup: `constant`, `linear` or `cosine` (decaying to 0
    /// at the last update). Default: `constant`.
    pub schedule: Schedule,
    /// Updates over which the learning rate rises linearly to `lr`. Default: 0.
    pub warmup_steps: u64,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            lr: 1e-5,
            weight_decay: 0.0,
            betas: [0.9, 0.999],
            eps: 1e-8,
            bias_correction: true,
            schedule: Schedule::Constant,
            warmup_steps: 0,
        }
    }
}

/// The dataset plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Plugin name (looked up in `plugin_dirs` and the built-in locations) or a path to
    /// its library file. Required.
    pub plugin: String,
    /// Settings handed to the plugin as a JSON object. Default: `{}`.
    #[serde(default)]
    pub config: Map<String, Value>,
    /// Split trained on. Default: `train`.
    #[serde(default = "default_train_split")]
    pub train_split: String,
    /// Split evaluated on; none = no evaluation. Default: none.
    #[serde(default)]
    pub eval_split: Option<String>,
    /// System prompt put before every prompt. Default: none.
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// Wrap prompts in the tokenizer's chat template; false feeds the prompt text as is.
    /// Default: true.
    #[serde(default = "default_true")]
    pub chat_template: bool,
    /// Shuffle the training prompts (seeded by `seed`) each pass. Default: true.
    #[serde(default = "default_true")]
    pub shuffle: bool,
}

fn default_train_split() -> String {
    "train".to_string()
}

fn default_true() -> bool {
    true
}

/// One reward function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardConfig {
    /// Plugin name or library path, as for `data.plugin`. Required.
    pub plugin: String,
    /// Name in metrics; must be unique across `rewards`. Default: the plugin name.
    #[serde(default)]
    pub name: Option<String>,
    /// Weight in the summed reward. Default: 1.0.
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Settings handed to the plugin as a JSON object. Default: `{}`.
    #[serde(default)]
    pub config: Map<String, Value>,
}

fn default_weight() -> f64 {
    1.0
}

impl RewardConfig {
    /// The name this reward goes by in metrics.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.plugin)
    }
}

/// Held-out evaluation on `data.eval_split`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Evaluate every this many GRPO steps (and at the end); 0 = only at the end.
    /// Default: 0.
    pub every: u64,
    /// Prompts evaluated each time (the first ones of the split). Default: 64.
    pub num_samples: u64,
    /// Greedy decoding; false samples with `sampling`. Default: true.
    pub greedy: bool,
    /// A prompt counts as solved when the first reward function scores at least this.
    /// Default: 1.0 (math-answer's score for a correct answer).
    pub success_threshold: f64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            every: 0,
            num_samples: 64,
            greedy: true,
            success_threshold: 1.0,
        }
    }
}

/// Data-parallel training: each rank rolls out `grpo.batch_size / ranks` prompts and the
/// ranks average their gradients; start the ranks with `mlx.launch` or `lora-grpo launch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistributedConfig {
    /// MLX backend: `off`, `ring`, `jaccl`, `nccl`, `mpi` or `any`. Default: `off`.
    pub backend: Backend,
    /// Seconds a rank waits for its peers (connecting, or one collective, which includes
    /// the slowest rank's rollout and rank 0's evaluation) before it stops. Default: 900.
    pub timeout_s: f64,
}

impl Default for DistributedConfig {
    fn default() -> Self {
        DistributedConfig { backend: Backend::Off, timeout_s: 900.0 }
    }
}
