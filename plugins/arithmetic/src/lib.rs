//! Dataset plugin `arithmetic`: seeded synthetic problems such as `What is 12 + 7 * 3?`
//! with the exact integer answer (`33`) as the reference.
//!
//! Config (all optional; defaults shown):
//! ```json
//! {"seed": 0, "count": {"train": 1000, "eval": 100},
//!  "min": 0, "max": 99, "operations": ["+", "-"], "terms": 2,
//!  "allow_negative": true, "unique": false, "eval_share": 0.1,
//!  "template": "What is {expression}?", "system": null}
//! ```
//! - `count`: samples per split, one number for every split or a map by split.
//! - `min`/`max`: inclusive operand range; or `digits: d` for `0 ..= 10^d - 1`.
//!   Negative operands are written in parentheses.
//! - `operations`: any of `+ - * /`; `*` and `/` bind tighter, and `/` only appears
//!   where it divides exactly. `terms`: operands per problem, a number or `[min, max]`.
//! - `allow_negative: false` redraws problems with a negative answer; `unique: true`
//!   never repeats a problem within a split.
//! - Splits: `train`, and `eval` (also spelt `test`, `valid`, `validation`). Every
//!   distinct problem belongs to exactly one split, chosen by a hash of its text and the
//!   seed, with `eval_share` of all problems going to eval: the splits never overlap,
//!   whatever the counts.
//! - `template` must contain `{expression}`; `system` makes the prompt chat messages.
//!
//! The same config gives the same samples in the same order on every platform: the
//! generator is SplitMix64, seeded from `seed` and the split (`tests/reference.py` is a
//! Python port that reproduces the samples).
//! Metadata per sample: `expression`, `index` (0-based within the split), `split`.

mod problem;
mod rng;

use std::collections::{BTreeMap, HashSet};

use lora_grpo_plugin::serde::Deserialize;
use lora_grpo_plugin::serde_json::Value;
use lora_grpo_plugin::{export_dataset, Config, Dataset, Error, Prompt, Sample};

pub use problem::{Difficulty, Op, Problem};
pub use rng::SplitMix64;

/// Consecutive draws that may fail before the config is declared (nearly) impossible.
const MAX_MISSES: u32 = 100_000;

#[derive(Debug, Deserialize)]
#[serde(crate = "lora_grpo_plugin::serde", deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    seed: u64,
    count: Option<Count>,
    digits: Option<u32>,
    min: Option<i64>,
    max: Option<i64>,
    #[serde(default = "default_operations")]
    operations: Vec<String>,
    #[serde(default = "default_terms")]
    terms: Terms,
    #[serde(default = "yes")]
    allow_negative: bool,
    #[serde(default)]
    unique: bool,
    #[serde(default = "default_eval_share")]
    eval_share: f64,
    #[serde(default = "default_template")]
    template: String,
    system: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(crate = "lora_grpo_plugin::serde", untagged)]
enum Count {
    Every(usize),
    PerSplit(BTreeMap<String, usize>),
}

#[derive(Debug, Deserialize)]
#[serde(crate = "lora_grpo_plugin::serde", untagged)]
enum Terms {
    Exactly(usize),
    Between([usize; 2]),
}

fn default_operations() -> Vec<String> {
    vec!["+".into(), "-".into()]
}

fn default_terms() -> Terms {
    Terms::Exactly(2)
}

fn yes() -> bool {
    true
}

fn default_eval_share() -> f64 {
    0.1
}

fn default_template() -> String {
    "What is {expression}?".into()
}

/// The two sides of the data; every problem belongs to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Eval,
}

impl Split {
    /// `train`, or `eval` and its usual aliases.
    pub fn parse(name: &str) -> Option<Split> {
        match name {
            "train" => Some(Split::Train),
            "eval" | "test" | "valid" | "validation" => Some(Split::Eval),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Eval => "eval",
        }
    }

    /// Mixed into the seed so the splits draw independent streams.
    fn salt(self) -> u64 {
        match self {
            Split::Train => 0,
            Split::Eval => 0xD1B5_4A32_D192_ED03,
        }
    }
}

/// The split `expression` belongs to: FNV-1a of the seed and the text, as a fraction
/// of 2^64, against `eval_share`.
pub fn split_of(expression: &str, seed: u64, eval_share: f64) -> Split {
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    for byte in seed.to_le_bytes().iter().chain(expression.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
    let fraction = (hash >> 11) as f64 / (1u64 << 53) as f64;
    match fraction < eval_share {
        true => Split::Eval,
        false => Split::Train,
    }
}

/// Draws the problems of one split.
#[derive(Debug, Clone)]
struct Generator {
    rng: SplitMix64,
    difficulty: Difficulty,
    split: Split,
    seed: u64,
    eval_share: f64,
    /// Problems produced so far, when `unique` is on.
    seen: Option<HashSet<String>>,
}

impl Generator {
    /// The next problem of this split, with its text.
    fn next_problem(&mut self) -> Result<(Problem, String), Error> {
        for _ in 0..MAX_MISSES {
            let Some(problem) = Problem::draw(&mut self.rng, &self.difficulty) else {
                continue;
            };
            let text = problem.to_string();
            if split_of(&text, self.seed, self.eval_share) != self.split {
                continue;
            }
            if let Some(seen) = &mut self.seen {
                if !seen.insert(text.clone()) {
                    continue;
                }
            }
            return Ok((problem, text));
        }
        Err(Error::new(format!(
            "no new `{}` problem in {MAX_MISSES} draws: the operand range, operations and \
             terms leave too few problems for this split{}; widen `min`/`max`, change \
             `eval_share`{}",
            self.split.name(),
            if self.seen.is_some() {
                " (`unique` is on)"
            } else {
                ""
            },
            if self.seen.is_some() {
                ", lower `count` or turn `unique` off"
            } else {
                ""
            },
        )))
    }
}

/// One open split; see the crate docs for the config.
#[derive(Debug)]
pub struct Arithmetic {
    generator: Generator,
    template: String,
    system: Option<String>,
    count: usize,
    index: usize,
}

impl Dataset for Arithmetic {
    fn open(config: &Config, split: &str) -> Result<Self, Error> {
        let s: Settings = config.parse()?;
        let split = Split::parse(split).ok_or_else(|| {
            Error::new(format!(
                "unknown split `{split}`: use `train` or `eval` (also `test`, `valid`, `validation`)"
            ))
        })?;
        let count = match &s.count {
            None => match split {
                Split::Train => 1000,
                Split::Eval => 100,
            },
            Some(Count::Every(n)) => *n,
            Some(Count::PerSplit(map)) => count_for(map, split)?,
        };
        if !(0.0..1.0).contains(&s.eval_share) {
            return Err(Error::new("`eval_share` must be at least 0 and below 1"));
        }
        if split == Split::Eval && s.eval_share == 0.0 && count > 0 {
            return Err(Error::new(
                "`eval_share` is 0, so the eval split has no problems",
            ));
        }
        if !s.template.contains("{expression}") {
            return Err(Error::new("`template` must contain `{expression}`"));
        }
        let generator = Generator {
            rng: SplitMix64::new(s.seed ^ split.salt()),
            difficulty: difficulty(&s)?,
            split,
            seed: s.seed,
            eval_share: s.eval_share,
            seen: s.unique.then(HashSet::new),
        };
        // Fail at open, not mid-run, when the settings allow no problem at all.
        if count > 0 {
            generator.clone().next_problem()?;
        }
        Ok(Arithmetic {
            generator,
            template: s.template,
            system: s.system,
            count,
            index: 0,
        })
    }

    fn next_sample(&mut self) -> Option<Result<Sample, Error>> {
        if self.index >= self.count {
            return None;
        }
        let index = self.index;
        self.index += 1;
        Some(self.generator.next_problem().map(|(problem, text)| {
            let prompt = self.template.replace("{expression}", &text);
            let mut sample = Sample::new(
                Prompt::with_system(self.system.as_deref(), prompt),
                problem.value.to_string(),
            );
            sample
                .metadata
                .insert("expression".into(), Value::String(text));
            sample.metadata.insert("index".into(), index.into());
            sample
                .metadata
                .insert("split".into(), self.generator.split.name().into());
            sample
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.count - self.index;
        (left, Some(left))
    }
}

/// The count for `split` from a per-split map whose keys may use any alias.
fn count_for(map: &BTreeMap<String, usize>, split: Split) -> Result<usize, Error> {
    let mut found = None;
    for (name, &n) in map {
        match Split::parse(name) {
            None => return Err(Error::new(format!("`count` has unknown split `{name}`"))),
            Some(s) if s == split => found = Some(n),
            Some(_) => {}
        }
    }
    found.ok_or_else(|| Error::new(format!("`count` has no entry for split `{}`", split.name())))
}

fn difficulty(s: &Settings) -> Result<Difficulty, Error> {
    const LIMIT: i64 = 1_000_000_000_000_000_000;
    let (min, max) = match (s.digits, s.min, s.max) {
        (Some(d), None, None) if (1..=18).contains(&d) => (0, 10i64.pow(d) - 1),
        (Some(_), None, None) => return Err(Error::new("`digits` must be between 1 and 18")),
        (Some(_), _, _) => return Err(Error::new("set `digits` or `min`/`max`, not both")),
        (None, min, max) => (min.unwrap_or(0), max.unwrap_or(99)),
    };
    if min > max || min < -LIMIT || max > LIMIT {
        return Err(Error::new(format!(
            "operand range {min}..={max} must have min <= max, within +-10^18"
        )));
    }
    let mut operations = Vec::new();
    for symbol in &s.operations {
        let op = Op::parse(symbol).ok_or_else(|| {
            Error::new(format!(
                "unknown operation `{symbol}`: use `+`, `-`, `*` or `/`"
            ))
        })?;
        if !operations.contains(&op) {
            operations.push(op);
        }
    }
    if operations.is_empty() {
        return Err(Error::new(
            "`operations` must name at least one of `+`, `-`, `*`, `/`",
        ));
    }
    let terms = match s.terms {
        Terms::Exactly(n) => (n, n),
        Terms::Between([a, b]) => (a, b),
    };
    if terms.0 < 2 || terms.0 > terms.1 || terms.1 > 16 {
        return Err(Error::new(format!(
            "`terms` {}..={} must be between 2 and 16 operands, min first",
            terms.0, terms.1
        )));
    }
    Ok(Difficulty {
        min,
        max,
        operations,
        terms,
        allow_negative: s.allow_negative,
    })
}

export_dataset!(Arithmetic, name = "arithmetic");

#[cfg(test)]
mod tests;
