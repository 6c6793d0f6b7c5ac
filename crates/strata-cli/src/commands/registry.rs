//! `strata push REF oci://…` and `strata pull oci://…`.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use strata_registry::RemoteRef;
use strata_registry::client::Client;
use strata_registry::remote::RemoteTarget;
use strata_store::Reference;

use crate::cli::{ExportArgs, PullArgs, PushArgs};
use crate::commands::import::human_bytes;
use crate::home;

/// Runs `strata push SOURCE DESTINATION`.
pub(crate) fn push(home: &Path, args: &PushArgs) -> anyhow::Result<()> {
    let source = Reference::parse(&args.source)?;
    let remote = RemoteRef::parse(&args.destination)?;
    let store = home::open_store(home)?;
    store.resolve(&source).with_context(|| {
        format!("cannot find `{source}`; see `strata list` or `strata session list`")
    })?;
    let client = Client::new(&remote.registry, args.plain_http)?;

    let started = Instant::now();
    if let Some(from) = &args.mount_from {
        let probe = format!("oci://{}/{from}", remote.registry);
        RemoteRef::parse(&probe)
            .with_context(|| format!("--mount-from `{from}` is not a repository name"))?;
    }
    let report = strata_registry::push(
        &store,
        &source,
        &remote,
        &client,
        args.mount_from.as_deref(),
    )
    .with_context(|| format!("cannot push `{source}` to {remote}"))?;
    eprintln!(
        "pushed {source} to {remote} in {:.1} s: {} blobs uploaded ({}), {} mounted, {} already there ({}), {} manifests",
        started.elapsed().as_secs_f64(),
        report.blobs_uploaded,
        human_bytes(report.bytes_uploaded),
        report.blobs_mounted,
        report.blobs_skipped,
        human_bytes(report.bytes_skipped),
        report.manifests,
    );
    if report.uploads_resumed + report.uploads_restarted > 0 {
        eprintln!(
            "{} uploads resumed where the registry had them, {} started over",
            report.uploads_resumed, report.uploads_restarted
        );
    }
    if let Some(digest) = report.digest {
        println!("{digest}");
    }
    Ok(())
}

/// Runs `strata pull oci://…`.
pub(crate) fn pull(home: &Path, args: &PullArgs) -> anyhow::Result<()> {
    let remote = RemoteRef::parse(&args.model)?;
    let local = match &args.name {
        Some(name) => Reference::parse(name)?,
        None => default_name(&remote)?,
    };
    if local.tag().is_none() {
        anyhow::bail!("--name `{local}` is a digest; give NAME or NAME:TAG");
    }
    let store = home::open_store(home)?;
    let client = Client::new(&remote.registry, args.plain_http)?;

    let started = Instant::now();
    let gguf = strata_registry::foreign::find_gguf(&client, &remote)
        .with_context(|| format!("cannot pull {remote}; the store's tags are unchanged"))?;
    if let Some(layer) = gguf {
        return pull_gguf(&store, &client, &remote, &local, &layer);
    }
    let report = strata_registry::pull(&store, &remote, &local, &client, &known_types)
        .with_context(|| format!("cannot pull {remote}; the store's tags are unchanged"))?;
    eprintln!(
        "pulled {remote} as {local} in {:.1} s: {} blobs fetched ({}), {} already stored, {} manifests",
        started.elapsed().as_secs_f64(),
        report.blobs_fetched,
        human_bytes(report.bytes_fetched),
        report.blobs_skipped,
        report.manifests,
    );
    if report.downloads_resumed > 0 {
        eprintln!(
            "{} downloads resumed from bytes already stored",
            report.downloads_resumed
        );
    }
    Ok(())
}

/// Pulls the GGUF layer of a model another tool packaged and imports it as `local`.
fn pull_gguf(
    store: &strata_store::Store,
    client: &Client,
    remote: &RemoteRef,
    local: &Reference,
    layer: &strata_store::Descriptor,
) -> anyhow::Result<()> {
    let local = crate::commands::import::parse_tag_reference(&local.to_string())?;
    eprintln!(
        "{remote} is a GGUF model packaged as `{}`; downloading {}",
        layer.media_type,
        human_bytes(layer.size)
    );
    let file = strata_registry::foreign::download_gguf(store, client, remote, layer)
        .with_context(|| format!("cannot pull {remote}; the store's tags are unchanged"))?;
    let bar = crate::progress::bytes_bar("importing", 0);
    let mut progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let outcome = strata_model::import::import_gguf(store, file.path(), &local, &mut progress);
    bar.finish_and_clear();
    let outcome = outcome.with_context(|| format!("cannot import the GGUF layer of {remote}"))?;
    file.discard()?;
    eprintln!(
        "pulled {remote} as {local}: {} tensors, {} new {}",
        outcome.tensors,
        human_bytes(outcome.bytes_written),
        outcome.descriptor.digest.short()
    );
    Ok(())
}

/// Accepts the manifests strata reads: models (learned versions included), snapshots and
/// collections, each only with the layer types it uses.
fn known_types(manifest: &strata_store::Manifest) -> Result<(), String> {
    use strata_collections::media as collection;
    use strata_model::media as model;
    use strata_sessions::media as session;

    let config = manifest.config.media_type.as_str();
    let layers: &[&str] = match config {
        model::MODEL_CONFIG_MEDIA_TYPE => &[
            model::WEIGHT_MEDIA_TYPE,
            model::TOKENIZER_MEDIA_TYPE,
            model::CHAT_TEMPLATE_MEDIA_TYPE,
        ],
        session::SNAPSHOT_CONFIG_MEDIA_TYPE => &[session::KV_BLOCK_MEDIA_TYPE],
        collection::COLLECTION_CONFIG_MEDIA_TYPE => &[
            collection::VECTORS_MEDIA_TYPE,
            collection::PAYLOADS_MEDIA_TYPE,
            collection::INDEX_MEDIA_TYPE,
        ],
        other => {
            return Err(format!(
                "its config type `{other}` is not a strata model, snapshot or collection"
            ));
        }
    };
    match manifest
        .layers
        .iter()
        .find(|layer| !layers.contains(&layer.media_type.as_str()))
    {
        Some(layer) => Err(format!(
            "layer {} has the type `{}`, which a `{config}` artifact does not use",
            layer.digest, layer.media_type
        )),
        None => Ok(()),
    }
}

/// `NAME:TAG` from the repository's last component and the remote tag (`latest` for a
/// digest).
fn default_name(remote: &RemoteRef) -> anyhow::Result<Reference> {
    let name = remote
        .repository
        .rsplit('/')
        .next()
        .unwrap_or(&remote.repository);
    let tag = match &remote.target {
        RemoteTarget::Tag(tag) => tag.as_str(),
        RemoteTarget::Digest(_) => "latest",
    };
    Reference::tagged(name, tag).with_context(|| {
        format!("`{name}:{tag}` is not a valid local name; give one with --name NAME[:TAG]")
    })
}

/// Runs `strata export SOURCE FILE.tar`.
pub(crate) fn export(home: &Path, args: &ExportArgs) -> anyhow::Result<()> {
    let source = Reference::parse(&args.source)?;
    let store = home::open_store(home)?;
    store.resolve(&source).with_context(|| {
        format!("cannot find `{source}`; see `strata list` or `strata session list`")
    })?;
    let report = strata_registry::archive::export(&store, &source, &args.file)
        .with_context(|| format!("cannot export `{source}` to {}", args.file.display()))?;
    eprintln!(
        "exported {source} to {}: {} blobs ({})",
        args.file.display(),
        report.blobs,
        human_bytes(report.bytes)
    );
    Ok(())
}

/// Runs `strata import FILE.tar --name NAME[:TAG]`: a snapshot must be named `session/NAME`,
/// and only a snapshot may be.
pub(crate) fn import_archive(home: &Path, path: &Path, name: &str) -> anyhow::Result<()> {
    let name = Reference::parse(name)?;
    if name.tag().is_none() {
        anyhow::bail!("`{name}` is a digest reference; give a name and tag such as `mymodel:v1`");
    }
    let wants_session = name.name.starts_with(strata_sessions::TAG_PREFIX);
    let accept = |descriptor: &strata_store::Descriptor| {
        let is_snapshot = descriptor.artifact_type.as_deref()
            == Some(strata_sessions::media::SNAPSHOT_ARTIFACT_TYPE);
        match (is_snapshot, wants_session) {
            (true, false) => Err(format!(
                "it holds a saved session; import it as `--name session/NAME`, not `{name}`"
            )),
            (false, true) => Err(format!(
                "it holds no saved session, so it cannot be named `{name}`"
            )),
            _ => Ok(()),
        }
    };
    let store = home::open_store(home)?;
    let report = strata_registry::archive::import(&store, path, &name, &accept)
        .with_context(|| format!("{}: import failed", path.display()))?;
    eprintln!(
        "imported {} as {name}: {} blobs ({})",
        path.display(),
        report.blobs,
        human_bytes(report.bytes)
    );
    Ok(())
}
