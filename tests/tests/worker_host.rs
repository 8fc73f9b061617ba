//! The worker host running real plugin libraries: handler order and subscriptions, every
//! outcome kind reaching the input, panics isolated to their job, storage through the host
//! context, the out-of-tree handler, a clean stop on SIGTERM, and refusing to start (exit 1)
//! when a handler does not start, nothing would keep the records, or another worker's claim on
//! the storage excludes this one's.

use bonnie_tests::{
    fixtures, paths, process,
    worker::{WorkerLab, is_job},
};
use serde_json::json;

fn event(name: &str, test: &str) -> String {
    json!({ "event": name, "timestamp": "2026-11-28T17:13:21.544Z", "bonnie_test": test })
        .to_string()
}

#[test]
fn handlers_run_in_the_configured_order() {
    for (order, expected) in [
        (
            r#"["order-handler", "test-handler"]"#,
            json!(["order-handler", "test-handler"]),
        ),
        (
            r#"["test-handler", "order-handler"]"#,
            json!(["test-handler", "order-handler"]),
        ),
    ] {
        let lab = WorkerLab::with_plugins(
            &[
                "bonnie-fixture-test-handler",
                "bonnie-fixture-order-handler",
            ],
            "",
        );
        let config = std::fs::read_to_string(lab.config()).unwrap().replace(
            "[worker]\n",
            &format!("[worker]\nhandler_order = {order}\n"),
        );
        lab.write("bonnie.toml", &config);
        lab.notifications(&[paths::cyrus_event("Login-2.json")]);
        lab.run();
        assert_eq!(
            lab.record("in.jsonl:1")["handled_by"],
            expected,
            "order {order}"
        );
    }
}

#[test]
fn a_star_handler_sees_every_event_and_an_exact_one_only_its_own() {
    let lab = WorkerLab::with_plugins(
        &[
            "bonnie-fixture-test-handler",
            "bonnie-fixture-order-handler",
        ],
        "",
    );
    lab.notifications(&[
        paths::cyrus_event("Login-2.json"),
        paths::cyrus_event("Logout-1.json"),
        paths::cyrus_event("vnd.cmu.MessageMove-1.json"),
        paths::cyrus_event("MessageAppend-1.json"),
    ]);
    lab.run();
    // Without handler_order, handlers run by name: order-handler, then test-handler.
    assert_eq!(
        lab.record("in.jsonl:1")["handled_by"],
        json!(["order-handler", "test-handler"])
    );
    assert_eq!(
        lab.record("in.jsonl:2")["handled_by"],
        json!(["test-handler"])
    );
    assert_eq!(
        lab.record("in.jsonl:3")["handled_by"],
        json!(["test-handler"])
    );
    assert_eq!(
        lab.record("in.jsonl:4")["handled_by"],
        json!(["order-handler", "test-handler"])
    );
    // The rest of the notification is what Cyrus sent.
    assert_eq!(lab.record("in.jsonl:3")["vnd.cmu.oldUidset"], "2");
}

#[test]
fn every_outcome_kind_reaches_the_input() {
    let lab = WorkerLab::with_plugins(&["bonnie-fixture-test-handler"], "");
    let config = std::fs::read_to_string(lab.config()).unwrap().replace(
        "retry_delay_ms = 10",
        "retry_delay_ms = 10\nmax_attempts = 2",
    );
    lab.write("bonnie.toml", &config);
    lab.notifications(&[
        event("Login", ""),
        event("MessageAppend", "collect"),
        event("Logout", "postpone"),
        event("FlagsSet", "reject"),
        event("FlagsClear", "error"),
        event("MessageRead", "panic"),
        "this line is not JSON".to_string(),
    ]);
    lab.run();

    assert_eq!(lab.outcome("in.jsonl:1")["outcome"], "done");
    let collect = lab.outcome("in.jsonl:2");
    assert_eq!(collect["outcome"], "collect");
    assert_eq!(collect["commands"], json!(["FETCH", "HEADER"]));
    assert!(
        collect["notification"]
            .as_str()
            .unwrap()
            .contains("\"MessageAppend\"")
    );

    // Postponed, retried once, then given up after max_attempts = 2.
    let postponed = lab.outcomes_of("in.jsonl:3");
    assert_eq!(postponed.len(), 2, "{postponed:?}");
    assert_eq!(postponed[0]["outcome"], "postponed");
    assert_eq!(
        postponed[0]["reason"],
        "handler test-handler: asked to postpone"
    );
    assert_eq!(postponed[1]["outcome"], "failed");
    assert_eq!(postponed[1]["attempt"], 2);

    let rejected = lab.outcome("in.jsonl:4");
    assert_eq!(rejected["outcome"], "rejected");
    assert_eq!(rejected["reason"], "handler test-handler: asked to reject");
    // A transient error is a postponement.
    assert_eq!(lab.outcomes_of("in.jsonl:5")[0]["outcome"], "postponed");
    let panicked = lab.outcome("in.jsonl:6");
    assert_eq!(panicked["outcome"], "failed");
    assert!(
        panicked["reason"]
            .as_str()
            .unwrap()
            .contains("panicked: test-handler was asked to panic by job in.jsonl:6:")
    );
    let malformed = lab.outcome("in.jsonl:7");
    assert_eq!(malformed["outcome"], "rejected");

    // Only the done job reached the output.
    let written = lab.output_records();
    assert_eq!(written.len(), 1);
    assert!(is_job(&written[0]["job_id"], "in.jsonl:1"));
}

#[test]
fn a_panicking_handler_fails_only_its_job_and_the_next_job_succeeds() {
    let lab = WorkerLab::with_plugins(&["bonnie-fixture-test-handler"], "");
    let config = std::fs::read_to_string(lab.config())
        .unwrap()
        .replace("threads = 2", "threads = 1");
    lab.write("bonnie.toml", &config);
    lab.notifications(&[
        event("Login", "panic"),
        event("Login", ""),
        event("Login", "panic"),
        event("Logout", ""),
    ]);
    let output = lab.run();

    assert_eq!(lab.outcome("in.jsonl:1")["outcome"], "failed");
    assert_eq!(lab.outcome("in.jsonl:2")["outcome"], "done");
    assert_eq!(lab.outcome("in.jsonl:3")["outcome"], "failed");
    assert_eq!(lab.outcome("in.jsonl:4")["outcome"], "done");
    assert_eq!(
        lab.record("in.jsonl:4")["handled_by"],
        json!(["test-handler"])
    );
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains(
            "handler test-handler panicked: test-handler was asked to panic by job in.jsonl:3:"
        ),
        "{log}"
    );
}

#[test]
fn a_handler_returning_garbage_fails_its_job_naming_the_handler() {
    let lab = WorkerLab::with_plugins(&["bonnie-fixture-test-handler"], "");
    lab.notifications(&[event("Login", "garbage"), event("Login", "")]);
    lab.run();
    let garbage = lab.outcome("in.jsonl:1");
    assert_eq!(garbage["outcome"], "failed");
    assert_eq!(
        garbage["reason"],
        "handler test-handler returned a notification that is not a JSON object"
    );
    assert_eq!(lab.outcome("in.jsonl:2")["outcome"], "done");
}

/// Runs the worker on one notification, expecting it to refuse to start: exit 1, no job
/// taken. What it said on standard error.
fn refused_start(lab: &WorkerLab) -> String {
    lab.notifications(&[event("Login", "")]);
    let output = process::run("bonnie-worker", &mut lab.command(&[]));
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        process::describe(&output)
    );
    assert!(
        lab.outcomes().is_empty(),
        "no job was taken, none marked DONE"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_worker_whose_handler_fails_to_start_refuses_to_start_naming_it() {
    let lab = WorkerLab::with_plugins(
        &["bonnie-fixture-test-handler"],
        "[plugins.test-handler]\nfail_to_start = \"its licence file is missing\"\n",
    );
    let stderr = refused_start(&lab);
    assert!(
        stderr.contains("the handler plugin test-handler did not start")
            && stderr.contains("its licence file is missing"),
        "{stderr}"
    );
    assert!(lab.output_records().is_empty());
}

#[test]
fn a_sole_writer_keeps_other_workers_off_its_storage_until_it_stops() {
    let lab = WorkerLab::with_plugins(&["bonnie-fixture-test-handler"], "");
    // The sole worker follows its input, so it runs until it is stopped.
    let config = std::fs::read_to_string(lab.config()).unwrap();
    let sole = config
        .replace("threads = 2", "threads = 2\nsole_writer = true")
        .replace("retry_delay_ms = 10", "retry_delay_ms = 10\nfollow = true");
    lab.write("bonnie.toml", &sole);
    lab.notifications(&[event("Login", "")]);
    let running = lab.spawn();
    process::wait_until("the sole worker to archive its first job", || {
        lab.outcomes().len() == 1
    });
    // Others: their own input and journal, the same database.
    let other = |sole: bool| {
        let config = config
            .replace("threads = 2", &format!("threads = 2\nsole_writer = {sole}"))
            .replace("\"in.jsonl\"", "\"other.jsonl\"")
            .replace(
                "retry_delay_ms = 10",
                "retry_delay_ms = 10\njournal = \"var/other-outcomes.jsonl\"",
            );
        let path = lab.path().join(format!("other-{sole}.toml"));
        std::fs::write(&path, config).unwrap();
        lab.write("other.jsonl", &(event("Logout", "") + "\n"));
        process::run("bonnie-worker", &mut lab.command_with_config(&path, &[]))
    };
    for (sole, says) in [
        (true, "another worker writes"),
        (false, "a worker with sole_writer = true"),
    ] {
        let refused = other(sole);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(
            refused.status.code(),
            Some(1),
            "{}",
            process::describe(&refused)
        );
        assert!(
            stderr.contains(says) && stderr.contains("bonnie.db"),
            "sole_writer = {sole}: {stderr}"
        );
        assert!(!lab.path().join("var/other-outcomes.jsonl").exists());
    }
    running.signal("TERM");
    lab.wait_ok(running);
    let after = other(false);
    assert!(
        process::succeeded(&after.status),
        "{}",
        process::describe(&after)
    );
}

#[test]
fn a_worker_with_neither_storage_nor_output_refuses_to_start() {
    let lab = WorkerLab::new();
    lab.add_plugin(&paths::plugin("bonnie-jsonl-input"));
    lab.add_plugin(&paths::plugin("bonnie-fixture-test-handler"));
    lab.write(
        "bonnie.toml",
        "[worker]\nplugin_dir = \"plugins\"\n\n[plugins.jsonl-input]\nfiles = [\"in.jsonl\"]\n",
    );
    let stderr = refused_start(&lab);
    assert!(
        stderr.contains("neither a storage nor an output plugin"),
        "{stderr}"
    );
}

#[test]
fn handlers_reach_storage_through_the_host_context_and_log_through_the_host() {
    let lab = WorkerLab::with_plugins(&["bonnie-fixture-test-handler"], "");
    lab.notifications(&[event("Login", "storage")]);
    let output = lab.run();
    let roundtrip = &lab.record("in.jsonl:1")["storage_roundtrip"];
    assert!(
        is_job(&roundtrip["by_key"]["job"], "in.jsonl:1"),
        "{roundtrip}"
    );
    assert_eq!(roundtrip["by_index"], 1);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.lines().any(|l| l.contains("Storage round trip done.")
            && l.contains("test-handler")
            && l.contains("job=in.jsonl:1:")),
        "{log}"
    );
}

#[test]
fn the_out_of_tree_handler_changes_what_is_written() {
    let lab = WorkerLab::with_plugins(
        &[],
        "[plugins.login-watch]\ntrusted_networks = [\"10.0.0.0/8\"]\n",
    );
    lab.add_plugin(&fixtures::third_party_handler());
    let mut from_loopback: serde_json::Value =
        serde_json::from_str(&paths::cyrus_event("Login-2.json")).unwrap();
    from_loopback["clientIP"] = json!("127.0.0.1");
    let mut from_lan = from_loopback.clone();
    from_lan["clientIP"] = json!("10.1.2.3");
    lab.notifications(&[
        from_loopback.to_string(),
        from_lan.to_string(),
        paths::cyrus_event("Logout-1.json"),
    ]);
    let output = lab.run();

    assert_eq!(
        lab.record("in.jsonl:1")["login_watch"],
        json!({ "trusted": false })
    );
    assert_eq!(
        lab.record("in.jsonl:2")["login_watch"],
        json!({ "trusted": true })
    );
    assert!(
        lab.record("in.jsonl:3").get("login_watch").is_none(),
        "Logout is not its event"
    );
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains("Login from outside the trusted networks."),
        "{log}"
    );
}

#[test]
fn processed_jobs_are_stored_once_in_sqlite_even_when_replayed() {
    let lab = WorkerLab::with_plugins(&[], "");
    lab.notifications(&[
        paths::cyrus_event("Login-2.json"),
        paths::cyrus_event("Logout-1.json"),
    ]);
    lab.run();
    // Forget the journal: every line runs again, as after a crash before the outcome was kept.
    std::fs::remove_file(lab.path().join("var/jsonl-input/outcomes.jsonl")).unwrap();
    lab.run();

    let db = rusqlite::Connection::open(lab.path().join("var/bonnie.db")).unwrap();
    let rows: Vec<(String, String, String)> = db
        .prepare("SELECT substr(job_id, 1, 10), event, user FROM log ORDER BY job_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (
                "in.jsonl:1".to_string(),
                "Login".to_string(),
                "john.doe@example.org".to_string()
            ),
            (
                "in.jsonl:2".to_string(),
                "Logout".to_string(),
                "jane.doe@example.org".to_string()
            ),
        ]
    );
    assert_eq!(
        lab.output_records().len(),
        2,
        "the output is idempotent by job id too"
    );
    assert_eq!(
        bonnie_sqlite_storage::log::verify(&db).unwrap(),
        None,
        "the hash chain holds"
    );
}

#[test]
fn sigterm_finishes_the_jobs_in_flight_and_exits_0() {
    let lab = WorkerLab::with_plugins(&["bonnie-fixture-test-handler"], "");
    let config = std::fs::read_to_string(lab.config()).unwrap().replace(
        "files = [\"in.jsonl\"]",
        "files = [\"in.jsonl\"]\nfollow = true",
    );
    lab.write("bonnie.toml", &config);
    lab.notifications(&[event("Login", ""), event("Login", "sleep")]);
    let worker = lab.spawn();
    // The second job sleeps in its handler for 1.5 s: stop the worker meanwhile.
    process::wait_until("the second job in its handler", || {
        lab.log().contains("Sleeping.")
    });
    worker.signal("TERM");
    lab.wait_ok(worker);
    assert_eq!(lab.outcome("in.jsonl:1")["outcome"], "done");
    assert_eq!(lab.outcome("in.jsonl:2")["outcome"], "done");
    assert_eq!(
        lab.record("in.jsonl:2")["handled_by"],
        json!(["test-handler"])
    );
    assert!(
        lab.log()
            .contains("Stopping: finishing the jobs in flight."),
        "{}",
        lab.log()
    );
}
