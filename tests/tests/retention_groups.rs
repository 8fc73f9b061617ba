//! Retention rules by directory group: the captured Cyrus scenario archived by a real broker
//! and workers, `[collector.ldap]` pointing at a real slapd, and `bonnie retention plan` and
//! `apply` deciding Jane's and John's entries by the groups they are members of (a nested
//! groupOfNames, a groupOfUniqueNames by DN). A group the directory does not have, or a
//! directory that does not answer, stops the plan and the purge, naming the group or server.
//! SQLite only: the groups are resolved before any storage is read, so the storage's kind
//! plays no part (tests/tests/retention.rs runs the rules on both).

use bonnie_tests::{
    cluster::{Cluster, free_port},
    ldap::{SERVICE_DN, SERVICE_PASSWORD, Slapd},
    process,
    retention::{LEDGER, archive_scenario, bonnie_json, counts, log_entries, plan},
    storages::Storage,
    worker::ARCHIVE_HANDLERS,
};
use serde_json::{Value, json};

/// The groups added to the harness's tree: `legal` (a groupOfNames) holds the groupOfUniqueNames
/// `partners`, which holds John, and the service account, which has no address. Jane is in
/// neither; both are in the tree's `Staff`.
const GROUPS: &str = "\
dn: cn=partners,ou=Groups,dc=example,dc=org
objectClass: groupOfUniqueNames
cn: partners
uniqueMember: uid=john.doe,ou=People,dc=example,dc=org

dn: cn=legal,ou=Groups,dc=example,dc=org
objectClass: groupOfNames
cn: legal
member: cn=partners,ou=Groups,dc=example,dc=org
member: uid=kolab-service,ou=Special Users,dc=example,dc=org
";

/// Sessions are kept a day, Staff's two days, legal's forever: the longest keep wins, so
/// John's (Staff and legal) are kept, Jane's (Staff) and the admin's have expired (the
/// scenario is days old).
const RETENTION: &str = r#"
[retention]
default = "forever"

[[retention.rule]]
name = "sessions"
kinds = ["sessions"]
keep = "1d"

[[retention.rule]]
name = "legal"
groups = ["legal"]
keep = "forever"

[[retention.rule]]
name = "staff-sessions"
groups = ["cn=Staff,ou=Groups,dc=example,dc=org"]
kinds = ["sessions"]
keep = "2d"
"#;

/// A rule naming a group the directory does not have.
const UNKNOWN_GROUP: &str = r#"
[[retention.rule]]
name = "auditors"
groups = ["auditors"]
keep = "forever"
"#;

/// The admin's (cyrus) logins and logouts in the scenario.
const ADMIN_SESSIONS: u64 = 6;
/// Jane's.
const JANE_SESSIONS: u64 = 2;
/// John's three logins, kept by legal (their logouts: one).
const JOHN_LOGINS: usize = 3;

/// The `[collector.ldap]` table of a directory at `url`, read as the service account: users
/// under People, groups (named by cn) under Groups beside it.
fn ldap_table(url: &str) -> String {
    format!(
        "\n[collector.ldap]\nurl = \"{url}\"\nbind_dn = \"{SERVICE_DN}\"\n\
         bind_password_file = \"ldap-password\"\nbase = \"ou=People,dc=example,dc=org\"\n\
         group_base = \"ou=Groups,dc=example,dc=org\"\ntimeout_ms = 5000\n"
    )
}

/// A cluster whose directory is at `url`, with these retention rules.
fn cluster(url: &str, retention: &str) -> Cluster {
    let cluster = Cluster::with_collector(
        &ARCHIVE_HANDLERS,
        &ldap_table(url),
        &format!("{retention}\n{LEDGER}"),
    );
    cluster.write_secret("ldap-password", SERVICE_PASSWORD);
    cluster
}

/// Runs `bonnie` with `args`, asserting it fails; its standard error.
fn bonnie_fails(cluster: &Cluster, args: &[&str]) -> String {
    let output = cluster.bonnie(args);
    assert!(
        !output.status.success(),
        "{args:?} succeeded: {}",
        process::describe(&output)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The users of a rule's sampled entries in a plan.
fn sampled_users(plan: &Value, rule: &str) -> Vec<String> {
    plan["rules"][rule]["sample"]
        .as_array()
        .unwrap_or_else(|| panic!("no sample of {rule}: {plan}"))
        .iter()
        .flat_map(|s| s["users"].as_array().cloned().unwrap_or_default())
        .map(|u| u.as_str().unwrap_or_default().to_string())
        .collect()
}

/// The stored logins, tombstones included: `(user, purged)`.
fn logins(cluster: &Cluster) -> Vec<(String, bool)> {
    log_entries(cluster, "Login")
        .into_iter()
        .map(|(_, r)| {
            (
                r["user"].as_str().unwrap_or_default().to_string(),
                r["purged"] == json!(true),
            )
        })
        .collect()
}

#[test]
fn group_rules_decide_by_directory_membership_and_an_unknown_group_stops_plan_and_purge() {
    let slapd = Slapd::start();
    slapd.add(GROUPS);
    let cluster = cluster(&slapd.url, RETENTION);
    let _archive = archive_scenario(&cluster, Storage::Sqlite, "retention-groups.test/bonnie");
    // Audit records need the broker.
    let _broker = cluster.start_broker();

    let plan = plan(&cluster);
    assert_eq!(
        counts(&plan, "sessions"),
        (ADMIN_SESSIONS, ADMIN_SESSIONS, 0),
        "the admin is in no group: {plan}"
    );
    assert!(
        sampled_users(&plan, "sessions")
            .iter()
            .all(|u| u == "cyrus"),
        "{plan}"
    );
    assert_eq!(
        counts(&plan, "staff-sessions"),
        (JANE_SESSIONS, JANE_SESSIONS, 0),
        "Jane is in Staff only: {plan}"
    );
    assert!(
        sampled_users(&plan, "staff-sessions")
            .iter()
            .all(|u| u == "jane.doe@example.org"),
        "{plan}"
    );
    assert_eq!(
        counts(&plan, "legal"),
        (0, 0, 0),
        "John is in legal through partners, kept forever: {plan}"
    );
    assert_eq!(
        plan["purged"].as_u64(),
        Some(ADMIN_SESSIONS + JANE_SESSIONS),
        "{plan}"
    );

    // A rule naming a group the directory does not have: neither the plan nor the purge runs.
    let config = std::fs::read_to_string(cluster.config()).unwrap();
    std::fs::write(cluster.config(), format!("{config}\n{UNKNOWN_GROUP}")).unwrap();
    for args in [
        &["retention", "plan"][..],
        &["retention", "apply", "--yes", "--json"],
    ] {
        let error = bonnie_fails(&cluster, args);
        assert!(
            error.contains("rule \"auditors\"")
                && error.contains("group \"auditors\"")
                && error.contains("no group with cn=auditors"),
            "{args:?}: {error}"
        );
    }
    assert!(
        logins(&cluster).iter().all(|(_, purged)| !purged),
        "nothing was purged on a guess"
    );
    std::fs::write(cluster.config(), config).unwrap();

    // The purge follows the same groups: John's logins stay whole, Jane's and the admin's go.
    let report = bonnie_json(&cluster, &["retention", "apply", "--yes", "--json"]);
    assert_eq!(
        report["purged"].as_u64(),
        Some(ADMIN_SESSIONS + JANE_SESSIONS),
        "{report}"
    );
    let logins = logins(&cluster);
    let whole: Vec<&str> = logins
        .iter()
        .filter(|(_, purged)| !purged)
        .map(|(user, _)| user.as_str())
        .collect();
    assert_eq!(whole, ["john.doe@example.org"; JOHN_LOGINS], "{logins:?}");
}

#[test]
fn a_directory_that_does_not_answer_stops_the_plan_naming_it() {
    let closed = free_port();
    let url = format!("ldap://127.0.0.1:{closed}/");
    let cluster = cluster(&url, RETENTION);
    let error = bonnie_fails(&cluster, &["retention", "plan"]);
    assert!(
        error.contains("group \"legal\"") && error.contains(&format!("cannot reach LDAP at {url}")),
        "{error}"
    );
}
