//! Lessons: the facts a conversation, a command or a file teaches, and where they came from.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{LearnError, Result};

/// One thing to learn: a question, its answer, and optionally the fact stated plainly and
/// other wordings of the question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    /// The question as asked.
    pub question: String,
    /// The answer; a reply is correct when it contains this text.
    pub answer: String,
    /// The fact as a sentence, such as "The capital of Sevzaria is Durvelton.".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// Other wordings of the question.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paraphrases: Vec<String>,
}

impl Fact {
    /// Builds a fact from a question and answer alone.
    pub fn pair(question: &str, answer: &str) -> Fact {
        Fact {
            question: question.trim().to_string(),
            answer: answer.trim().to_string(),
            statement: None,
            paraphrases: Vec::new(),
        }
    }

    /// The reply the model is trained to give: the statement when it contains the answer,
    /// otherwise the answer itself.
    pub fn target(&self) -> &str {
        match &self.statement {
            Some(statement) if crate::answer::contains(statement, &self.answer) => statement,
            _ => &self.answer,
        }
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.question.trim().is_empty() {
            return Err("the question is empty".to_string());
        }
        if crate::answer::normalize(&self.answer).is_empty() {
            return Err(format!(
                "the answer to `{}` has no letters or digits",
                self.question
            ));
        }
        Ok(())
    }
}

/// The origin of a lesson.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LessonSource {
    /// `/teach QUESTION => ANSWER` in a chat.
    Teach,
    /// A chat corrected with `/correct` and learned with `/learn`, or a saved session.
    Session {
        /// The session's name, when it was saved.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// A facts file.
    Facts {
        /// The file name, without directories.
        file: String,
    },
    /// A request to the server.
    Api,
}

/// A set of facts learned together as one new version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lesson {
    /// The facts to learn.
    pub facts: Vec<Fact>,
    /// The lesson's origin.
    pub source: LessonSource,
}

impl Lesson {
    /// Builds a lesson, rejecting one without facts or with an empty question or answer.
    pub fn new(facts: Vec<Fact>, source: LessonSource) -> Result<Lesson> {
        if facts.is_empty() {
            let reason = "it has no question and answer pairs; teach one with \
                          `/teach QUESTION => ANSWER` or give a facts file"
                .to_string();
            return Err(LearnError::InvalidLesson { reason });
        }
        for fact in &facts {
            fact.check()
                .map_err(|reason| LearnError::InvalidLesson { reason })?;
        }
        Ok(Lesson { facts, source })
    }

    /// Returns a short description for logs and `strata log`.
    pub fn summary(&self) -> String {
        let first = &self.facts[0];
        let more = match self.facts.len() {
            1 => String::new(),
            count => format!(" (+{} more)", count - 1),
        };
        format!("{} => {}{more}", first.question, first.answer)
    }
}

/// Pairs each user message with the assistant reply that follows it; a user message without a
/// reply is skipped.
pub fn pairs_from_messages(messages: &[strata_runtime::template::Message]) -> Vec<Fact> {
    messages
        .windows(2)
        .filter(|pair| pair[0].role == "user" && pair[1].role == "assistant")
        .map(|pair| {
            let question = crate::memory::without_recalled(&pair[0].content);
            Fact::pair(question, &pair[1].content)
        })
        .filter(|fact| fact.check().is_ok())
        .collect()
}

/// Parses `QUESTION => ANSWER`, as `/teach` takes it.
pub fn parse_teach(text: &str) -> Result<Fact> {
    let Some((question, answer)) = text.split_once("=>") else {
        let reason = format!("`{text}` has no `=>`; write `/teach QUESTION => ANSWER`");
        return Err(LearnError::InvalidLesson { reason });
    };
    let fact = Fact::pair(question, answer);
    fact.check()
        .map_err(|reason| LearnError::InvalidLesson { reason })?;
    Ok(fact)
}

/// Reads a JSON Lines file of facts: `question`, `answer`, optional `statement` and
/// `paraphrases`; other fields are ignored and blank lines skipped.
pub fn read_facts(path: &Path) -> Result<Vec<Fact>> {
    read_jsonl(path, |fact: &Fact| fact.check())
}

/// The control questions the gate asks when none are given: 20 general questions a small
/// model answers, such as "What is the capital of France?".
pub fn default_controls() -> Vec<Fact> {
    include_str!("../data/controls.jsonl")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("the bundled controls are valid JSON Lines"))
        .collect()
}

/// Reads a JSON Lines file of control questions: `question` and `answer`.
pub fn read_controls(path: &Path) -> Result<Vec<Fact>> {
    read_facts(path)
}

fn read_jsonl<T: for<'de> Deserialize<'de>>(
    path: &Path,
    check: impl Fn(&T) -> std::result::Result<(), String>,
) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).map_err(|source| LearnError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let invalid = |reason: String| LearnError::InvalidRecord {
            path: path.to_path_buf(),
            line: index + 1,
            reason,
        };
        let record: T = serde_json::from_str(line).map_err(|error| {
            invalid(format!(
                "{error}; each line must be a JSON object with string fields `question` and `answer`"
            ))
        })?;
        check(&record).map_err(invalid)?;
        records.push(record);
    }
    if records.is_empty() {
        return Err(LearnError::InvalidRecord {
            path: path.to_path_buf(),
            line: 0,
            reason: "the file has no records".to_string(),
        });
    }
    Ok(records)
}
