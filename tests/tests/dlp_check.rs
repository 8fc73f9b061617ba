//! `bonnie dlp check` as an administrator writing rules runs it: a message made here with a
//! card number in its attachment fires the shipped payment-card rule, explained in text and in
//! JSON with the number masked; a clean text file fires nothing; a rule file given with
//! `--rules`, or named by the configuration's `[plugins.dlp]` table, replaces the shipped rules; a bad
//! rule file or a missing input is an error. Exit codes: 0 no hit, 1 hit, 2 error. `bonnie
//! config check` compiles the rules `[plugins.dlp]` names.

use std::{
    path::Path,
    process::{Command, Output},
};

use bonnie_tests::{cluster::Cluster, paths, process};
use serde_json::Value;

/// Runs `bonnie <args>` in `dir` with `$BONNIE_CONFIG` unset, so only `--config` names one.
fn bonnie(dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(paths::bin("bonnie"));
    command
        .current_dir(dir)
        .env_remove("BONNIE_CONFIG")
        .args(args);
    process::run("bonnie", &mut command)
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("bonnie exited")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A message whose body is clean and whose base64 attachment holds a card number with a
/// supporting keyword in German.
const MESSAGE: &str = "From: Alice <alice@example.org>\r\n\
To: bob@partner.example\r\n\
Subject: Bestellung 20244539148803436467\r\n\
Message-ID: <dlp-check@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"part\"\r\n\
\r\n\
--part\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Die Daten stehen im Anhang. Rückruf unter +49 30 12345678.\r\n\
--part\r\n\
Content-Type: text/plain; charset=utf-8; name=\"zahlung.txt\"\r\n\
Content-Disposition: attachment; filename=\"zahlung.txt\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
S3JlZGl0a2FydGU6IDU0MjUgMjMzNCAzMDEwIDk5MDMKR8O8bHRpZyBiaXMgMTIvMjcK\r\n\
--part--\r\n";

#[test]
fn a_card_in_an_attachment_fires_the_shipped_rule_explained_and_masked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("order.eml"), MESSAGE).unwrap();

    let text = bonnie(dir.path(), &["dlp", "check", "order.eml"]);
    assert_eq!(code(&text), 1, "{}", process::describe(&text));
    let out = stdout(&text);
    assert!(
        out.contains("Rule \"payment-cards\" (severity high)"),
        "{out}"
    );
    assert!(
        out.contains("attachment 2 (zahlung.txt): 5425 **** **** 9903"),
        "{out}"
    );
    assert!(out.contains("confidence 85 (high)"), "{out}");
    assert!(
        out.contains("keyword \"Kreditkarte\" 2 character(s) away"),
        "{out}"
    );
    assert!(!out.contains("5425 2334 3010 9903"), "{out}");

    let json = bonnie(dir.path(), &["dlp", "check", "--json", "order.eml"]);
    assert_eq!(code(&json), 1, "{}", process::describe(&json));
    let hits: Value = serde_json::from_str(&stdout(&json)).expect("one JSON array");
    let hits = hits.as_array().expect("an array");
    assert_eq!(
        hits.len(),
        1,
        "the order number and the phone number are not cards: {hits:?}"
    );
    assert_eq!(hits[0]["rule"], "payment-cards");
    assert_eq!(hits[0]["severity"], "high");
    assert_eq!(hits[0]["count"], 1);
    let evidence = &hits[0]["matches"][0];
    assert_eq!(evidence["part"], "attachment 2 (zahlung.txt)");
    assert_eq!(evidence["label"], "mastercard");
    assert_eq!(evidence["confidence"], 85);
    assert_eq!(evidence["excerpt"], "5425 **** **** 9903");
    // Nearest first: the line after the number, then the word before it.
    assert_eq!(evidence["keywords"][0]["keyword"], "Gültig bis");
    assert_eq!(evidence["keywords"][0]["distance"], 1);
    assert_eq!(evidence["keywords"][1]["keyword"], "Kreditkarte");
    assert_eq!(evidence["keywords"][1]["distance"], 2);
    assert!(!stdout(&json).contains("5425233430109903"));
}

#[test]
fn a_clean_text_file_fires_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("note.txt"),
        "Tracking 1Z999AA10123456784, Termin am 2024-12-01, Tel. +49 30 12345678.\n",
    )
    .unwrap();
    let output = bonnie(dir.path(), &["dlp", "check", "note.txt"]);
    assert_eq!(code(&output), 0, "{}", process::describe(&output));
    assert!(stdout(&output).contains("note.txt: no rule fired (the shipped rules)."));
    let json = bonnie(dir.path(), &["dlp", "check", "--json", "note.txt"]);
    assert_eq!(code(&json), 0);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&json)).unwrap(),
        Value::Array(vec![])
    );
}

#[test]
fn rules_from_the_command_line_or_the_configuration_replace_the_shipped_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("memo.txt"),
        "Projekt PRJ-123456 ist streng vertraulich.\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/10-projects.toml"),
        r#"
        [detectors.project]
        kind = "regex"
        pattern = "PRJ-[0-9]{6}"
        keywords = ["projekt"]

        [[rules]]
        name = "project-codes"
        severity = "medium"
        detectors = ["project"]
        actions = [{ type = "keyword", name = "$Confidential" }, { type = "syslog" }]
        "#,
    )
    .unwrap();

    let output = bonnie(
        dir.path(),
        &["dlp", "check", "--rules", "rules", "memo.txt", "--json"],
    );
    assert_eq!(code(&output), 1, "{}", process::describe(&output));
    let hits: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(hits[0]["rule"], "project-codes");
    assert_eq!(hits[0]["confidence"], 65);
    assert_eq!(hits[0]["matches"][0]["excerpt"], "PR*-****56");
    assert_eq!(
        hits[0]["actions"][0],
        serde_json::json!({"type": "keyword", "name": "$Confidential"})
    );

    // The configuration's [plugins.dlp] rules, relative to its folder.
    std::fs::write(
        dir.path().join("bonnie.toml"),
        "[plugins.dlp]\nrules = \"rules\"\n",
    )
    .unwrap();
    let output = bonnie(
        dir.path(),
        &["--config", "bonnie.toml", "dlp", "check", "memo.txt"],
    );
    assert_eq!(code(&output), 1, "{}", process::describe(&output));
    assert!(stdout(&output).contains("Rule \"project-codes\""));

    // A card is no hit for these rules: the shipped ones are replaced.
    std::fs::write(dir.path().join("card.txt"), "Visa 4539148803436467").unwrap();
    let output = bonnie(
        dir.path(),
        &["--config", "bonnie.toml", "dlp", "check", "card.txt"],
    );
    assert_eq!(code(&output), 0, "{}", process::describe(&output));
}

#[test]
fn bad_rules_a_bad_configuration_and_a_missing_file_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("memo.txt"), "nothing").unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[rules]]\nname = \"r\"\nseverity = \"low\"\ndetectors = [\"iban\"]\nmin_cont = 2\n",
    )
    .unwrap();
    let output = bonnie(
        dir.path(),
        &["dlp", "check", "--rules", "bad.toml", "memo.txt"],
    );
    assert_eq!(code(&output), 2, "{}", process::describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("DLP rules bad.toml line 5: unknown field `min_cont`"),
        "{stderr}"
    );

    std::fs::write(
        dir.path().join("regex.toml"),
        "[detectors.d]\nkind = \"regex\"\npattern = \"[a-\"\n\n[[rules]]\nname = \"r\"\nseverity = \"low\"\ndetectors = [\"d\"]\n",
    )
    .unwrap();
    let output = bonnie(
        dir.path(),
        &["dlp", "check", "--rules", "regex.toml", "memo.txt"],
    );
    assert_eq!(code(&output), 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 3: detector \"d\": `pattern` does not compile"),
        "{stderr}"
    );

    std::fs::write(
        dir.path().join("bonnie.toml"),
        "[plugins.dlp]\nrule = \"x\"\n",
    )
    .unwrap();
    let output = bonnie(
        dir.path(),
        &["--config", "bonnie.toml", "dlp", "check", "memo.txt"],
    );
    assert_eq!(code(&output), 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("[plugins.dlp]: unknown field `rule`"),
        "{stderr}"
    );

    let output = bonnie(dir.path(), &["dlp", "check", "missing.eml"]);
    assert_eq!(code(&output), 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read missing.eml"));
}

#[test]
fn config_check_compiles_the_rules_that_dlp_names() {
    // A worker with the DLP plugin, whose [plugins.dlp] names a rule file beside the
    // configuration.
    let cluster = Cluster::new(
        &["bonnie-dlp-plugin"],
        "[plugins.dlp]\nrules = \"rules.toml\"\n",
    );
    let rules = cluster.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rules]]\nname = \"r\"\nseverity = \"low\"\ndetectors = [\"ibans\"]\n",
    )
    .unwrap();
    let check = ["config", "check", "--offline", "--role", "worker"];
    let output = cluster.bonnie(&check);
    assert_ne!(code(&output), 0, "{}", process::describe(&output));
    let out = stdout(&output);
    assert!(
        out.contains("[plugins.dlp] rules: DLP rules")
            && out.contains("`detectors` names \"ibans\""),
        "{out}"
    );
    std::fs::write(
        &rules,
        "[[rules]]\nname = \"r\"\nseverity = \"low\"\ndetectors = [\"iban\"]\n",
    )
    .unwrap();
    let output = cluster.bonnie(&check);
    assert_eq!(code(&output), 0, "{}", process::describe(&output));
    // The alert settings are checked too, naming the key.
    let config = std::fs::read_to_string(cluster.config()).unwrap();
    std::fs::write(
        cluster.config(),
        format!(
            "{config}
[plugins.dlp.alerts]
poll_interval_ms = 0
"
        ),
    )
    .unwrap();
    let output = cluster.bonnie(&check);
    assert_ne!(code(&output), 0, "{}", process::describe(&output));
    let out = stdout(&output);
    assert!(
        out.contains("[plugins.dlp.alerts] poll_interval_ms: must be more than 0"),
        "{out}"
    );
}
