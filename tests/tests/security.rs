//! Attacks on the real processes, as someone on the same network or host would try them:
//! a flood of wrong passwords at bonnie-api (throttled, memory bounded, Roundcube still
//! answered), outside input that tries to forge log lines (escaped) or fill the audit log
//! (cut and marked), files other local users could read (every process creates them
//! private), a configuration whose secrets others can read (refused), and plugin libraries
//! others could change (refused).

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use bonnie_tests::{
    api::{self, ApiClient},
    cluster::Cluster,
    paths, process,
    worker::WorkerLab,
};
use serde_json::{Value, json};

const JOHN: &str = "john.doe@example.org";

/// A peak of the process's memory from `/proc/<pid>/status` (`VmHWM`, `VmRSS`), in KiB.
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| {
            v.trim_start_matches(':')
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// A POST /api/rpc with Basic credentials `name:password` (not signed): the raw answer.
fn login(address: &str, name: &str, password: &str) -> api::RawAnswer {
    let credentials = ApiClient {
        address: address.to_string(),
        name: name.to_string(),
        password: password.to_string(),
        secret: String::new(),
    };
    let request = format!(
        "POST /api/rpc HTTP/1.1\r\nHost: x\r\n{}\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\n{{}}",
        credentials.authorization()
    );
    api::exchange(address, request.as_bytes()).expect("an answer")
}

/// A signed `system.keygen` is answered: the API serves this client.
fn serves(client: &ApiClient) -> bool {
    let answer = client.call_raw(JOHN, "system.keygen", json!({}));
    answer.status == 200 && answer.body["result"]["key"].is_string()
}

#[test]
fn a_wrong_password_flood_is_throttled_memory_stays_bounded_and_roundcube_is_still_answered() {
    let cluster = Cluster::new(&[], "");
    let port = cluster.configure_api_with(&[], "max_login_failures = 5\n");
    let address = format!("127.0.0.1:{port}");
    let roundcube = ApiClient {
        address: address.clone(),
        ..cluster.add_api_client("roundcube")
    };
    // A client that has not logged in since the start: every wrong password for it would
    // be an argon2 verification (about 19 MiB and a core each) without the limits.
    let _console = cluster.add_api_client("console");
    let api = cluster.run_api(port);
    assert!(serves(&roundcube), "Roundcube logs in before the flood");

    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let flooders: Vec<_> = (0..8)
            .map(|thread| {
                let address = address.clone();
                scope.spawn(move || {
                    (0..100)
                        .map(|i| {
                            // The console's name, and names rotated so no table entry repeats.
                            let name = if i % 2 == 0 {
                                "console".to_string()
                            } else {
                                format!("guess-{thread}-{i}")
                            };
                            let answer = login(&address, &name, &format!("wrong-{i}"));
                            (answer.status, answer.head)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // Meanwhile Roundcube, whose password was verified before, is answered every time
        // (from the same address as the flood).
        for _ in 0..20 {
            assert!(
                serves(&roundcube),
                "a legitimate call refused during the flood"
            );
        }
        flooders
            .into_iter()
            .flat_map(|f| f.join().expect("a flooding thread"))
            .collect()
    });
    let unauthorized = answers.iter().filter(|(s, _)| *s == 401).count();
    let throttled: Vec<&String> = answers
        .iter()
        .filter(|(s, _)| *s == 429)
        .map(|(_, head)| head)
        .collect();
    assert_eq!(unauthorized + throttled.len(), 800, "only 401 and 429");
    // Five failures are free, a few more were in flight when the address was closed.
    assert!(
        unauthorized <= 5 + 8,
        "{unauthorized} wrong passwords were checked"
    );
    assert!(
        throttled
            .iter()
            .all(|head| head.to_ascii_lowercase().contains("retry-after: ")),
        "every 429 says when to try again"
    );
    let peak = memory_kib(api.pid(), "VmHWM");
    let resident = memory_kib(api.pid(), "VmRSS");
    assert!(peak < 300 * 1024, "peak memory {peak} KiB");
    assert!(resident < 200 * 1024, "resident memory {resident} KiB");
    assert!(serves(&roundcube));
    // Every refusal is in the audit log.
    let audit = cluster.api_audit();
    assert_eq!(
        audit.iter().filter(|l| l["status"] == 429).count(),
        throttled.len()
    );
    assert!(
        audit
            .iter()
            .any(|l| l["status"] == 429 && l["retry_after"].is_u64())
    );
}

#[test]
fn log_injection_through_a_notification_is_escaped_and_leaves_one_line() {
    let lab = WorkerLab::with_plugins(&[], "");
    lab.add_plugin(&paths::plugin("bonnie-fixture-log-handler"));
    let notification = json!({
        "event": "Login",
        "timestamp": "2026-11-28T17:13:17.506Z",
        "user": "jane\nFAKE LINE: everything is fine\r\u{1b}[2J",
    });
    lab.notifications(&[notification.to_string()]);
    lab.wait_ok(lab.spawn());
    let log = lab.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Notification of a user."))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains(r"user=jane\nFAKE LINE: everything is fine\r\x1b[2J"),
        "{}",
        lines[0]
    );
    assert!(
        !log.lines().any(|l| l.starts_with("FAKE LINE")),
        "a forged line: {log}"
    );
    assert!(!log.contains('\u{1b}') && !log.contains('\r'), "{log:?}");
}

#[test]
fn hostile_names_and_methods_are_escaped_in_the_log_and_cut_in_the_audit_log() {
    let cluster = Cluster::new(&[], "");
    let port = cluster.configure_api(&[]);
    let client = ApiClient {
        address: format!("127.0.0.1:{port}"),
        ..cluster.add_api_client("roundcube")
    };
    let _api = cluster.run_api(port);
    // A method name with a line feed, and one of 900 kB (the body may hold 1 MiB).
    let forged = client.call_raw(JOHN, "x\nFAKE LINE: login ok\u{1b}[2J", json!({}));
    assert_eq!(forged.status, 200, "{forged:?}");
    assert_eq!(forged.body["error"]["code"], -32601, "{forged:?}");
    let huge = "m".repeat(900_000);
    let answer = client.call_raw(JOHN, &huge, json!({ "p": "v".repeat(50_000) }));
    assert_eq!(answer.body["error"]["code"], -32601, "{}", answer.status);
    // A client name of 10 KB (the head may hold 16 KiB).
    let long_name = login(&client.address, &"n".repeat(10_000), "x");
    assert_eq!(long_name.status, 401);
    // A head over the limit, refused by hyper itself.
    let head = format!(
        "POST /api/rpc HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let refused = api::exchange(&client.address, head.as_bytes()).expect("an answer");
    assert_eq!(refused.status, 431);
    // Another path and method, refused before the body.
    let wrong = api::exchange(
        &client.address,
        b"GET /etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .expect("an answer");
    assert_eq!(wrong.status, 404);

    process::wait_until("the audit lines", || cluster.api_audit().len() >= 5);
    let log = std::fs::read_to_string(cluster.path().join("api.log")).unwrap();
    assert!(
        !log.lines().any(|l| l.starts_with("FAKE LINE")),
        "a forged line: {log}"
    );
    assert!(log.contains(r"x\nFAKE LINE: login ok\x1b[2J"), "{log}");
    assert!(
        log.lines().all(|l| l.len() < 4096),
        "outside fields are clipped in the text log"
    );

    let text = std::fs::read_to_string(cluster.path().join("var/api-audit.log")).unwrap();
    assert!(
        text.lines().all(|l| l.len() < 16 * 1024),
        "audit lines are bounded"
    );
    let audit = cluster.api_audit();
    let cut: Vec<&Value> = audit.iter().filter(|l| l["cut"] == true).collect();
    assert!(
        cut.iter().any(|l| l["method"]
            .as_str()
            .is_some_and(|m| m.ends_with("…[cut: 900000 bytes]"))),
        "{cut:?}"
    );
    assert!(
        cut.iter().any(|l| l["status"] == 401
            && l["client"]
                .as_str()
                .is_some_and(|c| c.ends_with("…[cut: 10000 bytes]"))),
        "{cut:?}"
    );
    assert!(
        audit
            .iter()
            .any(|l| l["method"] == "x\nFAKE LINE: login ok\u{1b}[2J")
    );
    assert!(
        audit
            .iter()
            .any(|l| l["status"] == 431 && l["error"] == "head_too_large"),
        "hyper's own refusals are audited: {audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|l| l["status"] == 404 && l["http_method"] == "GET" && l["path"] == "/etc/passwd")
    );
}

/// Every file and folder under `dir` that a process made, with its mode: the `harness`'s own
/// left out (`name/`: all below a folder), and sockets (the dealer's has its configured mode).
fn made_by_processes(dir: &Path, harness: &[&str]) -> Vec<(String, u32)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().filter_map(Result::ok) {
            let path = entry.path();
            let relative = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_socket() {
                continue;
            }
            if meta.is_dir() {
                pending.push(path.clone());
            }
            // `name/` stands for everything below a folder of the harness, `name` for itself.
            let of_harness = harness.iter().any(|h| match h.strip_suffix('/') {
                Some(folder) => relative.starts_with(&format!("{folder}/")),
                None => relative == *h,
            });
            if !of_harness {
                found.push((relative, meta.permissions().mode() & 0o7777));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_process_creates_its_files_private_to_bonnie() {
    let cluster = Cluster::new(&[], "");
    let port = cluster.configure_api(&[]);
    let client = ApiClient {
        address: format!("127.0.0.1:{port}"),
        ..cluster.add_api_client("roundcube")
    };
    let _broker = cluster.start_broker();
    let _worker = cluster.start_worker("worker");
    let _dealer = cluster.start_dealer_daemon();
    let _api = cluster.run_api(port);
    let login =
        json!({ "event": "Login", "user": "jane", "timestamp": "2026-11-28T17:13:17.506Z" });
    assert!(process::succeeded(
        &cluster.deal(login.to_string().as_bytes()).status
    ));
    cluster.wait_until_drained();
    process::wait_until("the archive", || cluster.archived() >= 1);
    assert!(serves(&client));

    let made = made_by_processes(
        cluster.path(),
        &[
            "bonnie.toml",
            "plugins",
            "plugins/",
            "var",
            "var/dealer-spool",
        ],
    );
    let names: Vec<&str> = made.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "var/broker.db",
        "var/bonnie.db",
        "var/bonnie.db-wal",
        "var/api-audit.log",
        "var/api-clients.json",
        "broker.log",
        "worker.log",
        "api.log",
        "dealer-daemon.log",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let open: Vec<&(String, u32)> = made.iter().filter(|(_, m)| m & 0o027 != 0).collect();
    assert!(
        open.is_empty(),
        "readable by others or writable by the group: {open:?}"
    );
    let clients = made
        .iter()
        .find(|(n, _)| n == "var/api-clients.json")
        .unwrap();
    assert_eq!(
        clients.1 & 0o077,
        0,
        "the API's secrets are its owner's only"
    );
    // The dealer's spools, made by the processes inside the harness's spool folder.
    let spools = made_by_processes(&cluster.spool_dir(), &[]);
    assert!(!spools.is_empty());
    assert!(spools.iter().all(|(_, m)| m & 0o027 == 0), "{spools:?}");
}

/// Runs `command`, which must refuse to start (exit 1): what it said on standard error.
fn refused_start(name: &str, command: &mut std::process::Command) -> String {
    let output = process::run(name, command);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        process::describe(&output)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_configuration_whose_secrets_others_can_read_is_refused_with_the_reason() {
    let cluster = Cluster::new(&[], "");
    cluster.add_keys("collector", "imap_password = \"hunter2\"");
    std::fs::set_permissions(cluster.config(), std::fs::Permissions::from_mode(0o644)).unwrap();
    for binary in ["bonnie-collector", "bonnie-broker", "bonnie-api"] {
        let stderr = refused_start(binary, &mut cluster.command(binary, &[]));
        assert!(
            stderr.contains("[collector] imap_password") && stderr.contains("mode 0644"),
            "{binary}: {stderr}"
        );
        assert!(
            !stderr.contains("hunter2"),
            "the reason never shows the secret"
        );
    }
    // The dealer, which Cyrus runs as its own user and which needs no secret, is not
    // refused: whatever else it says, it does not complain of the secret.
    let flushed = cluster.flush();
    let said = String::from_utf8_lossy(&flushed.stderr);
    assert!(!said.contains("imap_password"), "{said}");
    // Made readable by bonnie only, the collector starts.
    std::fs::set_permissions(cluster.config(), std::fs::Permissions::from_mode(0o640)).unwrap();
    let log = cluster.path().join("collector.log");
    let log_arg = log.to_string_lossy().into_owned();
    let _collector = process::ChildGuard::spawn(
        "bonnie-collector",
        &mut cluster.command("bonnie-collector", &["--log-file", &log_arg]),
    );
    process::wait_until("the collector to run", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Collector running."))
    });
}

#[test]
fn plugins_that_others_could_change_are_refused_with_the_reason() {
    let lab = WorkerLab::with_plugins(&[], "");
    let library = lab.plugin_dir().join("libbonnie_jsonl_output.so");
    std::fs::set_permissions(&library, std::fs::Permissions::from_mode(0o775)).unwrap();
    let output = lab.check_plugins();
    let listing = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        process::describe(&output)
    );
    let line = listing
        .lines()
        .find(|l| l.contains("libbonnie_jsonl_output.so"))
        .expect("the library is listed");
    assert!(
        line.contains("refused") && line.contains("writable by its group") && line.contains("0775"),
        "{line}"
    );
    // The others still load.
    assert!(
        listing
            .lines()
            .any(|l| l.contains("libbonnie_jsonl_input.so") && l.contains("loaded")),
        "{listing}"
    );

    std::fs::set_permissions(&library, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(lab.plugin_dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let stderr = refused_start("bonnie-worker", &mut lab.command(&[]));
    assert!(
        stderr.contains(&lab.plugin_dir().display().to_string())
            && stderr.contains("writable by every user"),
        "{stderr}"
    );
}

#[test]
fn cyrus_reaches_the_dealer_socket_in_a_folder_the_daemon_made_under_its_umask() {
    let cluster = Cluster::new(&[], "");
    let config = std::fs::read_to_string(cluster.config()).unwrap();
    let moved = config.replace(
        "socket = \"var/dealer.sock\"",
        "socket = \"var/run/dealer.sock\"",
    );
    assert_ne!(config, moved, "the harness's socket line");
    std::fs::write(cluster.config(), moved).unwrap();
    let socket = cluster.path().join("var/run/dealer.sock");
    let _dealer = process::ChildGuard::spawn(
        "bonnie-dealer --daemon",
        &mut cluster.command("bonnie-dealer", &["--daemon"]),
    );
    process::wait_until("the dealer socket", || socket.exists());
    // imapd and lmtpd run as cyrus, not as the daemon's user (root here).
    let connect = "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])";
    let output = process::run(
        "python3 as cyrus",
        std::process::Command::new("runuser")
            .args(["-u", "cyrus", "--", "/usr/bin/python3", "-c", connect])
            .arg(&socket),
    );
    assert!(
        process::succeeded(&output.status),
        "{}",
        process::describe(&output)
    );
}

#[test]
fn failed_and_stalled_tls_handshakes_are_audited_with_their_peer() {
    let cluster = Cluster::new(&[], "");
    cluster.make_tls_certificate();
    let port = cluster.configure_api_with(
        &[],
        "tls_certificate = \"cert.pem\"\ntls_key = \"key.pem\"\nheader_timeout_ms = 1000\n",
    );
    let address = format!("127.0.0.1:{port}");
    let _api = cluster.run_api(port);
    // Plain HTTP to the HTTPS port: the handshake fails.
    let plain = api::exchange(
        &address,
        b"POST /api/rpc HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(plain.is_none(), "no HTTP answer without TLS: {plain:?}");
    // A client that connects and says nothing: the handshake times out.
    let mut silent = api::connect(&address);
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut silent, &mut rest);
    process::wait_until("both handshakes in the audit log", || {
        let audit = cluster.api_audit();
        ["tls_failed", "tls_timeout"].iter().all(|error| {
            audit.iter().any(|l| {
                l["error"] == *error
                    && l["peer"]
                        .as_str()
                        .is_some_and(|p| p.starts_with("127.0.0.1:"))
            })
        })
    });
}
