//! Fast memory: the facts a lineage was taught, kept in an embedding collection so that a
//! lesson is usable the moment it is taught, long before its adapter is trained.
//!
//! Each model name has the collection `memory.NAME` (the name lowercased, other characters
//! than letters, digits, `.`, `_` and `-` turned into `-`). A fact is one point: its question
//! embedded as text, with the question, answer, statement, source and, once a version has
//! learned it, that version's digest in the payload. Before each chat turn the turn's text is
//! embedded and the facts scoring at least [`RECALL_THRESHOLD`] are added to the system message
//! for that turn ([`system_with_recalled`]).

use std::fmt::Write as _;

use serde_json::{Map, Value, json};
use strata_collections::{
    CollectionError, CollectionSpec, Collections, Metric, Point, SearchOptions,
};
use strata_store::{Digest, Store};

use crate::error::{LearnError, Result};
use crate::lesson::{Fact, Lesson};

/// Lowest cosine similarity between a turn and a fact's question for the fact to be recalled.
pub const RECALL_THRESHOLD: f32 = 0.6;

/// The line that opened the recalled facts in front of a message in sessions saved by earlier
/// versions, which put them in the user's message.
const RECALLED_HEADING: &str = "Facts you were taught:\n";

/// The system message recalled facts follow when neither the chat nor its template has one.
pub const DEFAULT_SYSTEM: &str = "You are a helpful AI assistant.";

/// Most facts put in front of one turn.
pub const RECALL_TOP: usize = 3;

/// Embeds one text; the memory does not care which model does it.
pub trait TextEmbedding: Send + Sync {
    /// The embedder's name, recorded in the collection.
    fn name(&self) -> &str;
    /// Number of values in each vector.
    fn dim(&self) -> usize;
    /// Embeds `text` into a unit vector.
    fn embed(&self, text: &str) -> std::result::Result<Vec<f32>, String>;
}

impl TextEmbedding for strata_embed::TextEmbedder {
    fn name(&self) -> &str {
        strata_embed::Embedder::name(self)
    }

    fn dim(&self) -> usize {
        strata_embed::Embedder::dim(self)
    }

    fn embed(&self, text: &str) -> std::result::Result<Vec<f32>, String> {
        let mut vectors = self.embed_batch(&[text]).map_err(|e| e.to_string())?;
        Ok(vectors.remove(0))
    }
}

/// A fact recalled for a turn, with its score.
#[derive(Clone, Debug, PartialEq)]
pub struct Recalled {
    /// The point's id.
    pub id: String,
    /// The fact.
    pub fact: Fact,
    /// Cosine similarity between the turn and the fact's question.
    pub score: f32,
}

/// A stored fact, for listing.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The point's id, which `forget` takes.
    pub id: String,
    /// The fact.
    pub fact: Fact,
    /// The version that learned it, once one did.
    pub version: Option<String>,
}

/// The memory of one model name.
pub struct Memory<'a> {
    collections: Collections,
    collection: String,
    embedder: &'a dyn TextEmbedding,
}

impl std::fmt::Debug for Memory<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("collection", &self.collection)
            .finish_non_exhaustive()
    }
}

impl<'a> Memory<'a> {
    /// Opens the memory of `model` (a model name, without tag), creating its collection when
    /// missing.
    pub fn open(store: &Store, model: &str, embedder: &'a dyn TextEmbedding) -> Result<Memory<'a>> {
        let collections = Collections::open(store);
        let collection = collection_name(model);
        match collections.info(&collection) {
            Ok(info) if info.dim == embedder.dim() => {}
            Ok(info) => {
                return Err(memory_error(format!(
                    "collection `{collection}` holds {}-value vectors, but the {} embedder makes {}; remove it with `strata collection rm {collection}`",
                    info.dim,
                    embedder.name(),
                    embedder.dim()
                )));
            }
            Err(CollectionError::NotFound { .. }) => {
                let spec = CollectionSpec::new(embedder.dim(), Metric::Cosine)
                    .with_embedder(embedder.name());
                collections
                    .create(&collection, spec)
                    .map_err(collection_error)?;
            }
            Err(error) => return Err(collection_error(error)),
        }
        Ok(Memory {
            collections,
            collection,
            embedder,
        })
    }

    /// Returns the collection's name.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// Stores every fact of `lesson` at once and returns their ids. A fact taught again with
    /// the same question replaces the earlier one.
    pub fn remember(&self, lesson: &Lesson) -> Result<Vec<String>> {
        let source = serde_json::to_value(&lesson.source).unwrap_or(Value::Null);
        let mut points = Vec::with_capacity(lesson.facts.len());
        for fact in &lesson.facts {
            let vector = self.embed(&fact.question)?;
            let mut payload = Map::new();
            payload.insert("question".into(), json!(fact.question));
            payload.insert("answer".into(), json!(fact.answer));
            if let Some(statement) = &fact.statement {
                payload.insert("statement".into(), json!(statement));
            }
            payload.insert("source".into(), source.clone());
            points.push(Point::new(fact_id(fact), vector).with_payload(payload));
        }
        let ids = points.iter().map(|point| point.id.clone()).collect();
        self.collections
            .upsert(&self.collection, points)
            .map_err(collection_error)?;
        Ok(ids)
    }

    /// Returns up to [`RECALL_TOP`] facts whose question is close to `text`.
    pub fn recall(&self, text: &str) -> Result<Vec<Recalled>> {
        let info = self
            .collections
            .info(&self.collection)
            .map_err(collection_error)?;
        if info.points == 0 {
            return Ok(Vec::new());
        }
        let options = SearchOptions {
            top_k: RECALL_TOP,
            exact: true,
            ..SearchOptions::default()
        };
        let results = self
            .collections
            .search(&self.collection, &self.embed(text)?, &options)
            .map_err(collection_error)?;
        Ok(results
            .hits
            .into_iter()
            .filter(|hit| hit.score >= RECALL_THRESHOLD)
            .filter_map(|hit| {
                let fact = fact_of(&hit.payload)?;
                Some(Recalled {
                    id: hit.id,
                    fact,
                    score: hit.score,
                })
            })
            .collect())
    }

    /// Lists every stored fact.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let points = self
            .collections
            .payloads(&self.collection)
            .map_err(collection_error)?;
        Ok(points
            .into_iter()
            .filter_map(|(id, payload)| {
                let version = payload
                    .get("version")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                Some(Entry {
                    id,
                    fact: fact_of(&payload)?,
                    version,
                })
            })
            .collect())
    }

    /// Removes the fact `id`.
    pub fn forget(&self, id: &str) -> Result<()> {
        self.collections
            .delete(&self.collection, [id])
            .map_err(collection_error)?;
        Ok(())
    }

    /// Records that `version` learned the facts of `lesson`.
    pub fn consolidated(&self, lesson: &Lesson, version: &Digest) -> Result<()> {
        let mut points = Vec::new();
        for fact in &lesson.facts {
            let id = fact_id(fact);
            match self.collections.get(&self.collection, &id) {
                Ok(mut point) => {
                    point
                        .payload
                        .insert("version".into(), json!(version.as_str()));
                    points.push(point);
                }
                Err(CollectionError::PointNotFound { .. }) => {}
                Err(error) => return Err(collection_error(error)),
            }
        }
        if !points.is_empty() {
            self.collections
                .upsert(&self.collection, points)
                .map_err(collection_error)?;
        }
        Ok(())
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>> {
        self.embedder.embed(text).map_err(memory_error)
    }
}

/// Returns the system message for a turn that recalled `recalled`: `system` (the chat's own, or
/// else its template's default, or else [`DEFAULT_SYSTEM`]) followed by each fact's statement,
/// or `system` unchanged when nothing was recalled.
///
/// A small model uses a fact given in the system message more often than one written in front
/// of the question. With 64 facts stored, SmolLM2-135M answered 73% of the exact questions and
/// 67% of the paraphrases this way, against 61% and 64% with the facts in the user's message
/// (docs/learning.md).
pub fn system_with_recalled(system: Option<&str>, recalled: &[Recalled]) -> Option<String> {
    if recalled.is_empty() {
        return system.map(str::to_owned);
    }
    let mut text = String::from(system.unwrap_or(DEFAULT_SYSTEM).trim_end());
    if !text.ends_with(['.', '!', '?']) {
        text.push('.');
    }
    for entry in recalled {
        let fact = &entry.fact;
        match &fact.statement {
            Some(statement) => {
                let _ = write!(text, " {statement}");
            }
            None => {
                let _ = write!(text, " {} {}", fact.question, fact.answer);
            }
        }
    }
    Some(text)
}

/// Returns the message a user typed, without the facts that sessions saved by earlier versions
/// put in front of it.
pub fn without_recalled(text: &str) -> &str {
    match text.strip_prefix(RECALLED_HEADING) {
        Some(rest) => rest.split_once("\n\n").map_or(text, |(_, message)| message),
        None => text,
    }
}

/// Returns the memory collection of model name `model`.
pub fn collection_name(model: &str) -> String {
    let cleaned: String = model
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.' | '_' | '-') => c,
            _ => '-',
        })
        .collect();
    format!("memory.{}", cleaned.trim_matches(|c| c == '-' || c == '.'))
}

/// Returns a fact's point id: `fact-` and the first 16 hex digits of its normalized question's sha256.
fn fact_id(fact: &Fact) -> String {
    let question = crate::answer::normalize(&fact.question);
    let digest = Digest::of(question.as_bytes());
    format!("fact-{}", &digest.hex()[..16])
}

fn fact_of(payload: &Map<String, Value>) -> Option<Fact> {
    let text = |key: &str| payload.get(key).and_then(Value::as_str).map(str::to_owned);
    Some(Fact {
        question: text("question")?,
        answer: text("answer")?,
        statement: text("statement"),
        paraphrases: Vec::new(),
    })
}

fn collection_error(error: CollectionError) -> LearnError {
    memory_error(error.to_string())
}

fn memory_error(reason: impl Into<String>) -> LearnError {
    LearnError::Memory {
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lesson::LessonSource;

    /// Embeds a text as counts of a few words, enough to tell questions apart.
    struct WordCounts;

    impl TextEmbedding for WordCounts {
        fn name(&self) -> &str {
            "word-counts"
        }

        fn dim(&self) -> usize {
            4
        }

        fn embed(&self, text: &str) -> std::result::Result<Vec<f32>, String> {
            let text = text.to_lowercase();
            let mut vector: Vec<f32> = ["capital", "river", "colour", "who"]
                .iter()
                .map(|word| text.matches(word).count() as f32)
                .collect();
            vector.push(0.0);
            vector.truncate(4);
            if vector.iter().all(|v| *v == 0.0) {
                vector[3] = 0.01;
            }
            Ok(vector)
        }
    }

    fn lesson(question: &str, answer: &str) -> Lesson {
        Lesson::new(vec![Fact::pair(question, answer)], LessonSource::Teach).unwrap()
    }

    #[test]
    fn a_taught_fact_is_recalled_for_a_close_question_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let memory = Memory::open(&store, "smollm2", &WordCounts).unwrap();
        assert_eq!(memory.collection(), "memory.smollm2");
        memory
            .remember(&lesson("What is the capital of Sevzaria?", "Durvelton"))
            .unwrap();

        let recalled = memory
            .recall("Which city is the capital of Sevzaria?")
            .unwrap();
        assert_eq!(recalled.len(), 1);
        assert_eq!(recalled[0].fact.answer, "Durvelton");
        assert!(memory.recall("Which river is longest?").unwrap().is_empty());
    }

    #[test]
    fn teaching_a_question_again_replaces_it_and_forget_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let memory = Memory::open(&store, "Team/Model", &WordCounts).unwrap();
        assert_eq!(memory.collection(), "memory.team-model");
        memory
            .remember(&lesson("Capital of Sevzaria?", "Old"))
            .unwrap();
        let ids = memory
            .remember(&lesson("capital of sevzaria", "New"))
            .unwrap();

        let entries = memory.entries().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].fact.answer, "New");
        let digest = Digest::of(b"a version");
        memory
            .consolidated(&lesson("capital of sevzaria", "New"), &digest)
            .unwrap();
        assert_eq!(
            memory.entries().unwrap()[0].version.as_deref(),
            Some(digest.as_str())
        );

        memory.forget(&ids[0]).unwrap();
        assert!(memory.entries().unwrap().is_empty());
    }

    #[test]
    fn recalled_facts_follow_the_system_message() {
        let recalled = [
            Recalled {
                id: "fact-1".into(),
                fact: Fact::pair("What is the capital of Sevzaria?", "Durvelton"),
                score: 0.9,
            },
            Recalled {
                id: "fact-2".into(),
                fact: Fact {
                    statement: Some("Mira Kost invented the glass loom.".into()),
                    ..Fact::pair("Who invented the glass loom?", "Mira Kost")
                },
                score: 0.7,
            },
        ];
        assert_eq!(
            system_with_recalled(Some("Be brief."), &recalled).unwrap(),
            "Be brief. What is the capital of Sevzaria? Durvelton Mira Kost invented the glass loom."
        );
        let default = system_with_recalled(None, &recalled[..1]).unwrap();
        assert!(default.starts_with(DEFAULT_SYSTEM), "{default}");
        let unfinished = system_with_recalled(Some("You are SmolLM"), &recalled[..1]).unwrap();
        assert!(
            unfinished.starts_with("You are SmolLM. What"),
            "{unfinished}"
        );
        assert_eq!(system_with_recalled(None, &[]), None);
        assert_eq!(
            system_with_recalled(Some("Be brief."), &[]).as_deref(),
            Some("Be brief.")
        );
    }

    #[test]
    fn without_recalled_strips_old_heading() {
        let text = "Facts you were taught:\n- What is the capital of Sevzaria? Durvelton\n\nCapital of Sevzaria?";
        assert_eq!(without_recalled(text), "Capital of Sevzaria?");
        assert_eq!(without_recalled("plain"), "plain");
    }
}
