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
    /// Download a known model (default `smollm2`), or pull a version or snapshot from an OCI
    /// registry (`oci://HOST[:PORT]/REPO[:TAG]`), into the store.
    Pull(PullArgs),
    /// Push a model version or a saved session to an OCI registry.
    Push(PushArgs),
    /// Write a model version or a saved session to an OCI layout archive (`.tar`).
    Export(ExportArgs),
    /// Import a GGUF file, a Hugging Face model directory or an OCI layout archive (`.tar`).
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
    /// List, show, remove and rebase saved sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Embedding collections: create, add files, search by text, image or audio with filters.
    #[command(subcommand)]
    Collection(CollectionCommand),
    /// Teach a model facts from a file or a saved session; a passing lesson becomes a new version.
    Learn(LearnArgs),
    /// Measure learning: teach facts one lesson at a time and report efficacy, generalization,
    /// specificity, perplexity change and time per lesson.
    Eval(EvalArgs),
    /// Show a model's lineage: each version with its lesson and gate figures.
    Log(LogArgs),
    /// Show which tensors and adapters differ between two versions, with norms.
    Diff(DiffArgs),
    /// Point a tag at a version: `strata tag SOURCE TARGET`.
    Tag(TagArgs),
    /// Move a model's tag back to an earlier version of its lineage; nothing is deleted.
    Rollback(RollbackArgs),
    /// Merge a version's adapters into its weights as a new base version.
    Squash(SquashArgs),
    /// Serve the OpenAI-compatible API and strata's own endpoints over HTTP.
    Serve(ServeArgs),
}

/// Arguments of `strata serve`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  strata serve                                  http://127.0.0.1:11435/v1, pulls smollm2 if missing
  strata serve --host 0.0.0.0 --api-key KEY     reachable from other machines, key required
  curl http://127.0.0.1:11435/v1/chat/completions -d '{\"model\":\"smollm2\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}'")]
pub(crate) struct ServeArgs {
    /// Address to listen on; any address but loopback needs an API key.
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) host: std::net::IpAddr,

    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, default_value_t = 11435)]
    pub(crate) port: u16,

    /// Key clients must send as `Authorization: Bearer KEY`.
    #[arg(long, env = "STRATA_API_KEY", hide_env_values = true)]
    pub(crate) api_key: Option<String>,

    /// Model to make ready at start (pulled when it is a known model and missing); requests
    /// may name any model in the store.
    #[arg(long, default_value = "smollm2")]
    pub(crate) model: String,

    /// Requests decoded together per model.
    #[arg(long, default_value_t = 16)]
    pub(crate) slots: usize,

    /// Requests that may wait for a slot before new ones get 503.
    #[arg(long, default_value_t = 64)]
    pub(crate) queue: usize,

    /// Largest request body in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    pub(crate) max_body: usize,

    /// Seconds requests in flight may run after Ctrl-C or SIGTERM before they are cancelled.
    #[arg(long, default_value_t = 10)]
    pub(crate) grace: u64,
}

/// Settings shared by `learn` and `eval`.
#[derive(Debug, Args, Clone)]
pub(crate) struct LearningArgs {
    /// Adapter rank (a lineage keeps the rank of its first lesson).
    #[arg(long, default_value_t = 8)]
    pub(crate) rank: usize,

    /// Adapter alpha; the update is scaled by alpha / rank.
    #[arg(long, default_value_t = 16.0)]
    pub(crate) alpha: f64,

    /// Number of top decoder layers that get adapters.
    #[arg(long, default_value_t = 4)]
    pub(crate) layers: usize,

    /// Projections that get adapters, comma-separated: q,k,v,o,gate,up,down.
    #[arg(long, value_delimiter = ',', default_value = "q,k,v,o,gate,up,down")]
    pub(crate) targets: Vec<String>,

    /// Maximum training steps per lesson; training stops two steps after the lesson is answered.
    #[arg(long, default_value_t = 24)]
    pub(crate) steps: usize,

    /// AdamW learning rate.
    #[arg(long, default_value_t = 2e-3)]
    pub(crate) lr: f64,

    /// Seed of initialization and sampling of the training set; the same seed repeats a run.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,

    /// Control questions (JSON Lines with `question` and `answer`) whose answers must not
    /// change [default: 20 built-in general questions].
    #[arg(long, value_name = "FILE")]
    pub(crate) controls: Option<PathBuf>,

    /// Directory of held-out `.rst.txt` text for the perplexity check [default:
    /// $STRATA_HELDOUT_DIR, else /usr/share/doc/python3.11/html/_sources].
    #[arg(long, value_name = "DIR")]
    pub(crate) heldout: Option<PathBuf>,

    /// Largest allowed rise of held-out perplexity, in percent.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) max_perplexity_increase: f64,

    /// Control answers the parent got right that the new version may get wrong.
    #[arg(long, default_value_t = 1)]
    pub(crate) max_control_regressions: usize,

    /// Facts of earlier lessons the new version may forget.
    #[arg(long, default_value_t = 0)]
    pub(crate) max_forgotten: usize,

    /// Training and gate rounds per lesson: after a failed gate, training goes on with
    /// forgotten facts added and, when controls or perplexity moved, twice the anchors.
    #[arg(long, default_value_t = 2)]
    pub(crate) attempts: usize,
}

/// Arguments of `strata learn`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  strata learn smollm2 --facts facts.jsonl     one lesson with every fact of the file
  strata learn smollm2 --session notes         the question and answer pairs of a saved chat
  strata learn smollm2 --teach 'Who made the kivfalscope? => Greta Ulmzen'")]
pub(crate) struct LearnArgs {
    /// The model tag to teach, `NAME[:TAG]`; it moves to the new version when the gate passes.
    pub(crate) model: String,

    /// JSON Lines of facts: `question`, `answer`, optional `statement` and `paraphrases`.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["session", "teach"])]
    pub(crate) facts: Option<PathBuf>,

    /// A saved session: each user message and the reply that followed become a pair.
    #[arg(long, value_name = "NAME", conflicts_with = "teach")]
    pub(crate) session: Option<String>,

    /// One pair, `QUESTION => ANSWER`.
    #[arg(long, value_name = "PAIR")]
    pub(crate) teach: Option<String>,

    #[command(flatten)]
    pub(crate) learning: LearningArgs,
}

/// Arguments of `strata eval`.
#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// The base model; lessons go to a new tag `NAME:eval-TIME`, leaving its tags alone.
    pub(crate) model: String,

    /// JSON Lines of facts to teach one per lesson; their paraphrases are held out.
    #[arg(long, value_name = "FILE")]
    pub(crate) facts: PathBuf,

    /// Teach only the first N facts.
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,

    /// Lessons between checkpoints.
    #[arg(long, default_value_t = 8)]
    pub(crate) every: usize,

    /// Also write every figure as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,

    /// Measure the fast memory alone: store the facts in a scratch memory, train nothing, and
    /// ask every question, paraphrase and control with what the memory recalls.
    #[arg(long)]
    pub(crate) memory: bool,

    #[command(flatten)]
    pub(crate) learning: LearningArgs,
}

/// Arguments of `strata log`.
#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// The model, `NAME[:TAG]` or `NAME@sha256:…`.
    pub(crate) model: String,
}

/// Arguments of `strata diff`.
#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The first version: `NAME[:TAG]`, `NAME@sha256:…`, or `NAME~N` for N versions back.
    pub(crate) from: String,
    /// The second version, written the same way.
    pub(crate) to: String,
}

/// Arguments of `strata tag`.
#[derive(Debug, Args)]
pub(crate) struct TagArgs {
    /// The version to tag, `NAME[:TAG]` or `NAME@sha256:…`.
    pub(crate) source: String,
    /// The new tag, `NAME[:TAG]`.
    pub(crate) target: String,
}

/// Arguments of `strata rollback`.
#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    /// The model tag to move, `NAME[:TAG]`.
    pub(crate) model: String,
    /// The version to move it to: a digest or digest prefix from `strata log`, or `~N` for
    /// N versions back (default `~1`, the parent).
    #[arg(default_value = "~1")]
    pub(crate) version: String,
}

/// Arguments of `strata squash`.
#[derive(Debug, Args)]
pub(crate) struct SquashArgs {
    /// The model tag whose adapters are merged; it moves to the merged version.
    pub(crate) model: String,

    /// Directory of held-out text for the perplexity comparison.
    #[arg(long, value_name = "DIR")]
    pub(crate) heldout: Option<PathBuf>,
}

/// Arguments of `strata pull`.
#[derive(Debug, Args)]
pub(crate) struct PullArgs {
    /// Known model to fetch (`smollm2`, the default, or `qwen2.5-coder:0.5b`), or a registry
    /// reference `oci://HOST[:PORT]/REPO[:TAG]`.
    #[arg(default_value = "smollm2")]
    pub(crate) model: String,

    /// Tag for what a registry pull brings, `NAME[:TAG]` [default: the repository's last
    /// component and the tag].
    #[arg(long, value_name = "NAME[:TAG]")]
    pub(crate) name: Option<String>,

    /// Talk to the registry over plain HTTP, as a local registry expects.
    #[arg(long)]
    pub(crate) plain_http: bool,
}

/// Arguments of `strata export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Model version (`NAME[:TAG]`, `NAME@sha256:…`) or saved session (`session/NAME`).
    pub(crate) source: String,

    /// The archive to write; skopeo reads it as `oci-archive:FILE`.
    pub(crate) file: PathBuf,
}

/// Arguments of `strata push`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  strata push smollm2 oci://localhost:5000/smollm2:latest --plain-http
  strata push session/notes oci://ghcr.io/team/notes:v1

Credentials come from STRATA_REGISTRY_USERNAME and STRATA_REGISTRY_PASSWORD, else from
Docker's config.json (`docker login`).")]
pub(crate) struct PushArgs {
    /// Model version (`NAME[:TAG]`, `NAME@sha256:…`) or saved session (`session/NAME`).
    pub(crate) source: String,

    /// The destination, `oci://HOST[:PORT]/REPO[:TAG]`.
    pub(crate) destination: String,

    /// Another repository of the same registry to mount missing blobs from (such as the one
    /// the base model was pushed to), so they are not uploaded again.
    #[arg(long, value_name = "REPO")]
    pub(crate) mount_from: Option<String>,

    /// Talk to the registry over plain HTTP, as a local registry expects.
    #[arg(long)]
    pub(crate) plain_http: bool,
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
#[command(after_help = "\
Examples:
  strata run smollm2                              chat
  strata run smollm2 \"Why is the sky blue?\"       answer one prompt
  strata run smollm2 --save notes \"Remember: ...\" answer, then save the session as `notes`
  strata run --from notes \"What did I say?\"       start from `notes`, leaving it unchanged
  strata run --session notes                      resume `notes` and save it back on exit")]
pub(crate) struct RunArgs {
    /// `MODEL [PROMPT...]`: the model (`NAME`, `NAME:TAG` or `NAME@sha256:…`), then a prompt to
    /// answer instead of starting a chat. With `--from`, or `--session` naming a saved session,
    /// the session names its model: the first word is then the model only if it names one in
    /// the store, and every other word is prompt.
    #[arg(value_name = "MODEL [PROMPT]")]
    pub(crate) words: Vec<String>,

    /// Save the session under this name after the answer, or when the chat ends.
    #[arg(long, value_name = "NAME")]
    pub(crate) save: Option<String>,

    /// Start from the saved session NAME (or a snapshot digest, `sha256:…`, such as an older
    /// state `session show` lists as a parent) without changing it.
    #[arg(long, value_name = "NAME", conflicts_with = "session")]
    pub(crate) from: Option<String>,

    /// Resume the saved session NAME (or start it) and save it back on exit; the old state
    /// stays readable as the new one's parent. If another process saved NAME meanwhile, this
    /// chat is saved as NAME-2 instead.
    #[arg(long, value_name = "NAME")]
    pub(crate) session: Option<String>,

    /// Run the session on this model instead of the one it was saved with; its cache is then
    /// recomputed.
    #[arg(long, value_name = "MODEL")]
    pub(crate) model: Option<String>,

    /// Precision of the KV cache and of saved sessions: f16 (default, as llama.cpp) or f32.
    /// Either way a saved session restores exactly.
    #[arg(long, value_name = "DTYPE")]
    pub(crate) kv_dtype: Option<String>,

    #[command(flatten)]
    pub(crate) sampling: SamplingArgs,

    /// System prompt; without it the model's template default applies.
    #[arg(long)]
    pub(crate) system: Option<String>,
}

/// Sampling settings of `run`; unset ones come from the resumed session, then the defaults.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SamplingArgs {
    /// Sampling temperature [default: 0]; 0 picks the most likely token every step, which
    /// suits small models; raise it (0.7) for varied answers.
    #[arg(long)]
    pub(crate) temperature: Option<f64>,

    /// Keep only the K most likely tokens, 0 keeps all [default: 40].
    #[arg(long)]
    pub(crate) top_k: Option<usize>,

    /// Keep the smallest set of likely tokens whose probabilities add up to P, 1 keeps all
    /// [default: 0.9].
    #[arg(long)]
    pub(crate) top_p: Option<f64>,

    /// Penalty on tokens seen in the last `--repeat-last-n` tokens [default: 1, off, as in
    /// llama.cpp]; above 1 it also keeps the model from repeating facts given in the chat.
    #[arg(long)]
    pub(crate) repeat_penalty: Option<f32>,

    /// Number of recent tokens the repeat penalty looks at [default: 64].
    #[arg(long)]
    pub(crate) repeat_last_n: Option<usize>,

    /// Seed of the sampler; the same seed and settings give the same answer.
    #[arg(long)]
    pub(crate) seed: Option<u64>,

    /// Maximum number of tokens to generate per answer [default: 512].
    #[arg(long)]
    pub(crate) max_tokens: Option<usize>,
}

/// `strata session` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum SessionCommand {
    /// List saved sessions.
    #[command(alias = "ls")]
    List,
    /// Show a session: model, tokens, cache blocks with digests, parent, messages.
    Show(SessionShowArgs),
    /// Remove a session's name; its blocks go at the next `strata gc` unless another session
    /// uses them.
    Rm(SessionRmArgs),
    /// Recompute a session's cache on a model version (another one, or its own to repair damaged
    /// blocks) and save it as a new snapshot.
    Rebase(SessionRebaseArgs),
}

/// `strata collection` subcommands.
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Examples:
  strata collection create notes --embedder text
  strata collection add notes docs/*.md --payload project=strata
  strata collection search notes \"how are snapshots stored\" --filter 'project = \"strata\"' --top 5
  strata collection create points --embedder none --dim 3
  strata collection add points points.jsonl       # lines of {\"id\", \"vector\", \"payload\"}
  strata collection search points --vector '[0.1, 0.2, 0.3]'")]
pub(crate) enum CollectionCommand {
    /// Create an empty collection.
    Create(CollectionCreateArgs),
    /// Embed files and add them; text files are split into passages.
    Add(CollectionAddArgs),
    /// Find the points nearest to a text, an image, an audio clip or a vector.
    Search(CollectionSearchArgs),
    /// List collections.
    #[command(alias = "ls")]
    List,
    /// Show a collection: dimension, metric, embedder, points and versions.
    Show(CollectionNameArgs),
    /// Remove a collection's name; its blobs go at the next `strata gc`.
    Rm(CollectionNameArgs),
}

/// Arguments of `strata collection create`.
#[derive(Debug, Args)]
pub(crate) struct CollectionCreateArgs {
    /// Collection name: lowercase letters, digits, `.`, `_` and `-`.
    pub(crate) name: String,
    /// What turns files and queries into vectors: text, image, audio, video, or none (vectors
    /// given as they are).
    #[arg(long, default_value = "text")]
    pub(crate) embedder: String,
    /// Number of values per vector; required with `--embedder none`, else the embedder's.
    #[arg(long)]
    pub(crate) dim: Option<usize>,
    /// Distance: cosine, dot or l2.
    #[arg(long, default_value = "cosine")]
    pub(crate) metric: String,
}

/// Arguments of `strata collection add`.
#[derive(Debug, Args)]
pub(crate) struct CollectionAddArgs {
    /// Collection name.
    pub(crate) name: String,
    /// Files to add: text, images, audio or video for the collection's embedder, or JSON lines
    /// of `{"id", "vector", "payload"}` for a collection without one.
    #[arg(required = true)]
    pub(crate) files: Vec<std::path::PathBuf>,
    /// A payload field for every added point, as KEY=VALUE (numbers and true/false are typed).
    #[arg(long = "payload", value_name = "KEY=VALUE")]
    pub(crate) payload: Vec<String>,
}

/// Arguments of `strata collection search`.
#[derive(Debug, Args)]
pub(crate) struct CollectionSearchArgs {
    /// Collection name.
    pub(crate) name: String,
    /// Text query, for a text collection.
    pub(crate) query: Option<String>,
    /// Image file as the query.
    #[arg(long, conflicts_with_all = ["query", "audio", "vector"])]
    pub(crate) image: Option<std::path::PathBuf>,
    /// Audio file as the query.
    #[arg(long, conflicts_with_all = ["query", "image", "vector"])]
    pub(crate) audio: Option<std::path::PathBuf>,
    /// A vector as a JSON array, for any collection.
    #[arg(long, conflicts_with_all = ["query", "image", "audio"])]
    pub(crate) vector: Option<String>,
    /// Payload filter, such as `kind = "image" and year >= 2020 and tag in ["a", "b"]`.
    #[arg(long)]
    pub(crate) filter: Option<String>,
    /// Number of results.
    #[arg(long, default_value_t = 10)]
    pub(crate) top: usize,
    /// Score every point instead of using the HNSW index.
    #[arg(long)]
    pub(crate) exact: bool,
}

/// A collection name argument.
#[derive(Debug, Args)]
pub(crate) struct CollectionNameArgs {
    /// Collection name.
    pub(crate) name: String,
}

/// Arguments of `strata session show`.
#[derive(Debug, Args)]
pub(crate) struct SessionShowArgs {
    /// Session name, or a snapshot digest `sha256:…` (a parent, for example).
    pub(crate) name: String,
}

/// Arguments of `strata session rm`.
#[derive(Debug, Args)]
pub(crate) struct SessionRmArgs {
    /// Session names.
    #[arg(required = true)]
    pub(crate) names: Vec<String>,
}

/// Arguments of `strata session rebase`.
#[derive(Debug, Args)]
pub(crate) struct SessionRebaseArgs {
    /// Session name.
    pub(crate) name: String,

    /// Model version to move the session to, `MODEL[:TAG]`.
    #[arg(long, value_name = "MODEL")]
    pub(crate) onto: String,

    /// Save the result under this new name instead of replacing NAME.
    #[arg(long = "as", value_name = "NEW")]
    pub(crate) save_as: Option<String>,
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

    /// Measure sessions instead: restoring snapshots against prefilling the same tokens, and
    /// the bytes ten forks of a snapshot take.
    #[arg(long)]
    pub(crate) sessions: bool,

    /// Snapshot lengths for `--sessions`, in tokens.
    #[arg(long, value_delimiter = ',', default_values_t = [1000, 4000])]
    pub(crate) tokens: Vec<usize>,

    /// Measure an OpenAI-compatible server instead (strata serve, llama-server, …) at this
    /// base URL, such as `http://127.0.0.1:11435`: aggregate tokens/s and time to first token.
    #[arg(long, value_name = "URL")]
    pub(crate) serve: Option<String>,

    /// Concurrent clients for `--serve`, one measurement per count.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 16])]
    pub(crate) clients: Vec<usize>,

    /// Streaming requests each client sends one after another, for `--serve`.
    #[arg(long, default_value_t = 2)]
    pub(crate) requests: usize,

    /// Tokens each `--serve` request requests.
    #[arg(long, default_value_t = 128)]
    pub(crate) max_tokens: usize,
}
