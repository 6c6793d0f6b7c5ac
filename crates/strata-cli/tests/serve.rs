//! `strata serve` against real clients on loopback: the official `openai` package (streaming,
//! stop strings, usage, split characters, 16 concurrent clients, snapshot forks), curl on the
//! native endpoints, dropped connections, template errors, limits, the API key and shutdown.
//! Each test starts its own server on a free port and stops it with SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    home_with_model, import_minilm, real_gguf, real_minilm, stderr, strata, strata_command,
    strata_ok,
};
use serde_json::{Value, json};

/// A `strata serve` process and the log lines it wrote.
struct Server {
    child: Child,
    address: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `strata serve --port 0 EXTRA…` on `home` and waits until it listens.
    fn start(home: &Path, extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--port", "0"];
        args.extend(extra);
        let mut child = strata_command(home, &args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("strata serve starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let address = loop {
            let line = lines
                .next()
                .expect("strata serve printed its address")
                .unwrap();
            log.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(rest) = line.split("http://").nth(1) {
                let address = rest.split('/').next().unwrap();
                break address.parse().expect("a socket address");
            }
        };
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Server {
            child,
            address,
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for the process; returns whether it exited cleanly.
    fn stop(mut self) -> bool {
        terminate(&self.child);
        self.child.wait().unwrap().success()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            terminate(&self.child);
            let _ = self.child.wait();
        }
    }
}

fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

/// Sends a request with curl and returns the status and the parsed body.
fn curl(method: &str, url: &str, body: Option<Value>, extra: &[&str]) -> (u16, Value) {
    let mut command = Command::new("curl");
    command
        .args(["-sS", "-X", method, "-w", "\n%{http_code}", url])
        .args(extra);
    if let Some(body) = body {
        command
            .args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(body.to_string());
    }
    let output = command.output().expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').expect("curl printed the status");
    let body = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()))
    };
    (status.trim().parse().unwrap(), body)
}

fn chat_body(content: &str, max_tokens: u32) -> Value {
    json!({
        "model": "smollm2",
        "messages": [{"role": "user", "content": content}],
        "temperature": 0,
        "max_tokens": max_tokens,
    })
}

#[test]
fn openai_package_streams_stops_counts_and_forks() {
    let Some(gguf) = real_gguf() else { return };
    let Some(python) = std::env::var_os("STRATA_TEST_PYTHON") else {
        eprintln!("skipped: set STRATA_TEST_PYTHON to a python with the openai package");
        return;
    };
    let home = home_with_model(&gguf);
    strata_ok(
        home.path(),
        &[
            "run",
            "smollm2",
            "--save",
            "secret-notes",
            "Remember this: the secret word is pineapple.",
        ],
    );
    let server = Server::start(home.path(), &[]);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve/openai_client.py");
    let output = Command::new(python)
        .arg(script)
        .arg(server.url("/v1"))
        .arg("secret-notes")
        .output()
        .expect("python runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}\n{}\nserver log:\n{}",
        stderr(&output),
        server.log()
    );
    assert!(
        report.contains("all openai client checks passed"),
        "{report}"
    );

    let log = server.log();
    assert!(
        log.contains("path=\"/v1/chat/completions\" status=200"),
        "{log}"
    );
    assert!(log.contains("completion_tokens="), "{log}");
    assert!(server.stop(), "the server did not exit cleanly");
}

#[test]
fn native_endpoints_serve_sessions_snapshots_versions_and_learning() {
    let Some(gguf) = real_gguf() else { return };
    let Some(minilm) = real_minilm() else { return };
    let home = home_with_model(&gguf);
    import_minilm(home.path(), &minilm);
    let server = Server::start(home.path(), &[]);

    let (status, session) = curl(
        "POST",
        &server.url("/api/sessions"),
        Some(json!({"model": "smollm2", "system": "You are a helpful assistant."})),
        &[],
    );
    assert_eq!(status, 201, "{session}");
    let id = session["id"].as_str().unwrap().to_owned();

    let message = json!({"content": "Remember this: the secret word is pineapple.", "temperature": 0, "max_tokens": 40});
    let (status, reply) = curl(
        "POST",
        &server.url(&format!("/api/sessions/{id}/messages")),
        Some(message),
        &[],
    );
    assert_eq!(status, 200, "{reply}");
    assert!(
        reply["usage"]["completion_tokens"].as_u64().unwrap() > 0,
        "{reply}"
    );

    let question =
        json!({"content": "What is the secret word?", "temperature": 0, "max_tokens": 20});
    let (status, reply) = curl(
        "POST",
        &server.url(&format!("/api/sessions/{id}/messages")),
        Some(question),
        &[],
    );
    assert_eq!(status, 200, "{reply}");
    let cached = reply["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(
        cached > 30,
        "the second turn reused only {cached} tokens: {reply}"
    );

    let (status, shown) = curl(
        "GET",
        &server.url(&format!("/api/sessions/{id}")),
        None,
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(shown["messages"].as_array().unwrap().len(), 5, "{shown}");

    let (status, saved) = curl(
        "POST",
        &server.url(&format!("/api/sessions/{id}/save")),
        Some(json!({"name": "notes"})),
        &[],
    );
    assert_eq!(status, 201, "{saved}");
    assert!(saved["cached_tokens"].as_u64().unwrap() > 0, "{saved}");
    let listing = strata_ok(home.path(), &["session", "list"]);
    assert!(listing.contains("notes"), "{listing}");

    let (status, snapshots) = curl("GET", &server.url("/api/snapshots"), None, &[]);
    assert_eq!(status, 200);
    assert_eq!(snapshots["snapshots"][0]["name"], "notes", "{snapshots}");
    let (status, snapshot) = curl("GET", &server.url("/api/snapshots/notes"), None, &[]);
    assert_eq!(status, 200);
    assert_eq!(
        snapshot["messages"].as_array().unwrap().len(),
        4,
        "{snapshot}"
    );

    let (status, fork) = curl(
        "POST",
        &server.url("/api/snapshots/notes/fork"),
        Some(json!({})),
        &[],
    );
    assert_eq!(status, 201, "{fork}");
    let fork_id = fork["id"].as_str().unwrap().to_owned();
    assert_eq!(fork["cached_tokens"], saved["cached_tokens"], "{fork}");
    let again =
        json!({"content": "Say the secret word again.", "temperature": 0, "max_tokens": 20});
    let (status, reply) = curl(
        "POST",
        &server.url(&format!("/api/sessions/{fork_id}/messages")),
        Some(again),
        &[],
    );
    assert_eq!(status, 200, "{reply}");
    assert!(
        reply["usage"]["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap()
            >= saved["cached_tokens"].as_u64().unwrap() - 1,
        "{reply}"
    );

    // Names and ids are checked before they reach the store.
    let (status, error) = curl("GET", &server.url("/api/sessions/..%2F..%2Fetc"), None, &[]);
    assert_eq!(status, 400, "{error}");
    let (status, error) = curl("GET", &server.url("/api/snapshots/..%2Fescape"), None, &[]);
    assert_eq!(status, 400, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid"),
        "{error}"
    );
    let (status, _) = curl("GET", &server.url("/api/snapshots/missing"), None, &[]);
    assert_eq!(status, 404);

    let (status, models) = curl("GET", &server.url("/api/models"), None, &[]);
    assert_eq!(status, 200);
    let names: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|model| model["name"].as_str())
        .collect();
    assert!(names.contains(&"smollm2:latest"), "{models}");
    let (status, tagged) = curl(
        "POST",
        &server.url("/api/models/smollm2/tag"),
        Some(json!({"tag": "smollm2:pinned"})),
        &[],
    );
    assert_eq!(status, 200, "{tagged}");
    let (status, error) = curl(
        "POST",
        &server.url("/api/models/smollm2/rollback"),
        Some(json!({})),
        &[],
    );
    assert_eq!(
        status, 400,
        "a base version has nothing to roll back to: {error}"
    );

    let (status, error) = curl(
        "POST",
        &server.url("/api/models/smollm2/learn"),
        Some(json!({"teach": "no arrow"})),
        &[],
    );
    assert_eq!(status, 400, "{error}");
    let (status, job) = curl(
        "POST",
        &server.url("/api/models/smollm2/learn"),
        Some(json!({"teach": "Who invented the kivfalscope? => Greta Ulmzen"})),
        &[],
    );
    assert_eq!(status, 202, "{job}");
    let job_id = job["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(900);
    let finished = loop {
        let (status, job) = curl(
            "GET",
            &server.url(&format!("/api/jobs/{job_id}")),
            None,
            &[],
        );
        assert_eq!(status, 200, "{job}");
        let state = job["state"].as_str().unwrap().to_owned();
        if ["committed", "rejected", "failed"].contains(&state.as_str()) {
            break job;
        }
        assert!(
            Instant::now() < deadline,
            "the lesson did not finish: {job}"
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    let (status, log) = curl("GET", &server.url("/api/models/smollm2/log"), None, &[]);
    assert_eq!(status, 200);
    match finished["state"].as_str().unwrap() {
        "committed" => {
            assert_eq!(log["versions"].as_array().unwrap().len(), 2, "{log}");
            let (_, answer) = curl(
                "POST",
                &server.url("/v1/chat/completions"),
                Some(chat_body("Hi", 5)),
                &[],
            );
            let version = finished["version"].as_str().unwrap();
            let fingerprint = answer["system_fingerprint"].as_str().unwrap();
            let (_, taught) = curl(
                "POST",
                &server.url("/v1/chat/completions"),
                Some(chat_body("Who invented the kivfalscope?", 30)),
                &[],
            );
            let text = taught["choices"][0]["message"]["content"].as_str().unwrap();
            assert!(
                text.contains("Ulmzen"),
                "the lesson's route was not taken: {taught}"
            );
            assert!(
                version.contains(fingerprint.trim_start_matches("strata-")),
                "{answer} {finished}"
            );
            let (status, rolled) = curl(
                "POST",
                &server.url("/api/models/smollm2/rollback"),
                Some(json!({"version": "~1"})),
                &[],
            );
            assert_eq!(status, 200, "{rolled}");
        }
        "rejected" => {
            assert!(
                !finished["failures"].as_array().unwrap().is_empty(),
                "{finished}"
            );
            assert_eq!(log["versions"].as_array().unwrap().len(), 1, "{log}");
        }
        _ => panic!("the lesson failed: {finished}"),
    }

    let (status, _) = curl("DELETE", &server.url("/api/snapshots/notes"), None, &[]);
    assert_eq!(status, 204);
    let (status, _) = curl(
        "DELETE",
        &server.url(&format!("/api/sessions/{id}")),
        None,
        &[],
    );
    assert_eq!(status, 204);
    assert!(server.stop());
    strata_ok(home.path(), &["fsck"]);
}

/// Opens a connection, sends a chat request and returns the stream once `first` bytes of the
/// answer have arrived (0: right after sending).
fn send_and_wait(address: SocketAddr, body: &Value, first: usize) -> TcpStream {
    let mut stream = TcpStream::connect(address).unwrap();
    let body = body.to_string();
    write!(
        stream,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut received = vec![0u8; first];
    stream.read_exact(&mut received).unwrap();
    stream
}

#[test]
fn dropped_connections_free_their_slots() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_model(&gguf);
    let server = Server::start(home.path(), &[]);
    let long = |stream: bool| {
        let mut body = chat_body("Write a very long story about a dragon.", 4000);
        body["stream"] = json!(stream);
        body
    };

    // A streaming client that leaves after its first chunk, and a plain one that leaves
    // before its answer: each would take minutes to generate 4,000 tokens.
    let streaming = send_and_wait(server.address, &long(true), 200);
    drop(streaming);
    let plain = send_and_wait(server.address, &long(false), 0);
    std::thread::sleep(Duration::from_millis(500));
    drop(plain);

    let started = Instant::now();
    let (status, answer) = curl(
        "POST",
        &server.url("/v1/chat/completions"),
        Some(chat_body("What is the capital of France?", 20)),
        &[],
    );
    let waited = started.elapsed();
    assert_eq!(status, 200, "{answer}");
    assert!(
        waited < Duration::from_secs(20),
        "the next request waited {waited:?}"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    while server.log().matches("client left").count() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = server.log();
    assert_eq!(log.matches("client left").count(), 2, "{log}");
    for line in log.lines().filter(|line| line.contains("client left")) {
        let generated: usize = line
            .split("generated=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            generated < 400,
            "generation went on after the client left: {line}"
        );
    }
    assert!(!log.contains("panicked"), "{log}");
    assert!(server.stop());
}

/// Writes a copy of the real GGUF whose chat template rejects system messages and uses
/// `strftime_now` and `bos_token`.
fn gguf_with_strict_template(source: &Path, target: &Path) {
    use candle_core::quantized::gguf_file::{self, Value as GgufValue};

    let mut reader = std::fs::File::open(source).unwrap();
    let content = gguf_file::Content::read(&mut reader).unwrap();
    let template = "{%- if messages[0]['role'] == 'system' -%}\
        {{ raise_exception('Conversation roles must alternate user/assistant/user/assistant') }}\
        {%- endif -%}{{ bos_token }}<|im_start|>system\nToday is {{ strftime_now('%d %b %Y') }}.<|im_end|>\n\
        {% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}\
        {% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    let mut metadata = content.metadata.clone();
    metadata.insert(
        "tokenizer.chat_template".to_owned(),
        GgufValue::String(template.to_owned()),
    );
    let tensors: Vec<(String, candle_core::quantized::QTensor)> = content
        .tensor_infos
        .keys()
        .map(|name| {
            let tensor = content
                .tensor(&mut reader, name, &candle_core::Device::Cpu)
                .unwrap();
            (name.clone(), tensor)
        })
        .collect();
    let metadata: Vec<(&str, &GgufValue)> = metadata
        .iter()
        .map(|(key, value)| (key.as_str(), value))
        .collect();
    let tensors: Vec<(&str, &candle_core::quantized::QTensor)> = tensors
        .iter()
        .map(|(name, tensor)| (name.as_str(), tensor))
        .collect();
    let mut out = std::fs::File::create(target).unwrap();
    gguf_file::write(&mut out, &metadata, &tensors).unwrap();
}

#[test]
fn template_errors_limits_and_keys_are_client_errors() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_model(&gguf);
    let strict = home.path().join("strict.gguf");
    gguf_with_strict_template(&gguf, &strict);
    strata_ok(
        home.path(),
        &["import", strict.to_str().unwrap(), "--name", "strict"],
    );
    let server = Server::start(home.path(), &["--api-key", "sesame", "--max-body", "65536"]);
    let key = ["-H", "Authorization: Bearer sesame"];

    // J1: the template's own exception is a 400 with its text; its globals are defined.
    let mut body = chat_body("Hello", 5);
    body["model"] = json!("strict");
    let (status, answer) = curl(
        "POST",
        &server.url("/v1/chat/completions"),
        Some(body.clone()),
        &key,
    );
    assert_eq!(status, 200, "{answer}");
    body["messages"] =
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]);
    let (status, error) = curl(
        "POST",
        &server.url("/v1/chat/completions"),
        Some(body),
        &key,
    );
    assert_eq!(status, 400, "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Conversation roles must alternate"),
        "{error}"
    );
    assert_eq!(error["error"]["param"], "messages");

    // The key is checked on every route.
    let (status, error) = curl("GET", &server.url("/v1/models"), None, &[]);
    assert_eq!(status, 401, "{error}");
    let (status, _) = curl(
        "GET",
        &server.url("/api/models"),
        None,
        &["-H", "Authorization: Bearer wrong"],
    );
    assert_eq!(status, 401);
    let (status, _) = curl("GET", &server.url("/v1/models"), None, &key);
    assert_eq!(status, 200);

    // Limits: body size, message count, malformed JSON.
    let big = chat_body(&"word ".repeat(20_000), 5);
    let (status, error) = curl("POST", &server.url("/v1/chat/completions"), Some(big), &key);
    assert_eq!(status, 413, "{error}");
    assert!(error["error"]["message"].is_string(), "{error}");
    let many: Vec<Value> = (0..1100)
        .map(|_| json!({"role": "user", "content": "a"}))
        .collect();
    let (status, error) = curl(
        "POST",
        &server.url("/v1/chat/completions"),
        Some(json!({"model": "smollm2", "messages": many})),
        &key,
    );
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["param"], "messages");
    let (status, error) = curl(
        "POST",
        &server.url("/v1/chat/completions"),
        Some(json!({"model": "smollm2", "messages": "hi"})),
        &key,
    );
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["param"], "messages", "{error}");
    let (status, error) = curl(
        "POST",
        &server.url("/v1/chat/completions"),
        Some(
            json!({"model": "smollm2", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "ten"}),
        ),
        &key,
    );
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["param"], "max_tokens", "{error}");
    assert!(server.stop());

    // Any address but loopback needs a key, before anything listens.
    let output = strata(home.path(), &["serve", "--host", "0.0.0.0", "--port", "0"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--api-key"), "{}", stderr(&output));
}

#[test]
fn shutdown_ends_requests_in_flight() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_model(&gguf);
    let server = Server::start(home.path(), &["--grace", "1"]);
    let mut body = chat_body("Write a very long story about a dragon.", 4000);
    body["stream"] = json!(true);
    let mut stream = send_and_wait(server.address, &body, 200);

    let started = Instant::now();
    terminate(&server.child);
    let mut rest = String::new();
    stream.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("shutting down"), "{rest}");
    assert!(rest.contains("data: [DONE]"), "{rest}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );

    let mut server = server;
    assert!(server.child.wait().unwrap().success(), "{}", server.log());
    assert!(
        server.log().contains("strata server stopped"),
        "{}",
        server.log()
    );
    strata_ok(home.path(), &["fsck"]);
}

#[test]
fn bursts_beyond_slots_and_queue_get_503() {
    let Some(gguf) = real_gguf() else { return };
    let home = home_with_model(&gguf);
    let server = Server::start(home.path(), &["--slots", "2", "--queue", "1"]);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let url = server.url("/v1/chat/completions");
                scope.spawn(move || {
                    curl(
                        "POST",
                        &url,
                        Some(chat_body("Write a very long story about a dragon.", 300)),
                        &[],
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                let (status, body) = handle.join().unwrap();
                if status == 503 {
                    assert!(
                        body["error"]["message"].as_str().unwrap().contains("busy"),
                        "{body}"
                    );
                }
                status
            })
            .collect()
    });
    let accepted = statuses.iter().filter(|&&status| status == 200).count();
    assert_eq!(accepted, 3, "two slots and one queue place: {statuses:?}");
    assert_eq!(
        statuses.iter().filter(|&&status| status == 503).count(),
        3,
        "{statuses:?}"
    );
    assert!(server.stop());
}

#[test]
fn collections_and_embeddings_over_http() {
    let Some(gguf) = real_gguf() else { return };
    let Some(minilm) = real_minilm() else { return };
    let home = home_with_model(&gguf);
    import_minilm(home.path(), &minilm);
    let server = Server::start(home.path(), &[]);

    let (status, body) = curl(
        "POST",
        &server.url("/v1/embeddings"),
        Some(
            json!({"model": "all-minilm-l6-v2", "input": ["a cat sat on the mat", "a kitten rested on the rug", "quarterly tax filing"]}),
        ),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    let vectors: Vec<Vec<f64>> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| serde_json::from_value(item["embedding"].clone()).unwrap())
        .collect();
    assert_eq!(vectors.len(), 3);
    assert_eq!(vectors[0].len(), 384);
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    assert!(dot(&vectors[0], &vectors[1]) > dot(&vectors[0], &vectors[2]));
    assert!(
        body["usage"]["prompt_tokens"].as_u64().unwrap() > 0,
        "{body}"
    );
    let (status, body) = curl(
        "POST",
        &server.url("/v1/embeddings"),
        Some(json!({"model": "gpt-4", "input": "x"})),
        &[],
    );
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "model", "{body}");

    let (status, body) = curl(
        "POST",
        &server.url("/api/collections"),
        Some(json!({"name": "notes"})),
        &[],
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["dim"], 384);
    let points = json!({"points": [
        {"id": "bees", "text": "Honey bees turn nectar into honey in the hive.", "payload": {"shelf": "kitchen"}},
        {"id": "train", "text": "The night train reaches the coast by morning.", "payload": {"shelf": "travel"}},
    ]});
    let (status, body) = curl(
        "POST",
        &server.url("/api/collections/notes/points"),
        Some(points),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = curl(
        "POST",
        &server.url("/api/collections/notes/search"),
        Some(json!({"text": "a journey by rail", "top_k": 1})),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hits"][0]["id"], "train", "{body}");
    let (_, body) = curl(
        "POST",
        &server.url("/api/collections/notes/search"),
        Some(json!({"text": "a journey by rail", "filter": "shelf = \"kitchen\""})),
        &[],
    );
    assert_eq!(body["hits"][0]["id"], "bees", "{body}");

    let (status, body) = curl(
        "POST",
        &server.url("/api/collections/notes/search"),
        Some(json!({"vector": [1.0, 2.0]})),
        &[],
    );
    assert_eq!(status, 400, "{body}");
    let (status, _) = curl("GET", &server.url("/api/collections/nothing"), None, &[]);
    assert_eq!(status, 404);
    let (status, _) = curl("DELETE", &server.url("/api/collections/notes"), None, &[]);
    assert_eq!(status, 204);
    assert!(server.stop());
}

/// Returns the base64 of a copy of `photo` scaled to 120 pixels wide, small enough to pass to
/// curl as one argument.
fn small_photo_base64(photo: &Path, scratch: &Path) -> String {
    let small = scratch.join(photo.file_name().unwrap());
    let status = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i"])
        .arg(photo)
        .args(["-vf", "scale=120:-1"])
        .arg(&small)
        .status()
        .expect("ffmpeg runs");
    assert!(
        status.success(),
        "ffmpeg could not scale {}",
        photo.display()
    );
    let output = Command::new("base64")
        .arg("-w0")
        .arg(&small)
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn image_collection_over_http() {
    let Some(gguf) = real_gguf() else { return };
    let var = |name: &str| std::env::var_os(name).map(std::path::PathBuf::from);
    let (Some(photos), Some(wheel)) = (
        var("STRATA_TEST_IMAGES"),
        var("STRATA_TEST_EFFICIENTNET_WHEEL"),
    ) else {
        eprintln!("skipped: set STRATA_TEST_IMAGES and STRATA_TEST_EFFICIENTNET_WHEEL");
        return;
    };
    if Command::new("ffmpeg").arg("-version").output().is_err() {
        eprintln!("skipped: `ffmpeg` is not installed");
        return;
    }
    let home = home_with_model(&gguf);
    let cache = home.path().join("cache/pypi-v1");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::copy(&wheel, cache.join(wheel.file_name().unwrap())).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let cat = small_photo_base64(&photos.join("chelsea.png"), scratch.path());
    let coffee = small_photo_base64(&photos.join("coffee.png"), scratch.path());
    let server = Server::start(home.path(), &[]);

    let (status, body) = curl(
        "POST",
        &server.url("/api/collections"),
        Some(json!({"name": "pics", "embedder": "image"})),
        &[],
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["dim"], 1280, "{body}");

    let points = json!({"points": [
        {"id": "cat", "image": cat, "payload": {"room": "hall"}},
        {"id": "coffee", "image": coffee, "payload": {"room": "kitchen"}},
    ]});
    let (status, body) = curl(
        "POST",
        &server.url("/api/collections/pics/points"),
        Some(points),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["points"], 2, "{body}");

    let (status, body) = curl(
        "POST",
        &server.url("/api/collections/pics/search"),
        Some(json!({"image": cat, "top_k": 1})),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hits"][0]["id"], "cat", "{body}");

    let (status, body) = curl(
        "POST",
        &server.url("/api/collections/pics/search"),
        Some(json!({"text": "a cat"})),
        &[],
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`image`"),
        "{body}"
    );

    let (status, body) = curl(
        "POST",
        &server.url("/api/collections/pics/points"),
        Some(json!({"points": [{"id": "bad", "image": "bm90IGFuIGltYWdl"}]})),
        &[],
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "points[0]", "{body}");
    let (_, body) = curl("GET", &server.url("/api/collections/pics"), None, &[]);
    assert_eq!(body["points"], 2, "a refused point changes nothing: {body}");
    assert!(server.stop());
}
