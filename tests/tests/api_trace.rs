//! bonnie-api's `trace.find` through every real process: bonnie-logd follows a mail.log
//! (maillog's test logs: three hosts and instances, every stamp style, long and short queue
//! IDs), the broker stores the batches, a worker with the `postfix` handler merges them into
//! SQLite, and bonnie-api answers an admin client with the traces `bonnie trace --json`
//! prints, refuses a Roundcube client, and keeps an audit record of both calls.

use bonnie_tests::{cluster::Cluster, logd, process};
use serde_json::{Value, json};

/// `bonnie trace --json` with `args`.
fn trace_json(cluster: &Cluster, args: &[&str]) -> Value {
    let mut all = vec!["trace"];
    all.extend_from_slice(args);
    all.push("--json");
    let output = cluster.bonnie(&all);
    assert!(output.status.success(), "{}", process::describe(&output));
    serde_json::from_slice(&output.stdout).expect("JSON")
}

/// bonnie-api's records in the verifiable log, as `bonnie audit --json` lists them.
fn api_audit_records(cluster: &Cluster) -> Vec<Value> {
    let records = cluster.audit_records();
    records
        .into_iter()
        .filter(|r| r["source"] == "api")
        .collect()
}

#[test]
fn an_admin_client_gets_the_traces_bonnie_trace_prints_and_a_roundcube_client_is_refused() {
    let cluster = Cluster::new(
        &["bonnie-postfix"],
        &format!(
            "{}\n[plugins.postfix]\nzone = \"UTC\"\n",
            logd::table("files = [\"log/mail.log\"]")
        ),
    );
    let lines = logd::maillog_test_lines();
    std::fs::create_dir_all(cluster.path().join("log")).unwrap();
    logd::append(&cluster.path().join("log/mail.log"), lines.clone());
    let _broker = cluster.start_broker();
    let _worker = cluster.start_worker("worker");
    let _logd = logd::start(&cluster);
    logd::wait_for_lines(&cluster, lines.len());
    cluster.wait_until_drained();
    let (_api, roundcube, admins) = cluster.start_api_with_admins(&["console"]);
    let console = &admins[0];

    // The relayed message: three hops on two hosts, as the command line shows it.
    let relayed = console.call("", "trace.find", json!({ "query": "<c1@example.net>" }));
    assert_eq!(relayed, trace_json(&cluster, &["<c1@example.net>"]));
    let hops = relayed[0]["trace"]["hops"].as_array().expect("hops");
    assert_eq!(hops.len(), 3, "{relayed:#}");
    // The bounce, by its queue ID: the message and its notification.
    let bounced = console.call("", "trace.find", json!({ "query": "4jdxTP3vmBz9sLL" }));
    assert_eq!(bounced, trace_json(&cluster, &["4jdxTP3vmBz9sLL"]));
    assert_eq!(bounced[0]["trace"]["hops"][1]["via"]["by"], "notification");
    // `since` as the command line takes it: nothing of 2026 is seen after 2100 began.
    let later = console.call(
        "",
        "trace.find",
        json!({ "query": "<c1@example.net>", "since": "2100-01-01" }),
    );
    assert_eq!(later, json!([]));
    assert_eq!(
        later,
        trace_json(&cluster, &["<c1@example.net>", "--since", "2100-01-01"])
    );

    let refused = roundcube.call_raw(
        "john.doe@example.org",
        "trace.find",
        json!({ "query": "<c1@example.net>" }),
    );
    assert_eq!(refused.status, 200, "a JSON-RPC error: {refused:?}");
    assert_eq!(refused.body["error"]["code"], -32001, "{refused:?}");
    assert!(refused.body.get("result").is_none(), "{refused:?}");

    let records = api_audit_records(&cluster);
    let traces: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "trace.find")
        .collect();
    assert_eq!(traces.len(), 4, "one record per call: {records:#?}");
    assert_eq!(traces[0]["client"], "console");
    assert_eq!(traces[0]["params"], json!({ "query": "<c1@example.net>" }));
    assert_eq!(traces[0]["count"], 1);
    assert_eq!(traces[0]["outcome"], "ok");
    assert_eq!(traces[2]["count"], 0, "nothing since 2100");
    assert_eq!(traces[3]["client"], "roundcube");
    assert_eq!(traces[3]["outcome"], "error");
    assert!(
        traces[3]["error"].as_str().unwrap().contains("-32001"),
        "{}",
        traces[3]
    );
}
