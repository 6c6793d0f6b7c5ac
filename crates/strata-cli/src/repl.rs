//! The interactive chat: line editing and history with rustyline, and slash commands.

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use strata_sessions::SessionName;

use strata_learning::lesson::{self, Lesson, LessonSource};

use crate::commands::session;
use crate::live::Live;
use crate::memory::answer_recalling;

const HELP: &str = "\
Available commands:
  /save [NAME]   save this session (as NAME, or under the name it was loaded or saved as)
  /load NAME     replace this session with the saved session NAME
  /fork NAME     continue from the saved session NAME, leaving NAME unchanged
  /sessions      list saved sessions
  /teach Q => A  learn that the answer to question Q is A (trains in the background)
  /correct TEXT  replace the last answer with TEXT, the answer it should have been
  /learn         learn this chat: each question with its (corrected) answer
  /memory        list the facts taught to this model, recalled before each message
  /memory forget ID  remove one of them
  /history       show this session's messages
  /clear         forget the conversation so far
  /help          show this help
  /bye           leave the chat (Ctrl-D works too)

Ctrl-C stops the current answer. End a line with \\ to continue the message on the next line.";

/// The request in one line of input: a message or a slash command.
#[derive(Debug, PartialEq)]
enum Input {
    Message(String),
    Save(Option<String>),
    Load(String),
    Fork(String),
    Sessions,
    Teach(String),
    Correct(String),
    Memory(Option<String>),
    Learn,
    History,
    Help,
    Clear,
    Bye,
    /// A command that needs an argument it did not get, with its usage.
    Usage(&'static str),
    Unknown(String),
    Empty,
}

/// Reads messages until `/bye` or end of input, answering each.
pub(crate) fn chat_loop(live: &mut Live) -> anyhow::Result<()> {
    let mut editor = DefaultEditor::new()?;
    eprintln!("Type a message, or /help for commands.");
    loop {
        if let Err(error) = live.collect_lessons() {
            eprintln!("strata: error: {error:#}");
        }
        let text = match read_message(&mut editor) {
            Ok(Some(text)) => text,
            Ok(None) => {
                live.finish_lessons();
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        };
        match parse(&text) {
            Input::Message(message) => {
                if let Err(error) = live.follow_tag() {
                    eprintln!("strata: error: {error:#}");
                }
                let recalled = match live.memory.recall(&message) {
                    Ok(recalled) => recalled,
                    Err(error) => {
                        eprintln!("strata: warning: nothing recalled: {error:#}");
                        Vec::new()
                    }
                };
                let answered = live.routed_engine(&message).and_then(|engine| {
                    answer_recalling(&engine, &mut live.chat, &message, &live.params, &recalled)
                });
                if let Err(error) = answered {
                    eprintln!("strata: error: {error:#}");
                    eprintln!("(the message was not added; /clear starts a new conversation)");
                }
            }
            Input::Bye => {
                live.finish_lessons();
                return Ok(());
            }
            command => {
                if let Err(error) = run_command(live, command) {
                    eprintln!("strata: error: {error:#}");
                    eprintln!("(the conversation goes on as it was)");
                }
            }
        }
    }
}

/// Carries out one slash command other than `/bye`.
fn run_command(live: &mut Live, input: Input) -> anyhow::Result<()> {
    match input {
        Input::Save(Some(name)) => live.save_as(&SessionName::parse(&name)?)?,
        Input::Save(None) => live.save_attached()?,
        Input::Load(name) => {
            let name = SessionName::parse(&name)?;
            live.load(&name, true)?;
            eprintln!(
                "loaded session `{name}` ({} messages)",
                live.chat.messages().len()
            );
        }
        Input::Fork(name) => {
            let name = SessionName::parse(&name)?;
            live.load(&name, false)?;
            eprintln!("forked session `{name}`; /save NAME keeps this branch");
        }
        Input::Sessions => session::print_list(&live.store)?,
        Input::Teach(pair) => {
            let fact = lesson::parse_teach(&pair)?;
            live.learn(Lesson::new(vec![fact], LessonSource::Teach)?)?;
        }
        Input::Correct(text) => {
            if !live.chat.correct_last_reply(&text) {
                anyhow::bail!("there is no answer to correct yet; ask something first");
            }
            eprintln!("corrected the last answer; /learn teaches it");
        }
        Input::Learn => {
            let facts = lesson::pairs_from_messages(live.chat.messages());
            let source = LessonSource::Session {
                name: live.attached.as_ref().map(|(name, _)| name.to_string()),
            };
            live.learn(Lesson::new(facts, source)?)?;
        }
        Input::Memory(None) => {
            let entries = live.memory.entries()?;
            if entries.is_empty() {
                eprintln!("the memory is empty; /teach Q => A adds a fact");
            }
            for entry in entries {
                let learned = entry
                    .version
                    .as_deref()
                    .map_or("not learned yet".to_owned(), |v| {
                        format!("learned by {}", &v[7..19.min(v.len())])
                    });
                println!(
                    "{}  {} => {}  ({learned})",
                    entry.id, entry.fact.question, entry.fact.answer
                );
            }
        }
        Input::Memory(Some(id)) => {
            live.memory.forget(&id)?;
            eprintln!("forgot {id}");
        }
        Input::History => print_history(live),
        Input::Help => eprintln!("{HELP}"),
        Input::Clear => {
            live.chat.clear();
            eprintln!("cleared the conversation");
        }
        Input::Usage(usage) => eprintln!("usage: {usage}"),
        Input::Unknown(command) => eprintln!("unknown command `{command}`; try /help"),
        Input::Message(_) | Input::Bye | Input::Empty => {}
    }
    Ok(())
}

fn print_history(live: &Live) {
    if let Some(system) = live.chat.system() {
        println!("[system] {system}");
    }
    for message in live.chat.messages() {
        println!("[{}] {}", message.role, message.content);
    }
    if live.chat.messages().is_empty() {
        eprintln!("(no messages yet)");
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

/// Returns the text after the command word, when there is any.
fn rest_of(trimmed: &str) -> Option<String> {
    let (_, rest) = trimmed.split_once(char::is_whitespace)?;
    let rest = rest.trim();
    (!rest.is_empty()).then(|| rest.to_string())
}

fn parse(text: &str) -> Input {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Input::Empty;
    }
    if !trimmed.starts_with('/') {
        return Input::Message(text.to_string());
    }
    let mut words = trimmed.split_whitespace();
    let command = words.next().unwrap_or(trimmed);
    let argument = words.next().map(str::to_string);
    if words.next().is_some() && ["/save", "/load", "/fork"].contains(&command) {
        return Input::Usage(match command {
            "/save" => "/save [NAME]",
            "/load" => "/load NAME",
            _ => "/fork NAME",
        });
    }
    match (command, argument) {
        ("/save", name) => Input::Save(name),
        ("/load", Some(name)) => Input::Load(name),
        ("/load", None) => Input::Usage("/load NAME"),
        ("/fork", Some(name)) => Input::Fork(name),
        ("/fork", None) => Input::Usage("/fork NAME"),
        ("/sessions", _) => Input::Sessions,
        ("/teach", _) => match rest_of(trimmed) {
            Some(pair) => Input::Teach(pair),
            None => Input::Usage("/teach QUESTION => ANSWER"),
        },
        ("/correct", _) => match rest_of(trimmed) {
            Some(text) => Input::Correct(text),
            None => Input::Usage("/correct TEXT"),
        },
        ("/learn", _) => Input::Learn,
        ("/memory", None) => Input::Memory(None),
        ("/memory", Some(word)) if word == "forget" => match rest_of(trimmed)
            .and_then(|rest| rest.strip_prefix("forget").map(|id| id.trim().to_string()))
            .filter(|id| !id.is_empty())
        {
            Some(id) => Input::Memory(Some(id)),
            None => Input::Usage("/memory forget ID"),
        },
        ("/memory", Some(_)) => Input::Usage("/memory [forget ID]"),
        ("/history", _) => Input::History,
        ("/help" | "/?", _) => Input::Help,
        ("/clear", _) => Input::Clear,
        ("/bye" | "/exit" | "/quit", _) => Input::Bye,
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
    fn session_commands_take_a_name() {
        assert_eq!(parse("/save"), Input::Save(None));
        assert_eq!(parse("/save notes"), Input::Save(Some("notes".to_string())));
        assert_eq!(parse("/load notes"), Input::Load("notes".to_string()));
        assert_eq!(parse("/fork notes"), Input::Fork("notes".to_string()));
        assert_eq!(parse("/load"), Input::Usage("/load NAME"));
        assert_eq!(parse("/save a b"), Input::Usage("/save [NAME]"));
        assert_eq!(parse("/sessions"), Input::Sessions);
        assert_eq!(parse("/history"), Input::History);
    }

    #[test]
    fn learning_commands_keep_their_text() {
        let teach = parse("/teach Who made it? => Ada Lovelace");
        assert_eq!(
            teach,
            Input::Teach("Who made it? => Ada Lovelace".to_string())
        );
        let correct = parse("/correct The capital is Durvelton.");
        assert_eq!(
            correct,
            Input::Correct("The capital is Durvelton.".to_string())
        );
        assert_eq!(parse("/learn"), Input::Learn);
        assert_eq!(parse("/teach"), Input::Usage("/teach QUESTION => ANSWER"));
        assert_eq!(parse("/correct  "), Input::Usage("/correct TEXT"));
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
