//! `strata squash`: merge a version's adapters into its weights as a new base version.

use std::path::Path;

use crate::cli::SquashArgs;
use crate::commands::import::parse_tag_reference;
use crate::home;

/// Runs `strata squash MODEL`.
pub(crate) fn run(home: &Path, args: &SquashArgs) -> anyhow::Result<()> {
    let reference = parse_tag_reference(&args.model)?;
    let store = home::open_store(home)?;
    eprintln!("merging the adapters of {reference} into its weights");
    let (descriptor, report) =
        strata_learning::squash::squash(&store, &reference, args.heldout.as_deref())?;
    let change = report.perplexity_after / report.perplexity_before - 1.0;
    println!(
        "merged {} weights in {:.1} s; perplexity {:.3} → {:.3} ({:+.2}%); lineage facts answered {}/{} → {}/{}",
        report.merged,
        report.seconds,
        report.perplexity_before,
        report.perplexity_after,
        change * 100.0,
        report.facts_before,
        report.facts_total,
        report.facts_after,
        report.facts_total
    );
    println!("{reference} is now {}", descriptor.digest);
    Ok(())
}
