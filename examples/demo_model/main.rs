//! Builds the demo base model, `models/demo-arith`, from nothing: a byte-level BPE
//! tokenizer and a small Llama-architecture model pretrained from scratch on arithmetic
//! chats drawn by the `arithmetic` dataset plugin, quantized to 4 bits and saved in the
//! mlx-community layout, with a README recording how it was made and how well it does.
//!
//! Run it as `cargo xtask demo-model`, or `cargo run --example demo_model -- --help`.
//! It lives in `examples/` because it only rebuilds a committed artifact and is no part
//! of the library's API; `cargo test` still compiles it, so it cannot rot. Data and
//! grading go through the plugin host with the first-party `arithmetic` dataset and
//! `math-answer` reward, exactly as the GRPO demo uses them (build them first:
//! `cargo xtask demo-model` does).

mod arch;
mod corpus;
mod evaluate;
mod export;
mod pretrain;
mod readme;
mod vocab;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use mlx_rs::module::ModuleParameters;

use lora_grpo::model::{load, LoadOptions, QuantParams};
use lora_grpo::plugin::PluginHost;

use arch::Architecture;
use corpus::{Style, IM_END, PAD};
use export::F32;
use pretrain::{Example, TrainSettings};

#[derive(Debug, Clone, Parser, serde::Serialize)]
#[command(about = "Pretrain the demo base model (models/demo-arith) from scratch")]
pub struct Args {
    /// Output directory.
    #[arg(long, default_value = "models/demo-arith")]
    #[serde(skip)]
    out: PathBuf,
    /// Seed of the weight initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The `arithmetic` plugin config the problems come from (its `seed` also fixes the
    /// train/eval split; the model trains on `train` only).
    #[arg(
        long,
        default_value = r#"{"seed": 0, "min": 0, "max": 99, "operations": ["+"], "terms": 2, "eval_share": 0.1}"#
    )]
    arithmetic: String,
    /// Share of training replies that work the sum out column by column before answering
    /// (the rest answer at once, dropping carries); below one half, so greedy decoding
    /// answers at once.
    #[arg(long, default_value_t = 0.25)]
    worked_share: f64,
    /// Optimizer steps.
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Chats per step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Peak learning rate (linear warmup, cosine decay to 0).
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    #[arg(long, default_value_t = 50)]
    warmup_steps: u64,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    #[arg(long, default_value_t = 128)]
    hidden_size: i32,
    #[arg(long, default_value_t = 4)]
    layers: i32,
    #[arg(long, default_value_t = 4)]
    heads: i32,
    #[arg(long, default_value_t = 384)]
    intermediate_size: i32,
    /// Largest tokenizer vocabulary (BPE stops earlier when the corpus runs out of pairs).
    #[arg(long, default_value_t = 512)]
    vocab_size: usize,
    /// Quantization group size (4-bit affine).
    #[arg(long, default_value_t = 32)]
    group_size: i32,
    /// Held-out problems the final accuracy is measured on.
    #[arg(long, default_value_t = 1000)]
    eval_problems: usize,
    /// Also measure held-out accuracy (on 200 problems) every this many steps; 0 = never.
    #[arg(long, default_value_t = 200)]
    eval_every: usize,
}

/// Chats the tokenizer is trained on.
const TOKENIZER_CORPUS: usize = 5000;
/// Training problems graded after training (a memorization check).
pub const TRAIN_CHECK: usize = 200;
/// New tokens per graded completion (a worked reply with its answer takes about 25).
const MAX_ANSWER_TOKENS: usize = 32;

fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let arithmetic: serde_json::Value =
        serde_json::from_str(&args.arithmetic).context("--arithmetic is not valid JSON")?;
    // The first-party plugins as `cargo build --workspace` leaves them in target/.
    let mut host = PluginHost::new([]);
    let train = corpus::problems(
        &mut host,
        &arithmetic,
        "train",
        args.steps * args.batch_size,
    )?;
    let held_out = corpus::problems(&mut host, &arithmetic, "eval", args.eval_problems)?;
    let mut reward = host.load_reward("math-answer", "{}")?;

    anyhow::ensure!(
        (0.0..0.5).contains(&args.worked_share),
        "--worked-share must be in [0, 0.5), not {}",
        args.worked_share
    );
    let styles: Vec<Style> = (0..train.len())
        .map(|i| corpus::style(i, args.worked_share))
        .collect();
    let chats: Vec<String> = train
        .iter()
        .zip(&styles)
        .take(TOKENIZER_CORPUS)
        .map(|(p, &style)| Ok(format!("{}{}{IM_END}\n", p.prompt(), p.reply(style)?)))
        .collect::<Result<_>>()?;
    let tokenizer = vocab::train(&chats, args.vocab_size)?;
    let (pad, eos) = (vocab::id(&tokenizer, PAD)?, vocab::id(&tokenizer, IM_END)?);
    let examples = train
        .iter()
        .zip(&styles)
        .map(|(p, &style)| Example::new(&tokenizer, p, style, eos))
        .collect::<Result<Vec<_>>>()?;
    println!(
        "tokenizer: {} tokens; {} training chats of up to {} tokens",
        tokenizer.get_vocab_size(true),
        examples.len(),
        examples
            .iter()
            .map(|e| e.prompt.len() + e.reply.len())
            .max()
            .unwrap_or(0)
    );

    let arch = Architecture {
        hidden_size: args.hidden_size,
        num_hidden_layers: args.layers,
        num_attention_heads: args.heads,
        num_key_value_heads: args.heads,
        intermediate_size: args.intermediate_size,
        vocab_size: tokenizer.get_vocab_size(true) as i32,
        max_position_embeddings: 256,
        rope_theta: 10000.0,
        rms_norm_eps: 1e-5,
    };
    let scratch = tempfile::tempdir()?;
    let init_dir = scratch.path().join("init");
    arch.write_initial(&init_dir, args.seed, eos, pad)?;
    let mut model = load(&init_dir, &F32)?;
    let parameters: usize = model
        .parameters()
        .flatten()
        .values()
        .map(|a| a.size())
        .sum();
    println!("model: {parameters} parameters");

    let settings = TrainSettings {
        steps: args.steps,
        batch_size: args.batch_size,
        lr: args.lr,
        warmup_steps: args.warmup_steps,
        weight_decay: args.weight_decay,
        max_grad_norm: 1.0,
    };
    let training_started = Instant::now();
    let training_cpu = cpu_seconds();
    let mut curve: Vec<readme::CurvePoint> = Vec::new();
    let mut window = Vec::new();
    let probe = &held_out[..held_out.len().min(200)];
    pretrain::train(
        &mut model,
        &examples,
        pad,
        &settings,
        |step, loss, model| {
            window.push(loss);
            if step % 50 == 0 || step == settings.steps {
                let mean = window.iter().sum::<f32>() / window.len() as f32;
                window.clear();
                let accuracy = match args.eval_every > 0 && step % args.eval_every == 0 {
                    true => Some(readme::Accuracy {
                        direct: evaluate::accuracy(&evaluate::grade(
                            model, &tokenizer, &mut reward, probe, Style::Direct, MAX_ANSWER_TOKENS,
                        )?),
                        worked: evaluate::accuracy(&evaluate::grade(
                            model, &tokenizer, &mut reward, probe, Style::Worked, MAX_ANSWER_TOKENS,
                        )?),
                    }),
                    false => None,
                };
                let seconds = training_started.elapsed().as_secs_f64();
                println!(
                    "step {step:>5}  loss {mean:.4}  {}{seconds:.0} s",
                    accuracy.map_or(String::new(), |a| format!(
                        "held-out acc greedy {:.1}%, worked {:.1}%  ",
                        100.0 * a.direct,
                        100.0 * a.worked
                    ))
                );
                curve.push(readme::CurvePoint {
                    step,
                    loss: mean,
                    accuracy,
                    seconds,
                });
            }
            Ok(())
        },
    )?;
    let training_seconds = training_started.elapsed().as_secs_f64();
    let training_cpu_seconds = cpu_seconds() - training_cpu;

    let f32_dir = scratch.path().join("f32");
    export::save_model(&model, &f32_dir, &arch.config_json(None, eos, pad))?;
    let f32_accuracy = evaluate::accuracy(&evaluate::grade(
        &mut model, &tokenizer, &mut reward, &held_out, Style::Direct, MAX_ANSWER_TOKENS,
    )?);
    drop(model);
    let quant = QuantParams::new(args.group_size, 4).map_err(anyhow::Error::msg)?;
    export::quantized(&f32_dir, &args.out, &arch, quant, &tokenizer)?;

    // Graded as shipped: read back from the output directory.
    let mut shipped = load(&args.out, &LoadOptions::default())?;
    let graded = evaluate::grade(
        &mut shipped, &tokenizer, &mut reward, &held_out, Style::Direct, MAX_ANSWER_TOKENS,
    )?;
    let worked = evaluate::grade(
        &mut shipped, &tokenizer, &mut reward, &held_out, Style::Worked, MAX_ANSWER_TOKENS,
    )?;
    let seen = &train[..TRAIN_CHECK.min(train.len())];
    let train_graded = evaluate::grade(
        &mut shipped, &tokenizer, &mut reward, seen, Style::Direct, MAX_ANSWER_TOKENS,
    )?;
    let report = readme::Report {
        args: &args,
        arch: &arch,
        parameters,
        vocab: tokenizer.get_vocab_size(true),
        held_out: &held_out,
        graded: &graded,
        worked: &worked,
        f32_accuracy,
        train_accuracy: evaluate::accuracy(&train_graded),
        curve: &curve,
        training_seconds,
        training_cpu_seconds,
        total_seconds: started.elapsed().as_secs_f64(),
        total_cpu_seconds: cpu_seconds(),
    };
    std::fs::write(args.out.join("README.md"), report.render()?)?;
    println!(
        "held-out exact match: {:.1}% (f32 before quantization {:.1}%, train problems {:.1}%); \
         training {:.0} s ({:.0} CPU-s), total {:.0} s ({:.0} CPU-s); wrote {}",
        100.0 * evaluate::accuracy(&graded),
        100.0 * report.f32_accuracy,
        100.0 * report.train_accuracy,
        training_seconds,
        training_cpu_seconds,
        report.total_seconds,
        report.total_cpu_seconds,
        args.out.display()
    );
    Ok(())
}

/// User plus system CPU time of this process so far, all threads: on a shared machine
/// a fairer measure of the work than wall-clock time.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
