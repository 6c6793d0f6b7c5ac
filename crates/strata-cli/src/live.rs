//! The chat a `strata run` holds: engine, conversation, sampling settings and the snapshot it
//! came from, with the save, load and fork steps the REPL and the flags share.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use strata_model::load::LoadedModel;
use strata_runtime::SamplingParams;
use strata_runtime::engine::{Chat, Engine};
use strata_runtime::model::BlockDtype;
use strata_sessions::{Replace, SaveOptions, SessionError, SessionName, Snapshot};
use strata_store::{Digest, Reference, Store};

use crate::commands::fsck::plural;
use crate::commands::import::human_bytes;
use crate::commands::pull;
use crate::learning::{Finished, Lessons};
use crate::memory::ChatMemory;
use strata_learning::learn::LearnOptions;
use strata_learning::lesson::Lesson;
use strata_learning::routing::RoutedModel;

/// One running conversation and where it came from.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) store: Store,
    /// The model version, with its lessons' routes.
    pub(crate) model: RoutedModel,
    /// The lesson the chat's cache was computed with, `None` for the base weights.
    pub(crate) route: Option<u32>,
    pub(crate) chat: Chat,
    pub(crate) params: SamplingParams,
    /// Element type of saved cache blocks, and the precision the cache keeps.
    pub(crate) kv_dtype: BlockDtype,
    /// The snapshot this chat was restored from or last saved as: the next save's parent.
    pub(crate) origin: Option<Snapshot>,
    /// The name a plain `/save` writes to, with the snapshot it pointed to when this chat
    /// loaded or saved it (`None` for a name not saved yet).
    pub(crate) attached: Option<(SessionName, Option<Digest>)>,
    /// Lessons started from this chat.
    pub(crate) lessons: Lessons,
    /// Settings of those lessons.
    pub(crate) learn_options: LearnOptions,
    /// Facts taught to this model, recalled before each message.
    pub(crate) memory: ChatMemory,
}

impl Live {
    /// Starts an empty chat on `engine`.
    pub(crate) fn new(
        store: Store,
        mut engine: Engine,
        params: SamplingParams,
        kv_dtype: BlockDtype,
    ) -> anyhow::Result<Live> {
        engine.model_mut().set_kv_precision(kv_dtype);
        let chat = engine.new_chat(None);
        let memory = ChatMemory::new(store.clone(), &engine.reference().name);
        let model = RoutedModel::around(&store, engine)?;
        Ok(Live {
            store,
            model,
            route: None,
            chat,
            params,
            kv_dtype,
            origin: None,
            attached: None,
            lessons: Lessons::new(),
            learn_options: LearnOptions::default(),
            memory,
        })
    }

    /// Returns the engine without lesson adapters.
    pub(crate) fn engine(&self) -> &Engine {
        self.model.base()
    }

    /// Returns the engine that replies to `message`: the one of the lesson it is about, or the
    /// base. When that changes from the last message's, the conversation's cache is dropped
    /// and recomputed, because it contains keys and values of other weights.
    pub(crate) fn routed_engine(&mut self, message: &str) -> anyhow::Result<Arc<Engine>> {
        let (route, engine) = self.model.engine_for(message)?;
        if let Some(lesson) = route {
            eprintln!("[lesson {lesson}]");
        }
        if route != self.route {
            self.drop_cache();
            self.route = route;
        }
        Ok(engine)
    }

    /// Keeps the conversation and drops its cache, so the next message computes it again.
    fn drop_cache(&mut self) {
        let chat = std::mem::replace(&mut self.chat, Chat::from_parts(None, Vec::new(), None));
        let (system, messages, _) = chat.into_parts();
        self.chat = Chat::from_parts(system, messages, None);
    }

    /// Starts `lesson` in the background on the model tag this chat runs.
    pub(crate) fn learn(&mut self, lesson: Lesson) -> anyhow::Result<()> {
        let reference = self.engine().reference().clone();
        if reference.tag().is_none() {
            anyhow::bail!(
                "this chat runs `{reference}` by digest, and learning moves a tag; start the chat \
                 with a tagged model such as `strata run smollm2`"
            );
        }
        if let Err(error) = self.memory.remember(&lesson) {
            eprintln!("strata: warning: the lesson is not in the memory: {error:#}");
        }
        let (store, options) = (self.store.clone(), self.learn_options.clone());
        self.lessons.start(store, reference, lesson, options);
        Ok(())
    }

    /// Reports lessons that finished, then follows the model's tag to a new version.
    pub(crate) fn collect_lessons(&mut self) -> anyhow::Result<()> {
        for finished in self.lessons.finished() {
            self.report(&finished);
        }
        self.follow_tag()
    }

    /// Waits for the lessons still running, so leaving the chat does not lose them.
    pub(crate) fn finish_lessons(&mut self) {
        let running = self.lessons.running();
        if running == 0 {
            return;
        }
        eprintln!("waiting for {} to finish…", plural(running, "lesson"));
        for finished in self.lessons.wait() {
            self.report(&finished);
        }
    }

    /// Reports a finished lesson and, when it made a version, records that in the memory.
    fn report(&mut self, finished: &Finished) {
        report_lesson(finished);
        let committed = finished
            .result
            .as_ref()
            .ok()
            .and_then(|o| o.committed.as_ref());
        if let Some(descriptor) = committed
            && let Err(error) = self
                .memory
                .consolidated(&finished.lesson, &descriptor.digest)
        {
            eprintln!("strata: warning: cannot record the new version in the memory: {error:#}");
        }
    }

    /// Switches to the version the model's tag names now, when a lesson (here or in another
    /// process) or a rollback moved it. The conversation stays; its cache is recomputed on the
    /// next message, because the cached keys and values belong to the old weights.
    pub(crate) fn follow_tag(&mut self) -> anyhow::Result<()> {
        let reference = self.engine().reference().clone();
        if reference.tag().is_none() {
            return Ok(());
        }
        let current = self.store.resolve(&reference)?.digest;
        if &current == self.engine().manifest_digest() {
            return Ok(());
        }
        let loaded = LoadedModel::open(&self.store, &reference)
            .with_context(|| format!("cannot load the new version of `{reference}`"))?;
        let mut engine = Engine::load(&loaded)?;
        engine.model_mut().set_kv_precision(self.kv_dtype);
        self.model = RoutedModel::around(&self.store, engine)?;
        self.drop_cache();
        self.route = None;
        eprintln!(
            "switched to `{reference}` at {}; the conversation's cache is recomputed on the next message",
            current.short()
        );
        Ok(())
    }

    /// Saves the chat as `name`, whatever `name` pointed to, as `/save NAME` and `--save` do.
    pub(crate) fn save_as(&mut self, name: &SessionName) -> anyhow::Result<()> {
        let ours = self.origin.as_ref().map(|origin| origin.digest().clone());
        let replaced = self.save_with(name, Replace::Any)?;
        let replaced = replaced.filter(|replaced| Some(replaced) != ours.as_ref());
        if let Some(replaced) = replaced {
            eprintln!(
                "note: replaced the earlier session `{name}` ({}); `strata gc` removes it",
                replaced.short()
            );
        }
        Ok(())
    }

    /// Saves the chat back under its attached name, unless another process saved that name
    /// meanwhile: then under the first free name from `NAME-2` to `NAME-99`, so nothing is lost.
    pub(crate) fn save_attached(&mut self) -> anyhow::Result<()> {
        let Some((name, state)) = self.attached.clone() else {
            anyhow::bail!("this session has no name yet; use /save NAME");
        };
        match self.save_with(&name, Replace::IfCurrent(state)) {
            Ok(_) => Ok(()),
            Err(error) if is_moved(&error) => {
                for number in 2..100 {
                    let other = SessionName::parse(&format!("{name}-{number}"))?;
                    match self.save_with(&other, Replace::IfCurrent(None)) {
                        Ok(_) => {
                            eprintln!(
                                "note: `{name}` was saved by another process meanwhile, so this \
                                 chat was saved as `{other}`"
                            );
                            return Ok(());
                        }
                        Err(error) if is_moved(&error) => continue,
                        Err(error) => return Err(error),
                    }
                }
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    /// Saves under `name` with the `replace` rule, attaches the chat to it and returns the
    /// snapshot the name pointed to before.
    fn save_with(
        &mut self,
        name: &SessionName,
        replace: Replace,
    ) -> anyhow::Result<Option<Digest>> {
        let options = SaveOptions {
            dtype: self.kv_dtype,
            parent: self.origin.as_ref(),
            replace,
            ..SaveOptions::default()
        };
        // A cache computed with a lesson's adapters must not be stored as the base weights'
        // cache, so a routed chat is saved without it and recomputed when restored.
        let unrouted;
        let chat = match self.route {
            None => &self.chat,
            Some(_) => {
                let messages = self.chat.messages().to_vec();
                let system = self.chat.system().map(str::to_owned);
                unrouted = Chat::from_parts(system, messages, None);
                &unrouted
            }
        };
        let engine = self.engine();
        let saved = strata_sessions::save(&self.store, name, engine, chat, &self.params, &options)
            .with_context(|| format!("cannot save session `{name}`"))?;
        let snapshot = &saved.snapshot;
        eprintln!(
            "saved session `{name}` ({} tokens; {} encoded in {}, {} reused)",
            snapshot.config.cached_tokens,
            human_bytes(saved.bytes_written),
            plural(saved.blocks_written, "block"),
            saved.blocks_reused,
        );
        let digest = snapshot.digest().clone();
        self.origin = Some(saved.snapshot);
        self.attached = Some((name.clone(), Some(digest)));
        Ok(saved.replaced.map(|descriptor| descriptor.digest))
    }

    /// Replaces the chat and its sampling settings with the session `name`; on an error the
    /// chat stays as it was. With `attach`, a later plain `/save` writes back to `name`.
    pub(crate) fn load(&mut self, name: &SessionName, attach: bool) -> anyhow::Result<()> {
        let snapshot = Snapshot::open(&self.store, name)?;
        let params = snapshot.config.sampling.clone();
        self.restore(snapshot, name, attach)?;
        self.params = params;
        Ok(())
    }

    /// Replaces the chat with `snapshot`, the session `name`; sampling settings stay.
    pub(crate) fn restore(
        &mut self,
        snapshot: Snapshot,
        name: &SessionName,
        attach: bool,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let restored = strata_sessions::restore(&self.store, &snapshot, self.engine())
            .with_context(|| format!("cannot restore session `{name}`"))?;
        self.route = None;
        if let Some(recomputed) = &restored.recomputed {
            eprintln!("note: {recomputed}");
        }
        tracing::info!(session = %name, elapsed = ?started.elapsed(), "restored session");
        let digest = snapshot.digest().clone();
        self.chat = restored.chat;
        self.origin = Some(snapshot);
        self.attached = attach.then(|| (name.clone(), Some(digest)));
        Ok(())
    }
}

/// Loads the model `reference`, pulling it first when it is a known default the store lacks.
pub(crate) fn load_engine(
    home: &Path,
    store: &Store,
    reference: &Reference,
) -> anyhow::Result<Engine> {
    if let Some(known) = pull::known_and_missing(store, reference) {
        eprintln!("{reference} is not in the store yet; pulling it");
        pull::pull(home, known)?;
    }
    let started = Instant::now();
    let loaded = LoadedModel::open(store, reference)
        .with_context(|| format!("cannot load `{reference}`; see `strata list`"))?;
    let engine = Engine::load(&loaded).with_context(|| format!("cannot start `{reference}`"))?;
    tracing::info!(model = %reference, elapsed = ?started.elapsed(), "model loaded");
    Ok(engine)
}

fn report_lesson(finished: &Finished) {
    match &finished.result {
        Ok(outcome) => {
            let gate = &outcome.gate;
            match &outcome.committed {
                Some(descriptor) => eprintln!(
                    "\n[learning] learned `{}` in {:.0} s: new version {} (perplexity {:+.2}%)",
                    finished.summary,
                    outcome.seconds,
                    descriptor.digest.short(),
                    gate.perplexity_change() * 100.0
                ),
                None => {
                    eprintln!(
                        "\n[learning] not learned `{}`: the gate failed",
                        finished.summary
                    );
                    for failure in &gate.failures {
                        eprintln!("    {failure}");
                    }
                }
            }
        }
        Err(error) => eprintln!("\n[learning] `{}` failed: {error}", finished.summary),
    }
}

/// True when `error` comes from a save whose name another process moved.
fn is_moved(error: &anyhow::Error) -> bool {
    let moved = |cause: &SessionError| matches!(cause, SessionError::Moved { .. });
    error
        .chain()
        .filter_map(|c| c.downcast_ref::<SessionError>())
        .any(moved)
}
