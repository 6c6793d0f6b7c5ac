//! `strata serve`: makes the default model ready, then runs the HTTP server until Ctrl-C.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use strata_server::scheduler::SchedulerLimits;
use strata_server::{ServerConfig, openai::request::RequestLimits};
use strata_store::Reference;

use crate::cli::ServeArgs;
use crate::commands::pull;
use crate::home;

/// Runs `strata serve`.
pub(crate) fn run(home: &Path, args: &ServeArgs) -> anyhow::Result<()> {
    if args.slots == 0 {
        anyhow::bail!("--slots 0 would serve nothing; give at least 1");
    }
    let store = home::open_store(home)?;
    let reference = Reference::parse(&args.model)?;
    if let Some(model) = pull::known_and_missing(&store, &reference) {
        eprintln!("{reference} is not in the store yet; pulling it first");
        pull::pull(home, model)?;
    }
    store.resolve(&reference).with_context(|| {
        format!("`{reference}` is not in the store; `strata list` shows the models it has")
    })?;

    let config = ServerConfig {
        address: SocketAddr::new(args.host, args.port),
        api_key: args.api_key.clone().filter(|key| !key.is_empty()),
        scheduler: SchedulerLimits {
            slots: args.slots,
            queue: args.queue,
            ..SchedulerLimits::default()
        },
        requests: RequestLimits::default(),
        max_body_bytes: args.max_body,
        shutdown_grace: Duration::from_secs(args.grace),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(strata_server::serve(store, config, |address| {
        eprintln!(
            "strata is serving {reference} and the store at http://{address}/v1 (Ctrl-C stops)"
        );
    }))?;
    Ok(())
}
