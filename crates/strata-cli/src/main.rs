//! The `strata` command-line interface: thin glue over the store, model and runtime crates.
//!
//! stdout carries only answers and listings; progress, logs and errors go to stderr. Exit codes
//! live in [`exit`].

mod catalog;
mod cli;
mod commands;
mod embedding;
mod exit;
mod home;
mod interrupt;
mod learning;
mod live;
mod media;
mod memory;
mod progress;
mod repl;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() {
    set_thread_count();
    let cli = Cli::parse();
    // The server logs each request at the info level, so it shows them by default.
    let serving = matches!(cli.command, Command::Serve(_));
    init_tracing(cli.verbose + u8::from(serving));
    let code = match dispatch(cli) {
        Ok(()) => exit::SUCCESS,
        Err(error) => exit::report(&error),
    };
    std::process::exit(code);
}

/// Runs one subcommand.
fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let home = home::resolve(cli.home.as_deref())?;
    match cli.command {
        Command::Pull(args) => commands::pull::run(&home, &args),
        Command::Push(args) => commands::registry::push(&home, &args),
        Command::Export(args) => commands::registry::export(&home, &args),
        Command::Import(args) => commands::import::run(&home, &args),
        Command::Run(args) => commands::run::run(&home, &args),
        Command::List => commands::list::run(&home),
        Command::Show(args) => commands::show::run(&home, &args),
        Command::Rm(args) => commands::rm::run(&home, &args),
        Command::Fsck => commands::fsck::run(&home),
        Command::Gc => commands::gc::run(&home),
        Command::Bench(args) => commands::bench::run(&home, &args),
        Command::Session(command) => commands::session::run(&home, &command),
        Command::Collection(command) => commands::collection::run(&home, &command),
        Command::Learn(args) => commands::learn::run(&home, &args),
        Command::Eval(args) => commands::eval::run(&home, &args),
        Command::Log(args) => commands::versions::log(&home, &args),
        Command::Diff(args) => commands::versions::diff(&home, &args),
        Command::Tag(args) => commands::versions::tag(&home, &args),
        Command::Rollback(args) => commands::versions::rollback(&home, &args),
        Command::Squash(args) => commands::squash::run(&home, &args),
        Command::Serve(args) => commands::serve::run(&home, &args),
    }
}

/// Sets `RAYON_NUM_THREADS` to the core count when the user has not set it.
///
/// candle 0.11 reads the thread count for every CPU matmul and, unless this variable is set,
/// parses `/proc/cpuinfo` each time; on two cores that cost about a fifth of the decode speed.
#[allow(unsafe_code)]
fn set_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    // SAFETY: this runs first in `main`, before any other thread exists, so no thread can read
    // the environment while it changes.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
}

/// Sends logs to stderr: warnings by default, more with each `-v`, or the `RUST_LOG` filter.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
