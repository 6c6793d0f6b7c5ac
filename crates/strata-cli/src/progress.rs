//! Progress bars on stderr, hidden when stderr is not a terminal or `NO_COLOR` is set.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A byte-counting bar labelled `message`.
pub(crate) fn bytes_bar(message: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), draw_target());
    let style = ProgressStyle::with_template(
        "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    )
    .expect("progress template is valid")
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(message.to_string());
    bar
}

/// A step-counting bar labelled `message`, with room for a status after it.
pub(crate) fn steps_bar(message: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), draw_target());
    let style = ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg}")
        .expect("progress template is valid")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(message.to_string());
    bar
}

fn draw_target() -> ProgressDrawTarget {
    let quiet = std::env::var_os("NO_COLOR").is_some() || !std::io::stderr().is_terminal();
    if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    }
}
