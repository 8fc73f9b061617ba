//! The DLP handler through the whole chain against a real Cyrus IMAP 3.6 and OpenLDAP: users
//! act over IMAP, the exec dealer, the broker, two workers (each with the harness's threads)
//! with every archive handler and `dlp`, and the collector do the rest. A message with card
//! numbers appended by john is an incident, masked, in its log record and in `bonnie dlp
//! incidents --json`; its webhook alert reaches a small HTTP server here and its keyword is
//! set on the message; a folder with a German name shared with `anyone` is the ACL rule's
//! incident; a Kolab event with an IBAN in its description, a Russian message with an IBAN
//! in a folder with a Cyrillic name and an IBAN delivered to jane over LMTP are the IBAN
//! rule's; a confidential message is moved
//! to the quarantine folder; a clean message gives none. bonnie-api's `dlp.incidents` answers
//! an admin client what the command line prints and refuses a Roundcube client.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::TcpListener,
    sync::{Arc, Mutex},
};

use bonnie_imap::{AppendOptions, Connection};
use bonnie_tests::{cluster::Cluster, cyrus::ADMIN, kolab, lab::CyrusLab, process, storages};
use serde_json::{Value, json};

const JOHN: &str = "john.doe@example.org";
const JANE: &str = "jane.doe@example.org";
const CARD: &str = "4539 1488 0343 6467";
const SECOND_CARD: &str = "5105 1087 3210 0007";
const IBAN: &str = "DE89 3704 0044 0532 0130 00";

/// A small HTTP server that answers every request 200 and keeps the bodies.
struct WebhookReceiver {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl WebhookReceiver {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the webhook receiver");
        let url = format!("http://{}/dlp", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap_or_default();
                kept.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).into_owned());
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Self { url, bodies }
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}

/// The rules: cards alert a webhook and get a keyword, IBANs are incidents, a confidential
/// phrase sends the message to quarantine, a folder readable by anyone is an incident.
fn rules(webhook: &str) -> String {
    format!(
        r#"
[detectors.confidential]
kind = "keywords"
words = ["streng vertraulich", "strictly confidential"]

[[rules]]
name = "payment-cards"
severity = "high"
detectors = ["payment_card"]
actions = [
    {{ type = "incident" }},
    {{ type = "webhook", url = "{webhook}" }},
    {{ type = "keyword", name = "$DLP" }},
]

[[rules]]
name = "ibans"
severity = "medium"
detectors = ["iban"]

[[rules]]
name = "confidential"
severity = "high"
detectors = ["confidential"]
actions = [{{ type = "quarantine", folder = "shared/quarantine" }}]

[[rules]]
name = "folder-readable-by-anyone"
severity = "high"
acl = "anyone"
"#
    )
}

fn mail(subject: &str, charset: &str, body: &[u8]) -> Vec<u8> {
    let mut message = format!(
        "From: John Doe <{JOHN}>\r\nTo: Jane Doe <{JANE}>, kasse@example.com\r\nSubject: {subject}\r\n\
         Date: Tue, 01 Dec 2026 09:00:00 +0000\r\nMessage-ID: <{}@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        subject.replace(' ', "-")
    )
    .into_bytes();
    message.extend_from_slice(body);
    message.extend_from_slice(b"\r\n");
    message
}

/// A Kolab event whose description holds an IBAN.
fn kolab_event() -> Vec<u8> {
    let uid = "6F2A9C3E-1B7D-4E0A-8C55-DLP000000001";
    let xml = kolab::event_xml(
        uid,
        &[
            ("dtstamp", "<date-time>2026-12-01T09:00:00Z</date-time>"),
            ("summary", "<text>Miete</text>"),
            (
                "description",
                &format!("<text>Bitte die Miete auf {IBAN} überweisen.</text>"),
            ),
            ("dtstart", "<date-time>2026-12-03T10:00:00Z</date-time>"),
            ("dtend", "<date-time>2026-12-03T11:00:00Z</date-time>"),
        ],
    );
    kolab::message("event", uid, JOHN, "Tue, 01 Dec 2026 09:00:00 +0000", &xml)
}

use bonnie_tests::cyrus::uid_flags as flags;

/// The log records of `event` whose subject is `subject`.
fn logged<'a>(records: &'a [Value], subject: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["event"] == "MessageAppend" && r["subject"] == subject)
        .collect()
}

fn incidents_json(cluster: &Cluster, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["dlp", "incidents", "--json"];
    all.extend_from_slice(args);
    let output = cluster.bonnie(&all);
    assert!(output.status.success(), "{}", process::describe(&output));
    serde_json::from_slice(&output.stdout).expect("JSON")
}

fn rules_of(incidents: &[Value]) -> Vec<&str> {
    incidents
        .iter()
        .filter_map(|i| i["rule"].as_str())
        .collect()
}

#[test]
fn incidents_alerts_keywords_and_quarantine_from_real_cyrus() {
    let webhook = WebhookReceiver::start();
    let lab = CyrusLab::start_prepared(
        storages::Storage::Sqlite,
        &["bonnie-dlp-plugin"],
        &[JOHN, JANE],
        |cluster| {
            std::fs::write(cluster.path().join("dlp-rules.toml"), rules(&webhook.url)).unwrap();
            let config = std::fs::read_to_string(cluster.config()).unwrap();
            let dlp = "[plugins.dlp]\nrules = \"dlp-rules.toml\"\nlocal_domains = [\"example.org\"]\n\n\
                       [plugins.dlp.alerts]\npoll_interval_ms = 100\n";
            std::fs::write(cluster.config(), format!("{config}\n{dlp}")).unwrap();
        },
    );
    let (cyrus, cluster) = (&lab.cyrus, &lab.cluster);
    let _second_worker = cluster.start_worker("worker-2");

    let mut john = cyrus.login(JOHN);
    for folder in ["Kalender", "Öffentlich", "Черновики"] {
        john.create(folder).unwrap();
    }
    john.run(
        "SETMETADATA Kalender (/private/vendor/kolab/folder-type \"event.default\")",
        &[],
    )
    .unwrap();
    john.setacl("Öffentlich", "anyone", "lrs").unwrap();
    let append = |john: &mut Connection, folder: &str, message: &[u8]| {
        john.append(folder, &AppendOptions::default(), message)
            .unwrap()
            .expect("UIDPLUS")
            .uid
    };
    let cards = mail(
        "Kartendaten",
        "utf-8",
        format!("Hallo Jane, hier die Karten: {CARD} und {SECOND_CARD}.").as_bytes(),
    );
    let cards_uid = append(&mut john, "INBOX", &cards);
    append(&mut john, "Kalender", &kolab_event());
    let russian = format!("Здравствуйте! Пожалуйста, переведите деньги на счёт {IBAN}.");
    append(
        &mut john,
        "Черновики",
        &mail("Платёж", "utf-8", russian.as_bytes()),
    );
    let secret_uid = append(
        &mut john,
        "INBOX",
        &mail(
            "Vorstand",
            "iso-8859-1",
            b"Streng vertraulich: die Zahlen f\xfcr 2027.",
        ),
    );
    append(
        &mut john,
        "INBOX",
        &mail(
            "Mittag",
            "utf-8",
            b"Essen um 12? Bestellnummer 4539148803436468, Tel. +49 30 1234567.",
        ),
    );
    john.logout().unwrap();
    // Delivered to jane over LMTP from outside: her incident (the delivery has no acting user
    // but its recipient).
    cyrus.lmtp(
        "kasse@example.com",
        &[JANE],
        &mail(
            "Rechnung",
            "utf-8",
            format!("Zahlbar auf {IBAN}.").as_bytes(),
        ),
    );
    lab.wait_until_archived();

    // The card message: its incident in the log record, masked, with the alert queued and the
    // keyword set.
    let records = cluster.log_records();
    let card_records = logged(&records, "Kartendaten");
    assert_eq!(card_records.len(), 1, "{records:#?}");
    let found = &card_records[0]["dlp"]["incidents"];
    assert_eq!(found[0]["rule"], "payment-cards", "{}", card_records[0]);
    assert_eq!(found[0]["count"], 2);
    assert_eq!(found[0]["uid"], cards_uid);
    let excerpts: Vec<&str> = found[0]["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["excerpt"].as_str().unwrap())
        .collect();
    assert!(excerpts.contains(&"4539 **** **** 6467"), "{excerpts:?}");
    let logged_text = card_records[0]["dlp"].to_string();
    assert!(
        !logged_text.contains("0343") && !logged_text.contains("3210 0007"),
        "{logged_text}"
    );
    assert_eq!(found[0]["actions"][1]["outcome"], "queued");
    assert_eq!(found[0]["actions"][2]["outcome"], "done", "{found}");
    let mut imap = cyrus.login(JOHN);
    let seen = flags(&mut imap, "INBOX", cards_uid).expect("the card message");
    assert!(seen.iter().any(|f| f == "$DLP"), "{seen:?}");

    // The webhook received the alert, without the numbers.
    process::wait_until("the webhook alert", || {
        webhook.bodies().iter().any(|b| b.contains("payment-cards"))
    });
    let alerts = webhook.bodies();
    assert!(
        alerts
            .iter()
            .all(|b| !b.contains("0343 6467") && !b.contains("3210 0007")),
        "{alerts:?}"
    );

    // The confidential message is in quarantine, no longer in john's INBOX.
    let secret = logged(&records, "Vorstand");
    assert_eq!(
        secret[0]["dlp"]["incidents"][0]["rule"], "confidential",
        "{}",
        secret[0]
    );
    assert_eq!(
        secret[0]["dlp"]["incidents"][0]["actions"][0]["outcome"], "done",
        "{}",
        secret[0]
    );
    assert_eq!(flags(&mut imap, "INBOX", secret_uid), None, "moved away");
    imap.logout().unwrap();
    let mut admin = cyrus.login(ADMIN);
    admin.examine("shared/quarantine@example.org").unwrap();
    let quarantined = admin.uid_search_header("Subject", "Vorstand").unwrap();
    assert_eq!(quarantined.len(), 1, "in quarantine");
    admin.logout().unwrap();

    // The clean message: scanned, no incident (an order number is no card).
    let clean = logged(&records, "Mittag");
    assert_eq!(clean[0]["dlp"]["incidents"], json!([]), "{}", clean[0]);

    // The folder shared with anyone, the Kolab event's IBAN, the Russian IBAN.
    let all = incidents_json(cluster, &[]);
    let acl: Vec<&Value> = all
        .iter()
        .filter(|i| i["rule"] == "folder-readable-by-anyone")
        .collect();
    assert_eq!(acl.len(), 1, "{all:#?}");
    assert_eq!(acl[0]["acl"]["identifier"], "anyone");
    assert!(
        acl[0]["folder"].as_str().unwrap().contains("Öffentlich"),
        "{}",
        acl[0]
    );
    let cards: Vec<&Value> = all
        .iter()
        .filter(|i| i["rule"] == "payment-cards")
        .collect();
    assert_eq!(cards.len(), 1, "{all:#?}");
    assert_eq!(cards[0]["user"], JOHN);
    assert_eq!(cards[0]["uid"], cards_uid);
    assert_eq!(cards[0]["matches"][0]["excerpt"], "4539 **** **** 6467");
    assert!(!Value::Array(all.clone()).to_string().contains("0343 6467"));
    let ibans = incidents_json(cluster, &["--rule", "ibans"]);
    assert_eq!(rules_of(&ibans), ["ibans", "ibans", "ibans"], "{ibans:#?}");
    let parts: Vec<&str> = ibans
        .iter()
        .map(|i| i["matches"][0]["part"].as_str().unwrap())
        .collect();
    assert!(parts.contains(&"field description"), "{parts:?}");
    assert!(
        ibans
            .iter()
            .any(|i| i["folder"].as_str().unwrap().contains("Черновики")),
        "{ibans:#?}"
    );
    assert!(ibans.iter().all(|i| {
        i["matches"][0]["excerpt"]
            .as_str()
            .unwrap()
            .contains("****")
    }));
    // By user and by time; the table names the rule and the masked match.
    let janes = incidents_json(cluster, &["--user", JANE]);
    assert_eq!(rules_of(&janes), ["ibans"], "{janes:#?}");
    assert_eq!(janes[0]["event"], "MessageNew");
    assert_eq!(incidents_json(cluster, &["--since", "2100-01-01"]).len(), 0);
    let table = cluster.bonnie(&["dlp", "incidents", "--rule", "payment-cards"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("payment-cards") && table.contains("4539 **** **** 6467"),
        "{table}"
    );

    // bonnie-api: the admin client gets what the command line prints; Roundcube does not.
    let (_api, roundcube, admins) = cluster.start_api_with_admins(&["console"]);
    let answered = admins[0].call("", "dlp.incidents", json!({ "rule": "ibans" }));
    assert_eq!(answered, Value::Array(ibans));
    let refused = roundcube.call_raw(JOHN, "dlp.incidents", json!({}));
    assert_eq!(refused.body["error"]["code"], -32001, "{refused:?}");
}

/// A rule written after the fact: a keyword list for a project's code name.
const NEW_RULE: &str = r#"
[detectors.falke]
kind = "keywords"
words = ["projekt falke"]

[[rules]]
name = "project-falke"
severity = "medium"
detectors = ["falke"]
"#;

#[test]
fn a_retroactive_scan_finds_what_a_new_rule_would_have_in_the_archive_and_is_audited() {
    let lab = CyrusLab::start(&["bonnie-dlp-plugin"], &[JOHN, JANE]);
    let (cyrus, cluster) = (&lab.cyrus, &lab.cluster);
    let mut john = cyrus.login(JOHN);
    john.create("Archiv").unwrap();
    let falke = mail(
        "Falke",
        "utf-8",
        "Der Zeitplan für Projekt Falke steht.".as_bytes(),
    );
    let uid = john
        .append("INBOX", &AppendOptions::default(), &falke)
        .unwrap()
        .expect("UIDPLUS")
        .uid;
    john.append(
        "INBOX",
        &AppendOptions::default(),
        &mail("Anderes", "utf-8", b"Nichts Besonderes."),
    )
    .unwrap();
    john.select("INBOX").unwrap();
    john.uid_copy(&uid.to_string(), "Archiv").unwrap();
    john.logout().unwrap();
    lab.wait_until_archived();
    // The shipped rules knew nothing of it.
    assert_eq!(incidents_json(cluster, &[]), Vec::<Value>::new());

    let rule_file = cluster.path().join("falke.toml");
    std::fs::write(&rule_file, NEW_RULE).unwrap();
    let rule_file = rule_file.to_str().unwrap();
    let scan = |args: &[&str]| -> Vec<Value> {
        let mut all = vec!["dlp", "scan", "--rules", rule_file, "--json"];
        all.extend_from_slice(args);
        let output = cluster.bonnie(&all);
        assert!(output.status.success(), "{}", process::describe(&output));
        serde_json::from_slice(&output.stdout).expect("JSON")
    };
    let hits = scan(&[]);
    let events: Vec<&str> = hits.iter().map(|h| h["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        ["MessageAppend", "vnd.cmu.MessageCopy"],
        "{hits:#?}"
    );
    assert!(hits.iter().all(|h| h["rule"] == "project-falke"
        && h["user"] == JOHN
        && h["matches"][0]["part"] == "body 1"));
    assert_eq!(hits[0]["uid"], uid);
    assert!(hits[1]["folder"].as_str().unwrap().contains("Archiv"));
    assert_eq!(scan(&["--user", JANE]), Vec::<Value>::new());
    assert_eq!(scan(&["--since", "2100-01-01"]), Vec::<Value>::new());
    assert_eq!(scan(&["--until", "2000-01-01"]).len(), 0);
    // It reports only: nothing was recorded.
    assert_eq!(incidents_json(cluster, &[]), Vec::<Value>::new());

    // Both reads are in the audit trail, with their parameters and counts.
    let output = cluster.bonnie(&["audit", "--json"]);
    assert!(output.status.success(), "{}", process::describe(&output));
    let audit: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let scans: Vec<&Value> = audit.iter().filter(|r| r["action"] == "dlp scan").collect();
    assert_eq!(scans.len(), 4, "{audit:#?}");
    assert_eq!(scans[0]["count"], 2);
    assert_eq!(scans[1]["params"]["user"], JANE);
    assert!(audit.iter().any(|r| r["action"] == "dlp incidents"));
}
