//! The collector's failures against a real Cyrus IMAP 3.6 and OpenLDAP, sorted by kind: Cyrus
//! stopped while jobs wait for it (transient: the jobs are postponed and every payload is
//! stored once it is back), messages expunged and folders deleted before the fetch
//! (permanent: the record is stored with the reason), and a Cyrus and directory that never
//! answer (the jobs end FAILED after the configured tries, listed by `bonnie jobs failed`).
//! The collector reads no spool here, so that every payload has to come by IMAP.

use bonnie_core::payload;
use bonnie_tests::{
    cluster::{Cluster, free_port},
    cyrus::{ADMIN, Cyrus, Notify},
    ldap::Slapd,
    paths,
    process::{self, ChildGuard},
};
use serde_json::Value;

const JOHN: &str = "john.doe@example.org";

/// Cyrus with john's account, notifying the dealer daemon of a bonnie (broker and worker
/// running, no collector yet) whose collector fetches by IMAP only.
struct Lab {
    cluster: Cluster,
    cyrus: Cyrus,
    _ldap: Slapd,
    _running: Vec<ChildGuard>,
}

impl Lab {
    fn start() -> Self {
        let ldap = Slapd::start();
        let mut cyrus = Cyrus::new();
        let cluster = Cluster::for_cyrus(&cyrus, &ldap, &[]);
        let config = std::fs::read_to_string(cluster.config()).expect("reading the configuration");
        let spool = format!("partitions = [\"{}\"]", cyrus.spool().display());
        assert!(config.contains(&spool));
        std::fs::write(cluster.config(), config.replace(&spool, "partitions = []"))
            .expect("writing the configuration");
        let running = vec![
            cluster.start_broker(),
            cluster.start_worker("worker"),
            cluster.start_dealer_daemon(),
        ];
        cyrus.start(Notify::Daemon {
            socket: &cluster.dealer_socket(),
        });
        let mut admin = cyrus.login(ADMIN);
        admin
            .run("CREATE \"user/john.doe@example.org\"", &[])
            .expect("creating john's account");
        admin.logout().expect("logging out");
        Self {
            cluster,
            cyrus,
            _ldap: ldap,
            _running: running,
        }
    }
}

fn mail(subject: &str) -> Vec<u8> {
    format!(
        "From: Jane Doe <jane.doe@example.org>\r\nTo: John Doe <{JOHN}>\r\nSubject: {subject}\r\n\
         Date: Sat, 28 Nov 2026 17:13:36 +0000\r\nMessage-ID: <{}@example.org>\r\n\r\nThis is {subject}.\r\n",
        subject.replace(' ', "-")
    )
    .into_bytes()
}

/// Waits until Cyrus's notifications are all at the broker and every unfinished job waits
/// for a collector.
fn wait_for_collector_jobs(cluster: &Cluster) {
    process::wait_until("jobs waiting for the collector", || {
        let status = cluster.status();
        let waiting = status["waiting_for_collectors"].as_u64().unwrap_or(0);
        waiting > 0
            && status["jobs"]["ALLOC"] == 0
            && status["jobs"]["POSTPONED"] == 0
            && status["jobs"]["PENDING"].as_u64() == Some(waiting)
    });
    // Cyrus notifies within milliseconds; let a late one arrive, then check again.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let status = cluster.status();
    assert_eq!(
        status["jobs"]["PENDING"], status["waiting_for_collectors"],
        "{status}"
    );
}

fn count(events: &[Value], event: &str) -> usize {
    events.iter().filter(|e| e["event"] == event).count()
}

/// The MessageAppend record of the message with this subject.
fn append_of<'a>(events: &'a [Value], subject: &str) -> &'a Value {
    events
        .iter()
        .find(|e| {
            e["event"] == "MessageAppend"
                && e["vnd.cmu.envelope"]
                    .as_str()
                    .is_some_and(|envelope| envelope.contains(&format!("\"{subject}\"")))
        })
        .unwrap_or_else(|| panic!("no MessageAppend of {subject:?}"))
}

fn failed_jobs(cluster: &Cluster) -> Vec<Value> {
    let output = cluster.bonnie(&["jobs", "failed", "--json"]);
    assert!(output.status.success(), "{}", process::describe(&output));
    serde_json::from_slice::<Vec<Value>>(&output.stdout).expect("a JSON list")
}

#[test]
fn cyrus_stopped_while_jobs_wait_postpones_them_and_every_payload_is_stored_once_it_is_back() {
    let Lab { cluster, cyrus, .. } = &mut Lab::start();
    let mut john = cyrus.login(JOHN);
    john.run("CREATE Archive", &[]).unwrap();
    let sent: Vec<(String, Vec<u8>)> = [
        "first while away",
        "second while away",
        "archived while away",
    ]
    .iter()
    .map(|subject| (subject.to_string(), mail(subject)))
    .collect();
    john.append("INBOX", &Default::default(), &sent[0].1)
        .unwrap();
    john.append("INBOX", &Default::default(), &sent[1].1)
        .unwrap();
    john.append("Archive", &Default::default(), &sent[2].1)
        .unwrap();
    john.logout().unwrap();
    wait_for_collector_jobs(cluster);

    // Cyrus goes away before the collector gets to the jobs.
    cyrus.stop();
    let _collector = cluster.start_collector("collector");
    process::wait_until("jobs postponed while Cyrus is away", || {
        cluster.status()["jobs"]["POSTPONED"].as_u64().unwrap_or(0) > 0
    });
    assert!(
        cluster.log("collector").contains("Cyrus is unreachable"),
        "{}",
        cluster.log("collector")
    );
    let appends = if cluster.archived() == 0 {
        0
    } else {
        count(&cluster.log_records(), "MessageAppend")
    };
    assert_eq!(appends, 0, "nothing stored without its payload");

    cyrus.restart();
    cluster.wait_until_drained();
    assert_eq!(failed_jobs(cluster), Vec::<Value>::new());
    let events = cluster.log_records();
    for (subject, message) in &sent {
        let append = append_of(&events, subject);
        assert!(append.get("collector_errors").is_none(), "{append}");
        assert_eq!(
            append["payload_digest"],
            payload::digest(message).as_str(),
            "{append}"
        );
        assert_eq!(&cluster.payload(&payload::digest(message)), message);
    }
}

#[test]
fn a_message_expunged_or_a_folder_deleted_before_the_fetch_is_stored_with_the_reason() {
    let Lab { cluster, cyrus, .. } = &mut Lab::start();
    let (kept, doomed, in_gone) = (
        mail("kept"),
        mail("expunged soon"),
        mail("in a folder soon gone"),
    );
    let mut john = cyrus.login(JOHN);
    // Three messages copied at once into a folder named in Greek, one of the copies expunged
    // before the fetch: the headers of the other two come in one FETCH, the third is named
    // as gone.
    const COPIES: &str = "Αντίγραφα";
    john.run("CREATE Stapel", &[]).unwrap();
    john.create(COPIES).unwrap();
    let stack: Vec<Vec<u8>> = ["Stapel eins", "Stapel zwei", "Stapel drei"]
        .iter()
        .map(|subject| mail(subject))
        .collect();
    for bytes in &stack {
        john.append("Stapel", &Default::default(), bytes).unwrap();
    }
    john.select("Stapel").unwrap();
    john.uid_copy("1:3", COPIES).unwrap();
    john.select(COPIES).unwrap();
    for command in ["UID STORE 2 +FLAGS (\\Deleted)", "EXPUNGE", "UNSELECT"] {
        john.run(command, &[])
            .unwrap_or_else(|e| panic!("{command}: {e}"));
    }
    john.run("CREATE Gone", &[]).unwrap();
    john.append("INBOX", &Default::default(), &kept).unwrap();
    john.append("INBOX", &Default::default(), &doomed).unwrap();
    john.append("Gone", &Default::default(), &in_gone).unwrap();
    john.select("INBOX").unwrap();
    for command in [
        "UID STORE 2 +FLAGS (\\Deleted)",
        "EXPUNGE",
        "UNSELECT",
        "DELETE Gone",
    ] {
        john.run(command, &[])
            .unwrap_or_else(|e| panic!("{command}: {e}"));
    }
    john.logout().unwrap();
    wait_for_collector_jobs(cluster);

    let _collector = cluster.start_collector("collector");
    cluster.wait_until_drained();
    // Stored with the reason, not failed: retrying would not bring the messages back.
    assert_eq!(failed_jobs(cluster), Vec::<Value>::new());
    let events = cluster.log_records();
    let expunged = append_of(&events, "expunged soon");
    assert!(
        expunged["collector_errors"]["FETCH"]
            .as_str()
            .is_some_and(|r| r.contains("expunged before the fetch")),
        "{expunged}"
    );
    assert!(expunged.get("payload_digest").is_none(), "{expunged}");
    let gone = append_of(&events, "in a folder soon gone");
    assert!(
        gone["collector_errors"]["FETCH"]
            .as_str()
            .is_some_and(|r| r.contains("the folder no longer exists")),
        "{gone}"
    );
    let kept_append = append_of(&events, "kept");
    assert_eq!(
        kept_append["payload_digest"],
        payload::digest(&kept).as_str()
    );
    assert_eq!(cluster.payload(&payload::digest(&kept)), kept);

    let copy = events
        .iter()
        .find(|e| e["event"] == "MessageCopy" || e["event"] == "vnd.cmu.MessageCopy")
        .expect("the copy's record");
    let mut fetched: Vec<&str> = copy["messageHeaders"]
        .as_object()
        .unwrap_or_else(|| panic!("headers: {copy}"))
        .keys()
        .map(String::as_str)
        .collect();
    fetched.sort();
    assert_eq!(fetched, ["1", "3"], "{copy}");
    assert!(
        copy["messageHeaders"]["3"]
            .to_string()
            .contains("Stapel drei"),
        "{copy}"
    );
    assert!(
        copy["collector_errors"]["HEADER"]
            .as_str()
            .is_some_and(|r| r.contains("no longer holds UID 2")),
        "{copy}"
    );
}

#[test]
fn a_collector_that_never_reaches_imap_or_ldap_fails_the_jobs_visibly_after_the_configured_tries() {
    let closed = free_port();
    let collector = format!(
        "imap_address = \"127.0.0.1:{closed}\"\nimap_timeout_ms = 2000\npartitions = []\n\n[collector.ldap]\nurl = \"ldap://127.0.0.1:{closed}/\"\ntimeout_ms = 2000\n"
    );
    let collect = "collect = [\"FETCH\", \"GETMETADATA\", \"GETACL\", \"GETUSERDATA\"]\n";
    let handlers: String = ["sessions", "mailboxes", "messages", "messageappend"]
        .iter()
        .map(|h| format!("[plugins.{h}]\n{collect}\n"))
        .collect();
    let plugins = &bonnie_tests::worker::ARCHIVE_HANDLERS[..4];
    let cluster = Cluster::with_collector(plugins, &collector, &handlers);
    cluster.add_keys("broker", "max_postpones = 2");
    let _broker = cluster.start_broker();
    let _worker = cluster.start_worker("worker");
    let _collector = cluster.start_collector("collector");
    for sample in ["MailboxCreate-3.json", "MessageAppend-1.json"] {
        assert!(
            cluster
                .deal(paths::cyrus_event(sample).as_bytes())
                .status
                .success()
        );
    }
    process::wait_until("both jobs FAILED", || failed_jobs(&cluster).len() == 2);
    for job in failed_jobs(&cluster) {
        let reason = job["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("postponed 3 times") && reason.contains("Cyrus is unreachable"),
            "{job}"
        );
    }
    let listing = cluster.bonnie(&["jobs", "failed"]);
    let text = String::from_utf8_lossy(&listing.stdout);
    for event in ["MailboxCreate", "MessageAppend"] {
        assert!(text.contains(event), "{text}");
    }
    assert_eq!(
        cluster.archived(),
        0,
        "no record stored without what it needs"
    );
    assert!(cluster.idle());
    assert!(
        cluster.status()["collectors"][0]["identity"]
            .as_str()
            .is_some(),
        "the collector is still there"
    );
}
