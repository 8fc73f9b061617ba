//! `bonnie case` over an archive the real worker made (messages with payloads, German,
//! Russian and Japanese among them, a flag change and an expunge, through jsonl-input, the
//! messageappend handler and the changelog's message trail), on SQLite and on
//! Elasticsearch: cases are created, listed, shown and closed, their custodians and saved
//! queries added and removed, with clear errors; a case's items are exactly the union of its
//! queries among its custodians' items; a frozen list is read back the same after new mail
//! arrives; a hold placed from a case keeps every entry of its items through a purge that
//! removes the others, an item archived later included, until it is released; and a hold that
//! cannot be evaluated stops the purge.

use std::collections::BTreeSet;

use bonnie_plugin_api::Record;
use bonnie_tests::{
    cluster::Cluster,
    on_both_storages, process,
    process::ChildGuard,
    retention::{bonnie_json, log_entries},
    storages::{self, Archive, Storage},
};
use serde_json::{Value, json};

const ANNA: &str = "anna@example.org";
const BOB: &str = "bob@example.org";

/// A message as a mail client writes it: UTF-8 headers (encoded words) and body.
fn message(from: &str, to: &str, subject: &str, id: &str, body: &str) -> String {
    let b64 = |text: &str| bonnie_core::b64::encode_base64(text.as_bytes());
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: =?UTF-8?B?{}?=\r\n\
         Date: Sun, 01 Nov 2026 09:00:00 +0100\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n",
        b64(subject)
    )
}

/// The folder URL of `user`'s INBOX, as Cyrus writes it.
fn inbox(user: &str) -> String {
    format!(
        "imap://imap.example.org/user/{};UIDVALIDITY=7",
        user.replace('@', "%40")
    )
}

/// The notification of `message` appended to `user`'s INBOX as `uid` at `time`.
fn append(user: &str, uid: u64, time: &str, message: &str) -> String {
    json!({
        "event": "MessageAppend",
        "timestamp": time,
        "uri": format!("{}/;UID={uid}", inbox(user)),
        "user": user,
        "mailboxID": format!("inbox-of-{user}"),
        "messageContent": { uid.to_string(): { "data": message } },
    })
    .to_string()
}

/// A notification about `uid` in `user`'s INBOX (`FlagsSet`, `MessageExpunge`) at `time`.
fn about(event: &str, user: &str, uid: u64, time: &str, flags: Option<&str>) -> String {
    let mut notification = json!({
        "event": event,
        "timestamp": time,
        "uri": inbox(user),
        "user": user,
        "mailboxID": format!("inbox-of-{user}"),
        "uidset": uid.to_string(),
    });
    if let Some(flags) = flags {
        notification["flagNames"] = json!(flags);
    }
    notification.to_string()
}

/// The SHA-256 the storage keys a message's payload and item by.
fn digest(message: &str) -> String {
    bonnie_core::payload::digest(message.as_bytes())
}

/// Anna's contract, in German: what the cases' `subject:vertrag` finds.
fn contract() -> String {
    message(
        "Jürgen Groß <juergen@example.org>",
        ANNA,
        "Vertrag mit Müller",
        "vertrag-1@example.org",
        "Der Vertrag ist unterschrieben.",
    )
}

/// An addendum to it, archived later.
fn addendum() -> String {
    message(
        "Jürgen Groß <juergen@example.org>",
        ANNA,
        "Nachtrag zum Vertrag",
        "vertrag-3@example.org",
        "Ein Nachtrag.",
    )
}

/// Bob's draft contract: his, not a custodian's.
fn bobs_draft() -> String {
    message(
        ANNA,
        BOB,
        "Vertrag Entwurf",
        "vertrag-2@example.org",
        "Entwurf anbei.",
    )
}

/// Anna's mail of no case.
fn lunch() -> String {
    message(
        BOB,
        ANNA,
        "Mittagessen?",
        "lunch-1@example.org",
        "Um zwölf.",
    )
}

/// A cluster archiving the notifications of `in.jsonl` (jsonl-input, the messageappend and
/// messages handlers, the changelog's trails), with `extra` configuration, on `storage`.
struct Lab {
    // Dropped in this order: the broker, the storage, then the cluster's directory.
    _broker: ChildGuard,
    _archive: Archive,
    cluster: Cluster,
    lines: Vec<String>,
}

impl Lab {
    fn new(storage: Storage, extra: &str) -> Lab {
        let cluster = Cluster::new(
            &[
                "bonnie-messageappend",
                "bonnie-messages",
                "bonnie-changelog",
                "bonnie-jsonl-input",
            ],
            &format!(
                "[plugins.jsonl-input]\nfiles = [\"in.jsonl\"]\njournal = \"var/jsonl-input/outcomes.jsonl\"\n\n\
                 [plugins.messages]\ncollect = []\n\n[plugins.changelog]\ncollect = []\n\n[discovery]\ntime_zone = \"Europe/Berlin\"\n\n{extra}\n"
            ),
        );
        let archive = cluster.use_storage(storage);
        let broker = cluster.start_broker();
        Lab {
            _broker: broker,
            _archive: archive,
            cluster,
            lines: Vec::new(),
        }
    }

    /// Archives `lines` after those archived before (a worker runs until every line's entry is
    /// in the log).
    fn archive(&mut self, lines: &[String]) {
        self.lines.extend(lines.iter().cloned());
        std::fs::write(
            self.cluster.path().join("in.jsonl"),
            self.lines.join("\n") + "\n",
        )
        .unwrap();
        let worker = self.cluster.start_worker("worker-1");
        let wanted = self.lines.len();
        process::wait_until("the notifications archived", || {
            let storage = storages::open(&self.cluster.config());
            let query = bonnie_plugin_api::RecordQuery {
                collection: "log".into(),
                all: true,
                ..Default::default()
            };
            storage.query(&query).map(|r| r.len()).unwrap_or(0) >= wanted
        });
        self.cluster.wait_until_drained();
        drop(worker);
    }

    /// Runs `bonnie` with `args`, asserting it succeeds; its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.cluster.bonnie(args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            process::describe(&output)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs `bonnie` with `args`, asserting it fails; its standard error.
    fn fails(&self, args: &[&str]) -> String {
        let output = self.cluster.bonnie(args);
        assert!(
            !output.status.success(),
            "{args:?} succeeded: {}",
            process::describe(&output)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        bonnie_json(&self.cluster, args)
    }

    /// The digests of `bonnie case items <args> --json`, sorted.
    fn items(&self, args: &[&str]) -> BTreeSet<String> {
        let mut all = vec!["case", "items", "--json"];
        all.extend(args);
        self.json(&all)
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["item"].as_str().unwrap().to_string())
            .collect()
    }
}

fn set(digests: &[&str]) -> BTreeSet<String> {
    digests.iter().map(|d| d.to_string()).collect()
}

fn cases_keep_custodians_and_queries_and_list_their_items(storage: Storage) {
    let (contract, bobs, addendum) = (contract(), bobs_draft(), addendum());
    let supply = message(
        "Иван Петров <ivan@example.ru>",
        ANNA,
        "Договор поставки",
        "dogovor-1@example.ru",
        "Поставка в декабре.",
    );
    let estimate = message(
        "田中 <tanaka@example.jp>",
        ANNA,
        "見積書の送付",
        "mitsumori-1@example.jp",
        "見積書を添付します。",
    );
    let mut lab = Lab::new(storage, "");
    lab.archive(&[
        append(ANNA, 1, "2026-11-01T08:00:00.000Z", &contract),
        append(ANNA, 2, "2026-11-01T08:01:00.000Z", &supply),
        append(ANNA, 3, "2026-11-01T08:02:00.000Z", &estimate),
        append(BOB, 1, "2026-11-01T08:03:00.000Z", &bobs),
    ]);

    lab.ok(&[
        "case",
        "create",
        "Müller/2026",
        "--description",
        "Lieferstreit Müller",
        "--custodian",
        "Anna@Example.org",
    ]);
    let again = lab.fails(&["case", "create", "Müller/2026"]);
    assert!(again.contains("exists already"), "{again}");
    let control = lab.fails(&["case", "create", "bad\u{1b}[31m"]);
    assert!(control.contains("control characters"), "{control}");
    let unknown = lab.fails(&["case", "show", "Nirgends"]);
    assert!(unknown.contains("no case \"Nirgends\""), "{unknown}");

    let listed = lab.json(&["case", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["name"], "Müller/2026");
    assert_eq!(listed[0]["status"], "open");
    assert_eq!(listed[0]["custodians"], json!([ANNA]));
    assert_eq!(listed[0]["description"], "Lieferstreit Müller");

    // No query yet: no items, and the text says why.
    assert!(lab.items(&["Müller/2026"]).is_empty());
    let none = lab.ok(&["case", "items", "Müller/2026"]);
    assert!(none.contains("no saved query"), "{none}");

    lab.ok(&[
        "case",
        "query",
        "add",
        "Müller/2026",
        "vertrag",
        "subject:vertrag",
    ]);
    let bad = lab.fails(&[
        "case",
        "query",
        "add",
        "Müller/2026",
        "kaputt",
        "subject:(vertrag",
    ]);
    assert!(bad.contains("column"), "the error says where: {bad}");
    let twice = lab.fails(&["case", "query", "add", "Müller/2026", "vertrag", "müller"]);
    assert!(twice.contains("has a query \"vertrag\" already"), "{twice}");
    lab.ok(&[
        "case",
        "query",
        "add",
        "Müller/2026",
        "договор",
        "body:поставка OR subject:договор",
    ]);

    // The union of both queries among Anna's items: not Bob's contract, nor the estimate.
    let (contract, supply, estimate, bobs) = (
        digest(&contract),
        digest(&supply),
        digest(&estimate),
        digest(&bobs),
    );
    assert_eq!(lab.items(&["Müller/2026"]), set(&[&contract, &supply]));
    lab.ok(&["case", "custodian", "add", "Müller/2026", "BOB@example.org"]);
    assert_eq!(
        lab.items(&["Müller/2026"]),
        set(&[&contract, &supply, &bobs])
    );
    // `bonnie search --case`: a query among the case's custodians' items only.
    let searched = |query: &str| -> BTreeSet<String> {
        lab.json(&["search", query, "--case", "Müller/2026", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["item"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(searched("subject:vertrag"), set(&[&contract, &bobs]));
    let twice = lab.fails(&["case", "custodian", "add", "Müller/2026", BOB]);
    assert!(twice.contains("already"), "{twice}");
    lab.ok(&["case", "custodian", "remove", "Müller/2026", BOB]);
    assert_eq!(
        searched("subject:vertrag"),
        set(&[&contract]),
        "not Bob's any more"
    );
    let gone = lab.fails(&["case", "custodian", "remove", "Müller/2026", BOB]);
    assert!(gone.contains("no custodian"), "{gone}");
    lab.ok(&["case", "query", "remove", "Müller/2026", "договор"]);
    assert_eq!(lab.items(&["Müller/2026"]), set(&[&contract]));
    // Japanese has no spaces: a run of letters is one word, so its beginning is a prefix.
    lab.ok(&[
        "case",
        "query",
        "add",
        "Müller/2026",
        "Japanisch",
        "見積書* OR subject:договор",
    ]);
    assert_eq!(
        lab.items(&["Müller/2026"]),
        set(&[&contract, &supply, &estimate])
    );

    let shown = lab.json(&["case", "show", "Müller/2026", "--json"]);
    let queries = shown["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 2, "{shown}");
    assert_eq!(queries[0]["name"], "vertrag");
    assert_eq!(queries[0]["text"], "subject:vertrag");
    assert_eq!(queries[0]["hits"], 1, "Anna's contract only: {shown}");
    assert_eq!(queries[1]["hits"], 2, "{shown}");
    assert!(queries[1]["canonical"].is_string(), "{shown}");
    assert_eq!(shown["custodians"], json!([ANNA]));
    let text = lab.ok(&["case", "show", "Müller/2026"]);
    assert!(
        text.contains("vertrag: subject:vertrag  (1 items now)"),
        "{text}"
    );

    // Frozen: the same list after new mail that matches arrives, and a new freeze takes it.
    let frozen = lab.json(&["case", "freeze", "Müller/2026", "--json"]);
    assert_eq!(frozen["id"], "e1", "{frozen}");
    assert_eq!(frozen["items"], 3, "{frozen}");
    lab.archive(&[append(ANNA, 4, "2026-11-02T08:00:00.000Z", &addendum)]);
    let now = set(&[&contract, &supply, &estimate, &digest(&addendum)]);
    assert_eq!(lab.items(&["Müller/2026"]), now);
    let e1 = set(&[&contract, &supply, &estimate]);
    assert_eq!(lab.items(&["Müller/2026", "--export", "e1"]), e1);
    let second = lab.json(&["case", "freeze", "Müller/2026", "--json"]);
    assert_eq!((&second["id"], &second["items"]), (&json!("e2"), &json!(4)));
    assert_ne!(second["sha256"], frozen["sha256"]);
    // As the mailboxes stood before the addendum: the first list again.
    let before = lab.json(&[
        "case",
        "freeze",
        "Müller/2026",
        "--as-of",
        "2026-11-02",
        "--json",
    ]);
    assert_eq!(before["sha256"], frozen["sha256"], "{before}");
    assert_eq!(lab.items(&["Müller/2026", "--as-of", "2026-11-02"]), e1);
    let shown = lab.json(&["case", "show", "Müller/2026", "--json"]);
    let exports: Vec<&str> = shown["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(exports, ["e1", "e2", "e3"], "{shown}");
    let missing = lab.fails(&["case", "items", "Müller/2026", "--export", "e9"]);
    assert!(missing.contains("no export \"e9\""), "{missing}");

    // Closed: no new query, custodian, hold or freeze; what was frozen stays readable.
    lab.ok(&[
        "case",
        "close",
        "Müller/2026",
        "--reason",
        "Vergleich geschlossen",
    ]);
    for refused in [
        vec!["case", "query", "add", "Müller/2026", "neu", "müller"],
        vec!["case", "custodian", "add", "Müller/2026", BOB],
        vec!["case", "hold", "Müller/2026", "--reason", "zu spät"],
        vec!["case", "freeze", "Müller/2026"],
        vec!["case", "close", "Müller/2026", "--reason", "zweimal"],
    ] {
        let error = lab.fails(&refused);
        assert!(error.contains("is closed"), "{refused:?}: {error}");
    }
    assert_eq!(lab.items(&["Müller/2026", "--export", "e1"]), e1);
    let closed = lab.json(&["case", "show", "Müller/2026", "--json"]);
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["closed"]["reason"], "Vergleich geschlossen");

    // Every command is audited: changes with what was asked, reads with their counts.
    let audit = lab.json(&["audit", "--json"]);
    let records = audit.as_array().unwrap();
    for wanted in [
        "case create",
        "case list",
        "case show",
        "case query add",
        "case query remove",
        "case custodian add",
        "case custodian remove",
        "case items",
        "case freeze",
        "case frozen",
        "case close",
    ] {
        assert!(
            records.iter().any(|r| r["action"] == wanted),
            "{wanted} not audited: {audit}"
        );
    }
    let added = records
        .iter()
        .find(|r| r["action"] == "case query add" && r["params"]["name"] == "vertrag")
        .expect("the query's addition");
    assert_eq!(added["params"]["query"], "subject:vertrag", "{added}");
    let frozen_record = records
        .iter()
        .find(|r| r["action"] == "case frozen")
        .expect("the frozen list's record");
    assert_eq!(frozen_record["params"]["sha256"], frozen["sha256"]);
    assert_eq!(frozen_record["count"], 3);
}

/// The log entries of `event` not purged (a purged one is a tombstone of its event and time).
fn whole(lab: &Lab, event: &str) -> Vec<Value> {
    log_entries(&lab.cluster, event)
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r["purged"] != json!(true))
        .collect()
}

/// The payloads the whole appends name, sorted.
fn appended(lab: &Lab) -> BTreeSet<String> {
    whole(lab, "MessageAppend")
        .iter()
        .map(|r| r["payload_digest"].as_str().unwrap().to_string())
        .collect()
}

fn a_case_hold_keeps_its_items_entries_through_purges_until_released(storage: Storage) {
    let (contract, bobs, addendum) = (contract(), bobs_draft(), addendum());
    let lunch = lunch();
    // Everything is kept a day, and all of it is weeks old.
    let mut lab = Lab::new(storage, "[retention]\ndefault = \"1d\"\n");
    lab.archive(&[
        append(ANNA, 1, "2026-11-01T08:00:00.000Z", &contract),
        append(ANNA, 2, "2026-11-01T08:01:00.000Z", &lunch),
        append(BOB, 1, "2026-11-01T08:02:00.000Z", &bobs),
        about(
            "FlagsSet",
            ANNA,
            1,
            "2026-11-02T08:00:00.000Z",
            Some("\\Flagged"),
        ),
        about("MessageExpunge", ANNA, 1, "2026-11-03T08:00:00.000Z", None),
    ]);
    let shown = lab.json(&["show", "--json", &digest(&contract)]);
    assert_eq!(
        shown["places"][0]["ended_by"], "MessageExpunge",
        "the trail ends the place: {shown}"
    );
    assert!(shown["places"][0]["ended_job"].is_string(), "{shown}");
    assert_eq!(
        shown["flag_changes"][0]["flags"],
        json!(["\\Flagged"]),
        "{shown}"
    );

    lab.ok(&["case", "create", "Hold-Ü", "--custodian", ANNA]);
    let lacking = lab.fails(&["case", "hold", "Hold-Ü", "--reason", "litigation"]);
    assert!(lacking.contains("no saved query"), "{lacking}");
    lab.ok(&[
        "case",
        "query",
        "add",
        "Hold-Ü",
        "vertrag",
        "subject:vertrag",
    ]);
    lab.ok(&["case", "hold", "Hold-Ü", "--reason", "litigation hold"]);
    let again = lab.fails(&["case", "hold", "Hold-Ü", "--reason", "twice"]);
    assert!(again.contains("on hold already"), "{again}");
    let holds = lab.json(&["hold", "list", "--json"]);
    assert_eq!(holds[0]["case"], "Hold-Ü", "{holds}");
    assert_eq!(holds[0]["custodians"], json!([ANNA]), "{holds}");
    assert_eq!(
        holds[0]["discovery"]["custodians"],
        json!([ANNA]),
        "{holds}"
    );
    assert!(
        holds[0]["discovery"]["queries"][0]
            .as_str()
            .unwrap()
            .contains("vertrag"),
        "{holds}"
    );

    // The plan and the purge keep the contract's append, flag change and expunge (the hold's
    // item, Anna's), and remove the lunch and Bob's draft (his, not a custodian's).
    let plan = lab.json(&["retention", "plan", "--json"]);
    assert_eq!(
        (plan["purged"].as_u64(), plan["held"].as_u64()),
        (Some(2), Some(3)),
        "{plan}"
    );
    let report = lab.json(&["retention", "apply", "--yes", "--json"]);
    assert_eq!(report["purged"].as_u64(), Some(2), "{report}");
    assert_eq!(report["held"].as_u64(), Some(3), "{report}");
    assert_eq!(
        appended(&lab),
        set(&[&digest(&contract)]),
        "the contract's append only"
    );
    assert_eq!(whole(&lab, "FlagsSet").len(), 1, "its flag change");
    assert_eq!(whole(&lab, "MessageExpunge").len(), 1, "its expunge");
    let client = storages::open(&lab.cluster.config());
    assert_eq!(
        client.get_payload(&digest(&contract)).unwrap().as_deref(),
        Some(contract.as_bytes()),
        "the held item's payload stays"
    );
    assert_eq!(client.get_payload(&digest(&lunch)).unwrap(), None);
    let kept = lab.json(&["show", "--json", &digest(&contract)]);
    assert_eq!(kept["places"], shown["places"], "its history is whole");
    assert_eq!(kept["flag_changes"], shown["flag_changes"]);

    // An item archived after the hold that matches is held by the next purge too.
    lab.archive(&[append(ANNA, 3, "2026-11-04T08:00:00.000Z", &addendum)]);
    let report = lab.json(&["retention", "apply", "--yes", "--json"]);
    assert_eq!(report["purged"].as_u64(), Some(0), "{report}");
    assert_eq!(report["held"].as_u64(), Some(4), "{report}");
    assert_eq!(
        appended(&lab),
        set(&[&digest(&contract), &digest(&addendum)]),
        "the addendum too"
    );

    // Released, the next purge removes them.
    lab.ok(&["hold", "release", "Hold-Ü", "--reason", "settled"]);
    let report = lab.json(&["retention", "apply", "--yes", "--json"]);
    assert_eq!(report["purged"].as_u64(), Some(4), "{report}");
    assert!(appended(&lab).is_empty());
    assert!(whole(&lab, "FlagsSet").is_empty() && whole(&lab, "MessageExpunge").is_empty());
    let shown = lab.json(&["case", "show", "Hold-Ü", "--json"]);
    assert_eq!(shown["holds"][0]["standing"], false, "{shown}");
    assert_eq!(
        shown["holds"][0]["released"]["reason"], "settled",
        "{shown}"
    );
    let audit = lab.json(&["audit", "--json"]);
    let placed = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "case hold" && r["outcome"] == "requested")
        .expect("the hold's placing is audited");
    assert_eq!(placed["params"]["case"], "Hold-Ü", "{placed}");
}

fn a_case_hold_that_cannot_be_evaluated_stops_the_purge(storage: Storage) {
    let lunch = lunch();
    let mut lab = Lab::new(storage, "[retention]\ndefault = \"1d\"\n");
    lab.archive(&[append(ANNA, 1, "2026-11-01T08:00:00.000Z", &lunch)]);
    // A hold record bonnie would not write (its query does not parse), as an edit of the
    // storage behind bonnie's back leaves it: a fault no command can produce.
    let hold = json!({
        "case": "Kaputt",
        "custodians": [ANNA],
        "folder": null, "from_ms": null, "to_ms": null, "query": null,
        "reason": "litigation",
        "created_by": "root",
        "created_ms": 1,
        "released": null,
        "discovery": {
            "queries": ["subject:(vertrag"],
            "custodians": [ANNA],
            "time_zone": "Europe/Berlin",
            "local_domains": [],
        },
    });
    storages::open(&lab.cluster.config())
        .put(Record::new("holds", "Kaputt", &hold).at(1))
        .unwrap();
    for args in [
        vec!["retention", "apply", "--yes", "--json"],
        vec!["retention", "plan", "--json"],
    ] {
        let error = lab.fails(&args);
        assert!(
            error.contains("\"Kaputt\" cannot be evaluated") && error.contains("column"),
            "{args:?}: {error}"
        );
    }
    assert_eq!(
        appended(&lab),
        set(&[&digest(&lunch)]),
        "nothing was purged on a guess"
    );
}

on_both_storages!(
    cases_keep_custodians_and_queries_and_list_their_items,
    a_case_hold_keeps_its_items_entries_through_purges_until_released,
    a_case_hold_that_cannot_be_evaluated_stops_the_purge,
);
