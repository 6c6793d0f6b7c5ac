//! Ctrl-C stops the current answer, not the program.
//!
//! While a line is being edited the terminal is in raw mode and rustyline sees Ctrl-C as a key;
//! while an answer streams, SIGINT sets a flag that the token callback checks every step.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the SIGINT handler.
pub(crate) fn install() -> anyhow::Result<()> {
    ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst))?;
    Ok(())
}

/// Clears a Ctrl-C seen before the answer started.
pub(crate) fn reset() {
    INTERRUPTED.store(false, Ordering::SeqCst);
}

/// Breaks generation when Ctrl-C was pressed.
pub(crate) fn check() -> ControlFlow<()> {
    if INTERRUPTED.swap(false, Ordering::SeqCst) {
        ControlFlow::Break(())
    } else {
        ControlFlow::Continue(())
    }
}
