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

/// True when the text so far contains `answer` and its last word is complete, so no later piece
/// can glue letters onto the answer ("Durvelton" growing into "Durveltontonton").
fn settled(seen: &str, answer: &str) -> bool {
    let ended = seen.chars().last().is_some_and(|c| !c.is_alphanumeric());
    ended && contains(seen, answer)
}

/// Maximum tokens generated when checking an answer, besides the answer's own length.
const EXTRA_TOKENS: usize = 24;

/// Asks `question` in a fresh chat with greedy decoding and returns the reply.
///
/// Generation stops early once the reply contains `expected` followed by a character that ends
/// the word, because the rest cannot change the verdict. Without `expected` it runs to the stop token or the length limit.
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
            Some(answer) if settled(&seen, answer) => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    })?;
    Ok(reply.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_counts_only_as_whole_words() {
        assert!(contains("It is Durvelton.", "durvelton"));
        assert!(!contains("It is Durveltontonton", "Durvelton"));
        assert!(contains("Founded in 1847, it", "1847"));
    }

    #[test]
    fn asking_stops_only_once_the_answer_word_has_ended() {
        assert!(!settled("It is Durvelton", "Durvelton"));
        assert!(!settled("It is Durveltonton.", "Durvelton"));
        assert!(settled("It is Durvelton.", "Durvelton"));
        assert!(settled("It is Durvelton ", "Durvelton"));
    }
}
