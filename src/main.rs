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
    /// Work with training recipes.
    #[command(subcommand)]
    Recipe(RecipeCommand),
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

#[derive(Clone, Copy, clap::ValueEnum)]
enum PluginKindArg {
    Reward,
    Dataset,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Commands::Doctor => {
            let report = lora_grpo::doctor::run()?;
            print!("{report}");
            if !report.passed() {
                anyhow::bail!("doctor found a problem with MLX (see the checks above)");
            }
        }
        Commands::Recipe(RecipeCommand::Check { file, set }) => {
            let recipe = lora_grpo::recipe::Recipe::load(&file, &set)?;
            print!("{}", recipe.to_yaml()?);
        }
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
    }
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
