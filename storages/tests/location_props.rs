//! LogicalLocation against a regex oracle of LSST's pattern, and the
//! bad-input suite.

use daf_base::printf::{sprintf, PrintfArg};
use daf_base::PropertySet;
use daf_storages::location::LocationTemplate;
use daf_storages::LogicalLocation;
use proptest::prelude::*;
use regex::Regex;

/// LSST's pattern `(%.*?)\((\w+?)\)` with `.` matching newlines and ASCII `\w`.
fn oracle(template: &str) -> (String, Vec<String>) {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"(?s)(%.*?)\(([A-Za-z0-9_]+?)\)").unwrap());
    let mut out = String::new();
    let mut keys = Vec::new();
    let mut last = 0;
    for c in re.captures_iter(template) {
        let m = c.get(0).unwrap();
        out.push_str(&template[last..m.start()]);
        let key = c.get(2).unwrap().as_str();
        out.push('<');
        out.push_str(key);
        out.push('>');
        keys.push(key.to_string());
        last = m.end();
    }
    out.push_str(&template[last..]);
    (out, keys)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn matcher_agrees_with_the_regex(template in "[%()ab_1 .\\-x\n]{0,30}") {
        let (expected, keys) = oracle(&template);
        let parsed = LocationTemplate::parse(&template);
        prop_assert_eq!(parsed.keys().map(str::to_string).collect::<Vec<_>>(), keys.clone());
        let mut data = PropertySet::new();
        for k in &keys {
            data.set(k, format!("<{k}>")).unwrap();
        }
        let got = LogicalLocation::new(&template, Some(&data), None).unwrap();
        prop_assert_eq!(got.loc_str(), expected.as_str());
    }

    #[test]
    fn integer_specs_agree_with_printf(
        flags in "[-+ 0#]{0,3}",
        width in proptest::option::of(1usize..20),
        prec in proptest::option::of(0usize..10),
        conv in proptest::sample::select(vec!['d', 'i', 'u', 'o', 'x', 'X', 's']),
        v in any::<i64>(),
    ) {
        let mut spec = format!("%{flags}");
        if let Some(w) = width { spec.push_str(&w.to_string()); }
        if let Some(p) = prec { spec.push('.'); spec.push_str(&p.to_string()); }
        spec.push(conv);
        let mut data = PropertySet::new();
        data.set("v", v).unwrap();
        let loc = LogicalLocation::new(&format!("a/{spec}(v)/b"), Some(&data), None).unwrap();
        let want = format!("a/{}/b", sprintf(&spec, PrintfArg::Int(v)).unwrap());
        prop_assert_eq!(loc.loc_str(), want.as_str());
    }

    #[test]
    fn arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), text in ".{0,64}") {
        let mut data = PropertySet::new();
        data.set("a", 1).unwrap();
        data.set("b", "bee").unwrap();
        data.set("x", 2.5).unwrap();
        data.set("n.m", 1).unwrap();
        let mut map = PropertySet::new();
        map.set("a", u64::MAX).unwrap();
        let lossy = String::from_utf8_lossy(&bytes).into_owned();
        for t in [lossy.as_str(), text.as_str()] {
            for (d, m) in [(Some(&data), None), (Some(&data), Some(&map)), (None, None)] {
                match LogicalLocation::new(t, d, m) {
                    Ok(loc) => prop_assert!(loc.loc_str().len() <= t.len() * 5000 + 64),
                    Err(e) => prop_assert!(!e.to_string().is_empty()),
                }
            }
        }
    }
}

proptest! {
    // Spec-shaped templates (generation is slow in debug builds; the
    // 10,000-case bad-input suite is `arbitrary_input_never_panics`).
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn substitution_shaped_garbage_never_panics(t in "([a-z/]{0,3}%[-+ 0#]{0,2}[0-9]{0,5}(\\.[0-9]{0,5})?[a-zA-Z%(]?\\((a|b|x|n|zz)\\)){0,4}") {
        let mut data = PropertySet::new();
        data.set("a", -7).unwrap();
        data.set("b", "bee").unwrap();
        data.set("x", 2.5).unwrap();
        data.set("n.m", 1).unwrap();
        let _ = LogicalLocation::new(&t, Some(&data), None);
    }
}

#[test]
fn long_adversarial_templates_are_linear() {
    // Many '%' and '(' with no closing match: must finish quickly.
    let t = "%(".repeat(50_000) + &"(a".repeat(50_000);
    let start = std::time::Instant::now();
    let loc = LogicalLocation::new(&t, None, None).unwrap();
    assert_eq!(loc.loc_str(), t);
    assert!(start.elapsed().as_secs() < 5);
}
