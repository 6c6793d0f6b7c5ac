//! Lessons started from the chat: each trains on its own thread while the chat goes on, and
//! the chat switches to the new version once one is committed.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use strata_learning::learn::{Event, LearnOptions, Learner, Outcome};
use strata_learning::lesson::Lesson;
use strata_learning::training::Progress;
use strata_store::{Reference, Store};

/// How often training progress is printed, in steps.
const PRINT_EVERY: usize = 4;

/// A finished lesson, as the chat thread receives it.
#[derive(Debug)]
pub(crate) struct Finished {
    /// The lesson's summary line.
    pub(crate) summary: String,
    /// The lesson itself, to record in the memory which version learned it.
    pub(crate) lesson: Lesson,
    /// The outcome, or the error that stopped the lesson.
    pub(crate) result: Result<Outcome, String>,
}

/// The lessons started from one chat.
#[derive(Debug)]
pub(crate) struct Lessons {
    sender: Sender<Finished>,
    receiver: Receiver<Finished>,
    running: usize,
    /// One learner for the chat's lessons, so the held-out figures and anchor replies are
    /// computed by the first lesson only.
    learner: Arc<Mutex<Option<Learner>>>,
}

impl Lessons {
    pub(crate) fn new() -> Lessons {
        let (sender, receiver) = mpsc::channel();
        Lessons {
            sender,
            receiver,
            running: 0,
            learner: Arc::new(Mutex::new(None)),
        }
    }

    /// Lessons started and not finished yet.
    pub(crate) fn running(&self) -> usize {
        self.running
    }

    /// Starts `lesson` on `reference` on a new thread. Lessons on one model queue behind each
    /// other, in this process and in others, because each takes the model's lesson lock.
    pub(crate) fn start(
        &mut self,
        store: Store,
        reference: Reference,
        lesson: Lesson,
        options: LearnOptions,
    ) {
        let sender = self.sender.clone();
        let learner = self.learner.clone();
        let summary = lesson.summary();
        self.running += 1;
        eprintln!("learning in the background: {summary}");
        thread::spawn(move || {
            let mut learner = learner.lock().unwrap_or_else(|poison| poison.into_inner());
            let learner = learner.get_or_insert_with(|| Learner::new(store));
            let result = learner
                .learn(&reference, &lesson, &options, &mut print_event)
                .map_err(|error| format!("{error:#}"));
            let _ = sender.send(Finished {
                summary,
                lesson,
                result,
            });
        });
    }

    /// Returns the lessons that finished since the last call, without waiting.
    pub(crate) fn finished(&mut self) -> Vec<Finished> {
        let finished: Vec<Finished> = self.receiver.try_iter().collect();
        self.running -= finished.len();
        finished
    }

    /// Waits for every running lesson to finish.
    pub(crate) fn wait(&mut self) -> Vec<Finished> {
        let mut finished = Vec::new();
        while self.running > finished.len() {
            match self.receiver.recv() {
                Ok(done) => finished.push(done),
                Err(_) => break,
            }
        }
        self.running = 0;
        finished
    }
}

fn print_event(event: Event) {
    match event {
        Event::Queued => {}
        Event::Started { .. } => eprintln!("\n[learning] started"),
        Event::Baseline => {}
        Event::Training(Progress::Step {
            step,
            max_steps,
            loss,
        }) if step % PRINT_EVERY == 0 => {
            eprintln!("\n[learning] step {step}/{max_steps}, loss {loss:.3}");
        }
        Event::Training(_) => {}
        Event::Gate => eprintln!("\n[learning] checking the gate"),
    }
}
