//! A loaded model ready to chat: decoder, tokenizer and chat template together.
//!
//! [`Engine`] is what the CLI (and later the server) hold once per model version; a [`Chat`] is
//! one conversation over it, keeping its messages and the token ids and KV cache of everything
//! rendered so far, so each turn feeds only the tokens the cache does not hold yet.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use candle_core::Device;
use strata_model::ModelConfig;
use strata_model::load::LoadedModel;
use strata_store::{Digest, Reference};

use crate::error::Result;
use crate::generate::{self, FinishReason, Sequence};
use crate::model::{BlockDtype, Llama};
use crate::sampling::SamplingParams;
use crate::stream::StreamDecoder;
use crate::template::{ChatTemplate, Message};
use crate::tokenizer::ChatTokenizer;
use crate::train::{AdapterSet, LoraConfig};

/// Capacity of a new chat's cache, in positions, before its first growth.
const INITIAL_CACHE_POSITIONS: usize = 512;

/// A model version loaded for generation. Clones share the weights, tokenizer and template.
#[derive(Clone, Debug)]
pub struct Engine {
    model: Llama,
    tokenizer: ChatTokenizer,
    template: Arc<ChatTemplate>,
    config: ModelConfig,
    manifest_digest: Digest,
    reference: Reference,
}

impl Engine {
    /// Builds the decoder, tokenizer and template of a version loaded from the store, on CPU.
    ///
    /// LoRA adapters the version carries are attached to their projections. Its caches keep
    /// keys and values at f16 precision, as llama.cpp's do by default, so a
    /// session saved with f16 blocks restores exactly; [`Engine::model_mut`] can change that.
    pub fn load(loaded: &LoadedModel) -> Result<Engine> {
        let strata = &loaded.config.strata;
        let device = Device::Cpu;
        let mut model = Llama::load(
            &strata.hyperparameters,
            strata.architecture,
            &loaded.tensors,
            &device,
        )?;
        model.set_kv_precision(BlockDtype::F16);
        if let Some(info) = &strata.adapter {
            let config = LoraConfig::from_info(info)?;
            let adapters = AdapterSet::from_tensors(config, &loaded.tensors, &device)?;
            adapters.attach(&mut model)?;
            tracing::debug!(adapters = adapters.entries.len(), "attached LoRA adapters");
        }
        let tokenizer = ChatTokenizer::from_json(&loaded.tokenizer_json, &strata.tokenizer)?;
        let bos = strata.tokenizer.bos_token.as_deref();
        let eos = strata.tokenizer.eos_token.as_deref();
        let template = match &loaded.chat_template {
            Some(source) => ChatTemplate::new(source, bos, eos)?,
            None => ChatTemplate::chatml(),
        };
        Ok(Engine {
            model,
            tokenizer,
            template: Arc::new(template),
            config: loaded.config.clone(),
            manifest_digest: loaded.manifest_digest.clone(),
            reference: loaded.reference.clone(),
        })
    }

    /// Returns a copy of this engine with `adapters` attached over its own, sharing the
    /// weights, tokenizer and template. A version's lesson adapters run this way, one copy per
    /// lesson, chosen per message.
    pub fn with_adapters(&self, adapters: &AdapterSet) -> Result<Engine> {
        let mut model = self.model.clone();
        adapters.attach(&mut model)?;
        Ok(Engine {
            model,
            tokenizer: self.tokenizer.clone(),
            template: self.template.clone(),
            config: self.config.clone(),
            manifest_digest: self.manifest_digest.clone(),
            reference: self.reference.clone(),
        })
    }

    /// The decoder.
    pub fn model(&self) -> &Llama {
        &self.model
    }

    /// Returns the decoder for changes such as the cache precision.
    pub fn model_mut(&mut self) -> &mut Llama {
        &mut self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &ChatTokenizer {
        &self.tokenizer
    }

    /// The chat template.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The version's config document.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Digest of the manifest the weights were loaded from.
    pub fn manifest_digest(&self) -> &Digest {
        &self.manifest_digest
    }

    /// The reference the version was loaded by, such as `smollm2:latest`.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// Size of the model's vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.model.config().vocab_size
    }

    /// Starts a conversation, with `system` as its system message when given.
    pub fn new_chat(&self, system: Option<String>) -> Chat {
        Chat {
            system,
            messages: Vec::new(),
            sequence: None,
        }
    }
}

/// The result of one [`Chat::send`].
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// The assistant's answer as streamed.
    pub text: String,
    /// Why generation ended.
    pub finish: FinishReason,
    /// Tokens in the rendered conversation fed as the prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens taken from the cache instead of being fed again.
    pub reused_tokens: usize,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// Time spent feeding the prompt.
    pub prefill_time: Duration,
    /// Time spent generating.
    pub decode_time: Duration,
}

/// One conversation: its messages plus the cached tokens of the last rendering.
#[derive(Debug)]
pub struct Chat {
    system: Option<String>,
    messages: Vec<Message>,
    sequence: Option<Sequence>,
}

impl Chat {
    /// Rebuilds a chat from saved parts: the system message, the messages, and the sequence of
    /// cached tokens (`None` when nothing was cached).
    pub fn from_parts(
        system: Option<String>,
        messages: Vec<Message>,
        sequence: Option<Sequence>,
    ) -> Chat {
        Chat {
            system,
            messages,
            sequence,
        }
    }

    /// Splits the chat into its system message, messages and cached sequence.
    pub fn into_parts(self) -> (Option<String>, Vec<Message>, Option<Sequence>) {
        (self.system, self.messages, self.sequence)
    }

    /// Returns the system message, when the chat has one.
    pub fn system(&self) -> Option<&str> {
        self.system.as_deref()
    }

    /// Returns the cached tokens and their KV cache, when anything was fed yet.
    pub fn sequence(&self) -> Option<&Sequence> {
        self.sequence.as_ref()
    }

    /// The conversation so far, without the system message.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Replaces the text of the last message when it is the assistant's, and returns whether
    /// it was. The cache keeps its tokens; the next turn feeds again from where they differ.
    pub fn correct_last_reply(&mut self, text: &str) -> bool {
        match self.messages.last_mut() {
            Some(message) if message.role == "assistant" => {
                message.content = text.to_string();
                true
            }
            _ => false,
        }
    }

    /// Forgets every message and the cache; the system message stays.
    pub fn clear(&mut self) {
        self.messages.clear();
        self.sequence = None;
    }

    /// Adds `user_text` as a user message and generates the assistant's answer.
    ///
    /// Each decoded piece of text goes to `on_text`, never splitting a UTF-8 character;
    /// `ControlFlow::Break` stops the answer, which is kept as far as it got. On an error the
    /// user message is taken back, so the chat is as it was before the call.
    pub fn send(
        &mut self,
        engine: &Engine,
        user_text: &str,
        params: &SamplingParams,
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Reply> {
        self.messages.push(Message::new("user", user_text));
        let reply = self.generate_reply(engine, params, on_text);
        match &reply {
            Ok(reply) => self.messages.push(Message::new("assistant", &reply.text)),
            Err(_) => {
                self.messages.pop();
            }
        }
        reply
    }

    fn generate_reply(
        &mut self,
        engine: &Engine,
        params: &SamplingParams,
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Reply> {
        let prompt = engine
            .tokenizer
            .encode_chat(&engine.template, &self.rendered(), true)?;
        let sequence = match &mut self.sequence {
            Some(sequence) => sequence,
            None => self.sequence.insert(Sequence::new(engine.model.new_cache(
                INITIAL_CACHE_POSITIONS.max(prompt.len() + params.max_tokens.min(4096)),
            )?)),
        };

        let mut decoder = StreamDecoder::new(&engine.tokenizer);
        let mut text = String::new();
        let mut decode_error = None;
        let outcome = generate::generate(
            &engine.model,
            sequence,
            &prompt,
            params,
            |token| engine.tokenizer.is_stop(token),
            |token| match decoder.push(token) {
                Ok(Some(piece)) => {
                    text.push_str(&piece);
                    on_text(&piece)
                }
                Ok(None) => ControlFlow::Continue(()),
                Err(error) => {
                    decode_error = Some(error);
                    ControlFlow::Break(())
                }
            },
        )?;
        if let Some(error) = decode_error {
            return Err(error.into());
        }
        if let Some(tail) = decoder.finish()? {
            text.push_str(&tail);
            let _ = on_text(&tail);
        }

        Ok(Reply {
            text,
            finish: outcome.finish,
            prompt_tokens: outcome.prompt_tokens,
            reused_tokens: outcome.reused_tokens,
            generated_tokens: outcome.tokens.len(),
            prefill_time: outcome.prefill_time,
            decode_time: outcome.decode_time,
        })
    }

    /// Collects the messages the template renders, with the system message first.
    fn rendered(&self) -> Vec<Message> {
        let system = self.system.iter().map(|text| Message::new("system", text));
        system.chain(self.messages.iter().cloned()).collect()
    }
}
