//! Value checks the types alone cannot express; each problem names its key path.

use std::collections::HashSet;

use super::schema::Recipe;

/// A value problem: the dotted key path and what is wrong with it.
pub(crate) type Problem = (String, String);

struct Checks(Vec<Problem>);

impl Checks {
    fn require(&mut self, ok: bool, path: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.0.push((path.into(), message.into()));
        }
    }

    /// Finite and inside [min, max) or [min, max] (`max_inclusive`); `None` bounds are open.
    fn number(&mut self, path: &str, v: f64, min: Option<(f64, bool)>, max: Option<(f64, bool)>) {
        let low_ok = min.is_none_or(|(m, inclusive)| if inclusive { v >= m } else { v > m });
        let high_ok = max.is_none_or(|(m, inclusive)| if inclusive { v <= m } else { v < m });
        if v.is_finite() && low_ok && high_ok {
            return;
        }
        let low = min.map_or("(-inf".to_string(), |(m, inc)| {
            format!("{}{m}", if inc { "[" } else { "(" })
        });
        let high = max.map_or("inf)".to_string(), |(m, inc)| {
            format!("{m}{}", if inc { "]" } else { ")" })
        });
        self.0.push((
            path.to_string(),
            format!("must be a finite number in {low}, {high}, got {v}"),
        ));
    }
}

const INCL: bool = true;
const EXCL: bool = false;

pub(crate) fn validate(r: &Recipe) -> Vec<Problem> {
    let mut c = Checks(Vec::new());

    if let Some(q) = &r.model.quantize {
        c.require(
            [2, 3, 4, 5, 6, 8].contains(&q.bits),
            "model.quantize.bits",
            format!("must be 2, 3, 4, 5, 6 or 8, got {}", q.bits),
        );
        c.require(
            [32, 64, 128].contains(&q.group_size),
            "model.quantize.group_size",
            format!("must be 32, 64 or 128, got {}", q.group_size),
        );
        c.require(
            !r.model.dequantize,
            "model.dequantize",
            "cannot be true together with `model.quantize`",
        );
    }

    let l = &r.lora;
    c.require(
        l.num_layers == -1 || l.num_layers > 0,
        "lora.num_layers",
        format!(
            "must be -1 (all blocks) or at least 1, got {}",
            l.num_layers
        ),
    );
    c.require(l.rank > 0, "lora.rank", "must be at least 1");
    c.number("lora.scale", l.scale, None, None);
    c.number(
        "lora.dropout",
        l.dropout,
        Some((0.0, INCL)),
        Some((1.0, EXCL)),
    );
    if let Some(keys) = &l.keys {
        c.require(
            !keys.is_empty(),
            "lora.keys",
            "must name at least one module (leave it out to adapt every linear)",
        );
        let mut seen = HashSet::new();
        for (i, key) in keys.iter().enumerate() {
            c.require(
                !key.trim().is_empty(),
                format!("lora.keys.{i}"),
                "must not be empty",
            );
            c.require(
                seen.insert(key),
                format!("lora.keys.{i}"),
                format!("`{key}` is listed twice"),
            );
        }
    }

    let g = &r.grpo;
    c.require(
        g.group_size >= 2,
        "grpo.group_size",
        format!(
            "must be at least 2 (advantages compare completions within a group), got {}",
            g.group_size
        ),
    );
    c.require(g.batch_size >= 1, "grpo.batch_size", "must be at least 1");
    c.number(
        "grpo.epsilon",
        g.epsilon,
        Some((0.0, INCL)),
        Some((1.0, EXCL)),
    );
    if let Some(high) = g.epsilon_high {
        c.number("grpo.epsilon_high", high, Some((0.0, INCL)), None);
    }
    c.number("grpo.beta", g.beta, Some((0.0, INCL)), None);
    c.require(
        g.num_iterations >= 1,
        "grpo.num_iterations",
        "must be at least 1",
    );
    c.require(
        g.max_completion_length >= 1,
        "grpo.max_completion_length",
        "must be at least 1",
    );
    let completions = u64::from(g.batch_size) * u64::from(g.group_size);
    c.require(
        g.gradient_accumulation_steps >= 1
            && u64::from(g.gradient_accumulation_steps) <= completions,
        "grpo.gradient_accumulation_steps",
        format!(
            "must be between 1 and batch_size * group_size = {completions}, got {}",
            g.gradient_accumulation_steps
        ),
    );
    if let Some(norm) = g.max_grad_norm {
        c.number("grpo.max_grad_norm", norm, Some((0.0, EXCL)), None);
    }
    c.require(g.steps >= 1, "grpo.steps", "must be at least 1");

    let s = &r.sampling;
    c.number(
        "sampling.temperature",
        s.temperature,
        Some((0.0, EXCL)),
        None,
    );
    c.number(
        "sampling.top_p",
        s.top_p,
        Some((0.0, EXCL)),
        Some((1.0, INCL)),
    );
    c.number(
        "sampling.min_p",
        s.min_p,
        Some((0.0, INCL)),
        Some((1.0, EXCL)),
    );
    for (i, stop) in s.stop.iter().enumerate() {
        c.require(
            !stop.is_empty(),
            format!("sampling.stop.{i}"),
            "must not be empty",
        );
    }

    let o = &r.optimizer;
    c.number("optimizer.lr", o.lr, Some((0.0, EXCL)), None);
    c.number(
        "optimizer.weight_decay",
        o.weight_decay,
        Some((0.0, INCL)),
        None,
    );
    c.number(
        "optimizer.betas.0",
        o.betas[0],
        Some((0.0, INCL)),
        Some((1.0, EXCL)),
    );
    c.number(
        "optimizer.betas.1",
        o.betas[1],
        Some((0.0, INCL)),
        Some((1.0, EXCL)),
    );
    c.number("optimizer.eps", o.eps, Some((0.0, EXCL)), None);
    c.require(
        o.warmup_steps <= g.total_updates(),
        "optimizer.warmup_steps",
        format!("must not exceed the run's optimizer updates (grpo.steps * grpo.num_iterations = {}), got {}", g.total_updates(), o.warmup_steps),
    );

    c.require(
        !r.data.plugin.trim().is_empty(),
        "data.plugin",
        "must name a dataset plugin",
    );
    c.require(
        !r.data.train_split.trim().is_empty(),
        "data.train_split",
        "must not be empty",
    );
    if let Some(split) = &r.data.eval_split {
        c.require(
            !split.trim().is_empty(),
            "data.eval_split",
            "must not be empty (leave it out to skip evaluation)",
        );
    }

    c.require(
        !r.rewards.is_empty(),
        "rewards",
        "must list at least one reward function",
    );
    let mut names = HashSet::new();
    for (i, reward) in r.rewards.iter().enumerate() {
        c.require(
            !reward.plugin.trim().is_empty(),
            format!("rewards.{i}.plugin"),
            "must name a reward plugin",
        );
        c.number(&format!("rewards.{i}.weight"), reward.weight, None, None);
        let name = reward.display_name();
        c.require(
            names.insert(name),
            format!("rewards.{i}.name"),
            format!("two rewards are both named `{name}`; give one a distinct `name`"),
        );
    }

    c.number(
        "distributed.timeout_s",
        r.distributed.timeout_s,
        Some((0.0, EXCL)),
        Some((1.0e7, INCL)),
    );
    c.require(
        r.eval.num_samples >= 1,
        "eval.num_samples",
        "must be at least 1",
    );
    c.require(
        r.eval.every == 0 || r.data.eval_split.is_some(),
        "eval.every",
        "evaluation is scheduled but `data.eval_split` is not set",
    );
    c.0
}
