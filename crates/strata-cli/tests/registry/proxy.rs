//! A loopback HTTP relay in front of the test registry that breaks transfers on purpose: it
//! drops a chosen `PATCH` before the registry sees it, or cuts a blob download part way, and
//! can then refuse every connection until the test heals it.
//!
//! Each client connection carries one request: the relay reads it, sends it upstream with
//! `Connection: close`, and copies the answer back byte for byte until the registry closes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// What the relay breaks next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Nothing: every request goes through.
    None,
    /// Close the connection of the first `PATCH` that continues an upload (its
    /// `Content-Range` does not start at 0) without forwarding it.
    DropChunk { then_down: bool },
    /// Cut the first blob download larger than `after` bytes once `after` body bytes are sent.
    CutDownload { after: usize, then_down: bool },
    /// Close every connection at once.
    Down,
}

#[derive(Debug)]
struct State {
    fault: Fault,
}

/// The running relay.
#[derive(Debug)]
pub(crate) struct Proxy {
    pub(crate) port: u16,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    /// Starts relaying 127.0.0.1:PORT to the registry on `upstream`.
    pub(crate) fn start(upstream: u16, fault: Fault) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State { fault }));
        let shared = Arc::clone(&state);
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                thread::spawn(move || {
                    let _ = relay(client, upstream, &state);
                });
            }
        });
        Proxy { port, state }
    }

    /// Lets everything through from now on.
    pub(crate) fn heal(&self) {
        self.state.lock().unwrap().fault = Fault::None;
    }

    /// Returns the fault still pending, to check that it fired.
    pub(crate) fn fault(&self) -> Fault {
        self.state.lock().unwrap().fault
    }
}

/// Relays one request and its answer, breaking them as the fault says.
fn relay(client: TcpStream, upstream: u16, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let head = read_head(&mut reader)?;
    let mut body = vec![0; content_length(&head)];
    reader.read_exact(&mut body)?;
    let request_line = head.lines().next().unwrap_or_default().to_owned();
    let continues_upload = request_line.starts_with("PATCH ")
        && header(&head, "content-range").is_some_and(|range| !range.starts_with("0-"));
    let is_blob_get = request_line.starts_with("GET ") && request_line.contains("/blobs/sha256:");

    let mut cut_after = None;
    {
        let mut state = state.lock().unwrap();
        match state.fault {
            Fault::Down => return client.shutdown(Shutdown::Both),
            Fault::DropChunk { then_down } if continues_upload => {
                state.fault = if then_down { Fault::Down } else { Fault::None };
                return client.shutdown(Shutdown::Both);
            }
            Fault::CutDownload { after, .. } if is_blob_get => cut_after = Some(after),
            _ => {}
        }
    }

    let mut registry = TcpStream::connect(("127.0.0.1", upstream))?;
    registry.write_all(close_after(&head).as_bytes())?;
    registry.write_all(&body)?;
    let mut answer = Vec::new();
    registry.read_to_end(&mut answer)?;

    let mut client = client;
    let body_start = answer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map_or(answer.len(), |at| at + 4);
    if let Some(after) = cut_after
        && answer.len() - body_start > after
    {
        let mut state = state.lock().unwrap();
        if let Fault::CutDownload { then_down, .. } = state.fault {
            state.fault = if then_down { Fault::Down } else { Fault::None };
            drop(state);
            client.write_all(&answer[..body_start + after])?;
            return client.shutdown(Shutdown::Both);
        }
    }
    client.write_all(&answer)?;
    client.shutdown(Shutdown::Both)
}

/// Reads the request line and headers, up to and including the blank line.
fn read_head(reader: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push_str(&line);
        if line == "\r\n" {
            return Ok(head);
        }
    }
}

fn header<'a>(head: &'a str, wanted: &str) -> Option<&'a str> {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
        .map(|(_, value)| value.trim())
}

fn content_length(head: &str) -> usize {
    header(head, "content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// The same head with `Connection: close`, so the registry ends its answer by closing.
fn close_after(head: &str) -> String {
    let mut lines: Vec<&str> = head
        .trim_end()
        .lines()
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n"))
}
