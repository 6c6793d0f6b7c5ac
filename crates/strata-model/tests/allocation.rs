//! Hostile headers must be rejected before memory of the declared size is allocated: the largest
//! single allocation made while importing each one stays far below what the header claims.
//!
//! A counting global allocator records, per thread, the largest allocation request, so tests
//! running in parallel do not see each other's allocations. A global allocator needs `unsafe`,
//! which is why this test file alone allows it.

#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use common::gguf::{header, put_string};
use common::{hf, listing};
use strata_model::import;
use strata_store::{Reference, Store};
use tempfile::TempDir;

struct PeakAllocator;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the thread-local counter is
// const-initialized and has no destructor, so touching it never allocates.
unsafe impl GlobalAlloc for PeakAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn record(size: usize) {
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

#[global_allocator]
static ALLOCATOR: PeakAllocator = PeakAllocator;

/// Largest allocation a rejected import may make: enough for paths, messages and the small JSON
/// files of a Hugging Face directory, far below any size the hostile headers declare.
const ALLOWED_BYTES: usize = 1 << 20;

/// Runs `import` on this thread and returns its error and the largest allocation it made.
fn largest_allocation(import: impl FnOnce() -> strata_model::Result<()>) -> (String, usize) {
    LARGEST.with(|largest| largest.set(0));
    let error = import().expect_err("the hostile input imported");
    let message = error.to_string();
    (message, LARGEST.with(Cell::get))
}

fn import_gguf_bytes(bytes: &[u8]) -> (String, usize) {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("bad.gguf");
    std::fs::write(&path, bytes).unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let before = listing(store.root());
    let reference = Reference::parse("bad").unwrap();
    let outcome = largest_allocation(|| {
        import::import_gguf(&store, &path, &reference, &mut |_, _| {}).map(drop)
    });
    assert_eq!(
        listing(store.root()),
        before,
        "a failed import changed the store"
    );
    outcome
}

fn import_safetensors_bytes(bytes: &[u8]) -> (String, usize) {
    let dir = TempDir::new().unwrap();
    let model_dir = dir.path().join("model");
    std::fs::create_dir(&model_dir).unwrap();
    hf::write_tiny_llama(&model_dir);
    for index in 1..=2 {
        let shard = format!("model-0000{index}-of-00002.safetensors");
        std::fs::remove_file(model_dir.join(shard)).unwrap();
    }
    std::fs::write(model_dir.join("model.safetensors"), bytes).unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let before = listing(store.root());
    let reference = Reference::parse("bad").unwrap();
    let outcome = largest_allocation(|| {
        import::import_hf_dir(&store, Path::new(&model_dir), &reference, &mut |_, _| {}).map(drop)
    });
    assert_eq!(
        listing(store.root()),
        before,
        "a failed import changed the store"
    );
    outcome
}

#[test]
fn huge_gguf_key_length_allocates_nothing_large() {
    let mut bytes = header(3, 0, 1);
    bytes.extend(0xFFFF_FFFF_FFFFu64.to_le_bytes());
    bytes.extend([0u8; 20]);
    let (message, largest) = import_gguf_bytes(&bytes);
    assert!(message.contains("281474976710655"), "{message}");
    assert!(
        largest < ALLOWED_BYTES,
        "largest allocation {largest} bytes"
    );
}

#[test]
fn huge_gguf_array_length_allocates_nothing_large() {
    let mut bytes = header(3, 0, 1);
    put_string(&mut bytes, "tokenizer.ggml.token_type");
    bytes.extend(9u32.to_le_bytes()); // array
    bytes.extend(5u32.to_le_bytes()); // of i32
    bytes.extend((1u64 << 40).to_le_bytes());
    bytes.extend([0u8; 64]);
    let (message, largest) = import_gguf_bytes(&bytes);
    assert!(message.contains("1099511627776"), "{message}");
    assert!(
        largest < ALLOWED_BYTES,
        "largest allocation {largest} bytes"
    );
}

#[test]
fn huge_safetensors_header_length_allocates_nothing_large() {
    let mut bytes = 132_095_296u64.to_le_bytes().to_vec();
    bytes.extend([b' '; 10]);
    let (message, largest) = import_safetensors_bytes(&bytes);
    assert!(message.contains("header length 132095296"), "{message}");
    assert!(
        largest < ALLOWED_BYTES,
        "largest allocation {largest} bytes"
    );
}

#[test]
fn all_ff_safetensors_header_allocates_nothing_large() {
    let (message, largest) = import_safetensors_bytes(&[0xFF; 8]);
    assert!(
        message.contains("header length 18446744073709551615"),
        "{message}"
    );
    assert!(
        largest < ALLOWED_BYTES,
        "largest allocation {largest} bytes"
    );
}

#[test]
fn counting_allocator_sees_large_allocations() {
    LARGEST.with(|largest| largest.set(0));
    let buffer = vec![1u8; 4 * ALLOWED_BYTES];
    assert_eq!(buffer.len(), 4 * ALLOWED_BYTES);
    assert!(LARGEST.with(Cell::get) >= 4 * ALLOWED_BYTES);
}
