//! Property tests of the listing JSON against a hostile server: any bytes,
//! and valid pages with one value swapped for a hostile one (huge or
//! negative numbers, floats, absurd dates, control characters, deep
//! nesting). Parsing never panics, and a page that parses holds only
//! items whose ids are safe to name files after.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::model::ItemPage;

fn page() -> Value {
    json!({
        "items": [{
            "id": "itm_1", "platform": "wechat", "type": "message",
            "conversation": {"id": "c", "kind": "group", "title": "t"},
            "sent_at": "2026-11-22T08:15:00Z", "archived_at": "2026-11-22T09:00:00Z",
            "sender": {"name": "n", "mobile": "+15550100", "email": "a@x.com", "wechat_id": "w"},
            "participants": [{"name": "p", "mobile": null, "email": null, "wechat_id": "w2"}],
            "size": 10, "sha256": "00",
            "attachments": [{"name": "a.jpg", "content_type": "image/jpeg", "size": 3}],
            "call": {"media": "voice", "started_at": "2026-11-22T08:00:00Z",
                     "duration_seconds": 5, "result": "answered"},
            "recall": {"recalled_at": "2026-11-22T08:20:00Z", "original_item_id": "itm_0"}
        }],
        "next_cursor": "abc"
    })
}

fn hostile() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!(1e308)),
        Just(json!(-0.0)),
        Just(Value::Null),
        Just(json!("")),
        Just(json!("9999-99-99T99:99:99Z")),
        Just(json!("+275760-09-13T00:00:00Z")),
        Just(json!("../../etc/passwd")),
        Just(json!("a/b")),
        Just(json!("\u{1b}]52;c;eA==\u{7}")),
        Just(json!([[[[[[[[[[1]]]]]]]]]])),
        Just(json!({"items": []})),
        any::<String>().prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
    ]
}

/// Every leaf path of a JSON value, as object keys and array indexes.
fn leaves(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, v)| {
            path.push(k.clone());
            leaves(v, path, out);
            path.pop();
        }),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| {
            path.push(i.to_string());
            leaves(v, path, out);
            path.pop();
        }),
        _ => out.push(path.clone()),
    }
    out.push(path.clone());
}

fn replace(v: &mut Value, path: &[String], with: Value) {
    let Some((first, rest)) = path.split_first() else {
        *v = with;
        return;
    };
    let next = match v {
        Value::Object(m) => m.get_mut(first),
        Value::Array(a) => first.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => None,
    };
    if let Some(next) = next {
        replace(next, rest, with);
    }
}

#[track_caller]
fn check(bytes: &[u8]) {
    if let Ok(page) = serde_json::from_slice::<ItemPage>(bytes) {
        for item in &page.items {
            let id = item.id.as_str();
            assert!(
                !id.contains('/') && !id.is_empty() && id.len() <= 128,
                "{id:?}"
            );
        }
        assert!(page.items.len() <= bytes.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn any_bytes_parse_without_panic(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&raw);
    }

    #[test]
    fn a_page_with_one_hostile_value_parses_without_panic(
        pick in any::<proptest::sample::Index>(),
        value in hostile(),
    ) {
        let mut v = page();
        let mut paths = Vec::new();
        leaves(&v, &mut Vec::new(), &mut paths);
        replace(&mut v, &paths[pick.index(paths.len())], value);
        check(&serde_json::to_vec(&v).unwrap());
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow(depth in 1usize..100_000) {
        let mut raw = b"{\"items\":".to_vec();
        raw.extend(std::iter::repeat_n(b'[', depth));
        check(&raw);
    }
}
