//! Bad input: every truncated prefix and random corruption of every fixture
//! gives an error, never a panic; oversized length prefixes are refused
//! before anything is allocated.

mod common;

use common::*;
use daf_storages::boost::{ArchiveError, ArchiveKind, IArchive};
use proptest::prelude::*;

const KINDS: [(&str, ArchiveKind, bool); 4] = [
    ("bin", ArchiveKind::Binary, true),
    ("txt", ArchiveKind::Text, true),
    ("xml", ArchiveKind::Xml, true),
    ("noheader.bin", ArchiveKind::Binary, false),
];

struct Fixture {
    name: String,
    variant: &'static str,
    case: &'static str,
    kind: ArchiveKind,
    header: bool,
    version: u16,
    bytes: Vec<u8>,
}

fn all_fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();
    for (folder, variant, case, version) in fixtures() {
        for (ext, kind, header) in KINDS {
            let path = data_dir().join(&folder).join(format!("{case}.{ext}"));
            out.push(Fixture {
                name: format!("{folder}/{case}.{ext}"),
                variant,
                case,
                kind,
                header,
                version,
                bytes: std::fs::read(path).unwrap(),
            });
        }
    }
    out
}

/// Reads a whole archive of `f`'s case from `bytes`.
fn read_all(f: &Fixture, bytes: &[u8]) -> Result<Case, ArchiveError> {
    let mut ar = if f.header {
        IArchive::new(bytes)?
    } else {
        IArchive::open(bytes, f.kind, false, f.version)?
    };
    let c = read_case(&mut ar, f.case, f.variant)?;
    ar.finish()?;
    Ok(c)
}

/// Where the last token of a text archive starts (a text archive cut inside
/// its last number, or before its final newline, is still a valid archive).
fn last_token_start(bytes: &[u8]) -> usize {
    let end = bytes
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .unwrap_or(0);
    bytes[..end]
        .iter()
        .rposition(|c| c.is_ascii_whitespace())
        .map_or(0, |p| p + 1)
}

#[test]
fn every_truncated_prefix_is_an_error() {
    let mut prefixes = 0usize;
    for f in all_fixtures() {
        assert!(read_all(&f, &f.bytes).is_ok(), "{}", f.name);
        let step = if f.bytes.len() > 4000 { 61 } else { 1 };
        let limit = match f.kind {
            ArchiveKind::Text => last_token_start(&f.bytes),
            // Only the trailing whitespace of an XML archive may go.
            ArchiveKind::Xml => {
                f.bytes
                    .iter()
                    .rposition(|c| !c.is_ascii_whitespace())
                    .unwrap()
                    + 1
            }
            ArchiveKind::Binary => f.bytes.len(),
        };
        for n in (0..f.bytes.len()).step_by(step) {
            let r = read_all(&f, &f.bytes[..n]);
            if n < limit {
                assert!(r.is_err(), "{}: prefix of {n} bytes was accepted", f.name);
            }
            prefixes += 1;
        }
    }
    assert!(prefixes > 20_000, "{prefixes}");
}

#[test]
fn huge_length_prefixes_are_refused_before_allocating() {
    // A string length of 2^62 right after the header.
    let mut bin = std::fs::read(data_dir().join("boost-1.74/strings.bin")).unwrap();
    bin[40..48].copy_from_slice(&(1u64 << 62).to_le_bytes());
    let err = IArchive::from_bytes(&bin, |ar| ar.field::<String>("escaped")).unwrap_err();
    assert!(
        matches!(err, ArchiveError::LengthTooLarge { len, .. } if len == 1 << 62),
        "{err}"
    );

    // A vector<double> count of 2^61 (the raw block would be 16 EiB).
    let mut bin = std::fs::read(data_dir().join("boost-1.74/large_doubles.bin")).unwrap();
    bin[40..48].copy_from_slice(&(1u64 << 61).to_le_bytes());
    let err = IArchive::from_bytes(&bin, |ar| ar.field::<Vec<f64>>("values")).unwrap_err();
    assert!(matches!(err, ArchiveError::LengthTooLarge { .. }), "{err}");

    // The same in text and XML archives.
    let txt = "22 serialization::archive 18 99999999999999 0 1.0\n";
    let err =
        IArchive::from_bytes(txt.as_bytes(), |ar| ar.field::<Vec<f64>>("values")).unwrap_err();
    assert!(matches!(err, ArchiveError::LengthTooLarge { .. }), "{err}");
    let txt = "22 serialization::archive 18 9999999999 abc\n";
    let err = IArchive::from_bytes(txt.as_bytes(), |ar| ar.field::<String>("s")).unwrap_err();
    assert!(matches!(err, ArchiveError::LengthTooLarge { .. }), "{err}");
    let xml = std::fs::read_to_string(data_dir().join("boost-1.74/vectors.xml"))
        .unwrap()
        .replacen("<count>3</count>", "<count>4000000000000</count>", 1);
    let err = IArchive::from_bytes(xml.as_bytes(), |ar| ar.field::<Vec<f64>>("vd")).unwrap_err();
    assert!(matches!(err, ArchiveError::LengthTooLarge { .. }), "{err}");

    // PropertySet item counts too.
    let mut bin =
        std::fs::read(data_dir().join("boost-1.74/persistable-tracked/propertyset_lsst.bin"))
            .unwrap();
    // nitems follows: PropertySet preamble (5), Persistable preamble (5) and object id (4).
    bin[54..62].copy_from_slice(&u64::MAX.to_le_bytes());
    let err = IArchive::from_bytes(&bin, |ar| {
        daf_storages::boost::property_set::load_property_set(ar, "propertySet", &Default::default())
    })
    .unwrap_err();
    assert!(matches!(err, ArchiveError::LengthTooLarge { .. }), "{err}");
}

#[test]
fn wrong_xml_element_names_are_named() {
    let xml = std::fs::read_to_string(data_dir().join("boost-1.74/record.xml")).unwrap();
    let err = IArchive::from_bytes(xml.as_bytes(), |ar| ar.field::<Rec>("other")).unwrap_err();
    assert!(
        err.to_string().contains("<other>") && err.to_string().contains("<r1>"),
        "{err}"
    );
}

#[test]
fn garbage_is_not_an_archive() {
    for junk in [
        &b""[..],
        b"hello world",
        b"\x16\0\0\0\0\0\0\0serialization::archivX",
        b"<?xml version='1.0'?><x/>",
    ] {
        assert!(IArchive::new(junk).is_err());
    }
    // A binary header from a big-endian or Windows machine.
    let mut bin = std::fs::read(data_dir().join("boost-1.74/record.bin")).unwrap();
    bin[33] = 4; // sizeof(long) = 4 (Windows)
    let err = IArchive::new(&bin).unwrap_err();
    assert!(
        err.to_string().contains("incompatible native format"),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Random corruption of one to four bytes of any fixture: an error or
    /// some values, never a panic or a hang.
    #[test]
    fn random_corruption_never_panics(
        which in 0usize..152,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..5),
    ) {
        thread_local! {
            static FIXTURES: Vec<Fixture> = all_fixtures();
        }
        FIXTURES.with(|all| {
            let f = &all[which % all.len()];
            let mut bytes = f.bytes.clone();
            for (i, b) in &edits {
                let i = i.index(bytes.len());
                bytes[i] = *b;
            }
            let _ = read_all(f, &bytes);
        });
    }

    /// Random bytes after a valid header are refused or read, never a panic.
    #[test]
    fn random_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200), kind in 0usize..3) {
        let f = &all_fixtures()[[0usize, 1, 2][kind]];
        let header_len = match f.kind { ArchiveKind::Binary => 40, ArchiveKind::Text => 28, ArchiveKind::Xml => 0 };
        let mut bytes = f.bytes[..header_len].to_vec();
        bytes.extend_from_slice(&body);
        let _ = read_all(f, &bytes);
    }
}
