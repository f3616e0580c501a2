use super::*;

fn ok(text: &str) -> Value {
    parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(v) => panic!("{text:?} parsed as {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn scalars_and_white_space() {
    assert_eq!(ok("null"), Value::Null);
    assert_eq!(ok(" \t\r\n true \n"), Value::Bool(true));
    assert_eq!(ok("false"), Value::Bool(false));
    assert_eq!(ok(r#""""#), Value::String(String::new()));
    assert_eq!(ok("0").as_i64(), Some(0));
    assert_eq!(ok("-0").as_i64(), Some(0));
    assert_eq!(ok("[]"), Value::Array(vec![]));
    assert_eq!(ok("{}"), Value::Object(Map::new()));
    assert_eq!(ok(r#" [ 1 , "a" , { } , [ ] ] "#).to_json(), r#"[1,"a",{},[]]"#);
}

#[test]
fn escapes_read_and_written() {
    let v = ok(r#""q\" b\\ s\/ \b\f\n\r\t \u0041\u00e9\u4e2d \ud83d\ude00 é中😀""#);
    assert_eq!(v.as_str(), Some("q\" b\\ s/ \u{8}\u{c}\n\r\t Aé中 😀 é中😀"));
    // Written back: quotes, backslashes and control characters escaped, the rest as UTF-8.
    let written = v.to_json();
    assert_eq!(written, "\"q\\\" b\\\\ s/ \\u0008\\u000c\\n\\r\\t Aé中 😀 é中😀\"");
    assert_eq!(ok(&written), v);
    assert_eq!(Value::from("\u{0}\u{1f}\u{7f}").to_json(), "\"\\u0000\\u001f\u{7f}\"");
    assert_eq!(ok(r#""\uD83D\uDE00""#).as_str(), Some("😀"), "upper-case hex");
}

#[test]
fn bad_strings_are_errors() {
    for bad in [
        r#""abc"#,
        r#""\"#,
        r#""\x""#,
        r#""\u12""#,
        r#""\u12g4""#,
        r#""\ud800""#,
        r#""\ud800x""#,
        r#""\ud800\u0041""#,
        r#""\udc00""#,
        "\"tab\there\"",
        "\"new\nline\"",
    ] {
        err(bad);
    }
    assert!(err(r#""\ud83d""#).contains("lone surrogate"));
    assert!(parse_bytes(b"\"\xff\"").is_err(), "not UTF-8");
    assert_eq!(parse_bytes("\"é\"".as_bytes()), Ok(Value::from("é")));
}

#[test]
fn integers_at_the_i64_edges() {
    assert_eq!(ok("9223372036854775807").as_i64(), Some(i64::MAX));
    assert_eq!(ok("-9223372036854775808").as_i64(), Some(i64::MIN));
    assert_eq!(ok("9223372036854775807").to_json(), "9223372036854775807");
    assert_eq!(ok("-9223372036854775808").to_json(), "-9223372036854775808");
    // One beyond: not an i64, but kept as written, and still a number.
    let above = ok("9223372036854775808");
    assert_eq!(above.as_i64(), None);
    assert_eq!(above.as_u64(), Some(9_223_372_036_854_775_808));
    assert_eq!(above.as_f64(), Some(9.223_372_036_854_776e18));
    assert_eq!(above.to_json(), "9223372036854775808");
    let below = ok("-9223372036854775809");
    assert_eq!((below.as_i64(), below.as_u64()), (None, None));
    assert_eq!(below.to_json(), "-9223372036854775809");
    assert_eq!(ok("18446744073709551615").as_u64(), Some(u64::MAX));
    assert_eq!(ok("18446744073709551616").as_u64(), None);
    assert_eq!(ok("-1").as_u64(), None);
    for i in [i64::MIN, i64::MIN + 1, -1, 0, 1, 9, 10, 99, 100, i64::MAX - 1, i64::MAX] {
        assert_eq!(Value::from(i).to_json(), i.to_string());
        assert_eq!(ok(&i.to_string()).as_i64(), Some(i));
    }
    assert_eq!(Value::from(u64::MAX).to_json(), "18446744073709551615");
    assert_eq!(Value::from(u64::MAX).as_u64(), Some(u64::MAX));
}

#[test]
fn other_numbers_keep_their_text() {
    for text in ["1.5", "-0.25", "1e3", "1E+3", "2.5e-3", "0.1", "-0.0", "123456789012345678901234567890"] {
        let v = ok(text);
        assert_eq!(v.to_json(), text, "written back as it came");
        assert_eq!(v.as_i64(), None, "{text}");
        assert_eq!(v.as_f64(), text.parse::<f64>().ok(), "{text}");
    }
    assert_eq!(ok("1e400").as_f64(), None, "not finite as an f64");
    assert_eq!(ok("1e400").to_json(), "1e400");
    assert_eq!(ok("12").as_f64(), Some(12.0));
    assert_eq!(ok("[1, 1.0, 1e0, 10e-1]").as_array().map(|a| a.iter().all(|v| *v == Value::from(1))), Some(true));
    assert_ne!(ok("1.5"), ok("1"));
    for bad in ["01", "-", "-a", "1.", ".5", "1e", "1e+", "+1", "1.e3", "0x10", "NaN", "Infinity", "-01"] {
        err(bad);
    }
}

#[test]
fn floats_from_rust_read_back_exactly() {
    for f in [0.1, 1.0, -2.5, 1e300, 1e-300, f64::MAX, f64::MIN_POSITIVE, 5e-324, 0.30000000000000004, -0.0] {
        let text = f.to_json().to_json();
        assert_eq!(ok(&text).as_f64().map(f64::to_bits), Some(f.to_bits()), "{f} as {text}");
    }
    assert_eq!(f64::NAN.to_json(), Value::Null);
    assert_eq!(f64::INFINITY.to_json(), Value::Null);
    assert_eq!(1.0_f64.to_json().to_json(), "1.0");
}

#[test]
fn objects_keep_order_and_the_last_of_a_key() {
    let v = ok(r#"{"b": 1, "a": {"c": [true, null]}, "b": 2}"#);
    assert_eq!(v["b"].as_i64(), Some(2), "the later value");
    assert_eq!(v["a"]["c"][0], Value::Bool(true));
    assert!(v["a"]["c"][1].is_null());
    assert!(v["a"]["c"][2].is_null() && v["missing"]["deeper"].is_null() && v[0].is_null());
    assert_eq!(v.to_json(), r#"{"b":1,"a":{"c":[true,null]},"b":2}"#);
    assert_eq!(ok(&v.to_json()), v);
    assert_eq!(ok(r#"{"a": 1, "b": 2}"#), ok(r#"{"b": 2, "a": 1}"#), "order does not matter to equality");
    assert_ne!(ok(r#"{"a": 1}"#), ok(r#"{"a": 1, "b": 2}"#));
    assert_ne!(ok(r#"{"a": 1, "b": 2}"#), ok(r#"{"a": 1}"#));
    assert_eq!(ok(r#"{"a": 1, "a": 2}"#), ok(r#"{"a": 2}"#));

    let mut map = Map::new();
    assert_eq!(map.insert("x", 1), None);
    assert_eq!(map.insert("y", "two"), None);
    assert_eq!(map.insert("x", 3), Some(Value::from(1)), "replaced in place");
    for (n, make) in [(4, Value::Array(vec![])), (5, Value::Null)] {
        let list = map.get_or_insert_with("list", || make).as_array_mut().expect("an array, made once");
        list.push(Value::from(n));
    }
    assert_eq!(Value::Object(map.clone()).to_json(), r#"{"x":3,"y":"two","list":[4,5]}"#);
    assert_eq!(map.remove("y"), Some(Value::from("two")));
    assert_eq!((map.len(), map.contains_key("y"), map.get("x")), (2, false, Some(&Value::from(3))));
    let mut dup = ok(r#"{"k": 1, "k": 2}"#);
    assert_eq!(dup.as_object_mut().and_then(|m| m.remove("k")), Some(Value::from(2)));
    assert_eq!(dup.to_json(), "{}", "every entry of the key removed");
}

#[test]
fn nesting_is_limited() {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(parse(&deep(MAX_DEPTH)).is_ok());
    assert!(err(&deep(MAX_DEPTH + 1)).contains("nested too deeply"));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(MAX_DEPTH + 1), "}".repeat(MAX_DEPTH + 1));
    assert!(err(&objects).contains("nested too deeply"));
    // Far deeper input is refused just as well, without exhausting the stack.
    assert!(parse(&"[".repeat(1_000_000)).is_err());
}

#[test]
fn malformed_documents_are_errors() {
    for bad in [
        "",
        " ",
        "nul",
        "tru",
        "True",
        "[",
        "]",
        "[1,]",
        "[1 2]",
        "{",
        "}",
        r#"{"a"}"#,
        r#"{"a":}"#,
        r#"{"a":1,}"#,
        r#"{a:1}"#,
        r#"{"a" 1}"#,
        r#"{"a":1 "b":2}"#,
        "[1]x",
        "1 2",
        "{}{}",
        "'a'",
        "[,]",
        "\u{feff}1",
    ] {
        err(bad);
    }
    assert_eq!(err("[1, 2"), "invalid JSON at byte 5: expected `,` or `]`");
}

/// Every prefix of a document, and the document with any one byte changed, reads
/// without a panic (an error or a value).
#[test]
fn no_input_panics() {
    let doc = r#"{"a": [1, -2.5e3, "x\u00e9\ud83d\ude00\n", true, null, {"b": false}], "c": -9223372036854775808}"#;
    assert!(parse(doc).is_ok());
    for end in 0..=doc.len() {
        let _ = parse_bytes(&doc.as_bytes()[..end]);
    }
    let specials = [b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b'-', b'e', b'.', b'0', b'u', 0, 0xff, b' '];
    let mut bytes = doc.as_bytes().to_vec();
    for i in 0..bytes.len() {
        let original = bytes[i];
        for &b in &specials {
            bytes[i] = b;
            let _ = parse_bytes(&bytes);
        }
        bytes[i] = original;
    }
}

#[test]
fn typed_reads_name_the_field() {
    #[derive(Debug, PartialEq)]
    struct Tier {
        name: String,
        threshold: i64,
        multiplier: f64,
        codes: [u8; 2],
    }
    impl FromJson for Tier {
        fn from_json(value: &Value) -> Result<Self, Error> {
            let mut f = Fields::new(value)?;
            let tier = Tier {
                name: f.required("name")?,
                threshold: f.or("threshold", 0)?,
                multiplier: f.or("multiplier", 1.0)?,
                codes: f.or("codes", [0, 0])?,
            };
            f.finish()?;
            Ok(tier)
        }
    }
    let tiers: Vec<Tier> =
        from_str(r#"[{"name": "a"}, {"name": "b", "threshold": 5, "multiplier": 1.25, "codes": [1, 2]}]"#)
            .expect("valid");
    assert_eq!(tiers[0], Tier { name: "a".into(), threshold: 0, multiplier: 1.0, codes: [0, 0] });
    assert_eq!(tiers[1], Tier { name: "b".into(), threshold: 5, multiplier: 1.25, codes: [1, 2] });
    let error = |text: &str| from_str::<Vec<Tier>>(text).map(|_| ()).expect_err("an error").to_string();
    assert_eq!(error(r#"[{"name": "a"}, {"name": "b", "threshold": "5"}]"#), "[1].threshold: expected an integer");
    assert_eq!(error(r#"[{"name": "a", "size": 1}]"#), "[0].size: unknown field");
    assert_eq!(error(r#"[{"threshold": 1}]"#), "[0].name: missing");
    assert_eq!(error(r#"[{"name": "a", "codes": [1]}]"#), "[0].codes: expected an array of 2 items");
    assert_eq!(error(r#"[{"name": "a", "codes": [1, 256]}]"#), "[0].codes[1]: integer out of range");
    assert_eq!(error(r#"[{"name": "a", "threshold": 1.5}]"#), "[0].threshold: expected an integer");
    assert_eq!(error(r#"{"name": "a"}"#), "expected an array");
    assert!(error("[").starts_with("invalid JSON at byte 1"));
    // `null` is absent; a key given twice is read once, by its last value, and is not unknown.
    let t: Vec<Tier> = from_str(r#"[{"name": "a", "threshold": null, "name": "c"}]"#).expect("valid");
    assert_eq!((t[0].name.as_str(), t[0].threshold), ("c", 0));
}

#[test]
fn typed_writes_read_back() {
    let mut names = BTreeMap::new();
    names.insert("en".to_owned(), "Gold".to_owned());
    names.insert("zh-CN".to_owned(), "金卡".to_owned());
    let pairs: Vec<(String, i64)> = vec![("p1".into(), i64::MIN), ("p2".into(), 7)];
    assert_eq!(to_string(&names), r#"{"en":"Gold","zh-CN":"金卡"}"#);
    assert_eq!(from_str::<BTreeMap<String, String>>(&to_string(&names)), Ok(names));
    assert_eq!(to_string(&pairs), r#"[["p1",-9223372036854775808],["p2",7]]"#);
    assert_eq!(from_str::<Vec<(String, i64)>>(&to_string(&pairs)), Ok(pairs));
    assert_eq!(to_string(&[Some(1u32), None]), "[1,null]");
    assert_eq!(object([("b", Value::from(1)), ("a", Value::Null)]).to_json(), r#"{"b":1,"a":null}"#);
    assert_eq!(from_str::<Vec<Option<u32>>>("[1, null]"), Ok(vec![Some(1), None]));
    assert_eq!(from_str::<u64>("-1").map_err(|e| e.to_string()), Err("expected a non-negative integer".into()));
    assert_eq!(from_str::<u8>("256").map_err(|e| e.to_string()), Err("integer out of range".into()));
    assert_eq!(from_str::<bool>("1").map_err(|e| e.to_string()), Err("expected true or false".into()));
    assert_eq!(
        from_str::<(String, i64)>(r#"["a", "b"]"#).map_err(|e| e.to_string()),
        Err("[1]: expected an integer".into())
    );
}

#[test]
fn the_sdk_reads_config_and_kv_with_it() {
    use crate::testing::TestHost;
    let mut host = TestHost::new().config(r#"{"tiers": [1, 2]}"#);
    host.run(|| {
        let config: Value = crate::read_config().expect("valid");
        assert_eq!(config["tiers"][1].as_i64(), Some(2));
        crate::kv::write("views:c1", &vec![("p".to_owned(), 5_i64)]).expect("stored");
        assert_eq!(crate::kv::read::<Vec<(String, i64)>>("views:c1"), Ok(Some(vec![("p".to_owned(), 5)])));
        assert_eq!(crate::kv::read::<u32>("missing"), Ok(None));
        crate::kv::set("bad", b"{").expect("stored");
        assert!(matches!(crate::kv::read::<Value>("bad"), Err(crate::KvError::Serde(_))));
    });
    let mut bad = TestHost::new().config(r#"{"tiers": 1"#);
    let error = bad.run(crate::read_config::<Value>).expect_err("an error");
    assert_eq!(error.code, "bad-config");
}
