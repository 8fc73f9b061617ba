//! The collector's DLPACTION against a real Cyrus IMAP 3.6: jobs whose handler (the
//! test-handler fixture, as the DLP handler will) asks for the notification's
//! `dlp_imap_actions` get a keyword set on their message, or the message moved to a quarantine
//! folder that the collector creates for the admin alone (non-ASCII names too), with the
//! outcomes in `dlp_imap_results`; a redelivered job passes; a folder whose UIDVALIDITY
//! changed and names a rule file got wrong are permanent errors in the results; Cyrus away is
//! transient (the job is postponed and done once it is back); a server without MOVE gets
//! COPY, `\Deleted` and UID EXPUNGE of the one message.

use bonnie_imap::{AppendOptions, StoreMode};
use bonnie_tests::{
    cluster::Cluster,
    cyrus::{ADMIN, Cyrus, Notify},
    process::{self, ChildGuard},
};
use serde_json::{Value, json};

const JOHN: &str = "john.doe@example.org";

/// Cyrus with john's account (notifying nobody: the jobs here are written by the test) and a
/// bonnie whose worker runs test-handler and whose collector reaches Cyrus by IMAP.
struct Lab {
    cluster: Cluster,
    cyrus: Cyrus,
    _running: Vec<ChildGuard>,
}

impl Lab {
    fn start() -> Self {
        Self::on(Cyrus::new())
    }

    /// The lab on `cyrus`, not started yet.
    fn on(mut cyrus: Cyrus) -> Self {
        cyrus.start(Notify::Off);
        let collector = format!(
            "imap_address = \"{}\"\nimap_admin = \"{ADMIN}\"\nimap_password_file = \"imap-password\"\npartitions = []\n",
            cyrus.imap_address()
        );
        let cluster = Cluster::with_collector(&["bonnie-fixture-test-handler"], &collector, "");
        cluster.write_secret("imap-password", "secret");
        let running = vec![
            cluster.start_broker(),
            cluster.start_worker("worker"),
            cluster.start_collector("collector"),
        ];
        let mut admin = cyrus.login(ADMIN);
        admin
            .run(&format!("CREATE \"user/{JOHN}\""), &[])
            .expect("creating john's account");
        admin.logout().expect("logging out");
        Self {
            cluster,
            cyrus,
            _running: running,
        }
    }

    /// Appends a message with this Message-ID to john's INBOX: its UIDVALIDITY and UID.
    fn append(&self, message_id: &str) -> (u32, u32) {
        let mut john = self.cyrus.login(JOHN);
        let message = format!(
            "From: john.doe@example.org\r\nTo: jane@example.org\r\nSubject: card\r\nMessage-ID: {message_id}\r\n\r\nVisa 4539 1488 0343 6467\r\n"
        );
        let at = john
            .append("INBOX", &AppendOptions::default(), message.as_bytes())
            .expect("appending")
            .expect("Cyrus answers APPENDUID");
        john.logout().unwrap();
        (at.uidvalidity, at.uid)
    }

    /// Sends a job about message `uid` of john's INBOX asking for `actions`, the folder named
    /// with `uidvalidity`; its record once archived. `case` tells the jobs apart.
    fn act(
        &self,
        case: &str,
        uidvalidity: u32,
        uid: u32,
        message_id: &str,
        actions: Value,
    ) -> Value {
        self.send(case, uidvalidity, uid, message_id, actions);
        self.record(case)
    }

    /// Sends the job of [`Lab::act`] without waiting for it.
    fn send(&self, case: &str, uidvalidity: u32, uid: u32, message_id: &str, actions: Value) {
        let notification = json!({
            "event": "MessageAppend",
            "user": JOHN,
            "uri": format!("imap://cyrus-lab.example.org/user/john.doe%40example.org;UIDVALIDITY={uidvalidity}/;UID={uid}"),
            "bonnie_test": "dlpaction",
            "case": case,
            // As Cyrus 3.6 writes it (event_extra_params vnd.cmu.envelope).
            "vnd.cmu.envelope": format!(
                "(\"Tue, 01 Dec 2026 10:00:00 +0000\" \"card\" ((NIL NIL \"john.doe\" \"example.org\")) ((NIL NIL \"john.doe\" \"example.org\")) ((NIL NIL \"john.doe\" \"example.org\")) ((NIL NIL \"jane\" \"example.org\")) NIL NIL NIL \"{message_id}\")"
            ),
            "dlp_imap_actions": actions,
        });
        let output = self.cluster.deal(notification.to_string().as_bytes());
        assert!(output.status.success(), "{}", process::describe(&output));
    }

    /// The record of job `case`, once archived.
    fn record(&self, case: &str) -> Value {
        process::wait_until(&format!("the record of job {case}"), || {
            self.stored(case).is_some()
        });
        self.stored(case).unwrap()
    }

    /// The record of job `case`, if archived yet.
    fn stored(&self, case: &str) -> Option<Value> {
        if self.cluster.archived() == 0 {
            return None;
        }
        self.cluster
            .log_records()
            .into_iter()
            .find(|r| r["case"] == case)
    }
}

use bonnie_tests::cyrus::uid_flags as flags;

fn results(record: &Value) -> &Vec<Value> {
    record["dlp_imap_results"]
        .as_array()
        .unwrap_or_else(|| panic!("no dlp_imap_results: {record}"))
}

#[test]
fn a_keyword_is_set_once_and_again_a_changed_uidvalidity_and_bad_names_are_errors_in_the_results() {
    let lab = Lab::start();
    let (uidvalidity, uid) = lab.append("<kw-1@example.org>");
    let record = lab.act(
        "keyword",
        uidvalidity,
        uid,
        "<kw-1@example.org>",
        json!([{"type": "keyword", "name": "$DLP"}]),
    );
    let found = results(&record);
    assert_eq!(found.len(), 1, "{record}");
    assert_eq!(found[0]["ok"], true, "{record}");
    assert_eq!(found[0]["type"], "keyword", "{record}");
    let mut john = lab.cyrus.login(JOHN);
    let seen = flags(&mut john, "INBOX", uid).expect("the message is in INBOX");
    assert!(seen.iter().any(|f| f == "$DLP"), "{seen:?}");

    // The job again, as the broker redelivers it: the keyword is there already.
    let again = lab.act(
        "keyword again",
        uidvalidity,
        uid,
        "<kw-1@example.org>",
        json!([{"type": "keyword"}]),
    );
    assert_eq!(results(&again)[0]["ok"], true, "{again}");
    assert!(again.get("collector_errors").is_none(), "{again}");

    // A folder named with another UIDVALIDITY is another folder: its message is gone.
    let stale = lab.act(
        "stale",
        uidvalidity + 1,
        uid,
        "<kw-1@example.org>",
        json!([{"type": "keyword", "name": "$DLP2"}]),
    );
    let error = results(&stale)[0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("UIDVALIDITY"), "{stale}");
    let seen = flags(&mut john, "INBOX", uid).unwrap();
    assert!(!seen.iter().any(|f| f == "$DLP2"), "{seen:?}");

    // A system flag or a keyword that is not an atom is refused, and the other action runs.
    let bad = lab.act(
        "bad keyword",
        uidvalidity,
        uid,
        "<kw-1@example.org>",
        json!([
            {"type": "keyword", "name": "\\Deleted"},
            {"type": "keyword", "name": "a b"},
            {"type": "keyword", "name": "$Reviewed"},
        ]),
    );
    let found = results(&bad);
    assert!(
        found[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("keyword"),
        "{bad}"
    );
    assert!(found[1]["error"].is_string(), "{bad}");
    assert_eq!(found[2]["ok"], true, "{bad}");
    let seen = flags(&mut john, "INBOX", uid).unwrap();
    assert!(!seen.iter().any(|f| f == "\\Deleted"), "{seen:?}");
    assert!(seen.iter().any(|f| f == "$Reviewed"), "{seen:?}");
    john.logout().unwrap();
}

#[test]
fn a_quarantined_message_moves_with_its_keyword_to_a_folder_only_the_admin_reads_and_a_redelivered_job_passes()
 {
    let lab = Lab::start();
    let (uidvalidity, uid) = lab.append("<q-1@example.org>");
    let actions = json!([
        {"type": "quarantine", "folder": "shared/quarantine"},
        {"type": "keyword", "name": "$DLP"},
    ]);
    let record = lab.act(
        "quarantine",
        uidvalidity,
        uid,
        "<q-1@example.org>",
        actions.clone(),
    );
    let found = results(&record);
    assert_eq!(found[0]["type"], "quarantine", "{record}");
    assert_eq!(found[0]["ok"], true, "{record}");
    assert_eq!(found[0]["moved"][0]["uid"], uid, "{record}");
    assert_eq!(found[1]["ok"], true, "{record}");
    let moved_to = found[0]["moved"][0]["quarantine_uid"]
        .as_u64()
        .unwrap_or_else(|| panic!("Cyrus says where the message went: {record}"))
        as u32;

    let mut john = lab.cyrus.login(JOHN);
    assert_eq!(flags(&mut john, "INBOX", uid), None, "still in INBOX");
    // john cannot see the quarantine (in Cyrus's altnamespace, shared folders are listed
    // under `Shared Folders/`).
    let listed = john.list("", "*").unwrap();
    assert!(
        !listed.iter().any(|e| e.name.contains("quarantine")),
        "{listed:?}"
    );
    john.logout().unwrap();
    let mut admin = lab.cyrus.login(ADMIN);
    let quarantine = "shared/quarantine@example.org";
    let seen = flags(&mut admin, quarantine, moved_to).expect("the message is in quarantine");
    assert!(seen.iter().any(|f| f == "$DLP"), "{seen:?}");
    let acl = admin.getacl(quarantine).unwrap();
    assert!(!acl.iter().any(|(who, _)| who == "anyone"), "{acl:?}");

    // Redelivered: the message is no longer in INBOX, but in quarantine by its Message-ID.
    let again = lab.act(
        "quarantine again",
        uidvalidity,
        uid,
        "<q-1@example.org>",
        actions,
    );
    let found = results(&again);
    assert_eq!(found[0]["ok"], true, "{again}");
    assert_eq!(found[0]["in_quarantine"][0]["already"], true, "{again}");
    assert_eq!(
        found[0]["in_quarantine"][0]["quarantine_uid"], moved_to,
        "{again}"
    );
    assert_eq!(found[1]["ok"], true, "{again}");
    admin.examine(quarantine).unwrap();
    let held = admin.uid_fetch("1:*", "(UID)", None).unwrap();
    assert_eq!(held.len(), 1, "moved once: {held:?}");

    // A message that is neither in its folder nor in quarantine is gone: said so.
    let gone = lab.act(
        "gone",
        uidvalidity,
        uid,
        "<never-seen@example.org>",
        json!([{"type": "quarantine", "folder": "shared/quarantine"}]),
    );
    let error = results(&gone)[0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("no longer holds UID"), "{gone}");
    admin.logout().unwrap();
}

#[test]
fn a_quarantine_folder_with_a_non_ascii_name_is_created_and_hostile_names_or_a_users_lookalike_folder_catch_nothing()
 {
    let lab = Lab::start();
    let (uidvalidity, uid) = lab.append("<q-2@example.org>");
    // john names folders of his own after the quarantine, to catch what is quarantined.
    let mut john = lab.cyrus.login(JOHN);
    let lookalikes = ["shared/Quarantäne", "INBOX/shared/Quarantäne"];
    for folder in ["shared", "INBOX/shared"].iter().chain(&lookalikes) {
        john.create(folder).unwrap();
    }
    let record = lab.act(
        "non-ascii",
        uidvalidity,
        uid,
        "<q-2@example.org>",
        json!([
            {"type": "quarantine", "folder": "shared/../user/jane"},
            {"type": "quarantine", "folder": "shared/*"},
            {"type": "quarantine", "folder": "user/jane/Inbox"},
            {"type": "quarantine", "folder": "shared/Quarantäne"},
        ]),
    );
    let found = results(&record);
    for refused in &found[..3] {
        assert!(
            refused["error"]
                .as_str()
                .unwrap_or_default()
                .contains("quarantine folder"),
            "{record}"
        );
    }
    assert_eq!(found[3]["ok"], true, "{record}");
    let mut admin = lab.cyrus.login(ADMIN);
    let listed = admin.list("", "shared/Quarant*@example.org").unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].name, "shared/Quarantäne@example.org");
    admin.examine("shared/Quarantäne@example.org").unwrap();
    assert_eq!(admin.uid_fetch("1:*", "(UID)", None).unwrap().len(), 1);
    admin.logout().unwrap();
    for folder in lookalikes {
        john.examine(folder).unwrap();
        assert_eq!(
            john.uid_fetch("1:*", "(UID)", None).unwrap(),
            Vec::new(),
            "john's own {folder} caught nothing"
        );
    }
    john.logout().unwrap();
}

#[test]
fn without_move_the_message_is_copied_then_expunged_alone_and_what_the_user_marked_deleted_stays() {
    let lab = Lab::on(Cyrus::new().with_imapd_option("suppress_capabilities: MOVE"));
    let (uidvalidity, uid) = lab.append("<q-3@example.org>");
    let (_, kept) = lab.append("<kept@example.org>");
    let mut john = lab.cyrus.login(JOHN);
    assert!(!john.has("MOVE"), "{:?}", john.capabilities());
    john.select("INBOX").unwrap();
    john.uid_store(&kept.to_string(), StoreMode::Add, &["\\Deleted"], None)
        .unwrap();
    let record = lab.act(
        "no move",
        uidvalidity,
        uid,
        "<q-3@example.org>",
        json!([{"type": "quarantine", "folder": "shared/quarantine"}]),
    );
    assert_eq!(results(&record)[0]["ok"], true, "{record}");
    assert_eq!(flags(&mut john, "INBOX", uid), None, "still in INBOX");
    let still = flags(&mut john, "INBOX", kept).expect("the other message is kept");
    assert!(still.iter().any(|f| f == "\\Deleted"), "{still:?}");
    john.logout().unwrap();
    let mut admin = lab.cyrus.login(ADMIN);
    admin.examine("shared/quarantine@example.org").unwrap();
    let held = admin.uid_fetch("1:*", "(UID FLAGS)", None).unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    admin.logout().unwrap();
}

#[test]
fn cyrus_away_postpones_the_job_and_its_actions_are_done_once_cyrus_is_back() {
    let mut lab = Lab::start();
    let (uidvalidity, uid) = lab.append("<away@example.org>");
    lab.cyrus.stop();
    lab.send(
        "away",
        uidvalidity,
        uid,
        "<away@example.org>",
        json!([{"type": "keyword", "name": "$DLP"}]),
    );
    process::wait_until("the job postponed while Cyrus is away", || {
        lab.cluster.status()["jobs"]["POSTPONED"]
            .as_u64()
            .unwrap_or(0)
            > 0
    });
    assert!(lab.stored("away").is_none(), "stored without its actions");
    lab.cyrus.restart();
    let record = lab.record("away");
    assert_eq!(results(&record)[0]["ok"], true, "{record}");
    let mut john = lab.cyrus.login(JOHN);
    let seen = flags(&mut john, "INBOX", uid).unwrap();
    assert!(seen.iter().any(|f| f == "$DLP"), "{seen:?}");
    john.logout().unwrap();
}
