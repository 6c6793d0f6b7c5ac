//! OCI image layout archives: `strata export REF FILE.tar` writes a version or snapshot with
//! everything it refers to as an `oci-layout` tree in a tar file, which skopeo, oras or crane
//! read as `oci-archive:`; `strata import FILE.tar` reads one back.
//!
//! An import checks the whole archive before it writes anything: entry names, every blob's
//! digest and size, and that the manifest's config, layers and subject are all inside. Only then
//! are the blobs stored (each verified again as it streams in) and the tag set, so a bad archive
//! leaves the store exactly as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use strata_store::{
    Descriptor, Digest, DigestWriter, ImageIndex, MANIFEST_MEDIA_TYPE, Manifest,
    REF_NAME_ANNOTATION, Reference, Store,
};

use crate::error::{RegistryError, Result};

/// The blobs of an archive: digest → size and, for blobs small enough to be a manifest, the
/// bytes.
type ArchiveBlobs = BTreeMap<Digest, (u64, Option<Vec<u8>>)>;

/// Contents of an archive's `oci-layout` file.
const LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// Counts of what an export wrote or an import stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchiveReport {
    /// The manifest exported or imported.
    pub digest: Option<Digest>,
    /// Blobs in the archive, manifests included.
    pub blobs: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// Writes the version or snapshot `reference` names, with every blob it refers to, to `path`.
pub fn export(store: &Store, reference: &Reference, path: &Path) -> Result<ArchiveReport> {
    let descriptor = store.resolve(reference)?;
    let mut blobs = BTreeMap::new();
    collect_blobs(store, &descriptor.digest, &mut blobs)?;

    let mut entry = descriptor.clone();
    entry
        .annotations
        .insert(REF_NAME_ANNOTATION.to_owned(), reference.to_string());
    let index = ImageIndex {
        schema_version: 2,
        media_type: strata_store::INDEX_MEDIA_TYPE.to_owned(),
        manifests: vec![entry],
        annotations: BTreeMap::new(),
    };
    let index =
        serde_json::to_vec(&index).map_err(|error| RegistryError::Invalid(error.to_string()))?;

    let partial = partial_path(path);
    let written = write_archive(store, &partial, &index, &blobs);
    if let Err(error) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(error);
    }
    std::fs::rename(&partial, path)
        .map_err(|source| io(format!("cannot rename {}", partial.display()), source))?;
    Ok(ArchiveReport {
        digest: Some(descriptor.digest),
        blobs: blobs.len(),
        bytes: blobs.values().sum(),
    })
}

/// Adds the manifest `digest`, its subject's blobs and its own to `blobs` (digest → size).
fn collect_blobs(store: &Store, digest: &Digest, blobs: &mut BTreeMap<Digest, u64>) -> Result<()> {
    let manifest = store.read_manifest(digest)?;
    blobs.insert(digest.clone(), store.blob_size(digest)?);
    if let Some(subject) = &manifest.subject {
        collect_blobs(store, &subject.digest, blobs)?;
    }
    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
        blobs.insert(blob.digest.clone(), blob.size);
    }
    Ok(())
}

fn write_archive(
    store: &Store,
    path: &Path,
    index: &[u8],
    blobs: &BTreeMap<Digest, u64>,
) -> Result<()> {
    let file = File::create(path)
        .map_err(|source| io(format!("cannot create {}", path.display()), source))?;
    let mut builder = tar::Builder::new(BufWriter::new(file));
    let context = || format!("cannot write {}", path.display());
    append_bytes(&mut builder, "oci-layout", LAYOUT.as_bytes())
        .map_err(|source| io(context(), source))?;
    append_bytes(&mut builder, "index.json", index).map_err(|source| io(context(), source))?;
    for (digest, size) in blobs {
        let mut header = tar::Header::new_ustar();
        header.set_size(*size);
        header.set_mode(0o644);
        header.set_cksum();
        let blob = File::open(store.blob_path(digest))
            .map_err(|source| io(format!("cannot read blob {digest}"), source))?;
        builder
            .append_data(&mut header, format!("blobs/sha256/{}", digest.hex()), blob)
            .map_err(|source| io(context(), source))?;
    }
    let mut writer = builder
        .into_inner()
        .map_err(|source| io(context(), source))?;
    writer.flush().map_err(|source| io(context(), source))?;
    let file = writer
        .into_inner()
        .map_err(|error| io(context(), error.into_error()))?;
    file.sync_all().map_err(|source| io(context(), source))
}

fn append_bytes(
    builder: &mut tar::Builder<BufWriter<File>>,
    name: &str,
    bytes: &[u8],
) -> std::io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, name, bytes)
}

/// Imports the archive at `path`, whose index must name exactly one manifest, and tags it
/// `name`. `accept` is called with the manifest's descriptor once the archive is checked and
/// before anything is written; its error rejects the import.
pub fn import(
    store: &Store,
    path: &Path,
    name: &Reference,
    accept: &dyn Fn(&Descriptor) -> std::result::Result<(), String>,
) -> Result<ArchiveReport> {
    let (index, blobs) = check_archive(path)?;
    let descriptor = single_manifest(&index, path)?;
    check_complete(&descriptor.digest, &blobs, path)?;
    accept(descriptor).map_err(|reason| bad(path, reason))?;

    let _writing = store.writer()?;
    let mut archive = open(path)?;
    let entries = archive
        .entries()
        .map_err(|source| io(read_context(path), source))?;
    for entry in entries {
        let mut entry = entry.map_err(|source| io(read_context(path), source))?;
        let Some(digest) = blob_name(&entry_path(&entry, path)?)? else {
            continue;
        };
        store.put_blob_from_reader(&mut entry, Some(&digest))?;
    }
    let mut tagged = Descriptor::new(
        MANIFEST_MEDIA_TYPE,
        descriptor.digest.clone(),
        descriptor.size,
    );
    tagged.artifact_type = descriptor.artifact_type.clone();
    store.set_tag(name, &tagged)?;
    Ok(ArchiveReport {
        digest: Some(descriptor.digest.clone()),
        blobs: blobs.len(),
        bytes: blobs.values().map(|(size, _)| size).sum(),
    })
}

/// Reads the whole archive once: checks every entry's name, hashes every blob, and returns the
/// index and the blobs (digest → size and, for small blobs, the bytes, so manifests can be read).
fn check_archive(path: &Path) -> Result<(ImageIndex, ArchiveBlobs)> {
    let mut archive = open(path)?;
    let mut index = None;
    let mut blobs = BTreeMap::new();
    let entries = archive
        .entries()
        .map_err(|source| io(read_context(path), source))?;
    for entry in entries {
        let mut entry = entry.map_err(|source| io(read_context(path), source))?;
        let name = entry_path(&entry, path)?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(bad(path, format!("`{name}` is not a plain file")));
        }
        match name.as_str() {
            "oci-layout" => continue,
            "index.json" => {
                let mut bytes = Vec::new();
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|source| io(read_context(path), source))?;
                let parsed: ImageIndex = serde_json::from_slice(&bytes)
                    .map_err(|error| bad(path, format!("index.json is invalid: {error}")))?;
                index = Some(parsed);
                continue;
            }
            _ => {}
        }
        let Some(digest) = blob_name(&name)? else {
            return Err(bad(path, format!("unexpected entry `{name}`")));
        };
        let keep = entry.header().size().unwrap_or(0) <= crate::MAX_MANIFEST_BYTES as u64;
        let (actual, size, bytes) =
            hash_entry(&mut entry, keep).map_err(|source| io(read_context(path), source))?;
        if actual != digest {
            return Err(bad(path, format!("blob `{name}` hashes to {actual}")));
        }
        blobs.insert(digest, (size, bytes));
    }
    let index = index.ok_or_else(|| bad(path, "it has no index.json".to_owned()))?;
    Ok((index, blobs))
}

fn hash_entry(entry: &mut dyn Read, keep: bool) -> std::io::Result<(Digest, u64, Option<Vec<u8>>)> {
    let mut writer = DigestWriter::new();
    let mut kept = keep.then(Vec::new);
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = entry.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        writer.update(&buffer[..read]);
        if let Some(kept) = &mut kept {
            kept.extend_from_slice(&buffer[..read]);
        }
    }
    let size = writer.len();
    Ok((writer.finalize(), size, kept))
}

fn single_manifest<'a>(index: &'a ImageIndex, path: &Path) -> Result<&'a Descriptor> {
    match index.manifests.as_slice() {
        [one] if one.media_type == MANIFEST_MEDIA_TYPE => Ok(one),
        [one] => Err(bad(
            path,
            format!(
                "its manifest is a `{}`; strata imports OCI image manifests",
                one.media_type
            ),
        )),
        many => Err(bad(
            path,
            format!(
                "its index lists {} manifests; strata imports archives of one",
                many.len()
            ),
        )),
    }
}

/// Checks that the manifest `digest`, its subject, config and layers are all in the archive
/// with the sizes the descriptors give.
fn check_complete(
    digest: &Digest,
    blobs: &BTreeMap<Digest, (u64, Option<Vec<u8>>)>,
    path: &Path,
) -> Result<()> {
    let mut pending = vec![digest.clone()];
    let mut seen = BTreeSet::new();
    while let Some(digest) = pending.pop() {
        if !seen.insert(digest.clone()) {
            continue;
        }
        let Some((_, Some(bytes))) = blobs.get(&digest) else {
            return Err(bad(path, format!("manifest {digest} is missing from it")));
        };
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|error| bad(path, format!("manifest {digest} is invalid: {error}")))?;
        if let Some(subject) = &manifest.subject {
            pending.push(subject.digest.clone());
        }
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            match blobs.get(&blob.digest) {
                Some((size, _)) if *size == blob.size => {}
                Some((size, _)) => {
                    return Err(bad(
                        path,
                        format!(
                            "blob {} is {size} bytes, but its descriptor says {}",
                            blob.digest, blob.size
                        ),
                    ));
                }
                None => {
                    return Err(bad(
                        path,
                        format!("blob {} is missing from it", blob.digest),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Returns the digest of a `blobs/sha256/<hex>` entry, `None` for other names, and an error for
/// a blob path that is not a valid digest.
fn blob_name(name: &str) -> Result<Option<Digest>> {
    let Some(hex) = name.strip_prefix("blobs/sha256/") else {
        return Ok(None);
    };
    Digest::parse(&format!("sha256:{hex}"))
        .map(Some)
        .map_err(|error| RegistryError::Invalid(format!("archive entry `{name}`: {error}")))
}

/// Returns the entry's name, rejecting absolute paths and `..`.
fn entry_path(entry: &tar::Entry<'_, File>, path: &Path) -> Result<String> {
    let raw = entry.path_bytes();
    let name = String::from_utf8_lossy(&raw)
        .trim_start_matches("./")
        .to_owned();
    if name.starts_with('/') || name.split('/').any(|part| part == "..") {
        return Err(bad(path, format!("entry `{name}` is an unsafe path")));
    }
    Ok(name.trim_end_matches('/').to_owned())
}

fn open(path: &Path) -> Result<tar::Archive<File>> {
    let file =
        File::open(path).map_err(|source| io(format!("cannot open {}", path.display()), source))?;
    Ok(tar::Archive::new(file))
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

fn read_context(path: &Path) -> String {
    format!("cannot read {}", path.display())
}

fn bad(path: &Path, reason: String) -> RegistryError {
    RegistryError::Invalid(format!(
        "{} is not an archive strata can import: {reason}; nothing was imported",
        path.display()
    ))
}

fn io(context: String, source: std::io::Error) -> RegistryError {
    RegistryError::Io { context, source }
}
