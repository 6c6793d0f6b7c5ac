//! Learning through the API: a lesson becomes a job, trained on the server's learning thread
//! one after another (lessons on one lineage queue anyway), and polled for progress.

use std::collections::HashMap;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use strata_learning::learn::{Event as LearnEvent, LearnOptions, Learner};
use strata_learning::lesson::{self, Fact, Lesson, LessonSource};
use strata_learning::training::Progress;
use strata_store::{Reference, Store};

use crate::error::{ApiError, ApiResult};
use crate::http::{AppState, JsonBody, RequestId};
use crate::models::parse_model;

/// The state of a learning job.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for the learning thread or the lineage's lock.
    Queued,
    /// Training or checking the gate.
    Running,
    /// The gate passed and the tag moved to the new version.
    Committed,
    /// The gate failed; nothing was committed.
    Rejected,
    /// The lesson could not run.
    Failed,
}

/// A job's progress and result.
#[derive(Clone, Debug, Serialize)]
pub struct JobStatus {
    /// `job-…` id.
    pub id: String,
    /// The model tag the lesson teaches.
    pub model: String,
    /// The lesson's summary line.
    pub lesson: String,
    /// The job's state.
    pub state: JobState,
    /// The current step, such as `training step 8/24, loss 1.234`.
    pub stage: String,
    /// The committed version's digest.
    pub version: Option<String>,
    /// Failed gate checks, or the error.
    pub failures: Vec<String>,
    /// Wall time of the lesson.
    pub seconds: Option<f64>,
}

struct Task {
    id: String,
    reference: Reference,
    lesson: Lesson,
}

/// Jobs by id and the queue of the learning thread.
#[derive(Debug)]
pub struct Jobs {
    statuses: Arc<Mutex<HashMap<String, JobStatus>>>,
    queue: Mutex<Option<Sender<Task>>>,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task").field("id", &self.id).finish()
    }
}

impl Jobs {
    /// Starts the learning thread over `store`.
    pub fn start(store: Store) -> Jobs {
        let statuses = Arc::new(Mutex::new(HashMap::new()));
        let (sender, receiver) = mpsc::channel::<Task>();
        let thread_statuses = statuses.clone();
        std::thread::spawn(move || {
            let mut learner = Learner::new(store);
            for task in receiver {
                run_task(&mut learner, &task, &thread_statuses);
            }
        });
        Jobs {
            statuses,
            queue: Mutex::new(Some(sender)),
        }
    }

    fn enqueue(&self, task: Task) -> Result<JobStatus, ApiError> {
        let status = JobStatus {
            id: task.id.clone(),
            model: task.reference.to_string(),
            lesson: task.lesson.summary(),
            state: JobState::Queued,
            stage: "queued".to_owned(),
            version: None,
            failures: Vec::new(),
            seconds: None,
        };
        lock(&self.statuses).insert(task.id.clone(), status.clone());
        let queue = self
            .queue
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let sent = queue
            .as_ref()
            .is_some_and(|sender| sender.send(task).is_ok());
        match sent {
            true => Ok(status),
            false => Err(ApiError::with_status(
                StatusCode::SERVICE_UNAVAILABLE,
                "the learning thread has stopped",
            )),
        }
    }

    fn status(&self, id: &str) -> Option<JobStatus> {
        lock(&self.statuses).get(id).cloned()
    }
}

fn lock(
    statuses: &Mutex<HashMap<String, JobStatus>>,
) -> std::sync::MutexGuard<'_, HashMap<String, JobStatus>> {
    statuses.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn run_task(learner: &mut Learner, task: &Task, statuses: &Mutex<HashMap<String, JobStatus>>) {
    let update = |change: &dyn Fn(&mut JobStatus)| {
        if let Some(status) = lock(statuses).get_mut(&task.id) {
            change(status);
        }
    };
    let mut on_event = |event: LearnEvent| {
        let stage = match event {
            LearnEvent::Queued => "waiting for the lineage's lock".to_owned(),
            LearnEvent::Started { parent } => format!("training on {}", parent.short()),
            LearnEvent::Baseline => "measuring the parent".to_owned(),
            LearnEvent::Training(Progress::Step {
                step,
                max_steps,
                loss,
            }) => {
                format!("training step {step}/{max_steps}, loss {loss:.3}")
            }
            LearnEvent::Training(_) => "preparing training examples".to_owned(),
            LearnEvent::Gate => "checking the gate".to_owned(),
        };
        update(&|status| {
            status.state = JobState::Running;
            status.stage = stage.clone();
        });
    };
    let result = learner.learn(
        &task.reference,
        &task.lesson,
        &LearnOptions::default(),
        &mut on_event,
    );
    update(&|status| match &result {
        Ok(outcome) => {
            status.seconds = Some(outcome.seconds);
            status.failures = outcome.gate.failures.clone();
            match &outcome.committed {
                Some(descriptor) => {
                    status.state = JobState::Committed;
                    status.stage = "committed".to_owned();
                    status.version = Some(descriptor.digest.as_str().to_owned());
                }
                None => {
                    status.state = JobState::Rejected;
                    status.stage = "gate failed; nothing committed".to_owned();
                }
            }
        }
        Err(error) => {
            status.state = JobState::Failed;
            status.stage = "failed".to_owned();
            status.failures = vec![error.to_string()];
        }
    });
    tracing::info!(job = %task.id, ok = result.is_ok(), "lesson finished");
}

/// Body of `POST /api/models/{name}/learn`: exactly one of the three lesson sources.
#[derive(Debug, Deserialize)]
pub struct LearnRequest {
    /// Facts: `question`, `answer`, optional `statement` and `paraphrases`.
    #[serde(default)]
    pub facts: Vec<Fact>,
    /// One pair, `QUESTION => ANSWER`.
    pub teach: Option<String>,
    /// A live session id: each user message and the reply that followed become a pair.
    pub session: Option<String>,
}

/// `POST /api/models/{name}/learn`: queues a lesson and returns its job (202).
pub async fn learn(
    State(app): AppState,
    Extension(_id): Extension<RequestId>,
    Path(model): Path<String>,
    JsonBody(body): JsonBody<LearnRequest>,
) -> ApiResult<impl IntoResponse> {
    let reference = parse_model(&model)?;
    if reference.tag().is_none() {
        return Err(ApiError::bad_request(format!(
            "`{model}` names a version by digest; learning moves a tag, so name the model as NAME or NAME:TAG"
        )));
    }
    app.store
        .resolve(&reference)
        .map_err(|_| ApiError::not_found(format!("model `{model}` is not in the store")))?;

    let sources = usize::from(!body.facts.is_empty())
        + usize::from(body.teach.is_some())
        + usize::from(body.session.is_some());
    if sources != 1 {
        return Err(ApiError::bad_request(
            "give exactly one of `facts` (a non-empty list), `teach` or `session`",
        ));
    }
    let param = if body.teach.is_some() {
        "teach"
    } else if body.session.is_some() {
        "session"
    } else {
        "facts"
    };
    let facts = if let Some(teach) = &body.teach {
        vec![
            lesson::parse_teach(teach)
                .map_err(|error| ApiError::invalid("teach", error.to_string()))?,
        ]
    } else if let Some(session_id) = &body.session {
        session_pairs(&app, session_id).await?
    } else {
        body.facts
    };
    let lesson = Lesson::new(facts, LessonSource::Api)
        .map_err(|error| ApiError::invalid(param, error.to_string()))?;
    let task = Task {
        id: format!("job-{:016x}", rand::random::<u64>()),
        reference,
        lesson,
    };
    let status = app.jobs.enqueue(task)?;
    Ok((StatusCode::ACCEPTED, Json(status)))
}

async fn session_pairs(app: &crate::http::App, session_id: &str) -> Result<Vec<Fact>, ApiError> {
    let session = super::sessions::messages(app, session_id).await?;
    let pairs = lesson::pairs_from_messages(&session);
    if pairs.is_empty() {
        return Err(ApiError::invalid(
            "session",
            format!("session `{session_id}` has no user message with an answer to learn"),
        ));
    }
    Ok(pairs)
}

/// `GET /api/jobs/{id}`.
pub async fn job(State(app): AppState, Path(job_id): Path<String>) -> ApiResult<Json<Value>> {
    let valid = job_id
        .strip_prefix("job-")
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if !valid {
        return Err(ApiError::bad_request(format!(
            "invalid job id `{job_id}`: expected `job-` and 16 hex digits"
        )));
    }
    let status = app
        .jobs
        .status(&job_id)
        .ok_or_else(|| ApiError::not_found(format!("no job `{job_id}`")))?;
    Ok(Json(json!(status)))
}
