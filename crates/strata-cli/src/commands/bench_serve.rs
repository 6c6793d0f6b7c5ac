//! `strata bench --serve URL`: load on an OpenAI-compatible server from 1, 4 and 16 concurrent
//! clients, each streaming chat requests one after another. Reports aggregate generated
//! tokens per second and the median and 99th percentile of the time to first token, so strata
//! and llama-server are measured by the same client in the same way.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::cli::BenchArgs;

/// Subjects of the prompts; client `i` asks about subject `i`, so no two clients share a
/// prefix beyond the chat template.
const SUBJECTS: [&str; 16] = [
    "a dragon",
    "a lighthouse keeper",
    "a lost robot",
    "a clockmaker",
    "a river",
    "a comet",
    "a baker",
    "an old ship",
    "a fox",
    "a mountain village",
    "a violinist",
    "a desert town",
    "a glacier",
    "a librarian",
    "a garden",
    "a train",
];

/// One request's figures.
struct Timing {
    first_token: Duration,
    tokens: usize,
}

/// One client count's figures over every run.
struct Level {
    clients: usize,
    tokens_per_second: Vec<f64>,
    first_tokens: Vec<Duration>,
}

/// Runs `strata bench --serve URL`.
pub(crate) fn run(url: &str, args: &BenchArgs) -> anyhow::Result<()> {
    let address = host_port(url)?;
    let runs = args.runs.max(1);
    // One request first, so loading the model is not timed.
    stream_chat(&address, &args.model, 0, 8).context("the warm-up request failed")?;
    let mut levels = Vec::new();
    for &clients in &args.clients {
        let mut level = Level {
            clients,
            tokens_per_second: Vec::new(),
            first_tokens: Vec::new(),
        };
        for _ in 0..runs {
            let (rate, timings) = measure(&address, &args.model, clients, args)?;
            level.tokens_per_second.push(rate);
            level
                .first_tokens
                .extend(timings.iter().map(|timing| timing.first_token));
        }
        print_level(&level);
        levels.push(level);
    }
    if let Some(path) = &args.json {
        let rows: Vec<Value> = levels.iter().map(level_json).collect();
        let document = json!({"url": url, "model": args.model, "max_tokens": args.max_tokens,
            "requests_per_client": args.requests, "runs": runs, "levels": rows});
        std::fs::write(path, serde_json::to_string_pretty(&document)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Sends `args.requests` requests from each of `clients` threads at once; returns the
/// aggregate generated tokens per second and every request's timing.
fn measure(
    address: &str,
    model: &str,
    clients: usize,
    args: &BenchArgs,
) -> anyhow::Result<(f64, Vec<Timing>)> {
    let started = Instant::now();
    let results: Vec<anyhow::Result<Vec<Timing>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|client| {
                scope.spawn(move || {
                    (0..args.requests)
                        .map(|_| stream_chat(address, model, client, args.max_tokens))
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("client thread"))
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let timings: Vec<Timing> = results
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let tokens: usize = timings.iter().map(|timing| timing.tokens).sum();
    Ok((tokens as f64 / elapsed, timings))
}

/// Sends one streaming chat request and times its first token.
fn stream_chat(
    address: &str,
    model: &str,
    client: usize,
    max_tokens: usize,
) -> anyhow::Result<Timing> {
    let subject = SUBJECTS[client % SUBJECTS.len()];
    let body = json!({
        "model": model,
        "messages": [{"role": "user", "content": format!("Write a long story about {subject}.")}],
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream": true,
        "stream_options": {"include_usage": true},
    })
    .to_string();
    let mut stream =
        TcpStream::connect(address).with_context(|| format!("cannot connect to {address}"))?;
    let started = Instant::now();
    write!(
        stream,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reader = BufReader::new(stream);
    let chunked = read_headers(&mut reader)?;
    let mut body = SseBody {
        reader,
        chunked,
        buffer: Vec::new(),
    };

    let mut first_token = None;
    let (mut pieces, mut usage_tokens) = (0, None);
    while let Some(line) = body.next_line()? {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            break;
        }
        let event: Value =
            serde_json::from_str(data).with_context(|| format!("bad event `{data}`"))?;
        if let Some(error) = event.get("error") {
            bail!("the server returned an error: {error}");
        }
        let content = event["choices"][0]["delta"]["content"]
            .as_str()
            .unwrap_or_default();
        if !content.is_empty() {
            first_token.get_or_insert_with(|| started.elapsed());
            pieces += 1;
        }
        if let Some(tokens) = event["usage"]["completion_tokens"].as_u64() {
            usage_tokens = Some(tokens as usize);
        }
    }
    Ok(Timing {
        first_token: first_token.context("the server sent no text")?,
        tokens: usage_tokens.unwrap_or(pieces),
    })
}

/// Reads the status line and headers; fails on a status other than 200. Returns whether the
/// body is chunked.
fn read_headers(reader: &mut BufReader<TcpStream>) -> anyhow::Result<bool> {
    let mut status = String::new();
    reader.read_line(&mut status)?;
    if status.split_whitespace().nth(1) != Some("200") {
        bail!("the server responded `{}`", status.trim());
    }
    let mut chunked = false;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            return Ok(chunked);
        }
        let lower = line.to_ascii_lowercase();
        chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
    }
}

/// The lines of a response body, with chunked transfer encoding removed.
struct SseBody {
    reader: BufReader<TcpStream>,
    chunked: bool,
    buffer: Vec<u8>,
}

impl SseBody {
    /// Returns the next line without its line break, or `None` at the end of the body.
    fn next_line(&mut self) -> anyhow::Result<Option<String>> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&byte| byte == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line);
                return Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Appends the next piece of the body to the buffer; false at its end.
    fn fill(&mut self) -> anyhow::Result<bool> {
        if !self.chunked {
            let mut piece = [0u8; 4096];
            let read = self.reader.read(&mut piece)?;
            self.buffer.extend_from_slice(&piece[..read]);
            return Ok(read > 0);
        }
        let mut size_line = String::new();
        if self.reader.read_line(&mut size_line)? == 0 {
            return Ok(false);
        }
        let size_text = size_line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size `{}`", size_line.trim()))?;
        if size == 0 {
            return Ok(false);
        }
        let mut chunk = vec![0u8; size + 2];
        self.reader.read_exact(&mut chunk)?;
        self.buffer.extend_from_slice(&chunk[..size]);
        Ok(true)
    }
}

/// `host:port` of an `http://` base URL.
fn host_port(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("`{url}`: give an http:// URL such as http://127.0.0.1:11435"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    Ok(if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    })
}

fn percentile(values: &[Duration], fraction: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn print_level(level: &Level) {
    println!(
        "{:>3} clients  {:>7.1} tokens/s (median of {})  first token p50 {:>7.1} ms  p99 {:>7.1} ms",
        level.clients,
        median(&level.tokens_per_second),
        level.tokens_per_second.len(),
        percentile(&level.first_tokens, 0.5).as_secs_f64() * 1e3,
        percentile(&level.first_tokens, 0.99).as_secs_f64() * 1e3,
    );
}

fn level_json(level: &Level) -> Value {
    json!({
        "clients": level.clients,
        "tokens_per_second_runs": level.tokens_per_second,
        "tokens_per_second_median": median(&level.tokens_per_second),
        "first_token_p50_ms": percentile(&level.first_tokens, 0.5).as_secs_f64() * 1e3,
        "first_token_p99_ms": percentile(&level.first_tokens, 0.99).as_secs_f64() * 1e3,
    })
}
