//! Bad input to the PAF parser and the YAML loader: a result or a typed
//! error, never a panic or a hang; what loads also dumps and reloads equal.

use daf_base::policy::{Format, PolicyError};
use daf_base::Policy;
use proptest::prelude::*;

fn root() -> std::path::PathBuf {
    // An empty folder, so that any `@file` / `!include` fails cleanly.
    let dir = std::env::temp_dir().join("daf-policy-proptest-empty");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Loads, then checks that a successful load survives dump and reload in
/// the formats asked for.
fn exercise(bytes: &[u8], format: Format, dump_paf: bool, dump_yaml: bool) {
    match Policy::from_bytes(bytes, "fuzz", format, root()) {
        Ok(p) => {
            match p.to_paf_string().map(|t| (t, dump_paf)) {
                Ok((_, false)) => {}
                Ok((text, true)) => {
                    let back = Policy::from_paf_str(&text, "dumped")
                        .unwrap_or_else(|e| panic!("reload of PAF dump failed: {e}\n{text}"));
                    assert_eq!(back, p, "PAF dump:\n{text}");
                }
                Err(PolicyError::Unrepresentable { .. }) => {}
                Err(e) => panic!("unexpected dump error {e}"),
            }
            if !dump_yaml {
                return;
            }
            let text = p
                .to_yaml_string()
                .expect("YAML can write any loaded policy");
            let back = Policy::from_yaml_str(&text, "dumped")
                .unwrap_or_else(|e| panic!("reload of YAML dump failed: {e}\n{text}"));
            // NaN != NaN; compare the texts in that case.
            if back != p {
                assert_eq!(back.to_yaml_string().unwrap(), text);
            }
        }
        Err(e) => {
            // Every error renders, and syntax errors carry a line.
            let msg = e.to_string();
            assert!(!msg.is_empty());
            if let PolicyError::Syntax { line, .. } = e {
                assert!(line >= 1);
            }
        }
    }
}

const PAF_TOKENS: &[&str] = &[
    "a",
    "b.c",
    "x_1",
    ": ",
    ":",
    "{",
    "}",
    "\n",
    "\n",
    "\n",
    "\"",
    "'",
    "#",
    " ",
    "\t",
    "true",
    "False",
    "TRUE",
    "@x.paf",
    "@@pkg:f.paf",
    "1",
    "-42",
    "+7",
    "1.5",
    ".5e3",
    "0.",
    "4294967296",
    "1e999",
    "2E-5",
    "12ab",
    "None",
    "%(input)/raw",
    "a..b",
    ",",
    "-",
    ".",
    "\u{e9}",
    "\r\n",
];

const YAML_TOKENS: &[&str] = &[
    "a",
    "b.c",
    "x_1",
    ": ",
    ":",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "\n",
    "\n",
    "\n",
    "  ",
    "    ",
    "&x ",
    "*x",
    "!include ",
    "!foo ",
    "~",
    "null",
    "true",
    "1",
    "-42",
    "1.5",
    "4294967296",
    "18446744073709551616",
    ".nan",
    ".inf",
    "1e999",
    "\"",
    "'",
    "#",
    "? ",
    "|\n",
    ">-\n",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "\u{e9}",
    "a-b",
];

/// PAF-ish text: names, colons, braces, quotes, numbers, comments, includes.
fn paf_like() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PAF_TOKENS), 0..60).prop_map(|v| v.concat())
}

/// YAML-ish text.
fn yaml_like() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(YAML_TOKENS), 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn paf_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes, Format::Paf, true, true);
    }

    #[test]
    fn paf_structured_text(text in paf_like()) {
        exercise(text.as_bytes(), Format::Paf, true, true);
    }

    #[test]
    fn yaml_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes, Format::Yaml, true, true);
    }

    #[test]
    fn yaml_structured_text(text in yaml_like()) {
        exercise(text.as_bytes(), Format::Yaml, true, true);
    }
}

#[test]
fn pathological_nesting_is_an_error_not_a_stack_overflow() {
    let paf = "a: {\n".repeat(100_000);
    assert!(Policy::from_paf_str(&paf, "deep").is_err());
    let paf = "a: { ".repeat(100_000);
    assert!(Policy::from_paf_str(&paf, "deep").is_err());
    let yaml = "[".repeat(100_000);
    assert!(Policy::from_yaml_str(&yaml, "deep").is_err());
    let yaml: String = (0..2_000)
        .map(|i| format!("{}a:\n", " ".repeat(i)))
        .collect();
    assert!(Policy::from_yaml_str(&yaml, "deep").is_err());
}

#[test]
fn alias_bombs_are_refused() {
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = i - 1;
        yaml.push_str(&format!(
            "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
        ));
    }
    assert!(Policy::from_yaml_str(&yaml, "bomb").is_err());
}
