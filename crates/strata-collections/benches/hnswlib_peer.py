"""hnswlib on the same data, split and settings as the `ann` bench, for comparison.

Run it with the same `.npy` file and `STRATA_ANN_*` variables as `cargo bench --bench ann`:

    STRATA_GLOVE=glove_6B_50d_emb.npy python3 hnswlib_peer.py

Every 400th row from row 7 is a query and every other row is inserted under its position
among the inserted rows; `STRATA_ANN_POINTS` keeps only the first that many inserted rows, as
in the Rust bench. The space is cosine. The index is built with `STRATA_ANN_BUILD_THREADS`
threads, the CPUs this process may use by default, which is what `Collections::upsert` uses.
Queries run as one `knn_query` call per pass, so the loop over queries is hnswlib's own C++
loop, on one thread and then on two. The exact top-10 is computed with NumPy (cosine, brute
force). Needs `hnswlib` and `numpy`.
"""

import importlib.metadata
import os
import sys
import time

import hnswlib
import numpy as np

QUERY_OFFSET = 7
QUERY_STRIDE = 400
TOP_K = 10
EF_SEARCH = (32, 64, 128)


def env_count(name, default):
    """Read a non-negative count from the environment."""
    text = os.environ.get(name)
    return default if text is None else int(text)


def read_settings():
    """Parse `STRATA_ANN_SETTINGS`, pairs of `M/ef_construction` separated by commas."""
    text = os.environ.get("STRATA_ANN_SETTINGS", "16/128,32/200")
    pairs = [pair.strip().split("/") for pair in text.split(",")]
    return [(int(m), int(ef_construction)) for m, ef_construction in pairs]


def load_average():
    with open("/proc/loadavg") as file:
        return " ".join(file.read().split()[:3])


def split(vectors, query_count):
    """Return (inserted rows, held-out query rows) exactly as the Rust bench draws them."""
    rows = np.arange(len(vectors))
    is_query = (rows % QUERY_STRIDE == QUERY_OFFSET) & (rows // QUERY_STRIDE < query_count)
    return np.ascontiguousarray(vectors[~is_query]), np.ascontiguousarray(vectors[is_query])


def exact_top_k(base, queries):
    """Return the cosine top-10 row numbers of every query, by brute force in NumPy."""
    unit_base = base / np.linalg.norm(base, axis=1, keepdims=True)
    unit_queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    truth = []
    for start in range(0, len(queries), 100):
        scores = unit_queries[start : start + 100] @ unit_base.T
        top = np.argpartition(-scores, TOP_K, axis=1)[:, :TOP_K]
        truth.extend(set(row) for row in top)
    return truth


def recall(labels, truth):
    """Return the mean share of each query's exact top-10 found in its labels."""
    hits = [len(truth_set.intersection(found.tolist())) for found, truth_set in zip(labels, truth)]
    return sum(hits) / (TOP_K * len(truth))


def build(base, m, ef_construction, threads):
    """Build an index on `threads` threads and return it with the seconds it took."""
    index = hnswlib.Index(space="cosine", dim=base.shape[1])
    index.set_num_threads(threads)
    started = time.perf_counter()
    index.init_index(max_elements=len(base), ef_construction=ef_construction, M=m)
    index.add_items(base, np.arange(len(base)), num_threads=threads)
    return index, time.perf_counter() - started


def timed_pass(index, queries, truth, threads):
    """Search every query once and return (recall@10, queries/s)."""
    started = time.perf_counter()
    labels, _ = index.knn_query(queries, k=TOP_K, num_threads=threads)
    seconds = time.perf_counter() - started
    return recall(labels, truth), len(queries) / seconds


def median_pass(index, queries, truth, threads, repeats):
    """Return the pass with the median queries/s out of `repeats`."""
    passes = sorted((timed_pass(index, queries, truth, threads) for _ in range(repeats)), key=lambda p: p[1])
    return passes[len(passes) // 2]


def measure(index, queries, truth, m, ef_construction, repeats):
    """Print recall@10 and median queries/s on one and two threads for every ef."""
    print("| M | ef_c | ef | hnswlib recall@10 | hnswlib q/s 1 thread | hnswlib q/s 2 threads |")
    print("|---:|---:|---:|---:|---:|---:|")
    for ef in EF_SEARCH:
        index.set_ef(ef)
        recall_1, qps_1 = median_pass(index, queries, truth, 1, repeats)
        _, qps_2 = median_pass(index, queries, truth, 2, repeats)
        print(f"| {m} | {ef_construction} | {ef} | {recall_1:.4f} | {qps_1:.0f} | {qps_2:.0f} |")


def main():
    path = os.environ.get("STRATA_GLOVE")
    if path is None:
        print("STRATA_GLOVE is not set, so the hnswlib peer is skipped; set it to a .npy file")
        return 0
    query_count = env_count("STRATA_ANN_QUERIES", 1000)
    repeats = max(env_count("STRATA_ANN_REPEATS", 3), 1)
    points = env_count("STRATA_ANN_POINTS", None)
    build_threads = env_count("STRATA_ANN_BUILD_THREADS", len(os.sched_getaffinity(0)))
    print(f"hnswlib {importlib.metadata.version('hnswlib')}, numpy {np.__version__}")
    print(f"load average at the start: {load_average()}")

    vectors = np.load(path).astype(np.float32)
    base, queries = split(vectors, query_count)
    base = base[:points]
    print(f"data: {len(vectors)} rows of dim {vectors.shape[1]}; {len(base)} inserted, {len(queries)} queries; space cosine")
    started = time.perf_counter()
    truth = exact_top_k(base, queries)
    print(f"exact ground truth (numpy): {time.perf_counter() - started:.1f} s")

    for m, ef_construction in read_settings():
        index, build_s = build(base, m, ef_construction, build_threads)
        print(
            f"\nM={m} ef_construction={ef_construction}: hnswlib build {build_s:.1f} s on {build_threads} threads, "
            f"load average {load_average()}"
        )
        measure(index, queries, truth, m, ef_construction, repeats)
    print(f"load average at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
