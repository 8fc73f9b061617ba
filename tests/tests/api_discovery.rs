//! bonnie-api's `discovery.search` and `discovery.show` over an archive the real pipeline made
//! from real Cyrus (LMTP deliveries to two users, a move, a flag, an expunge), on SQLite and
//! on Elasticsearch: an e-discovery client (`bonnie api-client add --role ediscovery`) finds
//! items by field queries and a non-ASCII subject, pages through them, sees them as the
//! mailboxes stood before the changes (`as_of`), and shows one with its headers, text,
//! attachments, places and flag history; a Roundcube client and an admin client are refused
//! whatever user they name; hostile parameters are refused as invalid; every call is in both
//! audit logs with its query.

use bonnie_tests::{
    api::ApiClient, cluster::Cluster, lab::CyrusLab, on_both_storages, process, storages::Storage,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const JOHN: &str = "john.doe@example.org";
const JANE: &str = "jane.doe@example.org";
/// Who the e-discovery client's requests say is reviewing.
const REVIEWER: &str = "reviewer@example.org";

/// The attachment's bytes.
const INVOICE: &[u8] = b"Rechnung 4711 \xc3\xbcber 1.234,56 EUR\r\n";

fn plain(from: &str, to: &str, subject: &str, date: &str, id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{id}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// A German message: encoded-word sender and subject, an 8-bit body, and an attachment whose
/// name is RFC 2231 encoded.
fn german() -> Vec<u8> {
    let b64 = |text: &[u8]| bonnie_core::b64::encode_base64(text);
    format!(
        "From: =?UTF-8?B?{}?= <juergen@example.org>\r\nTo: John Doe <{JOHN}>\r\n\
         Subject: =?UTF-8?B?{}?=\r\nDate: Sun, 22 Nov 2026 10:00:00 +0100\r\n\
         Message-ID: <maerz-1@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Bitte die Überweisung prüfen.\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Disposition: attachment; filename*=UTF-8''Rechnung%20M%C3%A4rz.txt\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        b64("Jürgen Groß".as_bytes()),
        b64("Überweisung für März".as_bytes()),
        b64(INVOICE),
    )
    .into_bytes()
}

/// `bonnie api-client add <name> [--role <role>]`: the credentials it printed, at `address`.
fn add_client(cluster: &Cluster, name: &str, role: Option<&str>, address: &str) -> ApiClient {
    let mut args = vec!["api-client", "add", name];
    args.extend(role.map(|r| ["--role", r]).into_iter().flatten());
    let output = cluster.bonnie(&args);
    assert!(
        process::succeeded(&output.status),
        "{}",
        process::describe(&output)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let client =
        ApiClient::from_added(name, &text).unwrap_or_else(|| panic!("no credentials in {text}"));
    ApiClient {
        address: address.to_string(),
        ..client
    }
}

/// The subjects of a search's items, in its order.
fn subjects(answer: &Value) -> Vec<&str> {
    answer["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a search answer: {answer}"))
        .iter()
        .map(|i| i["subject"].as_str().expect("a subject"))
        .collect()
}

/// The JSON-RPC error code of an answer, asserting it has no result.
fn error_code(answer: &bonnie_tests::api::Answer) -> i64 {
    assert_eq!(answer.status, 200, "a JSON-RPC error: {answer:?}");
    assert!(answer.body.get("result").is_none(), "{answer:?}");
    answer.body["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error: {answer:?}"))
}

on_both_storages!(e_discovery_clients_search_and_show_the_archive_and_no_other_client_can);

fn e_discovery_clients_search_and_show_the_archive_and_no_other_client_can(storage: Storage) {
    // The changelog handler keeps the message trails an item's history is read from.
    let lab = CyrusLab::start_configured(
        storage,
        &["bonnie-changelog"],
        &[JOHN, JANE],
        "[discovery]\ntime_zone = \"Europe/Berlin\"\n",
    );
    let (cyrus, cluster) = (&lab.cyrus, &lab.cluster);
    let alice = "Alice Partner <alice@partner.example>";
    cyrus.lmtp(
        "alice@partner.example",
        &[JOHN],
        &plain(
            alice,
            JOHN,
            "Quarterly budget",
            "Fri, 20 Nov 2026 10:00:00 +0000",
            "budget-1@partner.example",
            "The numbers for Q4.",
        ),
    );
    cyrus.lmtp("juergen@example.org", &[JOHN], &german());
    for n in 1..=3 {
        cyrus.lmtp(
            "bob@example.org",
            &[JOHN],
            &plain(
                "bob@example.org",
                JOHN,
                &format!("Weekly report {n}"),
                &format!("2{} Nov 2026 08:00:00 +0000", n + 2),
                &format!("report-{n}@example.org"),
                "All quiet.",
            ),
        );
    }
    // Four messages of one date: pages cut between them by digest.
    for n in 1..=4 {
        cyrus.lmtp(
            "carol@example.org",
            &[JANE],
            &plain(
                "carol@example.org",
                JANE,
                &format!("Minutes {n}"),
                "26 Nov 2026 12:00:00 +0000",
                &format!("minutes-{n}@example.org"),
                "Nothing decided.",
            ),
        );
    }
    cyrus.lmtp(
        "alice@partner.example",
        &[JANE],
        &plain(
            alice,
            JANE,
            "Budget draft",
            "Sat, 21 Nov 2026 10:00:00 +0000",
            "budget-2@partner.example",
            "A draft for Jane.",
        ),
    );
    lab.wait_until_archived();
    // Every delivery is archived; what follows happens after this moment.
    let before_changes = bonnie_core::time::format_rfc3339_ms(bonnie_core::time::now_ms());
    let mut john = cyrus.login(JOHN);
    john.run("CREATE Archive", &[]).unwrap();
    john.select("INBOX").unwrap();
    // UIDs in order of delivery: the budget 1, the German message 2, the reports 3 to 5.
    for command in [
        "UID MOVE 1 Archive",
        "UID STORE 2 +FLAGS (\\Flagged)",
        "UID STORE 3 +FLAGS (\\Deleted)",
        "EXPUNGE",
    ] {
        john.run(command, &[])
            .unwrap_or_else(|e| panic!("{command}: {e}"));
    }
    john.logout().unwrap();
    lab.wait_until_archived();

    let port = cluster.configure_api(&["console"]);
    let address = format!("127.0.0.1:{port}");
    let roundcube = add_client(cluster, "roundcube", None, &address);
    let console = add_client(cluster, "console", None, &address);
    let review = add_client(cluster, "review", Some("ediscovery"), &address);
    let listed = cluster.bonnie(&["api-client", "list"]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let line = |name: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} not in {listed}"))
            .to_string()
    };
    assert!(line("review").ends_with("(ediscovery)"), "{listed}");
    assert!(!line("roundcube").contains("ediscovery"), "{listed}");
    assert!(line("console").contains("(admin)"), "{listed}");
    let _api = cluster.run_api(port);
    let search = |params: Value| review.call(REVIEWER, "discovery.search", params);

    // Field queries: both users' budget mail from Alice, newest first, where each lives now.
    let budget = search(json!({ "query": "from:alice subject:budget" }));
    assert_eq!(
        subjects(&budget),
        ["Budget draft", "Quarterly budget"],
        "{budget:#}"
    );
    assert_eq!(budget["query"], "from:alice subject:budget");
    assert_eq!(budget["time_zone"], "Europe/Berlin");
    assert_eq!(budget["cursor"], Value::Null, "one page holds both");
    let (draft, quarterly) = (&budget["items"][0], &budget["items"][1]);
    assert_eq!(draft["custodians"], json!([JANE]));
    assert_eq!(
        draft["folders"],
        json!([{ "user": JANE, "folder": "INBOX" }])
    );
    assert_eq!(draft["date"], "2026-11-21T11:00:00+01:00");
    assert_eq!(quarterly["custodians"], json!([JOHN]));
    assert_eq!(
        quarterly["folders"],
        json!([{ "user": JOHN, "folder": "Archive" }])
    );
    assert_eq!(quarterly["from"], json!([alice]));
    assert_eq!(quarterly["message_id"], "<budget-1@partner.example>");
    assert_eq!(quarterly["type"], "mail");
    assert_eq!(quarterly["deleted"], false);
    assert_eq!(quarterly["backfilled"], false);
    let digest = quarterly["digest"].as_str().expect("a digest");
    assert_eq!(digest.len(), 64, "{quarterly}");

    // A non-ASCII subject, found by its words folded (case and diacritics), in the field it
    // is in and not in another.
    for query in [
        "subject:märz",
        "subject:MARZ",
        "überweisung",
        "filename:rechnung",
    ] {
        let found = search(json!({ "query": query }));
        assert_eq!(
            subjects(&found),
            ["Überweisung für März"],
            "{query}: {found:#}"
        );
    }
    assert_eq!(
        subjects(&search(json!({ "query": "from:märz" }))),
        Vec::<&str>::new()
    );
    let maerz = &search(json!({ "query": "subject:märz" }))["items"][0];
    assert_eq!(maerz["date"], "2026-11-22T10:00:00+01:00");
    assert_eq!(maerz["has_attachment"], true);
    assert_eq!(maerz["filenames"], json!(["Rechnung März.txt"]));
    assert_eq!(maerz["from"], json!(["Jürgen Groß <juergen@example.org>"]));

    // Pages of one item each, newest first: every report once, the expunged one deleted.
    let mut pages = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let page =
            search(json!({ "query": "from:bob subject:report", "limit": 1, "cursor": cursor }));
        pages.extend(subjects(&page).into_iter().map(str::to_string));
        cursor = page["cursor"].clone();
        if cursor.is_null() {
            assert_eq!(page["items"][0]["deleted"], true, "{page:#}");
            assert!(page["items"][0]["deleted_at"].is_string(), "{page:#}");
            assert_eq!(
                page["items"][0]["folders"],
                json!([{ "user": JOHN, "folder": "INBOX" }]),
                "a deleted item's last place"
            );
            break;
        }
        assert!(pages.len() < 3, "no cursor after the last page: {page:#}");
    }
    assert_eq!(
        pages,
        ["Weekly report 3", "Weekly report 2", "Weekly report 1"]
    );
    let reports = search(json!({ "query": "from:bob subject:report", "limit": 2 }));
    assert_eq!(subjects(&reports), ["Weekly report 3", "Weekly report 2"]);
    let rest = search(json!({ "query": "from:bob subject:report", "cursor": reports["cursor"] }));
    assert_eq!(subjects(&rest), ["Weekly report 1"]);
    assert_eq!(rest["cursor"], Value::Null);

    // Items of one date are ordered by digest: pages of every size cut between them and
    // give the whole answer's order, every item once.
    let minutes = |limit: u64, cursor: &Value| {
        search(json!({ "query": "from:carol", "limit": limit, "cursor": cursor }))
    };
    let whole = subjects(&minutes(10, &Value::Null))
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert_eq!(whole.len(), 4, "{whole:?}");
    for limit in 1..=4 {
        let mut paged = Vec::new();
        let mut cursor = Value::Null;
        loop {
            let page = minutes(limit, &cursor);
            paged.extend(subjects(&page).into_iter().map(str::to_string));
            cursor = page["cursor"].clone();
            if cursor.is_null() {
                break;
            }
            assert!(paged.len() < 4, "a cursor after the last item: {page:#}");
        }
        assert_eq!(paged, whole, "pages of {limit}");
    }

    // As the mailboxes stood before the move and the expunge.
    let deleted = search(json!({ "query": "from:bob deleted:yes" }));
    assert_eq!(subjects(&deleted), ["Weekly report 1"]);
    let then = search(json!({ "query": "from:bob deleted:yes", "as_of": before_changes }));
    assert_eq!(subjects(&then), Vec::<&str>::new(), "{then:#}");
    // `folder:` without as_of is every folder an item lived in; with it, those it was in then.
    let in_folder = |folder: &str, as_of: Option<&str>| {
        let query = format!("subject:budget folder:{folder}");
        let found = search(json!({ "query": query, "as_of": as_of }));
        subjects(&found)
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(in_folder("Archive", None), ["Quarterly budget"]);
    assert_eq!(
        in_folder("Archive", Some(&before_changes)),
        Vec::<String>::new()
    );
    assert_eq!(
        in_folder("INBOX", None),
        ["Budget draft", "Quarterly budget"]
    );
    assert_eq!(
        in_folder("INBOX", Some(&before_changes)),
        ["Budget draft", "Quarterly budget"]
    );

    // Show: by digest and by Message-ID, the same item with all it holds.
    let shown = review.call(
        REVIEWER,
        "discovery.show",
        json!({ "item": maerz["digest"] }),
    );
    let by_id = review.call(
        REVIEWER,
        "discovery.show",
        json!({ "item": "maerz-1@example.org" }),
    );
    assert_eq!(shown, by_id);
    assert_eq!(shown["subject"], "Überweisung für März");
    assert_eq!(shown["payload_kept"], true);
    let header = |name: &str| {
        shown["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .find(|h| h["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {shown:#}"))["value"]
            .clone()
    };
    assert_eq!(header("Subject"), "Überweisung für März");
    assert_eq!(header("Message-ID"), "<maerz-1@example.org>");
    assert!(
        shown["bodies"][0]["text"]
            .as_str()
            .expect("a body")
            .contains("Bitte die Überweisung prüfen."),
        "{shown:#}"
    );
    let invoice_sha256: String = Sha256::digest(INVOICE)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let attachments = shown["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1, "{shown:#}");
    assert_eq!(attachments[0]["name"], "Rechnung März.txt");
    assert_eq!(attachments[0]["media_type"], "text/plain");
    assert_eq!(attachments[0]["size"], INVOICE.len());
    assert_eq!(attachments[0]["sha256"], invoice_sha256);
    assert!(attachments[0].get("text").is_none(), "names, not contents");
    let places = shown["places"].as_array().expect("places");
    assert_eq!(places.len(), 1, "{shown:#}");
    assert_eq!(places[0]["user"], JOHN);
    assert_eq!(places[0]["name"], "INBOX");
    assert_eq!(places[0]["uid"], 2);
    assert_eq!(places[0]["until"], Value::Null);
    assert!(
        places[0]["flags"]
            .as_array()
            .unwrap()
            .contains(&json!("\\Flagged")),
        "{shown:#}"
    );
    let history = shown["flag_history"].as_array().expect("a flag history");
    assert!(
        history
            .iter()
            .any(|c| c["op"] == "set" && c["place"] == 0 && c["flags"] == json!(["\\Flagged"])),
        "{shown:#}"
    );
    // The moved budget: where it lived, and where it lives; before the move, INBOX only.
    let moved = review.call(REVIEWER, "discovery.show", json!({ "item": digest }));
    let names: Vec<&Value> = moved["places"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["name"])
        .collect();
    assert_eq!(names, [&json!("INBOX"), &json!("Archive")], "{moved:#}");
    assert!(moved["places"][0]["until"].is_string(), "{moved:#}");
    assert_eq!(moved["places"][1]["until"], Value::Null);
    let earlier = review.call(
        REVIEWER,
        "discovery.show",
        json!({ "item": digest, "as_of": before_changes }),
    );
    assert_eq!(
        earlier["places"].as_array().unwrap().len(),
        1,
        "{earlier:#}"
    );
    assert_eq!(earlier["places"][0]["until"], Value::Null);
    assert_eq!(
        earlier["folders"],
        json!([{ "user": JOHN, "folder": "INBOX" }])
    );
    // Items that do not exist, or did not yet: false, as the API answers a missing object.
    for item in [
        json!({ "item": "0".repeat(64) }),
        json!({ "item": "<nobody@nowhere.example>" }),
        json!({ "item": digest, "as_of": "2001-01-01" }),
    ] {
        assert_eq!(
            review.call(REVIEWER, "discovery.show", item.clone()),
            json!(false),
            "{item}"
        );
    }

    // Other clients are refused, whichever user they name and whatever they ask: the same
    // -32001 as dlp.incidents, nothing else.
    for (client, user) in [
        (&roundcube, JOHN),
        (&roundcube, JANE),
        (&console, ""),
        (&console, JOHN),
    ] {
        for (method, params) in [
            ("discovery.search", json!({ "query": "from:alice" })),
            ("discovery.search", json!({ "query": "from:(" })),
            ("discovery.show", json!({ "item": digest })),
            ("discovery.show", json!({ "item": "0".repeat(64) })),
        ] {
            let refused = client.call_raw(user, method, params);
            assert_eq!(error_code(&refused), -32001, "{}: {refused:?}", client.name);
            let message = refused.body["error"]["message"].as_str().unwrap();
            assert_eq!(
                message,
                format!(
                    "Forbidden: {method} is for e-discovery clients (bonnie api-client add --role ediscovery)"
                )
            );
        }
    }

    // Hostile parameters: invalid params, with the query's column where the query is wrong.
    let invalid = |method: &str, params: Value| {
        let answer = review.call_raw(REVIEWER, method, params);
        assert_eq!(error_code(&answer), -32602, "{answer:?}");
        answer.body["error"]["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let wrong = invalid("discovery.search", json!({ "query": "from:alice (budget" }));
    assert!(
        wrong.starts_with("Invalid params: query: column "),
        "{wrong}"
    );
    let huge = invalid(
        "discovery.search",
        json!({ "query": "a".repeat(1_000_000) }),
    );
    assert!(
        huge.contains("column 16385") && huge.contains("1000000 bytes"),
        "{huge}"
    );
    for params in [
        json!({ "query": "*", "as_of": "not a date" }),
        json!({ "query": "*", "as_of": 20261128 }),
        json!({ "query": "*", "limit": 0 }),
        json!({ "query": "*", "limit": 1001 }),
        json!({ "query": "*", "limit": "10" }),
        json!({ "query": "*", "cursor": "1:xyz" }),
        json!({ "query": "*", "user": JOHN }),
        json!({}),
    ] {
        invalid("discovery.search", params);
    }
    for params in [
        json!({ "item": "x".repeat(1001) }),
        json!({ "item": "" }),
        json!({ "item": digest, "as_of": "yesterday" }),
        json!({ "item": 7 }),
    ] {
        invalid("discovery.show", params);
    }

    // Every call audited: the audit log's lines and the verifiable log's records, with the
    // query and what was found.
    let lines = cluster.api_audit();
    let first = lines
        .iter()
        .find(|l| l["method"] == "discovery.search")
        .expect("a search line");
    assert_eq!(first["client"], "review");
    assert_eq!(first["user"], REVIEWER);
    assert_eq!(
        first["params"],
        json!({ "query": "from:alice subject:budget" })
    );
    assert_eq!(first["found"], true);
    let refusals = lines
        .iter()
        .filter(|l| l["client"] == "roundcube" && l["error"] == -32001)
        .count();
    assert_eq!(refusals, 8, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l["method"] == "discovery.search" && l["cut"] == true),
        "the megabyte query is cut in its line"
    );
    let records = cluster.audit_records();
    let searches: Vec<&Value> = records
        .iter()
        .filter(|r| r["source"] == "api" && r["action"] == "discovery.search")
        .collect();
    assert_eq!(searches[0]["client"], "review");
    assert_eq!(searches[0]["params"]["query"], "from:alice subject:budget");
    assert_eq!(searches[0]["count"], 2, "the items found");
    assert!(
        searches
            .iter()
            .any(|r| r["client"] == "console" && r["outcome"] == "error"),
        "refusals are records too"
    );
    let shows = records
        .iter()
        .filter(|r| r["action"] == "discovery.show" && r["client"] == "review")
        .count();
    assert!(shows >= 5, "{shows}");
}
