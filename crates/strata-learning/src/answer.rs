//! Deciding whether a reply gives an answer, and asking the model a question.

use std::ops::ControlFlow;

use strata_runtime::SamplingParams;
use strata_runtime::engine::Engine;

use crate::error::Result;

/// Lowercases `text` and turns every run of characters other than letters and digits into one
/// space, so "Durvelton." and "durvelton" compare equal.
pub fn normalize(text: &str) -> String {
    let mut normalized = String::with_capacity(text.len());
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
    {
        if !normalized.is_empty() {
            normalized.push(' ');
        }
        normalized.extend(word.chars().flat_map(char::to_lowercase));
    }
    normalized
}

/// True when `reply` contains `answer` as whole words, after [`normalize`].
pub fn contains(reply: &str, answer: &str) -> bool {
    let (reply, answer) = (normalize(reply), normalize(answer));
    if answer.is_empty() {
        return false;
    }
    format!(" {reply} ").contains(&format!(" {answer} "))
}

/// Maximum tokens generated when checking an answer, besides the answer's own length.
const EXTRA_TOKENS: usize = 24;

/// Asks `question` in a fresh chat with greedy decoding and returns the reply.
///
/// Generation stops early once the reply contains `expected`, because the rest cannot change
/// the verdict. Without `expected` it runs to the stop token or the length limit.
pub fn ask(
    engine: &Engine,
    system: Option<&str>,
    question: &str,
    expected: Option<&str>,
) -> Result<String> {
    let answer_tokens = match expected {
        Some(answer) => engine.tokenizer().encode_text(answer)?.len(),
        None => 0,
    };
    let params = SamplingParams {
        temperature: 0.0,
        max_tokens: answer_tokens + EXTRA_TOKENS,
        ..SamplingParams::default()
    };
    let mut chat = engine.new_chat(system.map(str::to_string));
    let mut seen = String::new();
    let reply = chat.send(engine, question, &params, &mut |piece| {
        seen.push_str(piece);
        match expected {
            Some(answer) if contains(&seen, answer) => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    })?;
    Ok(reply.text)
}
