//! bonnie-logd as a real process, with real sockets and files, into a real broker: syslog
//! over UDP, TCP (octet counting and newline framing) and a unix socket, hostile frames
//! that cost no earlier line, and a followed file across rotation by rename and by
//! copytruncate, restarts and kills, and a broker that is down: every line stored once.

use std::{
    collections::BTreeMap,
    io::Write,
    net::{TcpStream, UdpSocket},
    os::unix::net::UnixDatagram,
    path::Path,
};

use bonnie_tests::{
    cluster::{Cluster, free_port},
    logd,
};

/// Lines as Postfix writes them to its `maillog_file`, numbered.
fn numbered(tag: &str, numbers: std::ops::Range<usize>) -> Vec<String> {
    numbers
        .map(|n| format!("Dec 01 10:00:00 mx postfix/smtpd[100]: {tag} line {n:06}"))
        .collect()
}

/// Fails unless `found` holds each of `expected` exactly once and nothing else.
fn assert_each_once(found: &[String], expected: &[String]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for line in found {
        *counts.entry(line.as_str()).or_default() += 1;
    }
    let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    let missing: Vec<_> = expected
        .iter()
        .filter(|l| !counts.contains_key(l.as_str()))
        .collect();
    assert!(
        doubled.is_empty() && missing.is_empty(),
        "doubled: {doubled:?}\nmissing: {missing:?}"
    );
    assert_eq!(found.len(), expected.len(), "lines that were never written");
}

#[test]
fn syslog_over_udp_tcp_in_both_framings_and_a_unix_socket_reaches_the_broker_once_each() {
    let (udp, tcp) = (free_port(), free_port());
    let cluster = Cluster::new(
        &[],
        &logd::table(&format!(
            "udp = [\"127.0.0.1:{udp}\"]\ntcp = [\"127.0.0.1:{tcp}\"]\nunix = [\"var/logd.sock\"]\nmax_line_bytes = 200"
        )),
    );
    let _broker = cluster.start_broker();
    let _logd = logd::start(&cluster);
    let mut expected = Vec::new();

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for n in 0..50 {
        let message = format!("<22>1 2026-12-01T10:00:00.000Z mx postfix/smtpd 100 - - udp {n}");
        socket
            .send_to(message.as_bytes(), ("127.0.0.1", udp))
            .unwrap();
        expected.push(message);
    }

    let mut counted = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let mut frames = Vec::new();
    for n in 0..50 {
        let message = format!("<22>Dec  1 10:00:00 mx postfix/qmgr[101]: octet-counted {n}");
        frames.extend_from_slice(format!("{} {message}", message.len()).as_bytes());
        expected.push(message);
    }
    counted.write_all(&frames).unwrap();
    drop(counted);

    let mut lines = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    for n in 0..50 {
        let message = format!("2026-12-01T10:00:00+01:00 mx postfix/cleanup[102]: newline {n}");
        lines.write_all(format!("{message}\n").as_bytes()).unwrap();
        expected.push(message);
    }
    drop(lines);

    // A hostile peer: good lines, a line far over the bound, then a frame announcing ten
    // gigabytes, cut off by the connection's end. The good lines stay; the others are cut.
    let mut hostile = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let long = format!("<13>{}", "y".repeat(5000));
    hostile
        .write_all(
            format!("<13>before one\n<13>before two\n{long}\n<13>after the long one\n9999999999 ")
                .as_bytes(),
        )
        .unwrap();
    hostile.write_all(&vec![b'x'; 100_000]).unwrap();
    drop(hostile);
    expected.extend(
        [
            "<13>before one",
            "<13>before two",
            &long[..200],
            "<13>after the long one",
            &"x".repeat(200),
        ]
        .map(str::to_string),
    );

    let unix = UnixDatagram::unbound().unwrap();
    for n in 0..50 {
        let message = format!("<22>Dec  1 10:00:00 postfix/lmtp[103]: unix {n}");
        unix.send_to(message.as_bytes(), cluster.path().join("var/logd.sock"))
            .unwrap();
        expected.push(message);
    }

    let found = logd::wait_for_lines(&cluster, expected.len());
    assert_each_once(&found, &expected);
    let batches = logd::batches(&cluster);
    let truncated: u64 = batches
        .iter()
        .map(|b| b["truncated"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        truncated, 2,
        "the long line and the cut-off frame are counted"
    );
    for batch in &batches {
        assert_eq!(batch["event"], "vnd.bonnie.LogLines");
        assert!(
            ["udp", "tcp", "unix"].contains(&batch["source"]["kind"].as_str().unwrap()),
            "{batch}"
        );
    }
}

/// Appends `count` numbered lines tagged `tag` to `path`, and to `written`.
fn write(path: &Path, written: &mut Vec<String>, tag: &str, count: usize) {
    let lines = numbered(tag, 0..count);
    logd::append(path, lines.clone());
    written.extend(lines);
}

fn rename(from: &Path, to: &Path) {
    std::fs::rename(from, to).unwrap();
}

/// What logrotate's copytruncate does: copy the file, then cut it to nothing.
fn copytruncate(file: &Path, copy: &Path) {
    std::fs::copy(file, copy).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .unwrap()
        .set_len(0)
        .unwrap();
}

#[test]
fn a_followed_file_loses_and_doubles_no_line_across_rotation_copytruncate_restarts_and_kills() {
    let cluster = Cluster::new(
        &[],
        &logd::table("files = [\"log/mail.log\"]\nmax_batch_lines = 100"),
    );
    let log_dir = cluster.path().join("log");
    std::fs::create_dir_all(&log_dir).unwrap();
    let mail_log = log_dir.join("mail.log");
    let _broker = cluster.start_broker();
    let mut written = numbered("first", 0..100);
    logd::append(&mail_log, written.clone());
    let logd = logd::start(&cluster);
    logd::wait_for_lines(&cluster, written.len());

    // Rotation by rename: the writer goes on in the old file for a while, then moves to a
    // new one.
    rename(&mail_log, &log_dir.join("mail.log.1"));
    write(
        &log_dir.join("mail.log.1"),
        &mut written,
        "late in the old file",
        50,
    );
    write(&mail_log, &mut written, "new file", 50);
    logd::wait_for_lines(&cluster, written.len());

    // A kill in the middle of a large file: the restart goes on from the position synced
    // last, and the batch that was on its way keeps its id.
    write(&mail_log, &mut written, "bulk", 20_000);
    logd.signal("KILL");
    drop(logd);
    let logd = logd::start(&cluster);
    logd::wait_for_lines(&cluster, written.len());

    // copytruncate with lines written since the last read: they are read from the copy.
    logd.signal("STOP");
    write(&mail_log, &mut written, "before the copy", 30);
    copytruncate(&mail_log, &log_dir.join("mail.log.1"));
    write(&mail_log, &mut written, "after the truncation", 30);
    logd.signal("CONT");
    logd::wait_for_lines(&cluster, written.len());

    // Rotation by rename while logd is stopped: the old file is finished first.
    logd.signal("TERM");
    logd.wait();
    write(&mail_log, &mut written, "while stopped", 40);
    rename(&mail_log, &log_dir.join("mail.log.2"));
    write(&mail_log, &mut written, "after the restart", 40);
    let _logd = logd::start(&cluster);
    let found = logd::wait_for_lines(&cluster, written.len());
    assert_each_once(&found, &written);
    // Each way of rotating took its own path through the follower.
    let log = cluster.log("logd");
    for said in [
        "The file was rotated; the old one is read to its end.",
        "The file was truncated; the rest of its lines are read from its copy.",
        "The file was rotated while not followed; reading the rest of the old one first.",
    ] {
        assert!(log.contains(said), "{said:?} not in the log:\n{log}");
    }
    // Every stored batch names the followed path, whichever file it was read from.
    assert!(
        logd::batches(&cluster)
            .iter()
            .all(|b| b["source"]["path"] == mail_log.display().to_string()),
    );
}

#[test]
fn lines_read_while_the_broker_is_down_are_spooled_and_forwarded_once_it_answers() {
    let cluster = Cluster::new(&[], &logd::table("files = [\"mail.log\"]"));
    let mail_log = cluster.path().join("mail.log");
    let written = numbered("broker down", 0..500);
    logd::append(&mail_log, written.clone());
    let logd = logd::start(&cluster);
    bonnie_tests::process::wait_until("the batches to be spooled", || {
        cluster
            .log("logd")
            .contains("batches of log lines are spooled")
            && std::fs::metadata(cluster.path().join("var/logd-spool/queue"))
                .is_ok_and(|m| m.len() > 0)
    });
    let _broker = cluster.start_broker();
    let found = logd::wait_for_lines(&cluster, written.len());
    assert_each_once(&found, &written);
    drop(logd);
}

#[test]
fn with_curve_logd_submits_with_its_hosts_dealer_key_and_without_one_it_does_not_start() {
    let cluster = Cluster::new(&[], &logd::table("files = [\"mail.log\"]"));
    cluster.enable_curve("imap1");
    let written = numbered("curve", 0..20);
    logd::append(&cluster.path().join("mail.log"), written.clone());
    let _broker = cluster.start_broker();
    let logd = logd::start(&cluster);
    let found = logd::wait_for_lines(&cluster, written.len());
    assert_each_once(&found, &written);
    let hosts: Vec<String> = cluster
        .job_store()
        .prepare("SELECT DISTINCT host FROM jobs WHERE id LIKE 'log-%'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        hosts,
        ["imap1"],
        "attributed to the host the dealer key names"
    );
    drop(logd);

    std::fs::remove_file(cluster.path().join("keys/dealer.key")).unwrap();
    let output = bonnie_tests::process::run(
        "bonnie-logd",
        cluster
            .command("bonnie-logd", &[])
            .env("BONNIE_LOG", "error"),
    );
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("dealer's CURVE keys"), "{said}");
}
