//! Chat templates: the Jinja source a model ships to turn a conversation into its prompt format.
//!
//! Templates written for Hugging Face's `apply_chat_template` are rendered with minijinja set up
//! the same way. `trim_blocks` and `lstrip_blocks` are on and trailing newlines are kept. Python
//! string and dict methods (`.strip()`, `.items()`) come from minijinja-contrib's `pycompat`.
//! The globals are `raise_exception`, `strftime_now`, `bos_token`, `eos_token`, `messages` and
//! `add_generation_prompt`. An error a template raises itself is kept apart as
//! [`TemplateError::Raised`], so a server can return its text to the client.

use std::collections::BTreeMap;
use std::fmt::Write;

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, ErrorKind, Value};
use serde::{Deserialize, Serialize};

/// Name under which the template is stored in its environment.
const TEMPLATE_NAME: &str = "chat_template";

/// The ChatML template for models that ship none, as SmolLM2 and Qwen2 format their turns.
const CHATML: &str = "{% for message in messages %}\
{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}\
{% endfor %}\
{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Speaker role: `system`, `user` or `assistant`.
    pub role: String,
    /// Message text.
    pub content: String,
}

impl Message {
    /// Creates a message from a role and its content.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// Failure to compile or render a chat template.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The template source is not valid Jinja.
    #[error("invalid chat template: {detail}")]
    Syntax {
        /// minijinja's description, with the template line when it has one.
        detail: String,
    },
    /// The template called `raise_exception`, usually to reject the conversation's shape; the
    /// message is the template's own text, unchanged.
    #[error("{0}")]
    Raised(String),
    /// Rendering failed for another reason, such as an unknown filter or a type error.
    #[error("failed to render the chat template: {detail}")]
    Render {
        /// minijinja's description, with the template line when it has one.
        detail: String,
    },
}

/// Marker error carried as the source of a minijinja error raised by `raise_exception`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RaisedByTemplate(String);

/// A compiled chat template with its special-token globals.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
}

impl ChatTemplate {
    /// Compiles `source`, exposing `bos_token` and `eos_token` to it (empty strings when unset).
    pub fn new(
        source: &str,
        bos_token: Option<&str>,
        eos_token: Option<&str>,
    ) -> Result<ChatTemplate, TemplateError> {
        let mut env = Environment::new();
        env.set_syntax(huggingface_syntax());
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_global("bos_token", bos_token.unwrap_or_default());
        env.add_global("eos_token", eos_token.unwrap_or_default());
        env.add_template_owned(TEMPLATE_NAME, source.to_owned())
            .map_err(|error| TemplateError::Syntax {
                detail: error.to_string(),
            })?;
        Ok(ChatTemplate { env })
    }

    /// Returns the ChatML template (`<|im_start|>role\n...<|im_end|>\n`) for models that ship
    /// none.
    pub fn chatml() -> ChatTemplate {
        ChatTemplate::new(CHATML, None, None).expect("the built-in ChatML template compiles")
    }

    /// Renders `messages`, ending with the assistant's turn header when `add_generation_prompt`.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .expect("template added in new");
        let context = BTreeMap::from([
            ("messages", messages_value(messages)),
            ("add_generation_prompt", Value::from(add_generation_prompt)),
        ]);
        template.render(context).map_err(render_error)
    }

    /// Returns the system message the template writes when a conversation has none, such as
    /// SmolLM2's "You are a helpful AI assistant named SmolLM, trained by Hugging Face", or
    /// `None` when it writes none.
    ///
    /// It renders one user turn without a system message and once more with a marker as the
    /// system message: the default is the text the first rendering has where the second has
    /// the marker.
    pub fn default_system(&self) -> Option<String> {
        const MARKER: &str = "\u{E000}";
        let user = Message::new("user", "\u{E001}");
        let without = self.render(std::slice::from_ref(&user), false).ok()?;
        let with = self
            .render(&[Message::new("system", MARKER), user], false)
            .ok()?;

        let (before, after) = with.split_once(MARKER)?;
        let text = without.strip_prefix(before)?.strip_suffix(after)?;
        (!text.trim().is_empty()).then(|| text.to_owned())
    }
}

/// Hugging Face's Jinja settings: block tags leave no blank lines, the final newline stays.
fn huggingface_syntax() -> SyntaxConfig {
    SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .expect("default delimiters are valid")
}

/// Converts the messages to a list of `{role, content}` maps.
fn messages_value(messages: &[Message]) -> Value {
    let maps = messages.iter().map(|message| {
        Value::from(BTreeMap::from([
            ("role", Value::from(message.role.as_str())),
            ("content", Value::from(message.content.as_str())),
        ]))
    });
    Value::from(maps.collect::<Vec<_>>())
}

/// `raise_exception(message)`: aborts rendering with the template's own message.
fn raise_exception(message: String) -> Result<Value, minijinja::Error> {
    let error = minijinja::Error::new(ErrorKind::InvalidOperation, message.clone());
    Err(error.with_source(RaisedByTemplate(message)))
}

/// `strftime_now(format)`: the local time formatted with C `strftime` codes.
fn strftime_now(format: String) -> Result<Value, minijinja::Error> {
    let mut text = String::new();
    // chrono reports an unknown format code as a formatting error instead of panicking here.
    if write!(text, "{}", chrono::Local::now().format(&format)).is_err() {
        let detail = format!("strftime_now: invalid format string `{format}`");
        return Err(minijinja::Error::new(ErrorKind::InvalidOperation, detail));
    }
    Ok(Value::from(text))
}

/// Maps a render error to [`TemplateError::Raised`] when `raise_exception` caused it.
fn render_error(error: minijinja::Error) -> TemplateError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = source {
        if let Some(raised) = current.downcast_ref::<RaisedByTemplate>() {
            return TemplateError::Raised(raised.0.clone());
        }
        source = current.source();
    }
    TemplateError::Render {
        detail: error.to_string(),
    }
}
