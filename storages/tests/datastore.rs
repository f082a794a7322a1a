//! The datastore conformance suite on a local folder and on a real S3
//! server (SeaweedFS, started by `.ci/setup/20-seaweedfs.sh`, which exports
//! `DAF_TEST_S3_ENDPOINT`, `DAF_TEST_S3_BUCKET` and the AWS test
//! credentials), plus the typed errors of a missing bucket, wrong
//! credentials and an endpoint that is down.

use std::time::{Duration, Instant};

use daf_storages::datastore::{
    conformance, open_datastore, Datastore, DatastoreError, LocalDatastore, PutMode, S3Config,
    S3Datastore,
};

fn unique(tag: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("daf-tests/{tag}-{}-{t}", std::process::id())
}

/// The S3 test bucket URL, or None (skipped locally, a failure in CI).
fn s3_url() -> Option<String> {
    let ok = std::env::var("DAF_TEST_S3_ENDPOINT").is_ok();
    if !daf_base::testing::available(
        ok,
        "DAF_TEST_S3_ENDPOINT not set (source .ci/setup/20-seaweedfs.sh)",
    ) {
        return None;
    }
    let bucket = std::env::var("DAF_TEST_S3_BUCKET").unwrap_or_else(|_| "daf-test".into());
    Some(format!("s3://{bucket}"))
}

#[test]
fn local_datastore_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let ds = LocalDatastore::new(dir.path().join("store"));
    conformance::run_all(&ds, "suite", dir.path());
    // no temporary file is left behind by any put
    let stray: Vec<_> = ds
        .list("")
        .unwrap()
        .into_iter()
        .filter(|m| m.key.contains(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn s3_datastore_passes_the_suite() {
    let Some(url) = s3_url() else { return };
    let ds = open_datastore(&url).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = unique("suite");
    conformance::run_all(ds.as_ref(), &base, dir.path());
    for m in ds.list(&base).unwrap() {
        ds.delete(&m.key).unwrap();
    }
}

#[test]
fn s3_prefix_is_applied_and_listed_relative() {
    let Some(url) = s3_url() else { return };
    let base = unique("prefix");
    let ds = open_datastore(&format!("{url}/{base}")).unwrap();
    ds.put_bytes("x/y.txt", b"hi", PutMode::Overwrite).unwrap();
    let keys: Vec<_> = ds.list("").unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(keys, vec!["x/y.txt".to_string()]);
    let root = open_datastore(&url).unwrap();
    assert_eq!(
        root.get(&format!("{base}/x/y.txt"), 10).unwrap(),
        b"hi".to_vec()
    );
    ds.delete("x/y.txt").unwrap();
}

fn env_with(overrides: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |k: &str| {
        overrides
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
            .or_else(|| std::env::var(k).ok())
    }
}

#[test]
fn s3_missing_bucket_is_typed() {
    let Some(_) = s3_url() else { return };
    // (a put is no test: SeaweedFS creates a bucket on a PUT by an admin)
    let cfg = S3Config::from_env("s3://daf-no-such-bucket-q7/p").unwrap();
    let ds = S3Datastore::open(cfg).unwrap();
    let e = ds.list("").unwrap_err();
    assert!(matches!(e, DatastoreError::NoBucket { .. }), "got {e:?}");
    assert!(e.to_string().contains("daf-no-such-bucket-q7"), "{e}");
}

#[test]
fn s3_wrong_credentials_are_access_denied_and_not_echoed() {
    let Some(url) = s3_url() else { return };
    let lookup = env_with(&[("AWS_SECRET_ACCESS_KEY", "definitely-wrong-secret-1234")]);
    let cfg = S3Config::from_lookup(&url, &lookup).unwrap();
    assert!(!format!("{cfg:?}").contains("definitely-wrong"));
    let ds = S3Datastore::open(cfg).unwrap();
    let e = ds.head("anything").unwrap_err();
    assert!(
        matches!(e, DatastoreError::AccessDenied { .. }),
        "got {e:?}"
    );
    let mut text = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        text.push_str(&s.to_string());
        src = s.source();
    }
    assert!(!text.contains("definitely-wrong"), "{text}");
}

#[test]
fn endpoint_down_is_unreachable_within_bounded_time() {
    // A port nothing listens on: retries with back-off, then a typed error.
    let lookup = env_with(&[
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_ACCESS_KEY_ID", "k"),
        ("AWS_SECRET_ACCESS_KEY", "s"),
        ("DAF_S3_RETRIES", "2"),
    ]);
    let mut cfg = S3Config::from_lookup("s3://b/p", &lookup).unwrap();
    cfg.retry_timeout = Duration::from_secs(3);
    let ds = S3Datastore::open(cfg).unwrap();
    let t = Instant::now();
    let e = ds.head("k").unwrap_err();
    assert!(matches!(e, DatastoreError::Unreachable { .. }), "got {e:?}");
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
}

#[test]
fn credentials_come_from_the_aws_credentials_file_never_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = filesecret\n\n\
         [other]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = othersecret\n",
    )
    .unwrap();
    let f = file.to_str().unwrap().to_string();
    let lookup = move |k: &str| match k {
        "AWS_SHARED_CREDENTIALS_FILE" => Some(f.clone()),
        "AWS_PROFILE" => Some("other".into()),
        _ => None,
    };
    let cfg = S3Config::from_lookup("s3://bucket/a/b", &lookup).unwrap();
    assert_eq!(cfg.access_key_id.as_deref(), Some("AKIDOTHER"));
    assert_eq!(cfg.secret_access_key.as_deref(), Some("othersecret"));
    assert_eq!(
        (cfg.bucket.as_str(), cfg.prefix.as_str()),
        ("bucket", "a/b")
    );
    assert!(!format!("{cfg:?}").contains("othersecret"));
    let e = S3Config::from_lookup("s3://key:secret@bucket/p", &lookup).unwrap_err();
    assert!(!e.to_string().contains("secret@"), "{e}");
    assert!(matches!(e, DatastoreError::Config { .. }));
    let e = S3Config::from_lookup("s3://bucket/a/../b", &lookup).unwrap_err();
    assert!(matches!(e, DatastoreError::Config { .. }));
}
