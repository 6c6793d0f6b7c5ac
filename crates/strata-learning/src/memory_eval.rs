//! Measuring the fast memory alone: every fact stored in a scratch memory, nothing trained, then
//! each question, each paraphrase and each control asked with what the memory recalls for it.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use strata_runtime::engine::Engine;
use strata_store::Store;

use crate::answer;
use crate::error::Result;
use crate::eval::Score;
use crate::lesson::{Fact, Lesson, LessonSource};
use crate::memory::{Memory, TextEmbedding, system_with_recalled};

/// Figures of the memory alone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryReport {
    /// The scratch memory collection the facts went to.
    pub collection: String,
    /// The exact questions answered with recall.
    pub efficacy: Score,
    /// The paraphrases answered with recall.
    pub generalization: Score,
    /// The exact questions for which recall found the fact they ask about.
    pub recalled_exact: Score,
    /// The paraphrases for which recall found the fact they ask about.
    pub recalled_paraphrases: Score,
    /// Of the controls the model answers alone, those still answered with recall.
    pub controls_kept: Score,
    /// Controls for which recall put any fact in front of the question.
    pub controls_with_recall: usize,
    /// Mean milliseconds to embed and store one fact.
    pub remember_ms: f64,
    /// Mean milliseconds to embed a question and search the memory.
    pub recall_ms: f64,
}

/// Stores `facts` one lesson each in the memory of `scratch_name`, then asks every question,
/// paraphrase and control of `engine` with recall.
pub fn run(
    store: &Store,
    engine: &Engine,
    embedder: &dyn TextEmbedding,
    scratch_name: &str,
    facts: &[Fact],
    controls: &[Fact],
) -> Result<MemoryReport> {
    let memory = Memory::open(store, scratch_name, embedder)?;
    let started = Instant::now();
    for fact in facts {
        let lesson = Lesson::new(vec![fact.clone()], LessonSource::Teach)?;
        memory.remember(&lesson)?;
    }
    let remember_ms = per_item_ms(started, facts.len());

    let mut recall = Recall {
        memory: &memory,
        engine,
        asked: 0,
        recall_seconds: 0.0,
    };
    let mut efficacy = Score::default();
    let mut generalization = Score::default();
    let mut recalled_exact = Score::default();
    let mut recalled_paraphrases = Score::default();
    for fact in facts {
        let outcome = recall.answers(&fact.question, &fact.answer)?;
        efficacy.add(outcome.answered);
        recalled_exact.add(outcome.found(fact));
        for paraphrase in &fact.paraphrases {
            let outcome = recall.answers(paraphrase, &fact.answer)?;
            generalization.add(outcome.answered);
            recalled_paraphrases.add(outcome.found(fact));
        }
    }

    let mut controls_kept = Score::default();
    let mut controls_with_recall = 0;
    for control in controls {
        let alone = answer::ask(engine, None, &control.question, Some(&control.answer))?;
        if !answer::contains(&alone, &control.answer) {
            continue;
        }
        let outcome = recall.answers(&control.question, &control.answer)?;
        controls_kept.add(outcome.answered);
        controls_with_recall += usize::from(!outcome.recalled.is_empty());
    }

    Ok(MemoryReport {
        collection: memory.collection().to_owned(),
        efficacy,
        generalization,
        recalled_exact,
        recalled_paraphrases,
        controls_kept,
        controls_with_recall,
        remember_ms,
        recall_ms: recall.recall_seconds * 1000.0 / recall.asked.max(1) as f64,
    })
}

/// Asks questions with what the memory recalls for them.
struct Recall<'a> {
    memory: &'a Memory<'a>,
    engine: &'a Engine,
    asked: usize,
    recall_seconds: f64,
}

impl Recall<'_> {
    /// Asks `question` with what the memory recalls for it.
    fn answers(&mut self, question: &str, expected: &str) -> Result<Outcome> {
        let started = Instant::now();
        let recalled = self.memory.recall(question)?;
        self.recall_seconds += started.elapsed().as_secs_f64();
        self.asked += 1;
        let default = self.engine.template().default_system();
        let system = system_with_recalled(default.as_deref(), &recalled);
        let reply = answer::ask(self.engine, system.as_deref(), question, Some(expected))?;
        Ok(Outcome {
            answered: answer::contains(&reply, expected),
            recalled: recalled
                .into_iter()
                .map(|entry| entry.fact.question)
                .collect(),
        })
    }
}

/// The outcome of one question asked with recall.
struct Outcome {
    /// Whether the reply contains the expected answer.
    answered: bool,
    /// The questions of the facts recalled for it.
    recalled: Vec<String>,
}

impl Outcome {
    /// Reports whether recall found `fact`.
    fn found(&self, fact: &Fact) -> bool {
        self.recalled
            .iter()
            .any(|question| *question == fact.question)
    }
}

fn per_item_ms(started: Instant, items: usize) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0 / items.max(1) as f64
}
