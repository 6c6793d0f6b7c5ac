//! `strata run`: load a model from the store and answer one prompt or start a chat.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use strata_model::load::LoadedModel;
use strata_runtime::FinishReason;
use strata_runtime::engine::{Chat, Engine};
use strata_runtime::sampling::SamplingParams;
use strata_store::Reference;

use crate::cli::{RunArgs, SamplingArgs};
use crate::commands::pull;
use crate::exit::{self, ExitError};
use crate::{home, interrupt, repl};

/// Runs `strata run MODEL [PROMPT]`.
pub(crate) fn run(home: &Path, args: &RunArgs) -> anyhow::Result<()> {
    let params = sampling_params(&args.sampling)?;
    let engine = load_engine(home, &args.model)?;
    let mut chat = engine.new_chat(args.system.clone());
    interrupt::install()?;

    if args.prompt.is_empty() {
        return repl::chat_loop(&engine, &mut chat, &params);
    }
    let prompt = args.prompt.join(" ");
    if answer(&engine, &mut chat, &prompt, &params)? == FinishReason::Cancelled {
        let message = "interrupted".to_string();
        return Err(ExitError {
            code: exit::INTERRUPTED,
            message,
        }
        .into());
    }
    Ok(())
}

/// Resolves `model`, pulling it first when it is a known default the store lacks, and loads it.
pub(crate) fn load_engine(home: &Path, model: &str) -> anyhow::Result<Engine> {
    let reference = Reference::parse(model)?;
    let store = home::open_store(home)?;
    if let Some(known) = pull::known_and_missing(&store, &reference) {
        eprintln!("{reference} is not in the store yet; pulling it");
        pull::pull(home, known)?;
    }

    let started = Instant::now();
    let loaded = LoadedModel::open(&store, &reference)
        .with_context(|| format!("cannot load `{reference}`; see `strata list`"))?;
    let engine = Engine::load(&loaded).with_context(|| format!("cannot start `{reference}`"))?;
    tracing::info!(model = %reference, elapsed = ?started.elapsed(), "model loaded");
    Ok(engine)
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
        generated = reply.generated_tokens,
        finish = ?reply.finish,
        "answered"
    );
    Ok(reply.finish)
}

/// Checks the command-line sampling flags and converts them into runtime parameters.
pub(crate) fn sampling_params(args: &SamplingArgs) -> anyhow::Result<SamplingParams> {
    if !(args.temperature.is_finite() && args.temperature >= 0.0) {
        bail!(
            "invalid --temperature {}: expected a number of 0 or more",
            args.temperature
        );
    }
    if !(args.top_p > 0.0 && args.top_p <= 1.0) {
        bail!(
            "invalid --top-p {}: expected a number above 0 and at most 1",
            args.top_p
        );
    }
    if !(args.repeat_penalty.is_finite() && args.repeat_penalty > 0.0) {
        let value = args.repeat_penalty;
        bail!("invalid --repeat-penalty {value}: expected a number above 0 (1 turns it off)");
    }
    if args.max_tokens == 0 {
        bail!("invalid --max-tokens 0: expected at least 1");
    }
    Ok(SamplingParams {
        temperature: args.temperature,
        top_k: Some(args.top_k),
        top_p: Some(args.top_p),
        repeat_penalty: args.repeat_penalty,
        repeat_last_n: args.repeat_last_n,
        seed: args.seed,
        max_tokens: args.max_tokens,
    })
}
