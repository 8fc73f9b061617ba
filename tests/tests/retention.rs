//! Retention plans and legal holds on the captured Cyrus scenario archived by a real broker
//! and worker, on SQLite and on Elasticsearch: the longest matching rule decides, a hold keeps
//! its custodian's entries out of what a purge would remove until it is released, a hold's
//! query narrows it, and every step is an audit record in the verifiable log.

use bonnie_tests::{
    cluster::Cluster,
    on_both_storages, paths, process,
    storages::{Archive, Storage},
    worker::ARCHIVE_HANDLERS,
};
use serde_json::Value;

/// Sessions and flag changes are kept a day, the flag changes in John's INBOX forever (the
/// longest rule wins for them), everything else forever. The scenario is days old, so a day
/// has passed for all of it.
const RETENTION: &str = r#"
[retention]
default = "forever"

[[retention.rule]]
name = "sessions"
kinds = ["sessions"]
keep = "1d"

[[retention.rule]]
name = "flags"
kinds = ["flags"]
keep = "1 day"

[[retention.rule]]
name = "john-flags"
users = ["John.Doe@example.org"]
folders = ["INBOX"]
kinds = ["flags"]
keep = "forever"
"#;

/// The scenario's logins and logouts (the admin's, Jane's and John's).
const SESSIONS: u64 = 12;
/// Jane's and John's sessions.
const JANE_SESSIONS: u64 = 2;
/// Jane's flag change: she read an invitation in John's Calendar (so it is his entry too, as
/// the folder's owner). John's 14 in his INBOX are kept forever.
const JANE_FLAGS: u64 = 1;

fn archived(storage: Storage) -> (Cluster, Archive) {
    let cluster = Cluster::new(&ARCHIVE_HANDLERS, RETENTION);
    let archive = cluster.use_storage(storage);
    let broker = cluster.start_broker();
    for line in paths::scenario() {
        let dealt = cluster.deal(line.as_bytes());
        assert!(dealt.status.success(), "{}", process::describe(&dealt));
    }
    let workers = cluster.start_workers(&["worker-1", "worker-2"]);
    cluster.wait_until_drained();
    drop(workers);
    drop(broker);
    (cluster, archive)
}

/// Runs `bonnie` with `args`, asserting it succeeds; its standard output.
fn bonnie(cluster: &Cluster, args: &[&str]) -> String {
    let output = cluster.bonnie(args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        process::describe(&output)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn plan(cluster: &Cluster) -> Value {
    serde_json::from_str(&bonnie(cluster, &["retention", "plan", "--json"])).unwrap()
}

/// `(expired, to purge, held)` of a rule in a plan.
fn counts(plan: &Value, rule: &str) -> (u64, u64, u64) {
    let rule = &plan["rules"][rule];
    let n = |f: &str| rule[f].as_u64().unwrap_or_else(|| panic!("{f} of {rule}"));
    (n("expired"), n("purged"), n("held"))
}

fn a_plan_follows_the_longest_rule_and_holds_keep_what_they_cover_until_released(storage: Storage) {
    let (cluster, _archive) = archived(storage);
    // Audit records need the broker.
    let _broker = cluster.start_broker();

    let before = plan(&cluster);
    assert_eq!(
        counts(&before, "sessions"),
        (SESSIONS, SESSIONS, 0),
        "{before}"
    );
    assert_eq!(
        counts(&before, "flags"),
        (JANE_FLAGS, JANE_FLAGS, 0),
        "{before}"
    );
    assert_eq!(
        counts(&before, "john-flags"),
        (0, 0, 0),
        "forever: {before}"
    );
    assert_eq!(counts(&before, "default"), (0, 0, 0), "{before}");
    assert_eq!(before["purged"].as_u64(), Some(SESSIONS + JANE_FLAGS));
    let sample = &before["rules"]["flags"]["sample"][0];
    assert_eq!(sample["event"], "MessageRead", "{sample}");
    assert_eq!(sample["users"][0], "jane.doe@example.org", "{sample}");

    // Jane's entries are held for a case; a second hold on John names words none of his
    // entries has, so it keeps none of them (not even Jane's read in his Calendar).
    bonnie(
        &cluster,
        &[
            "hold",
            "create",
            "Case 2026-17",
            "--custodian",
            "Jane.Doe@example.org",
            "--reason",
            "litigation hold: supplier dispute",
        ],
    );
    bonnie(
        &cluster,
        &[
            "hold",
            "create",
            "Audit-Ü",
            "--custodian",
            "john.doe@example.org",
            "--query",
            "quarterly overhaul",
            "--reason",
            "internal audit",
        ],
    );
    let again = cluster.bonnie(&[
        "hold",
        "create",
        "Case 2026-17",
        "--custodian",
        "x@example.org",
        "--reason",
        "again",
    ]);
    assert!(!again.status.success(), "a standing case placed twice");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("on hold already"),
        "{}",
        process::describe(&again)
    );
    // Two admins placing one case at the same moment: one hold, the other is told so.
    let racing: Vec<_> = (0..2)
        .map(|n| {
            cluster
                .command(
                    "bonnie",
                    &[
                        "hold",
                        "create",
                        "Race",
                        "--custodian",
                        "nobody@example.org",
                        "--reason",
                        &format!("admin {n}"),
                    ],
                )
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let placed = racing
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .filter(|output| output.status.success())
        .count();
    assert_eq!(placed, 1, "one of two racing admins places the hold");
    let held = plan(&cluster);
    assert_eq!(held["holds"].as_u64(), Some(3), "{held}");
    assert_eq!(
        counts(&held, "sessions"),
        (SESSIONS, SESSIONS - JANE_SESSIONS, JANE_SESSIONS),
        "{held}"
    );
    assert_eq!(
        counts(&held, "flags"),
        (JANE_FLAGS, 0, JANE_FLAGS),
        "{held}"
    );
    let kept = &held["rules"]["flags"]["held_sample"][0];
    assert_eq!(kept["held_by"][0], "Case 2026-17", "{kept}");

    // Released, the hold keeps nothing; the plan is as before it.
    bonnie(
        &cluster,
        &["hold", "release", "Case 2026-17", "--reason", "settled"],
    );
    let released = plan(&cluster);
    assert_eq!(
        counts(&released, "sessions"),
        (SESSIONS, SESSIONS, 0),
        "{released}"
    );
    assert_eq!(
        counts(&released, "flags"),
        (JANE_FLAGS, JANE_FLAGS, 0),
        "{released}"
    );
    let holds: Value =
        serde_json::from_str(&bonnie(&cluster, &["hold", "list", "--json"])).unwrap();
    let case = holds
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["case"] == "Case 2026-17")
        .expect("the released hold is listed");
    assert_eq!(case["custodians"][0], "jane.doe@example.org", "{case}");
    assert_eq!(case["released"]["reason"], "settled", "{case}");
    let again = cluster.bonnie(&["hold", "release", "Case 2026-17", "--reason", "twice"]);
    assert!(!again.status.success(), "released twice");

    // Every step is in the audit log, placing and releasing with what was asked.
    let audit: Value = serde_json::from_str(&bonnie(&cluster, &["audit", "--json"])).unwrap();
    let actions: Vec<(&str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or(""),
                r["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for wanted in ["hold create", "hold release", "hold list", "retention plan"] {
        assert!(
            actions.iter().any(|(a, _)| *a == wanted),
            "{wanted} not audited: {actions:?}"
        );
    }
    let create = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "hold create" && r["params"]["case"] == "Case 2026-17")
        .expect("the hold's creation, with its case");
    assert_eq!(
        create["params"]["reason"], "litigation hold: supplier dispute",
        "{create}"
    );
}

on_both_storages!(a_plan_follows_the_longest_rule_and_holds_keep_what_they_cover_until_released);

#[test]
fn a_retention_rule_that_does_not_parse_is_refused_naming_it() {
    let cluster = Cluster::new(
        &ARCHIVE_HANDLERS,
        "[retention]\n[[retention.rule]]\nname = \"mail\"\nkeep = \"seven years\"\n",
    );
    let output = cluster.bonnie(&["retention", "plan"]);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("rule \"mail\""), "{error}");
}
