//! e-Discovery search over an archive the real pipeline made from real Cyrus 3.6 (LMTP
//! deliveries and IMAP appends, the collector fetching every payload, the changelog keeping
//! the message trails the items' histories are read from), on SQLite and on Elasticsearch
//! alike, two workers taking the events in any order: three users with nested and non-ASCII folders, mail in German, Russian, Japanese and
//! Greek (bodies in ISO-8859-1 and KOI8-R too), attachments with RFC 2231 names, Dates in
//! several zones, a message over 100 KB, flags set and cleared, a message moved, one copied,
//! one expunged, a folder renamed, one deleted, a Kolab event. `bonnie search --json` finds,
//! for each field and operator, exactly the items it should (by Message-ID), now and `--as-of`
//! the moments between the steps; `bonnie show --json` gives the places, flag history and
//! deletion of the moved, copied, flagged, expunged and renamed items.

use std::collections::BTreeSet;

use bonnie_core::time::{format_rfc3339_ms, now_ms};
use bonnie_imap::{AppendOptions, Connection};
use bonnie_tests::{
    attached::create_user,
    cluster::Cluster,
    cyrus::{Cyrus, Notify},
    kolab,
    ldap::Slapd,
    on_both_storages, paths,
    process::{self, ChildGuard},
    storages::{self, Storage},
};
use serde_json::Value;

const JOHN: &str = "john.doe@example.org";
const JANE: &str = "jane.doe@example.org";
const ERIK: &str = "erik@example.org";

/// The Message-IDs of the archive's messages.
const DE: &str = "<gruss-1@example.org>";
const RU: &str = "<otchet-1@partner.example>";
const JA: &str = "<gijiroku-1@partner.example>";
const EL: &str = "<kalimera-1@partner.example>";
const BIG: &str = "<report-draft-1@example.org>";
const BUDGET: &str = "<budget-1@example.org>";
const SECRET: &str = "<secret-1@example.org>";
const OLD: &str = "<old-1@example.org>";
const TEMP: &str = "<temp-1@example.org>";
const EVENT: &str = "<event-1@example.org>";
const DRAFT: &str = "<entwurf-1@example.org>";
const CIRCULAR: &str = "<rundschreiben-1@example.org>";
const ALL: [&str; 12] = [
    DE, RU, JA, EL, BIG, BUDGET, SECRET, OLD, TEMP, EVENT, DRAFT, CIRCULAR,
];

/// The queries' configuration: dates without an offset in Berlin, example.org local.
const DISCOVERY: &str =
    "[discovery]\ntime_zone = \"Europe/Berlin\"\nlocal_domains = [\"example.org\"]\n";

fn b64(bytes: &[u8]) -> String {
    bonnie_core::b64::encode_base64(bytes)
}

/// `bytes` in base64, in lines of 76 characters as MIME writes them.
fn b64_lines(bytes: &[u8]) -> String {
    let encoded = b64(bytes);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|line| std::str::from_utf8(line).expect("base64 is ASCII"))
        .collect();
    lines.join("\r\n")
}

/// An encoded word (RFC 2047, UTF-8, base64) for a header.
fn word(text: &str) -> String {
    format!("=?UTF-8?B?{}?=", b64(text.as_bytes()))
}

/// German, delivered to john (Cc jane): an ISO-8859-1 encoded-word subject, an ISO-8859-1
/// 8-bit body, and a text attachment whose name is RFC 2231 encoded.
fn german() -> Vec<u8> {
    let mut message = format!(
        "From: {} <juergen@example.org>\r\nTo: John Doe <{JOHN}>\r\nCc: {JANE}\r\n\
         Subject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=\r\nDate: Mon, 02 Nov 2026 09:30:00 +0100\r\n\
         Message-ID: {DE}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        word("Jürgen Groß")
    )
    .into_bytes();
    message.extend_from_slice(b"Die \xdcberweisung f\xfcr die Stra\xdfe ist gepr\xfcft.\r\n");
    message.extend_from_slice(
        format!(
            "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Disposition: attachment; filename*=UTF-8''Pr%C3%BCfbericht%20M%C3%A4rz.txt\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
            b64("Prüfbericht: alle Zahlen stimmen, Zahnrad 7.".as_bytes())
        )
        .as_bytes(),
    );
    message
}

/// Russian, delivered to john, its body in KOI8-R: "Привет! Отчёт готов, смотрите таблицу."
fn russian() -> Vec<u8> {
    let mut message = format!(
        "From: {} <ivan@partner.example>\r\nTo: {JOHN}\r\nSubject: {}\r\n\
         Date: Tue, 03 Nov 2026 12:00:00 +0300\r\nMessage-ID: {RU}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=KOI8-R\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        word("Иван Петров"),
        word("Отчёт за квартал")
    )
    .into_bytes();
    message.extend_from_slice(
        b"\xf0\xd2\xc9\xd7\xc5\xd4\x21\x20\xef\xd4\xde\xa3\xd4\x20\xc7\xcf\xd4\xcf\xd7\x2c\x20\
          \xd3\xcd\xcf\xd4\xd2\xc9\xd4\xc5\x20\xd4\xc1\xc2\xcc\xc9\xc3\xd5\x2e\r\n",
    );
    message
}

/// A plain UTF-8 message (its body base64, so any script goes through).
fn plain(from: &str, to: &str, subject: &str, date: &str, id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {}\r\nDate: {date}\r\nMessage-ID: {id}\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        word(subject),
        b64_lines(body.as_bytes())
    )
    .into_bytes()
}

/// Japanese, appended by jane; its Date at +0900 is the evening before in UTC.
fn japanese() -> Vec<u8> {
    plain(
        &format!("{} <tanaka@partner.example>", word("田中")),
        JANE,
        "会議の議事録",
        "Wed, 04 Nov 2026 08:15:00 +0900",
        JA,
        "明日の会議 について 確認 します",
    )
}

/// Greek, delivered to erik, its Date at -0500 (late evening in Berlin).
fn greek() -> Vec<u8> {
    plain(
        &format!("{} <nikos@partner.example>", word("Νίκος Παπαδόπουλος")),
        ERIK,
        "Καλημέρα φίλε",
        "Thu, 05 Nov 2026 17:45:00 -0500",
        EL,
        "Η συνάντηση είναι αύριο.",
    )
}

/// The size of the big message's binary attachment.
const BIG_ATTACHMENT: usize = 120_000;

/// john's copy of what he sent Alice (Cc jane, Bcc erik): over 100 KB, a binary attachment
/// whose RFC 2231 name comes in two continuations ("Bericht Größe.bin").
fn big() -> Vec<u8> {
    let attachment: Vec<u8> = (0..BIG_ATTACHMENT).map(|i| (i * 7 % 251) as u8).collect();
    format!(
        "From: John Doe <{JOHN}>\r\nTo: Alice Partner <alice@partner.example>\r\nCc: {JANE}\r\n\
         Bcc: {ERIK}\r\nSubject: Quarterly report draft\r\nDate: Fri, 06 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: {BIG}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b2\"\r\n\r\n\
         --b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAttached is the quarterly budget in full.\r\n\
         --b2\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename*0*=UTF-8''Bericht%20Gr; filename*1*=%C3%B6%C3%9Fe.bin\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b2--\r\n",
        b64_lines(&attachment)
    )
    .into_bytes()
}

fn ascii(from: &str, to: &str, subject: &str, date: &str, id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: {id}\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// A Kolab v3 event of john's, with a Message-ID as Roundcube gives it.
fn event() -> Vec<u8> {
    let xml = kolab::event_xml(
        "event-uid-1",
        &[
            ("summary", "<text>Planungsrunde</text>"),
            (
                "dtstart",
                &kolab::zoned("Europe/Berlin", "2026-11-20T10:00:00"),
            ),
            (
                "dtend",
                &kolab::zoned("Europe/Berlin", "2026-11-20T11:00:00"),
            ),
        ],
    );
    let message = kolab::message(
        "event",
        "event-uid-1",
        JOHN,
        "Wed, 11 Nov 2026 09:00:00 +0100",
        &xml,
    );
    [format!("Message-ID: {EVENT}\r\n").into_bytes(), message].concat()
}

/// The UID of the message with this Message-ID in the selected folder.
fn uid_of(imap: &mut Connection, id: &str) -> u32 {
    let uids = imap
        .uid_search_header("Message-ID", id)
        .unwrap_or_else(|e| panic!("searching {id}: {e}"));
    match uids.as_slice() {
        [uid] => *uid,
        _ => panic!("{id}: UIDs {uids:?}"),
    }
}

fn append(imap: &mut Connection, folder: &str, flags: &[&str], message: &[u8]) {
    imap.append(folder, &AppendOptions::flags(flags), message)
        .unwrap_or_else(|e| panic!("appending to {folder}: {e}"));
}

fn run(imap: &mut Connection, command: &str) {
    imap.run(command, &[])
        .unwrap_or_else(|e| panic!("{command}: {e}"));
}

/// A moment between two steps: now, once the clock has passed it (so no later event can have
/// the same millisecond), as `--as-of` takes it.
fn moment() -> String {
    let ms = now_ms();
    process::wait_until("the clock to pass the moment", || now_ms() > ms);
    format_rfc3339_ms(ms)
}

/// Real Cyrus 3.6 notifying the exec dealer, and a bonnie on a storage as shipped: the broker,
/// two workers (taking the events in any order), the collector, the archive handlers and the
/// changelog. Its processes stop before Cyrus, the folders and the search server go.
struct Lab {
    _processes: Vec<ChildGuard>,
    cyrus: Cyrus,
    cluster: Cluster,
    archive: storages::Archive,
    _ldap: Slapd,
}

impl Lab {
    /// Starts everything on `storage`, with [`DISCOVERY`] configured and the users' mailboxes.
    fn start(storage: Storage) -> Self {
        let ldap = Slapd::start();
        let mut cyrus = Cyrus::new();
        let cluster = Cluster::for_cyrus(&cyrus, &ldap, &["bonnie-changelog"]);
        let config = std::fs::read_to_string(cluster.config()).expect("the configuration");
        std::fs::write(cluster.config(), format!("{config}\n{DISCOVERY}"))
            .expect("writing the configuration");
        let archive = cluster.use_storage(storage);
        let mut processes = vec![cluster.start_broker()];
        processes.extend(cluster.start_workers(&["worker-1", "worker-2"]));
        let (dealer, config) = (paths::bin("bonnie-dealer"), cluster.config());
        cyrus.start(Notify::Exec {
            dealer: &dealer,
            config: &config,
        });
        processes.push(cluster.start_collector("collector"));
        for user in [JOHN, JANE, ERIK] {
            create_user(&cyrus, user);
        }
        Self {
            _processes: processes,
            cyrus,
            cluster,
            archive,
            _ldap: ldap,
        }
    }
}

/// Searches and shows through the admin command line, as a reviewer does.
struct Review<'a> {
    lab: &'a Lab,
    /// What went wrong, every query's, asserted at the end.
    wrong: Vec<String>,
}

impl Review<'_> {
    fn cluster(&self) -> &Cluster {
        &self.lab.cluster
    }

    /// Waits until Cyrus's notifications so far are archived and searchable.
    fn settle(&self) {
        self.lab.cyrus.wait_until_archived(&self.lab.cluster);
        if let Some(server) = &self.lab.archive.server {
            server.refresh();
        }
    }

    /// `bonnie search --json [--as-of] -- <query>`: its items.
    fn search(&self, query: &str, as_of: Option<&str>) -> Vec<Value> {
        self.search_limited(query, as_of, 1000)
    }

    /// `bonnie search --json --limit <limit> [--as-of] -- <query>`: its items, newest first.
    fn search_limited(&self, query: &str, as_of: Option<&str>, limit: usize) -> Vec<Value> {
        let limit = limit.to_string();
        let mut args = vec!["search", "--json", "--limit", &limit];
        if let Some(as_of) = as_of {
            args.extend(["--as-of", as_of]);
        }
        args.extend(["--", query]);
        let output = self.cluster().bonnie(&args);
        assert!(
            process::succeeded(&output.status),
            "{query}: {}",
            process::describe(&output)
        );
        match serde_json::from_slice(&output.stdout) {
            Ok(Value::Array(items)) => items,
            _ => panic!("{query}: not a JSON array: {}", process::describe(&output)),
        }
    }

    /// The Message-IDs of the items `query` finds, the harness's probe messages (archived as
    /// any other, in its shared folder) left out.
    /// Sorted, each once per item: one message archived as two items would show twice.
    fn ids(&self, query: &str, as_of: Option<&str>) -> Vec<String> {
        let mut ids: Vec<String> = self
            .search(query, as_of)
            .iter()
            .map(|item| item["message_id"].as_str().unwrap_or("(none)").to_string())
            .filter(|id| !id.ends_with("@bonnie-lab.invalid>"))
            .collect();
        ids.sort();
        ids
    }

    /// Notes it if `query` (at `as_of`) finds other items than `expected` (in any order).
    fn expect(&mut self, query: &str, as_of: Option<&str>, expected: &[&str]) {
        let found = self.ids(query, as_of);
        let mut expected: Vec<String> = expected.iter().map(|id| id.to_string()).collect();
        expected.sort();
        if found != expected {
            let at = as_of.map(|t| format!(" --as-of {t}")).unwrap_or_default();
            self.wrong.push(format!(
                "{query:?}{at}: found {found:?}, expected {expected:?}"
            ));
        }
    }

    /// `bonnie show --json [--as-of] <item>`.
    fn show(&self, item: &str, as_of: Option<&str>) -> Value {
        let mut args = vec!["show", "--json"];
        if let Some(as_of) = as_of {
            args.extend(["--as-of", as_of]);
        }
        args.extend(["--", item]);
        let output = self.cluster().bonnie(&args);
        assert!(
            process::succeeded(&output.status),
            "show {item}: {}",
            process::describe(&output)
        );
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("show {item}: {}", process::describe(&output)))
    }
}

/// The moments between the steps, for `--as-of`.
struct Moments {
    /// Before any message.
    start: String,
    /// Every first delivery archived; nothing changed yet.
    delivered: String,
    /// The German message \Flagged and $Wichtig; \Flagged not yet cleared.
    flagged: String,
    /// The Russian message moved.
    moved: String,
    /// Before the secret message was appended.
    before_secret: String,
    /// The secret message appended and \Deleted, not yet expunged.
    before_expunge: String,
    /// The old message in Alt, before Alt became Erledigt.
    before_rename: String,
    /// The temporary message in Temp, before Temp was deleted.
    before_folder_delete: String,
    /// Before Работа (and with it Работа/Проекты) became Arbeit.
    before_parent_rename: String,
    /// After the last step.
    end: String,
}

/// Fills the mailboxes step by step, as users would.
fn fill(review: &Review<'_>) -> Moments {
    let cyrus = &review.lab.cyrus;
    review.settle();
    let start = moment();

    cyrus.lmtp("juergen@example.org", &[JOHN], &german());
    cyrus.lmtp("ivan@partner.example", &[JOHN], &russian());
    cyrus.lmtp("nikos@partner.example", &[ERIK], &greek());
    // One delivery to two users: one message, one item, in both INBOXes.
    cyrus.lmtp(
        "hr@example.org",
        &[JOHN, JANE],
        &ascii(
            "HR <hr@example.org>",
            "Alle <alle@example.org>",
            "Rundschreiben: Weihnachtsfeier",
            "Fri, 13 Nov 2026 07:00:00 +0100",
            CIRCULAR,
            "Die Feier ist am 18. Dezember.",
        ),
    );
    let mut jane = cyrus.login(JANE);
    append(&mut jane, "INBOX", &[], &japanese());
    append(
        &mut jane,
        "INBOX",
        &[],
        &ascii(
            "Bob <bob@example.org>",
            JANE,
            "Budget meeting notes",
            "7 Nov 2026 14:00:00 GMT",
            BUDGET,
            "The quarterly numbers and the budget for next year.",
        ),
    );
    jane.logout().unwrap();
    let mut john = cyrus.login(JOHN);
    john.create("Sent").unwrap();
    append(&mut john, "Sent", &["\\Seen"], &big());
    john.logout().unwrap();
    review.settle();
    let delivered = moment();

    // Flags set, then one cleared.
    let mut john = cyrus.login(JOHN);
    john.select("INBOX").unwrap();
    let de = uid_of(&mut john, "gruss-1@example.org");
    run(
        &mut john,
        &format!("UID STORE {de} +FLAGS (\\Flagged $Wichtig)"),
    );
    review.settle();
    let flagged = moment();
    run(&mut john, &format!("UID STORE {de} -FLAGS (\\Flagged)"));
    review.settle();

    // Moved into a nested, non-ASCII folder.
    john.create("Работа").unwrap();
    john.create("Работа/Проекты").unwrap();
    john.select("INBOX").unwrap();
    let ru = uid_of(&mut john, "otchet-1@partner.example");
    john.uid_move(&ru.to_string(), "Работа/Проекты").unwrap();
    john.logout().unwrap();
    review.settle();
    let moved = moment();

    // Copied: in two folders at once.
    let mut jane = cyrus.login(JANE);
    jane.create("Archiv").unwrap();
    jane.select("INBOX").unwrap();
    let budget = uid_of(&mut jane, "budget-1@example.org");
    jane.uid_copy(&budget.to_string(), "Archiv").unwrap();
    jane.logout().unwrap();
    review.settle();
    let before_secret = moment();

    // Appended, marked \Deleted, expunged.
    let mut john = cyrus.login(JOHN);
    append(
        &mut john,
        "INBOX",
        &[],
        &ascii(
            "mallory@evil.example",
            JOHN,
            "Secret plan",
            "Sun, 08 Nov 2026 09:00:00 +0100",
            SECRET,
            "Nobody must know.",
        ),
    );
    john.select("INBOX").unwrap();
    let secret = uid_of(&mut john, "secret-1@example.org");
    run(&mut john, &format!("UID STORE {secret} +FLAGS (\\Deleted)"));
    review.settle();
    let before_expunge = moment();
    john.uid_expunge(&secret.to_string()).unwrap();
    review.settle();

    // A folder renamed with its message in it.
    john.create("Alt").unwrap();
    append(
        &mut john,
        "Alt",
        &[],
        &ascii(
            "bob@example.org",
            JOHN,
            "Alte Projekte",
            "Mon, 09 Nov 2026 11:00:00 +0100",
            OLD,
            "Was wir letztes Jahr gemacht haben.",
        ),
    );
    review.settle();
    let before_rename = moment();
    run(&mut john, "RENAME Alt Erledigt");
    // The Kolab event.
    john.create("Kalender").unwrap();
    append(&mut john, "Kalender", &[], &event());
    john.logout().unwrap();

    // A folder deleted with its message in it, and a draft in a non-ASCII folder.
    let mut jane = cyrus.login(JANE);
    jane.create("Temp").unwrap();
    append(
        &mut jane,
        "Temp",
        &[],
        &ascii(
            "Carol <carol@example.org>",
            JANE,
            "Temporary list",
            "Tue, 10 Nov 2026 15:00:00 +0100",
            TEMP,
            "Milk, eggs, bread.",
        ),
    );
    review.settle();
    let before_folder_delete = moment();
    jane.delete("Temp").unwrap();
    jane.create("Entwürfe").unwrap();
    append(
        &mut jane,
        "Entwürfe",
        &["\\Draft"],
        &plain(
            JANE,
            JOHN,
            "Entwurf: Änderungen",
            "Thu, 12 Nov 2026 08:00:00 +0100",
            DRAFT,
            "Bitte prüfen.",
        ),
    );
    jane.logout().unwrap();
    review.settle();
    let before_parent_rename = moment();

    // A folder renamed with its subfolder: Cyrus notifies the rename of Работа alone.
    let mut john = cyrus.login(JOHN);
    john.send(
        bonnie_imap::Command::new("RENAME")
            .mailbox("Работа")
            .mailbox("Arbeit"),
    )
    .expect("RENAME Работа Arbeit");
    // Its trail goes on at the new path.
    john.select("Arbeit/Проекты").unwrap();
    let ru = uid_of(&mut john, "otchet-1@partner.example");
    run(&mut john, &format!("UID STORE {ru} +FLAGS ($Erledigt)"));
    john.logout().unwrap();
    review.settle();
    let end = moment();
    Moments {
        start,
        delivered,
        flagged,
        moved,
        before_secret,
        before_expunge,
        before_rename,
        before_folder_delete,
        before_parent_rename,
        end,
    }
}

on_both_storages!(every_field_and_operator_finds_exactly_its_items_now_and_as_of);

fn every_field_and_operator_finds_exactly_its_items_now_and_as_of(storage: Storage) {
    let lab = Lab::start(storage);
    let mut review = Review {
        lab: &lab,
        wrong: Vec::new(),
    };
    let at = fill(&review);
    let everything_but = |left_out: &[&str]| -> Vec<&str> {
        ALL.iter()
            .copied()
            .filter(|id| !left_out.contains(id))
            .collect()
    };

    // Everything, and every type.
    review.expect("*", None, &ALL);
    review.expect("type:event", None, &[EVENT]);
    review.expect("type:mail", None, &everything_but(&[EVENT]));
    review.expect("type:task", None, &[]);

    // Address fields: names and addresses, decoded, in the field they are in only.
    review.expect("from:juergen", None, &[DE]);
    review.expect("from:jürgen", None, &[DE]);
    review.expect("from:GROSS", None, &[DE]);
    review.expect("from:\"Jürgen Groß\"", None, &[DE]);
    review.expect("from:\"Groß Jürgen\"", None, &[]);
    review.expect("from:bob", None, &[BUDGET, OLD]);
    review.expect("from:john.doe@example.org", None, &[BIG, EVENT]);
    review.expect("to:alice", None, &[BIG]);
    review.expect("to:jane", None, &[JA, BUDGET, TEMP]);
    review.expect("cc:jane", None, &[DE, BIG]);
    review.expect("bcc:erik", None, &[BIG]);
    review.expect("to:erik", None, &[EL]);
    review.expect("addr:erik", None, &[EL, BIG]);
    review.expect("addr:partner.example", None, &[RU, JA, EL, BIG]);
    review.expect("from:иван", None, &[RU]);
    review.expect("from:田中", None, &[JA]);
    review.expect("to:juergen", None, &[]);

    // Subject and body, in several scripts and charsets.
    review.expect("subject:köln", None, &[DE]);
    review.expect("subject:KOLN", None, &[DE]);
    review.expect("subject:grusse", None, &[DE]);
    review.expect("subject:grüsse", None, &[DE]);
    review.expect("subject:straße", None, &[]);
    review.expect("body:strasse", None, &[DE]);
    review.expect("body:überweisung", None, &[DE]);
    review.expect("body:zahnrad", None, &[DE]);
    review.expect("subject:zahnrad", None, &[]);
    review.expect("subject:отчёт", None, &[RU]);
    review.expect("subject:ОТЧЁТ", None, &[RU]);
    review.expect("body:таблицу", None, &[RU]);
    review.expect("body:привет", None, &[RU]);
    review.expect("subject:会議の議事録", None, &[JA]);
    review.expect("subject:会議*", None, &[JA]);
    review.expect("body:確認", None, &[JA]);
    review.expect("subject:καλημέρα", None, &[EL]);
    review.expect("ΚΑΛΗΜΈΡΑ", None, &[EL]);
    review.expect("body:συνάντηση", None, &[EL]);
    // Greek is found without its accents, Russian ё as е (bonnie_mail::fold_for_search).
    review.expect("καλημερα", None, &[EL]);
    review.expect("subject:ΚΑΛΗΜΕΡΑ", None, &[EL]);
    review.expect("subject:отчет", None, &[RU]);
    review.expect("weihnachtsfeier", None, &[CIRCULAR]);
    review.expect("subject:quarterly", None, &[BIG]);
    review.expect("body:quarterly", None, &[BIG, BUDGET]);

    // Bare words: subject, body, addresses, attachment names and text.
    review.expect("strasse", None, &[DE]);
    review.expect("STRASSE", None, &[DE]);
    review.expect("uberweisung", None, &[DE]);
    review.expect("grusse koln", None, &[DE]);
    review.expect("prufbericht", None, &[DE]);
    review.expect("zahnrad", None, &[DE]);
    review.expect("quarterly", None, &[BIG, BUDGET]);
    review.expect("anderungen", None, &[DRAFT]);
    review.expect("planungsrunde", None, &[EVENT]);
    review.expect("mallory", None, &[SECRET]);
    review.expect("nobody", None, &[SECRET]);
    review.expect("отчёт", None, &[RU]);

    // Phrases and prefixes.
    review.expect("\"quarterly budget\"", None, &[BIG]);
    review.expect("\"budget quarterly\"", None, &[]);
    review.expect("body:\"ist geprüft\"", None, &[DE]);
    review.expect("quart*", None, &[BIG, BUDGET]);
    review.expect("subject:temp*", None, &[TEMP]);
    review.expect("überw*", None, &[DE]);

    // Attachments, names and sizes.
    review.expect("has:attachment", None, &[DE, BIG, EVENT]);
    review.expect("-has:attachment", None, &everything_but(&[DE, BIG, EVENT]));
    review.expect("filename:prüfbericht", None, &[DE]);
    review.expect("filename:märz", None, &[DE]);
    review.expect("filename:\"bericht größe\"", None, &[BIG]);
    review.expect("filename:grosse", None, &[BIG]);
    review.expect("filename:bin", None, &[BIG]);
    review.expect("filename:kolab.xml", None, &[EVENT]);
    review.expect("filename:zahnrad", None, &[]);
    review.expect("larger:100K", None, &[BIG]);
    review.expect("smaller:100K", None, &everything_but(&[BIG]));
    review.expect("larger:1M", None, &[]);

    // Dates: in Berlin unless they name their offset; `after:` inclusive, `before:` not.
    review.expect("after:2026-11-04 before:2026-11-06", None, &[JA, EL]);
    review.expect(
        "after:\"2026-11-03T23:00:00Z\" before:\"2026-11-05T23:00:00+01:00\"",
        None,
        &[JA],
    );
    review.expect("before:\"2026-11-02T09:30:00+01:00\"", None, &[]);
    review.expect("before:\"2026-11-02T08:30:00.001Z\"", None, &[DE]);
    review.expect(
        "after:\"2026-11-12T08:00:00+01:00\" before:2026-11-13",
        None,
        &[DRAFT],
    );
    review.expect("after:2026-11-07 before:2026-11-08", None, &[BUDGET]);
    review.expect("after:2026-11-13 -from:probe", None, &[CIRCULAR]);

    // Places and custodians.
    review.expect("user:jane.doe", None, &[JA, BUDGET, TEMP, DRAFT, CIRCULAR]);
    review.expect("user:erik@example.org", None, &[EL]);
    review.expect(
        "user:JOHN.DOE",
        None,
        &[DE, RU, BIG, SECRET, OLD, EVENT, CIRCULAR],
    );
    review.expect(
        "folder:inbox user:john.doe",
        None,
        &[DE, RU, SECRET, CIRCULAR],
    );
    review.expect("folder:Sent", None, &[BIG]);
    review.expect(
        "folder:INBOX",
        None,
        &[DE, RU, SECRET, CIRCULAR, JA, BUDGET, EL],
    );
    review.expect("folder:Работа/Проекты", None, &[RU]);
    review.expect("folder:Работа/*", None, &[RU]);
    review.expect("folder:Работа", None, &[]);
    review.expect("folder:Arbeit/Проекты", None, &[RU]);
    review.expect("folder:Arbeit/*", None, &[RU]);
    review.expect("folder:Arbeit/Проекты", Some(&at.end), &[RU]);
    review.expect("folder:Работа/*", Some(&at.end), &[]);
    review.expect("folder:Arbeit/*", Some(&at.before_parent_rename), &[]);
    review.expect(
        "folder:Работа/Проекты",
        Some(&at.before_parent_rename),
        &[RU],
    );
    review.expect("folder:Archiv", None, &[BUDGET]);
    review.expect("folder:Entwürfe", None, &[DRAFT]);
    review.expect("folder:Alt", None, &[OLD]);
    review.expect("folder:Erledigt", None, &[OLD]);
    review.expect("folder:Temp", None, &[TEMP]);
    review.expect("folder:Kalender type:event", None, &[EVENT]);

    // Identity, flags, direction, deletion.
    review.expect("message-id:otchet-1@partner.example", None, &[RU]);
    review.expect("message-id:<budget-1@example.org>", None, &[BUDGET]);
    review.expect("message-id:otchet-1", None, &[]);
    review.expect("flag:seen", None, &[BIG]);
    review.expect("flag:draft", None, &[DRAFT]);
    review.expect("flag:$Wichtig", None, &[DE]);
    review.expect("flag:$Erledigt", None, &[RU]);
    review.expect("flag:$Erledigt", Some(&at.before_parent_rename), &[]);
    review.expect("flag:$wichtig", None, &[]);
    review.expect("flag:flagged", None, &[]);
    review.expect("flag:deleted", None, &[SECRET]);
    review.expect("direction:outbound", None, &[BIG]);
    review.expect("direction:inbound", None, &[RU, JA, EL, SECRET]);
    review.expect(
        "direction:internal",
        None,
        &[DE, BUDGET, OLD, TEMP, EVENT, DRAFT, CIRCULAR],
    );
    review.expect("deleted:yes", None, &[SECRET, TEMP]);
    review.expect("deleted:no", None, &everything_but(&[SECRET, TEMP]));

    // Operators.
    review.expect("from:bob OR from:carol", None, &[BUDGET, OLD, TEMP]);
    review.expect(
        "direction:internal -from:bob",
        None,
        &[DE, TEMP, EVENT, DRAFT, CIRCULAR],
    );
    review.expect(
        "direction:internal NOT from:bob",
        None,
        &[DE, TEMP, EVENT, DRAFT, CIRCULAR],
    );
    review.expect("(köln OR ΚΑΛΗΜΈΡΑ) has:attachment", None, &[DE]);
    review.expect("köln OR ΚΑΛΗΜΈΡΑ", None, &[DE, EL]);
    review.expect("budget -folder:Archiv", None, &[BIG]);
    review.expect(
        "user:john.doe -(folder:INBOX OR folder:Sent)",
        None,
        &[OLD, EVENT],
    );
    review.expect("-user:john.doe -user:JANE.DOE@EXAMPLE.ORG", None, &[EL]);
    review.expect("from:(bob OR carol) deleted:yes", None, &[TEMP]);

    // As the mailboxes stood: before anything, nothing; before an append, not that message.
    review.expect("*", Some(&at.start), &[]);
    review.expect(
        "*",
        Some(&at.delivered),
        &[DE, RU, JA, EL, BIG, BUDGET, CIRCULAR],
    );
    review.expect(
        "message-id:secret-1@example.org",
        Some(&at.before_secret),
        &[],
    );
    review.expect(
        "message-id:secret-1@example.org deleted:no",
        Some(&at.before_expunge),
        &[SECRET],
    );
    review.expect("deleted:yes", Some(&at.before_expunge), &[]);
    review.expect("deleted:yes", Some(&at.before_folder_delete), &[SECRET]);
    review.expect("flag:deleted", Some(&at.before_expunge), &[SECRET]);
    review.expect("flag:flagged", Some(&at.flagged), &[DE]);
    review.expect("flag:flagged", Some(&at.delivered), &[]);
    review.expect("flag:$Wichtig", Some(&at.flagged), &[DE]);
    // The move: before it in INBOX only, after it in its new folder only.
    review.expect(
        "folder:INBOX user:john.doe",
        Some(&at.delivered),
        &[DE, RU, CIRCULAR],
    );
    review.expect("folder:Работа/*", Some(&at.delivered), &[]);
    review.expect(
        "folder:INBOX user:john.doe",
        Some(&at.moved),
        &[DE, CIRCULAR],
    );
    review.expect("folder:Работа/Проекты", Some(&at.moved), &[RU]);
    review.expect("folder:Archiv", Some(&at.moved), &[]);
    review.expect("folder:Archiv", Some(&at.before_secret), &[BUDGET]);
    // The rename: the folder's name then.
    review.expect("folder:Alt", Some(&at.before_rename), &[OLD]);
    review.expect("folder:Erledigt", Some(&at.before_rename), &[]);
    review.expect("folder:Erledigt", Some(&at.before_folder_delete), &[OLD]);
    review.expect("folder:Alt", Some(&at.before_folder_delete), &[]);
    // A custodian's login or its local part, nothing shorter.
    review.expect("user:jane", None, &[]);
    review.expect("folder:Temp", Some(&at.before_folder_delete), &[TEMP]);

    // A query that cannot be read: where and what, and no answer.
    let output = review
        .cluster()
        .bonnie(&["search", "--json", "--", "from:(bob OR"]);
    assert!(
        !process::succeeded(&output.status),
        "{}",
        process::describe(&output)
    );
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("column"), "{said}");

    assert!(
        review.wrong.is_empty(),
        "{} queries wrong:\n{}",
        review.wrong.len(),
        review.wrong.join("\n")
    );

    listings_give_each_item_where_it_is_and_whether_it_was_deleted(&review, &at);
    show_gives_places_flags_and_deletion(&review, &at);
}

/// The one item `query` finds, as `bonnie search --json` lists it.
fn listed(review: &Review<'_>, query: &str, as_of: Option<&str>) -> Value {
    match review.search(query, as_of).as_slice() {
        [item] => item.clone(),
        items => panic!("{query}: {items:#?}"),
    }
}

fn listings_give_each_item_where_it_is_and_whether_it_was_deleted(
    review: &Review<'_>,
    at: &Moments,
) {
    let json = |v: &[&str]| serde_json::json!(v);
    // Newest first, cut at the limit.
    let newest: Vec<Value> = review
        .search_limited("from:bob OR from:carol", None, 2)
        .iter()
        .map(|item| item["message_id"].clone())
        .collect();
    assert_eq!(newest, [TEMP, OLD]);

    let moved = listed(review, "message-id:otchet-1@partner.example", None);
    assert_eq!(moved["folders"], json(&["Arbeit/Проекты"]), "{moved:#}");
    assert_eq!(moved["custodians"], json(&[JOHN]));
    assert_eq!(moved["deleted"], Value::Null);
    assert_eq!(moved["date"], "2026-11-03T10:00:00+01:00", "Berlin's time");
    assert_eq!(moved["subject"], "Отчёт за квартал");
    let before = listed(
        review,
        "message-id:otchet-1@partner.example",
        Some(&at.delivered),
    );
    assert_eq!(before["folders"], json(&["INBOX"]), "{before:#}");

    let expunged = listed(review, "message-id:secret-1@example.org", None);
    assert_eq!(
        expunged["folders"],
        json(&["INBOX"]),
        "its last place: {expunged:#}"
    );
    assert!(expunged["deleted"].is_string(), "{expunged:#}");
    let before = listed(
        review,
        "message-id:secret-1@example.org",
        Some(&at.before_expunge),
    );
    assert_eq!(before["deleted"], Value::Null, "{before:#}");

    let circular = listed(review, "weihnachtsfeier", None);
    let mut custodians: Vec<&str> = circular["custodians"]
        .as_array()
        .expect("custodians")
        .iter()
        .map(|c| c.as_str().expect("a login"))
        .collect();
    custodians.sort();
    assert_eq!(custodians, [JANE, JOHN], "{circular:#}");
    assert_eq!(
        circular["folders"],
        json(&["INBOX"]),
        "both INBOXes: {circular:#}"
    );
    let shown = review.show(CIRCULAR, None);
    let places: Vec<(String, String, Option<String>)> =
        (0..2).map(|index| place(&shown, index)).collect();
    assert_eq!(
        shown["places"].as_array().map(Vec::len),
        Some(2),
        "{shown:#}"
    );
    assert!(
        places.contains(&(JOHN.to_string(), "INBOX".to_string(), None))
            && places.contains(&(JANE.to_string(), "INBOX".to_string(), None)),
        "{shown:#}"
    );

    let big = listed(review, "larger:100K", None);
    assert!(
        big["size"].as_u64().expect("a size") > BIG_ATTACHMENT as u64,
        "{big:#}"
    );
    assert_eq!(big["has_attachment"], true);
    assert_eq!(big["folders"], json(&["Sent"]));
    let event = listed(review, "type:event", None);
    assert_eq!(event["type"], "event");
    assert_eq!(event["folders"], json(&["Kalender"]));
}

/// The place of `show`'s item at `index`: user, name, whether it ended and how.
fn place(shown: &Value, index: usize) -> (String, String, Option<String>) {
    let place = &shown["places"][index];
    let text = |field: &str| place[field].as_str().map(str::to_string);
    (
        text("user").unwrap_or_default(),
        text("name").unwrap_or_default(),
        text("ended_by"),
    )
}

fn show_gives_places_flags_and_deletion(review: &Review<'_>, at: &Moments) {
    let places = |shown: &Value| shown["places"].as_array().map_or(0, Vec::len);
    let string = |s: &str| Some(s.to_string());

    // The moved message: INBOX until the move, then Работа/Проекты; before it, INBOX only.
    let moved = review.show(RU, None);
    assert_eq!(moved["message_id"], RU, "{moved:#}");
    assert_eq!(moved["subject"], "Отчёт за квартал");
    assert_eq!(places(&moved), 2, "{moved:#}");
    assert_eq!(
        place(&moved, 0),
        (
            JOHN.to_string(),
            "INBOX".to_string(),
            // As Cyrus 3.6 names the event.
            string("vnd.cmu.MessageMove")
        )
    );
    assert_eq!(
        place(&moved, 1),
        (JOHN.to_string(), "Работа/Проекты".to_string(), None)
    );
    assert_eq!(
        moved["places"][0]["until_ms"],
        moved["places"][1]["from_ms"]
    );
    assert_eq!(
        moved["places"][1]["renamed_to"],
        serde_json::json!(["Arbeit/Проекты"]),
        "{moved:#}"
    );
    assert_eq!(moved["folders"], serde_json::json!(["Arbeit/Проекты"]));
    let changes = moved["flag_changes"].as_array().expect("flag changes");
    assert_eq!(changes.len(), 1, "{moved:#}");
    assert_eq!(
        (
            &changes[0]["place"],
            &changes[0]["set"],
            &changes[0]["flags"]
        ),
        (
            &serde_json::json!(1),
            &Value::Bool(true),
            &serde_json::json!(["$Erledigt"])
        ),
        "{moved:#}"
    );
    assert_eq!(moved["deleted"], Value::Null);
    let body = moved["bodies"][0]["text"].as_str().unwrap_or_default();
    assert!(body.contains("Отчёт готов, смотрите таблицу."), "{moved:#}");
    let earlier = review.show(RU, Some(&at.delivered));
    assert_eq!(
        earlier["folders"],
        serde_json::json!(["INBOX"]),
        "{earlier:#}"
    );

    // The flagged message: set, then cleared, by john; $Wichtig kept.
    let flagged = review.show(DE, None);
    let changes = flagged["flag_changes"].as_array().expect("flag changes");
    let history: Vec<(bool, BTreeSet<String>)> = changes
        .iter()
        .map(|c| {
            let flags = c["flags"].as_array().expect("flags");
            (
                c["set"].as_bool().expect("set"),
                flags
                    .iter()
                    .map(|f| f.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    let set = |flags: &[&str]| flags.iter().map(|f| f.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        history,
        [
            (true, set(&["\\Flagged", "$Wichtig"])),
            (false, set(&["\\Flagged"]))
        ],
        "{flagged:#}"
    );
    assert!(changes.iter().all(|c| c["place"] == 0), "{flagged:#}");
    let attachments = flagged["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1, "{flagged:#}");
    assert_eq!(attachments[0]["name"], "Prüfbericht März.txt");
    assert!(
        flagged["bodies"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Die Überweisung für die Straße ist geprüft."),
        "{flagged:#}"
    );

    // The copied message: in both folders, neither place ended.
    let copied = review.show(BUDGET, None);
    assert_eq!(places(&copied), 2, "{copied:#}");
    assert_eq!(
        place(&copied, 0),
        (JANE.to_string(), "INBOX".to_string(), None)
    );
    assert_eq!(
        place(&copied, 1),
        (JANE.to_string(), "Archiv".to_string(), None)
    );
    assert_eq!(copied["folders"], serde_json::json!(["INBOX", "Archiv"]));

    // The expunged message: deleted when its place ended; before that, not deleted.
    let secret = review.show(SECRET, None);
    assert_eq!(places(&secret), 1, "{secret:#}");
    assert_eq!(
        place(&secret, 0),
        (
            JOHN.to_string(),
            "INBOX".to_string(),
            string("MessageExpunge")
        )
    );
    let ended = secret["places"][0]["until_ms"].as_i64().expect("an end");
    assert_eq!(
        secret["deleted"],
        berlin_time(ended),
        "deleted at its expunge: {secret:#}"
    );
    let before = review.show(SECRET, Some(&at.before_expunge));
    assert_eq!(before["deleted"], Value::Null, "{before:#}");
    assert_eq!(
        (
            &before["places"][0]["until_ms"],
            &before["places"][0]["ended_by"]
        ),
        (&Value::Null, &Value::Null),
        "the expunge came later: {before:#}"
    );

    // The message of the renamed folder: its place with both names; of the deleted one, ended
    // by the folder's deletion.
    let old = review.show(OLD, None);
    assert_eq!(place(&old, 0), (JOHN.to_string(), "Alt".to_string(), None));
    assert_eq!(
        old["places"][0]["renamed_to"],
        serde_json::json!(["Erledigt"])
    );
    assert_eq!(old["folders"], serde_json::json!(["Erledigt"]));
    let before_rename = review.show(OLD, Some(&at.before_rename));
    assert_eq!(
        before_rename["folders"],
        serde_json::json!(["Alt"]),
        "{before_rename:#}"
    );
    assert_eq!(
        before_rename["places"][0]["renamed_to"],
        Value::Null,
        "the rename came later: {before_rename:#}"
    );
    let temp = review.show(TEMP, None);
    assert_eq!(
        place(&temp, 0),
        (
            JANE.to_string(),
            "Temp".to_string(),
            string("MailboxDelete")
        )
    );
    assert!(temp["deleted"].is_string(), "{temp:#}");
}

/// A time as `bonnie search` and `show` print it: RFC 3339 in `[discovery] time_zone`.
fn berlin_time(ms: i64) -> Value {
    let zone = jiff::tz::TimeZone::get("Europe/Berlin").expect("Berlin's zone");
    let time = jiff::Timestamp::from_millisecond(ms)
        .expect("a time")
        .to_zoned(zone)
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string();
    Value::String(time)
}
