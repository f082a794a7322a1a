//! Issue 2's PropertySet requirements, one by one, over all 14 value types;
//! DateTime and DataId hardening.

use daf_base::{
    data_id, DataId, DataIdValue, DateTime, PropertyError, PropertySet, PropertyType, Timescale,
    Values,
};
use proptest::prelude::*;

fn t(iso: &str) -> DateTime {
    iso.parse().unwrap()
}

/// A set holding every value type, arrays, nesting and an array of sets.
fn every_type() -> PropertySet {
    let mut inner = PropertySet::new();
    inner.set("depth", 2).unwrap();
    inner.set("deeper.name", "x").unwrap();
    let mut ps = PropertySet::new();
    ps.set("b", true).unwrap();
    ps.set("i8", -8i8).unwrap();
    ps.set("u8", 200u8).unwrap();
    ps.set("i16", -16_000i16).unwrap();
    ps.set("u16", 65_000u16).unwrap();
    ps.set("i32", vec![-1i32, 0, i32::MAX]).unwrap();
    ps.set("u32", u32::MAX).unwrap();
    ps.set("i64", i64::MIN).unwrap();
    ps.set("u64", u64::MAX).unwrap();
    ps.set("f32", 0.1f32).unwrap();
    ps.set("f64", vec![1.5f64, -2.25e-300]).unwrap();
    ps.set("s", vec!["a b", "ü\"q\""]).unwrap();
    ps.set("t", t("2016-12-31T23:59:60.5Z")).unwrap();
    ps.set("nested", inner.clone()).unwrap();
    ps.add("nested", inner).unwrap();
    ps.set("a.b.c", 3u16).unwrap();
    ps
}

#[test]
fn all_fourteen_types_get_back_what_was_set() {
    let ps = every_type();
    assert!(ps.get::<bool>("b").unwrap());
    assert_eq!(ps.get::<i8>("i8").unwrap(), -8);
    assert_eq!(ps.get::<u8>("u8").unwrap(), 200);
    assert_eq!(ps.get::<i16>("i16").unwrap(), -16_000);
    assert_eq!(ps.get::<u16>("u16").unwrap(), 65_000);
    assert_eq!(ps.get::<i32>("i32").unwrap(), i32::MAX);
    assert_eq!(ps.get_array::<i32>("i32").unwrap(), vec![-1, 0, i32::MAX]);
    assert_eq!(ps.get::<u32>("u32").unwrap(), u32::MAX);
    assert_eq!(ps.get::<i64>("i64").unwrap(), i64::MIN);
    assert_eq!(ps.get::<u64>("u64").unwrap(), u64::MAX);
    assert_eq!(ps.get::<f32>("f32").unwrap(), 0.1f32);
    assert_eq!(ps.get_array::<f64>("f64").unwrap(), vec![1.5, -2.25e-300]);
    assert_eq!(ps.get::<String>("s").unwrap(), "ü\"q\"");
    assert_eq!(
        ps.get::<DateTime>("t").unwrap(),
        t("2016-12-31T23:59:60.5Z")
    );
    assert_eq!(ps.get_array::<PropertySet>("nested").unwrap().len(), 2);
    assert_eq!(ps.get::<i32>("nested.depth").unwrap(), 2);
    assert_eq!(ps.get::<String>("nested.deeper.name").unwrap(), "x");
    let types: Vec<PropertyType> = ps.names().iter().map(|n| ps.type_of(n).unwrap()).collect();
    assert_eq!(
        types,
        [
            PropertyType::Bool,
            PropertyType::I8,
            PropertyType::U8,
            PropertyType::I16,
            PropertyType::U16,
            PropertyType::I32,
            PropertyType::U32,
            PropertyType::I64,
            PropertyType::U64,
            PropertyType::F32,
            PropertyType::F64,
            PropertyType::String,
            PropertyType::DateTime,
            PropertyType::PropertySet,
            PropertyType::PropertySet,
        ]
    );
    for ty in types {
        assert_eq!(PropertyType::from_name(ty.name()), Some(ty));
    }
}

#[test]
fn dotted_names_create_nested_sets() {
    let mut ps = PropertySet::new();
    ps.set("a.b.c", 1).unwrap();
    assert!(ps.exists("a") && ps.exists("a.b") && ps.exists("a.b.c"));
    assert!(ps.is_property_set("a") && ps.is_property_set("a.b"));
    assert!(!ps.is_property_set("a.b.c"));
    assert_eq!(
        ps.get_property_set("a.b").unwrap().get::<i32>("c").unwrap(),
        1
    );
    ps.set("a.b.d", "x").unwrap();
    assert_eq!(ps.param_names(), ["a.b.c", "a.b.d"]);
    assert_eq!(ps.property_set_names(), ["a", "a.b"]);
    assert_eq!(ps.names(), ["a"]);
}

#[test]
fn set_replaces_add_appends_with_type_check() {
    let mut ps = PropertySet::new();
    ps.add("x", 1i64).unwrap();
    assert!(!ps.is_array("x"));
    ps.add("x", vec![2i64, 3]).unwrap();
    assert!(ps.is_array("x"));
    assert_eq!(ps.value_count("x"), 3);
    assert_eq!(ps.get::<i64>("x").unwrap(), 3, "get returns the last value");
    let err = ps.add("x", 1i32).unwrap_err();
    assert_eq!(
        err,
        PropertyError::TypeMismatch {
            name: "x".into(),
            expected: "i64",
            actual: "i32"
        }
    );
    assert_eq!(
        ps.get_array::<i64>("x").unwrap(),
        [1, 2, 3],
        "a failed add changes nothing"
    );
    ps.set("x", "now a string").unwrap();
    assert_eq!(ps.value_count("x"), 1);
    assert_eq!(ps.type_of("x").unwrap(), PropertyType::String);
    ps.add("d", t("2020-01-01T00:00:00Z")).unwrap();
    ps.add("d", t("2020-01-02T00:00:00Z")).unwrap();
    assert_eq!(ps.get_array::<DateTime>("d").unwrap().len(), 2);
}

#[test]
fn typed_errors_name_the_key_and_the_types() {
    let ps = every_type();
    let e = ps.get::<i32>("nope.deep").unwrap_err();
    assert_eq!(
        e,
        PropertyError::NotFound {
            name: "nope.deep".into()
        }
    );
    assert_eq!(e.to_string(), "property not found: nope.deep");
    let e = ps.get::<f64>("s").unwrap_err();
    assert_eq!(
        e,
        PropertyError::TypeMismatch {
            name: "s".into(),
            expected: "f64",
            actual: "String"
        }
    );
    assert_eq!(
        e.to_string(),
        "type mismatch for property s: expected f64, found String"
    );
    assert!(matches!(
        ps.get::<i32>("u64"),
        Err(PropertyError::TypeMismatch { actual: "u64", .. })
    ));
    assert!(matches!(
        ps.get::<PropertySet>("t"),
        Err(PropertyError::TypeMismatch {
            expected: "PropertySet",
            actual: "DateTime",
            ..
        })
    ));
    assert!(matches!(
        ps.get_array::<bool>("missing"),
        Err(PropertyError::NotFound { .. })
    ));
    // A leaf in the middle of a path: not found on read, a type error on write.
    assert!(!ps.exists("b.x"));
    let mut ps = ps;
    assert!(
        matches!(ps.set("b.x", 1), Err(PropertyError::TypeMismatch { ref name, expected: "PropertySet", actual: "bool" }) if name == "b")
    );
    for bad in ["", ".", "a.", ".a", "a..b"] {
        assert!(
            matches!(ps.set(bad, 1), Err(PropertyError::InvalidName { .. })),
            "{bad:?}"
        );
        assert!(!ps.exists(bad));
    }
    // An empty array is stored but has no last value.
    ps.set("empty", Vec::<i32>::new()).unwrap();
    assert!(ps.exists("empty"));
    assert_eq!(ps.value_count("empty"), 0);
    assert_eq!(
        ps.get::<i32>("empty").unwrap_err(),
        PropertyError::Empty {
            name: "empty".into()
        }
    );
    assert_eq!(ps.get_or::<i32>("absent", 7).unwrap(), 7);
    assert!(ps.get_or::<i32>("s", 7).is_err());
}

#[test]
fn exists_is_array_value_count() {
    let ps = every_type();
    assert!(ps.exists("i32") && ps.is_array("i32") && ps.value_count("i32") == 3);
    assert!(ps.exists("b") && !ps.is_array("b") && ps.value_count("b") == 1);
    assert!(ps.is_array("nested") && ps.value_count("nested") == 2);
    assert!(!ps.exists("zzz") && !ps.is_array("zzz") && ps.value_count("zzz") == 0);
}

#[test]
fn names_and_param_names_in_insertion_order() {
    let ps = every_type();
    assert_eq!(
        ps.names(),
        [
            "b", "i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64", "f32", "f64", "s", "t",
            "nested", "a"
        ]
    );
    let params = ps.param_names();
    assert_eq!(&params[..13], &ps.names()[..13]);
    assert_eq!(
        &params[13..],
        ["nested.depth", "nested.deeper.name", "a.b.c"]
    );
    assert_eq!(
        ps.property_set_names(),
        ["nested", "nested.deeper", "a", "a.b"]
    );
}

#[test]
fn remove_takes_the_subtree() {
    let mut ps = every_type();
    assert_eq!(ps.remove("a.b.c"), Some(Values::U16(vec![3])));
    assert!(ps.exists("a.b") && !ps.exists("a.b.c"));
    assert!(ps.remove("nested").is_some());
    assert!(!ps.exists("nested.depth"));
    assert_eq!(ps.remove("nested"), None);
    assert_eq!(ps.remove(""), None);
    assert_eq!(ps.remove("b.x"), None);
    assert!(!ps.param_names().iter().any(|n| n.starts_with("nested")));
}

#[test]
fn combine_appends_and_is_all_or_nothing() {
    let mut a = PropertySet::new();
    a.set("x", 1).unwrap();
    a.set("n.s", "one").unwrap();
    let mut b = PropertySet::new();
    b.set("x", vec![2, 3]).unwrap();
    b.set("n.s", "two").unwrap();
    b.set("n.new", 1.5).unwrap();
    a.combine(&b).unwrap();
    assert_eq!(a.get_array::<i32>("x").unwrap(), [1, 2, 3]);
    assert_eq!(a.get_array::<String>("n.s").unwrap(), ["one", "two"]);
    assert_eq!(a.get::<f64>("n.new").unwrap(), 1.5);
    // A mismatch part-way leaves the target untouched.
    let before = a.clone();
    let mut c = PropertySet::new();
    c.set("fresh", 1).unwrap();
    c.set("x", "not an int").unwrap();
    assert!(matches!(
        a.combine(&c),
        Err(PropertyError::TypeMismatch { .. })
    ));
    assert_eq!(a, before);
    assert!(!a.exists("fresh"));
    // merge_replace replaces instead.
    a.merge_replace(&b).unwrap();
    assert_eq!(a.get_array::<i32>("x").unwrap(), [2, 3]);
}

#[test]
fn deep_copy_and_equality() {
    let a = every_type();
    let mut b = a.deep_copy();
    assert_eq!(a, b);
    b.set("nested.depth", 99).unwrap();
    assert_ne!(a, b);
    assert_eq!(
        a.get::<i32>("nested.depth").unwrap(),
        2,
        "the copy shares nothing"
    );
    // Equality ignores insertion order but not values or types.
    let mut x = PropertySet::new();
    x.set("p", 1).unwrap();
    x.set("q", 2).unwrap();
    let mut y = PropertySet::new();
    y.set("q", 2).unwrap();
    y.set("p", 1).unwrap();
    assert_eq!(x, y);
    y.set("p", 1i64).unwrap();
    assert_ne!(x, y);
}

#[test]
fn display_shows_every_type() {
    let mut ps = PropertySet::new();
    ps.set("b", vec![true, false]).unwrap();
    ps.set("i", -3i8).unwrap();
    ps.set("f32", 0.1f32).unwrap();
    ps.set("f64", 2.0f64).unwrap();
    ps.set("s", "say \"hi\"").unwrap();
    ps.set("t", t("2017-01-01T00:00:00Z")).unwrap();
    ps.set("n.x", 1u64).unwrap();
    assert_eq!(
        ps.to_string(),
        "b = [ true, false ]\n\
         i = -3\n\
         f32 = 0.1\n\
         f64 = 2.0\n\
         s = \"say \\\"hi\\\"\"\n\
         t = 2017-01-01T00:00:00.000000000Z\n\
         n = {\n  x = 1\n}\n"
    );
}

#[test]
fn serde_round_trips_json_and_yaml() {
    let ps = every_type();
    let json = serde_json::to_string(&ps).unwrap();
    let back: PropertySet = serde_json::from_str(&json).unwrap();
    assert_eq!(back, ps);
    assert_eq!(back.param_names(), ps.param_names(), "order survives");
    let yaml = serde_norway::to_string(&ps).unwrap();
    let back: PropertySet = serde_norway::from_str(&yaml).unwrap();
    assert_eq!(back, ps);
    assert_eq!(back.param_names(), ps.param_names());
    assert_eq!(back.get::<u64>("u64").unwrap(), u64::MAX);
    assert_eq!(back.get::<f32>("f32").unwrap(), 0.1f32);
    // The wire form is a map of typed arrays.
    let mut small = PropertySet::new();
    small.set("v", 1i64).unwrap();
    assert_eq!(
        serde_json::to_string(&small).unwrap(),
        r#"{"v":{"I64":[1]}}"#
    );
}

#[test]
fn serde_rejects_what_set_could_not_produce() {
    for bad in [
        r#"{"a.b":{"I64":[1]}}"#,
        r#"{"":{"I64":[1]}}"#,
        r#"{"n":{"PropertySet":[{"x.y":{"I32":[1]}}]}}"#,
    ] {
        let e = serde_json::from_str::<PropertySet>(bad).unwrap_err();
        assert!(
            e.to_string().contains("invalid property name"),
            "{bad}: {e}"
        );
    }
    assert!(serde_json::from_str::<PropertySet>(r#"{"a":{"I8":[300]}}"#).is_err());
    assert!(serde_json::from_str::<PropertySet>(r#"{"a":{"Nope":[1]}}"#).is_err());
    assert!(serde_json::from_str::<PropertySet>(r#"{"a":[1]}"#).is_err());
}

#[test]
fn datetime_views_and_iso() {
    let d = t("2017-01-01T00:00:00Z");
    assert_eq!(d.nsecs(Timescale::Utc), 1_483_228_800_000_000_000);
    assert_eq!(d.nsecs(Timescale::Tai), 1_483_228_837_000_000_000);
    assert_eq!(d.to_iso(Timescale::Tai), "2017-01-01T00:00:37.000000000");
    assert_eq!(
        DateTime::from_nsecs(d.nsecs(Timescale::Utc), Timescale::Utc),
        d
    );
    assert_eq!(d.mjd(Timescale::Utc), 57_754.0);
    // The leap second at the end of 2016.
    let leap = t("2016-12-31T23:59:60.25Z");
    assert_eq!(leap.nsecs(Timescale::Tai), 1_483_228_836_250_000_000);
    assert_eq!(
        leap.to_iso(Timescale::Utc),
        "2016-12-31T23:59:60.250000000Z"
    );
    assert_eq!(leap.to_string(), "2016-12-31T23:59:60.250000000Z");
    assert_eq!(
        t("2016-12-31T23:59:59Z").nsecs(Timescale::Tai),
        1_483_228_835_000_000_000
    );
    // Second 60 only where a leap second was.
    assert!("2016-12-30T23:59:60Z".parse::<DateTime>().is_err());
    assert!("2016-12-31T23:58:60Z".parse::<DateTime>().is_err());
    assert!(DateTime::parse_iso("2016-12-31T23:59:60", Timescale::Tai).is_err());
    assert!(t("1972-06-30T23:59:60Z") < t("1972-07-01T00:00:00Z"));
    // Calendar validation.
    assert!("2021-02-29".parse::<DateTime>().is_err());
    assert!("2020-02-29".parse::<DateTime>().is_ok());
    assert!("1900-02-29".parse::<DateTime>().is_err());
    assert!("2000-02-29".parse::<DateTime>().is_ok());
    assert!("2021-04-31".parse::<DateTime>().is_err());
    assert!("2021-12-31T24:00:00Z".parse::<DateTime>().is_err());
    let e = "2021-02-30".parse::<DateTime>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid ISO-8601 date-time \"2021-02-30\": field out of range"
    );
    assert_eq!(
        DateTime::from_calendar(2021, 2, 29, 0, 0, 0, 0, Timescale::Utc),
        None
    );
    // Fractions and ordering.
    assert_eq!(
        t("2020-01-01T00:00:00.5Z").nsecs(Timescale::Utc) % 1_000_000_000,
        500_000_000
    );
    assert!(t("2020-01-01T00:00:00Z") < t("2020-01-01T00:00:00.000000001Z"));
    // Before 1972: 10 s.
    let old = t("1960-01-01T00:00:00Z");
    assert_eq!(
        old.nsecs(Timescale::Tai) - old.nsecs(Timescale::Utc),
        10_000_000_000
    );
}

#[test]
fn data_id_basics() {
    let mut id = data_id! { visit: 85471, filter: "r", expTime: 15.0 };
    assert_eq!(id.len(), 3);
    assert_eq!(
        id.keys().collect::<Vec<_>>(),
        ["expTime", "filter", "visit"]
    );
    assert_eq!(id.get("visit"), Some(&DataIdValue::Int(85471)));
    assert_eq!(id.get("expTime").and_then(DataIdValue::as_f64), Some(15.0));
    assert_eq!(
        id.to_string(),
        "{expTime: 15.0, filter: \"r\", visit: 85471}"
    );
    let ps = id.to_property_set();
    assert_eq!(ps.get::<i64>("visit").unwrap(), 85471);
    assert_eq!(ps.get::<f64>("expTime").unwrap(), 15.0);
    assert_eq!(ps.get::<String>("filter").unwrap(), "r");
    let json = serde_json::to_string(&id).unwrap();
    assert_eq!(json, r#"{"expTime":15.0,"filter":"r","visit":85471}"#);
    assert_eq!(serde_json::from_str::<DataId>(&json).unwrap(), id);
    let yaml = serde_norway::to_string(&id).unwrap();
    assert_eq!(serde_norway::from_str::<DataId>(&yaml).unwrap(), id);
    id.extend(&data_id! { visit: 1, ccd: 2 });
    assert_eq!(id.get("visit").and_then(DataIdValue::as_i64), Some(1));
    assert_eq!(id.remove("ccd"), Some(DataIdValue::Int(2)));
    assert!(!id.contains_key("ccd"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn iso_text_round_trips(ns in any::<i64>()) {
        let d = DateTime::from_nsecs(ns, Timescale::Tai);
        let utc = d.to_iso(Timescale::Utc);
        prop_assert_eq!(DateTime::parse_iso(&utc, Timescale::Tai).unwrap(), d, "{}", utc);
        let tai = d.to_iso(Timescale::Tai);
        prop_assert_eq!(DateTime::parse_iso(&tai, Timescale::Tai).unwrap(), d, "{}", tai);
    }

    #[test]
    fn around_leap_seconds_round_trips(offset in -3_000_000_000i64..3_000_000_000, idx in 0usize..27) {
        // Instants close to each leap second from 1972-07-01 to 2017-01-01.
        let starts = [78_796_800i64, 94_694_400, 126_230_400, 157_766_400, 189_302_400, 220_924_800,
            252_460_800, 283_996_800, 315_532_800, 362_793_600, 394_329_600, 425_865_600, 489_024_000,
            567_993_600, 631_152_000, 662_688_000, 709_948_800, 741_484_800, 773_020_800, 820_454_400,
            867_715_200, 915_148_800, 1_136_073_600, 1_230_768_000, 1_341_100_800, 1_435_708_800,
            1_483_228_800];
        let start = DateTime::from_nsecs(starts[idx] * 1_000_000_000, Timescale::Utc);
        let d = DateTime::from_nsecs(start.nsecs(Timescale::Tai) + offset, Timescale::Tai);
        let utc = d.to_iso(Timescale::Utc);
        prop_assert_eq!(DateTime::parse_iso(&utc, Timescale::Utc).unwrap(), d, "{}", utc);
        prop_assert_eq!(utc.contains(":60."), (-1_000_000_000..0).contains(&offset), "{}", utc);
    }

    #[test]
    fn iso_parser_never_panics(s in ".{0,40}", bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        let _ = DateTime::parse_iso(&s, Timescale::Utc);
        let _ = DateTime::parse_iso(&String::from_utf8_lossy(&bytes), Timescale::Tai);
    }

    #[test]
    fn iso_shaped_garbage_never_panics(s in "[0-9]{1,7}-[0-9]{1,3}-[0-9]{1,3}(T[0-9]{1,3}:[0-9]{1,3}:[0-9]{1,3}(\\.[0-9]{0,12})?)?Z?") {
        if let Ok(d) = DateTime::parse_iso(&s, Timescale::Utc) {
            let _ = d.to_iso(Timescale::Utc);
        }
    }

    #[test]
    fn json_garbage_never_panics(s in "[{}\\[\\]\":,a-zI0-9.]{0,40}") {
        let _ = serde_json::from_str::<PropertySet>(&s);
    }
}
