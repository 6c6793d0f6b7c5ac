//! `strata run`: load a model from the store and answer one prompt or start a chat.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use strata_model::load::LoadedModel;
use strata_runtime::engine::{Chat, Engine};
use strata_runtime::sampling::SamplingParams;
use strata_store::Reference;

use crate::cli::{RunArgs, SamplingArgs};
use crate::commands::pull;
use crate::{home, interrupt, repl};

/// Runs `strata run MODEL [PROMPT]`.
pub(crate) fn run(home: &Path, args: &RunArgs) -> anyhow::Result<()> {
    let engine = load_engine(home, &args.model)?;
    let params = sampling_params(&args.sampling);
    let mut chat = engine.new_chat(args.system.clone());
    interrupt::install()?;

    if args.prompt.is_empty() {
        return repl::chat_loop(&engine, &mut chat, &params);
    }
    let prompt = args.prompt.join(" ");
    answer(&engine, &mut chat, &prompt, &params)
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
) -> anyhow::Result<()> {
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
    Ok(())
}

/// Converts the command-line sampling flags into runtime parameters.
pub(crate) fn sampling_params(args: &SamplingArgs) -> SamplingParams {
    SamplingParams {
        temperature: args.temperature,
        top_k: Some(args.top_k),
        top_p: Some(args.top_p),
        repeat_penalty: args.repeat_penalty,
        repeat_last_n: args.repeat_last_n,
        seed: args.seed,
        max_tokens: args.max_tokens,
    }
}
