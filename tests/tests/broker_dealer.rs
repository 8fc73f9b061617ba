//! Every notification reaches the archive exactly once, through real dealers, a real broker
//! and real workers over real ZeroMQ sockets: in bulk, across broker crashes, with the broker
//! down, when a worker dies mid-job, in daemon mode, and in the face of garbage.

use std::{
    collections::BTreeSet,
    io::{Read, Write},
    os::unix::net::UnixStream,
    time::Duration,
};

use bonnie_tests::{
    cluster::{Cluster, dlist_request},
    paths, process,
    worker::ARCHIVE_HANDLERS,
};
use serde_json::json;

fn notification(n: usize) -> String {
    json!({ "event": "Login", "timestamp": "2026-11-28T17:13:17.506Z", "user": "john.doe@example.org", "n": n })
        .to_string()
}

/// The `n` of every archived record, and how many records there are.
fn archived_numbers(cluster: &Cluster) -> (BTreeSet<i64>, usize) {
    let db = cluster.archive();
    let mut stmt = db
        .prepare("SELECT json_extract(record, '$.n') FROM log")
        .unwrap();
    let numbers: Vec<i64> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let count = numbers.len();
    (numbers.into_iter().collect(), count)
}

/// Runs `count` dealer invocations on `threads` threads, like notifyd runs them.
fn deal_many(cluster: &Cluster, count: usize, threads: usize) {
    std::thread::scope(|scope| {
        for t in 0..threads {
            scope.spawn(move || {
                for n in (t..count).step_by(threads) {
                    let output = cluster.deal(notification(n).as_bytes());
                    assert!(
                        process::succeeded(&output.status),
                        "dealer {n}:\n{}",
                        process::describe(&output)
                    );
                    assert!(output.stdout.is_empty());
                }
            });
        }
    });
}

fn flush_until_empty(cluster: &Cluster) {
    process::wait_until("the spool to be flushed", || {
        cluster.flush().status.success()
    });
}

#[test]
fn ten_thousand_dealer_invocations_through_two_workers_are_archived_exactly_once() {
    let cluster = Cluster::new(&[], "");
    let _broker = cluster.start_broker();
    let first = cluster.start_worker("worker-1");
    let second = cluster.start_worker("worker-2");
    deal_many(&cluster, 10_000, 8);
    flush_until_empty(&cluster);
    process::wait_until("10,000 archived records", || cluster.archived() >= 10_000);

    let (numbers, count) = archived_numbers(&cluster);
    assert_eq!(count, 10_000, "no duplicates");
    assert_eq!(
        numbers,
        (0..10_000).collect::<BTreeSet<i64>>(),
        "none missing"
    );
    // The broker hears of the last outcomes a moment after the records are stored.
    process::wait_until("every job DONE at the broker", || {
        cluster.status()["jobs"]["DONE"] == 10_000
    });
    // Both workers took part: each reports what it did when it stops.
    let mut total = 0;
    for (worker, name) in [(first, "worker-1"), (second, "worker-2")] {
        worker.signal("TERM");
        assert!(process::succeeded(&worker.wait().status), "{name}");
        let done = done_count(&cluster.log(name));
        assert!(done > 0, "{name} did no job");
        total += done;
    }
    assert!(total >= 10_000, "the workers report {total} jobs done");
}

/// The `done=` count a worker logs when it stops.
fn done_count(log: &str) -> u64 {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("Worker stopped."))
        .expect("a stop line");
    let value = line.split("done=").nth(1).expect("a done count");
    value
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_broker_killed_at_random_moments_loses_and_duplicates_nothing() {
    const TOTAL: usize = 3000;
    let cluster = Cluster::new(&[], "");
    let broker = std::sync::Mutex::new(Some(cluster.start_broker()));
    let _worker = cluster.start_worker("worker");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("random seed {seed}");
    let mut random = seed | 1;
    let mut next = move |below: u64| {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random % below
    };
    let pauses: Vec<(u64, u64)> = (0..3)
        .map(|_| (200 + next(1500), 100 + next(700)))
        .collect();
    std::thread::scope(|scope| {
        let dealing = scope.spawn(|| deal_many(&cluster, TOTAL, 4));
        for (run_ms, down_ms) in &pauses {
            std::thread::sleep(Duration::from_millis(*run_ms));
            if let Some(running) = broker.lock().unwrap().take() {
                running.signal("KILL");
                drop(running.wait());
            }
            std::thread::sleep(Duration::from_millis(*down_ms));
            *broker.lock().unwrap() = Some(cluster.start_broker());
        }
        dealing.join().unwrap();
    });
    flush_until_empty(&cluster);
    process::wait_until("every notification archived", || {
        cluster.archived() >= TOTAL
    });
    // Let late redeliveries of jobs whose DONE was lost in a crash arrive too.
    std::thread::sleep(Duration::from_secs(1));

    let (numbers, count) = archived_numbers(&cluster);
    assert_eq!(count, TOTAL, "nothing duplicated (seed {seed})");
    assert_eq!(
        numbers,
        (0..TOTAL as i64).collect::<BTreeSet<i64>>(),
        "nothing lost (seed {seed})"
    );
}

#[test]
fn with_the_broker_down_dealers_spool_and_everything_arrives_later_in_order() {
    const TOTAL: usize = 60;
    let cluster = Cluster::new(&[], "");
    for n in 0..TOTAL {
        let output = cluster.deal(notification(n).as_bytes());
        assert!(
            process::succeeded(&output.status),
            "{}",
            process::describe(&output)
        );
    }
    for n in 0..TOTAL {
        let needle = format!("\"n\":{n},");
        assert!(
            cluster.spooled(needle.as_bytes()),
            "notification {n} is in the spool"
        );
    }

    let _broker = cluster.start_broker();
    let _worker = cluster.start_worker("worker");
    flush_until_empty(&cluster);
    process::wait_until("every notification archived", || {
        cluster.archived() >= TOTAL
    });
    let (numbers, count) = archived_numbers(&cluster);
    assert_eq!((numbers.len(), count), (TOTAL, TOTAL));
    // The broker stored them in the order Cyrus produced them.
    let store = cluster.job_store();
    let mut stmt = store
        .prepare("SELECT json_extract(notification, '$.n') FROM jobs ORDER BY seq")
        .unwrap();
    let order: Vec<i64> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(order, (0..TOTAL as i64).collect::<Vec<_>>());
}

#[test]
fn a_worker_killed_mid_job_leaves_the_job_to_another_worker() {
    let cluster = Cluster::new(&["bonnie-fixture-test-handler"], "");
    let _broker = cluster.start_broker();
    let doomed = cluster.start_worker("doomed");
    let job = json!({ "event": "Login", "user": "john.doe@example.org", "bonnie_test": "sleep" })
        .to_string();
    assert!(cluster.deal(job.as_bytes()).status.success());
    process::wait_until("the job in the first worker's handler", || {
        cluster.log("doomed").contains("Sleeping.")
    });
    doomed.signal("KILL");
    drop(doomed.wait());
    assert_eq!(cluster.archived(), 0, "the killed worker did not finish it");

    let _rescuer = cluster.start_worker("rescuer");
    process::wait_until("the job archived by the second worker", || {
        cluster.archived() == 1
    });
    assert!(cluster.log("rescuer").contains("Sleeping."));
    let record: String = cluster
        .archive()
        .query_row("SELECT record FROM log", [], |r| r.get(0))
        .unwrap();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["handled_by"], json!(["test-handler"]));
    process::wait_until("the dead worker dropped", || {
        cluster.status()["workers"].as_array().unwrap().len() == 1
    });
}

#[test]
fn a_notification_without_a_timestamp_is_dated_when_the_broker_first_stored_it() {
    let cluster = Cluster::new(&ARCHIVE_HANDLERS, "");
    let _broker = cluster.start_broker();
    let untimed = json!({ "event": "Login", "service": "imap", "user": "john.doe@example.org",
        "vnd.cmu.sessionId": "untimed-1" })
    .to_string();
    assert!(cluster.deal(untimed.as_bytes()).status.success());
    let stored_ms: i64 = cluster
        .job_store()
        .query_row("SELECT created_ms FROM jobs", [], |r| r.get(0))
        .unwrap();
    // The worker comes well after the broker stored the job, so the time it runs the job is
    // not the time the job was received.
    std::thread::sleep(Duration::from_millis(1500));
    let _worker = cluster.start_worker("late");
    process::wait_until("the untimed notification archived", || {
        cluster.archived() == 1
    });
    let record = &cluster.log_records()[0];
    assert_eq!(
        record["@timestamp"],
        json!(bonnie_core::time::format_rfc3339_ms(stored_ms)),
        "{record}"
    );
}

#[test]
fn an_acl_a_notification_brings_is_dropped_unless_a_collector_wrote_it() {
    let cluster = Cluster::new(&ARCHIVE_HANDLERS, "");
    let _broker = cluster.start_broker();
    let _worker = cluster.start_worker("w");
    // Cyrus's own AclChange, with the `acl` only a collector's GETACL writes added by whoever
    // sent it: it grants mallory everything.
    let mut forged: serde_json::Value =
        serde_json::from_str(&paths::cyrus_event("AclChange-1.json")).unwrap();
    forged["acl"] = json!({ "mallory@example.org": "lrswipkxtecdan" });
    assert!(cluster.deal(forged.to_string().as_bytes()).status.success());
    process::wait_until("the AclChange archived", || cluster.archived() == 1);
    let record = &cluster.log_records()[0];
    assert_eq!(
        record["collector_fields_dropped"],
        json!(["acl"]),
        "{record}"
    );
    for collection in ["folders", "folders-current"] {
        for body in cluster.archived_bodies(collection) {
            assert!(!body.contains("mallory"), "{collection}: {body}");
            assert!(body.contains("jane.doe"), "Cyrus's own ACL is kept: {body}");
        }
    }
    assert!(
        cluster.log("w").contains("fields only a collector writes"),
        "the worker says what it dropped"
    );
}

/// Cyrus 3.6's exact request on a `notifysocket: dlist:` connection.
fn send_dlist(cluster: &Cluster, json: &str) -> String {
    let mut stream = UnixStream::connect(cluster.dealer_socket()).unwrap();
    stream.write_all(&dlist_request(json)).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

fn stored_jobs(cluster: &Cluster) -> Vec<Vec<u8>> {
    let store = cluster.job_store();
    let mut stmt = store
        .prepare("SELECT notification FROM jobs ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn the_daemon_answers_ok_nil_only_once_the_notification_is_durable() {
    let cluster = Cluster::new(&[], "");
    let broker = cluster.start_broker();
    let _daemon = cluster.start_dealer_daemon();

    let login = paths::cyrus_event("Login-2.json");
    assert_eq!(send_dlist(&cluster, &login), "OK NIL\r\n");
    // The answer came after the broker's ACK, which came after its commit.
    assert_eq!(stored_jobs(&cluster), vec![login.as_bytes().to_vec()]);

    broker.signal("KILL");
    drop(broker.wait());
    let logout = paths::cyrus_event("Logout-1.json");
    assert_eq!(send_dlist(&cluster, &logout), "OK NIL\r\n");
    assert!(
        cluster.spooled(logout.as_bytes()),
        "the answer came after the spool was synced"
    );

    let _broker = cluster.start_broker();
    process::wait_until("the daemon to forward its spool", || {
        stored_jobs(&cluster).len() == 2
    });
    assert_eq!(stored_jobs(&cluster)[1], logout.as_bytes().to_vec());
}

#[test]
fn the_daemon_serves_many_connections_at_once_whose_requests_come_in_pieces() {
    let cluster = Cluster::new(&[], "");
    let _broker = cluster.start_broker();
    let _daemon = cluster.start_dealer_daemon();

    // 200 imapds write their requests in three pieces, interleaved with each other; none
    // gets an answer before its request is whole, and every one gets its own.
    const CONNECTIONS: usize = 200;
    let requests: Vec<Vec<u8>> = (0..CONNECTIONS)
        .map(|n| dlist_request(&notification(n)))
        .collect();
    let mut streams: Vec<UnixStream> = (0..CONNECTIONS)
        .map(|_| UnixStream::connect(cluster.dealer_socket()).unwrap())
        .collect();
    for piece in 0..3 {
        for (stream, request) in streams.iter_mut().zip(&requests) {
            let third = request.len() / 3;
            let range = match piece {
                0 => 0..third,
                1 => third..2 * third,
                _ => 2 * third..request.len(),
            };
            stream.write_all(&request[range]).unwrap();
        }
        if piece < 2 {
            std::thread::sleep(Duration::from_millis(50));
            let mut early = 0;
            for stream in &streams {
                stream.set_nonblocking(true).unwrap();
                early += usize::from((&mut &*stream).read(&mut [0u8; 8]).is_ok());
                stream.set_nonblocking(false).unwrap();
            }
            assert_eq!(early, 0, "answers came before the requests were whole");
        }
    }
    // One more hangs up halfway through its request: its bytes are kept as they are.
    let torn = &dlist_request(&notification(CONNECTIONS))[..40];
    UnixStream::connect(cluster.dealer_socket())
        .unwrap()
        .write_all(torn)
        .unwrap();
    for mut stream in streams {
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "OK NIL\r\n");
    }

    process::wait_until("the torn request stored", || {
        stored_jobs(&cluster).len() == CONNECTIONS + 1
    });
    let stored = stored_jobs(&cluster);
    let expected: BTreeSet<Vec<u8>> = (0..CONNECTIONS)
        .map(|n| notification(n).into_bytes())
        .chain([torn.to_vec()])
        .collect();
    assert_eq!(stored.iter().cloned().collect::<BTreeSet<_>>(), expected);
}

#[test]
fn a_request_that_stalls_is_kept_as_it_is_once_its_time_is_up_and_holds_up_no_other() {
    let cluster = cluster_with_dealer("request_timeout_ms = 500");
    let _broker = cluster.start_broker();
    let _daemon = cluster.start_dealer_daemon();

    let stalled_bytes = &dlist_request(&notification(1))[..40];
    let mut stalled = UnixStream::connect(cluster.dealer_socket()).unwrap();
    stalled.write_all(stalled_bytes).unwrap();
    // Another imapd is served meanwhile.
    assert_eq!(send_dlist(&cluster, &notification(2)), "OK NIL\r\n");
    assert_eq!(stored_jobs(&cluster), vec![notification(2).into_bytes()]);

    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reply = String::new();
    stalled.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "OK NIL\r\n");
    assert_eq!(
        stored_jobs(&cluster),
        vec![notification(2).into_bytes(), stalled_bytes.to_vec()],
        "the torn request is kept as it came, after the complete one"
    );
}

/// A cluster whose dealer daemon's `[dealer]` table has `keys` too.
fn cluster_with_dealer(keys: &str) -> Cluster {
    let cluster = Cluster::new(&[], "");
    cluster.add_dealer_keys(keys);
    cluster
}

#[test]
fn a_daemon_told_to_stop_takes_no_new_connection_and_finishes_those_it_has() {
    // One connection at a time: a second one waits, unanswered, in the socket's backlog.
    let cluster = cluster_with_dealer("daemon_connections = 1");
    let _broker = cluster.start_broker();
    let daemon = cluster.start_dealer_daemon();

    let request = dlist_request(&notification(7));
    let (first, rest) = request.split_at(request.len() / 2);
    let mut open = UnixStream::connect(cluster.dealer_socket()).unwrap();
    open.write_all(first).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut queued = UnixStream::connect(cluster.dealer_socket()).unwrap();
    queued.write_all(&dlist_request(&notification(8))).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    queued.set_nonblocking(true).unwrap();
    assert_eq!(
        queued.read(&mut [0u8; 8]).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock),
        "a connection beyond daemon_connections waits"
    );
    queued.set_nonblocking(false).unwrap();

    daemon.signal("TERM");
    process::wait_until("the daemon to close its socket", || {
        UnixStream::connect(cluster.dealer_socket()).is_err()
    });
    open.write_all(rest).unwrap();
    for stream in [&mut open, &mut queued] {
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "OK NIL\r\n");
    }
    let ended = daemon.wait();
    assert!(ended.status.success(), "{}", process::describe(&ended));
    let stored: BTreeSet<Vec<u8>> = stored_jobs(&cluster).into_iter().collect();
    assert_eq!(
        stored,
        [notification(7), notification(8)]
            .map(String::into_bytes)
            .into()
    );
}

#[test]
fn with_the_broker_down_many_connections_at_once_are_spooled_and_delivered_later() {
    let cluster = Cluster::new(&[], "");
    let _daemon = cluster.start_dealer_daemon();

    const CONNECTIONS: usize = 100;
    let mut streams: Vec<UnixStream> = (0..CONNECTIONS)
        .map(|n| {
            let mut stream = UnixStream::connect(cluster.dealer_socket()).unwrap();
            stream.write_all(&dlist_request(&notification(n))).unwrap();
            stream
        })
        .collect();
    for stream in &mut streams {
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "OK NIL\r\n");
    }
    for n in 0..CONNECTIONS {
        assert!(
            cluster.spooled(notification(n).as_bytes()),
            "notification {n} was answered before it was in the spool"
        );
    }

    let _broker = cluster.start_broker();
    process::wait_until("the spool forwarded", || {
        stored_jobs(&cluster).len() == CONNECTIONS
    });
    let stored: BTreeSet<Vec<u8>> = stored_jobs(&cluster).into_iter().collect();
    let expected: BTreeSet<Vec<u8>> = (0..CONNECTIONS)
        .map(|n| notification(n).into_bytes())
        .collect();
    assert_eq!(stored, expected);
}

#[test]
fn garbage_on_every_router_is_counted_and_the_broker_keeps_serving() {
    use bonnie_core::transport;
    let cluster = Cluster::new(&[], "");
    let _broker = cluster.start_broker();
    let config = bonnie_core::Config::load(&cluster.config()).unwrap();
    let context = transport::context();
    let garbage: Vec<Vec<Vec<u8>>> = vec![
        vec![vec![0xff, 0x00, 0xfe]],
        vec![b"LAUNCH".to_vec(), b"missiles".to_vec()],
        vec![b"NOTIFY".to_vec()],
        vec![b"DONE".to_vec(), b"no such job".to_vec()],
        vec![b"READY".to_vec(), b"lots".to_vec()],
        vec![Vec::new(), vec![0u8; 100_000]],
    ];
    let b = &config.broker;
    for address in [
        &b.dealer_address,
        &b.controller_address,
        &b.worker_address,
        &b.collector_address,
        &b.admin_address,
    ] {
        let socket =
            transport::dealer(&context, address, b"Garbage-1", Duration::from_secs(1)).unwrap();
        for frames in &garbage {
            transport::send(&socket, frames).unwrap();
        }
        // A job outcome from a peer that never said READY.
        transport::send(&socket, &[b"DONE".to_vec(), b"abc".to_vec()]).unwrap();
    }
    drop(context);

    process::wait_until("the garbage counted", || {
        let routers = &cluster.status()["routers"];
        ["dealer", "controller", "worker", "collector", "admin"]
            .iter()
            .all(|r| {
                let c = &routers[r];
                c["messages"].as_u64().unwrap_or(0) > garbage.len() as u64
            })
    });
    let routers = cluster.status()["routers"].clone();
    for router in ["dealer", "controller", "worker", "collector", "admin"] {
        let c = &routers[router];
        let ignored = c["malformed"].as_u64().unwrap()
            + c["unknown_commands"].as_u64().unwrap()
            + c["unknown_peers"].as_u64().unwrap();
        assert!(ignored >= 4, "{router}: {c}");
        assert!(
            c["unknown_commands"].as_u64().unwrap() >= 1,
            "{router}: {c}"
        );
    }
    assert!(
        routers["controller"]["unknown_peers"].as_u64().unwrap() >= 1,
        "{routers}"
    );

    // Still serving.
    let _worker = cluster.start_worker("worker");
    assert!(cluster.deal(notification(1).as_bytes()).status.success());
    process::wait_until("the notification archived", || cluster.archived() == 1);
}

#[test]
fn invalid_utf8_and_64_kib_notifications_are_kept_and_failed_jobs_can_be_retried() {
    let cluster = Cluster::new(&[], "");
    let _broker = cluster.start_broker();
    let _worker = cluster.start_worker("worker");
    let invalid: &[u8] = b"{\"event\":\"Login\",\"user\":\"j\xf6rg\xff\"}";
    let garbage: &[u8] = b"not a notification \xff";
    let mut big = json!({ "event": "MessageAppend", "user": "john.doe@example.org", "pad": "" });
    big["pad"] = json!("x".repeat(64 * 1024));
    let big = big.to_string();
    for bytes in [invalid, big.as_bytes(), garbage] {
        let output = cluster.deal(bytes);
        assert!(
            process::succeeded(&output.status),
            "{}",
            process::describe(&output)
        );
    }
    process::wait_until("the big and the invalid notification archived", || {
        cluster.archived() == 2
    });
    let stored = stored_jobs(&cluster);
    assert_eq!(
        stored,
        vec![invalid.to_vec(), big.as_bytes().to_vec(), garbage.to_vec()],
        "kept byte for byte"
    );
    let records: Vec<String> = cluster
        .archive()
        .prepare("SELECT record FROM log ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(records.iter().any(|record| record.len() == big.len()));
    // tests/tests/non_utf8.rs proves what the record of the invalid one holds.
    assert!(
        records
            .iter()
            .any(|record| record.contains("\"user\":\"jörgÿ\""))
    );

    process::wait_until("the garbage FAILED", || {
        cluster.status()["jobs"]["FAILED"] == 1
    });
    let failed = cluster.bonnie(&["jobs", "failed", "--json"]);
    let failed: serde_json::Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not a JSON object"),
        "{failed}"
    );
    let id = failed[0]["id"].as_str().unwrap().to_string();
    let listing = String::from_utf8_lossy(&cluster.bonnie(&["jobs", "failed"]).stdout).into_owned();
    assert!(listing.contains(&id), "{listing}");

    let retry = cluster.bonnie(&["jobs", "retry", &id]);
    assert!(retry.status.success(), "{}", process::describe(&retry));
    assert!(String::from_utf8_lossy(&retry.stdout).contains("1 job(s) returned to PENDING"));
    // It fails again (the bytes are what they are), and is kept again.
    process::wait_until("the retried job FAILED again", || {
        cluster.status()["jobs"]["FAILED"] == 1
    });
    let unknown = cluster.bonnie(&["jobs", "retry", "no-such-job"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no FAILED job with id no-such-job"));
}

#[test]
fn drop_rules_keep_the_admin_logins_out() {
    let cluster = cluster_with_dealer(
        "drop_event_users = [\"Login cyrus\"]\ndrop_events = [\"MailboxModseq\"]",
    );
    let _broker = cluster.start_broker();
    for event in ["Login-1.json", "MailboxModseq-1.json", "Login-2.json"] {
        assert!(
            cluster
                .deal(paths::cyrus_event(event).as_bytes())
                .status
                .success()
        );
    }
    let stored = stored_jobs(&cluster);
    assert_eq!(
        stored,
        vec![paths::cyrus_event("Login-2.json").into_bytes()]
    );
}

#[test]
fn every_binary_answers_help() {
    for binary in ["bonnie-broker", "bonnie-dealer", "bonnie"] {
        let output = process::run(
            binary,
            std::process::Command::new(paths::bin(binary)).arg("--help"),
        );
        assert!(process::succeeded(&output.status), "{binary}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("--config"),
            "{binary}"
        );
    }
}
