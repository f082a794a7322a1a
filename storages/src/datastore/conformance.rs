//! The datastore conformance suite: every [`Datastore`] backend must pass
//! [`run_all`]. The tests run it on a local folder and on SeaweedFS.
//! Each check works under its own key prefix (`base`), so the suite can run
//! against a shared bucket.

use super::{Datastore, DatastoreError, PutMode};

/// Runs every check under the key prefix `base` (a fresh, unique folder).
/// `scratch` is a local folder for staged files.
pub fn run_all(ds: &dyn Datastore, base: &str, scratch: &std::path::Path) {
    put_get_roundtrip(ds, &format!("{base}/roundtrip"), scratch);
    create_mode_refuses_existing(ds, &format!("{base}/create"));
    ranges(ds, &format!("{base}/ranges"));
    head_delete_missing(ds, &format!("{base}/missing"));
    list_prefix(ds, &format!("{base}/list"));
    copy_rename(ds, &format!("{base}/copy"));
    bad_keys(ds);
    large_put(ds, &format!("{base}/large"), scratch);
    failed_put_leaves_nothing(ds, &format!("{base}/failed"), scratch);
    checksum(ds, &format!("{base}/sum"));
    prefix_and_reads_into(ds, &format!("{base}/into"));
}

fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A file put comes back byte for byte; overwrite replaces it.
pub fn put_get_roundtrip(ds: &dyn Datastore, base: &str, scratch: &std::path::Path) {
    let src = scratch.join("roundtrip.bin");
    let bytes = data(100_000, 1);
    std::fs::write(&src, &bytes).unwrap();
    let key = format!("{base}/a/b/c.bin");
    let meta = ds.put_file(&key, &src, PutMode::Overwrite).unwrap();
    assert_eq!(meta.size, 100_000);
    assert_eq!(ds.get(&key, 1 << 20).unwrap(), bytes);
    let dest = scratch.join("roundtrip.out");
    assert_eq!(ds.get_to_file(&key, &dest).unwrap(), 100_000);
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
    ds.put_bytes(&key, b"short", PutMode::Overwrite).unwrap();
    assert_eq!(ds.get(&key, 1 << 20).unwrap(), b"short");
    ds.put_bytes(&format!("{base}/empty"), b"", PutMode::Overwrite)
        .unwrap();
    assert_eq!(ds.head(&format!("{base}/empty")).unwrap().unwrap().size, 0);
    assert_eq!(ds.get(&format!("{base}/empty"), 10).unwrap(), b"");
}

/// `PutMode::Create` never replaces an object.
pub fn create_mode_refuses_existing(ds: &dyn Datastore, base: &str) {
    let key = format!("{base}/x");
    ds.put_bytes(&key, b"first", PutMode::Create).unwrap();
    let e = ds.put_bytes(&key, b"second", PutMode::Create).unwrap_err();
    assert!(
        matches!(e, DatastoreError::AlreadyExists { .. }),
        "got {e:?}"
    );
    assert_eq!(ds.get(&key, 100).unwrap(), b"first");
    let e = ds
        .copy(&key, &key.replace("/x", "/y"), PutMode::Create)
        .and_then(|_| ds.copy(&key, &key.replace("/x", "/y"), PutMode::Create))
        .unwrap_err();
    assert!(
        matches!(e, DatastoreError::AlreadyExists { .. }),
        "got {e:?}"
    );
}

/// Ranged reads return exactly the asked bytes, in order; past the end is
/// an error.
pub fn ranges(ds: &dyn Datastore, base: &str) {
    let key = format!("{base}/r.bin");
    let bytes = data(50_000, 7);
    ds.put_bytes(&key, &bytes, PutMode::Overwrite).unwrap();
    let want = [0..1, 100..4100, 49_990..50_000, 7..7, 30_000..30_100];
    let got = ds.get_ranges(&key, &want).unwrap();
    for (g, r) in got.iter().zip(&want) {
        assert_eq!(g.as_slice(), &bytes[r.start as usize..r.end as usize]);
    }
    let before = ds.stats().bytes_read();
    ds.get_range(&key, 10..20).unwrap();
    assert_eq!(ds.stats().bytes_read() - before, 10);
    assert!(ds.get_range(&key, 49_990..50_010).is_err());
    let e = ds.get_range(&format!("{base}/nope"), 0..1).unwrap_err();
    assert!(matches!(e, DatastoreError::NotFound { .. }), "got {e:?}");
}

/// Missing objects: `head` is `None`, `delete` succeeds, reads say NotFound.
pub fn head_delete_missing(ds: &dyn Datastore, base: &str) {
    let key = format!("{base}/gone");
    assert_eq!(ds.head(&key).unwrap(), None);
    ds.delete(&key).unwrap();
    ds.put_bytes(&key, b"1", PutMode::Overwrite).unwrap();
    assert_eq!(ds.head(&key).unwrap().unwrap().size, 1);
    ds.delete(&key).unwrap();
    assert_eq!(ds.head(&key).unwrap(), None);
    let e = ds.get(&key, 10).unwrap_err();
    assert!(matches!(e, DatastoreError::NotFound { .. }), "got {e:?}");
}

/// `list` finds everything under a folder, recursively, sorted, and
/// nothing of a sibling whose name shares the prefix.
pub fn list_prefix(ds: &dyn Datastore, base: &str) {
    for k in ["a/1", "a/2", "a/sub/3", "ab/4"] {
        ds.put_bytes(&format!("{base}/{k}"), k.as_bytes(), PutMode::Overwrite)
            .unwrap();
    }
    let keys: Vec<String> = ds
        .list(&format!("{base}/a"))
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(
        keys,
        vec![
            format!("{base}/a/1"),
            format!("{base}/a/2"),
            format!("{base}/a/sub/3")
        ]
    );
    let all = ds.list(base).unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[3].size, 4);
    assert!(ds.list(&format!("{base}/none")).unwrap().is_empty());
}

/// Copy keeps the source; rename removes it.
pub fn copy_rename(ds: &dyn Datastore, base: &str) {
    let (a, b, c) = (
        format!("{base}/a"),
        format!("{base}/b"),
        format!("{base}/d/c"),
    );
    ds.put_bytes(&a, b"payload", PutMode::Overwrite).unwrap();
    ds.copy(&a, &b, PutMode::Overwrite).unwrap();
    assert_eq!(ds.get(&a, 100).unwrap(), b"payload");
    assert_eq!(ds.get(&b, 100).unwrap(), b"payload");
    ds.rename(&b, &c).unwrap();
    assert_eq!(ds.head(&b).unwrap(), None);
    assert_eq!(ds.get(&c, 100).unwrap(), b"payload");
    let e = ds
        .copy(&format!("{base}/missing"), &b, PutMode::Overwrite)
        .unwrap_err();
    assert!(matches!(e, DatastoreError::NotFound { .. }), "got {e:?}");
}

/// Keys that escape the root are refused before any request.
pub fn bad_keys(ds: &dyn Datastore) {
    for k in ["", "/abs", "a/../b", "a//b", "./a", "a\\b"] {
        let e = ds.put_bytes(k, b"x", PutMode::Overwrite).unwrap_err();
        assert!(matches!(e, DatastoreError::BadKey { .. }), "{k:?}: {e:?}");
        assert!(ds.head(k).is_err(), "{k:?}");
    }
}

/// A file larger than one PUT (multipart on S3) arrives whole.
pub fn large_put(ds: &dyn Datastore, base: &str, scratch: &std::path::Path) {
    let src = scratch.join("large.bin");
    let bytes = data(20 << 20, 3);
    std::fs::write(&src, &bytes).unwrap();
    let key = format!("{base}/big.bin");
    ds.put_file(&key, &src, PutMode::Overwrite).unwrap();
    assert_eq!(ds.head(&key).unwrap().unwrap().size, 20 << 20);
    let (sum, size) = ds.checksum(&key).unwrap();
    assert_eq!(size, 20 << 20);
    assert_eq!(sum, blake3::hash(&bytes).to_hex().to_string());
    // long ranges (read in several concurrent pieces by S3) and short ones
    // in one call come back whole and in order
    let n = bytes.len() as u64;
    let want = [0..n, 7..n - 5, 100..200, (9 << 20) + 1..(9 << 20) + 2, n..n];
    let got = ds.get_ranges(&key, &want).unwrap();
    for (r, g) in want.iter().zip(&got) {
        assert!(
            g[..] == bytes[r.start as usize..r.end as usize],
            "range {r:?}"
        );
    }
    // a big put made in one batch with small ones
    let small = scratch.join("small.bin");
    std::fs::write(&small, b"tiny").unwrap();
    let items = vec![
        (format!("{base}/b1"), src.clone(), PutMode::Create),
        (format!("{base}/b2"), small.clone(), PutMode::Create),
        (format!("{base}/b2"), small.clone(), PutMode::Create),
    ];
    let res = ds.put_files(&items);
    assert_eq!(res[0].as_ref().unwrap().size, 20 << 20);
    // the same key twice, create-only: exactly one of the two wins
    let won = res[1..].iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{res:?}");
    assert!(res[1..]
        .iter()
        .any(|r| matches!(r, Err(DatastoreError::AlreadyExists { .. }))));
    assert_eq!(ds.get(&format!("{base}/b2"), 10).unwrap(), b"tiny");
    for k in ["b1", "b2"] {
        ds.delete(&format!("{base}/{k}")).unwrap();
    }
    let _ = std::fs::remove_file(src);
    let _ = std::fs::remove_file(small);
    ds.delete(&key).unwrap();
}

/// A put of a missing source file fails and leaves no object.
pub fn failed_put_leaves_nothing(ds: &dyn Datastore, base: &str, scratch: &std::path::Path) {
    let key = format!("{base}/never");
    let e = ds
        .put_file(&key, &scratch.join("does-not-exist"), PutMode::Overwrite)
        .unwrap_err();
    assert!(matches!(e, DatastoreError::Io { .. }), "got {e:?}");
    assert_eq!(ds.head(&key).unwrap(), None);
    assert!(ds.list(base).unwrap().is_empty());
}

/// `checksum` is BLAKE3 of the bytes.
pub fn checksum(ds: &dyn Datastore, base: &str) {
    let key = format!("{base}/c");
    ds.put_bytes(&key, b"hello", PutMode::Overwrite).unwrap();
    assert_eq!(
        ds.checksum(&key).unwrap(),
        (blake3::hash(b"hello").to_hex().to_string(), 5)
    );
}

/// `get_prefix` returns the first bytes and the whole size in one call
/// (short and empty objects too); `get_ranges_into` fills the caller's
/// buffers, a large one split across several requests, and refuses a
/// range past the end.
pub fn prefix_and_reads_into(ds: &dyn Datastore, base: &str) {
    let key = format!("{base}/big");
    let bytes = data(20 << 20, 9);
    ds.put_bytes(&key, &bytes, PutMode::Overwrite).unwrap();
    let (head, size) = ds.get_prefix(&key, 11_520).unwrap();
    assert_eq!(size, 20 << 20);
    assert_eq!(head, &bytes[..11_520]);
    let short = format!("{base}/short");
    ds.put_bytes(&short, b"0123456789", PutMode::Overwrite)
        .unwrap();
    assert_eq!(
        ds.get_prefix(&short, 11_520).unwrap(),
        (b"0123456789".to_vec(), 10)
    );
    let empty = format!("{base}/empty");
    ds.put_bytes(&empty, b"", PutMode::Overwrite).unwrap();
    assert_eq!(ds.get_prefix(&empty, 100).unwrap(), (Vec::new(), 0));
    let e = ds.get_prefix(&format!("{base}/none"), 10).unwrap_err();
    assert!(matches!(e, DatastoreError::NotFound { .. }), "got {e:?}");

    let mut whole = vec![0u8; bytes.len() - 100];
    let mut row = vec![0u8; 400];
    let mut none: Vec<u8> = Vec::new();
    let before = ds.stats().gets();
    {
        let mut parts: Vec<(u64, &mut [u8])> = vec![
            (100, whole.as_mut_slice()),
            (5_000_000, row.as_mut_slice()),
            (7, none.as_mut_slice()),
        ];
        ds.get_ranges_into(&key, &mut parts).unwrap();
    }
    assert_eq!(whole, &bytes[100..]);
    assert_eq!(row, &bytes[5_000_000..5_000_400]);
    assert!(ds.stats().gets() > before, "reads are counted");
    let mut past = vec![0u8; 10];
    let e = ds
        .get_ranges_into(&key, &mut [((20 << 20) - 5, past.as_mut_slice())])
        .unwrap_err();
    assert!(
        !matches!(e, DatastoreError::NotFound { .. }),
        "a range past the end is its own error: {e:?}"
    );
    for k in [&key, &short, &empty] {
        ds.delete(k).unwrap();
    }
}
