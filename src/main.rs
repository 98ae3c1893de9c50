//! The `lora-grpo` command line: a thin clap front end over the library.

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "lora-grpo",
    version,
    about = "Fine-tune LLMs with LoRA adapters using GRPO on MLX",
    long_about = "Fine-tune LLMs with LoRA adapters using GRPO on MLX.\n\n\
        Trains only LoRA adapters over a frozen (usually quantized) base model, with reward \
        functions and dataset formats loaded as plugins."
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Check the MLX installation: version, devices, and a small matmul + gradient test.
    Doctor,
    /// Train LoRA adapters with GRPO as a recipe describes (Ctrl-C saves a checkpoint).
    Run {
        /// The recipe YAML file (optional with --resume: the run's saved recipe.yaml).
        recipe: Option<std::path::PathBuf>,
        /// Override a recipe key, e.g. `--set grpo.steps=20` (repeatable; the value is YAML).
        #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
        set: Vec<String>,
        /// Continue the run saved in this output directory, exactly where it stopped.
        #[arg(long, value_name = "DIR")]
        resume: Option<std::path::PathBuf>,
        /// No progress bar; one line per step instead.
        #[arg(long)]
        no_progress: bool,
        /// Start over in an output_dir that holds an earlier run (replaces its files).
        #[arg(long, conflicts_with = "resume")]
        overwrite: bool,
    },
    /// Start N ranks of a data-parallel run on this host (no Python needed), e.g.
    /// `lora-grpo launch -n 2 -- run recipe.yaml`; the recipe sets `distributed.backend`.
    /// Across machines use `mlx.launch` (its hostfile) with the same `lora-grpo run`.
    Launch {
        /// Number of ranks (processes).
        #[arg(short = 'n', long = "ranks", default_value_t = 2)]
        ranks: usize,
        /// Backend to set up: ring (TCP over loopback; CPU or Metal) or nccl (one GPU per rank).
        #[arg(long, default_value = "ring")]
        backend: lora_grpo::distributed::Backend,
        /// The lora-grpo command every rank runs, after `--` (e.g. `run recipe.yaml`).
        #[arg(last = true, required = true)]
        command: Vec<std::ffi::OsString>,
    },
    /// Evaluate a recipe's model on its eval split, with or without an adapter.
    Eval {
        /// The recipe YAML file.
        recipe: std::path::PathBuf,
        /// Adapter directory (adapter_config.json + adapters.safetensors).
        #[arg(long, value_name = "DIR")]
        adapter: Option<std::path::PathBuf>,
        /// Adapter weights file inside --adapter, e.g. a checkpoint `0000020_adapters.safetensors`.
        #[arg(long, requires = "adapter", value_name = "NAME")]
        adapter_file: Option<String>,
        /// Override a recipe key (repeatable).
        #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
        set: Vec<String>,
    },
    /// Generate text from a model directory, optionally with a LoRA adapter; streams to stdout.
    #[command(group = clap::ArgGroup::new("input").required(true).args(["prompt", "messages"]))]
    Generate {
        /// Model directory (mlx-community or Hugging Face layout).
        #[arg(long, value_name = "DIR")]
        model: std::path::PathBuf,
        /// Adapter directory written by `lora-grpo run` or `mlx_lm.lora`.
        #[arg(long, value_name = "DIR")]
        adapter: Option<std::path::PathBuf>,
        /// Adapter weights file inside --adapter, e.g. a checkpoint `0000020_adapters.safetensors`.
        #[arg(long, requires = "adapter", value_name = "NAME")]
        adapter_file: Option<String>,
        /// The prompt: plain text, or the user message with --chat.
        #[arg(long, value_name = "TEXT")]
        prompt: Option<String>,
        /// A conversation to continue: JSON array of {"role", "content"} (implies --chat).
        #[arg(long, value_name = "FILE")]
        messages: Option<std::path::PathBuf>,
        /// Render the prompt through the model's chat template.
        #[arg(long)]
        chat: bool,
        /// Most tokens to generate per completion.
        #[arg(long, default_value_t = 256, value_name = "N")]
        max_tokens: usize,
        /// Sampling temperature; 0 = greedy.
        #[arg(long, visible_alias = "temp", default_value_t = 0.0, value_name = "T")]
        temperature: f32,
        /// Sampling seed.
        #[arg(long, default_value_t = 0, value_name = "S")]
        seed: u64,
        /// Completions of the prompt, sampled as one batch.
        #[arg(short = 'n', default_value_t = 1, value_name = "N")]
        n: usize,
    },
    /// Work with training recipes.
    #[command(subcommand)]
    Recipe(RecipeCommand),
    /// Measure speed (see bench/RESULTS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Find and check reward and dataset plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Scaffold a standalone plugin crate (builds against the SDK, with a passing test).
    NewPlugin {
        /// Crate and plugin name, e.g. `exact-match`.
        name: String,
        /// What the plugin provides.
        #[arg(long, value_enum)]
        kind: PluginKindArg,
        /// Directory to create the crate in.
        #[arg(long, default_value = ".")]
        dir: std::path::PathBuf,
        /// Use the SDK at this path (default: this build's source tree, else crates.io).
        #[arg(long)]
        sdk_path: Option<std::path::PathBuf>,
    },
    /// Fuse a LoRA adapter into its base model and write a standalone model directory.
    ///
    /// Every adapted linear becomes W + scale * (lora_a @ lora_b)^T on the dequantized
    /// weight. The output is dense by default (the base's float dtype), so nothing of the
    /// adapter is lost; --quantize re-quantizes it, with a report of how much of the
    /// adapter's change survived. The directory loads in lora-grpo and mlx-lm like any
    /// model, with the base's tokenizer files copied.
    Merge(MergeArgs),
    /// Convert an mlx-lm adapter (lora-grpo's format) to Hugging Face PEFT.
    ///
    /// The reverse direction is `lora-grpo import`.
    Export {
        /// Adapter directory (adapter_config.json + adapters.safetensors).
        #[arg(long)]
        adapter: std::path::PathBuf,
        /// Output format.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Output directory (must not exist, unless --force).
        #[arg(long)]
        out: std::path::PathBuf,
        /// base_model_name_or_path to record, e.g. `Qwen/Qwen3-0.6B` (default: the
        /// `model` entry of adapter_config.json).
        #[arg(long)]
        base_model: Option<String>,
        /// Adapter weights file inside --adapter, e.g. a checkpoint.
        #[arg(long)]
        adapter_file: Option<String>,
        /// Replace --out if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Convert a Hugging Face PEFT LoRA adapter to an mlx-lm adapter (lora-grpo's format).
    ///
    /// The result serves for generation, merging, or as the starting point of training.
    /// `merge` also reads PEFT directories directly.
    Import {
        /// PEFT adapter directory (adapter_config.json + adapter_model.safetensors).
        #[arg(long)]
        peft: std::path::PathBuf,
        /// Output directory (must not exist, unless --force).
        #[arg(long)]
        out: std::path::PathBuf,
        /// Replace --out if it exists.
        #[arg(long)]
        force: bool,
    },
}

/// `lora-grpo merge`.
#[derive(clap::Args)]
struct MergeArgs {
    /// Base model directory (mlx-community or Hugging Face layout, quantized or not).
    #[arg(long)]
    model: std::path::PathBuf,
    /// Adapter directory: mlx-lm layout (adapters.safetensors, as lora-grpo and
    /// `mlx_lm.lora` write it) or Hugging Face PEFT layout (adapter_model.safetensors).
    #[arg(long)]
    adapter: std::path::PathBuf,
    /// Output directory for the merged model (must not exist, unless --force).
    #[arg(long)]
    out: std::path::PathBuf,
    /// Re-quantize the merged model to BITS (2, 3, 4, 5, 6, 8) with groups of GROUP
    /// (32, 64, 128; default: the base's, else 64), and report how much of the
    /// adapter's change survived. Without it the output is dequantized: nothing is lost.
    #[arg(long, value_name = "BITS[,GROUP]")]
    quantize: Option<String>,
    /// Float dtype of the output (default: the base's).
    #[arg(long, value_enum)]
    dtype: Option<DtypeArg>,
    /// Adapter weights file inside --adapter, e.g. a checkpoint `0000100_adapters.safetensors`.
    #[arg(long)]
    adapter_file: Option<String>,
    /// Split the weights into files of at most this many MiB.
    #[arg(long, default_value_t = 5120)]
    max_shard_mib: u64,
    /// Replace --out if it exists (only once the new model is completely written).
    #[arg(long)]
    force: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DtypeArg {
    Float32,
    Float16,
    Bfloat16,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    /// Hugging Face PEFT: adapter_model.safetensors + adapter_config.json.
    Peft,
}

#[derive(Subcommand)]
enum RecipeCommand {
    /// Validate a recipe without loading a model, and print it with every default filled in.
    Check {
        /// The recipe YAML file.
        file: std::path::PathBuf,
        /// Override a key, e.g. `--set grpo.epsilon=0.3` (repeatable; the value is YAML).
        #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
        set: Vec<String>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Prefill and decode tokens/s at batch 1 and on a GRPO-shaped batch; prints a table.
    Generate(BenchGenerateArgs),
    /// Write a model directory with random weights for a config.json (benchmarks on hosts
    /// that cannot receive a checkpoint).
    RandomModel {
        /// config.json to build (quantized as its `quantization` says).
        #[arg(long, value_name = "FILE")]
        config: std::path::PathBuf,
        /// Seed of the weights.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Copy tokenizer.json and tokenizer_config.json from this directory.
        #[arg(long, value_name = "DIR")]
        tokenizer: Option<std::path::PathBuf>,
        /// Directory to create.
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// List the plugins in the search path: kind, name, version, path.
    List {
        /// Extra directories to search first (repeatable).
        #[arg(long = "dir")]
        dirs: Vec<std::path::PathBuf>,
    },
    /// Load a plugin (by path or name), validate its header and make one sample call.
    Check {
        /// Library path or plugin name.
        plugin: String,
        /// Plugin config as a JSON object.
        #[arg(long, default_value = "{}")]
        config: String,
        /// Split a dataset plugin opens.
        #[arg(long, default_value = "train")]
        split: String,
        /// How many samples to read from a dataset plugin.
        #[arg(long, default_value_t = 3)]
        samples: usize,
        /// Extra directories to search first (repeatable).
        #[arg(long = "dir")]
        dirs: Vec<std::path::PathBuf>,
    },
}

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["model", "config"]))]
struct BenchGenerateArgs {
    /// Model directory.
    #[arg(long, value_name = "DIR")]
    model: Option<std::path::PathBuf>,
    /// Instead of --model: a config.json whose model is built with random weights.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Seed of the random weights (with --config) and of sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Batch-1 prompt length, and the longest prompt of the GRPO batch.
    #[arg(long, default_value_t = 128)]
    prompt_tokens: usize,
    /// New tokens per completion (EOS is ignored).
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Prompts in the GRPO batch.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Completions per prompt in the GRPO batch.
    #[arg(long, default_value_t = 8)]
    group: usize,
    /// Sampling temperature of the GRPO batch (batch 1 is greedy).
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Timed runs per scenario (the median is shown).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Dequantize the weights at load (faster on the CPU, more memory).
    #[arg(long)]
    dequantize: bool,
    /// Attach fresh LoRA adapters of this rank to every linear of every block, as a GRPO
    /// rollout runs them (they start at zero, so the text is the base model's).
    #[arg(long, value_name = "RANK")]
    lora_rank: Option<i32>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PluginKindArg {
    Reward,
    Dataset,
}

fn main() -> std::process::ExitCode {
    match run_cli() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {}", error_report(&error));
            if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
                eprintln!("\n{}", error.backtrace());
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and those of its causes that its message does not already quote (most
/// messages here end with their cause's text).
fn error_report(error: &anyhow::Error) -> String {
    let mut report = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !report.contains(&text) {
            report += &format!("\n  caused by: {text}");
        }
    }
    report
}

fn run_cli() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Commands::Doctor => {
            let report = lora_grpo::doctor::run()?;
            print!("{report}");
            if !report.passed() {
                anyhow::bail!("doctor found a problem with MLX (see the checks above)");
            }
        }
        Commands::Run { recipe, set, resume, no_progress, overwrite } => {
            let path = match (&recipe, &resume) {
                (Some(path), _) => path.clone(),
                (None, Some(dir)) => dir.join(lora_grpo::grpo::trainer::RECIPE_FILE),
                (None, None) => anyhow::bail!("give a recipe file, or --resume DIR"),
            };
            let recipe = lora_grpo::recipe::Recipe::load(&path, &set)?;
            let interrupt = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = interrupt.clone();
            ctrlc::set_handler(move || {
                eprintln!("\ninterrupt: finishing this step, then saving a checkpoint (Ctrl-C again to abort)");
                if flag.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    std::process::exit(130);
                }
            })?;
            let options = lora_grpo::grpo::RunOptions {
                resume,
                progress: !no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr()),
                interrupt: Some(interrupt),
                overwrite,
            };
            let summary = lora_grpo::grpo::run(recipe, &options)?;
            if summary.rank == 0 {
                print!("{}", lora_grpo::grpo::trainer::summary_table(&summary));
            }
        }
        Commands::Launch { ranks, backend, command } => {
            let interrupts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counter = interrupts.clone();
            ctrlc::set_handler(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })?;
            let options = lora_grpo::distributed::launch::LaunchOptions {
                ranks,
                backend,
                program: std::env::current_exe()?,
                args: command,
                interrupts: Some(interrupts),
            };
            lora_grpo::distributed::launch::launch(&options)?;
        }
        Commands::Eval { recipe, adapter, adapter_file, set } => {
            let recipe = lora_grpo::recipe::Recipe::load(&recipe, &set)?;
            let adapter = adapter.as_deref().map(|dir| (dir, adapter_file.as_deref()));
            let result = lora_grpo::grpo::trainer::eval_recipe(recipe, adapter)?;
            println!("accuracy {:.1}% on {} prompts", 100.0 * result.accuracy, result.samples);
            println!("reward means: {:?}", result.reward_means);
        }
        Commands::Generate { model, adapter, adapter_file, prompt, messages, chat, max_tokens, temperature, seed, n } => {
            use lora_grpo::generate::text::{generate_text, read_messages, Prompt, TextRequest};
            let prompt = match (prompt, messages) {
                (_, Some(path)) => Prompt::Messages(read_messages(&path)?),
                (Some(text), None) => Prompt::Text(text),
                (None, None) => anyhow::bail!("give --prompt TEXT or --messages FILE"),
            };
            let request = TextRequest { prompt, chat, max_tokens, temperature, seed, completions: n };
            let adapter = adapter.as_deref().map(|dir| (dir, adapter_file.as_deref()));
            let out = generate_text(&model, adapter, &request, &mut std::io::stdout().lock())?;
            let s = &out.stats;
            eprintln!(
                "[prompt {} tokens, {:.1} tok/s | generated {} tokens, {:.1} tok/s | peak memory {:.1} MB]",
                s.prompt_tokens,
                s.prompt_tokens as f64 / s.prefill_seconds.max(1e-9),
                s.generated_tokens,
                s.generated_tokens as f64 / s.decode_seconds.max(1e-9),
                s.peak_memory_bytes as f64 / 1e6
            );
        }
        Commands::Recipe(RecipeCommand::Check { file, set }) => {
            let recipe = lora_grpo::recipe::Recipe::load(&file, &set)?;
            print!("{}", recipe.to_yaml()?);
        }
        Commands::Bench(command) => run_bench(command)?,
        Commands::Plugins { command } => run_plugins(command)?,
        Commands::NewPlugin {
            name,
            kind,
            dir,
            sdk_path,
        } => {
            use lora_grpo::plugin::{scaffold, PluginKind};
            let kind = match kind {
                PluginKindArg::Reward => PluginKind::Reward,
                PluginKindArg::Dataset => PluginKind::Dataset,
            };
            let sdk = match sdk_path {
                Some(path) => scaffold::SdkSource::Path(std::path::absolute(path)?),
                None => scaffold::SdkSource::default_for_this_build(),
            };
            let created = scaffold::scaffold(&name, kind, &dir, &sdk)?;
            print!("{}", created.next_steps());
        }
        Commands::Merge(args) => run_merge(args)?,
        Commands::Export {
            adapter,
            format: ExportFormat::Peft,
            out,
            base_model,
            adapter_file,
            force,
        } => {
            let done = lora_grpo::lora::peft::export(
                &adapter,
                adapter_file.as_deref(),
                &out,
                base_model.as_deref(),
                force,
            )?;
            println!(
                "Exported {} LoRA modules to {} (PEFT): target_modules {:?}, layers_to_transform {}",
                done.modules,
                done.out.display(),
                done.target_modules,
                done.layers_to_transform.map_or("all".to_string(), |l| format!("{l:?}"))
            );
            match done.base_model {
                Some(base) => println!("base_model_name_or_path: {base}"),
                None => {
                    println!("base_model_name_or_path is unknown: pass --base-model to record it")
                }
            }
        }
        Commands::Import { peft, out, force } => {
            let done = lora_grpo::lora::peft::import(&peft, &out, force)?;
            let p = &done.config.lora_parameters;
            println!(
                "Imported {} LoRA modules to {} (mlx-lm): rank {}, scale {}, num_layers {}, keys {:?}",
                done.modules,
                done.out.display(),
                p.rank,
                p.scale,
                done.config.num_layers,
                p.keys.as_deref().unwrap_or_default()
            );
        }
    }
    Ok(())
}

fn run_merge(args: MergeArgs) -> Result<()> {
    use lora_grpo::lora::merge::{merge, MergeOptions, MergeProgress};
    use mlx_rs::Dtype;
    let options = MergeOptions {
        adapter_file: args.adapter_file,
        quantize: args.quantize.as_deref().map(str::parse).transpose()?,
        dtype: args.dtype.map(|d| match d {
            DtypeArg::Float32 => Dtype::Float32,
            DtypeArg::Float16 => Dtype::Float16,
            DtypeArg::Bfloat16 => Dtype::Bfloat16,
        }),
        force: args.force,
        max_shard_bytes: args.max_shard_mib << 20,
    };
    eprintln!(
        "Loading {} and the adapter in {}",
        args.model.display(),
        args.adapter.display()
    );
    let summary = merge(
        &args.model,
        &args.adapter,
        &args.out,
        &options,
        &mut |step| match step {
            MergeProgress::Loaded { adapted, config } => eprintln!(
                "Fusing {adapted} adapted layers (rank {}, scale {})",
                config.lora_parameters.rank, config.lora_parameters.scale
            ),
            MergeProgress::Fused { path, index, total } => eprintln!("  [{index}/{total}] {path}"),
            MergeProgress::Wrote(file) => eprintln!(
                "Wrote {} ({:.1} MiB)",
                file.name,
                file.bytes as f64 / (1 << 20) as f64
            ),
        },
    )?;
    if !summary.survival.layers.is_empty() {
        print!("{}", summary.survival);
    }
    let format = match summary.quantization {
        Some(q) => format!("{}-bit, group size {}", q.bits, q.group_size),
        None => "dequantized".to_string(),
    };
    println!(
        "Merged {} layers into {}: {format}, {:?}, {} weight file(s); copied {}",
        summary.fused.len(),
        summary.out.display(),
        summary.dtype,
        summary.weights.len(),
        if summary.copied.is_empty() {
            "no tokenizer files (none in the base directory)".to_string()
        } else {
            summary.copied.join(", ")
        }
    );
    if !summary.left_dense.is_empty() {
        println!(
            "Left dense (inputs do not fill whole groups): {}",
            summary.left_dense.join(", ")
        );
    }
    Ok(())
}

fn run_bench(command: BenchCommand) -> Result<()> {
    use lora_grpo::bench::{generate, random_model};
    let args = match command {
        BenchCommand::Generate(args) => args,
        BenchCommand::RandomModel { config, seed, tokenizer, out } => {
            std::fs::create_dir_all(&out)?;
            let text = std::fs::read_to_string(&config)?;
            random_model::write_random(&text, &config, seed, &out)?;
            if let Some(dir) = &tokenizer {
                for name in ["tokenizer.json", "tokenizer_config.json"] {
                    std::fs::copy(dir.join(name), out.join(name))?;
                }
            }
            println!("wrote {}", out.display());
            return Ok(());
        }
    };
    let BenchGenerateArgs {
        model, config, seed, prompt_tokens, max_tokens, batch, group, temperature, repeats, dequantize, lora_rank,
    } = args;
    let options = lora_grpo::model::LoadOptions { dequantize, ..Default::default() };
    let started = std::time::Instant::now();
    let (mut lm, source) = match (model, config) {
        (Some(dir), _) => (lora_grpo::model::load(&dir, &options)?, dir.display().to_string()),
        (None, Some(file)) => {
            let lm = random_model::load_random(&file, seed, &options)?;
            (lm, format!("random weights (seed {seed}) for {}", file.display()))
        }
        (None, None) => anyhow::bail!("give --model DIR or --config FILE"),
    };
    let load_seconds = started.elapsed().as_secs_f64();
    if let Some(rank) = lora_rank {
        let parameters = lora_grpo::lora::LoraParameters { rank, scale: 20.0, dropout: 0.0, keys: None };
        let config = lora_grpo::lora::AdapterConfig {
            fine_tune_type: "lora".into(),
            num_layers: -1,
            lora_parameters: parameters,
            extra: Default::default(),
        };
        lora_grpo::lora::attach(&mut lm, &config, seed)?;
    }
    let device = mlx_rs::Device::try_default()?;
    println!(
        "model: {source}{}{}\nMLX {} on {device}; weights {:.1} MB, loaded in {load_seconds:.1} s\n",
        if dequantize { " (dequantized at load)" } else { "" },
        lora_rank.map(|r| format!(", LoRA rank {r} on every linear")).unwrap_or_default(),
        lora_grpo::mlx_info::version().unwrap_or_default(),
        mlx_rs::memory::active_memory()? as f64 / 1e6,
    );
    let bench = generate::GenerateBench { prompt_tokens, max_tokens, batch, group, temperature, repeats, seed };
    let measurements = generate::run(&mut lm, &bench)?;
    print!("{}", generate::table("lora-grpo", &measurements));
    Ok(())
}

fn run_plugins(command: PluginsCommand) -> Result<()> {
    use lora_grpo::plugin::{check, ListReport, PluginHost};
    match command {
        PluginsCommand::List { dirs } => {
            print!("{}", ListReport::new(&mut PluginHost::new(dirs)));
        }
        PluginsCommand::Check {
            plugin,
            config,
            split,
            samples,
            dirs,
        } => {
            let mut host = PluginHost::new(dirs);
            print!("{}", check(&mut host, &plugin, &config, &split, samples)?);
        }
    }
    Ok(())
}
