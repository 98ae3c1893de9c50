//! Run checkpoints: mlx-lm adapter files plus the trainer state that makes `--resume`
//! continue exactly (optimizer moments, update count, data position). Every file is
//! written atomically; `trainer_state.json` goes last and names the step the others hold.

use mlx_rs::module::ModuleParameters;
use mlx_rs::Array;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;

use crate::error::TrainError;
use crate::lora::{self, checkpoint_file, AdapterConfig, WEIGHTS_FILE};
use crate::model::CausalLm;
use crate::optim::AdamW;

pub const STATE_FILE: &str = "trainer_state.json";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// Where a run stands after a completed step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Completed GRPO steps.
    pub step: u64,
    /// Optimizer updates applied (steps x num_iterations, less skipped steps).
    pub updates: u64,
    /// Samples consumed from the training order.
    pub cursor: u64,
    pub seed: u64,
}

/// Writes the adapters (`adapters.safetensors` and the step's numbered file), the config,
/// the optimizer moments, then the state.
pub fn save(
    dir: &Path,
    model: &mut CausalLm,
    adapter_config: &AdapterConfig,
    optimizer: &mut AdamW,
    state: &TrainerState,
) -> Result<(), TrainError> {
    lora::save(model, dir, adapter_config, &checkpoint_file(state.step))?;
    lora::save(model, dir, adapter_config, WEIGHTS_FILE)?;
    let mut moments = BTreeMap::new();
    for (name, (m, v)) in optimizer.state_mut().iter() {
        moments.insert(format!("{name}.m"), m.clone());
        moments.insert(format!("{name}.v"), v.clone());
    }
    let path = dir.join(OPTIMIZER_FILE);
    let metadata = HashMap::from([("step".to_string(), state.step.to_string())]);
    crate::atomic::write_with(
        &path,
        |staging| {
            Array::save_safetensors(moments.iter().map(|(k, v)| (k.as_str(), v)), &metadata, staging)
                .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", path.display())))
        },
        |e| TrainError::Checkpoint(format!("{}: {e}", path.display())),
    )?;
    let text = serde_json::to_string_pretty(state).map_err(|e| TrainError::Checkpoint(e.to_string()))? + "\n";
    let path = dir.join(STATE_FILE);
    crate::atomic::write_bytes(&path, text.as_bytes()).map_err(|e| TrainError::Checkpoint(format!("{}: {e}", path.display())))
}

/// Restores adapters (from the state's step), optimizer moments and the state from `dir`;
/// the model must already carry adapters of the same config.
pub fn restore(
    dir: &Path,
    model: &mut CausalLm,
    adapter_config: &AdapterConfig,
    optimizer: &mut AdamW,
) -> Result<TrainerState, TrainError> {
    let resume_error = |detail: String| TrainError::Resume { dir: dir.to_path_buf(), detail };
    let state_path = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&state_path)
        .map_err(|e| resume_error(format!("cannot read {STATE_FILE}: {e} (is this a lora-grpo run directory?)")))?;
    let state: TrainerState =
        serde_json::from_str(&text).map_err(|e| resume_error(format!("{STATE_FILE} is not valid: {e}")))?;
    // Changing the adapter's shape or scale mid-run would silently train something else.
    let mut saved = AdapterConfig::read(dir)?;
    if saved.lora_parameters.keys.is_none() {
        saved.lora_parameters.keys = Some(lora::block_keys(model));
    }
    if (saved.num_layers, &saved.lora_parameters) != (adapter_config.num_layers, &adapter_config.lora_parameters) {
        return Err(resume_error(format!(
            "the recipe's adapter ({}) differs from the run's {} ({}); resume with the run's own recipe.yaml",
            describe(adapter_config),
            lora::CONFIG_FILE,
            describe(&saved)
        )));
    }
    let weights_path = dir.join(checkpoint_file(state.step));
    lora::set_adapter_tensors(model, lora::weights::load(&weights_path)?, &weights_path)?;
    let (moments, metadata) = Array::load_safetensors_with_metadata(dir.join(OPTIMIZER_FILE))
        .map_err(|e| resume_error(format!("cannot read {OPTIMIZER_FILE}: {e}")))?;
    let saved_step = metadata.get("step").and_then(|s| s.parse::<u64>().ok());
    if saved_step != Some(state.step) {
        return Err(resume_error(format!(
            "{OPTIMIZER_FILE} belongs to step {saved_step:?} but {STATE_FILE} to step {} (interrupted write?)",
            state.step
        )));
    }
    let moment_state = optimizer.state_mut();
    moment_state.clear();
    let mut names: Vec<&String> = moments.keys().filter(|k| k.ends_with(".m")).collect();
    names.sort();
    for m_key in names {
        let name = &m_key[..m_key.len() - 2];
        let v = moments
            .get(&format!("{name}.v"))
            .ok_or_else(|| resume_error(format!("{OPTIMIZER_FILE} has `{m_key}` without `{name}.v`")))?;
        moment_state.insert(Rc::from(name), (moments[m_key].clone(), v.clone()));
    }
    // After the first update every trainable parameter has both moments, shaped like it.
    if state.updates > 0 {
        let trainable = model.trainable_parameters().flatten();
        for (name, param) in trainable.iter() {
            let (m, v) = moment_state
                .get(name)
                .ok_or_else(|| resume_error(format!("{OPTIMIZER_FILE} has no moments for `{name}`")))?;
            if m.shape() != param.shape() || v.shape() != param.shape() {
                return Err(resume_error(format!(
                    "{OPTIMIZER_FILE}: the moments of `{name}` have shapes {:?} / {:?}, the parameter {:?}",
                    m.shape(),
                    v.shape(),
                    param.shape()
                )));
            }
        }
        if let Some(extra) = moment_state.keys().find(|k| !trainable.contains_key(*k)) {
            return Err(resume_error(format!("{OPTIMIZER_FILE} has moments for `{extra}`, which is not trained")));
        }
    }
    optimizer.set_updates(state.updates);
    Ok(state)
}

/// `num_layers -1, rank 8, scale 20, dropout 0, keys all` for error messages.
fn describe(config: &AdapterConfig) -> String {
    let p = &config.lora_parameters;
    let keys = p.keys.as_ref().map_or("all".to_string(), |k| k.join(","));
    format!("num_layers {}, rank {}, scale {}, dropout {}, keys {keys}", config.num_layers, p.rank, p.scale, p.dropout)
}
