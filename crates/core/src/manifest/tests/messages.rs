//! What problem messages say: the JSON type found, and user input quoted and cut.

use super::*;

/// Every problem as (path, message), in report order.
fn problems(v: Value) -> Vec<(String, String)> {
    let err = Manifest::parse(&v).expect_err("manifest should be invalid");
    err.detail
        .expect("detail lists problems")
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap().into(),
                p["message"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[test]
fn problems_name_the_json_type_found() {
    for (v, found) in [
        (json!(null), "null"),
        (json!(true), "a boolean"),
        (json!(1), "a number"),
        (json!("x"), "a string"),
        (json!([]), "an array"),
    ] {
        assert_eq!(
            problems(v.clone()),
            [(
                "$".into(),
                format!("the manifest must be an object, found {found}")
            )],
            "{v}"
        );
    }
    assert_eq!(
        problems(json!({"widgetType": {}})),
        [(
            "$.widgetType".into(),
            "must be \"basic\" or \"dynamic\", found an object".into()
        )]
    );
}

#[test]
fn user_input_in_messages_is_quoted_and_cut_at_80_characters() {
    let found = |s: &str| {
        let [(path, message)] = &problems(json!({ "widgetType": s }))[..] else {
            panic!("one problem")
        };
        assert_eq!(path, "$.widgetType");
        message
            .strip_prefix("must be \"basic\" or \"dynamic\", found ")
            .unwrap()
            .to_string()
    };
    assert_eq!(found("x\"y"), "\"x\\\"y\"");
    let eighty = "é".repeat(80);
    assert_eq!(found(&eighty), format!("\"{eighty}\""));
    assert_eq!(found(&format!("{eighty}z")), format!("\"{eighty}\"…"));
    assert_eq!(found(&"a".repeat(81)), format!("\"{}\"…", "a".repeat(80)));
}
