//! Concurrency: writers in several threads, and `gc` waiting for writers.

use std::thread;
use std::time::Duration;

use strata_store::Reference;

use crate::common::{self, temp_store};

#[test]
fn concurrent_writers_keep_every_tag() {
    let (_dir, store) = temp_store();
    let writers: Vec<_> = (0..8)
        .map(|number| {
            let store = store.clone();
            thread::spawn(move || {
                let _guard = store.writer().unwrap();
                let layer = format!("weights of writer {number}");
                common::save_tagged(
                    &store,
                    &format!("model-{number}:latest"),
                    &[layer.as_bytes()],
                )
            })
        })
        .collect();
    let saved: Vec<_> = writers
        .into_iter()
        .map(|writer| writer.join().unwrap())
        .collect();

    assert_eq!(store.list_tags().unwrap().len(), 8);
    for (number, model) in saved.iter().enumerate() {
        let reference = Reference::parse(&format!("model-{number}")).unwrap();
        assert_eq!(
            store.resolve(&reference).unwrap().digest,
            model.manifest.digest
        );
    }
    assert!(store.fsck().unwrap().problems.is_empty());
}

#[test]
fn gc_waits_for_write_guard() {
    let (_dir, store) = temp_store();
    let guard = store.writer().unwrap();
    let unreachable = store.put_blob(b"written, not yet tagged").unwrap();

    let collector = {
        let store = store.clone();
        thread::spawn(move || store.gc().unwrap())
    };
    thread::sleep(Duration::from_millis(300));
    let finished_while_guarded = collector.is_finished();
    let still_there = store.has_blob(&unreachable);
    drop(guard);
    let report = collector.join().unwrap();

    assert!(
        !finished_while_guarded,
        "gc ran while a writer held the guard"
    );
    assert!(still_there);
    assert_eq!(report.blobs_removed, 1);
    assert!(!store.has_blob(&unreachable));
}

#[test]
fn writers_share_the_guard() {
    let (_dir, store) = temp_store();
    let first = store.writer().unwrap();

    let second = {
        let store = store.clone();
        thread::spawn(move || store.writer().map(drop).is_ok())
    };
    thread::sleep(Duration::from_millis(200));
    let finished = second.is_finished();
    drop(first);

    assert!(finished, "a second writer waited for the first");
    assert!(second.join().unwrap());
}
