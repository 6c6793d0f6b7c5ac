//! Exit codes and the one place errors are printed.

use std::io;

/// The command did what was asked.
pub(crate) const SUCCESS: i32 = 0;
/// The command failed, and stderr carries the reason.
pub(crate) const FAILURE: i32 = 1;
/// `strata fsck` found problems in the store.
pub(crate) const STORE_DAMAGED: i32 = 3;
/// Ctrl-C stopped a one-shot answer (128 + SIGINT, as shells report it).
pub(crate) const INTERRUPTED: i32 = 130;

/// An error that carries its own exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ExitError {
    pub(crate) code: i32,
    pub(crate) message: String,
}

/// Prints `error` with its cause chain on one line and returns the exit code for it.
///
/// A closed stdout (`strata list | head`) exits quietly.
pub(crate) fn report(error: &anyhow::Error) -> i32 {
    if is_broken_pipe(error) {
        return SUCCESS;
    }
    let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
    eprintln!("strata: error: {}", chain.join(": "));
    match error.downcast_ref::<ExitError>() {
        Some(exit) => exit.code,
        None => FAILURE,
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<io::Error>())
        .any(|io| io.kind() == io::ErrorKind::BrokenPipe)
}
