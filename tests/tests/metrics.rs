//! Every daemon's `/metrics`, scraped over HTTP from the real processes after real traffic:
//! the families an operator's dashboards and alerts read are there with counts that reflect
//! the traffic, and `promtool check metrics` accepts each page. A metrics address that cannot
//! be listened on stops a daemon at start-up, naming the key.

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
};

use bonnie_tests::{
    cluster::{Cluster, dlist_request, free_port},
    logd,
    metrics::{Scrape, assert_valid, scrape_until, try_scrape},
    paths,
    process::{self, ChildGuard},
};
use serde_json::json;

/// A free loopback address for a metrics listener.
fn metrics_address() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// Sets `metrics_listen` in `[table]`.
fn listen_metrics(cluster: &Cluster, table: &str, address: &str) {
    cluster.add_keys(table, &format!("metrics_listen = \"{address}\""));
}

/// Cyrus's request for one notification on the dealer daemon's socket; the daemon's answer.
fn notify(cluster: &Cluster, json: &str) -> String {
    let mut stream = UnixStream::connect(cluster.dealer_socket()).expect("the dealer socket");
    stream
        .write_all(&dlist_request(json))
        .expect("sending the request");
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .expect("reading the answer");
    reply
}

/// The value of `series`, 0 if the page does not have it.
fn count(scrape: &Scrape, series: &str) -> f64 {
    scrape.value(series).unwrap_or(0.0)
}

/// Starts a worker that serves its metrics on `address` by `--metrics-listen` (as the
/// systemd template unit does for each instance), and waits until the broker lists it.
fn start_worker_with_metrics(cluster: &Cluster, address: &str) -> ChildGuard {
    let log = cluster.path().join("worker.log");
    let log = log.to_string_lossy();
    let worker = ChildGuard::spawn(
        "bonnie-worker",
        &mut cluster.command(
            "bonnie-worker",
            &["--log-file", &log, "--metrics-listen", address],
        ),
    );
    process::wait_until("the worker to connect", || {
        cluster.status()["workers"]
            .as_array()
            .is_some_and(|w| !w.is_empty())
    });
    worker
}

#[test]
fn a_notification_through_the_dealer_daemon_broker_and_worker_is_counted_by_each() {
    let cluster = Cluster::new(&["bonnie-sessions"], "");
    let (broker_at, dealer_at, worker_at) =
        (metrics_address(), metrics_address(), metrics_address());
    listen_metrics(&cluster, "broker", &broker_at);
    listen_metrics(&cluster, "dealer", &dealer_at);
    let _broker = cluster.start_broker();
    let _worker = start_worker_with_metrics(&cluster, &worker_at);
    let _dealer = cluster.start_dealer_daemon();
    scrape_until(&broker_at, "the broker to count its worker", |page| {
        count(page, "bonnie_broker_workers") == 1.0
    });

    assert_eq!(
        notify(&cluster, &paths::cyrus_event("Login-2.json")),
        "OK NIL\r\n"
    );

    let broker = scrape_until(&broker_at, "the job DONE in the broker's metrics", |page| {
        count(page, "bonnie_broker_jobs_done_total") >= 1.0
            && count(page, "bonnie_broker_jobs{state=\"DONE\"}") >= 1.0
    });
    assert_eq!(count(&broker, "bonnie_broker_submissions_total"), 1.0);
    assert_eq!(count(&broker, "bonnie_broker_jobs_failed_total"), 0.0);
    assert_eq!(count(&broker, "bonnie_broker_collectors"), 0.0);
    let dealer_messages = "bonnie_broker_router_events_total{router=\"dealer\",event=\"received\"}";
    assert!(count(&broker, dealer_messages) >= 1.0, "{}", broker.body);
    let refused = "bonnie_broker_router_events_total{router=\"dealer\",event=\"refused_message\"}";
    assert_eq!(broker.value(refused), Some(0.0), "{}", broker.body);
    for family in [
        "bonnie_broker_resubmissions_total",
        "bonnie_broker_jobs_postponed_total",
        "bonnie_broker_oldest_unfinished_job_age_seconds",
    ] {
        assert!(broker.has_family(family), "{family}:\n{}", broker.body);
    }
    for state in ["PENDING", "ALLOC", "POSTPONED", "FAILED"] {
        let series = format!("bonnie_broker_jobs{{state=\"{state}\"}}");
        assert_eq!(
            broker.value(&series),
            Some(0.0),
            "{series}:\n{}",
            broker.body
        );
    }
    assert_valid("bonnie-broker", &broker);

    let worker = scrape_until(&worker_at, "the job done in the worker's metrics", |page| {
        count(page, "bonnie_worker_jobs_total{outcome=\"done\"}") >= 1.0
    });
    assert_eq!(
        count(
            &worker,
            "bonnie_worker_handler_jobs_total{handler=\"sessions\",outcome=\"done\"}"
        ),
        1.0,
        "{}",
        worker.body
    );
    assert_eq!(
        count(
            &worker,
            "bonnie_worker_handler_duration_seconds_count{handler=\"sessions\"}"
        ),
        1.0
    );
    assert!(
        count(
            &worker,
            "bonnie_worker_write_duration_seconds_count{role=\"storage\",plugin=\"sqlite-storage\"}"
        ) >= 1.0,
        "{}",
        worker.body
    );
    assert_valid("bonnie-worker", &worker);

    let dealer = try_scrape(&dealer_at).expect("the dealer daemon's metrics");
    assert_eq!(
        count(
            &dealer,
            "bonnie_dealer_notifications_total{result=\"acknowledged\"}"
        ),
        1.0,
        "{}",
        dealer.body
    );
    assert_eq!(dealer.value("bonnie_dealer_spool_records"), Some(0.0));
    assert_eq!(dealer.value("bonnie_dealer_spool_bytes"), Some(0.0));
    assert_valid("bonnie-dealer --daemon", &dealer);
}

#[test]
fn what_the_dealer_daemon_spools_while_the_broker_is_down_shows_in_its_spool_gauges() {
    let cluster = Cluster::new(&[], "");
    let dealer_at = metrics_address();
    listen_metrics(&cluster, "dealer", &dealer_at);
    let _dealer = cluster.start_dealer_daemon();

    // No broker: the notification is not acknowledged in time and is spooled.
    assert_eq!(
        notify(&cluster, &paths::cyrus_event("Login-2.json")),
        "OK NIL\r\n"
    );
    let spooled = try_scrape(&dealer_at).expect("the dealer daemon's metrics");
    assert_eq!(
        count(
            &spooled,
            "bonnie_dealer_notifications_total{result=\"spooled\"}"
        ),
        1.0,
        "{}",
        spooled.body
    );
    assert_eq!(count(&spooled, "bonnie_dealer_spool_records"), 1.0);
    assert!(count(&spooled, "bonnie_dealer_spool_bytes") > 0.0);
    assert_valid("bonnie-dealer --daemon", &spooled);

    let _broker = cluster.start_broker();
    let forwarded = scrape_until(&dealer_at, "the spool forwarded", |page| {
        count(page, "bonnie_dealer_forwarded_total") == 1.0
            && count(page, "bonnie_dealer_spool_records") == 0.0
    });
    assert_eq!(forwarded.value("bonnie_dealer_spool_bytes"), Some(0.0));
}

#[test]
fn the_collector_counts_its_commands_by_kind_and_outcome() {
    // Cyrus is not there: every FETCH fails for now (transient) and its job is postponed.
    let closed = free_port();
    let collector = format!("imap_address = \"127.0.0.1:{closed}\"\npartitions = []\n");
    let cluster = Cluster::with_collector(
        &["bonnie-messageappend"],
        &collector,
        "[plugins.messageappend]\ncollect = [\"FETCH\"]\n",
    );
    let collector_at = metrics_address();
    listen_metrics(&cluster, "collector", &collector_at);
    let _broker = cluster.start_broker();
    let _worker = cluster.start_worker("worker");
    let _collector = cluster.start_collector("collector");
    let appended = paths::cyrus_event("MessageAppend-1.json");
    assert!(cluster.deal(appended.as_bytes()).status.success());

    let page = scrape_until(&collector_at, "a FETCH counted", |page| {
        count(
            page,
            "bonnie_collector_commands_total{command=\"FETCH\",outcome=\"transient\"}",
        ) >= 1.0
            && count(page, "bonnie_collector_jobs_total{outcome=\"postponed\"}") >= 1.0
    });
    assert!(
        count(
            &page,
            "bonnie_collector_command_duration_seconds_count{command=\"FETCH\"}"
        ) >= 1.0
    );
    for command in ["HEADER", "GETMETADATA", "GETACL", "GETUSERDATA"] {
        let series =
            format!("bonnie_collector_commands_total{{command=\"{command}\",outcome=\"ok\"}}");
        assert_eq!(page.value(&series), Some(0.0), "{series}:\n{}", page.body);
    }
    assert_eq!(
        count(&page, "bonnie_collector_jobs_total{outcome=\"done\"}"),
        0.0
    );
    assert_valid("bonnie-collector", &page);
}

#[test]
fn bonnie_api_counts_requests_by_method_and_status_and_calls_by_method_and_outcome() {
    let cluster = Cluster::new(&[], "");
    let api_at = metrics_address();
    let port = cluster.configure_api_with(&[], &format!("metrics_listen = \"{api_at}\"\n"));
    let mut client = cluster.add_api_client("roundcube");
    client.address = format!("127.0.0.1:{port}");
    let _api = cluster.run_api(port);

    let answer = client.call_raw("john.doe@example.org", "system.keygen", json!({}));
    assert_eq!(answer.status, 200, "{answer:?}");
    // A method the service does not have is counted, but not by its name.
    let answer = client.call_raw("john.doe@example.org", "event.nonsense", json!({}));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.get("error").is_some(), "{answer:?}");
    let refused = bonnie_tests::api::ApiClient {
        password: "not the password".to_string(),
        ..client
    }
    .call_raw("john.doe@example.org", "system.keygen", json!({}));
    assert_eq!(refused.status, 401, "{refused:?}");

    let page = scrape_until(&api_at, "the three requests counted", |page| {
        let post =
            |status| format!("bonnie_api_requests_total{{method=\"POST\",status=\"{status}\"}}");
        count(page, &post("200")) == 2.0 && count(page, &post("401")) == 1.0
    });
    let post_count = "bonnie_api_request_duration_seconds_count{method=\"POST\"}";
    assert_eq!(count(&page, post_count), 3.0);
    let keygen = "bonnie_api_calls_total{method=\"system.keygen\",outcome=\"ok\"}";
    assert_eq!(count(&page, keygen), 1.0, "{}", page.body);
    let unknown = "bonnie_api_calls_total{method=\"unknown\",outcome=\"error\"}";
    assert_eq!(count(&page, unknown), 1.0, "{}", page.body);
    assert!(!page.body.contains("nonsense"), "{}", page.body);
    let keygen_count = "bonnie_api_call_duration_seconds_count{method=\"system.keygen\"}";
    assert_eq!(count(&page, keygen_count), 1.0);
    assert_valid("bonnie-api", &page);
}

#[test]
fn bonnie_logd_counts_the_lines_it_hands_over_by_source_and_its_batches() {
    let logd_at = metrics_address();
    let cluster = Cluster::new(
        &[],
        &logd::table(&format!(
            "files = [\"log/mail.log\"]\nmetrics_listen = \"{logd_at}\""
        )),
    );
    let lines: Vec<String> = (0..3)
        .map(|n| format!("Dec  1 10:00:0{n} mx postfix/qmgr[101]: line {n}"))
        .collect();
    let log_dir = cluster.path().join("log");
    std::fs::create_dir_all(&log_dir).expect("making the log folder");
    logd::append(&log_dir.join("mail.log"), lines);
    let _broker = cluster.start_broker();
    let _logd = logd::start(&cluster);
    logd::wait_for_lines(&cluster, 3);

    let page = scrape_until(&logd_at, "three lines counted", |page| {
        count(page, "bonnie_logd_lines_total{source=\"file\"}") == 3.0
    });
    let batches = count(&page, "bonnie_logd_batches_total");
    assert!((1.0..=3.0).contains(&batches), "{}", page.body);
    assert_valid("bonnie-logd", &page);
}

#[test]
fn a_metrics_address_that_cannot_be_listened_on_stops_the_daemon_at_start_naming_the_key() {
    let cluster = Cluster::new(&[], "");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("holding a port");
    let taken = taken.local_addr().expect("its address").to_string();
    listen_metrics(&cluster, "broker", &taken);
    let output = process::run("bonnie-broker", &mut cluster.command("bonnie-broker", &[]));
    let said = process::describe(&output);
    assert!(!output.status.success(), "{said}");
    assert!(
        said.contains(&format!("[broker] metrics_listen = \"{taken}\""))
            && said.contains("cannot listen"),
        "{said}"
    );

    let output = process::run(
        "bonnie-worker",
        &mut cluster.command("bonnie-worker", &["--metrics-listen", "localhost:9431"]),
    );
    let said = process::describe(&output);
    assert!(!output.status.success(), "{said}");
    assert!(
        said.contains("--metrics-listen = \"localhost:9431\" is not an address and port"),
        "{said}"
    );
}
