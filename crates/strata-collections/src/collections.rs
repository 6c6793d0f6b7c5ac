//! The [`Collections`] handle: every public operation, each a short sequence of the steps that
//! the other modules provide.
//!
//! A write stores the changed blobs, then the manifest, then moves the tag with a
//! compare-and-swap, then commits the payload database. A crash or error before the tag moves
//! leaves only unreferenced blobs, which `gc` removes. A crash after it leaves the database
//! reflecting the previous manifest, and the next operation rebuilds it. Every operation on a
//! collection holds the store lock `collection.NAME`, so operations on one collection run one
//! at a time across threads and processes, which also keeps redb's one-process rule.
//!
//! Searches are the exception: a handle keeps the last version it searched loaded in memory
//! (vectors, ids, payloads and index), and a search that finds the tag still pointing to it
//! reads nothing else and takes no lock. Versions are immutable, so this needs no coordination
//! with writers; a search that finds another version behind the tag loads it under the lock.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value};
use strata_store::{Digest, Store, StoreError};

use crate::config::CollectionConfig;
use crate::error::{CollectionError, Result};
use crate::filter::Filter;
use crate::index::HnswIndex;
use crate::info::{CollectionInfo, VersionInfo};
use crate::loaded::Loaded;
use crate::name::CollectionName;
use crate::payload_db::{self, PayloadDb};
use crate::point::{Point, check_ids, check_points, check_query};
use crate::rows::RowSet;
use crate::search::{self, Hit, SearchOptions, SearchResults};
use crate::spec::CollectionSpec;
use crate::update::Draft;
use crate::version::{self, Version, store_version};

/// Directory of the payload databases, relative to the store root.
pub const COLLECTIONS_DIR: &str = "collections";

/// Most fields an unknown-field error lists.
const LISTED_FIELDS: usize = 20;

/// The embedding collections of one store.
pub struct Collections {
    store: Store,
    dir: PathBuf,
    /// The last version searched of each collection, kept for the next search.
    loaded: Mutex<HashMap<CollectionName, Arc<Loaded>>>,
}

impl Collections {
    /// Opens the collections of `store`; their payload databases live in `collections/` under
    /// the store root, which is created on first use.
    pub fn open(store: &Store) -> Collections {
        Collections {
            store: store.clone(),
            dir: store.root().join(COLLECTIONS_DIR),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// Returns the path of the payload database of collection `name`, whether or not it exists.
    pub fn database_path(&self, name: &str) -> Result<PathBuf> {
        let name = CollectionName::parse(name)?;
        Ok(self.dir.join(name.db_file_name()))
    }

    /// Creates an empty collection and returns its first version.
    pub fn create(&self, name: &str, spec: CollectionSpec) -> Result<CollectionInfo> {
        let name = CollectionName::parse(name)?;
        spec.check()?;
        let _lock = self.store.named_lock(&name.lock_name())?;
        let _guard = self.store.writer()?;
        if version::current(&self.store, &name)?.is_some() {
            return Err(already_exists(&name));
        }

        let config = CollectionConfig::new(name.as_str(), &spec);
        let index = HnswIndex::new(config.dim, config.metric, config.index)?;
        let descriptor = store_version(&self.store, &config, &[], &index)?;
        let reference = name.reference();
        self.store
            .set_tag_if(&reference, &descriptor, None)
            .map_err(|error| match error {
                StoreError::TagMoved { .. } => already_exists(&name),
                other => other.into(),
            })?;

        let version = Version::read(&self.store, descriptor)?;
        self.open_db(&name, &version)?;
        tracing::info!(
            collection = %name,
            digest = %version.digest(),
            dim = spec.dim,
            metric = %spec.metric,
            "created collection"
        );
        Ok(CollectionInfo::from(&version))
    }

    /// Lists every collection, sorted by name.
    pub fn list(&self) -> Result<Vec<CollectionInfo>> {
        let mut collections = Vec::new();
        for tag in self.store.list_tags()? {
            if CollectionName::from_reference(&tag.reference).is_none() {
                continue;
            }
            let version = Version::read(&self.store, tag.descriptor)?;
            collections.push(CollectionInfo::from(&version));
        }
        Ok(collections)
    }

    /// Describes the current version of collection `name`.
    pub fn info(&self, name: &str) -> Result<CollectionInfo> {
        let name = CollectionName::parse(name)?;
        let version = version::read_current(&self.store, &name)?;
        Ok(CollectionInfo::from(&version))
    }

    /// Removes collection `name`: its tag and its payload database. Returns the manifest
    /// digest the tag pointed to; its blobs stay until `gc` finds them unreachable.
    pub fn remove(&self, name: &str) -> Result<Digest> {
        let name = CollectionName::parse(name)?;
        let _lock = self.store.named_lock(&name.lock_name())?;
        let removed = self
            .store
            .remove_tag(&name.reference())
            .map_err(|error| match error {
                StoreError::TagNotFound { .. } => not_found(&name),
                other => other.into(),
            })?;
        self.forget(&name);
        payload_db::remove_database(&self.dir.join(name.db_file_name()))?;
        tracing::info!(collection = %name, digest = %removed.digest, "removed collection");
        Ok(removed.digest)
    }

    /// Inserts `points`, replacing the vector and payload of ids the collection has, and
    /// returns the new version's manifest digest. With no points, nothing is written and the
    /// current digest is returned.
    pub fn upsert(&self, name: &str, points: Vec<Point>) -> Result<Digest> {
        let name = CollectionName::parse(name)?;
        let _lock = self.store.named_lock(&name.lock_name())?;
        let base = version::read_current(&self.store, &name)?;
        check_points(&points, &base.config)?;
        if points.is_empty() {
            return Ok(base.digest().clone());
        }

        let _guard = self.store.writer()?;
        let db = self.open_db(&name, &base)?;
        let count = points.len();
        let draft = Draft::upsert(&self.store, &db, &base, points)?;
        let digest = self.commit(&name, &base, &db, draft)?;
        tracing::info!(collection = %name, %digest, points = count, "upserted points");
        Ok(digest)
    }

    /// Deletes the points `ids`, which must all exist, and returns the new version's manifest
    /// digest. With no ids, nothing is written and the current digest is returned.
    pub fn delete<I, S>(&self, name: &str, ids: I) -> Result<Digest>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let name = CollectionName::parse(name)?;
        let ids: Vec<String> = ids.into_iter().map(Into::into).collect();
        check_ids(&ids)?;
        let _lock = self.store.named_lock(&name.lock_name())?;
        let base = version::read_current(&self.store, &name)?;
        if ids.is_empty() {
            return Ok(base.digest().clone());
        }

        let _guard = self.store.writer()?;
        let db = self.open_db(&name, &base)?;
        let draft = Draft::delete(&self.store, &db, &base, &ids)?;
        let digest = self.commit(&name, &base, &db, draft)?;
        tracing::info!(collection = %name, %digest, points = ids.len(), "deleted points");
        Ok(digest)
    }

    /// Returns the point `id` of collection `name`.
    pub fn get(&self, name: &str, id: &str) -> Result<Point> {
        let name = CollectionName::parse(name)?;
        let _lock = self.store.named_lock(&name.lock_name())?;
        let version = version::read_current(&self.store, &name)?;
        let db = self.open_db(&name, &version)?;
        let location = db.locate(std::iter::once(id))?.remove(id);
        let Some(location) = location else {
            return Err(CollectionError::PointNotFound {
                name: name.to_string(),
                id: id.to_string(),
            });
        };

        let layers = version.segment(location.segment).ok_or_else(|| {
            let reason = format!(
                "the payload database names missing segment {}",
                location.segment
            );
            CollectionError::InvalidVersion {
                digest: version.digest().clone(),
                reason,
            }
        })?;
        let mut segment = version.read_segment(&self.store, layers)?;
        let slot = location.slot as usize;
        let vector = segment.vector(slot, version.config.dim).to_vec();
        let payload = std::mem::take(&mut segment.payloads[slot]);
        Ok(Point::new(id, vector).with_payload(payload))
    }

    /// Returns the id and payload of every point of collection `name`, in index order.
    pub fn payloads(&self, name: &str) -> Result<Vec<(String, Map<String, Value>)>> {
        let name = CollectionName::parse(name)?;
        let _lock = self.store.named_lock(&name.lock_name())?;
        let version = version::read_current(&self.store, &name)?;
        let db = self.open_db(&name, &version)?;
        let loaded = self.loaded(&name, &version)?;
        let keys: Vec<u64> = (0..loaded.len()).map(|row| loaded.key(row)).collect();
        db.points(&keys)
    }

    /// Returns the `top_k` points nearest to `query` that pass the filter, nearest first.
    ///
    /// A search reads only the tag while the version it points to is the one kept from the
    /// last search, and takes no lock then, so searches run in parallel with each other and
    /// with writes. The hits come from the version the tag pointed to when the search started.
    pub fn search(
        &self,
        name: &str,
        query: &[f32],
        options: &SearchOptions,
    ) -> Result<SearchResults> {
        let name = CollectionName::parse(name)?;
        search::check_options(options)?;
        let loaded = self.current(&name)?;
        check_query(query, &loaded.config)?;

        let keep = match &options.filter {
            Some(filter) => Some(matching_rows(&loaded, &name, filter)?),
            None => None,
        };
        let candidates = keep.as_ref().map_or(loaded.len(), RowSet::count);
        let method = search::choose_method(options.exact, keep.is_some(), candidates, loaded.len());
        tracing::debug!(collection = %name, ?method, candidates, "searching");

        let scored = search::run(&loaded, query, options, method, keep.as_ref())?;
        let hits = scored
            .into_iter()
            .map(|(row, score)| {
                let id = loaded.id(row).to_string();
                let payload = loaded.payloads.payload(row)?;
                Ok(Hit { id, score, payload })
            })
            .collect::<Result<_>>()?;
        Ok(SearchResults {
            hits,
            method,
            candidates,
        })
    }

    /// Returns every version of collection `name`, newest first, following each version's
    /// parent until the first version or one that is no longer stored.
    pub fn log(&self, name: &str) -> Result<Vec<VersionInfo>> {
        let name = CollectionName::parse(name)?;
        let mut version = version::read_current(&self.store, &name)?;
        let mut versions = vec![VersionInfo::from(&version)];
        while let Some(parent) = version.config.parent.clone() {
            let reference = strata_store::Reference::digested(&name.reference().name, parent)?;
            let descriptor = match self.store.resolve(&reference) {
                Ok(descriptor) => descriptor,
                Err(error) if error.is_not_found() => {
                    tracing::warn!(collection = %name, %error, "history ends at a missing version");
                    break;
                }
                Err(error) => return Err(error.into()),
            };
            version = Version::read(&self.store, descriptor)?;
            versions.push(VersionInfo::from(&version));
        }
        Ok(versions)
    }

    /// Stores `draft` as a version, moves the tag from `base` to it, then updates the database.
    fn commit(
        &self,
        name: &CollectionName,
        base: &Version,
        db: &PayloadDb,
        draft: Draft<'_>,
    ) -> Result<Digest> {
        let stored = draft.store(&self.store)?;
        let digest = stored.descriptor.digest.clone();
        self.store
            .set_tag_if(&name.reference(), &stored.descriptor, Some(base.digest()))
            .map_err(|source| match source {
                StoreError::TagMoved { .. } => CollectionError::Moved {
                    name: name.to_string(),
                    source,
                },
                other => other.into(),
            })?;
        self.forget(name);

        let rewritten: Vec<(u32, &_)> = stored.rewritten.iter().map(|(s, seg)| (*s, seg)).collect();
        if let Err(error) = db.apply(&digest, &rewritten, &stored.removed) {
            // The version is committed; the database still names the old manifest, so the next
            // operation rebuilds it from the blobs.
            tracing::warn!(collection = %name, %digest, %error, "payload database update failed");
        }
        Ok(digest)
    }

    /// Opens the collection's payload database, rebuilding it from the blobs unless it
    /// reflects `version`.
    fn open_db(&self, name: &CollectionName, version: &Version) -> Result<PayloadDb> {
        fs::create_dir_all(&self.dir).map_err(|source| CollectionError::Io {
            operation: "create directory",
            path: self.dir.clone(),
            source,
        })?;
        let db = PayloadDb::open(&self.dir.join(name.db_file_name()))?;
        let reflected = db.reflected_manifest()?;
        if reflected.as_ref() == Some(version.digest()) {
            return Ok(db);
        }

        tracing::info!(
            collection = %name,
            digest = %version.digest(),
            reflected = ?reflected,
            "rebuilding payload database from the blobs"
        );
        let mut segments = version.segments.iter().map(|layers| {
            let segment = version.read_segment(&self.store, layers)?;
            Ok((layers.serial, segment))
        });
        db.rebuild(version.digest(), &mut segments)?;
        Ok(db)
    }

    /// Returns the loaded state of the version the tag of `name` points to. When it is the one
    /// kept from the last search, only the tag is read. Otherwise the version is read and
    /// loaded under the collection's lock, after the payload database is brought up to date
    /// with it as every other operation does.
    fn current(&self, name: &CollectionName) -> Result<Arc<Loaded>> {
        let descriptor = version::current(&self.store, name)?.ok_or_else(|| not_found(name))?;
        let cached = self.cache().get(name).cloned();
        if let Some(loaded) = cached.filter(|loaded| loaded.digest == descriptor.digest) {
            return Ok(loaded);
        }

        let _lock = self.store.named_lock(&name.lock_name())?;
        let version = version::read_current(&self.store, name)?;
        self.open_db(name, &version)?;
        self.loaded(name, &version)
    }

    /// Returns the loaded state of `version`, reusing the one kept from the last search.
    fn loaded(&self, name: &CollectionName, version: &Version) -> Result<Arc<Loaded>> {
        let cached = self.cache().get(name).cloned();
        if let Some(loaded) = cached.filter(|loaded| loaded.digest == *version.digest()) {
            return Ok(loaded);
        }
        let loaded = Arc::new(Loaded::load(&self.store, version)?);
        self.cache().insert(name.clone(), Arc::clone(&loaded));
        Ok(loaded)
    }

    /// Drops the loaded state kept for `name`.
    fn forget(&self, name: &CollectionName) {
        self.cache().remove(name);
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<CollectionName, Arc<Loaded>>> {
        self.loaded.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Collections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collections")
            .field("root", &self.store.root())
            .field("dir", &self.dir)
            .finish()
    }
}

/// Evaluates `filter` over the loaded payloads, after checking that every field it names is in
/// some point.
fn matching_rows(loaded: &Loaded, name: &CollectionName, filter: &Filter) -> Result<RowSet> {
    let payloads = &loaded.payloads;
    let unknown = filter
        .fields()
        .into_iter()
        .find(|field| payloads.field(field).is_none());
    let Some(field) = unknown else {
        return Ok(filter.select(payloads));
    };

    let mut listed: Vec<&str> = payloads.field_names().take(LISTED_FIELDS + 1).collect();
    if listed.len() > LISTED_FIELDS {
        listed[LISTED_FIELDS] = "…";
    }
    let known = match listed.is_empty() {
        true => "none".to_string(),
        false => listed.join(", "),
    };
    Err(CollectionError::UnknownField {
        name: name.to_string(),
        field: field.to_string(),
        known,
    })
}

fn not_found(name: &CollectionName) -> CollectionError {
    CollectionError::NotFound {
        name: name.to_string(),
    }
}

fn already_exists(name: &CollectionName) -> CollectionError {
    CollectionError::AlreadyExists {
        name: name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_is_shareable_across_threads() {
        fn check<T: Send + Sync>() {}
        check::<Collections>();
    }
}
