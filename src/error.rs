//! Typed errors, one enum per domain. The binary turns them into `anyhow` reports.

use thiserror::Error;

/// A failure inside MLX itself (an op, an eval, a device query).
#[derive(Debug, Error)]
pub enum MlxError {
    #[error("MLX operation `{op}` failed: {source}")]
    Op {
        op: &'static str,
        #[source]
        source: mlx_rs::error::Exception,
    },
    #[error("MLX self-check `{check}` gave a wrong result: {detail}")]
    WrongResult { check: &'static str, detail: String },
}

/// A recipe that cannot be read, parsed, typed or validated, or written back.
#[derive(Debug, Error)]
pub enum RecipeError {
    #[error("cannot read recipe {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Syntax, type and value problems, each with file, line, column and key.
    #[error("{}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<crate::recipe::Diagnostic>),
    #[error("cannot serialize the recipe: {0}")]
    Serialize(String),
    #[error("cannot write recipe {}: {source}", path.display())]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Bad input to the GRPO math (a shape or count that does not fit the group layout).
#[derive(Debug, Error)]
pub enum GrpoError {
    #[error("{count} rewards cannot be split into groups of {group_size}")]
    Ragged { count: usize, group_size: usize },
    #[error("reward of completion {index} is {value}, not a finite number")]
    NonFiniteReward { index: usize, value: f32 },
}

/// A LoRA adapter directory that cannot be read, written or applied.
#[derive(Debug, Error)]
pub enum AdapterError {
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid adapter config: {source}")]
    Config {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {detail}")]
    Unsupported { path: std::path::PathBuf, detail: String },
    #[error("{path}: cannot read or write the safetensors file: {detail}")]
    Safetensors { path: std::path::PathBuf, detail: String },
    #[error("adapter `{path}` does not fit the model: {detail}")]
    Mismatch { path: std::path::PathBuf, detail: String },
    #[error("MLX operation `{op}` failed: {source}")]
    Mlx {
        op: &'static str,
        #[source]
        source: mlx_rs::error::Exception,
    },
}

/// A failure finding, loading or calling a reward or dataset plugin (`crate::plugin`).
/// Messages name the library or plugin, and for plugin-side failures carry the
/// plugin's own words.
#[derive(Debug, Clone, Error)]
pub enum PluginError {
    #[error("plugin file {} does not exist", path.display())]
    FileMissing { path: std::path::PathBuf },
    #[error(
        "no {} named `{name}` in the plugin search path:\n{searched}{hint}",
        kind.map_or("plugin".to_owned(), |k| format!("{k} plugin"))
    )]
    NotFound {
        name: String,
        /// The kind asked for, if any.
        kind: Option<crate::plugin::PluginKind>,
        /// The directories looked in, one per line.
        searched: String,
        /// Extra advice, e.g. about libraries that could not be read; may be empty.
        hint: String,
    },
    #[error("cannot load {}: {message}", path.display())]
    Load {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("{} is not a lora-grpo plugin: it exports no `{symbol}` function", path.display())]
    NotAPlugin {
        path: std::path::PathBuf,
        symbol: &'static str,
    },
    #[error(
        "{} was built for another plugin ABI major version\n  \
         host:   ABI {host_abi}, SDK {host_sdk}\n  \
         plugin: ABI {plugin_abi}, SDK {plugin_sdk}\n\
         rebuild the plugin against lora-grpo-plugin {host_sdk}",
        path.display()
    )]
    AbiMismatch {
        path: std::path::PathBuf,
        host_abi: String,
        host_sdk: String,
        plugin_abi: String,
        plugin_sdk: String,
    },
    #[error("{} has a bad plugin header: {problem}", path.display())]
    BadHeader {
        path: std::path::PathBuf,
        problem: String,
    },
    #[error(
        "plugin `{name}` ({}) is a {found} plugin, but it was named where a {expected} \
         plugin is needed",
        path.display()
    )]
    WrongKind {
        name: String,
        path: std::path::PathBuf,
        expected: crate::plugin::PluginKind,
        found: crate::plugin::PluginKind,
    },
    #[error("plugin `{plugin}` rejected its config (in `{call}`): {message}")]
    ConfigRejected {
        plugin: String,
        call: &'static str,
        message: String,
    },
    #[error("plugin `{plugin}` failed in `{call}`: {message}")]
    Failed {
        plugin: String,
        call: &'static str,
        message: String,
    },
    #[error("plugin `{plugin}` panicked in `{call}`: {message}")]
    Panicked {
        plugin: String,
        call: &'static str,
        message: String,
    },
    #[error("plugin `{plugin}` returned status {status} from `{call}`, which ABI 1 does not allow there")]
    UnknownStatus {
        plugin: String,
        call: &'static str,
        status: i32,
    },
    #[error("reward plugin `{plugin}` returned bad scores for a batch of {batch}: {problem}")]
    BadScores {
        plugin: String,
        batch: usize,
        problem: String,
    },
    #[error("dataset plugin `{plugin}` (split `{split}`), row {row}: {message}")]
    Row {
        plugin: String,
        split: String,
        row: u64,
        message: String,
    },
    #[error("dataset plugin `{plugin}` (split `{split}`) returned a bad sample: {problem}")]
    BadSample {
        plugin: String,
        split: String,
        problem: String,
    },
}

/// A failure scaffolding a plugin crate (`lora-grpo new-plugin`).
#[derive(Debug, Error)]
pub enum ScaffoldError {
    #[error(
        "invalid plugin name `{name}`: use ASCII letters, digits, `-` and `_`, starting \
         with a letter"
    )]
    BadName { name: String },
    #[error("{} already exists; choose another name or --dir", path.display())]
    Exists { path: std::path::PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A failure to read, check or run a model (src/model).
#[derive(Debug, Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON: {source}")]
    Json {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: `{key}` {problem}")]
    Config {
        path: std::path::PathBuf,
        key: String,
        problem: String,
    },
    #[error("unsupported model_type `{model_type}` in {path}; supported: {supported}")]
    UnsupportedModelType {
        path: std::path::PathBuf,
        model_type: String,
        supported: String,
    },
    #[error("no weights in {dir}: expected model.safetensors, model.safetensors.index.json or model*.safetensors")]
    NoWeights { dir: std::path::PathBuf },
    #[error("cannot load safetensors file {path}: {message}")]
    Safetensors {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("missing tensor `{key}` in {file}{others}")]
    MissingTensor {
        key: String,
        file: std::path::PathBuf,
        /// ", and N more" when several are missing.
        others: String,
    },
    #[error("unexpected tensor `{key}` in {file}: the model has no such parameter{others}")]
    UnexpectedTensor {
        key: String,
        file: std::path::PathBuf,
        others: String,
    },
    #[error("tensor `{key}` in {file} has shape {found:?}, expected {expected:?}{detail}")]
    ShapeMismatch {
        key: String,
        file: std::path::PathBuf,
        found: Vec<i32>,
        expected: Vec<i32>,
        /// What the expected shape comes from, e.g. " (4-bit, group size 64)".
        detail: String,
    },
    #[error("tensor `{key}` in {file} has dtype {found:?}, expected {expected}")]
    DtypeMismatch {
        key: String,
        file: std::path::PathBuf,
        found: mlx_rs::Dtype,
        expected: &'static str,
    },
    #[error("tensor `{key}` appears in both {first} and {second}")]
    DuplicateTensor {
        key: String,
        first: std::path::PathBuf,
        second: std::path::PathBuf,
    },
    #[error("{index} puts `{key}` in {expected}, but it is in {found}")]
    IndexMismatch {
        index: std::path::PathBuf,
        key: String,
        expected: String,
        found: std::path::PathBuf,
    },
    #[error("token id {token} at position {position} of row {row} is outside the vocabulary (size {vocab})")]
    TokenOutOfRange {
        row: usize,
        position: usize,
        token: u32,
        vocab: i32,
    },
    #[error("invalid model input: {0}")]
    Input(String),
    #[error("MLX error in the model: {0}")]
    Mlx(#[from] mlx_rs::error::Exception),
}

/// A failure in the generation engine (src/generate).
#[derive(Debug, Error)]
pub enum GenerateError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("invalid sampling setting `{name}` = {value}: {expected}")]
    Sampling {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("invalid generation request: {0}")]
    Request(String),
    #[error("MLX error during generation: {0}")]
    Mlx(#[from] mlx_rs::error::Exception),
}

/// A failure loading a tokenizer directory, encoding, decoding or rendering a chat template.
/// File problems name the file and the key or line at fault.
#[derive(Debug, Error)]
pub enum TokenizerError {
    #[error("{}: file not found; expected {what}", .path.display())]
    MissingFile { path: std::path::PathBuf, what: &'static str },
    #[error("{}: cannot read: {source}", .path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: invalid JSON: {source}", .path.display())]
    Json {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: not a tokenizer the `tokenizers` library can load: {message}", .path.display())]
    TokenizerJson { path: std::path::PathBuf, message: String },
    #[error("{}: `{key}` should be {expected}, found {found}", .path.display())]
    InvalidKey { path: std::path::PathBuf, key: String, expected: &'static str, found: String },
    #[error("{}: `{key}` names the token {token:?}, which is not in the vocabulary of tokenizer.json", .path.display())]
    UnknownToken { path: std::path::PathBuf, key: String, token: String },
    #[error("{}: `{key}` holds token id {id}, but the vocabulary has only {vocab_size} tokens", .path.display())]
    TokenIdOutOfRange { path: std::path::PathBuf, key: String, id: u64, vocab_size: usize },
    #[error("{}: no chat template (looked in tokenizer_config.json, chat_template.jinja and additional_chat_templates/)", .dir.display())]
    NoChatTemplate { dir: std::path::PathBuf },
    #[error("chat template {requested} not found; this tokenizer has: {available}")]
    UnknownChatTemplate { requested: String, available: String },
    #[error("cannot apply a chat template to an empty conversation")]
    EmptyConversation,
    #[error("chat template argument `{key}` is reserved: pass it through its own option")]
    ReservedTemplateArgument { key: String },
    #[error("{}: chat template `{name}`{}: {detail}", .path.display(), line_suffix(*.line))]
    Template { path: std::path::PathBuf, name: String, line: Option<usize>, detail: String },
    #[error("{}: chat template `{name}` raised an exception: {message}", .path.display())]
    TemplateRaised { path: std::path::PathBuf, name: String, message: String },
    #[error("tokenizer {op} failed: {message}")]
    Codec { op: &'static str, message: String },
}

fn line_suffix(line: Option<usize>) -> String {
    line.map(|l| format!(", line {l}")).unwrap_or_default()
}

/// A GRPO run that cannot start or continue (`lora-grpo run` / `eval`).
#[derive(Debug, Error)]
pub enum TrainError {
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    #[error(transparent)]
    Generate(#[from] GenerateError),
    #[error(transparent)]
    Grpo(#[from] GrpoError),
    #[error("MLX failed during training: {0}")]
    Mlx(#[from] mlx_rs::error::Exception),
    #[error("training data: {0}")]
    Data(String),
    #[error("model.quantize in the recipe: {0}")]
    Quantize(String),
    #[error(
        "output_dir {} already holds a run; continue it with `--resume {}`, start over with \
         `--overwrite`, or choose another `output_dir`",
        dir.display(),
        dir.display()
    )]
    OutputDirInUse { dir: std::path::PathBuf },
    #[error("cannot write the checkpoint: {0}")]
    Checkpoint(String),
    #[error("cannot resume from {}: {detail}", dir.display())]
    Resume { dir: std::path::PathBuf, detail: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the generated text: {0}")]
    Output(#[source] std::io::Error),
    #[error(transparent)]
    Distributed(#[from] DistributedError),
}

/// A failure merging an adapter into its base model, or converting an adapter between
/// the mlx-lm and Hugging Face PEFT formats (`crate::lora::merge`, `crate::lora::peft`).
#[derive(Debug, Error)]
pub enum ExportError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    #[error("{} already exists; choose another --out or pass --force to replace it", path.display())]
    OutputExists { path: std::path::PathBuf },
    #[error("--out {} is the {role} directory; writing there would destroy the input", path.display())]
    OutputIsInput { path: std::path::PathBuf, role: &'static str },
    #[error("invalid --quantize `{value}`: {problem}")]
    Quantize { value: String, problem: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {detail}", path.display())]
    Safetensors { path: std::path::PathBuf, detail: String },
    #[error("MLX operation `{op}` failed: {source}")]
    Mlx {
        op: &'static str,
        #[source]
        source: mlx_rs::error::Exception,
    },
}

/// A benchmark that cannot run (`lora-grpo bench`).
#[derive(Debug, Error)]
pub enum BenchError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Generate(#[from] GenerateError),
    #[error("MLX error while building the random model: {0}")]
    Mlx(#[from] mlx_rs::error::Exception),
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {detail}", path.display())]
    Config { path: std::path::PathBuf, detail: String },
}

/// A data-parallel run that cannot start or whose ranks lost each other
/// (`crate::distributed`).
#[derive(Debug, Error)]
pub enum DistributedError {
    #[error("distributed.backend `{backend}`: this MLX build has no {backend} backend{hint}")]
    Unavailable { backend: &'static str, hint: &'static str },
    #[error("environment variable {name}: {detail}")]
    Env { name: &'static str, detail: String },
    #[error("MLX could not start the {backend} group as rank {rank}: {detail}")]
    Init { backend: &'static str, rank: String, detail: String },
    #[error("{0}")]
    Config(String),
    #[error("launch: {0}")]
    Launch(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}
