//! The strata store: an embedded, content-addressed blob store laid out as an OCI image layout.
//!
//! This crate owns everything under `$STRATA_HOME` that is not model-specific: digests and
//! references, crash-safe blob writes, manifests, the `index.json` tag table, the writer locks,
//! `fsck` and `gc`. It knows nothing about tensors or models beyond media types and annotations.
//! `docs/format.md` describes the files, the write protocol and what a crash leaves behind.

mod blobs;
mod digest;
mod error;
mod fsck;
mod fsutil;
mod gc;
mod lock;
mod manifests;
mod mmap;
mod oci;
mod partial;
mod reference;
mod store;
mod tags;
mod walk;

pub use digest::{ALGORITHM, Digest, DigestWriter, HEX_LEN, SHORT_LEN};
pub use error::StoreError;
pub use fsck::{FsckProblem, FsckReport};
pub use gc::GcReport;
pub use lock::{GC_LOCK, INDEX_LOCK, NamedLock, WriteGuard};
pub use oci::{
    Descriptor, INDEX_MEDIA_TYPE, ImageIndex, MANIFEST_MEDIA_TYPE, Manifest, REF_NAME_ANNOTATION,
    SCHEMA_VERSION,
};
pub use partial::PartialBlob;
pub use reference::{DEFAULT_TAG, MAX_NAME_LEN, MAX_TAG_LEN, RefTarget, Reference};
pub use store::{BLOBS_DIR, INDEX_FILE, LAYOUT_FILE, LAYOUT_VERSION, LOCKS_DIR, Store, TMP_DIR};
pub use tags::TagEntry;
