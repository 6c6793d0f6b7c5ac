//! Command-line arguments, parsed by clap into one enum per subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// strata: a local language-model runtime whose model lives in a versioned tensor store.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, max_term_width = 100)]
pub(crate) struct Cli {
    /// Store directory; overrides `$STRATA_HOME` (default `~/.strata`).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) home: Option<PathBuf>,

    /// Log more detail to stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// One subcommand.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Download a known model (default `smollm2`) and import it into the store.
    Pull(PullArgs),
    /// Import a GGUF file or a Hugging Face model directory into the store.
    Import(ImportArgs),
    /// Chat with a model, or answer one prompt and exit.
    Run(RunArgs),
    /// List the models in the store.
    #[command(alias = "ls")]
    List,
    /// Show a model's config, and with `--tensors` every tensor.
    Show(ShowArgs),
    /// Remove a model's tag; its blobs go at the next `strata gc`.
    Rm(RmArgs),
    /// Check every reachable blob's digest and every manifest.
    Fsck,
    /// Remove unreachable blobs and leftover temporary files.
    Gc,
    /// Measure load time, prefill and decode speed.
    Bench(BenchArgs),
}

/// Arguments of `strata pull`.
#[derive(Debug, Args)]
pub(crate) struct PullArgs {
    /// Known model to fetch: `smollm2` (default) or `qwen2.5-coder:0.5b`.
    #[arg(default_value = "smollm2")]
    pub(crate) model: String,
}

/// Arguments of `strata import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// A `.gguf` file, or a directory with `config.json`, `*.safetensors` and `tokenizer.json`.
    pub(crate) path: PathBuf,

    /// Reference to tag the imported version with, `NAME[:TAG]`.
    #[arg(long, value_name = "NAME[:TAG]")]
    pub(crate) name: String,
}

/// Arguments of `strata run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Model reference: `NAME`, `NAME:TAG` or `NAME@sha256:…`.
    pub(crate) model: String,

    /// Answer this prompt and exit instead of starting a chat.
    pub(crate) prompt: Vec<String>,

    #[command(flatten)]
    pub(crate) sampling: SamplingArgs,

    /// System prompt; without it the model's template default applies.
    #[arg(long)]
    pub(crate) system: Option<String>,
}

/// Sampling settings of `run`.
#[derive(Debug, Args, Clone)]
pub(crate) struct SamplingArgs {
    /// Sampling temperature; 0 (the default) picks the most likely token every step, which
    /// suits small models; raise it (0.7) for varied answers.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) temperature: f64,

    /// Keep only the K most likely tokens (0 keeps all).
    #[arg(long, default_value_t = 40)]
    pub(crate) top_k: usize,

    /// Keep the smallest set of likely tokens whose probabilities add up to P (1 keeps all).
    #[arg(long, default_value_t = 0.9)]
    pub(crate) top_p: f64,

    /// Penalty on tokens seen in the last `--repeat-last-n` tokens (1 turns it off).
    #[arg(long, default_value_t = 1.1)]
    pub(crate) repeat_penalty: f32,

    /// Number of recent tokens the repeat penalty looks at.
    #[arg(long, default_value_t = 64)]
    pub(crate) repeat_last_n: usize,

    /// Seed of the sampler; the same seed and settings give the same answer.
    #[arg(long)]
    pub(crate) seed: Option<u64>,

    /// Maximum number of tokens to generate per answer.
    #[arg(long, default_value_t = 512)]
    pub(crate) max_tokens: usize,
}

/// Arguments of `strata show`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// Model reference.
    pub(crate) model: String,

    /// List every tensor with its dtype, shape, size and digest.
    #[arg(long)]
    pub(crate) tensors: bool,
}

/// Arguments of `strata rm`.
#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// Model references to untag.
    #[arg(required = true)]
    pub(crate) models: Vec<String>,
}

/// Arguments of `strata bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Model reference.
    #[arg(default_value = "smollm2")]
    pub(crate) model: String,

    /// Runs per measurement; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub(crate) runs: usize,

    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
}
