//! Request bodies of the OpenAI-compatible routes and the checks that turn them into sampling
//! settings. Every rejected value is a 400 naming its field.

use serde::Deserialize;
use strata_runtime::SamplingParams;
use strata_runtime::template::Message;

use crate::error::ApiError;

/// Most stop strings one request may give.
const MAX_STOP_STRINGS: usize = 16;

/// `stop`: one string or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings")]
pub enum StopField {
    /// One stop string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    /// Send token counts in one last chunk.
    #[serde(default)]
    pub include_usage: bool,
}

/// Generation settings shared by chat and text completions.
#[derive(Debug, Default, Deserialize)]
pub struct GenerationFields {
    /// Sampling temperature, 0 to 2; 0 is greedy.
    pub temperature: Option<f64>,
    /// Nucleus sampling mass, above 0 and at most 1.
    pub top_p: Option<f64>,
    /// strata extension: keep only the k most likely tokens.
    pub top_k: Option<usize>,
    /// strata extension: llama.cpp's repeat penalty.
    pub repeat_penalty: Option<f32>,
    /// Cap on generated tokens (deprecated by OpenAI in favour of the next one).
    pub max_tokens: Option<i64>,
    /// Cap on generated tokens.
    pub max_completion_tokens: Option<i64>,
    /// Stop strings.
    pub stop: Option<StopField>,
    /// Seed of the sampler.
    pub seed: Option<u64>,
    /// Number of choices; only 1 is supported.
    pub n: Option<i64>,
    /// True to stream the response as server-sent events; `null` is false.
    #[serde(default, deserialize_with = "null_is_false")]
    pub stream: bool,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
}

/// Body of `POST /v1/chat/completions`, besides [`GenerationFields`].
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    /// Model name, such as `smollm2`.
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// strata extension: a saved session to continue; its messages come before these.
    pub snapshot: Option<String>,
}

/// Body of `POST /v1/completions`, besides [`GenerationFields`].
#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    /// Model name.
    pub model: String,
    /// The text to continue: a string or a list holding one string.
    pub prompt: PromptField,
}

/// `prompt` of a text completion.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or a list holding one string")]
pub enum PromptField {
    /// One prompt.
    One(String),
    /// A list of prompts; one is supported.
    Many(Vec<String>),
}

/// One message of a chat request.
#[derive(Debug, Deserialize)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// Text, a list of text parts, or null.
    #[serde(default)]
    pub content: Option<Content>,
}

/// Message content.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a string, null, or a list of {\"type\": \"text\", \"text\": …} parts"
)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content parts; only `text` parts are supported.
    Parts(Vec<ContentPart>),
}

/// One content part.
#[derive(Debug, Deserialize)]
pub struct ContentPart {
    /// Part type; only `text` is supported.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    pub text: Option<String>,
}

/// Limits the server applies to request bodies.
#[derive(Clone, Copy, Debug)]
pub struct RequestLimits {
    /// Maximum number of messages in one chat request.
    pub max_messages: usize,
}

impl Default for RequestLimits {
    /// 1,024 messages.
    fn default() -> Self {
        RequestLimits { max_messages: 1024 }
    }
}

fn null_is_false<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(deserializer)?.unwrap_or(false))
}

/// Turns chat messages into template messages, checking roles, content and count.
pub fn template_messages(
    messages: &[ChatMessage],
    limits: &RequestLimits,
) -> Result<Vec<Message>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "messages must hold at least one message",
        ));
    }
    if messages.len() > limits.max_messages {
        return Err(ApiError::invalid(
            "messages",
            format!(
                "{} messages is more than the limit of {}",
                messages.len(),
                limits.max_messages
            ),
        ));
    }
    messages
        .iter()
        .enumerate()
        .map(|(index, message)| template_message(index, message))
        .collect()
}

fn template_message(index: usize, message: &ChatMessage) -> Result<Message, ApiError> {
    let role = match message.role.as_str() {
        "system" | "developer" => "system",
        "user" | "assistant" | "tool" => message.role.as_str(),
        other => {
            return Err(ApiError::invalid(
                &format!("messages[{index}].role"),
                format!(
                    "unknown role `{other}`; expected system, developer, user, assistant or tool"
                ),
            ));
        }
    };
    let content = match &message.content {
        None => String::new(),
        Some(Content::Text(text)) => text.clone(),
        Some(Content::Parts(parts)) => joined_text_parts(index, parts)?,
    };
    Ok(Message::new(role, content))
}

fn joined_text_parts(index: usize, parts: &[ContentPart]) -> Result<String, ApiError> {
    let mut text = String::new();
    for (part_index, part) in parts.iter().enumerate() {
        match (part.kind.as_str(), &part.text) {
            ("text", Some(part_text)) => text.push_str(part_text),
            ("text", None) => {
                return Err(ApiError::invalid(
                    &format!("messages[{index}].content[{part_index}].text"),
                    "a text part needs a `text` string",
                ));
            }
            (kind, _) => {
                return Err(ApiError::invalid(
                    &format!("messages[{index}].content[{part_index}]"),
                    format!("content parts of type `{kind}` are not supported; send text parts"),
                ));
            }
        }
    }
    Ok(text)
}

/// Returns the single prompt of a text completion.
pub fn single_prompt(prompt: &PromptField) -> Result<&str, ApiError> {
    match prompt {
        PromptField::One(text) => Ok(text),
        PromptField::Many(prompts) if prompts.len() == 1 => Ok(&prompts[0]),
        PromptField::Many(prompts) => Err(ApiError::invalid(
            "prompt",
            format!(
                "{} prompts given; send one prompt per request",
                prompts.len()
            ),
        )),
    }
}

impl GenerationFields {
    /// Checks the fields and returns the stop strings.
    pub fn stop_strings(&self) -> Result<Vec<String>, ApiError> {
        let stops = match &self.stop {
            None => Vec::new(),
            Some(StopField::One(stop)) => vec![stop.clone()],
            Some(StopField::Many(stops)) => stops.clone(),
        };
        if stops.len() > MAX_STOP_STRINGS {
            return Err(ApiError::invalid(
                "stop",
                format!(
                    "{} stop strings is more than the limit of {MAX_STOP_STRINGS}",
                    stops.len()
                ),
            ));
        }
        if stops.iter().any(String::is_empty) {
            return Err(ApiError::invalid("stop", "stop strings must not be empty"));
        }
        Ok(stops)
    }

    /// Checks the sampling fields and builds the sampler settings for a prompt of
    /// `prompt_tokens` tokens on a model with a `context`-token window.
    pub fn sampling(
        &self,
        prompt_tokens: usize,
        context: usize,
    ) -> Result<SamplingParams, ApiError> {
        if let Some(n) = self.n
            && n != 1
        {
            return Err(ApiError::invalid(
                "n",
                format!("n is {n}; only 1 choice per request is supported"),
            ));
        }
        let defaults = SamplingParams::default();
        let temperature = self.temperature.unwrap_or(defaults.temperature);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(ApiError::invalid(
                "temperature",
                format!("temperature is {temperature}; it must be between 0 and 2"),
            ));
        }
        let top_p = self.top_p.or(defaults.top_p);
        if let Some(top_p) = top_p
            && !(top_p > 0.0 && top_p <= 1.0)
        {
            return Err(ApiError::invalid(
                "top_p",
                format!("top_p is {top_p}; it must be above 0 and at most 1"),
            ));
        }
        let repeat_penalty = self.repeat_penalty.unwrap_or(defaults.repeat_penalty);
        if !(repeat_penalty > 0.0 && repeat_penalty.is_finite()) {
            return Err(ApiError::invalid(
                "repeat_penalty",
                format!("repeat_penalty is {repeat_penalty}; it must be a positive number"),
            ));
        }
        Ok(SamplingParams {
            temperature,
            top_k: self.top_k.or(defaults.top_k),
            top_p,
            repeat_penalty,
            repeat_last_n: defaults.repeat_last_n,
            seed: self.seed,
            max_tokens: self.max_tokens(prompt_tokens, context)?,
        })
    }

    /// Returns the cap on generated tokens: `max_completion_tokens`, else `max_tokens`, else what the
    /// context leaves after the prompt.
    fn max_tokens(&self, prompt_tokens: usize, context: usize) -> Result<usize, ApiError> {
        let (param, value) = match self.max_completion_tokens {
            Some(value) => ("max_completion_tokens", Some(value)),
            None => ("max_tokens", self.max_tokens),
        };
        let room = context.saturating_sub(prompt_tokens);
        if room == 0 {
            return Err(ApiError::invalid(
                "messages",
                format!(
                    "the prompt has {prompt_tokens} tokens, which fills the model's \
                     {context}-token context; shorten the conversation"
                ),
            )
            .code("context_length_exceeded"));
        }
        match value {
            None => Ok(room),
            Some(value) if value < 1 => Err(ApiError::invalid(
                param,
                format!("{param} is {value}; it must be at least 1"),
            )),
            Some(value) if value as u64 > room as u64 => Err(ApiError::invalid(
                param,
                format!(
                    "{param} is {value}, but the prompt uses {prompt_tokens} of the model's \
                     {context}-token context, so at most {room} tokens can be generated"
                ),
            )
            .code("context_length_exceeded")),
            Some(value) => Ok(value as usize),
        }
    }

    /// True when streaming with a final usage chunk.
    pub fn include_usage(&self) -> bool {
        self.stream
            && self
                .stream_options
                .as_ref()
                .is_some_and(|options| options.include_usage)
    }
}
