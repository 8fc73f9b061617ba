//! Property tests of bonnie-api's JSON-RPC body parser, which reads whatever a client posts:
//! arbitrary bytes never panic it, a batch never yields more than it may hold, and a
//! well-formed request or batch comes back with its ids, methods and parameters.

use bonnie_api::rpc::{Body, Params, parse_body};
use proptest::{collection::vec, prelude::*};
use serde_json::{Map, Value, json};

/// An id as JSON-RPC allows it: a string, a number or null; or none at all (a notification).
fn id() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        any::<String>().prop_map(|s| Some(json!(s))),
        any::<i64>().prop_map(|n| Some(json!(n))),
        Just(Some(Value::Null)),
        Just(None),
    ]
}

/// A request object with named parameters.
fn request() -> impl Strategy<Value = (Option<Value>, String, Map<String, Value>)> {
    (
        id(),
        "[a-z]{1,8}\\.[a-z]{1,8}",
        prop::collection::btree_map(any::<String>(), any::<String>(), 0..4)
            .prop_map(|m| m.into_iter().map(|(k, v)| (k, json!(v))).collect()),
    )
}

fn to_json((id, method, params): &(Option<Value>, String, Map<String, Value>)) -> Value {
    let mut object = json!({ "jsonrpc": "2.0", "method": method, "params": params });
    if let Some(id) = id {
        object["id"] = id.clone();
    }
    object
}

proptest! {
    #[test]
    fn no_body_panics_the_parser(bytes in vec(any::<u8>(), 0..400), max_batch in 0usize..4) {
        if let Body::Batch(items) = parse_body(&bytes, max_batch) {
            prop_assert!(!items.is_empty() && items.len() <= max_batch);
        }
    }

    #[test]
    fn json_shaped_bodies_do_not_panic(
        text in "[\\[\\]{}\",:0-9a-z. é-]{0,80}",
        prefix in prop::sample::select(vec!["", "{\"jsonrpc\":\"2.0\",", "[{\"jsonrpc\":\"2.0\",\"method\":", "[[[["]),
    ) {
        let _ = parse_body(format!("{prefix}{text}").as_bytes(), 3);
    }

    #[test]
    fn a_request_comes_back_whole(request in request()) {
        let body = to_json(&request).to_string();
        let Body::Single(Ok(parsed)) = parse_body(body.as_bytes(), 10) else {
            panic!("not one request: {body}");
        };
        prop_assert_eq!(parsed.id, request.0);
        prop_assert_eq!(parsed.method, request.1);
        prop_assert_eq!(parsed.params.0, request.2);
    }

    #[test]
    fn a_batch_comes_back_in_order(requests in vec(request(), 1..6)) {
        let body = Value::Array(requests.iter().map(to_json).collect()).to_string();
        let Body::Batch(parsed) = parse_body(body.as_bytes(), 10) else {
            panic!("not a batch: {body}");
        };
        prop_assert_eq!(parsed.len(), requests.len());
        for (parsed, request) in parsed.into_iter().zip(requests) {
            let parsed = parsed.map_err(|(_, e)| e.message).unwrap();
            prop_assert_eq!(parsed.id, request.0);
            prop_assert_eq!(parsed.method, request.1);
        }
    }

    #[test]
    fn no_parameter_value_panics_its_reader(value in any::<String>(), number in any::<f64>()) {
        for value in [json!(value), json!(number), json!([value]), Value::Null] {
            let params = Params(Map::from_iter([("p".to_string(), value)]));
            let _ = params.text("p");
            let _ = params.optional_text("p");
            let _ = params.revision("p");
            let _ = params.only(&["q"]);
        }
    }
}
