//! A registry that answers what real registries should not: oversized manifests (R2), other
//! media types and wrong `Docker-Content-Digest` headers (R3), and layer digests that try to be
//! paths (N1). A small loopback server plays that registry and records what strata asked.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;

use strata_registry::client::{Client, MANIFEST_TYPES};
use strata_registry::{MAX_MANIFEST_BYTES, RemoteRef};
use strata_store::{Descriptor, Digest, MANIFEST_MEDIA_TYPE, Manifest, Reference, Store};

/// One canned answer.
#[derive(Clone, Debug)]
struct Answer {
    content_type: String,
    body: Vec<u8>,
    digest_header: Option<String>,
    /// Sends the body without `Content-Length`, ended by closing the connection.
    streamed: bool,
}

impl Answer {
    fn manifest(content_type: &str, body: Vec<u8>) -> Answer {
        let digest = Digest::of(&body).as_str().to_owned();
        Answer {
            content_type: content_type.to_owned(),
            body,
            digest_header: Some(digest),
            streamed: false,
        }
    }
}

/// The loopback registry: answers every request with `answer` and records request heads.
struct Hostile {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Hostile {
    fn start(answer: Answer) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&heads);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (answer, recorded) = (answer.clone(), Arc::clone(&recorded));
                thread::spawn(move || serve(stream, &answer, &recorded));
            }
        });
        Hostile { port, heads }
    }

    fn client(&self) -> Client {
        Client::new(&format!("127.0.0.1:{}", self.port), true).unwrap()
    }

    fn remote(&self, path: &str) -> RemoteRef {
        RemoteRef::parse(&format!("oci://127.0.0.1:{}/{path}", self.port)).unwrap()
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, answer: &Answer, heads: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    heads.lock().unwrap().push(head);

    let mut stream = stream;
    let mut reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nConnection: close\r\n",
        answer.content_type
    );
    if let Some(digest) = &answer.digest_header {
        reply.push_str(&format!("Docker-Content-Digest: {digest}\r\n"));
    }
    if !answer.streamed {
        reply.push_str(&format!("Content-Length: {}\r\n", answer.body.len()));
    }
    reply.push_str("\r\n");
    let _ = stream.write_all(reply.as_bytes());
    let _ = stream.write_all(&answer.body);
    let _ = stream.shutdown(Shutdown::Both);
}

fn manifest_with_layers(count: usize) -> Vec<u8> {
    let config = Descriptor::new("application/json", Digest::of(b"{}"), 2);
    let layers = (0..count)
        .map(|i| {
            let bytes = i.to_le_bytes();
            Descriptor::new("application/octet-stream", Digest::of(&bytes), 8)
        })
        .collect();
    Manifest::new(config, layers).to_json_bytes()
}

fn empty_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    (dir, store)
}

/// Lists every file under `dir` with its bytes, to show a failed pull wrote nothing.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path.clone());
                files.push((path.display().to_string(), Vec::new()));
            } else {
                files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

fn pull_error(hostile: &Hostile, store: &Store) -> String {
    let local = Reference::parse("pulled:v1").unwrap();
    let known = |_: &Manifest| Ok(());
    strata_registry::pull(
        store,
        &hostile.remote("repo:v1"),
        &local,
        &hostile.client(),
        &known,
    )
    .unwrap_err()
    .to_string()
}

#[test]
fn r3_every_manifest_request_accepts_the_four_types() {
    let body = manifest_with_layers(1);
    let hostile = Hostile::start(Answer::manifest(MANIFEST_MEDIA_TYPE, body.clone()));
    let (bytes, media_type) = hostile.client().get_manifest("repo", "v1").unwrap();
    assert_eq!(bytes, body);
    assert_eq!(media_type, MANIFEST_MEDIA_TYPE);

    let heads = hostile.heads();
    let accept = heads[0]
        .lines()
        .find_map(|line| line.strip_prefix("accept: "))
        .unwrap_or_else(|| panic!("no Accept header in {heads:?}"));
    for wanted in MANIFEST_TYPES {
        assert!(accept.contains(wanted), "Accept `{accept}` lacks {wanted}");
    }
}

#[test]
fn r3_an_index_is_read_by_its_content_type_and_refused_by_name() {
    let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let hostile = Hostile::start(Answer::manifest(
        "application/vnd.oci.image.index.v1+json",
        index.to_vec(),
    ));
    let (_dir, store) = empty_store();
    let before = snapshot(store.root());
    let error = pull_error(&hostile, &store);
    assert!(
        error.contains("is a `application/vnd.oci.image.index.v1+json`"),
        "{error}"
    );
    assert_eq!(snapshot(store.root()), before);
}

#[test]
fn r3_a_wrong_docker_content_digest_is_refused() {
    let mut answer = Answer::manifest(MANIFEST_MEDIA_TYPE, manifest_with_layers(1));
    let claimed = Digest::of(b"something else");
    answer.digest_header = Some(claimed.as_str().to_owned());
    let hostile = Hostile::start(answer);
    let error = hostile
        .client()
        .get_manifest("repo", "v1")
        .unwrap_err()
        .to_string();
    assert!(error.contains(&format!("not {claimed}")), "{error}");
}

#[test]
fn r2_an_oversized_manifest_is_refused_with_or_without_its_length() {
    let body = manifest_with_layers(32_000);
    assert!(body.len() > MAX_MANIFEST_BYTES, "{} bytes", body.len());
    for streamed in [false, true] {
        let mut answer = Answer::manifest(MANIFEST_MEDIA_TYPE, body.clone());
        answer.streamed = streamed;
        let hostile = Hostile::start(answer);
        let (_dir, store) = empty_store();
        let before = snapshot(store.root());
        let error = pull_error(&hostile, &store);
        assert!(
            error.contains(&format!("over the {MAX_MANIFEST_BYTES}-byte limit")),
            "{error}"
        );
        assert_eq!(snapshot(store.root()), before, "streamed: {streamed}");
    }
}

#[test]
fn r2_push_checks_the_manifest_size_before_sending_anything() {
    let hostile = Hostile::start(Answer::manifest(MANIFEST_MEDIA_TYPE, Vec::new()));
    let (_dir, store) = empty_store();
    let body = manifest_with_layers(32_000);
    let digest = store.put_blob(&body).unwrap();
    let local = Reference::parse("big:v1").unwrap();
    store
        .set_tag(
            &local,
            &Descriptor::new(MANIFEST_MEDIA_TYPE, digest, body.len() as u64),
        )
        .unwrap();

    let error = strata_registry::push(
        &store,
        &local,
        &hostile.remote("repo:v1"),
        &hostile.client(),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains(&format!("{} bytes", body.len())), "{error}");
    assert!(
        error.contains(&format!("{MAX_MANIFEST_BYTES}-byte limit")),
        "{error}"
    );
    assert!(hostile.heads().is_empty(), "it sent {:?}", hostile.heads());
}

#[test]
fn n1_a_layer_digest_that_is_a_path_writes_nothing() {
    let escape = manifest_with_layers(1).replace_digest_of_first_layer("sha256:../../escape");
    let hostile = Hostile::start(Answer::manifest(MANIFEST_MEDIA_TYPE, escape));
    let (dir, store) = empty_store();
    let before = snapshot(dir.path());
    let error = pull_error(&hostile, &store);
    assert!(error.contains("../../escape"), "{error}");
    assert_eq!(snapshot(dir.path()), before);
    assert_eq!(
        hostile.heads().len(),
        1,
        "it asked for more than the manifest"
    );
}

/// Rewrites a serialized manifest's first layer digest.
trait ReplaceDigest {
    fn replace_digest_of_first_layer(self, digest: &str) -> Vec<u8>;
}

impl ReplaceDigest for Vec<u8> {
    fn replace_digest_of_first_layer(self, digest: &str) -> Vec<u8> {
        let mut value: serde_json::Value = serde_json::from_slice(&self).unwrap();
        value["layers"][0]["digest"] = serde_json::Value::from(digest);
        serde_json::to_vec(&value).unwrap()
    }
}
