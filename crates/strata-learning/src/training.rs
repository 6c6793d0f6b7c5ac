//! One training run: the lesson's conversations encoded, the trainer stepped until the loss is
//! low or the step budget is spent.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use strata_runtime::SamplingParams;
use strata_runtime::engine::Engine;
use strata_runtime::generate::FinishReason;
use strata_runtime::template::Message;
use strata_runtime::train::{AdapterSet, LoraConfig, TrainExample, TrainSettings, Trainer};

use crate::augment::{self, AugmentSettings, Conversation};
use crate::error::{LearnError, Result};
use crate::lesson::{Fact, Lesson};

/// Everything that shapes a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingSettings {
    /// Adapter placement and size; a lineage keeps the placement of its first lesson.
    pub lora: LoraConfig,
    /// Optimizer settings and seed.
    pub optimizer: TrainSettings,
    /// Most optimizer steps, each over the whole training set.
    pub max_steps: usize,
    /// Training stops once the mean answer-token loss is below this.
    pub target_loss: f32,
    /// From this step on, every second step asks the lesson's questions of the adapter so far.
    pub check_from: usize,
    /// Steps taken after every lesson question is first answered, for a margin.
    pub margin_steps: usize,
    /// The training set's composition.
    pub augment: AugmentSettings,
}

impl TrainingSettings {
    /// Returns the defaults for a model with `layers` decoder layers: rank 8 adapters on every
    /// projection of the top 4 layers, learning rate 2e-3, and training that stops two steps
    /// after the lesson's questions are answered (at most 24 steps).
    pub fn for_layers(layers: usize) -> TrainingSettings {
        TrainingSettings {
            lora: LoraConfig {
                rank: 8,
                alpha: 16.0,
                first_layer: layers.saturating_sub(4),
                targets: strata_runtime::model::Projection::ALL.to_vec(),
            },
            optimizer: TrainSettings {
                learning_rate: 2e-3,
                weight_decay: 0.0,
                seed: 0,
            },
            max_steps: 24,
            target_loss: 0.02,
            check_from: 4,
            margin_steps: 2,
            augment: AugmentSettings::default(),
        }
    }
}

/// The figures of a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingReport {
    /// Conversations trained on.
    pub examples: usize,
    /// Answer tokens per step.
    pub answer_tokens: usize,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Loss before the first step.
    pub first_loss: f32,
    /// Loss at the last step.
    pub final_loss: f32,
    /// Wall time of the run, preparation included.
    pub seconds: f64,
}

/// A training run's progress, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Progress {
    /// Building the training set: anchors answered so far and in all.
    Anchors {
        /// Answered so far.
        done: usize,
        /// In all.
        total: usize,
    },
    /// One optimizer step finished.
    Step {
        /// Steps taken.
        step: usize,
        /// The step budget.
        max_steps: usize,
        /// Loss at this step.
        loss: f32,
    },
}

/// The greedy replies of one set of weights to anchor questions, kept between the lessons that
/// train on those weights so each question is answered once.
#[derive(Clone, Debug, Default)]
pub struct AnchorReplies {
    replies: HashMap<String, Conversation>,
}

/// Trains adapters for `lesson` on `engine` (the weights the adapters will run on), starting
/// from `init`, with `earlier` facts of the lineage replayed. `anchor_replies` must
/// hold only replies of `engine`'s weights.
///
/// Training stops early once every lesson question is answered and a margin of steps more is
/// taken, because each further step moves unrelated answers too. `engine` is left with the
/// returned adapters attached.
pub fn train(
    engine: &mut Engine,
    init: Option<&AdapterSet>,
    lesson: &Lesson,
    earlier: &[Fact],
    settings: &TrainingSettings,
    anchor_replies: &mut AnchorReplies,
    progress: &mut dyn FnMut(Progress),
) -> Result<(AdapterSet, TrainingReport)> {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(settings.optimizer.seed);
    let taught = augment::lesson_conversations(&lesson.facts, &settings.augment, &mut rng);
    let replayed = augment::replay_conversations(earlier, &settings.augment, &mut rng);
    let mut conversations: Vec<Item> = taught
        .into_iter()
        .chain(replayed.iter().cloned())
        .map(|conversation| Item {
            conversation,
            distill: false,
        })
        .collect();
    let mut topics = lesson.facts.clone();
    topics.extend(replayed.iter().map(|c| Fact::pair(&c.user, &c.reply)));
    let anchors = augment::anchor_questions(&topics, &settings.augment, &mut rng);
    for (index, question) in anchors.iter().enumerate() {
        let conversation = match anchor_replies.replies.get(*question) {
            Some(conversation) => conversation.clone(),
            None => {
                let conversation = anchor_conversation(engine, question)?;
                let key = (*question).to_owned();
                anchor_replies.replies.insert(key, conversation.clone());
                conversation
            }
        };
        conversations.push(Item {
            conversation,
            distill: true,
        });
        progress(Progress::Anchors {
            done: index + 1,
            total: anchors.len(),
        });
    }

    let model = engine.model();
    let mut trainer = Trainer::new(model, settings.lora.clone(), init, &settings.optimizer)?;
    let mut batch = Vec::with_capacity(conversations.len());
    let mut answer_tokens = 0;
    for conversation in &conversations {
        let example = encode(engine, &conversation.conversation)?;
        answer_tokens += example.tokens.len() - example.answer_start;
        let mut prepared = trainer.prepare(model, &example)?;
        if conversation.distill {
            trainer.distill(&mut prepared)?;
        }
        batch.push(prepared);
    }

    let mut first_loss = None;
    let mut final_loss = f32::NAN;
    let mut steps = 0;
    let mut answered_at = None;
    while steps < settings.max_steps {
        let loss = trainer.step(&batch)?;
        first_loss.get_or_insert(loss);
        final_loss = loss;
        steps += 1;
        progress(Progress::Step {
            step: steps,
            max_steps: settings.max_steps,
            loss,
        });
        if loss < settings.target_loss {
            break;
        }
        match answered_at {
            Some(at) if steps >= at + settings.margin_steps => break,
            Some(_) => continue,
            None => {}
        }
        if steps >= settings.check_from && steps % 2 == 0 {
            trainer.adapters()?.attach(engine.model_mut())?;
            if answers_all(engine, &lesson.facts)? {
                tracing::debug!(steps, "every lesson question answered correctly");
                answered_at = Some(steps);
                if settings.margin_steps == 0 {
                    break;
                }
            }
        }
    }
    // The loss at the last step was measured before that step's update, so measure once more.
    if steps > 0 {
        final_loss = trainer.loss(&batch)?;
    }
    let adapters = trainer.adapters()?;
    adapters.attach(engine.model_mut())?;
    let report = TrainingReport {
        examples: batch.len(),
        answer_tokens,
        steps,
        first_loss: first_loss.unwrap_or(final_loss),
        final_loss,
        seconds: started.elapsed().as_secs_f64(),
    };
    tracing::info!(?report, "trained adapters");
    Ok((adapters, report))
}

/// True when `engine` answers every fact's question in a fresh chat.
fn answers_all(engine: &Engine, facts: &[Fact]) -> Result<bool> {
    for fact in facts {
        let reply = crate::answer::ask(engine, None, &fact.question, Some(&fact.answer))?;
        if !crate::answer::contains(&reply, &fact.answer) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A conversation of the training set and how its reply is learned.
struct Item {
    conversation: Conversation,
    /// True for anchors: match the parent's whole next-token distribution on the reply, since
    /// training on its greedy reply alone would make the model overconfident elsewhere.
    distill: bool,
}

/// Answers an anchor question greedily as the parent does; an answer cut off by the length
/// limit is trained without the end of turn.
fn anchor_conversation(engine: &Engine, question: &str) -> Result<Conversation> {
    let params = SamplingParams {
        temperature: 0.0,
        max_tokens: 40,
        ..SamplingParams::default()
    };
    let mut chat = engine.new_chat(None);
    let reply = chat.send(
        engine,
        question,
        &params,
        &mut |_| ControlFlow::Continue(()),
    )?;
    Ok(Conversation {
        system: None,
        user: question.to_string(),
        reply: reply.text.trim().to_string(),
        complete: reply.finish != FinishReason::Length,
    })
}

/// Renders a conversation with the chat template and marks where the reply starts.
///
/// The tokens end with the template's end of turn, so the model also learns to stop.
pub fn encode(engine: &Engine, conversation: &Conversation) -> Result<TrainExample> {
    let tokenizer = engine.tokenizer();
    let (reply, complete) = (conversation.reply.as_str(), conversation.complete);
    let mut messages = Vec::with_capacity(3);
    if let Some(system) = &conversation.system {
        messages.push(Message::new("system", system));
    }
    messages.push(Message::new("user", &conversation.user));
    let prompt = tokenizer.encode_chat(engine.template(), &messages, true)?;
    messages.push(Message::new("assistant", reply));
    let mut tokens = tokenizer.encode_chat(engine.template(), &messages, false)?;

    let answer_start = prompt.len();
    if tokens.len() <= answer_start || tokens[..answer_start] != prompt[..] {
        let reason = format!(
            "the chat template renders `{}` differently with a reply appended, so the reply's \
             tokens cannot be told apart",
            conversation.user
        );
        return Err(LearnError::InvalidLesson { reason });
    }
    let stop = tokens[answer_start..]
        .iter()
        .position(|&token| tokenizer.is_stop(token));
    match (stop, complete) {
        (Some(stop), true) => tokens.truncate(answer_start + stop + 1),
        (Some(stop), false) => tokens.truncate(answer_start + stop.max(1)),
        (None, _) => {}
    }
    Ok(TrainExample {
        tokens,
        answer_start,
    })
}
