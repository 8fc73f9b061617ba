//! Property tests of what bonnie-api reads from outside: arbitrary bytes as a request body,
//! and JSON-RPC requests (single and batched) of every method with arbitrary parameter values,
//! signed and sent through the real service over the real SQLite storage. `Service::handle`
//! answers a panic with 500, so "never 500" is "never a panic" on any of them. And the audit
//! records of a batch: one per call, none answered unless its record is kept. And
//! `discovery.search` and `discovery.show` of an e-discovery client with arbitrary queries,
//! dates, limits, cursors and items: a result or invalid params, never a failure.

use bonnie_api::{
    audit::AuditLedger,
    auth,
    clients::{Clients, Credentials, Role},
    methods::OBJECT_TYPES,
    service::{Answer, Incoming, Service},
};
use bonnie_core::protocol::AuditRecord;
use bonnie_plugin_api::{plugin::storage_box, storage::StorageClient};
use bonnie_sqlite_storage::SqliteStorage;
use proptest::{collection::vec, prelude::*};
use serde_json::{Map, Value, json};
use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

const USER: &str = "john.doe@example.org";

/// A service over an empty SQLite archive, and the credentials of its one client: one for
/// all cases (argon2 makes a client slowly by design).
static SERVICE: std::sync::LazyLock<(tempfile::TempDir, Service, Credentials)> =
    std::sync::LazyLock::new(|| service(Box::new(Arc::new(Ledger::default())), Role::Groupware));

/// The same with an e-discovery client.
static REVIEW: std::sync::LazyLock<(tempfile::TempDir, Service, Credentials)> =
    std::sync::LazyLock::new(|| service(Box::new(Arc::new(Ledger::default())), Role::Ediscovery));

/// A service over an empty SQLite archive with one client in `role`, auditing into `ledger`.
fn service(ledger: Box<dyn AuditLedger>, role: Role) -> (tempfile::TempDir, Service, Credentials) {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&dir.path().join("bonnie.db"), 5000).unwrap();
    let mut clients = Clients::load(&dir.path().join("clients.json")).unwrap();
    let credentials = clients.add("roundcube", role).unwrap();
    let service = Service::new(
        StorageClient::new(storage_box(storage)),
        clients,
        Vec::new(),
        &dir.path().join("audit.log"),
        ledger,
        100,
    )
    .unwrap();
    (dir, service, credentials)
}

/// A ledger in memory that keeps records, and refuses them once `down`.
#[derive(Default)]
struct Ledger {
    kept: Mutex<Vec<AuditRecord>>,
    down: AtomicBool,
}

impl AuditLedger for Ledger {
    fn keep(&self, record: &AuditRecord) -> anyhow::Result<u64> {
        if self.down.load(Ordering::SeqCst) {
            anyhow::bail!("the broker did not answer");
        }
        let mut kept = self.kept.lock().unwrap();
        kept.push(record.clone());
        Ok(kept.len() as u64 - 1)
    }
}

/// `body` as a signed POST /api/rpc of the client for `USER`.
fn post(service: &Service, credentials: &Credentials, body: &[u8]) -> Answer {
    let basic = format!("{}:{}", credentials.name, credentials.password);
    let incoming = Incoming {
        method: "POST".into(),
        path: "/api/rpc".into(),
        authorization: Some(format!(
            "Basic {}",
            bonnie_core::b64::encode_base64(basic.as_bytes())
        )),
        user: Some(USER.into()),
        signature: Some(auth::signature(&credentials.secret, USER, body)),
        peer: "127.0.0.1:1".into(),
    };
    service.handle(&incoming, body)
}

#[test]
fn every_call_of_a_batch_is_an_audit_record_and_none_is_answered_unless_kept() {
    let ledger = Arc::new(Ledger::default());
    let (_dir, service, credentials) = service(Box::new(ledger.clone()), Role::Groupware);
    let body = json!([
        { "jsonrpc": "2.0", "method": "event.changelog", "params": { "uid": "e1", "folder": "Calendar" }, "id": 1 },
        { "jsonrpc": "2.0", "method": "system.keygen" },
    ])
    .to_string();
    assert_eq!(post(&service, &credentials, body.as_bytes()).status, 200);
    {
        let kept = ledger.kept.lock().unwrap();
        let actions: Vec<&str> = kept.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, ["event.changelog", "system.keygen"]);
        assert_eq!(kept[0].user, USER);
        assert_eq!(kept[0].client.as_deref(), Some("roundcube"));
        assert_eq!(kept[0].params["uid"], "e1");
        assert_eq!(kept[0].count, Some(0), "nothing archived: nothing read");
        assert_eq!(kept[1].count, Some(0), "a key is no archive item");
    }
    ledger.down.store(true, Ordering::SeqCst);
    let answer = post(&service, &credentials, body.as_bytes());
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.body.unwrap().get("result").is_none());
}

/// Every method the API has, and a few it has not.
fn methods() -> Vec<String> {
    let mut all: Vec<String> = OBJECT_TYPES
        .iter()
        .flat_map(|kind| {
            [
                "changelog",
                "created",
                "lastmodified",
                "get",
                "rawdata",
                "diff",
            ]
            .map(|action| format!("{kind}.{action}"))
        })
        .collect();
    all.extend(
        [
            "mail.changelog",
            "freebusy.get",
            "system.keygen",
            "discovery.search",
            "discovery.show",
            "",
            ".",
            "event.",
            "_x.y",
        ]
        .map(String::from),
    );
    all
}

/// A parameter value: text of any characters (dates, revisions, instances, folder names
/// among them), numbers, and the other JSON kinds.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::from),
        "[0-9T:+.Z -]{0,30}".prop_map(Value::from),
        "2026-12-0[0-9]T[0-9:]{0,8}[+-é€Z0-9:]{0,6}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        vec(any::<u8>(), 0..4).prop_map(|v| json!(v)),
    ]
}

/// A request of any method with any of the parameters the methods take.
fn request() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec![
        "uid", "mailbox", "msguid", "rev", "rev1", "rev2", "instance", "user", "start", "end",
        "as_of", "salt", "query", "limit", "cursor", "item", "other",
    ]);
    (
        prop::sample::select(methods()),
        vec((names, value()), 0..6),
        prop_oneof![Just(None), any::<i32>().prop_map(|i| Some(json!(i)))],
    )
        .prop_map(|(method, params, id)| {
            let params: Map<String, Value> = params
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            let mut request = json!({ "jsonrpc": "2.0", "method": method, "params": params });
            if let Some(id) = id {
                request["id"] = id;
            }
            request
        })
}

/// A date-time as a client might send one: RFC 3339 shaped, with arbitrary characters
/// (multi-byte ones among them) where the fraction and the offset go.
fn date() -> impl Strategy<Value = String> {
    prop_oneof![
        "2026-12-0[1-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9][+-][0-9é€]{1,2}[0-9:é€]{0,4}",
        "2026-12-0[1-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9](\\.[0-9é]{0,4})?[Zz+-][0-9:é]{0,5}",
        "[0-9é-]{4,10}[Tt ][0-9:é]{0,10}.{0,6}",
        any::<String>(),
    ]
}

/// A query as a reviewer might write one, right or wrong: the language's fields, operators,
/// quotes, parentheses and dates among arbitrary characters.
fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        r#"(-?(from|to|subject|body|filename|folder|user|flag|deleted|type|larger|smaller|after|before|message-id|direction|has|addr|cc|bcc):)?[a-zé0-9*\\"()<>@.: -]{0,12}( (OR|AND|NOT) )?[a-z0-9*\\"()-]{0,8}"#,
        "(after|before):(2026-1[0-2]-[0-3][0-9](T[0-2][0-9]:[0-5][0-9])?|[0-9é/-]{0,12})",
        "(larger|smaller):[0-9]{0,25}[kKmMgGé]?",
    ]
}

/// Parameters of `discovery.search` or `discovery.show`, each arbitrary or missing.
fn discovery_params() -> impl Strategy<Value = Value> {
    let maybe = |strategy: BoxedStrategy<Value>| prop::option::of(strategy);
    (
        maybe(query().prop_map(Value::from).boxed()),
        maybe(prop_oneof![date().prop_map(Value::from), value()].boxed()),
        maybe(prop_oneof![(0u64..1100).prop_map(Value::from), value()].boxed()),
        maybe(prop_oneof!["-?[0-9]{1,20}:[0-9a-f]{64}".prop_map(Value::from), value()].boxed()),
        maybe(prop_oneof!["[0-9a-fA-F]{64}".prop_map(Value::from), value()].boxed()),
    )
        .prop_map(|(query, as_of, limit, cursor, item)| {
            let mut params = Map::new();
            for (name, value) in [
                ("query", query),
                ("as_of", as_of),
                ("limit", limit),
                ("cursor", cursor),
                ("item", item),
            ] {
                if let Some(value) = value {
                    params.insert(name.to_string(), value);
                }
            }
            Value::Object(params)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn discovery_calls_answer_a_result_or_invalid_params(
        search in any::<bool>(),
        mut params in discovery_params(),
    ) {
        let method = if search { "discovery.search" } else { "discovery.show" };
        if let Value::Object(map) = &mut params {
            // Each method's own parameters, most of the time: what is left tests the rest.
            let others: &[&str] = if search { &["item"] } else { &["query", "limit", "cursor"] };
            for name in others {
                map.remove(*name);
            }
        }
        let body = json!({ "jsonrpc": "2.0", "method": method, "params": params, "id": 1 });
        let (_, service, credentials) = &*REVIEW;
        let answer = post(service, credentials, body.to_string().as_bytes());
        prop_assert_eq!(answer.status, 200, "for {}", body);
        let answer = answer.body.unwrap();
        let code = answer["error"]["code"].as_i64();
        prop_assert!(
            code.is_none() || code == Some(-32602),
            "{} answered {}", body, answer
        );
        if code.is_none() && search {
            prop_assert_eq!(&answer["result"]["items"], &json!([]), "an empty archive");
        }
        if code.is_none() && !search {
            prop_assert_eq!(&answer["result"], &json!(false), "an empty archive");
        }
    }

    #[test]
    fn date_parameters_never_panic(start in date(), end in date(), as_of in date()) {
        for (start, end, as_of) in [(&start, &end, None), (&start, &end, Some(&as_of))] {
            let mut params = json!({ "user": USER, "start": start, "end": end });
            if let Some(as_of) = as_of {
                params["as_of"] = json!(as_of);
            }
            let body = json!({ "jsonrpc": "2.0", "method": "freebusy.get", "params": params, "id": 1 });
            let (_, service, credentials) = &*SERVICE;
            let status = post(service, credentials, body.to_string().as_bytes()).status;
            prop_assert_eq!(status, 200, "for {}", body);
        }
    }

    #[test]
    fn arbitrary_bodies_never_panic(body in vec(any::<u8>(), 0..600)) {
        let (_, service, credentials) = &*SERVICE;
        let status = post(service, credentials, &body).status;
        prop_assert!(matches!(status, 200 | 204), "status {status}");
    }

    #[test]
    fn requests_of_every_method_with_arbitrary_parameters_never_panic(
        requests in vec(request(), 1..5),
        batched in any::<bool>(),
    ) {
        let (_, service, credentials) = &*SERVICE;
        let bodies: Vec<Value> = if batched {
            vec![Value::Array(requests)]
        } else {
            requests
        };
        for body in bodies {
            let status = post(service, credentials, body.to_string().as_bytes()).status;
            prop_assert!(matches!(status, 200 | 204), "status {status} for {body}");
        }
    }
}
