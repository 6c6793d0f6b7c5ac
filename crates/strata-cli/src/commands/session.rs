//! `strata session`: list, show, remove and rebase saved sessions.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use strata_runtime::SamplingParams;
use strata_sessions::{Replace, SaveOptions, SessionName, Snapshot, SnapshotRef};
use strata_store::{Reference, Store};

use crate::cli::{SessionCommand, SessionRebaseArgs};
use crate::commands::fsck::plural;
use crate::commands::import::human_bytes;
use crate::home;
use crate::live::load_engine;

/// Runs one `strata session` subcommand.
pub(crate) fn run(home: &Path, command: &SessionCommand) -> anyhow::Result<()> {
    let store = home::open_store(home)?;
    match command {
        SessionCommand::List => print_list(&store),
        SessionCommand::Show(args) => show(&store, &SnapshotRef::parse(&args.name)?),
        SessionCommand::Rm(args) => remove(&store, &args.names),
        SessionCommand::Rebase(args) => rebase(home, &store, args),
    }
}

/// Removes every name it can and fails at the end if any could not be removed.
fn remove(store: &Store, names: &[String]) -> anyhow::Result<()> {
    let names = names.iter().map(|name| SessionName::parse(name));
    let names = names.collect::<Result<Vec<_>, _>>()?;
    let mut failed = 0;
    for name in names {
        match strata_sessions::remove(store, &name) {
            Ok(_) => eprintln!("removed session `{name}`; `strata gc` frees blocks no other uses"),
            Err(error) => {
                eprintln!("strata: error: {error}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of the sessions could not be removed");
    }
    Ok(())
}

/// Prints one line per saved session.
pub(crate) fn print_list(store: &Store) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<24} {:<32} {:>7} {:>6} {:>10}  SAVED",
        "NAME", "MODEL", "TOKENS", "BLOCKS", "CACHE"
    )?;
    let mut sessions = strata_sessions::list(store)?;
    sessions.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, snapshot) in sessions {
        match snapshot {
            Ok(snapshot) => writeln!(
                out,
                "{:<24} {:<32} {:>7} {:>6} {:>10}  {}",
                name.as_str(),
                model_label(&snapshot),
                snapshot.config.cached_tokens,
                snapshot.blocks.len(),
                human_bytes(snapshot.cache_bytes()),
                snapshot.config.created.format("%Y-%m-%d %H:%M UTC"),
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
fn show(store: &Store, name: &SnapshotRef) -> anyhow::Result<()> {
    let snapshot = Snapshot::open_ref(store, name)?;
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
        "cache     {} in {} of up to {} tokens ({} layers, {} kv heads of {})",
        kv.dtype,
        plural(snapshot.blocks.len(), "block"),
        kv.block_tokens,
        kv.layers,
        kv.kv_heads,
        kv.head_dim
    )?;
    writeln!(out, "sampling  {}", describe_sampling(sampling))?;

    writeln!(out, "blocks:")?;
    for block in &snapshot.blocks {
        let range = format!("{}..{}", block.start, block.start + block.tokens);
        let size = human_bytes(block.descriptor.size);
        writeln!(out, "  {range:<12} {size:>10}  {}", block.descriptor.digest)?;
    }

    writeln!(out, "conversation:")?;
    if let Some(system) = &config.system {
        writeln!(out, "  [system] {system}")?;
    }
    for message in &config.messages {
        writeln!(out, "  [{}] {}", message.role, message.content)?;
    }
    Ok(())
}

/// Writes sampling settings the way the `run` flags name them.
fn describe_sampling(sampling: &SamplingParams) -> String {
    let optional = |value: Option<String>| value.unwrap_or_else(|| "off".to_string());
    format!(
        "temperature {}, top-k {}, top-p {}, repeat penalty {} over {} tokens, seed {}, \
         max tokens {}",
        sampling.temperature,
        optional(sampling.top_k.map(|k| k.to_string())),
        optional(sampling.top_p.map(|p| p.to_string())),
        sampling.repeat_penalty,
        sampling.repeat_last_n,
        optional(sampling.seed.map(|seed| seed.to_string())),
        sampling.max_tokens
    )
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

    let restored = strata_sessions::recompute(&snapshot, &engine)
        .with_context(|| format!("cannot move session `{name}` onto `{reference}`"))?;
    if let Some(recomputed) = &restored.recomputed {
        eprintln!("note: {recomputed}");
    }
    // Rebasing in place must not overwrite a state another process saved meanwhile, and a new
    // name must not overwrite another session.
    let replace = match &args.save_as {
        Some(_) => Replace::IfCurrent(None),
        None => Replace::IfCurrent(Some(snapshot.digest().clone())),
    };
    let options = SaveOptions {
        dtype,
        parent: Some(&snapshot),
        replace,
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
