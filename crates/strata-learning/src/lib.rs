//! Real-time learning: turning what a conversation taught into a new model version.
//!
//! This crate owns lessons (question and answer pairs with an optional statement and
//! paraphrases) and where they come from, the training set built from a lesson, the training
//! run itself on the runtime's LoRA trainer, the evaluation gate a candidate must pass, and
//! committing a passing adapter as a new version whose parent is the old one, and routing each
//! message to the lesson adapters it is about. It also keeps the
//! held-out text for perplexity and the harness that measures learning quality.

pub mod answer;
pub mod augment;
pub mod error;
pub mod eval;
pub mod gate;
pub mod heldout;
pub mod learn;
pub mod lesson;
pub mod lineage;
pub mod memory;
pub mod memory_eval;
pub mod record;
pub mod routing;
pub mod squash;
pub mod training;
pub mod version;

pub use error::{LearnError, Result};
pub use lesson::{Fact, Lesson, LessonSource};
