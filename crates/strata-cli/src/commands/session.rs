//! `strata session`: list, show, remove and rebase saved sessions.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use strata_sessions::{SaveOptions, SessionName, Snapshot};
use strata_store::{Reference, Store};

use crate::cli::{SessionCommand, SessionRebaseArgs};
use crate::commands::import::human_bytes;
use crate::home;
use crate::live::load_engine;

/// Runs one `strata session` subcommand.
pub(crate) fn run(home: &Path, command: &SessionCommand) -> anyhow::Result<()> {
    let store = home::open_store(home)?;
    match command {
        SessionCommand::List => print_list(&store),
        SessionCommand::Show(args) => show(&store, &SessionName::parse(&args.name)?),
        SessionCommand::Rm(args) => {
            let names = args.names.iter().map(|name| SessionName::parse(name));
            for name in names.collect::<Result<Vec<_>, _>>()? {
                strata_sessions::remove(&store, &name)?;
                eprintln!(
                    "removed session `{name}`; `strata gc` frees blocks no other session uses"
                );
            }
            Ok(())
        }
        SessionCommand::Rebase(args) => rebase(home, &store, args),
    }
}

/// Prints one line per saved session.
pub(crate) fn print_list(store: &Store) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<24} {:<32} {:>7} {:>6} {:>10}  SAVED",
        "NAME", "MODEL", "TOKENS", "BLOCKS", "CACHE"
    )?;
    for (name, snapshot) in strata_sessions::list(store)? {
        match snapshot {
            Ok(snapshot) => writeln!(
                out,
                "{:<24} {:<32} {:>7} {:>6} {:>10}  {}",
                name.as_str(),
                model_label(&snapshot),
                snapshot.config.cached_tokens,
                snapshot.blocks.len(),
                human_bytes(snapshot.cache_bytes()),
                snapshot.config.created.format("%Y-%m-%d %H:%M"),
            )?,
            Err(error) => eprintln!("strata: session `{name}` cannot be read: {error}"),
        }
    }
    Ok(())
}

fn model_label(snapshot: &Snapshot) -> String {
    let model = &snapshot.config.model;
    format!("{} ({})", model.reference, model.manifest.short())
}

/// Prints everything a snapshot records.
fn show(store: &Store, name: &SessionName) -> anyhow::Result<()> {
    let snapshot = Snapshot::open(store, name)?;
    let config = &snapshot.config;
    let kv = &config.kv;
    let sampling = &config.sampling;
    let mut out = std::io::stdout().lock();

    writeln!(out, "session   {name}")?;
    writeln!(out, "snapshot  {}", snapshot.digest())?;
    writeln!(
        out,
        "model     {} ({})",
        config.model.reference, config.model.manifest
    )?;
    writeln!(out, "saved     {}", config.created.to_rfc3339())?;
    let parent = config
        .parent
        .as_ref()
        .map_or("-".to_string(), ToString::to_string);
    writeln!(out, "parent    {parent}")?;
    writeln!(out, "messages  {}", config.messages.len())?;
    writeln!(out, "tokens    {}", config.cached_tokens)?;

    writeln!(
        out,
        "cache     {} in {} blocks of up to {} tokens ({} layers, {} kv heads of {})",
        kv.dtype,
        snapshot.blocks.len(),
        kv.block_tokens,
        kv.layers,
        kv.kv_heads,
        kv.head_dim
    )?;
    writeln!(
        out,
        "sampling  temperature {}, top-k {:?}, top-p {:?}, repeat penalty {} over {}, seed {:?}, \
         max tokens {}",
        sampling.temperature,
        sampling.top_k,
        sampling.top_p,
        sampling.repeat_penalty,
        sampling.repeat_last_n,
        sampling.seed,
        sampling.max_tokens
    )?;

    writeln!(out, "blocks:")?;
    for block in &snapshot.blocks {
        let range = format!("{}..{}", block.start, block.start + block.tokens);
        let size = human_bytes(block.descriptor.size);
        writeln!(out, "  {range:<12} {size:>10}  {}", block.descriptor.digest)?;
    }
    Ok(())
}

/// Recomputes a session on another model and saves it, with the old snapshot as its parent.
fn rebase(home: &Path, store: &Store, args: &SessionRebaseArgs) -> anyhow::Result<()> {
    let name = SessionName::parse(&args.name)?;
    let target = match &args.save_as {
        Some(new) => SessionName::parse(new)?,
        None => name.clone(),
    };
    let snapshot = Snapshot::open(store, &name)?;
    let reference = Reference::parse(&args.onto)?;
    let mut engine = load_engine(home, store, &reference)?;
    let dtype = snapshot.config.kv.block_dtype()?;
    engine.model_mut().set_kv_precision(dtype);

    let restored = strata_sessions::restore(store, &snapshot, &engine)
        .with_context(|| format!("cannot move session `{name}` onto `{reference}`"))?;
    match &restored.recomputed {
        Some(recomputed) => eprintln!("note: {recomputed}"),
        None => eprintln!("note: `{name}` already runs on `{reference}`; saving it unchanged"),
    }
    let options = SaveOptions {
        dtype,
        parent: Some(&snapshot),
        ..SaveOptions::default()
    };
    let sampling = &snapshot.config.sampling;
    let saved = strata_sessions::save(store, &target, &engine, &restored.chat, sampling, &options)?;
    eprintln!(
        "saved session `{target}` on {} ({} tokens, parent {})",
        engine.manifest_digest().short(),
        saved.snapshot.config.cached_tokens,
        snapshot.digest().short()
    );
    Ok(())
}
