//! The dealer's faults, with real dealers, a real broker and real spool files: a spool torn
//! mid-record or holding garbage delivers everything after the damage and keeps the damaged
//! bytes; the daemon rests a broker that went away a second at most and drains its spool
//! once it is back; exec dealers beside a running daemon never wait on its spool.

use std::{
    collections::BTreeSet,
    io::{Read, Write},
    ops::Range,
    os::unix::{fs::PermissionsExt, net::UnixStream},
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use bonnie_tests::{
    cluster::{Cluster, dlist_request},
    process,
};

fn notification(n: usize) -> String {
    format!(
        r#"{{"event":"Login","timestamp":"2026-11-28T17:13:17.506Z","user":"jane@example.org","n":{n}}}"#
    )
}

/// Runs the exec dealer for notification `n`; its standard error.
fn deal(cluster: &Cluster, n: usize) -> String {
    let output = cluster.deal(notification(n).as_bytes());
    assert!(
        process::succeeded(&output.status),
        "dealer {n}:\n{}",
        process::describe(&output)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The notifications the broker stored, in the order it stored them.
fn stored(cluster: &Cluster) -> Vec<String> {
    let store = cluster.job_store();
    let mut statement = store
        .prepare("SELECT CAST(notification AS TEXT) FROM jobs ORDER BY seq")
        .unwrap();
    let rows = statement.query_map([], |r| r.get(0)).unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

/// Where each record of a spool queue lies (`u32` length, `u32` CRC, payload).
fn records(queue: &[u8]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut at = 0;
    while at + 8 <= queue.len() {
        let length = u32::from_le_bytes(queue[at..at + 4].try_into().unwrap()) as usize;
        ranges.push(at..at + 8 + length);
        at += 8 + length;
    }
    assert_eq!(at, queue.len(), "a whole number of records");
    ranges
}

/// The quarantine files of a spool, oldest first; each must be readable by its owner only.
fn quarantined(spool: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("quarantine-")
        })
        .collect();
    files.sort();
    files
        .iter()
        .map(|file| {
            let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", file.display());
            std::fs::read(file).unwrap()
        })
        .collect()
}

/// `bonnie-dealer --flush`, which must succeed; what it printed.
fn flush(cluster: &Cluster) -> String {
    let output = cluster.flush();
    assert!(output.status.success(), "{}", process::describe(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_spool_cut_mid_record_is_quarantined_and_everything_after_the_tear_is_delivered() {
    let cluster = Cluster::new(&[], "");
    // The broker is down: the exec dealers spool, one after the other, into one spool.
    for n in 0..4 {
        deal(&cluster, n);
    }
    let spool = cluster.spool_dir().join("exec-0");
    let queue = std::fs::read(spool.join("queue")).unwrap();
    let last = records(&queue).pop().unwrap();
    // A power cut while notification 3 was written: the last 20 bytes never reached the disk.
    let cut = last.end - 20;
    std::fs::OpenOptions::new()
        .write(true)
        .open(spool.join("queue"))
        .unwrap()
        .set_len(cut as u64)
        .unwrap();

    let stderr = deal(&cluster, 4);
    assert!(
        stderr.contains("ERROR") && stderr.contains("moved to quarantine"),
        "the dealer that found the tear says so:\n{stderr}"
    );
    assert_eq!(
        quarantined(&spool),
        [queue[last.start..cut].to_vec()],
        "the torn bytes are kept"
    );
    for n in 5..7 {
        deal(&cluster, n);
    }

    let _broker = cluster.start_broker();
    let flushed = flush(&cluster);
    let torn_bytes = cut - last.start;
    assert!(
        flushed.contains(&format!(
            "{torn_bytes} damaged bytes in quarantine (1 files)"
        )),
        "{flushed}"
    );
    let expected: Vec<String> = [0, 1, 2, 4, 5, 6].into_iter().map(notification).collect();
    assert_eq!(
        stored(&cluster),
        expected,
        "everything but the torn one, in order"
    );

    let status = cluster.status();
    assert_eq!(
        status["dealer_spool"]["quarantined_bytes"], torn_bytes,
        "{status}"
    );
    let text = cluster.bonnie(&["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!(
            "{torn_bytes} damaged bytes in quarantine (1 files)"
        )),
        "{text}"
    );
}

#[test]
fn garbage_between_spooled_records_is_quarantined_and_the_records_after_it_are_delivered() {
    let cluster = Cluster::new(&[], "");
    for n in 0..6 {
        deal(&cluster, n);
    }
    let spool = cluster.spool_dir().join("exec-0");
    let queue = std::fs::read(spool.join("queue")).unwrap();
    let ranges = records(&queue);
    // Garbage after the second record (longer than a header, with zeros, which frame an empty
    // record) and after the fourth (shorter than a header).
    let long: Vec<u8> = (0..300u32)
        .map(|i| if i % 50 < 10 { 0 } else { (i * 37 % 251) as u8 })
        .collect();
    let short = b"\xff\x00\x07".to_vec();
    let damaged = [
        &queue[..ranges[1].end],
        &long,
        &queue[ranges[1].end..ranges[3].end],
        &short,
        &queue[ranges[3].end..],
    ]
    .concat();
    std::fs::write(spool.join("queue"), damaged).unwrap();

    let _broker = cluster.start_broker();
    let flushed = flush(&cluster);
    let expected: Vec<String> = (0..6).map(notification).collect();
    assert_eq!(stored(&cluster), expected, "every record, in order");
    assert_eq!(quarantined(&spool), [long.clone(), short.clone()]);
    let bytes = long.len() + short.len();
    assert!(
        flushed.contains(&format!("{bytes} damaged bytes in quarantine (2 files)")),
        "{flushed}"
    );
}

/// Sends one notification to the daemon as Cyrus does; its answer.
fn notify(cluster: &Cluster, n: usize) -> String {
    let mut stream = UnixStream::connect(cluster.dealer_socket()).unwrap();
    stream.set_read_timeout(Some(process::HANG_GUARD)).unwrap();
    stream.write_all(&dlist_request(&notification(n))).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

/// The `rest_ms=` values of the lines a log has so far.
fn rests(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| l.split("rest_ms=").nth(1))
        .map(|v| {
            v.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

#[test]
fn the_daemon_rests_a_lost_broker_a_second_at_most_and_drains_its_spool_once_it_is_back() {
    let cluster = Cluster::new(&[], "");
    let broker = cluster.start_broker();
    let _daemon = cluster.start_dealer_daemon();
    let stop = AtomicBool::new(false);
    let sent = std::thread::scope(|scope| {
        // Cyrus goes on sending throughout; every notification is answered OK NIL.
        let traffic = scope.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(notify(&cluster, n), "OK NIL\r\n", "notification {n}");
                n += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            n
        });
        process::wait_until("notifications stored", || stored(&cluster).len() >= 50);
        broker.signal("KILL");
        drop(broker.wait());
        process::wait_until("the daemon to rest the broker", || {
            !rests(&cluster.log("dealer-daemon")).is_empty()
        });
        // Long enough for many ACK timeouts and several tries of the broker.
        std::thread::sleep(Duration::from_millis(1500));
        let log_before = cluster.log("dealer-daemon").len();
        let _broker = cluster.start_broker();
        process::wait_until("the daemon's spool forwarded while it serves", || {
            cluster.log("dealer-daemon")[log_before..]
                .contains("The broker is back; the spool is empty again.")
        });
        stop.store(true, Ordering::Relaxed);
        let sent = traffic.join().unwrap();
        process::wait_until("every notification stored", || {
            stored(&cluster).len() >= sent
        });
        sent
    });
    let stored: Vec<String> = stored(&cluster);
    assert_eq!(stored.len(), sent, "nothing stored twice");
    assert_eq!(
        stored.iter().cloned().collect::<BTreeSet<_>>(),
        (0..sent).map(notification).collect::<BTreeSet<_>>(),
        "nothing lost"
    );
    // A notification whose ACK came late under load begins a new rest, which the forwarder
    // ends at its next look (every 50 ms) once the broker answers: wait for that look.
    process::wait_until("the rest to end with an ACK", || {
        cluster
            .log("dealer-daemon")
            .contains("The broker answers again.")
    });
    process::wait_until("the exec dealers' rest to end too", || {
        !cluster.spool_dir().join("broker-down").exists()
    });
    let rests = rests(&cluster.log("dealer-daemon"));
    assert!(
        rests.iter().all(|&r| r <= 1000),
        "the daemon rests the broker a second at most: {rests:?}"
    );
}

#[test]
fn exec_dealers_beside_a_running_daemon_spool_without_waiting_and_all_is_delivered_once() {
    const EXEC: usize = 60;
    const DAEMON: usize = 20;
    let cluster = Cluster::new(&[], "");
    let _daemon = cluster.start_dealer_daemon();
    // The broker is down: the daemon spools into its spool, and the exec dealers, four at a
    // time as notifyd runs them, beside it.
    for n in 0..DAEMON {
        assert_eq!(notify(&cluster, 1000 + n), "OK NIL\r\n");
    }
    std::thread::scope(|scope| {
        for t in 0..4 {
            let cluster = &cluster;
            scope.spawn(move || {
                for n in (t..EXEC).step_by(4) {
                    deal(cluster, n);
                }
            });
        }
    });
    let queues = cluster.spool_queues();
    for n in 0..EXEC {
        let json = notification(n);
        let holders: Vec<&str> = queues
            .iter()
            .filter(|(_, q)| q.windows(json.len()).any(|w| w == json.as_bytes()))
            .map(|(name, _)| name.as_str())
            .collect();
        assert!(
            holders.len() == 1 && holders[0].starts_with("exec-"),
            "exec notification {n} is in an exec dealer's own spool, not the daemon's: {holders:?}"
        );
    }
    let side_files: Vec<_> = walk(&cluster.spool_dir())
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("side-")
        })
        .collect();
    assert!(
        side_files.is_empty(),
        "no dealer waited for a lock: {side_files:?}"
    );

    // The broker is back: the daemon forwards every spool in the folder, without a flush.
    let _broker = cluster.start_broker();
    process::wait_until("every notification stored", || {
        stored(&cluster).len() >= EXEC + DAEMON
    });
    let stored = stored(&cluster);
    let expected: BTreeSet<String> = (0..EXEC)
        .chain(1000..1000 + DAEMON)
        .map(notification)
        .collect();
    assert_eq!(stored.len(), EXEC + DAEMON, "nothing stored twice");
    assert_eq!(stored.iter().cloned().collect::<BTreeSet<_>>(), expected);
    // Each spool's notifications were stored in the order it holds them.
    for (name, queue) in &queues {
        let spooled: Vec<String> = records(queue)
            .into_iter()
            .map(|r| String::from_utf8_lossy(&queue[r.start + 8..r.end]).into_owned())
            .map(|payload| payload.split_once('\n').unwrap().1.to_string())
            .collect();
        let in_store: Vec<&String> = stored.iter().filter(|s| spooled.contains(s)).collect();
        assert_eq!(in_store, spooled.iter().collect::<Vec<_>>(), "{name}");
    }
    // The daemon's own spool is its to forward: a flush beside it succeeds.
    let flushed = flush(&cluster);
    assert!(!flushed.contains("quarantine"), "{flushed}");
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .flat_map(|p| if p.is_dir() { walk(&p) } else { vec![p] })
        .collect()
}
