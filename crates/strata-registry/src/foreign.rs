//! Models other tools package as OCI artifacts around one GGUF file: Docker Model Runner
//! (a layer of type `application/vnd.docker.ai.gguf.v3`, or the older
//! `application/vnd.docker.ai.model.file.v1+gguf`) and ModelPack (a raw weight layer,
//! `application/vnd.cncf.model.weight.v1.raw`, whose file name ends in `.gguf`).
//!
//! Pulling one downloads the GGUF layer, verified like any blob, and hands the file to the
//! caller, which imports it as a model; strata's own artifacts never match.

use strata_store::{Descriptor, Manifest, PartialBlob, Store};

use crate::client::Client;
use crate::error::{RegistryError, Result};
use crate::pull::download;
use crate::remote::RemoteRef;

/// Layer types Docker Model Runner uses for a GGUF file.
pub const DOCKER_GGUF_TYPES: [&str; 2] = [
    "application/vnd.docker.ai.gguf.v3",
    "application/vnd.docker.ai.model.file.v1+gguf",
];

/// ModelPack's layer type for a weight file stored as it is.
pub const MODELPACK_RAW_WEIGHT: &str = "application/vnd.cncf.model.weight.v1.raw";

/// Manifest types a foreign model may come in.
const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Annotations that name a layer's file.
const FILE_ANNOTATIONS: [&str; 2] = ["org.cncf.model.filepath", "org.opencontainers.image.title"];

/// Fetches the manifest `remote` names and returns its GGUF layer when another tool packaged
/// it, or `None` for anything else (strata's own artifacts included).
pub fn find_gguf(client: &Client, remote: &RemoteRef) -> Result<Option<Descriptor>> {
    let (bytes, media_type) = client.get_manifest(&remote.repository, remote.reference())?;
    let media_type = media_type.split(';').next().unwrap_or_default().trim();
    if !MANIFEST_TYPES.contains(&media_type) {
        return Ok(None);
    }
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|error| {
        RegistryError::Invalid(format!("the manifest of {remote} is invalid: {error}"))
    })?;
    gguf_layer(&manifest, remote)
}

/// Returns the one GGUF layer of a foreign model manifest; a model split into several is an error.
fn gguf_layer(manifest: &Manifest, remote: &RemoteRef) -> Result<Option<Descriptor>> {
    let ggufs: Vec<&Descriptor> = manifest.layers.iter().filter(|l| is_gguf(l)).collect();
    match ggufs.as_slice() {
        [] => Ok(None),
        [layer] => Ok(Some((*layer).clone())),
        layers => Err(RegistryError::Invalid(format!(
            "{remote} holds a GGUF model split into {} files; strata imports single-file GGUF models",
            layers.len()
        ))),
    }
}

fn is_gguf(layer: &Descriptor) -> bool {
    if DOCKER_GGUF_TYPES.contains(&layer.media_type.as_str()) {
        return true;
    }
    layer.media_type == MODELPACK_RAW_WEIGHT
        && FILE_ANNOTATIONS.iter().any(|key| {
            layer
                .annotations
                .get(*key)
                .is_some_and(|name| name.to_ascii_lowercase().ends_with(".gguf"))
        })
}

/// Downloads `layer` of `remote` into the store's `tmp/`, resuming an earlier partial download.
/// Returns the verified file, which the caller imports and then discards.
pub fn download_gguf(
    store: &Store,
    client: &Client,
    remote: &RemoteRef,
    layer: &Descriptor,
) -> Result<PartialBlob> {
    let (mut partial, fetched) = download(store, client, &remote.repository, layer)?;
    partial.verify()?;
    tracing::info!(
        digest = %layer.digest,
        bytes = fetched.bytes,
        resumed = fetched.resumed,
        "downloaded GGUF layer"
    );
    Ok(partial)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_store::Digest;

    fn layer(media_type: &str, title: Option<&str>) -> Descriptor {
        let mut layer = Descriptor::new(media_type, Digest::of(media_type.as_bytes()), 4);
        if let Some(title) = title {
            layer
                .annotations
                .insert("org.cncf.model.filepath".to_owned(), title.to_owned());
        }
        layer
    }

    fn manifest(layers: Vec<Descriptor>) -> Manifest {
        let config = Descriptor::new("application/json", Digest::of(b"{}"), 2);
        Manifest::new(config, layers)
    }

    fn remote() -> RemoteRef {
        RemoteRef::parse("oci://127.0.0.1:5000/models/m:1").unwrap()
    }

    #[test]
    fn docker_and_modelpack_layers_are_found() {
        let docker = manifest(vec![
            layer("application/vnd.docker.ai.license", None),
            layer(DOCKER_GGUF_TYPES[0], None),
        ]);
        let found = gguf_layer(&docker, &remote()).unwrap().unwrap();
        assert_eq!(found.media_type, DOCKER_GGUF_TYPES[0]);

        let modelpack = manifest(vec![layer(MODELPACK_RAW_WEIGHT, Some("model.Q4_1.GGUF"))]);
        assert!(gguf_layer(&modelpack, &remote()).unwrap().is_some());
    }

    #[test]
    fn other_weights_are_not_gguf() {
        let safetensors = manifest(vec![layer(MODELPACK_RAW_WEIGHT, Some("model.safetensors"))]);
        assert!(gguf_layer(&safetensors, &remote()).unwrap().is_none());
    }

    #[test]
    fn a_split_model_is_refused_by_count() {
        let split = manifest(vec![
            layer(DOCKER_GGUF_TYPES[0], None),
            layer(DOCKER_GGUF_TYPES[1], None),
        ]);
        let error = gguf_layer(&split, &remote()).unwrap_err().to_string();
        assert!(error.contains("split into 2 files"), "{error}");
    }
}
