//! The interactive chat: line editing and history with rustyline, and slash commands.

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use strata_runtime::engine::{Chat, Engine};
use strata_runtime::sampling::SamplingParams;

use crate::commands::run::answer;

const HELP: &str = "\
Available commands:
  /help          show this help
  /clear         forget the conversation so far
  /bye           leave the chat (Ctrl-D works too)

Ctrl-C stops the current answer. End a line with \\ to continue the message on the next line.";

/// The request in one line of input: a message or a slash command.
#[derive(Debug, PartialEq)]
enum Input {
    Message(String),
    Help,
    Clear,
    Bye,
    Unknown(String),
    Empty,
}

/// Reads messages until `/bye` or end of input, answering each.
pub(crate) fn chat_loop(
    engine: &Engine,
    chat: &mut Chat,
    params: &SamplingParams,
) -> anyhow::Result<()> {
    let mut editor = DefaultEditor::new()?;
    eprintln!("Type a message, or /help for commands.");
    loop {
        let text = match read_message(&mut editor) {
            Ok(Some(text)) => text,
            Ok(None) => return Ok(()),
            Err(error) => return Err(error.into()),
        };
        match parse(&text) {
            Input::Message(message) => {
                if let Err(error) = answer(engine, chat, &message, params) {
                    eprintln!("strata: error: {error:#}");
                    eprintln!("(the message was not added; /clear starts a new conversation)");
                }
            }
            Input::Help => eprintln!("{HELP}"),
            Input::Clear => {
                chat.clear();
                eprintln!("cleared the conversation");
            }
            Input::Bye => return Ok(()),
            Input::Unknown(command) => eprintln!("unknown command `{command}`; try /help"),
            Input::Empty => {}
        }
    }
}

/// Reads one message, joining lines that end with `\`; `None` at end of input.
fn read_message(editor: &mut DefaultEditor) -> Result<Option<String>, ReadlineError> {
    let mut message = String::new();
    let mut prompt = ">>> ";
    loop {
        match editor.readline(prompt) {
            Ok(line) => {
                if let Some(head) = line.strip_suffix('\\') {
                    message.push_str(head);
                    message.push('\n');
                    prompt = "... ";
                    continue;
                }
                message.push_str(&line);
                let _ = editor.add_history_entry(message.as_str());
                return Ok(Some(message));
            }
            Err(ReadlineError::Interrupted) => {
                eprintln!("(use /bye or Ctrl-D to leave)");
                message.clear();
                prompt = ">>> ";
            }
            Err(ReadlineError::Eof) => {
                eprintln!();
                return Ok(None);
            }
            Err(error) => return Err(error),
        }
    }
}

fn parse(text: &str) -> Input {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Input::Empty;
    }
    if !trimmed.starts_with('/') {
        return Input::Message(text.to_string());
    }
    let command = trimmed.split_whitespace().next().unwrap_or(trimmed);
    match command {
        "/help" | "/?" => Input::Help,
        "/clear" => Input::Clear,
        "/bye" | "/exit" | "/quit" => Input::Bye,
        _ => Input::Unknown(command.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_commands_are_recognised() {
        assert_eq!(parse("/bye"), Input::Bye);
        assert_eq!(parse("  /help "), Input::Help);
        assert_eq!(parse("/clear"), Input::Clear);
        assert_eq!(parse("/nope x"), Input::Unknown("/nope".to_string()));
    }

    #[test]
    fn plain_text_is_a_message() {
        assert_eq!(
            parse("hello /bye"),
            Input::Message("hello /bye".to_string())
        );
        assert_eq!(parse("   "), Input::Empty);
    }
}
