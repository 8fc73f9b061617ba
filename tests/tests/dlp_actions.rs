//! DLP alerts through the outbox (bonnie-dlp-actions) on the real sqlite-storage plugin: a
//! webhook that fails at first is retried and delivered once, signed; an HTTPS one with a
//! private CA is delivered, and refused without the CA; one that cannot be
//! reached is retried and then failed with its reason, loudly; a syslog line reaches a UDP
//! receiver; an e-mail reaches a real Postfix, in plain SMTP and over required STARTTLS; a
//! redelivered enqueue sends once; two senders on one store deliver each alert once; actions
//! that are not alerts are refused.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, UdpSocket},
    os::unix::fs::PermissionsExt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use bonnie_dlp::Action;
use bonnie_dlp_actions::{AlertLog, AlertSettings, EntryState, Outbox, Sender};
use bonnie_plugin_api::{LogLevel, storage::StorageClient};
use bonnie_tests::{
    certificates,
    cluster::free_port,
    postfix::{NextHop, Postfix},
    process::{self, ChildGuard},
    storages,
    worker::WorkerLab,
};
use serde_json::{Value, json};

/// One request the webhook receiver got.
#[derive(Debug, Clone)]
struct Request {
    headers: BTreeMap<String, String>,
    body: String,
    /// The status it was answered with.
    status: u16,
}

/// A small HTTP server that answers 503 to its first `failures` requests, then 200.
struct WebhookReceiver {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl WebhookReceiver {
    fn start(failures: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the webhook receiver");
        let url = format!("http://{}/alerts", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut headers = BTreeMap::new();
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap_or_default();
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':') {
                        headers.insert(name.to_ascii_lowercase(), value.trim().to_string());
                    }
                }
                let length: usize = headers
                    .get("content-length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap_or_default();
                let mut requests = seen.lock().unwrap();
                let status = if requests.len() < failures { 503 } else { 200 };
                requests.push(Request {
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                    status,
                });
                drop(requests);
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy"
                );
            }
        });
        Self { url, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    fn accepted(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.status == 200)
            .collect()
    }
}

/// A lab with sqlite-storage, and a way to open its store as many times as a test needs.
struct Store {
    lab: WorkerLab,
}

impl Store {
    fn new() -> Self {
        Self {
            lab: WorkerLab::with_plugins(&[], ""),
        }
    }

    fn open(&self) -> StorageClient {
        storages::open(&self.lab.config())
    }
}

/// Settings that retry quickly, from JSON as the plugin receives them.
fn settings(extra: Value) -> AlertSettings {
    let mut base = json!({
        "poll_interval_ms": 20,
        "retry": {"initial_backoff_ms": 10, "max_backoff_ms": 40, "max_attempts": 4},
    });
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            base.insert(key.clone(), value.clone());
        }
    }
    serde_json::from_value(base).expect("valid alert settings")
}

/// What a sender logged: (level, message and fields) per line.
type LogLines = Arc<Mutex<Vec<(String, String)>>>;

/// A log that keeps what the sender said.
fn kept_log() -> (AlertLog, LogLines) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let kept = lines.clone();
    let log: AlertLog = Arc::new(move |level, message, fields| {
        let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let level = match level {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            _ => "info",
        };
        kept.lock()
            .unwrap()
            .push((level.to_string(), format!("{message} {}", fields.join(" "))));
    });
    (log, lines)
}

fn spawn(storage: StorageClient, settings: AlertSettings) -> Sender {
    let (log, _) = kept_log();
    Sender::spawn(storage, settings, Arc::new(AtomicBool::new(false)), log)
        .expect("starting the sender")
}

fn incident(n: usize) -> Value {
    json!({
        "rule": "payment-cards", "severity": "high", "user": "john.doe", "folder": "INBOX",
        "uid": n, "count": 2, "matches": [{"detector": "cards", "excerpt": "4539 **** **** 6467"}],
    })
}

fn state(outbox: &Outbox, key: &str) -> String {
    outbox
        .entry(key)
        .expect("reading the outbox")
        .and_then(|e| e["state"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn wait_for_state(outbox: &Outbox, key: &str, wanted: EntryState) -> Value {
    process::wait_until(&format!("outbox entry {key} {}", wanted.name()), || {
        state(outbox, key) == wanted.name()
    });
    outbox.entry(key).unwrap().unwrap()
}

#[test]
fn a_webhook_that_fails_at_first_is_retried_and_delivered_once_signed() {
    let store = Store::new();
    let receiver = WebhookReceiver::start(2);
    let secret = store.lab.path().join("webhook.secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let outbox = Outbox::new(store.open());
    let action = Action::Webhook {
        url: receiver.url.clone(),
    };
    assert!(outbox.enqueue("job-1/0/1", &action, &incident(7)).unwrap());
    let sender = spawn(
        store.open(),
        settings(json!({"webhook": {"secret_file": secret}})),
    );
    let entry = wait_for_state(&outbox, "job-1/0/1", EntryState::Sent);
    sender.stop();
    assert_eq!(entry["attempts"], 3, "{entry}");
    assert!(entry["sent_ms"].as_i64().is_some(), "{entry}");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 1, "{requests:?}");
    let body: Value = serde_json::from_str(&accepted[0].body).unwrap();
    assert_eq!(body, incident(7));
    assert_eq!(accepted[0].headers["x-bonnie-alert-id"], "job-1/0/1");
    // HMAC-SHA256("s3cret", body), as a receiver checks it.
    let expected = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(accepted[0].body.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!(
            "sha256={}",
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    };
    assert_eq!(accepted[0].headers["x-bonnie-signature"], expected);
}

#[test]
fn an_unreachable_webhook_is_retried_then_failed_with_its_reason_and_logged_as_an_error() {
    let store = Store::new();
    let outbox = Outbox::new(store.open());
    // A port nothing listens on.
    let port = free_port();
    let action = Action::Webhook {
        url: format!("http://127.0.0.1:{port}/alerts"),
    };
    outbox.enqueue("job-2/0/0", &action, &incident(1)).unwrap();
    let (log, lines) = kept_log();
    let sender = Sender::spawn(
        store.open(),
        settings(json!({})),
        Arc::new(AtomicBool::new(false)),
        log,
    )
    .unwrap();
    let entry = wait_for_state(&outbox, "job-2/0/0", EntryState::Failed);
    sender.stop();
    assert_eq!(entry["attempts"], 4, "{entry}");
    let reason = entry["last_error"].as_str().unwrap_or_default();
    assert!(reason.contains(&format!("127.0.0.1:{port}")), "{entry}");
    let lines = lines.lock().unwrap();
    let warnings = lines.iter().filter(|(level, _)| level == "warn").count();
    assert_eq!(warnings, 3, "{lines:?}");
    let errors: Vec<_> = lines.iter().filter(|(level, _)| level == "error").collect();
    assert_eq!(errors.len(), 1, "{lines:?}");
    assert!(
        errors[0].1.contains("job-2/0/0") && errors[0].1.contains("given up"),
        "{lines:?}"
    );
    assert_eq!(outbox.entries(EntryState::Failed).unwrap().len(), 1);
}

#[test]
fn a_syslog_alert_reaches_a_udp_receiver_as_one_summary_line_without_the_matches() {
    let store = Store::new();
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = format!("udp:{}", receiver.local_addr().unwrap());
    let outbox = Outbox::new(store.open());
    outbox
        .enqueue("job-3/0/0", &Action::Syslog {}, &incident(42))
        .unwrap();
    let sender = spawn(
        store.open(),
        settings(json!({"syslog": {"target": target}})),
    );
    receiver.set_nonblocking(true).unwrap();
    let mut datagram = vec![0; 4096];
    let mut received = 0;
    process::wait_until("a syslog datagram", || match receiver.recv(&mut datagram) {
        Ok(n) => {
            received = n;
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(e) => panic!("receiving syslog: {e}"),
    });
    let line = String::from_utf8_lossy(&datagram[..received]).into_owned();
    wait_for_state(&outbox, "job-3/0/0", EntryState::Sent);
    sender.stop();
    // RFC 5424: <PRI>1, facility auth (4) * 8 + error (3) = 35.
    assert!(line.starts_with("<35>1 "), "{line}");
    assert!(line.contains("bonnie-dlp"), "{line}");
    assert!(line.contains("dlp-incident"), "{line}");
    assert!(
        line.contains(
            "DLP rule payment-cards (high): user john.doe, folder INBOX, item 42; 2 matches"
        ),
        "{line}"
    );
    assert!(!line.contains("6467"), "{line}");
    assert!(!line.trim_end().contains('\n'), "{line}");
}

#[test]
fn an_email_alert_is_accepted_by_a_real_postfix_with_the_summary_as_subject() {
    assert!(
        Postfix::installed(),
        "Debian's postfix is not installed: `echo \"postfix postfix/main_mailer_type select No configuration\" | debconf-set-selections; apt-get install -y postfix`"
    );
    // Postfix accepts and queues; its next hop is a port nothing listens on, so the message
    // stays in its queue, where the test reads it.
    let postfix = Postfix::start(
        "postfix-dlp",
        "relay.test.example",
        true,
        NextHop::Smtp(free_port()),
    );
    let store = Store::new();
    let outbox = Outbox::new(store.open());
    let action = Action::Email {
        to: vec!["security@example.org".to_string()],
    };
    outbox.enqueue("job-4/1/0", &action, &incident(5)).unwrap();
    let sender = spawn(
        store.open(),
        settings(json!({"smtp": {
            "host": "127.0.0.1", "port": postfix.smtp_port, "security": "plain",
            "from": "bonnie@example.org",
        }})),
    );
    let entry = wait_for_state(&outbox, "job-4/1/0", EntryState::Sent);
    sender.stop();
    assert_eq!(entry["attempts"], 1, "{entry}");
    process::wait_until("Postfix to log the alert's queueing", || {
        postfix.maillog_text().contains("from=<bonnie@example.org>")
    });
    let log = postfix.maillog_text();
    assert!(log.contains("@dlp.bonnie>"), "{log}");
    let queued = std::process::Command::new("/usr/sbin/postqueue")
        .arg("-c")
        .arg(postfix.path().join("etc"))
        .arg("-j")
        .output()
        .expect("running postqueue");
    let queue = String::from_utf8_lossy(&queued.stdout);
    assert!(queue.contains("security@example.org"), "{queue}");
    let entry: Value = serde_json::from_str(queue.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("postqueue -j: {e}: {queue}"));
    let message = std::process::Command::new("/usr/sbin/postcat")
        .arg("-c")
        .arg(postfix.path().join("etc"))
        .args(["-h", "-b", "-q"])
        .arg(entry["queue_id"].as_str().expect("a queue ID"))
        .output()
        .expect("running postcat");
    // Header lines unfolded (RFC 5322 2.2.3).
    let message = String::from_utf8_lossy(&message.stdout).replace("\n ", " ");
    assert!(
        message.contains(
            "Subject: [bonnie DLP] DLP rule payment-cards (high): user john.doe, folder INBOX, item 5; 2 matches"
        ),
        "{message}"
    );
    assert!(message.contains("From: bonnie@example.org"), "{message}");
    // The incident in the body, its excerpts masked as they came.
    assert!(message.contains("4539 **** **** 6467"), "{message}");
}

#[test]
fn an_email_alert_goes_over_required_starttls_to_a_relay_whose_certificate_a_private_ca_signed() {
    assert!(Postfix::installed(), "Debian's postfix is not installed");
    let postfix = Postfix::start(
        "postfix-dlp-tls",
        "relay.test.example",
        true,
        NextHop::Smtp(free_port()),
    );
    // A certificate for localhost, trusted through `smtp.ca_file` alone.
    let (cert, key) = (
        postfix.path().join("cert.pem"),
        postfix.path().join("key.pem"),
    );
    certificates::localhost(&cert, &key);
    let etc = postfix.path().join("etc");
    let configured = process::run(
        "postconf",
        std::process::Command::new("/usr/sbin/postconf")
            .arg("-c")
            .arg(&etc)
            .arg("-e")
            .arg(format!("smtpd_tls_cert_file={}", cert.display()))
            .arg(format!("smtpd_tls_key_file={}", key.display()))
            .arg("smtpd_tls_security_level=may")
            // "Anonymous TLS connection established from ..." in the log.
            .arg("smtpd_tls_loglevel=1"),
    );
    assert!(
        configured.status.success(),
        "{}",
        process::describe(&configured)
    );
    let reloaded = process::run(
        "postfix reload",
        std::process::Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&etc)
            .arg("reload"),
    );
    assert!(
        reloaded.status.success(),
        "{}",
        process::describe(&reloaded)
    );
    process::wait_until("Postfix to offer STARTTLS", || {
        offers_starttls(postfix.smtp_port)
    });

    let store = Store::new();
    let outbox = Outbox::new(store.open());
    let action = Action::Email {
        to: vec!["security@example.org".to_string()],
    };
    outbox.enqueue("job-8/0/0", &action, &incident(8)).unwrap();
    let sender = spawn(
        store.open(),
        settings(json!({"smtp": {
            "host": "localhost", "port": postfix.smtp_port, "security": "starttls",
            "from": "bonnie@example.org", "ca_file": cert,
        }})),
    );
    let entry = wait_for_state(&outbox, "job-8/0/0", EntryState::Sent);
    sender.stop();
    assert_eq!(entry["attempts"], 1, "{entry}");
    // Without the CA the relay is not trusted: never sent in the clear instead.
    outbox.enqueue("job-8/0/1", &action, &incident(9)).unwrap();
    let untrusting = spawn(
        store.open(),
        settings(json!({"smtp": {
            "host": "localhost", "port": postfix.smtp_port, "security": "starttls",
            "from": "untrusted@example.org",
        }})),
    );
    let entry = wait_for_state(&outbox, "job-8/0/1", EntryState::Failed);
    untrusting.stop();
    let reason = entry["last_error"].as_str().unwrap_or_default();
    assert!(
        reason.to_ascii_lowercase().contains("certificate"),
        "{entry}"
    );
    assert!(
        !postfix
            .maillog_text()
            .contains("from=<untrusted@example.org>")
    );
    process::wait_until("Postfix to log the TLS session and the alert", || {
        let log = postfix.maillog_text();
        log.contains("from=<bonnie@example.org>") && log.contains("TLS connection established")
    });
}

/// True when the SMTP server on `port` lists STARTTLS in its EHLO answer.
fn offers_starttls(port: u16) -> bool {
    let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || writer.write_all(b"EHLO test\r\n").is_err() {
        return false;
    }
    let mut offered = false;
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        offered |= line.to_ascii_uppercase().contains("STARTTLS");
        if line.as_bytes().get(3) != Some(&b'-') {
            let _ = writer.write_all(b"QUIT\r\n");
            return offered;
        }
    }
}

/// An HTTPS webhook receiver (Python's http.server over its ssl module) with a certificate
/// for localhost: it answers 204 and appends each body to `bodies`.
const HTTPS_RECEIVER: &str = r#"
import http.server, ssl, sys
cert, key, bodies, port_file = sys.argv[1:5]
class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(bodies, "ab") as f:
            f.write(body + b"\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
"#;

#[test]
fn an_https_webhook_with_a_private_ca_is_delivered_and_untrusted_without_it() {
    let store = Store::new();
    let dir = store.lab.path();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    certificates::localhost(&cert, &key);
    let (bodies, port_file) = (dir.join("bodies"), dir.join("port"));
    let _receiver = ChildGuard::spawn(
        "the HTTPS receiver",
        std::process::Command::new("python3")
            .arg("-c")
            .arg(HTTPS_RECEIVER)
            .args([&cert, &key, &bodies, &port_file])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    process::wait_until("the HTTPS receiver to listen", || port_file.exists());
    let port = std::fs::read_to_string(&port_file).unwrap();
    let action = Action::Webhook {
        url: format!("https://localhost:{port}/alerts"),
    };
    let outbox = Outbox::new(store.open());
    outbox.enqueue("job-9/0/0", &action, &incident(1)).unwrap();
    let trusting = spawn(
        store.open(),
        settings(json!({"webhook": {"ca_file": cert}})),
    );
    wait_for_state(&outbox, "job-9/0/0", EntryState::Sent);
    trusting.stop();
    let received = std::fs::read_to_string(&bodies).unwrap();
    let body: Value = serde_json::from_str(received.trim()).unwrap();
    assert_eq!(body, incident(1));

    outbox.enqueue("job-9/0/1", &action, &incident(2)).unwrap();
    let untrusting = spawn(store.open(), settings(json!({})));
    let entry = wait_for_state(&outbox, "job-9/0/1", EntryState::Failed);
    untrusting.stop();
    assert_eq!(std::fs::read_to_string(&bodies).unwrap(), received);
    let reason = entry["last_error"].as_str().unwrap_or_default();
    assert!(reason.starts_with("POST https://localhost:"), "{entry}");
    assert!(
        reason.to_ascii_lowercase().contains("certificate"),
        "{entry}"
    );
}

#[test]
fn a_redelivered_job_enqueues_the_same_keys_and_the_alert_is_sent_once() {
    let store = Store::new();
    let receiver = WebhookReceiver::start(0);
    let outbox = Outbox::new(store.open());
    let action = Action::Webhook {
        url: receiver.url.clone(),
    };
    assert!(outbox.enqueue("job-5/0/0", &action, &incident(1)).unwrap());
    let sender = spawn(store.open(), settings(json!({})));
    wait_for_state(&outbox, "job-5/0/0", EntryState::Sent);
    // The job comes back (the worker died before acknowledging it): same keys.
    assert!(!outbox.enqueue("job-5/0/0", &action, &incident(1)).unwrap());
    assert_eq!(state(&outbox, "job-5/0/0"), "sent");
    sender.stop();
    assert_eq!(receiver.requests().len(), 1, "{:?}", receiver.requests());
}

#[test]
fn two_senders_on_one_store_deliver_each_alert_once() {
    let store = Store::new();
    let receiver = WebhookReceiver::start(0);
    let outbox = Outbox::new(store.open());
    let action = Action::Webhook {
        url: receiver.url.clone(),
    };
    let keys: Vec<String> = (0..30).map(|n| format!("job-6/{n}/0")).collect();
    for (n, key) in keys.iter().enumerate() {
        outbox.enqueue(key, &action, &incident(n)).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (log, _) = kept_log();
    let one = Sender::spawn(store.open(), settings(json!({})), stop.clone(), log.clone()).unwrap();
    let two = Sender::spawn(store.open(), settings(json!({})), stop.clone(), log).unwrap();
    process::wait_until("every alert sent", || {
        keys.iter().all(|k| state(&outbox, k) == "sent")
    });
    stop.store(true, Ordering::SeqCst);
    one.stop();
    two.stop();
    let requests = receiver.requests();
    let mut ids: Vec<&str> = requests
        .iter()
        .map(|r| r.headers["x-bonnie-alert-id"].as_str())
        .collect();
    ids.sort();
    let mut expected: Vec<&str> = keys.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(ids, expected);
}

#[test]
fn actions_that_are_not_alerts_are_refused_by_the_outbox() {
    let store = Store::new();
    let outbox = Outbox::new(store.open());
    for action in [
        Action::Incident {},
        Action::Keyword {
            name: "$DLP".into(),
        },
        Action::Quarantine {
            folder: "shared/quarantine".into(),
        },
    ] {
        let error = outbox
            .enqueue("job-7/0/0", &action, &incident(1))
            .unwrap_err();
        assert!(error.to_string().contains("not an alert"), "{error}");
    }
    assert_eq!(outbox.entry("job-7/0/0").unwrap(), None);
}
