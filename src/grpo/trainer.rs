//! The GRPO run behind `lora-grpo run`: load everything a recipe names, then per step roll
//! out G completions for B prompts, score them, compute advantages, update the adapters,
//! log, checkpoint and evaluate. With `distributed:` each rank runs this on its share of
//! the B prompts (`super::shard`); the ranks gather rewards, sum token counts, and sum
//! gradients once per optimizer update.

use indicatif::{ProgressBar, ProgressStyle};
use mlx_rs::Array;
use lora_grpo_plugin::Sample;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::advantages::compute_advantages;
use super::batch::MicroBatch;
use super::checkpoint::{self, TrainerState};
use super::data::{splitmix64, DataOrder};
use super::eval::{evaluate, EvalResult};
use super::loss::LossConfig;
use super::metrics::{svg_chart, StepLog, CURVE_FILE, EVAL_FILE, METRICS_FILE};
use super::rollout::{combine, render_prompt, sample_completions, score, RenderedPrompt, Rollout};
use super::shard::{CompletionTable, Shard};
use super::step::{update, UpdateSettings, UpdateStats};
use crate::distributed::{Backend, World};
use crate::error::TrainError;
use crate::generate::{GenerateConfig, SamplingParams};
use crate::lora::{self, AdapterConfig, LoraParameters};
use crate::model::{self, CausalLm, LoadOptions, QuantParams};
use crate::optim::AdamW;
use crate::plugin::{PluginHost, RewardPlugin};
use crate::recipe::Recipe;
use crate::tokenizer::Tokenizer;

/// How `run` is driven from the outside.
#[derive(Default)]
pub struct RunOptions {
    /// A run directory to continue from (its `trainer_state.json`).
    pub resume: Option<PathBuf>,
    /// Show a progress bar (off for tests and non-terminals).
    pub progress: bool,
    /// Set (e.g. by Ctrl-C) to save a checkpoint after the current step and stop.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Start afresh in an output directory that holds another run (its files are replaced).
    pub overwrite: bool,
}

/// What a finished (or interrupted) run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub out_dir: PathBuf,
    pub steps: u64,
    pub interrupted: bool,
    pub eval_before: Option<EvalResult>,
    pub eval_after: Option<EvalResult>,
    /// Mean training reward of the first and last steps run in this process.
    pub first_reward: Option<f32>,
    pub last_reward: Option<f32>,
    /// This process's rank (0 when not distributed); only rank 0 evaluates and writes.
    pub rank: usize,
}

/// A model, tokenizer and plugins loaded for a recipe.
pub struct Session {
    pub recipe: Recipe,
    pub model: CausalLm,
    pub tokenizer: Tokenizer,
    pub rewards: Vec<RewardPlugin>,
    pub sampling: SamplingParams,
}

impl Session {
    /// Loads the recipe's model, tokenizer and reward plugins (no adapters yet).
    pub fn load(recipe: Recipe, host: &mut PluginHost) -> Result<Self, TrainError> {
        let rewards = recipe
            .rewards
            .iter()
            .map(|r| host.load_reward(&r.plugin, &Value::Object(r.config.clone()).to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let quantize = match &recipe.model.quantize {
            Some(q) => Some(
                QuantParams::new(q.group_size as i32, q.bits as i32)
                    .map_err(TrainError::Quantize)?,
            ),
            None => None,
        };
        let options = LoadOptions { dequantize: recipe.model.dequantize, quantize, ..LoadOptions::default() };
        let model = model::load(&recipe.model.path, &options)?;
        let tokenizer = Tokenizer::from_dir(&recipe.model.path)?;
        let s = &recipe.sampling;
        let sampling = SamplingParams {
            temperature: s.temperature as f32,
            top_k: s.top_k as usize,
            top_p: s.top_p as f32,
            min_p: s.min_p as f32,
        };
        sampling.validate()?;
        Ok(Session { recipe, model, tokenizer, rewards, sampling })
    }

    /// The adapter config the recipe's `lora` section describes.
    /// The run's adapter config, `keys` always written out: older mlx-lm releases read a
    /// missing `keys` as per-architecture defaults (such as q_proj and v_proj only).
    pub fn adapter_config(&mut self) -> Result<AdapterConfig, TrainError> {
        let keys = match &self.recipe.lora.keys {
            Some(keys) => keys.clone(),
            None => lora::block_keys(&mut self.model),
        };
        let l = &self.recipe.lora;
        let mut extra = Map::new();
        extra.insert("model".into(), json!(self.recipe.model.path));
        Ok(AdapterConfig {
            fine_tune_type: "lora".into(),
            num_layers: l.num_layers as i32,
            lora_parameters: LoraParameters {
                rank: l.rank as i32,
                scale: l.scale as f32,
                dropout: l.dropout as f32,
                keys: Some(keys),
            },
            extra,
        })
    }

    /// Evaluates the model as it is on `samples`.
    pub fn evaluate(&mut self, samples: &[Sample]) -> Result<EvalResult, TrainError> {
        evaluate(&mut self.model, &self.tokenizer, &mut self.rewards, samples, &self.recipe, &self.sampling)
    }
}

/// Reads a split through the recipe's dataset plugin.
pub fn read_split(host: &mut PluginHost, recipe: &Recipe, split: &str) -> Result<Vec<Sample>, TrainError> {
    let config = Value::Object(recipe.data.config.clone()).to_string();
    let samples = host.load_dataset(&recipe.data.plugin, &config, split)?.read_all()?;
    if samples.is_empty() {
        return Err(TrainError::Data(format!("dataset `{}` split `{split}` has no samples", recipe.data.plugin)));
    }
    Ok(samples)
}

/// Runs the recipe: trains, checkpoints, evaluates; see [`RunOptions`].
pub fn run(recipe: Recipe, options: &RunOptions) -> Result<RunSummary, TrainError> {
    let d = &recipe.distributed;
    let world = World::join(d.backend, Duration::from_secs_f64(d.timeout_s))?;
    let shard = Shard::new(recipe.grpo.batch_size as usize, world.rank(), world.size())?;
    if d.backend != Backend::Off {
        eprintln!(
            "lora-grpo: rank {} of {} ({} backend): prompts {}..{} of each step's {}",
            world.rank(),
            world.size(),
            d.backend.name(),
            shard.first,
            shard.first + shard.len,
            recipe.grpo.batch_size
        );
    }
    // A resumed run continues in the directory it was resumed from, wherever the saved
    // recipe's (possibly relative) output_dir points.
    let mut recipe = recipe;
    if let Some(dir) = &options.resume {
        if !same_dir(dir, &recipe.output_dir) && world.is_main() {
            eprintln!(
                "lora-grpo: resuming in {}; the recipe's output_dir {} is not used",
                dir.display(),
                recipe.output_dir.display()
            );
        }
        recipe.output_dir = dir.clone();
    }
    let out_dir = recipe.output_dir.clone();
    // A resumed run writes nothing until its checkpoint has been checked against the recipe.
    if world.is_main() && options.resume.is_none() {
        clear_previous_run(&out_dir, options.overwrite)?;
        std::fs::create_dir_all(&out_dir).map_err(|source| TrainError::Io { path: out_dir.clone(), source })?;
        recipe.save(&out_dir.join(RECIPE_FILE))?;
    }
    let mut host = PluginHost::new(recipe.plugin_dirs.clone());
    let train = read_split(&mut host, &recipe, &recipe.data.train_split)?;
    let eval_samples = match &recipe.data.eval_split {
        Some(split) => {
            let mut all = read_split(&mut host, &recipe, split)?;
            all.truncate(recipe.eval.num_samples as usize);
            all
        }
        None => Vec::new(),
    };
    let mut session = Session::load(recipe, &mut host)?;
    let adapter_config = session.adapter_config()?;
    let seed = session.recipe.seed;
    let targets = lora::attach(&mut session.model, &adapter_config, seed)?;
    let g = &session.recipe.grpo;
    let mut optimizer = AdamW::new(&session.recipe.optimizer, g.total_updates());
    let state = match &options.resume {
        Some(dir) => checkpoint::restore(dir, &mut session.model, &adapter_config, &mut optimizer)?,
        None => TrainerState { step: 0, updates: 0, cursor: 0, seed },
    };
    if state.seed != seed {
        return Err(TrainError::Resume {
            dir: options.resume.clone().unwrap_or_default(),
            detail: format!("the checkpoint was made with seed {} but the recipe says {seed}", state.seed),
        });
    }
    if world.is_main() && options.resume.is_some() {
        session.recipe.save(&out_dir.join(RECIPE_FILE))?;
    }
    if world.is_main() {
        eprintln!(
            "lora-grpo: {} adapted linears, {} trainable parameters; {} training prompts, {} eval prompts",
            targets.len(),
            lora::trainable_count(&session.model),
            train.len(),
            eval_samples.len()
        );
    }
    let logs = match world.is_main() {
        true => Some(RunLogs::open(&out_dir, options.resume.is_some().then_some(state.step))?),
        false => None,
    };
    let mut trainer = Trainer {
        data: DataOrder::new(train, seed, session.recipe.data.shuffle),
        logs,
        // Any distributed run samples each completion as a row of the whole step, so that
        // runs on different numbers of ranks sample the same groups.
        global_sampling: session.recipe.distributed.backend != Backend::Off,
        session,
        optimizer,
        adapter_config,
        state,
        out_dir,
        world,
        shard,
    };
    trainer.run(&eval_samples, options)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Refuses to start over a previous run unless `overwrite`, which removes its files
/// (only the ones a run writes: anything else in the directory stays).
fn clear_previous_run(dir: &Path, overwrite: bool) -> Result<(), TrainError> {
    let state = dir.join(checkpoint::STATE_FILE);
    if !state.exists() {
        return Ok(());
    }
    if !overwrite {
        return Err(TrainError::OutputDirInUse { dir: dir.to_path_buf() });
    }
    let entries = std::fs::read_dir(dir).map_err(|source| TrainError::Io { path: dir.to_path_buf(), source })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.ends_with("_adapters.safetensors")
            || [
                lora::WEIGHTS_FILE,
                lora::CONFIG_FILE,
                checkpoint::STATE_FILE,
                checkpoint::OPTIMIZER_FILE,
                METRICS_FILE,
                CURVE_FILE,
                EVAL_FILE,
                RECIPE_FILE,
            ]
            .contains(&name.as_str());
        if ours {
            std::fs::remove_file(entry.path()).map_err(|source| TrainError::Io { path: entry.path(), source })?;
        }
    }
    Ok(())
}

/// The resolved recipe saved with each run.
pub const RECIPE_FILE: &str = "recipe.yaml";

struct Trainer {
    session: Session,
    data: DataOrder,
    optimizer: AdamW,
    adapter_config: AdapterConfig,
    state: TrainerState,
    /// Rank 0's metrics and eval files; other ranks write nothing.
    logs: Option<RunLogs>,
    out_dir: PathBuf,
    world: World,
    shard: Shard,
    global_sampling: bool,
}

impl Trainer {
    fn run(&mut self, eval_samples: &[Sample], options: &RunOptions) -> Result<RunSummary, TrainError> {
        let total = self.session.recipe.grpo.steps;
        let mut summary = RunSummary {
            out_dir: self.out_dir.clone(),
            steps: self.state.step,
            interrupted: false,
            eval_before: None,
            eval_after: None,
            first_reward: None,
            last_reward: None,
            rank: self.world.rank(),
        };
        let main = self.world.is_main();
        let has_eval = main && !eval_samples.is_empty();
        if has_eval && self.state.step == 0 {
            let result = self.evaluate(eval_samples, 0)?;
            eprintln!("eval before training: accuracy {:.1}% on {} prompts", 100.0 * result.accuracy, result.samples);
            summary.eval_before = Some(result);
        }
        let bar = progress_bar(options.progress && main, total, self.state.step);
        let interrupt = || options.interrupt.as_ref().is_some_and(|f| f.load(Ordering::SeqCst));
        while self.state.step < total {
            let (record, any_rank_interrupted) = self.step(interrupt())?;
            let reward = record.get("reward_mean").and_then(Value::as_f64).unwrap_or(f64::NAN) as f32;
            summary.first_reward.get_or_insert(reward);
            summary.last_reward = Some(reward);
            bar.set_position(self.state.step);
            let number = |key: &str| record.get(key).and_then(Value::as_f64);
            let kl = number("kl").map(|kl| format!("  kl {kl:.4}")).unwrap_or_default();
            bar.set_message(format!(
                "reward {reward:.3}{kl}  gen {:.0} tok/s",
                number("generation_tokens_per_s").unwrap_or(0.0)
            ));
            if !options.progress && main {
                let loss = record.get("loss").and_then(Value::as_f64).unwrap_or(f64::NAN);
                eprintln!("step {}/{total}  reward {reward:.3}  loss {loss:.4}", self.state.step);
            }
            let step = self.state.step;
            let every = self.session.recipe.eval.every;
            let mut record = record;
            if has_eval && every > 0 && step % every == 0 && step < total {
                let result = self.evaluate(eval_samples, step)?;
                say(&bar, format!("step {step}: eval accuracy {:.1}%", 100.0 * result.accuracy));
                record.insert("eval_accuracy".into(), json!(result.accuracy));
            }
            if let Some(logs) = &mut self.logs {
                logs.metrics.append(&record)?;
            }
            // Ranks stop together, at the step where one of them saw the interrupt.
            let interrupted = match self.world.is_distributed() {
                true => any_rank_interrupted,
                false => interrupt(),
            };
            let every = self.session.recipe.checkpoint_every;
            if interrupted || step == total || (every > 0 && step % every == 0) {
                self.checkpoint()?;
            }
            if interrupted {
                bar.abandon();
                if main {
                    say(&bar, format!("interrupted: checkpoint of step {step} saved in {}", self.out_dir.display()));
                }
                summary.interrupted = true;
                summary.steps = step;
                return Ok(summary);
            }
        }
        bar.finish();
        if self.state.step == 0 {
            self.checkpoint()?;
        }
        summary.steps = self.state.step;
        // A resumed run that had already finished has its final evaluation logged.
        let evaluated = match &self.logs {
            Some(logs) => logs.eval.has_step(self.state.step)?,
            None => false,
        };
        if has_eval && !evaluated {
            let result = self.evaluate(eval_samples, self.state.step)?;
            eprintln!("eval after training: accuracy {:.1}% on {} prompts", 100.0 * result.accuracy, result.samples);
            summary.eval_after = Some(result);
        }
        if main {
            self.write_curve()?;
        }
        Ok(summary)
    }

    fn evaluate(&mut self, samples: &[Sample], step: u64) -> Result<EvalResult, TrainError> {
        let result = self.session.evaluate(samples)?;
        if let Some(logs) = &mut self.logs {
            let line = json!({"step": step, "accuracy": result.accuracy, "reward_means": result.reward_means, "samples": result.samples});
            logs.eval.append(&line)?;
        }
        Ok(result)
    }

    fn checkpoint(&mut self) -> Result<(), TrainError> {
        if !self.world.is_main() {
            return Ok(());
        }
        checkpoint::save(&self.out_dir, &mut self.session.model, &self.adapter_config, &mut self.optimizer, &self.state)
    }

    /// One GRPO step (this rank's share of it); returns its metrics record (the whole
    /// step's) and whether any rank had been interrupted (`interrupted`: this one).
    fn step(&mut self, interrupted: bool) -> Result<(Map<String, Value>, bool), TrainError> {
        let started = Instant::now();
        mlx_rs::memory::reset_peak_memory()?;
        let recipe = &self.session.recipe;
        let g = recipe.grpo.clone();
        let group = g.group_size as usize;
        let step = self.state.step + 1;
        let shard = self.shard;
        let indices = self.data.indices(self.state.cursor, g.batch_size as usize);
        let samples: Vec<&Sample> = indices[shard.first..shard.first + shard.len].iter().map(|&i| self.data.sample(i)).collect();
        let prompts = samples
            .iter()
            .map(|s| render_prompt(&self.session.tokenizer, s, &recipe.data))
            .collect::<Result<Vec<RenderedPrompt>, _>>()?;
        // Seeds derive from (run seed, step): a resumed run draws what the original would.
        let mut seed_state = recipe.seed ^ step.wrapping_mul(0xA24B_AED4_963E_E407);
        let seed = splitmix64(&mut seed_state);
        let config = GenerateConfig {
            max_tokens: g.max_completion_length as usize,
            completions_per_prompt: group,
            sampling: self.session.sampling,
            seed,
            global_rows: self.global_sampling.then(|| shard.global_rows(g.batch_size as usize, group)),
            eos_token_ids: self.session.tokenizer.eos_token_ids().to_vec(),
            ..GenerateConfig::default()
        };
        let stops = recipe.sampling.stop.clone();
        let lora_dropout = recipe.lora.dropout as f32;
        let (rollouts, _) =
            sample_completions(&mut self.session.model, &self.session.tokenizer, &prompts, &config, &stops)?;
        let gen_seconds = started.elapsed().as_secs_f64();

        let scores = score(&mut self.session.rewards, &prompts, &samples, &rollouts)?;
        let weights: Vec<f64> = recipe.rewards.iter().map(|r| r.weight).collect();
        let rewards = combine(&scores, &weights);
        // Statistics over the whole step: every rank's completions.
        let table = CompletionTable::local(rewards, scores, &rollouts, interrupted).gather(&self.world)?;
        let advantages = compute_advantages(&table.rewards, group, g.scale_rewards)?;
        let kept_anywhere = advantages.kept(g.filter_equal_reward_groups);
        let mine = shard.completions(group);
        let kept: Vec<usize> = kept_anywhere.iter().filter(|i| mine.contains(i)).map(|i| i - mine.start).collect();

        let mut record = Map::new();
        record.insert("step".into(), json!(step));
        insert_reward_stats(&mut record, &table.rewards, &table.scores, recipe);
        let adv = &advantages.values;
        record.insert("advantage_abs_mean".into(), json!(mean(adv.iter().map(|a| a.abs()))));
        record.insert("advantage_max".into(), json!(adv.iter().cloned().fold(f32::MIN, f32::max)));
        record.insert("advantage_min".into(), json!(adv.iter().cloned().fold(f32::MAX, f32::min)));
        record.insert("equal_reward_groups".into(), json!(advantages.equal_fraction()));
        let lengths = &table.lengths;
        record.insert("completion_length_mean".into(), json!(mean(lengths.iter().cloned())));
        record.insert("completion_length_max".into(), json!(lengths.iter().cloned().fold(0.0, f32::max)));
        record.insert("truncated_fraction".into(), json!(mean(table.truncated.iter().cloned())));

        let train_started = Instant::now();
        let (stats, train_tokens) = if kept_anywhere.is_empty() {
            (None, 0.0)
        } else {
            let batches = match kept.is_empty() {
                true => Vec::new(),
                false => self.micro_batches(&prompts, &rollouts, &kept, &advantages.values[mine.clone()])?,
            };
            let mut batch_tokens = batches.iter().map(MicroBatch::counted_tokens).sum::<Result<f32, _>>()?;
            if self.world.is_distributed() {
                let total = self.world.all_sum(&Array::from_f32(batch_tokens), "summing the token counts")?;
                batch_tokens = total.item_exact::<f32>();
            }
            let settings = UpdateSettings {
                loss: LossConfig::from_recipe(&g),
                temperature: self.session.sampling.temperature.max(f32::MIN_POSITIVE),
                max_grad_norm: g.max_grad_norm.map(|m| m as f32),
                reduction: LossConfig::from_recipe(&g).loss_type.grad_reduction(),
                lora_dropout,
                dropout_seed: splitmix64(&mut seed_state),
            };
            let mut last = None;
            for _ in 0..g.num_iterations {
                let model = &mut self.session.model;
                last = Some(update(model, &mut self.optimizer, &batches, batch_tokens, &settings, &self.world)?);
            }
            let tokens = last.as_ref().map_or(0, |s| s.tokens);
            (last, tokens as f64 * f64::from(g.num_iterations))
        };
        let train_seconds = train_started.elapsed().as_secs_f64();
        insert_update_stats(&mut record, stats.as_ref());
        let gen_tokens: f64 = table.lengths.iter().map(|&l| f64::from(l)).sum();
        record.insert("generation_tokens_per_s".into(), json!(gen_tokens / gen_seconds.max(1e-9)));
        record.insert("training_tokens_per_s".into(), json!(train_tokens / train_seconds.max(1e-9)));
        record.insert("generation_seconds".into(), json!(gen_seconds));
        record.insert("training_seconds".into(), json!(train_seconds));
        record.insert("step_seconds".into(), json!(started.elapsed().as_secs_f64()));
        record.insert("peak_memory_bytes".into(), json!(mlx_rs::memory::peak_memory()?));

        self.state.step = step;
        self.state.cursor += g.batch_size as u64;
        self.state.updates = self.optimizer.updates();
        if self.world.is_distributed() {
            record.insert("ranks".into(), json!(self.world.size()));
        }
        Ok((record, table.interrupted))
    }

    /// Splits the kept completions into `gradient_accumulation_steps` micro-batches and
    /// records the log-probs they need from before the update (old policy, reference).
    fn micro_batches(
        &mut self,
        prompts: &[RenderedPrompt],
        rollouts: &[Rollout],
        kept: &[usize],
        advantages: &[f32],
    ) -> Result<Vec<MicroBatch>, TrainError> {
        let g = &self.session.recipe.grpo;
        let parts = (g.gradient_accumulation_steps as usize).clamp(1, kept.len());
        let size = kept.len().div_ceil(parts);
        let temperature = self.session.sampling.temperature.max(f32::MIN_POSITIVE);
        let (reuse, beta) = (g.num_iterations > 1, g.beta != 0.0);
        let mask_truncated = g.mask_truncated_completions;
        let mut out = Vec::new();
        for chunk in kept.chunks(size) {
            let rows: Vec<&Rollout> = chunk.iter().map(|&i| &rollouts[i]).collect();
            let adv: Vec<f32> = chunk.iter().map(|&i| advantages[i]).collect();
            let mut batch = MicroBatch::new(prompts, &rows, &adv, mask_truncated)?;
            if reuse {
                let (logp, _) = batch.completion_logprobs(&mut self.session.model, temperature)?;
                logp.eval()?;
                batch.logp_old = Some(logp);
            }
            if beta {
                self.session.model.set_adapters_enabled(false);
                let reference = batch.completion_logprobs(&mut self.session.model, temperature);
                self.session.model.set_adapters_enabled(true);
                let (logp, _) = reference?;
                logp.eval()?;
                batch.ref_logp = Some(logp);
            }
            out.push(batch);
        }
        Ok(out)
    }

    fn write_curve(&self) -> Result<(), TrainError> {
        let Some(logs) = &self.logs else { return Ok(()) };
        // (step, value) of `key` in every record of `log`.
        let series = |log: &StepLog, key: &str| -> Result<Vec<(f64, f64)>, TrainError> {
            Ok(log.records()?.iter().filter_map(|r| Some((r.get("step")?.as_f64()?, r.get(key)?.as_f64()?))).collect())
        };
        // Accuracy from eval.jsonl: it also holds the evaluations before and after training.
        let svg = svg_chart(
            "GRPO: training reward and eval accuracy",
            &[("reward_mean", series(&logs.metrics, "reward_mean")?), ("eval_accuracy", series(&logs.eval, "accuracy")?)],
        );
        let path = self.out_dir.join(CURVE_FILE);
        crate::atomic::write_bytes(&path, svg.as_bytes()).map_err(|source| TrainError::Io { path, source })
    }
}

/// Mean and (population) standard deviation of the weighted total and of each reward.
fn insert_reward_stats(record: &mut Map<String, Value>, rewards: &[f32], scores: &[Vec<f32>], recipe: &Recipe) {
    let mean_std = |values: &[f32]| {
        let m = mean(values.iter().cloned());
        (m, mean(values.iter().map(|r| (r - m) * (r - m))).sqrt())
    };
    let (m, std) = mean_std(rewards);
    record.insert("reward_mean".into(), json!(m));
    record.insert("reward_std".into(), json!(std));
    for (config, per) in recipe.rewards.iter().zip(scores) {
        let (m, std) = mean_std(per);
        record.insert(format!("reward/{}", config.display_name()), json!(m));
        record.insert(format!("reward_std/{}", config.display_name()), json!(std));
    }
}

fn insert_update_stats(record: &mut Map<String, Value>, stats: Option<&UpdateStats>) {
    let Some(s) = stats else {
        record.insert("skipped_update".into(), json!(true));
        return;
    };
    record.insert("loss".into(), json!(s.loss.loss));
    // Only measured with a reference policy (beta > 0); a logged 0 would read as a value.
    if let Some(kl) = s.loss.kl_mean {
        record.insert("kl".into(), json!(kl));
    }
    record.insert("clip_low".into(), json!(s.loss.clip_low));
    record.insert("clip_high".into(), json!(s.loss.clip_high));
    record.insert("clip_region".into(), json!(s.loss.clip_region));
    record.insert("ratio_mean".into(), json!(s.loss.ratio_mean));
    record.insert("entropy".into(), json!(s.entropy));
    record.insert("grad_norm".into(), json!(s.grad_norm));
    record.insert("lr".into(), json!(s.lr));
}

fn mean(values: impl Iterator<Item = f32>) -> f32 {
    let (sum, n) = values.fold((0.0f64, 0usize), |(s, n), v| (s + f64::from(v), n + 1));
    if n == 0 {
        0.0
    } else {
        (sum / n as f64) as f32
    }
}

fn progress_bar(enabled: bool, total: u64, position: u64) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total).with_position(position);
    if let Ok(style) = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] step {pos}/{len}  {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// A line above the progress bar, or on stderr when there is no bar.
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// Rank 0's `metrics.jsonl` and `eval.jsonl`.
struct RunLogs {
    metrics: StepLog,
    eval: StepLog,
}

impl RunLogs {
    /// Opens both in `dir` (see [`StepLog::open`] for `resumed_step`).
    fn open(dir: &Path, resumed_step: Option<u64>) -> Result<Self, TrainError> {
        Ok(Self {
            metrics: StepLog::open(dir, METRICS_FILE, resumed_step)?,
            eval: StepLog::open(dir, EVAL_FILE, resumed_step)?,
        })
    }
}

/// Evaluates a recipe's model (with an optional adapter directory) on its eval split.
/// `adapter` is a directory and, optionally, the weights file in it (a checkpoint).
pub fn eval_recipe(recipe: Recipe, adapter: Option<(&Path, Option<&str>)>) -> Result<EvalResult, TrainError> {
    let split = recipe
        .data
        .eval_split
        .clone()
        .ok_or_else(|| TrainError::Data("the recipe has no `data.eval_split` to evaluate on".to_string()))?;
    let mut host = PluginHost::new(recipe.plugin_dirs.clone());
    let mut samples = read_split(&mut host, &recipe, &split)?;
    samples.truncate(recipe.eval.num_samples as usize);
    let mut session = Session::load(recipe, &mut host)?;
    if let Some((dir, file)) = adapter {
        lora::load(&mut session.model, dir, file)?;
    }
    session.evaluate(&samples)
}

/// The end-of-run table `lora-grpo run` prints.
pub fn summary_table(s: &RunSummary) -> String {
    let pct = |r: &Option<EvalResult>| r.as_ref().map_or("-".to_string(), |r| format!("{:.1}%", 100.0 * r.accuracy));
    let num = |x: Option<f32>| x.map_or("-".to_string(), |x| format!("{x:.3}"));
    let mut out = String::new();
    out += &format!("{:<28} {}\n", "run directory", s.out_dir.display());
    out += &format!("{:<28} {}{}\n", "steps", s.steps, if s.interrupted { " (interrupted)" } else { "" });
    out += &format!("{:<28} {} -> {}\n", "training reward (first->last)", num(s.first_reward), num(s.last_reward));
    out += &format!("{:<28} {} -> {}\n", "eval accuracy (before->after)", pct(&s.eval_before), pct(&s.eval_after));
    out
}
