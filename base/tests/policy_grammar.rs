//! The PAF grammar of `pex_harness.md` §6 and the YAML mapping, rule by rule.

use daf_base::policy::{Format, PolicyError};
use daf_base::{Policy, PropertyType};

fn paf(text: &str) -> Policy {
    Policy::from_paf_str(text, "t.paf").unwrap_or_else(|e| panic!("{e}"))
}

fn paf_err(text: &str) -> PolicyError {
    Policy::from_paf_str(text, "t.paf").unwrap_err()
}

fn yaml(text: &str) -> Policy {
    Policy::from_yaml_str(text, "t.yaml").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn comments_header_and_blank_lines() {
    let p = paf("#<?cfg paf policy ?>\n\n  # a comment\n\ta : 1 # trailing\n");
    assert_eq!(p.param_names(), vec!["a"]);
    assert_eq!(p.get::<i32>("a").unwrap(), 1);
}

#[test]
fn dotted_names_are_hierarchical() {
    assert_eq!(paf("a.b: 1\na.c: x\n"), paf("a: {\n b: 1\n c: x\n}\n"));
    assert_eq!(paf("a.b.c: 2.5"), yaml("a: {b: {c: 2.5}}"));
    assert_eq!(yaml("a.b: 1"), yaml("a: {b: 1}"));
}

#[test]
fn braces_with_content_on_the_same_line() {
    let p = paf("a: { b: 1 }\nc: { d: \"x\" }\n");
    assert_eq!(p.get::<i32>("a.b").unwrap(), 1);
    assert_eq!(p.get::<String>("c.d").unwrap(), "x");
    // `e: 2` after the string is not a second value: quoted strings take
    // only further quoted strings.
    let e = paf_err("c: { d: \"x\" e: 2 }\n");
    assert!(
        e.to_string().contains("expecting quoted string value"),
        "{e}"
    );
    let p = paf("a: {\n  b: {\n    c: true }\n  d: 4 }\ne: 5");
    assert!(p.get::<bool>("a.b.c").unwrap());
    assert_eq!(p.get::<i32>("a.d").unwrap(), 4);
    assert_eq!(p.get::<i32>("e").unwrap(), 5);
    let p = paf("a: {\n  b: {\n    c: 1\n}}\nd: 2\n");
    assert_eq!(p.names(), vec!["a", "d"]);
}

#[test]
fn extra_closing_brace_is_an_error() {
    let e = paf_err("a: 1\n  }\n");
    match e {
        PolicyError::Syntax {
            line, text, file, ..
        } => {
            assert_eq!((line, text.as_str(), file.as_str()), (2, "}", "t.paf"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn end_of_file_closes_open_blocks() {
    assert_eq!(paf("a: {\n b: {\n c: 1\n"), paf("a.b.c: 1"));
}

#[test]
fn arrays_by_repetition_and_by_spaces() {
    let p = paf("x: 1\nx: 2 3\ns: \"a\" 'b'\ns: \"c\"\nblk: { v: 1 }\nblk: { v: 2 }\n");
    assert_eq!(p.get_array::<i32>("x").unwrap(), vec![1, 2, 3]);
    assert_eq!(p.get_array::<String>("s").unwrap(), vec!["a", "b", "c"]);
    let blocks = p.get_policy_array("blk").unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[1].get::<i32>("v").unwrap(), 2);
    assert_eq!(
        p,
        yaml("x: [1, 2, 3]\ns: [a, b, c]\nblk:\n  - {v: 1}\n  - {v: 2}\n")
    );
    let p = paf("d: 1.5 -2.0 .5 1e3\nb: true False\n");
    assert_eq!(
        p.get_array::<f64>("d").unwrap(),
        vec![1.5, -2.0, 0.5, 1000.0]
    );
    assert_eq!(p.get_array::<bool>("b").unwrap(), vec![true, false]);
}

#[test]
fn mixed_types_and_commas_are_errors() {
    for (text, want) in [
        ("a: 1 2.5", "expecting integer value"),
        ("a: 1.5 2", "expecting double value"),
        ("a: 1, 2", "expecting integer value"),
        ("a: true 1", "expecting boolean value"),
        ("a: \"x\" y", "expecting quoted string value"),
        ("a: 12abc", "expecting integer value"),
        ("a: TRUE x", ""),
    ] {
        if want.is_empty() {
            // `TRUE` is not a bool: a bare string.
            assert_eq!(paf(text).get::<String>("a").unwrap(), "TRUE x");
            continue;
        }
        let e = paf_err(text);
        assert!(e.to_string().contains(want), "{text}: {e}");
        assert_eq!(e.line(), Some(1));
    }
    let e = paf_err("a: 1\na: x\n");
    assert!(e.to_string().contains("type mismatch"), "{e}");
    assert_eq!(e.line(), Some(2));
}

#[test]
fn value_typing_order() {
    let p = paf(concat!(
        "d1: 1.\n",
        "d2: -.5e-3\n",
        "d3: 2E10\n",
        "i: -42\n",
        "big: 2147483647\n",
        "b1: True\n",
        "b2: false\n",
        "q: \"1.5\"\n",
        "bare: None\n",
        "mapper: minMapper.MinMapper\n",
        "tmpl: %(input)/raw # note\n",
        "spaced: hello   world  \n",
    ));
    assert_eq!(p.get::<f64>("d1").unwrap(), 1.0);
    assert_eq!(p.get::<f64>("d2").unwrap(), -0.0005);
    assert_eq!(p.get::<f64>("d3").unwrap(), 2e10);
    assert_eq!(p.get::<i32>("i").unwrap(), -42);
    assert_eq!(p.get::<i32>("big").unwrap(), i32::MAX);
    assert!(p.get::<bool>("b1").unwrap());
    assert!(!p.get::<bool>("b2").unwrap());
    assert_eq!(p.get::<String>("q").unwrap(), "1.5");
    assert_eq!(p.get::<String>("bare").unwrap(), "None");
    assert_eq!(p.get::<String>("mapper").unwrap(), "minMapper.MinMapper");
    assert_eq!(p.get::<String>("tmpl").unwrap(), "%(input)/raw");
    assert_eq!(p.get::<String>("spaced").unwrap(), "hello   world");
    assert_eq!(p.as_property_set().type_of("i").unwrap(), PropertyType::I32);
}

#[test]
fn integers_beyond_32_bits_are_unsupported_in_paf_and_i64_in_yaml() {
    let e = paf_err("a: 1\nn: 4294967296\n");
    match &e {
        PolicyError::Unsupported { line, text, .. } => {
            assert_eq!((*line, text.as_str()), (2, "n: 4294967296"));
        }
        other => panic!("{other:?}"),
    }
    let y = yaml("n: 4294967296\nm: 7\nk: [1, 4294967296]\n");
    assert_eq!(y.get::<i64>("n").unwrap(), 4_294_967_296);
    assert_eq!(y.get::<i32>("m").unwrap(), 7);
    assert_eq!(y.get_array::<i64>("k").unwrap(), vec![1, 4_294_967_296]);
    // An i64 value has no PAF spelling.
    assert!(matches!(
        y.to_paf_string(),
        Err(PolicyError::Unrepresentable { ref name, .. }) if name == "n"
    ));
}

#[test]
fn quoted_strings_span_lines() {
    let p = paf("s: \"first\n   second line  \n  third\" \"next\"\nt: 'a \"b\"'\n");
    assert_eq!(
        p.get_array::<String>("s").unwrap(),
        vec!["first second line third", "next"]
    );
    assert_eq!(p.get::<String>("t").unwrap(), "a \"b\"");
    let p = paf("s: \"\n  x\"\n");
    assert_eq!(p.get::<String>("s").unwrap(), " x");
    let e = paf_err("a: 1\ns: \"never\nclosed\n");
    assert!(e.to_string().contains("end of file inside a quoted string"));
    assert_eq!(e.line(), Some(2));
}

#[test]
fn empty_values_add_nothing() {
    let p = paf("a:\nb: # nothing\nc: {\n  d: }\ne: 1\n");
    assert!(!p.exists("a"));
    assert!(!p.exists("b"));
    assert!(p.exists("c"));
    assert!(!p.exists("c.d"));
    assert_eq!(p.get::<i32>("e").unwrap(), 1);
    assert_eq!(yaml("a: ~\nb: []\n"), Policy::new());
}

#[test]
fn bad_names_and_lines() {
    for text in ["-a: 1", "a b: 1", "just words", "a..b: 1", "a.: 1"] {
        let e = paf_err(text);
        assert!(
            matches!(e, PolicyError::Syntax { line: 1, .. }),
            "{text}: {e}"
        );
    }
    assert!(Policy::from_yaml_str("a-b: 1", "t").is_err());
}

#[test]
fn includes_resolve_against_the_top_level_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::fs::write(d.join("top.paf"), "inc: @sub/mid.paf\nv: 1\n").unwrap();
    // mid.paf lives in sub/, but its include resolves against top's folder.
    std::fs::write(d.join("sub/mid.paf"), "deep: @leaf.yaml\n").unwrap();
    std::fs::write(d.join("leaf.yaml"), "x: [1, 2]\n").unwrap();
    let p = Policy::load(d.join("top.paf")).unwrap();
    assert_eq!(p.get_array::<i32>("inc.deep.x").unwrap(), vec![1, 2]);
    std::fs::write(d.join("top.yaml"), "inc: !include sub/mid.paf\nv: 1\n").unwrap();
    assert_eq!(Policy::load(d.join("top.yaml")).unwrap(), p);

    // Strings with an explicit root.
    let p2 = Policy::from_bytes(b"inc: @sub/mid.paf\nv: 1\n", "mem", Format::Paf, d).unwrap();
    assert_eq!(p2, p);
}

#[test]
fn include_cycles_and_missing_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.paf"), "b: @b.paf\n").unwrap();
    std::fs::write(d.join("b.paf"), "x: 1\na: @a.paf\n").unwrap();
    let e = Policy::load(d.join("a.paf")).unwrap_err();
    match &e {
        PolicyError::IncludeCycle { chain } => {
            let names: Vec<_> = chain
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            assert_eq!(names, vec!["a.paf", "b.paf", "a.paf"]);
        }
        other => panic!("{other:?}"),
    }
    std::fs::write(d.join("self.yaml"), "me: !include self.yaml\n").unwrap();
    assert!(matches!(
        Policy::load(d.join("self.yaml")),
        Err(PolicyError::IncludeCycle { .. })
    ));
    std::fs::write(d.join("m.paf"), "a: 1\nb: @missing.paf\n").unwrap();
    let e = Policy::load(d.join("m.paf")).unwrap_err();
    assert!(matches!(e, PolicyError::Include { line: 2, .. }), "{e}");
    assert!(e.to_string().contains("missing.paf"));
    // A directory or device is not read.
    std::fs::write(d.join("dir.paf"), "a: @.\n").unwrap();
    assert!(matches!(
        Policy::load(d.join("dir.paf")),
        Err(PolicyError::Include { .. })
    ));
}

#[test]
fn urn_includes_use_the_package_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("policy")).unwrap();
    std::fs::write(d.join("policy/dict.paf"), "v: 3\n").unwrap();
    // The variable is read, never set, by the library; set it for this
    // process only under a name no other test uses.
    std::env::set_var("DAFTESTPKG_DIR", d);
    let p = paf("a: @urn:eupspkg:daftestpkg:policy:dict.paf\nb: @@daftestpkg:policy/dict.paf\n");
    assert_eq!(p.get::<i32>("a.v").unwrap(), 3);
    assert_eq!(p.get::<i32>("b.v").unwrap(), 3);
    let e = paf_err("a: @@nosuchpkg_xyz:dict.paf\n");
    assert!(e.to_string().contains("NOSUCHPKG_XYZ_DIR"), "{e}");
}

#[test]
fn yaml_errors_name_file_line_and_text() {
    let e = Policy::from_yaml_str("a: 1\nb: [1, 2\nc: 3\n", "conf.yaml").unwrap_err();
    match &e {
        PolicyError::Syntax { file, line, .. } => {
            assert_eq!(file, "conf.yaml");
            assert!(*line >= 2, "{e}");
        }
        other => panic!("{other:?}"),
    }
    let e = Policy::from_yaml_str("a: 1\nb: [1, x]\n", "conf.yaml").unwrap_err();
    match &e {
        PolicyError::Syntax { line, text, .. } => {
            assert_eq!((*line, text.as_str()), (2, "b: [1, x]"));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("one type"));
    assert!(Policy::from_yaml_str("- 1\n- 2\n", "t").is_err());
    assert!(Policy::from_yaml_str("a: [[1]]\n", "t").is_err());
    assert!(Policy::from_yaml_str("a: !foo x\n", "t").is_err());
    assert!(Policy::from_yaml_str("a: 1\na: 2\n", "t").is_err());
    assert!(Policy::from_yaml_str("a: 18446744073709551615\n", "t").is_err());
}

#[test]
fn non_utf8_names_the_line() {
    let e = Policy::from_bytes(b"a: 1\nb: \xff\xfe\n", "bin.paf", Format::Paf, ".").unwrap_err();
    assert!(matches!(e, PolicyError::Syntax { line: 2, .. }), "{e}");
}

#[test]
fn deep_nesting_is_capped() {
    let deep = "a: {\n".repeat(10_000);
    assert!(paf_err(&deep).to_string().contains("nested deeper"));
    let deep = format!("{}1{}", "{a: ".repeat(10_000), "}".repeat(10_000));
    assert!(Policy::from_yaml_str(&deep, "t").is_err());
}

#[test]
fn dump_formats() {
    let p = paf("a: {\n  b: 1 2\n  s: \"x y\" 'q\"'\n}\nd: 1.0 2.5e-7\nt: true\n");
    assert_eq!(
        p.to_paf_string().unwrap(),
        "#<?cfg paf policy ?>\na: {\n    b: 1 2\n    s: \"x y\" 'q\"'\n}\nd: 1.0 2.5e-7\nt: true\n"
    );
    let y = p.to_yaml_string().unwrap();
    assert_eq!(Policy::from_yaml_str(&y, "y").unwrap(), p);
    let mut odd = Policy::new();
    odd.set("nl", "two\nlines").unwrap();
    assert!(odd.to_paf_string().is_err());
    assert_eq!(
        Policy::from_yaml_str(&odd.to_yaml_string().unwrap(), "y").unwrap(),
        odd
    );
    let mut nan = Policy::new();
    nan.set("x", f64::NAN).unwrap();
    assert!(nan.to_paf_string().is_err());
}
