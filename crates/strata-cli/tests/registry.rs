//! Pushing and pulling through a real OCI registry: the CNCF distribution registry (Debian's
//! `docker-registry`), started by each test on a free loopback port with its own storage.

mod common;
#[path = "registry/proxy.rs"]
mod proxy;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{home_with_model, real_gguf, stderr, stdout, strata, strata_ok};
use proxy::{Fault, Proxy};

/// A running `docker-registry` and its storage directory.
struct Registry {
    child: Child,
    port: u16,
    _storage: tempfile::TempDir,
}

impl Registry {
    /// Starts the registry, or prints why not and returns `None` when it is not installed.
    fn start() -> Option<Registry> {
        if Command::new("docker-registry")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("skipped: install Debian's docker-registry to run the registry tests");
            return None;
        }
        let storage = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = storage.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry starts");
        let registry = Registry {
            child,
            port,
            _storage: storage,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(registry)
    }

    fn url(&self, path: &str) -> String {
        format!("oci://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the `N blobs uploaded` count of a push's report.
fn uploaded(report: &str) -> usize {
    report
        .split(" blobs uploaded")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no upload count in: {report}"))
}

fn answer(home: &Path, model: &str) -> String {
    strata_ok(home, &["run", model, "What is the capital of France?"])
}

#[test]
fn push_then_pull_into_empty_store() {
    let Some(gguf) = real_gguf() else { return };
    let Some(registry) = Registry::start() else {
        return;
    };
    let source = home_with_model(&gguf);
    let target = tempfile::tempdir().unwrap();
    let remote = registry.url("team/smollm2:v1");

    let first = strata(source.path(), &["push", "smollm2", &remote, "--plain-http"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(uploaded(&stderr(&first)), 275, "{}", stderr(&first));
    let again = strata(source.path(), &["push", "smollm2", &remote, "--plain-http"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        uploaded(&stderr(&again)),
        0,
        "only missing blobs cross the wire"
    );

    let pulled = strata(
        target.path(),
        &["pull", &remote, "--plain-http", "--name", "smollm2"],
    );
    assert!(pulled.status.success(), "{}", stderr(&pulled));
    let digest = stdout(&first)
        .trim()
        .trim_start_matches("sha256:")
        .to_owned();
    let listing = strata_ok(target.path(), &["list"]);
    assert!(
        listing.contains(&digest[..12]),
        "the pulled version is {listing}, pushed {digest}"
    );
    assert_eq!(
        answer(source.path(), "smollm2"),
        answer(target.path(), "smollm2")
    );
    strata_ok(target.path(), &["fsck"]);
}

#[test]
fn snapshot_pull_brings_its_model() {
    let Some(gguf) = real_gguf() else { return };
    let Some(registry) = Registry::start() else {
        return;
    };
    let source = home_with_model(&gguf);
    strata_ok(
        source.path(),
        &[
            "run",
            "smollm2",
            "--save",
            "notes",
            "Remember this: the secret word is pineapple.",
        ],
    );
    let remote = registry.url("team/notes:v1");
    let pushed = strata(
        source.path(),
        &["push", "session/notes", &remote, "--plain-http"],
    );
    assert!(pushed.status.success(), "{}", stderr(&pushed));

    // An empty store gets the snapshot and its model.
    let empty = tempfile::tempdir().unwrap();
    let pulled = strata(
        empty.path(),
        &["pull", &remote, "--plain-http", "--name", "session/notes"],
    );
    assert!(pulled.status.success(), "{}", stderr(&pulled));
    assert!(
        stderr(&pulled).contains("2 manifests"),
        "{}",
        stderr(&pulled)
    );
    let answer = strata_ok(
        empty.path(),
        &["run", "--from", "notes", "What is the secret word?"],
    );
    assert!(answer.to_lowercase().contains("pineapple"), "{answer}");

    // A store with the model's tensors fetches only the snapshot's own blobs, and the model's
    // config and manifest: an import records its time, so this store's config differs.
    let with_model = home_with_model(&gguf);
    let pulled = strata(
        with_model.path(),
        &["pull", &remote, "--plain-http", "--name", "session/notes"],
    );
    assert!(pulled.status.success(), "{}", stderr(&pulled));
    let report = stderr(&pulled);
    let fetched: usize = report
        .split(" blobs fetched")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap();
    assert!(fetched <= 3, "{report}");
    assert!(report.contains("274 already stored"), "{report}");
}

#[test]
fn bad_references_and_missing_tags_change_nothing() {
    let Some(gguf) = real_gguf() else { return };
    let Some(registry) = Registry::start() else {
        return;
    };
    let home = home_with_model(&gguf);
    let before = common::listing(home.path());

    let digest = format!("sha256:{}", "a".repeat(64));
    for bad in [
        "oci://127.0.0.1:1/../escape".to_owned(),
        format!(
            "oci://127.0.0.1:1/repo@{}",
            digest.to_uppercase().replacen("SHA256", "sha256", 1)
        ),
        "oci://127.0.0.1:1/repo@sha256:45640291".to_owned(),
        "http://127.0.0.1:1/repo".to_owned(),
    ] {
        let output = strata(home.path(), &["pull", &bad, "--plain-http"]);
        assert!(!output.status.success(), "{bad} was accepted");
        assert!(
            stderr(&output).contains("invalid registry reference"),
            "{}",
            stderr(&output)
        );
    }
    let missing = strata(
        home.path(),
        &["pull", &registry.url("nothing:here"), "--plain-http"],
    );
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("404"), "{}", stderr(&missing));
    assert_eq!(
        common::listing(home.path()),
        before,
        "a failed pull wrote something"
    );
}

#[test]
fn learned_version_pushes_only_its_new_layers() {
    let Some(gguf) = real_gguf() else { return };
    let Some(registry) = Registry::start() else {
        return;
    };
    let home = home_with_model(&gguf);
    let base = registry.url("team/smollm2:base");
    let pushed = strata(home.path(), &["push", "smollm2", &base, "--plain-http"]);
    assert!(pushed.status.success(), "{}", stderr(&pushed));

    // Loose gate thresholds: this test is about what crosses the wire, not about the gate.
    let learned = strata(
        home.path(),
        &[
            "learn",
            "smollm2",
            "--teach",
            "Who invented the kivfalscope? => Greta Ulmzen",
            "--max-perplexity-increase",
            "100",
            "--max-control-regressions",
            "20",
            "--attempts",
            "1",
        ],
    );
    assert!(learned.status.success(), "{}", stderr(&learned));
    let log = strata_ok(home.path(), &["log", "smollm2"]);
    assert!(
        log.contains("kivfalscope"),
        "the lesson was not committed: {log}"
    );

    let pushed = strata(
        home.path(),
        &[
            "push",
            "smollm2",
            &registry.url("team/smollm2:learned"),
            "--plain-http",
        ],
    );
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    // The config, the lesson's adapter pairs of 7 projections in each of the top 4 layers and
    // its keys.
    assert_eq!(
        uploaded(&stderr(&pushed)),
        1 + 4 * 7 * 2 + 1,
        "{}",
        stderr(&pushed)
    );
}

#[test]
fn skopeo_reads_pushed_artifacts_and_writes_pullable_ones() {
    let Some(gguf) = real_gguf() else { return };
    let Some(registry) = Registry::start() else {
        return;
    };
    if Command::new("skopeo").arg("--version").output().is_err() {
        eprintln!("skipped: install skopeo to run the interoperability test");
        return;
    }
    let home = home_with_model(&gguf);
    let pushed = strata(
        home.path(),
        &[
            "push",
            "smollm2",
            &registry.url("strata/smollm2:v1"),
            "--plain-http",
        ],
    );
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    let digest = stdout(&pushed).trim().to_owned();

    // skopeo reads what strata pushed, byte for byte.
    let docker_ref = |path: &str| format!("docker://127.0.0.1:{}/{path}", registry.port);
    let inspect = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &docker_ref("strata/smollm2:v1"),
        ])
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    assert_eq!(strata_store::Digest::of(&inspect.stdout).as_str(), digest);

    // strata pulls what skopeo copied from strata's own store into another repository.
    let layout = format!("oci:{}:smollm2:latest", home.path().display());
    let copy = Command::new("skopeo")
        .args([
            "copy",
            "--dest-tls-verify=false",
            &layout,
            &docker_ref("skopeo/smollm2:v2"),
        ])
        .output()
        .unwrap();
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    let target = tempfile::tempdir().unwrap();
    let pulled = strata(
        target.path(),
        &[
            "pull",
            &registry.url("skopeo/smollm2:v2"),
            "--plain-http",
            "--name",
            "smollm2",
        ],
    );
    assert!(pulled.status.success(), "{}", stderr(&pulled));
    assert_eq!(
        answer(home.path(), "smollm2"),
        answer(target.path(), "smollm2")
    );
}

#[test]
fn archives_round_trip_through_skopeo() {
    let Some(gguf) = real_gguf() else { return };
    if Command::new("skopeo").arg("--version").output().is_err() {
        eprintln!("skipped: install skopeo to run the archive test");
        return;
    }
    let home = home_with_model(&gguf);
    let scratch = tempfile::tempdir().unwrap();
    let exported = scratch.path().join("smollm2.tar");
    strata_ok(
        home.path(),
        &["export", "smollm2", exported.to_str().unwrap()],
    );

    // skopeo reads strata's archive and writes its own copy, which strata imports.
    let copied = scratch.path().join("copied.tar");
    let copy = Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci-archive:{}:smollm2:latest", exported.display()))
        .arg(format!("oci-archive:{}:smollm2:copy", copied.display()))
        .output()
        .unwrap();
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    let target = tempfile::tempdir().unwrap();
    strata_ok(
        target.path(),
        &["import", copied.to_str().unwrap(), "--name", "smollm2"],
    );
    assert_eq!(
        answer(home.path(), "smollm2"),
        answer(target.path(), "smollm2")
    );

    // A session archive keeps the session namespace to itself.
    strata_ok(
        home.path(),
        &[
            "run",
            "smollm2",
            "--save",
            "notes",
            "Remember this: the secret word is pineapple.",
        ],
    );
    let session = scratch.path().join("notes.tar");
    strata_ok(
        home.path(),
        &["export", "session/notes", session.to_str().unwrap()],
    );
    let misnamed = strata(
        target.path(),
        &["import", session.to_str().unwrap(), "--name", "notes"],
    );
    assert!(!misnamed.status.success());
    assert!(
        stderr(&misnamed).contains("session/NAME"),
        "{}",
        stderr(&misnamed)
    );
    strata_ok(
        target.path(),
        &[
            "import",
            session.to_str().unwrap(),
            "--name",
            "session/notes",
        ],
    );
    let answer = strata_ok(
        target.path(),
        &["run", "--from", "notes", "What is the secret word?"],
    );
    assert!(answer.to_lowercase().contains("pineapple"), "{answer}");

    // A damaged archive is rejected before anything is written.
    let mut bytes = std::fs::read(&exported).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    let damaged = scratch.path().join("damaged.tar");
    std::fs::write(&damaged, bytes).unwrap();
    let empty = tempfile::tempdir().unwrap();
    strata_ok(empty.path(), &["list"]);
    let before = common::listing(empty.path());
    let output = strata(
        empty.path(),
        &["import", damaged.to_str().unwrap(), "--name", "broken"],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("nothing was imported") || stderr(&output).contains("hashes to"),
        "{}",
        stderr(&output)
    );
    assert_eq!(common::listing(empty.path()), before);
}

/// Reads the `N mounted` count of a push's report.
fn mounted(report: &str) -> usize {
    report
        .split(" mounted")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no mount count in: {report}"))
}

#[test]
fn mounts_count_only_when_the_registry_answers_201() {
    let Some(gguf) = real_gguf() else { return };
    let Some(registry) = Registry::start() else {
        return;
    };
    let home = home_with_model(&gguf);
    let pushed = strata(
        home.path(),
        &[
            "push",
            "smollm2",
            &registry.url("team/a:v1"),
            "--plain-http",
        ],
    );
    assert!(pushed.status.success(), "{}", stderr(&pushed));

    // The blobs are in team/a, so team/b mounts every one and uploads nothing.
    let mounted_push = strata(
        home.path(),
        &[
            "push",
            "smollm2",
            &registry.url("team/b:v1"),
            "--plain-http",
            "--mount-from",
            "team/a",
        ],
    );
    assert!(mounted_push.status.success(), "{}", stderr(&mounted_push));
    assert_eq!(
        mounted(&stderr(&mounted_push)),
        275,
        "{}",
        stderr(&mounted_push)
    );
    assert_eq!(
        uploaded(&stderr(&mounted_push)),
        0,
        "{}",
        stderr(&mounted_push)
    );

    // team/empty lacks them: the registry responds 202 (an upload session, not a mount), so
    // every blob is uploaded, and the result pulls and answers like the source.
    let fallback = strata(
        home.path(),
        &[
            "push",
            "smollm2",
            &registry.url("team/c:v1"),
            "--plain-http",
            "--mount-from",
            "team/empty",
        ],
    );
    assert!(fallback.status.success(), "{}", stderr(&fallback));
    assert_eq!(mounted(&stderr(&fallback)), 0, "{}", stderr(&fallback));
    assert_eq!(uploaded(&stderr(&fallback)), 275, "{}", stderr(&fallback));
    let target = tempfile::tempdir().unwrap();
    let pulled = strata(
        target.path(),
        &[
            "pull",
            &registry.url("team/c:v1"),
            "--plain-http",
            "--name",
            "smollm2",
        ],
    );
    assert!(pulled.status.success(), "{}", stderr(&pulled));
    assert_eq!(
        answer(home.path(), "smollm2"),
        answer(target.path(), "smollm2")
    );
}

/// Pulls `remote` into a new store named `smollm2` and returns the store.
fn pull_into_new_store(remote: &str) -> tempfile::TempDir {
    let target = tempfile::tempdir().unwrap();
    strata_ok(
        target.path(),
        &["pull", remote, "--plain-http", "--name", "smollm2"],
    );
    target
}

#[test]
fn an_interrupted_push_resumes_where_the_registry_stopped() {
    let Some(gguf) = real_gguf() else { return };
    let Some(registry) = Registry::start() else {
        return;
    };
    let source = home_with_model(&gguf);

    let proxy = Proxy::start(registry.port, Fault::DropChunk { then_down: false });
    let through_proxy = format!("oci://127.0.0.1:{}/team/smollm2:v1", proxy.port);
    let pushed = strata(
        source.path(),
        &["push", "smollm2", &through_proxy, "--plain-http"],
    );
    let report = stderr(&pushed);
    assert!(pushed.status.success(), "{report}");
    assert_eq!(proxy.fault(), Fault::None, "the relay dropped no chunk");
    assert!(
        report.contains("1 uploads resumed where the registry had them, 0 started over"),
        "{report}"
    );

    let target = pull_into_new_store(&registry.url("team/smollm2:v1"));
    assert_eq!(
        answer(source.path(), "smollm2"),
        answer(target.path(), "smollm2")
    );
}

#[test]
fn a_push_that_gives_up_continues_in_the_next_push() {
    let Some(gguf) = real_gguf() else { return };
    let Some(registry) = Registry::start() else {
        return;
    };
    let source = home_with_model(&gguf);
    let proxy = Proxy::start(registry.port, Fault::DropChunk { then_down: true });
    let through_proxy = format!("oci://127.0.0.1:{}/team/smollm2:v1", proxy.port);

    let broken = strata(
        source.path(),
        &["push", "smollm2", &through_proxy, "--plain-http"],
    );
    assert!(
        !broken.status.success(),
        "the push went through a dead relay"
    );
    assert!(
        stderr(&broken).contains("run the same command again to continue"),
        "{}",
        stderr(&broken)
    );

    proxy.heal();
    let resumed = strata(
        source.path(),
        &["push", "smollm2", &through_proxy, "--plain-http"],
    );
    let report = stderr(&resumed);
    assert!(resumed.status.success(), "{report}");
    assert!(report.contains("1 uploads resumed"), "{report}");
    assert!(
        uploaded(&report) < 275,
        "every blob went up again: {report}"
    );

    let target = pull_into_new_store(&registry.url("team/smollm2:v1"));
    assert_eq!(
        answer(source.path(), "smollm2"),
        answer(target.path(), "smollm2")
    );
}

#[test]
fn a_broken_pull_keeps_its_bytes_and_the_next_pull_resumes() {
    let Some(gguf) = real_gguf() else { return };
    let Some(registry) = Registry::start() else {
        return;
    };
    let source = home_with_model(&gguf);
    strata_ok(
        source.path(),
        &[
            "push",
            "smollm2",
            &registry.url("team/smollm2:v1"),
            "--plain-http",
        ],
    );
    let cut = Fault::CutDownload {
        after: 5 << 20,
        then_down: false,
    };
    let proxy = Proxy::start(registry.port, cut);
    let through_proxy = format!("oci://127.0.0.1:{}/team/smollm2:v1", proxy.port);

    let once = tempfile::tempdir().unwrap();
    let pulled = strata(
        once.path(),
        &["pull", &through_proxy, "--plain-http", "--name", "smollm2"],
    );
    assert!(pulled.status.success(), "{}", stderr(&pulled));
    assert_eq!(proxy.fault(), Fault::None, "the relay cut no download");
    assert!(
        stderr(&pulled).contains("1 downloads resumed"),
        "{}",
        stderr(&pulled)
    );

    let proxy = Proxy::start(
        registry.port,
        Fault::CutDownload {
            after: 5 << 20,
            then_down: true,
        },
    );
    let through_proxy = format!("oci://127.0.0.1:{}/team/smollm2:v1", proxy.port);
    let twice = tempfile::tempdir().unwrap();
    let broken = strata(
        twice.path(),
        &["pull", &through_proxy, "--plain-http", "--name", "smollm2"],
    );
    assert!(
        !broken.status.success(),
        "the pull went through a dead relay"
    );
    assert!(
        stderr(&broken).contains("the store's tags are unchanged"),
        "{}",
        stderr(&broken)
    );
    assert!(!strata_ok(twice.path(), &["list"]).contains("smollm2"));
    strata_ok(twice.path(), &["fsck"]);

    proxy.heal();
    let resumed = strata(
        twice.path(),
        &["pull", &through_proxy, "--plain-http", "--name", "smollm2"],
    );
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(
        stderr(&resumed).contains("1 downloads resumed"),
        "{}",
        stderr(&resumed)
    );
    assert_eq!(
        answer(source.path(), "smollm2"),
        answer(once.path(), "smollm2")
    );
    assert_eq!(
        answer(source.path(), "smollm2"),
        answer(twice.path(), "smollm2")
    );
    strata_ok(twice.path(), &["fsck"]);
}

/// Pushes `gguf` to `repository` as a one-layer artifact of `layer_type`, the way Docker Model
/// Runner and ModelPack package a model, and returns its `oci://` reference.
fn push_packaged_gguf(
    registry: &Registry,
    gguf: &Path,
    repository: &str,
    config_type: &str,
    layer: (&str, Option<&str>),
) -> String {
    use strata_store::{Descriptor, Digest, Manifest, Store};

    let scratch = tempfile::tempdir().unwrap();
    let store = Store::open(scratch.path()).unwrap();
    let client =
        strata_registry::client::Client::new(&format!("127.0.0.1:{}", registry.port), true)
            .unwrap();
    let uploader = strata_registry::upload::Uploader::new(&client, repository, &store);

    let bytes = std::fs::read(gguf).unwrap();
    let gguf_digest = Digest::of(&bytes);
    let mut file = std::fs::File::open(gguf).unwrap();
    uploader
        .upload(&gguf_digest, bytes.len() as u64, &mut file)
        .unwrap();
    let config = br#"{"config":{"format":"gguf","quantization":"Q4_1"}}"#;
    let config_path = scratch.path().join("config.json");
    std::fs::write(&config_path, config).unwrap();
    let config_digest = Digest::of(config);
    uploader
        .upload(
            &config_digest,
            config.len() as u64,
            &mut std::fs::File::open(&config_path).unwrap(),
        )
        .unwrap();

    let (layer_type, file_name) = layer;
    let mut layer = Descriptor::new(layer_type, gguf_digest, bytes.len() as u64);
    if let Some(name) = file_name {
        layer
            .annotations
            .insert("org.cncf.model.filepath".to_owned(), name.to_owned());
    }
    let config = Descriptor::new(config_type, config_digest, config.len() as u64);
    let manifest = Manifest::new(config, vec![layer]).to_json_bytes();
    client
        .put_manifest(
            repository,
            "latest",
            &manifest,
            strata_store::MANIFEST_MEDIA_TYPE,
        )
        .unwrap();
    registry.url(&format!("{repository}:latest"))
}

#[test]
fn gguf_models_packaged_by_other_tools_pull_as_models() {
    let Some(gguf) = real_gguf() else { return };
    let Some(registry) = Registry::start() else {
        return;
    };
    let reference = home_with_model(&gguf);
    let expected = answer(reference.path(), "smollm2");

    let docker = push_packaged_gguf(
        &registry,
        &gguf,
        "ai/smollm2",
        "application/vnd.docker.ai.model.config.v0.1+json",
        ("application/vnd.docker.ai.gguf.v3", None),
    );
    let modelpack = push_packaged_gguf(
        &registry,
        &gguf,
        "modelpack/smollm2",
        "application/vnd.cncf.model.config.v1+json",
        (
            "application/vnd.cncf.model.weight.v1.raw",
            Some("SmolLM2-135M-Instruct.Q4_1.gguf"),
        ),
    );

    let image = push_packaged_gguf(
        &registry,
        &gguf,
        "library/image",
        "application/vnd.oci.image.config.v1+json",
        ("application/vnd.oci.image.layer.v1.tar", None),
    );
    let home = tempfile::tempdir().unwrap();
    strata_ok(home.path(), &["list"]);
    let before = common::listing(home.path());
    let refused = strata(home.path(), &["pull", &image, "--plain-http"]);
    assert!(!refused.status.success(), "a container image was pulled");
    assert!(
        stderr(&refused).contains("is not a strata model, snapshot or collection"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        common::listing(home.path()),
        before,
        "a refused pull wrote something"
    );

    for remote in [docker, modelpack] {
        let home = tempfile::tempdir().unwrap();
        let pulled = strata(
            home.path(),
            &["pull", &remote, "--plain-http", "--name", "smollm2"],
        );
        assert!(pulled.status.success(), "{remote}: {}", stderr(&pulled));
        assert!(
            stderr(&pulled).contains("is a GGUF model"),
            "{}",
            stderr(&pulled)
        );
        assert_eq!(answer(home.path(), "smollm2"), expected, "{remote}");
        let fsck = strata_ok(home.path(), &["fsck"]);
        assert!(
            !fsck.contains("leftover"),
            "the GGUF file stayed behind: {fsck}"
        );
    }
}

#[test]
fn a_collection_pushes_only_changed_segments_and_pulls_back() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let source = tempfile::tempdir().unwrap();
    strata_ok(
        source.path(),
        &[
            "collection",
            "create",
            "pts",
            "--embedder",
            "none",
            "--dim",
            "4",
        ],
    );
    let write_points = |name: &str, range: std::ops::Range<usize>, shift: f32| {
        let lines: Vec<String> = range
            .map(|i| {
                let x = i as f32;
                format!(
                    r#"{{"id": "p{i}", "vector": [{}, {}, {}, 1.0], "payload": {{"n": {i}}}}}"#,
                    (x * 0.37).sin() + shift,
                    (x * 0.11).cos(),
                    (x * 0.07).sin()
                )
            })
            .collect();
        let path = source.path().join(name);
        std::fs::write(&path, lines.join("\n")).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let all = write_points("all.jsonl", 0..5000, 0.0);
    strata_ok(source.path(), &["collection", "add", "pts", &all]);
    let remote = registry.url("team/pts:v1");
    let first = strata(
        source.path(),
        &["push", "collection/pts", &remote, "--plain-http"],
    );
    assert!(first.status.success(), "{}", stderr(&first));

    let one = write_points("one.jsonl", 7..8, 5.0);
    strata_ok(source.path(), &["collection", "add", "pts", &one]);
    let second = strata(
        source.path(),
        &["push", "collection/pts", &remote, "--plain-http"],
    );
    let report = stderr(&second);
    assert!(second.status.success(), "{report}");
    assert_eq!(
        uploaded(&report),
        3,
        "one moved point sends its segment's vectors, the index and the config: {report}"
    );
    assert!(
        report.contains("3 already there"),
        "both payload blobs and the other segment's vectors stay: {report}"
    );

    let target = tempfile::tempdir().unwrap();
    strata_ok(
        target.path(),
        &["pull", &remote, "--plain-http", "--name", "collection/pts"],
    );
    let query = [
        "collection",
        "search",
        "pts",
        "--vector",
        "[5.3, 0.9, 0.5, 1.0]",
        "--top",
        "3",
    ];
    assert_eq!(
        strata_ok(source.path(), &query),
        strata_ok(target.path(), &query)
    );
    let shown = strata_ok(target.path(), &["collection", "show", "pts"]);
    assert!(shown.contains("points    5000"), "{shown}");
}
