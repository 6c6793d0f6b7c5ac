//! `strata collection`: create embedding collections, add files, search them.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Map, Value};
use strata_collections::{
    CollectionInfo, CollectionSpec, Collections, Filter, Metric, SearchOptions,
};
use strata_store::Store;

use crate::cli::{
    CollectionAddArgs, CollectionCommand, CollectionCreateArgs, CollectionSearchArgs,
};
use crate::embedding::{self, EmbedderKind, Query};
use crate::home;

/// Runs one `strata collection` subcommand.
pub(crate) fn run(home: &Path, command: &CollectionCommand) -> anyhow::Result<()> {
    let store = home::open_store(home)?;
    let collections = Collections::open(&store);
    match command {
        CollectionCommand::Create(args) => create(&store, &collections, args),
        CollectionCommand::Add(args) => add(&store, &collections, args),
        CollectionCommand::Search(args) => search(&store, &collections, args),
        CollectionCommand::List => list(&collections),
        CollectionCommand::Show(args) => show(&collections, &args.name),
        CollectionCommand::Rm(args) => remove(&collections, &args.name),
    }
}

fn create(
    store: &Store,
    collections: &Collections,
    args: &CollectionCreateArgs,
) -> anyhow::Result<()> {
    let kind = EmbedderKind::parse(&args.embedder)?;
    let metric: Metric = args.metric.parse()?;
    let dim = match (kind, args.dim) {
        (EmbedderKind::None, Some(dim)) => dim,
        (EmbedderKind::None, None) => {
            bail!("--embedder none needs --dim N, the number of values in each vector")
        }
        (kind, given) => {
            let dim = embedding::dim(store, kind)?;
            if let Some(given) = given.filter(|given| *given != dim) {
                bail!(
                    "--dim {given} does not match the {kind} embedder, whose vectors have {dim} values; leave --dim out"
                );
            }
            dim
        }
    };
    let mut spec = CollectionSpec::new(dim, metric);
    if kind != EmbedderKind::None {
        spec = spec.with_embedder(kind.to_string());
    }
    if kind == EmbedderKind::Video {
        create_sound_collection(store, collections, &args.name, metric)?;
    }
    let info = collections.create(&args.name, spec)?;
    eprintln!(
        "created collection `{}`: {} values per vector, {}, embedder {}",
        info.name,
        info.dim,
        info.metric,
        info.embedder.as_deref().unwrap_or("none")
    );
    Ok(())
}

/// Creates the collection that contains the sound tracks of video collection `name`.
fn create_sound_collection(
    store: &Store,
    collections: &Collections,
    name: &str,
    metric: Metric,
) -> anyhow::Result<()> {
    let dim = embedding::dim(store, EmbedderKind::Audio)?;
    let spec = CollectionSpec::new(dim, metric).with_embedder(EmbedderKind::Audio.to_string());
    collections.create(&embedding::sound_collection(name), spec)?;
    Ok(())
}

/// Removes collection `name`, and the sound collection of a video collection.
fn remove(collections: &Collections, name: &str) -> anyhow::Result<()> {
    let info = collections.info(name)?;
    collections.remove(name)?;
    if EmbedderKind::of(&info)? == EmbedderKind::Video {
        collections.remove(&embedding::sound_collection(name))?;
    }
    eprintln!("removed collection `{name}`; `strata gc` frees its blobs");
    Ok(())
}

fn add(store: &Store, collections: &Collections, args: &CollectionAddArgs) -> anyhow::Result<()> {
    let info = collections.info(&args.name)?;
    let kind = EmbedderKind::of(&info)?;
    let extra = parse_payload(&args.payload)?;
    for file in &args.files {
        if !file.is_file() {
            bail!("{}: not a readable file; nothing was added", file.display());
        }
    }

    let bar = crate::progress::steps_bar("embedding", args.files.len() as u64);
    let mut points = Vec::new();
    let mut sound = Vec::new();
    for file in &args.files {
        bar.set_message(file.display().to_string());
        let mut found = embedding::points_of_file(store, kind, file)
            .with_context(|| format!("{}: nothing was added", file.display()))?;
        for point in found.points.iter_mut().chain(found.sound.iter_mut()) {
            point.payload.extend(extra.clone());
        }
        points.extend(found.points);
        sound.extend(found.sound);
        bar.inc(1);
    }
    bar.finish_and_clear();

    // NOTE: a video collection's frames and sound are two collections, written one after the
    // other, so a write error between them leaves the sound added without the frames.
    if !sound.is_empty() {
        let sound_name = embedding::sound_collection(&args.name);
        let count = sound.len();
        collections.upsert(&sound_name, sound)?;
        eprintln!("added {count} points of sound to `{sound_name}`");
    }
    let total = points.len();
    let digest = collections.upsert(&args.name, points)?;
    let after = collections.info(&args.name)?;
    eprintln!(
        "added {total} points from {} files to `{}`: {} points in all, version {}",
        args.files.len(),
        args.name,
        after.points,
        digest.short()
    );
    Ok(())
}

fn search(
    store: &Store,
    collections: &Collections,
    args: &CollectionSearchArgs,
) -> anyhow::Result<()> {
    let info = collections.info(&args.name)?;
    let query = match (&args.query, &args.image, &args.audio, &args.vector) {
        (Some(text), None, None, None) => Query::Text(text.clone()),
        (None, Some(image), None, None) => Query::Image(image.clone()),
        (None, None, Some(audio), None) => Query::Audio(audio.clone()),
        (None, None, None, Some(vector)) => Query::Vector(parse_vector(vector)?),
        _ => bail!("give one query: TEXT, --image FILE, --audio FILE or --vector '[…]'"),
    };
    let vector = embedding::embed_query(store, &info, &query)?;
    let target = embedding::search_target(&info, &query)?;
    let filter = match &args.filter {
        Some(text) => Some(text.parse::<Filter>()?),
        None => None,
    };
    let options = SearchOptions {
        top_k: args.top,
        filter,
        exact: args.exact,
        ef: None,
    };
    let results = collections.search(&target, &vector, &options)?;
    for hit in &results.hits {
        println!(
            "{:.4}  {}  {}",
            hit.score,
            hit.id,
            payload_line(&hit.payload)
        );
    }
    eprintln!(
        "{} hits of {} candidates ({:?})",
        results.hits.len(),
        results.candidates,
        results.method
    );
    Ok(())
}

fn list(collections: &Collections) -> anyhow::Result<()> {
    println!(
        "{:<24} {:>8} {:>6} {:<7} {:<9} VERSION",
        "NAME", "POINTS", "DIM", "METRIC", "EMBEDDER"
    );
    for info in collections.list()? {
        println!(
            "{:<24} {:>8} {:>6} {:<7} {:<9} {}",
            info.name,
            info.points,
            info.dim,
            info.metric.to_string(),
            info.embedder.as_deref().unwrap_or("none"),
            info.digest.short()
        );
    }
    Ok(())
}

fn show(collections: &Collections, name: &str) -> anyhow::Result<()> {
    let info: CollectionInfo = collections.info(name)?;
    println!("name      {}", info.name);
    println!("version   {}", info.digest);
    println!("points    {} in {} segments", info.points, info.segments);
    println!("vectors   {} values, {}", info.dim, info.metric);
    println!(
        "embedder  {}",
        info.embedder.as_deref().unwrap_or("none (vectors given)")
    );
    println!("versions");
    for version in collections.log(name)? {
        println!(
            "  {}  {}  {} points",
            version.digest.short(),
            version.created.format("%Y-%m-%d %H:%M:%S"),
            version.points
        );
    }
    Ok(())
}

/// Parses `KEY=VALUE` pairs; a value that reads as a JSON number or boolean keeps that type.
fn parse_payload(pairs: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut payload = Map::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("--payload `{pair}` is not KEY=VALUE");
        };
        if key.is_empty() {
            bail!("--payload `{pair}` has an empty key");
        }
        let typed = match serde_json::from_str::<Value>(value) {
            Ok(number @ Value::Number(_)) => number,
            Ok(boolean @ Value::Bool(_)) => boolean,
            _ => Value::String(value.to_owned()),
        };
        payload.insert(key.to_owned(), typed);
    }
    Ok(payload)
}

/// Parses `--vector '[…]'`.
fn parse_vector(text: &str) -> anyhow::Result<Vec<f32>> {
    serde_json::from_str(text)
        .with_context(|| format!("--vector `{text}` is not a JSON array of numbers"))
}

/// Formats a payload on one line, long strings shortened.
fn payload_line(payload: &Map<String, Value>) -> String {
    let mut parts = Vec::new();
    for (key, value) in payload {
        let text = match value {
            Value::String(text) => shorten(text, 80),
            other => other.to_string(),
        };
        parts.push(format!("{key}={text}"));
    }
    parts.join("  ")
}

fn shorten(text: &str, chars: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &flat[..at]),
        None => flat,
    }
}
