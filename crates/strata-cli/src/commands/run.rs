//! `strata run`: load a model (or a saved session) and answer one prompt or start a chat.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use strata_runtime::FinishReason;
use strata_runtime::engine::{Chat, Engine};
use strata_runtime::model::BlockDtype;
use strata_runtime::sampling::SamplingParams;
use strata_sessions::{SessionError, SessionName, Snapshot, SnapshotRef};
use strata_store::{Reference, Store};

use crate::cli::{RunArgs, SamplingArgs};
use crate::commands::pull;
use crate::exit::{self, ExitError};
use crate::live::{Live, load_engine};
use crate::{home, interrupt, repl};

/// Runs `strata run`.
pub(crate) fn run(home: &Path, args: &RunArgs) -> anyhow::Result<()> {
    let names = SessionFlags::parse(args)?;
    let kv_flag = args.kv_dtype.as_deref().map(parse_kv_dtype).transpose()?;
    let store = home::open_store(home)?;
    let start = names.starting_snapshot(&store)?;
    if let (Some(snapshot), Some(system)) = (&start, &args.system)
        && snapshot.config.system.as_ref() != Some(system)
    {
        bail!("--system cannot replace the system message of a saved session; start a new one");
    }

    let (model, prompt, chosen) = model_and_prompt(args, &store, start.as_ref(), &names)?;
    if !args.words.is_empty() && prompt.trim().is_empty() && !chosen_only_model(args, chosen) {
        bail!("the prompt is empty: give a question, or leave it out to start a chat");
    }
    let base = start.as_ref().map(|snapshot| &snapshot.config.sampling);
    let params = sampling_params(&args.sampling, base)?;
    let kv_dtype = match (kv_flag, &start) {
        (Some(dtype), _) => dtype,
        (None, Some(snapshot)) => snapshot.config.kv.block_dtype()?,
        (None, None) => BlockDtype::F16,
    };
    if let Some(snapshot) = &start {
        check_model_present(&store, snapshot, chosen)?;
    }
    let engine = load_engine(home, &store, &model)?;

    let mut live = Live::new(store, engine, params, kv_dtype)?;
    match start {
        Some(snapshot) => {
            let reference = names.from.as_ref().map(|from| from.to_string());
            let name = match (&names.resume, reference) {
                (Some(resume), _) => resume.clone(),
                (None, Some(from)) => SessionName::parse(&from).unwrap_or(fork_label()),
                (None, None) => unreachable!("a start comes from --from or --session"),
            };
            live.restore(snapshot, &name, names.resume.is_some())?;
        }
        None => {
            live.chat = live.engine().new_chat(args.system.clone());
            live.attached = names.resume.clone().map(|name| (name, None));
        }
    }
    interrupt::install()?;

    if prompt.is_empty() {
        repl::chat_loop(&mut live)?;
        return save_on_exit(&mut live, &names);
    }
    let engine = live.routed_engine(&prompt)?;
    let finish = answer(&engine, &mut live.chat, &prompt, &live.params)?;
    save_on_exit(&mut live, &names)?;
    if finish == FinishReason::Cancelled {
        let message = "interrupted".to_string();
        return Err(ExitError {
            code: exit::INTERRUPTED,
            message,
        }
        .into());
    }
    Ok(())
}

/// True when the only word given was the model, as in `strata run smollm2`.
fn chosen_only_model(args: &RunArgs, chosen: bool) -> bool {
    chosen && args.model.is_none() && args.words.len() == 1
}

/// The label a fork of a digest-named snapshot is restored under; it is never saved to.
fn fork_label() -> SessionName {
    SessionName::parse("fork").expect("a valid name")
}

/// Saves the chat as `--save` asks, or back to the `--session` it is attached to.
fn save_on_exit(live: &mut Live, names: &SessionFlags) -> anyhow::Result<()> {
    if let Some(name) = &names.save {
        return live.save_as(name);
    }
    if names.resume.is_none() {
        return Ok(());
    }
    if live.attached.is_none() {
        eprintln!("note: this chat was forked and is not saved; use /save NAME next time");
        return Ok(());
    }
    live.save_attached()
}

/// The session names `run` was given, checked.
#[derive(Debug)]
struct SessionFlags {
    save: Option<SessionName>,
    from: Option<SnapshotRef>,
    resume: Option<SessionName>,
}

impl SessionFlags {
    fn parse(args: &RunArgs) -> anyhow::Result<SessionFlags> {
        let parse = |flag: &str, name: &Option<String>| -> anyhow::Result<Option<SessionName>> {
            let parsed = name.as_deref().map(SessionName::parse).transpose();
            parsed.with_context(|| format!("invalid --{flag}"))
        };
        let from = args.from.as_deref().map(SnapshotRef::parse).transpose();
        Ok(SessionFlags {
            save: parse("save", &args.save)?,
            from: from.context("invalid --from")?,
            resume: parse("session", &args.session)?,
        })
    }

    /// The snapshot to start from: `--from` must exist; `--session` may be new.
    fn starting_snapshot(&self, store: &Store) -> anyhow::Result<Option<Snapshot>> {
        if let Some(reference) = &self.from {
            return Ok(Some(Snapshot::open_ref(store, reference)?));
        }
        let Some(name) = &self.resume else {
            return Ok(None);
        };
        match Snapshot::open(store, name) {
            Ok(snapshot) => Ok(Some(snapshot)),
            Err(SessionError::NotFound { .. }) => {
                eprintln!("starting a new session `{name}`");
                Ok(None)
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// Splits the positional words into the model and the prompt.
///
/// With a saved session to start from, the first word is the model only when it names a model
/// in the store (`strata run smollm2 --session work` reads naturally); otherwise every word is
/// prompt and the session's own model runs.
fn model_and_prompt(
    args: &RunArgs,
    store: &Store,
    start: Option<&Snapshot>,
    names: &SessionFlags,
) -> anyhow::Result<(Reference, String, bool)> {
    let words = &args.words;
    if let Some(model) = &args.model {
        return Ok((Reference::parse(model)?, words.join(" "), true));
    }
    let first_is_model = words.first().and_then(|word| stored_model(store, word));
    match (start, first_is_model) {
        (Some(_), Some(model)) => Ok((model, words[1..].join(" "), true)),
        (Some(snapshot), None) => Ok((snapshot.model_reference(), words.join(" "), false)),
        (None, _) => {
            let Some((model, rest)) = words.split_first() else {
                bail!("missing MODEL: name one, for example `strata run smollm2`");
            };
            let reference = Reference::parse(model);
            let loadable = reference.as_ref().is_ok_and(|reference| {
                store.resolve(reference).is_ok()
                    || pull::known_and_missing(store, reference).is_some()
            });
            if let (Some(name), false) = (&names.resume, loadable) {
                bail!(
                    "no saved session named `{name}` yet; to start it, name a model first: \
                     `strata run smollm2 --session {name}`"
                );
            }
            Ok((reference?, rest.join(" "), true))
        }
    }
}

/// Returns `word` as a reference when it names a model tagged in the store.
fn stored_model(store: &Store, word: &str) -> Option<Reference> {
    let reference = Reference::parse(word).ok()?;
    store.resolve(&reference).ok()?;
    Some(reference)
}

/// Fails with the snapshot's own message when the model it names is gone.
fn check_model_present(store: &Store, snapshot: &Snapshot, overridden: bool) -> anyhow::Result<()> {
    let model = &snapshot.config.model;
    if overridden || store.has_blob(&model.manifest) {
        return Ok(());
    }
    Err(SessionError::ModelMissing {
        reference: model.reference.clone(),
        digest: model.manifest.clone(),
    }
    .into())
}

/// Parses `--kv-dtype`.
fn parse_kv_dtype(text: &str) -> anyhow::Result<BlockDtype> {
    match BlockDtype::parse(text) {
        Some(dtype) => Ok(dtype),
        None => bail!("invalid --kv-dtype `{text}`: expected `f16` or `f32`"),
    }
}

/// Sends `prompt`, streams the answer to stdout and ends it with a newline.
pub(crate) fn answer(
    engine: &Engine,
    chat: &mut Chat,
    prompt: &str,
    params: &SamplingParams,
) -> anyhow::Result<FinishReason> {
    interrupt::reset();
    let mut out = std::io::stdout().lock();
    let mut write_error = None;
    let reply = chat.send(engine, prompt, params, &mut |piece: &str| {
        if let Err(error) = out.write_all(piece.as_bytes()).and_then(|()| out.flush()) {
            write_error = Some(error);
            return std::ops::ControlFlow::Break(());
        }
        interrupt::check()
    })?;
    if let Some(error) = write_error {
        return Err(error.into());
    }
    writeln!(out)?;
    tracing::info!(
        prompt_tokens = reply.prompt_tokens,
        reused_tokens = reply.reused_tokens,
        generated = reply.generated_tokens,
        finish = ?reply.finish,
        "answered"
    );
    Ok(reply.finish)
}

/// Merges the command-line sampling flags over `base` (a resumed session's settings) and the
/// defaults, and checks the result.
pub(crate) fn sampling_params(
    args: &SamplingArgs,
    base: Option<&SamplingParams>,
) -> anyhow::Result<SamplingParams> {
    let defaults = SamplingParams {
        temperature: 0.0,
        top_k: Some(40),
        top_p: Some(0.9),
        repeat_penalty: 1.0,
        repeat_last_n: 64,
        seed: None,
        max_tokens: 512,
    };
    let base = base.unwrap_or(&defaults);
    let params = SamplingParams {
        temperature: args.temperature.unwrap_or(base.temperature),
        top_k: args.top_k.map(Some).unwrap_or(base.top_k),
        top_p: args.top_p.map(Some).unwrap_or(base.top_p),
        repeat_penalty: args.repeat_penalty.unwrap_or(base.repeat_penalty),
        repeat_last_n: args.repeat_last_n.unwrap_or(base.repeat_last_n),
        seed: args.seed.or(base.seed),
        max_tokens: args.max_tokens.unwrap_or(base.max_tokens),
    };
    check_sampling(&params)?;
    Ok(params)
}

fn check_sampling(params: &SamplingParams) -> anyhow::Result<()> {
    let temperature = params.temperature;
    if !(temperature.is_finite() && temperature >= 0.0) {
        bail!("invalid --temperature {temperature}: expected a number of 0 or more");
    }
    let top_p = params.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        bail!("invalid --top-p {top_p}: expected a number above 0 and at most 1");
    }
    let penalty = params.repeat_penalty;
    if !(penalty.is_finite() && penalty > 0.0) {
        bail!("invalid --repeat-penalty {penalty}: expected a number above 0 (1 turns it off)");
    }
    if params.max_tokens == 0 {
        bail!("invalid --max-tokens 0: expected at least 1");
    }
    Ok(())
}
