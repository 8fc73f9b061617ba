//! bonnie-api as an HTTP server, against the real binary over real TCP: JSON-RPC 2.0 batches,
//! notifications and ids; clients that announce huge bodies, send huge heads or send slowly;
//! an audit log that cannot be written (nothing is served); and calls that panic (the request
//! fails, the server goes on).

use std::{
    io::{Read, Write},
    net::TcpStream,
};

use bonnie_tests::{
    api::{self, ApiClient},
    cluster::Cluster,
    process::{self, ChildGuard},
};
use serde_json::{Value, json};

const JOHN: &str = "john.doe@example.org";

/// A cluster (SQLite storage, nothing archived) with `[api]` plus `extra`, one client, and
/// bonnie-api started with `env`.
fn api_with(extra: &str, env: &[(&str, &str)]) -> (Cluster, ChildGuard, ApiClient) {
    let cluster = Cluster::new(&[], "");
    let port = cluster.configure_api_with(&[], extra);
    let client = ApiClient {
        address: format!("127.0.0.1:{port}"),
        ..cluster.add_api_client("roundcube")
    };
    let api = cluster.run_api_with_env(port, env);
    (cluster, api, client)
}

/// The resident memory of a process, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// A signed `system.keygen` works: the API serves.
fn serves(client: &ApiClient) -> bool {
    let answer = client.call_raw(JOHN, "system.keygen", json!({}));
    answer.status == 200 && answer.body["result"]["key"].is_string()
}

#[test]
fn batches_notifications_and_error_ids_follow_json_rpc_2() {
    let (cluster, _api, client) = api_with("max_batch_calls = 4\n", &[]);

    // A batch answers an array, in order, without the notification; every error keeps the
    // id it could read.
    let batch = json!([
        { "jsonrpc": "2.0", "method": "system.keygen", "params": {}, "id": 1 },
        { "jsonrpc": "2.0", "method": "system.keygen", "params": {} },
        { "jsonrpc": "2.0", "method": "event.nosuch", "params": {}, "id": "x" },
        1,
    ]);
    let answer = client.post_signed(JOHN, batch.to_string().as_bytes());
    assert_eq!(answer.status, 200, "{answer:?}");
    let items = answer.body.as_array().expect("a batch answers an array");
    assert_eq!(
        items.len(),
        3,
        "the notification is not answered: {items:?}"
    );
    assert_eq!(items[0]["id"], 1);
    assert!(items[0]["result"]["key"].is_string());
    assert_eq!(
        (&items[1]["id"], &items[1]["error"]["code"]),
        (&json!("x"), &json!(-32601))
    );
    assert_eq!(
        (&items[2]["id"], &items[2]["error"]["code"]),
        (&Value::Null, &json!(-32600))
    );

    // Notifications only: carried out, no answer at all.
    let notifications = json!([
        { "jsonrpc": "2.0", "method": "system.keygen", "params": {} },
        { "jsonrpc": "2.0", "method": "system.keygen" },
    ]);
    let raw = {
        let body = notifications.to_string();
        let sign = api::hmac_sha256_hex(
            client.secret.as_bytes(),
            format!("{JOHN}:{body}").as_bytes(),
        );
        let request = format!(
            "POST /api/rpc HTTP/1.1\r\nHost: x\r\n{}\r\nX-Request-User: {JOHN}\r\nX-Request-Sign: {sign}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            client.authorization(),
            body.len()
        );
        api::exchange(&client.address, request.as_bytes()).expect("an answer")
    };
    assert_eq!((raw.status, raw.body.as_str()), (204, ""), "{raw:?}");
    let single = json!({ "jsonrpc": "2.0", "method": "system.keygen", "params": {} });
    let answer = client.post_signed(JOHN, single.to_string().as_bytes());
    assert_eq!((answer.status, &answer.body), (204, &Value::Null));

    // `"id": null` is a call, not a notification.
    let null_id = json!({ "jsonrpc": "2.0", "method": "system.keygen", "id": null });
    let answer = client.post_signed(JOHN, null_id.to_string().as_bytes());
    assert_eq!(answer.status, 200);
    assert!(answer.body["result"]["key"].is_string(), "{answer:?}");

    // One error for an empty batch, a batch over max_batch_calls, and a body that is not JSON.
    let five: Vec<Value> = (0..5)
        .map(|i| json!({ "jsonrpc": "2.0", "method": "system.keygen", "id": i }))
        .collect();
    for (body, code) in [
        ("[]".to_string(), -32600),
        (Value::Array(five).to_string(), -32600),
        ("{nope".to_string(), -32700),
    ] {
        let answer = client.post_signed(JOHN, body.as_bytes());
        assert_eq!(answer.status, 200);
        assert_eq!(
            (&answer.body["id"], &answer.body["error"]["code"]),
            (&Value::Null, &json!(code)),
            "{body}: {answer:?}"
        );
    }

    // The id is kept in errors: an invalid request that has one, a wrong signature.
    let invalid = json!({ "method": "system.keygen", "id": 7 });
    let answer = client.post_signed(JOHN, invalid.to_string().as_bytes());
    assert_eq!(
        (&answer.body["id"], &answer.body["error"]["code"]),
        (&json!(7), &json!(-32600))
    );
    let bad = client.call_badly_signed(JOHN, "system.keygen", json!({}));
    assert_eq!(
        (&bad.body["id"], &bad.body["error"]["code"]),
        (&json!(1), &json!(-32600))
    );

    // Every call of a batch is an audit line; notifications are marked.
    let audit = cluster.api_audit();
    let notified = audit.iter().filter(|l| l["notification"] == true).count();
    assert_eq!(notified, 4, "{audit:#?}");
    assert!(
        audit
            .iter()
            .any(|l| l["method"] == "event.nosuch" && l["error"] == -32601)
    );
}

#[test]
fn a_huge_announced_body_is_refused_413_before_it_is_read_and_the_api_keeps_serving() {
    let (_cluster, api, client) = api_with("", &[]);
    // Ten terabytes announced, no credentials, not a byte of it sent: the answer comes at
    // once from the header alone, and the connection is closed.
    let request = b"POST /api/rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                    Content-Length: 10000000000000\r\n\r\n";
    let answer = api::exchange(&client.address, request).expect("an answer");
    assert_eq!(answer.status, 413, "{answer:?}");
    assert!(
        answer
            .head
            .to_ascii_lowercase()
            .contains("connection: close"),
        "{answer:?}"
    );
    // One byte over the limit with credentials: the same.
    let request = format!(
        "POST /api/rpc HTTP/1.1\r\nHost: x\r\n{}\r\nContent-Length: 1048577\r\n\r\n",
        client.authorization()
    );
    let answer = api::exchange(&client.address, request.as_bytes()).expect("an answer");
    assert_eq!(answer.status, 413, "{answer:?}");
    // A chunked body that grows past the limit: 413 when it does.
    let mut stream = api::connect(&client.address);
    write!(
        stream,
        "POST /api/rpc HTTP/1.1\r\nHost: x\r\n{}\r\nTransfer-Encoding: chunked\r\n\r\n",
        client.authorization()
    )
    .unwrap();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..17 {
        if write!(stream, "{:x}\r\n", chunk.len()).is_err()
            || stream.write_all(&chunk).is_err()
            || stream.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let answer = api::read_answer(&mut stream);
    assert!(
        answer.as_ref().is_none_or(|a| a.status == 413),
        "{answer:?}"
    );
    // A 100 MB body really sent: refused from its header; the rest is never read, and
    // writing it fails once the server has closed.
    let mut stream = api::connect(&client.address);
    stream
        .set_write_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /api/rpc HTTP/1.1\r\nHost: x\r\n{}\r\nContent-Length: 100000000\r\n\r\n",
        client.authorization()
    )
    .unwrap();
    let block = vec![b'x'; 1 << 20];
    let mut sent = 0;
    while sent < 100 && stream.write_all(&block).is_ok() {
        sent += 1;
    }
    assert!(sent < 100, "the server read a body it had refused");
    let answer = api::read_answer(&mut stream);
    assert!(
        answer.as_ref().is_none_or(|a| a.status == 413),
        "{answer:?}"
    );
    assert!(serves(&client));
    let mut api = api;
    assert!(api.is_running());
    assert!(
        resident_kib(api.pid()) < 200 * 1024,
        "nothing was allocated for the announced bodies"
    );
}

#[test]
fn heads_over_the_limit_are_refused_and_a_200_mb_head_costs_no_memory() {
    let (_cluster, api, client) = api_with("max_header_bytes = 2048\n", &[]);
    // A head over max_header_bytes that the server reads whole: 431.
    let request = format!(
        "POST /api/rpc HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\nContent-Length: 0\r\n\r\n",
        "a".repeat(4096)
    );
    let answer = api::exchange(&client.address, request.as_bytes()).expect("an answer");
    assert_eq!(answer.status, 431, "{answer:?}");
    // 200 MB of one header line: the server stops reading at its buffer and closes.
    let mut stream = api::connect(&client.address);
    let _ = stream.write_all(b"POST /api/rpc HTTP/1.1\r\nX-Padding: ");
    let block = vec![b'a'; 1024 * 1024];
    let mut sent = 0;
    while sent < 200 && stream.write_all(&block).is_ok() {
        sent += 1;
    }
    assert!(sent < 200, "the server read on past its head limit");
    drop(stream);
    assert!(serves(&client));
    assert!(resident_kib(api.pid()) < 200 * 1024);
}

#[test]
fn slow_clients_are_cut_off_and_hold_no_one_up() {
    // One thread for calls: before, a client sending its body slowly held a serving thread.
    let (cluster, _api, client) = api_with(
        "threads = 1\nheader_timeout_ms = 1500\nbody_timeout_ms = 1500\n",
        &[],
    );
    let connect = || api::connect(&client.address);
    // Eight clients stall in their head, eight in their body.
    let mut in_head: Vec<TcpStream> = (0..8).map(|_| connect()).collect();
    for stream in &mut in_head {
        stream
            .write_all(b"POST /api/rpc HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
    }
    let mut in_body: Vec<TcpStream> = (0..8).map(|_| connect()).collect();
    for stream in &mut in_body {
        write!(
            stream,
            "POST /api/rpc HTTP/1.1\r\nHost: x\r\n{}\r\nContent-Length: 100\r\n\r\n{{",
            client.authorization()
        )
        .unwrap();
    }
    // Meanwhile, legitimate calls are answered.
    for _ in 0..5 {
        assert!(serves(&client));
    }
    // Their time up, the server closes the stalled ones: with 408 for a body, without an
    // answer (or 408) for a head.
    for mut stream in in_body {
        let answer = api::read_answer(&mut stream).expect("an answer to a stalled body");
        assert_eq!(answer.status, 408, "{answer:?}");
    }
    for mut stream in in_head {
        let mut rest = Vec::new();
        let read = stream.read_to_end(&mut rest);
        assert!(
            read.is_ok(),
            "closed by the server, not by the test's timeout: {read:?}"
        );
        let text = String::from_utf8_lossy(&rest);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{text}"
        );
    }
    assert!(serves(&client));
    assert_eq!(
        cluster
            .api_audit()
            .iter()
            .filter(|l| l["status"] == 408)
            .count(),
        8
    );
}

#[test]
fn an_audit_log_that_cannot_be_written_refuses_every_call_with_503() {
    // /dev/full opens, and every write to it fails (ENOSPC), as on a full disk.
    let (cluster, mut api, client) = api_with("audit_log = \"/dev/full\"\n", &[]);
    let answer = client.call_raw(JOHN, "system.keygen", json!({}));
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(
        answer.body.get("result").is_none(),
        "no data without its audit line"
    );
    assert_eq!(answer.body["error"], "unavailable");
    let batch = json!([{ "jsonrpc": "2.0", "method": "system.keygen", "id": 1 }]).to_string();
    assert_eq!(client.post_signed(JOHN, batch.as_bytes()).status, 503);
    let wrong = ApiClient {
        password: "wrong".into(),
        ..client
    };
    assert_eq!(wrong.call_raw(JOHN, "system.keygen", json!({})).status, 503);
    process::wait_until("the refusal in the log", || {
        cluster.log("api").contains("Cannot write the audit log")
    });
    assert!(api.is_running());
}

#[test]
fn a_panicking_call_fails_its_request_with_500_and_the_api_keeps_serving() {
    // The test hook of bonnie-api (service::TEST_PANIC_METHOD_VAR): every event.changelog
    // panics. One call thread, more panics than threads: before, each panic took a serving
    // thread with it, and bonnie-api exited 0 once none was left.
    let (cluster, mut api, client) = api_with(
        "threads = 1\n",
        &[("BONNIE_API_TEST_PANIC_METHOD", "event.changelog")],
    );
    let params = json!({ "uid": "x", "mailbox": "Calendar" });
    for _ in 0..6 {
        let answer = client.call_raw(JOHN, "event.changelog", params.clone());
        assert_eq!(answer.status, 500, "{answer:?}");
        assert_eq!(answer.body["error"], "internal");
        assert!(serves(&client));
    }
    assert!(api.is_running());
    let audit = cluster.api_audit();
    assert_eq!(
        audit.iter().filter(|l| l["status"] == 500).count(),
        6,
        "{audit:#?}"
    );
    assert!(cluster.log("api").contains("A request panicked"));
}

#[test]
fn a_hostile_date_parameter_is_an_invalid_param_not_a_panic() {
    // `+0é00` used to be sliced at a byte offset inside `é` (core/src/time.rs).
    let (_cluster, mut api, client) = api_with("", &[]);
    for start in [
        "2026-12-01T00:00:00+0é00",
        "2026-12-01T00:00:00+€b",
        "2026-12-01T00:00:0é",
    ] {
        let answer = client.call_raw(
            JOHN,
            "freebusy.get",
            json!({ "user": JOHN, "start": start, "end": "2026-12-02T00:00:00Z" }),
        );
        assert_eq!(
            (answer.status, &answer.body["error"]["code"]),
            (200, &json!(-32602)),
            "{start}: {answer:?}"
        );
    }
    assert!(serves(&client));
    assert!(api.is_running());
}

#[test]
fn sigterm_stops_the_api_with_status_0_while_a_connection_stays_open() {
    let (_cluster, api, client) = api_with("", &[]);
    assert!(serves(&client));
    // An idle connection does not hold the stop up: it is closed.
    let mut idle = api::connect(&client.address);
    api.signal("TERM");
    let output = api.wait();
    assert!(
        process::succeeded(&output.status),
        "{}",
        process::describe(&output)
    );
    let mut rest = Vec::new();
    assert!(idle.read_to_end(&mut rest).is_ok(), "closed by bonnie-api");
}

#[test]
fn a_destroyed_listening_socket_makes_the_api_exit_non_zero() {
    let (cluster, api, client) = api_with("", &[]);
    assert!(serves(&client));
    // The kernel closes bonnie-api's listening socket under it (sock_diag destroy, as
    // `ss -K` does): a real fault after which it can no longer serve.
    let port = client.address.rsplit(':').next().expect("a port");
    let killed = std::process::Command::new("ss")
        .args([
            "-K",
            "state",
            "listening",
            "sport",
            "=",
            &format!(":{port}"),
        ])
        .output()
        .expect("ss (iproute2; scripts/test installs it)");
    let output = api.wait();
    assert!(
        !process::succeeded(&output.status),
        "bonnie-api must not exit 0 once it cannot serve; ss said {}",
        process::describe(&killed)
    );
    assert!(
        cluster.log("api").contains("can no longer serve"),
        "{}",
        cluster.log("api")
    );
}
