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
    }
    Ok(())
}
