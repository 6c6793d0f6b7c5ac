//! Copy-on-write changes: assembling the next version of a collection from the current one.
//!
//! An upsert of an existing id rewrites the one segment that contains it, in place. A new id
//! gets the next index key and goes into the last segment while it has room, else into a new
//! segment. A delete rewrites each segment that loses points, and drops a segment left empty.
//! Every other segment keeps its layers, so its blobs keep their digests and are stored and
//! pushed once. Segments that earlier deletes left part-empty are not refilled.

use std::collections::BTreeMap;

use strata_store::{Descriptor, Store};

use crate::config::CollectionConfig;
use crate::error::{CollectionError, Result};
use crate::payload_db::{Location, PayloadDb};
use crate::point::Point;
use crate::segment::Segment;
use crate::version::{SegmentRef, Version, store_segment, store_version};

/// The next version of a collection, before it is stored.
#[derive(Debug)]
pub(crate) struct Draft<'a> {
    base: &'a Version,
    config: CollectionConfig,
    /// Segments whose layers the new version reuses as they are.
    reused: BTreeMap<u32, SegmentRef>,
    /// Segments being rewritten, decoded.
    changed: BTreeMap<u32, Segment>,
    /// Points removed, as (key, id).
    removed: Vec<(u64, String)>,
    /// Vectors to insert into the index after the removals, by key.
    added: Vec<(u64, Vec<f32>)>,
    /// Keys to remove from the index.
    unindexed: Vec<u64>,
}

/// A stored new version: its manifest and what the payload database must apply.
#[derive(Debug)]
pub(crate) struct Stored {
    /// The new manifest.
    pub(crate) descriptor: Descriptor,
    /// Rewritten segments that still have points, by serial.
    pub(crate) rewritten: BTreeMap<u32, Segment>,
    /// Points removed, as (key, id).
    pub(crate) removed: Vec<(u64, String)>,
}

impl<'a> Draft<'a> {
    /// Starts a draft that changes nothing.
    fn new(base: &'a Version) -> Draft<'a> {
        let reused = base
            .segments
            .iter()
            .map(|segment| (segment.serial, segment.clone()))
            .collect();
        Draft {
            base,
            config: base.config.clone(),
            reused,
            changed: BTreeMap::new(),
            removed: Vec::new(),
            added: Vec::new(),
            unindexed: Vec::new(),
        }
    }

    /// Plans inserting or replacing `points`, which have passed `check_points`.
    pub(crate) fn upsert(
        store: &Store,
        db: &PayloadDb,
        base: &'a Version,
        points: Vec<Point>,
    ) -> Result<Draft<'a>> {
        let locations = db.locate(points.iter().map(|point| point.id.as_str()))?;
        let mut draft = Draft::new(base);
        for point in points {
            match locations.get(&point.id) {
                Some(location) => draft.replace(store, *location, point)?,
                None => draft.append(store, point)?,
            }
        }
        Ok(draft)
    }

    /// Plans removing the points `ids`, which must all exist.
    pub(crate) fn delete(
        store: &Store,
        db: &PayloadDb,
        base: &'a Version,
        ids: &[String],
    ) -> Result<Draft<'a>> {
        let locations = db.locate(ids.iter().map(String::as_str))?;
        let mut by_segment: BTreeMap<u32, Vec<(String, Location)>> = BTreeMap::new();
        for id in ids {
            let Some(location) = locations.get(id) else {
                return Err(CollectionError::PointNotFound {
                    name: base.config.name.clone(),
                    id: id.clone(),
                });
            };
            let entry = by_segment.entry(location.segment).or_default();
            entry.push((id.clone(), *location));
        }

        let mut draft = Draft::new(base);
        for (serial, doomed) in by_segment {
            draft.remove_from_segment(store, serial, &doomed)?;
        }
        Ok(draft)
    }

    /// Stores the rewritten segments, the index, the config and the manifest.
    pub(crate) fn store(mut self, store: &Store) -> Result<Stored> {
        let dim = self.config.dim;
        let rewritten: BTreeMap<u32, Segment> = std::mem::take(&mut self.changed)
            .into_iter()
            .filter(|(_, segment)| segment.len() > 0)
            .collect();
        let mut layers = std::mem::take(&mut self.reused);
        for (serial, segment) in &rewritten {
            layers.insert(*serial, store_segment(store, *serial, segment, dim)?);
        }
        let segments: Vec<SegmentRef> = layers.into_values().collect();

        let index = self.base.read_index(store)?;
        for key in &self.unindexed {
            index.remove(*key)?;
        }
        index.add_all(&self.added)?;

        self.config.points = segments.iter().map(|segment| segment.points).sum();
        self.config.parent = Some(self.base.digest().clone());
        self.config.created = chrono::Utc::now();
        let descriptor = store_version(store, &self.config, &segments, &index)?;
        Ok(Stored {
            descriptor,
            rewritten,
            removed: self.removed,
        })
    }

    /// Replaces the vector and payload of an existing point, in its segment.
    fn replace(&mut self, store: &Store, location: Location, point: Point) -> Result<()> {
        let (dim, base) = (self.config.dim, self.base);
        let segment = self.segment_mut(store, location.segment)?;
        let slot = location.slot as usize;
        if segment.keys.get(slot) != Some(&location.key) {
            let reason = stale_location(&point.id, location);
            return Err(database_disagrees(base, reason));
        }
        let same_vector = segment.vector(slot, dim) == point.vector.as_slice();
        segment.replace(slot, &point.vector, point.payload);
        if !same_vector {
            self.unindexed.push(location.key);
            self.added.push((location.key, point.vector));
        }
        Ok(())
    }

    /// Adds a new point under the next key, in the last segment while it has room.
    fn append(&mut self, store: &Store, point: Point) -> Result<()> {
        let key = self.config.next_key;
        self.config.next_key += 1;
        let serial = self.tail_with_room()?;
        let segment = self.segment_mut(store, serial)?;
        segment.push(key, point.id, &point.vector, point.payload);
        self.added.push((key, point.vector));
        Ok(())
    }

    /// Removes `doomed` points, all from segment `serial`.
    fn remove_from_segment(
        &mut self,
        store: &Store,
        serial: u32,
        doomed: &[(String, Location)],
    ) -> Result<()> {
        let dim = self.config.dim;
        let base = self.base;
        let segment = self.segment_mut(store, serial)?;
        let mut remove = vec![false; segment.len()];
        for (id, location) in doomed {
            let slot = location.slot as usize;
            if segment.keys.get(slot) != Some(&location.key) {
                let reason = stale_location(id, *location);
                return Err(database_disagrees(base, reason));
            }
            remove[slot] = true;
        }
        segment.retain_slots(dim, &remove);
        for (id, location) in doomed {
            self.removed.push((location.key, id.clone()));
            self.unindexed.push(location.key);
        }
        Ok(())
    }

    /// Returns the serial of the last segment when it has room, else opens a new segment.
    fn tail_with_room(&mut self) -> Result<u32> {
        let last_reused = self.reused.keys().next_back().copied();
        let last_changed = self.changed.keys().next_back().copied();
        if let Some(serial) = last_reused.max(last_changed) {
            let len = match self.changed.get(&serial) {
                Some(segment) => segment.len(),
                None => self.reused[&serial].points,
            };
            if len < self.config.segment_points {
                return Ok(serial);
            }
        }
        let serial = self.config.next_segment;
        self.config.next_segment += 1;
        self.changed.insert(serial, Segment::default());
        Ok(serial)
    }

    /// Returns segment `serial` for rewriting, reading it from the store on first use.
    fn segment_mut(&mut self, store: &Store, serial: u32) -> Result<&mut Segment> {
        if !self.changed.contains_key(&serial) {
            let Some(layers) = self.reused.remove(&serial) else {
                let reason = format!("segment {serial} is not in this version");
                return Err(database_disagrees(self.base, reason));
            };
            let segment = self.base.read_segment(store, &layers)?;
            self.changed.insert(serial, segment);
        }
        Ok(self.changed.get_mut(&serial).expect("inserted above"))
    }
}

/// The error for a payload database that contradicts the version it claims to reflect.
fn database_disagrees(base: &Version, reason: String) -> CollectionError {
    let name = &base.config.name;
    CollectionError::InvalidVersion {
        digest: base.digest().clone(),
        reason: format!(
            "{reason}; the payload database disagrees with the blobs, so delete \
             `collections/{name}.redb` under the store root and it is rebuilt on next use"
        ),
    }
}

/// Describes a location whose slot contains another point.
fn stale_location(id: &str, location: Location) -> String {
    format!(
        "point `{id}` is recorded at segment {} slot {} with key {}, but the segment has another \
         point there",
        location.segment, location.slot, location.key
    )
}
