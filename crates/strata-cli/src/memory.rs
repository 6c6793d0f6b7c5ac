//! The chat's fast memory: lessons stored the moment they are taught and recalled in front of
//! each message, so a taught fact is answered before its adapter is trained.

use anyhow::Context;
use strata_collections::Collections;
use strata_embed::TextEmbedder;
use strata_learning::lesson::Lesson;
use strata_learning::memory::{self, Entry, Memory, Recalled};
use strata_runtime::engine::{Chat, Engine};
use strata_runtime::sampling::SamplingParams;
use strata_store::{Digest, Store};

use crate::commands::run::answer;
use crate::embedding::text_embedder;

/// The memory of the model a chat runs; the embedder loads on first use.
#[derive(Debug)]
pub(crate) struct ChatMemory {
    store: Store,
    model: String,
    embedder: Option<TextEmbedder>,
}

impl ChatMemory {
    /// Creates the memory of model name `model`.
    pub(crate) fn new(store: Store, model: &str) -> ChatMemory {
        ChatMemory {
            store,
            model: model.to_owned(),
            embedder: None,
        }
    }

    /// Stores the lesson's facts now and prints how many.
    pub(crate) fn remember(&mut self, lesson: &Lesson) -> anyhow::Result<()> {
        let ids = self.open()?.remember(lesson)?;
        eprintln!(
            "remembered {} in `{}`; answered from memory until a new version learns it",
            crate::commands::fsck::plural(ids.len(), "fact"),
            memory::collection_name(&self.model)
        );
        Ok(())
    }

    /// Returns the facts `message` recalls. Nothing is loaded while the memory is empty.
    pub(crate) fn recall(&mut self, message: &str) -> anyhow::Result<Vec<Recalled>> {
        if self.is_empty() {
            return Ok(Vec::new());
        }
        let recalled = self.open()?.recall(message)?;
        for entry in &recalled {
            eprintln!(
                "[memory] {} => {} ({:.2})",
                entry.fact.question, entry.fact.answer, entry.score
            );
        }
        Ok(recalled)
    }

    /// Records that `version` learned `lesson`.
    pub(crate) fn consolidated(&mut self, lesson: &Lesson, version: &Digest) -> anyhow::Result<()> {
        self.open()?.consolidated(lesson, version)?;
        Ok(())
    }

    /// Lists the stored facts.
    pub(crate) fn entries(&mut self) -> anyhow::Result<Vec<Entry>> {
        if self.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.open()?.entries()?)
    }

    /// Removes the fact `id`.
    pub(crate) fn forget(&mut self, id: &str) -> anyhow::Result<()> {
        self.open()?.forget(id)?;
        Ok(())
    }

    fn is_empty(&self) -> bool {
        let collections = Collections::open(&self.store);
        collections
            .info(&memory::collection_name(&self.model))
            .map_or(true, |info| info.points == 0)
    }

    fn open(&mut self) -> anyhow::Result<Memory<'_>> {
        if self.embedder.is_none() {
            let embedder = text_embedder(&self.store).context("cannot load the text embedder")?;
            self.embedder = Some(embedder);
        }
        let embedder = self.embedder.as_ref().expect("loaded above");
        Ok(Memory::open(&self.store, &self.model, embedder)?)
    }
}

/// Answers `message` with the recalled facts added to the chat's system message for this turn
/// only; the chat keeps its own system message afterwards.
pub(crate) fn answer_recalling(
    engine: &Engine,
    chat: &mut Chat,
    message: &str,
    params: &SamplingParams,
    recalled: &[Recalled],
) -> anyhow::Result<()> {
    if recalled.is_empty() {
        answer(engine, chat, message, params)?;
        return Ok(());
    }
    let own = chat.system().map(str::to_owned);
    let base = own.clone().or_else(|| engine.template().default_system());
    set_system(
        chat,
        memory::system_with_recalled(base.as_deref(), recalled),
    );
    let answered = answer(engine, chat, message, params);
    set_system(chat, own);
    answered.map(drop)
}

/// Replaces the chat's system message, keeping its messages and cached tokens; the next turn
/// reuses the cache up to where the renderings differ.
fn set_system(chat: &mut Chat, system: Option<String>) {
    let (_, messages, sequence) =
        std::mem::replace(chat, Chat::from_parts(None, Vec::new(), None)).into_parts();
    *chat = Chat::from_parts(system, messages, sequence);
}
