//! The payload database: a `redb` file per collection, `collections/NAME.redb` under the store
//! root, for looking up points by id without reading the blobs. Searches do not use it: they
//! filter and read payloads from the loaded version (`payload_index.rs`).
//!
//! The blobs are the source of truth and the database is derived from them. It records which
//! manifest it reflects, and a caller that finds another manifest behind the tag (after a pull,
//! a crash between moving the tag and committing, or a deleted or damaged file) rebuilds it
//! from the blobs. A write commits after the tag has moved, in one transaction.
//!
//! Tables:
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | `manifest`, `schema` | the manifest digest reflected, the table layout version |
//! | `ids` | point id | index key |
//! | `points` | index key | (point id, segment serial, slot in the segment) |
//! | `payloads` | index key | the payload as compact JSON |
//! | `fields` | top-level payload field | number of points whose payload has it (kept up to date, no longer read) |

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition, TableError,
    WriteTransaction,
};
use serde_json::{Map, Value};
use strata_store::Digest;

use crate::error::{CollectionError, Result};
use crate::segment::Segment;

const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
const IDS: TableDefinition<&str, u64> = TableDefinition::new("ids");
const POINTS: TableDefinition<u64, (&str, u32, u32)> = TableDefinition::new("points");
const PAYLOADS: TableDefinition<u64, &str> = TableDefinition::new("payloads");
const FIELDS: TableDefinition<&str, u64> = TableDefinition::new("fields");

/// `meta` key of the manifest digest the tables reflect.
const MANIFEST_KEY: &str = "manifest";
/// `meta` key of the table layout version.
const SCHEMA_KEY: &str = "schema";
/// Table layout version this code writes; a file of another version is rebuilt.
const SCHEMA: &str = "1";

/// The storage location of a point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Location {
    /// The point's index key.
    pub(crate) key: u64,
    /// Serial of the segment that contains it.
    pub(crate) segment: u32,
    /// Position within the segment.
    pub(crate) slot: u32,
}

/// An open payload database.
#[derive(Debug)]
pub(crate) struct PayloadDb {
    db: Database,
    path: PathBuf,
}

impl PayloadDb {
    /// Opens the database at `path`, creating it when missing. A file that redb cannot open as
    /// a database is derived data, so it is replaced by an empty one that the caller rebuilds.
    pub(crate) fn open(path: &Path) -> Result<PayloadDb> {
        let db = match Database::create(path) {
            Ok(db) => db,
            Err(DatabaseError::DatabaseAlreadyOpen) => {
                let error = DatabaseError::DatabaseAlreadyOpen;
                return Err(CollectionError::database(path, "open", error));
            }
            Err(error) => {
                let path_text = path.display();
                tracing::warn!(path = %path_text, %error, "replacing unreadable payload database");
                remove_file(path)?;
                Database::create(path).map_err(|e| CollectionError::database(path, "create", e))?
            }
        };
        Ok(PayloadDb {
            db,
            path: path.to_path_buf(),
        })
    }

    /// Returns the manifest digest the tables reflect, or `None` for a new file or one of
    /// another table layout.
    pub(crate) fn reflected_manifest(&self) -> Result<Option<Digest>> {
        let read = self
            .db
            .begin_read()
            .map_err(|e| self.error("begin read", e))?;
        let meta = match read.open_table(META) {
            Ok(meta) => meta,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(self.error("open meta table", error)),
        };
        let value = |key: &str| -> Result<Option<String>> {
            let entry = meta
                .get(key)
                .map_err(|e| self.error("read meta table", e))?;
            Ok(entry.map(|guard| guard.value().to_string()))
        };
        if value(SCHEMA_KEY)?.as_deref() != Some(SCHEMA) {
            return Ok(None);
        }
        Ok(value(MANIFEST_KEY)?.and_then(|text| Digest::parse(&text).ok()))
    }

    /// Replaces every table with the points of `segments`, recorded as reflecting `manifest`.
    pub(crate) fn rebuild(
        &self,
        manifest: &Digest,
        segments: &mut dyn Iterator<Item = Result<(u32, Segment)>>,
    ) -> Result<()> {
        let txn = self
            .db
            .begin_write()
            .map_err(|e| self.error("begin write", e))?;
        delete_tables(&txn).map_err(|e| self.error("delete tables", e))?;
        let mut fields = FieldCounts::default();
        for segment in segments {
            let (serial, segment) = segment?;
            write_segment(&txn, serial, &segment, &mut fields)
                .map_err(|e| self.error("write points", e))?;
        }
        finish(&txn, manifest, &fields).map_err(|e| self.error("write meta", e))?;
        txn.commit().map_err(|e| self.error("commit", e))?;
        tracing::debug!(path = %self.path.display(), %manifest, "rebuilt payload database");
        Ok(())
    }

    /// Applies one new version in one transaction: drops `removed` points, writes every point
    /// of each rewritten segment, and records `manifest`.
    pub(crate) fn apply(
        &self,
        manifest: &Digest,
        rewritten: &[(u32, &Segment)],
        removed: &[(u64, String)],
    ) -> Result<()> {
        let txn = self
            .db
            .begin_write()
            .map_err(|e| self.error("begin write", e))?;
        let mut fields = FieldCounts::default();
        remove_points(&txn, removed, &mut fields).map_err(|e| self.error("remove points", e))?;
        for (serial, segment) in rewritten {
            write_segment(&txn, *serial, segment, &mut fields)
                .map_err(|e| self.error("write points", e))?;
        }
        finish(&txn, manifest, &fields).map_err(|e| self.error("write meta", e))?;
        txn.commit().map_err(|e| self.error("commit", e))?;
        Ok(())
    }

    /// Returns the location of each of `ids` that the collection has.
    pub(crate) fn locate<'a>(
        &self,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<HashMap<String, Location>> {
        let read = self
            .db
            .begin_read()
            .map_err(|e| self.error("begin read", e))?;
        let id_table = read
            .open_table(IDS)
            .map_err(|e| self.error("open ids table", e))?;
        let points = read
            .open_table(POINTS)
            .map_err(|e| self.error("open points table", e))?;
        let mut found = HashMap::new();
        for id in ids {
            let Some(key) = id_table.get(id).map_err(|e| self.error("read ids", e))? else {
                continue;
            };
            let key = key.value();
            let entry = points.get(key).map_err(|e| self.error("read points", e))?;
            let Some(entry) = entry else {
                return Err(self.inconsistent(format!("id `{id}` has key {key} but no point")));
            };
            let (_, segment, slot) = entry.value();
            found.insert(id.to_string(), Location { key, segment, slot });
        }
        Ok(found)
    }

    /// Returns the id and payload of each key, in order.
    pub(crate) fn points(&self, keys: &[u64]) -> Result<Vec<(String, Map<String, Value>)>> {
        let read = self
            .db
            .begin_read()
            .map_err(|e| self.error("begin read", e))?;
        let points = read
            .open_table(POINTS)
            .map_err(|e| self.error("open points table", e))?;
        let payloads = read
            .open_table(PAYLOADS)
            .map_err(|e| self.error("open payloads", e))?;
        let mut found = Vec::with_capacity(keys.len());
        for &key in keys {
            let point = points.get(key).map_err(|e| self.error("read points", e))?;
            let payload = payloads
                .get(key)
                .map_err(|e| self.error("read payloads", e))?;
            let (Some(point), Some(payload)) = (point, payload) else {
                return Err(self.inconsistent(format!("key {key} has no point or no payload")));
            };
            let id = point.value().0.to_string();
            found.push((id, self.parse_payload(key, payload.value())?));
        }
        Ok(found)
    }

    fn parse_payload(&self, key: u64, text: &str) -> Result<Map<String, Value>> {
        serde_json::from_str(text).map_err(|source| CollectionError::Json {
            document: format!("payload of key {key} in `{}`", self.path.display()),
            source,
        })
    }

    fn error(&self, operation: &'static str, source: impl Into<redb::Error>) -> CollectionError {
        CollectionError::database(&self.path, operation, source)
    }

    fn inconsistent(&self, reason: String) -> CollectionError {
        let source = redb::Error::Corrupted(reason);
        CollectionError::database(&self.path, "read", source)
    }
}

fn delete_tables(txn: &WriteTransaction) -> Result<(), redb::Error> {
    txn.delete_table(META)?;
    txn.delete_table(IDS)?;
    txn.delete_table(POINTS)?;
    txn.delete_table(PAYLOADS)?;
    txn.delete_table(FIELDS)?;
    Ok(())
}

/// Changes to the `fields` table, accumulated over one transaction.
#[derive(Default)]
struct FieldCounts(BTreeMap<String, i64>);

impl FieldCounts {
    fn add(&mut self, payload: &str, delta: i64) {
        let Ok(payload) = serde_json::from_str::<Map<String, Value>>(payload) else {
            return;
        };
        for field in payload.keys() {
            *self.0.entry(field.clone()).or_default() += delta;
        }
    }
}

/// Removes points and their payloads, counting the fields they had.
fn remove_points(
    txn: &WriteTransaction,
    removed: &[(u64, String)],
    fields: &mut FieldCounts,
) -> Result<(), redb::Error> {
    let mut ids = txn.open_table(IDS)?;
    let mut points = txn.open_table(POINTS)?;
    let mut payloads = txn.open_table(PAYLOADS)?;
    for (key, id) in removed {
        ids.remove(id.as_str())?;
        points.remove(key)?;
        if let Some(old) = payloads.remove(key)? {
            fields.add(old.value(), -1);
        }
    }
    Ok(())
}

/// Writes every point of a segment, replacing a payload only where it changed.
fn write_segment(
    txn: &WriteTransaction,
    serial: u32,
    segment: &Segment,
    fields: &mut FieldCounts,
) -> Result<(), redb::Error> {
    let mut ids = txn.open_table(IDS)?;
    let mut points = txn.open_table(POINTS)?;
    let mut payloads = txn.open_table(PAYLOADS)?;
    for (slot, &key) in segment.keys.iter().enumerate() {
        let id = segment.ids[slot].as_str();
        let slot_number = u32::try_from(slot).expect("segments hold fewer than 2^32 points");
        points.insert(key, (id, serial, slot_number))?;
        ids.insert(id, key)?;

        let payload =
            serde_json::to_string(&segment.payloads[slot]).expect("a JSON map always serializes");
        let old = payloads.get(key)?.map(|guard| guard.value().to_string());
        if old.as_deref() == Some(payload.as_str()) {
            continue;
        }
        if let Some(old) = &old {
            fields.add(old, -1);
        }
        fields.add(&payload, 1);
        payloads.insert(key, payload.as_str())?;
    }
    Ok(())
}

/// Applies the field counts and records the manifest and table layout. Opening every table
/// creates the ones an empty collection has not written to, so readers find them all.
fn finish(
    txn: &WriteTransaction,
    manifest: &Digest,
    fields: &FieldCounts,
) -> Result<(), redb::Error> {
    txn.open_table(IDS)?;
    txn.open_table(POINTS)?;
    txn.open_table(PAYLOADS)?;
    let mut table = txn.open_table(FIELDS)?;
    for (field, delta) in &fields.0 {
        let old = table.get(field.as_str())?.map_or(0, |guard| guard.value());
        let new = old.saturating_add_signed(*delta);
        if new == 0 {
            table.remove(field.as_str())?;
        } else {
            table.insert(field.as_str(), new)?;
        }
    }
    let mut meta = txn.open_table(META)?;
    meta.insert(MANIFEST_KEY, manifest.as_str())?;
    meta.insert(SCHEMA_KEY, SCHEMA)?;
    Ok(())
}

fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(CollectionError::Io {
            operation: "remove payload database",
            path: path.to_path_buf(),
            source: error,
        }),
        _ => Ok(()),
    }
}

/// Removes the database file of a removed collection, if there is one.
pub(crate) fn remove_database(path: &Path) -> Result<()> {
    remove_file(path)
}
