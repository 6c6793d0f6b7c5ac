//! The strata store: an embedded, content-addressed blob store laid out as an OCI image layout.
//!
//! This crate owns everything under `$STRATA_HOME` that is not model-specific: digests and
//! references, crash-safe blob writes, manifests, the `index.json` tag table, the writer locks,
//! `fsck` and `gc`. It knows nothing about tensors or models beyond media types and annotations.
