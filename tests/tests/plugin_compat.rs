//! The ABI compatibility guarantee and the plugin author's kit: plugins built against
//! plugin-api 1.0 (tests/fixtures/compat-1.0) load and work in this host, what they lack reads
//! as absent, a changed plugin-api is refused naming both versions, and docs/plugins.md's
//! steps, followed from an empty folder, give a handler that is unit-tested and loaded.

use std::{path::Path, process::Command};

use bonnie_plugin_api::ABI_VERSION;
use bonnie_tests::{
    fixtures, paths, process,
    worker::{WorkerLab, listed as plugin},
};
use serde_json::{Value, json};

/// A lab with the current jsonl-input and the three plugins built against plugin-api 1.0.
fn compat_lab(extra_plugins: &[&str], extra: &str) -> WorkerLab {
    let compat = fixtures::compat_1_0();
    let lab = WorkerLab::new();
    lab.add_plugin(&paths::plugin("bonnie-jsonl-input"));
    for library in [&compat.handler, &compat.storage, &compat.output] {
        lab.add_plugin(library);
    }
    for name in extra_plugins {
        lab.add_plugin(&paths::plugin(name));
    }
    lab.write(
        "bonnie.toml",
        &format!(
            "[worker]\nplugin_dir = \"plugins\"\nthreads = 2\n\n\
             [plugins.jsonl-input]\nfiles = [\"in.jsonl\"]\nretry_delay_ms = 10\nmax_attempts = 2\n\n\
             [plugins.compat-handler]\ntag = \"from bonnie.toml\"\n\n\
             [plugins.compat-storage]\nlog_path = \"var/event-log.jsonl\"\n\n\
             [plugins.compat-output]\npath = \"var/compat-output.jsonl\"\n\n{extra}"
        ),
    );
    lab.write("var/.keep", "");
    lab
}

fn event(name: &str, script: &str) -> String {
    json!({ "event": name, "user": "john.doe@example.org", "compat_test": script }).to_string()
}

#[test]
fn plugins_built_against_plugin_api_1_0_load_in_this_host_and_lack_only_what_came_later() {
    let lab = compat_lab(&[], "");
    let (output, report) = lab.check_plugins_json();
    assert!(
        process::succeeded(&output.status),
        "{}",
        process::describe(&output)
    );
    assert_eq!(report["host_plugin_api"], ABI_VERSION);
    for (file, name, kind) in [
        ("libbonnie_compat_handler.so", "compat-handler", "handler"),
        ("libbonnie_compat_storage.so", "compat-storage", "storage"),
        ("libbonnie_compat_output.so", "compat-output", "output"),
    ] {
        let entry = plugin(&report, file);
        assert_eq!(entry["status"], "loaded", "{entry}");
        assert_eq!(entry["name"], name, "{entry}");
        assert_eq!(entry["kind"], kind, "{entry}");
        assert_eq!(entry["plugin_api"], "1.0.0", "{entry}");
        assert_eq!(entry["layout_check"], "passed", "{entry}");
        // The root module's `build` field came in 1.1: absent, not garbage.
        assert_eq!(entry["panic"], Value::Null, "{entry}");
    }
    let current = plugin(&report, "libbonnie_jsonl_input.so");
    assert_eq!(current["plugin_api"], ABI_VERSION, "{current}");
    assert_eq!(current["panic"], "unwind", "{current}");
}

#[test]
fn plugins_built_against_plugin_api_1_0_run_jobs_in_this_host() {
    let lab = compat_lab(&[], "");
    lab.notifications(&[
        paths::cyrus_event("Login-2.json"),
        paths::cyrus_event("Logout-1.json"),
        event("Login", "reject"),
        event("Login", "panic"),
        event("Login", "collect"),
        event("Login", "postpone"),
    ]);
    let output = lab.run();

    // The 1.0 handler's work, kept by the 1.0 storage, reached the 1.0 output.
    let written =
        bonnie_tests::worker::read_json_lines(&lab.path().join("var/compat-output.jsonl"));
    let logged = bonnie_tests::worker::read_json_lines(&lab.path().join("var/event-log.jsonl"));
    for job in ["in.jsonl:1", "in.jsonl:2"] {
        let record = &written
            .iter()
            .find(|line| bonnie_tests::worker::is_job(&line["job_id"], job))
            .unwrap_or_else(|| panic!("no output for {job}: {written:?}"))["record"];
        let seen = &record["compat_1_0"];
        assert_eq!(seen["tag"], "from bonnie.toml", "{record}");
        assert!(
            bonnie_tests::worker::is_job(&seen["by_key"]["job"], job),
            "{record}"
        );
        assert!(seen["same_event"].as_u64() >= Some(1), "{record}");
        assert!(
            logged
                .iter()
                .any(|line| bonnie_tests::worker::is_job(&line["job_id"], job)
                    && line["record"]["compat_1_0"] == *seen),
            "{job} is not in the 1.0 storage's event log: {logged:?}"
        );
        assert_eq!(lab.outcome(job)["outcome"], "done");
    }
    // Every outcome of the 1.0 NonExhaustive enum crosses into this host.
    let rejected = lab.outcome("in.jsonl:3");
    assert_eq!(rejected["outcome"], "rejected");
    assert_eq!(
        rejected["reason"],
        "handler compat-handler: compat-handler was asked to reject"
    );
    let panicked = lab.outcome("in.jsonl:4");
    assert_eq!(panicked["outcome"], "failed");
    assert!(
        panicked["reason"]
            .as_str()
            .is_some_and(|r| r.contains("compat-handler was asked to panic")),
        "{panicked}"
    );
    let collect = lab.outcome("in.jsonl:5");
    assert_eq!(collect["outcome"], "collect", "{collect}");
    assert_eq!(collect["commands"], json!(["HEADER"]), "{collect}");
    let postponed = lab.outcomes_of("in.jsonl:6");
    assert_eq!(postponed[0]["outcome"], "postponed", "{postponed:?}");
    assert_eq!(
        postponed[0]["reason"],
        "handler compat-handler: compat-handler was asked to wait"
    );
    assert_eq!(
        written.len(),
        2,
        "only the done jobs are written: {written:?}"
    );

    // Its log lines come through this host's logger, with its fields.
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.lines()
            .any(|l| l.contains("Compat handler kept a record.")
                && l.contains("compat-handler")
                && l.contains("job=in.jsonl:1:")),
        "{log}"
    );
}

#[test]
fn a_storage_built_against_1_0_answers_put_if_as_absent_and_a_current_handler_is_told_so() {
    let event_with = |script: &str| {
        json!({ "event": "Login", "user": "john.doe@example.org", "bonnie_test": script })
            .to_string()
    };
    // A handler of this version updates a view through the 1.0 storage, which has no put_if.
    let lab = compat_lab(&["bonnie-fixture-test-handler"], "");
    lab.notifications(&[event_with("update"), event_with("")]);
    lab.run();
    let failed = lab.outcome("in.jsonl:1");
    assert_eq!(failed["outcome"], "failed", "{failed}");
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("cannot replace a record conditionally (put_if)")),
        "{failed}"
    );
    // Nothing else is affected: the next job, and the 1.0 plugins, work.
    assert_eq!(lab.outcome("in.jsonl:2")["outcome"], "done");

    // With a storage of this version the same job updates its view, and the 1.0 handler
    // keeps its records in that storage, through the larger storage object it is handed.
    let current = WorkerLab::with_plugins(
        &["bonnie-fixture-test-handler"],
        "[plugins.compat-handler]\ntag = \"with sqlite\"\n",
    );
    current.add_plugin(&fixtures::compat_1_0().handler);
    current.notifications(&[event_with("update"), event_with("update")]);
    current.run();
    // The worker's threads may run the two jobs in either order: each saw its own count.
    let counts: std::collections::BTreeSet<u64> = ["in.jsonl:1", "in.jsonl:2"]
        .iter()
        .map(|job| current.record(job)["update_count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [1, 2].into(), "no update lost");
    let record = current.record("in.jsonl:2");
    assert_eq!(record["compat_1_0"]["tag"], "with sqlite", "{record}");
    assert!(
        bonnie_tests::worker::is_job(&record["compat_1_0"]["by_key"]["job"], "in.jsonl:2"),
        "{record}"
    );
}

#[test]
fn a_breaking_change_to_plugin_api_1_0_is_refused_at_load_naming_both_versions() {
    // The compat handler built against plugin-api 1.0 with a field added to `Job` in place,
    // but still calling itself 1.0.0 (a breaking change without a new major version).
    let lab = compat_lab(&[], "");
    let changed_dir = lab.path().join("changed");
    std::fs::create_dir_all(&changed_dir).unwrap();
    let changed = changed_dir.join("libbonnie_fixture_layout_changed.so");
    std::fs::copy(fixtures::layout_changed_plugin(), &changed).unwrap();
    // In place of the good compat handler, which has the same plugin name.
    std::fs::remove_file(lab.plugin_dir().join("libbonnie_compat_handler.so")).unwrap();
    lab.add_plugin(&changed);

    let (output, report) = lab.check_plugins_json();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        process::describe(&output)
    );
    let entry = plugin(&report, "libbonnie_fixture_layout_changed.so");
    assert_eq!(entry["status"], "refused", "{entry}");
    assert_eq!(entry["layout_check"], "failed", "{entry}");
    assert_eq!(entry["plugin_api"], "1.0.0", "{entry}");
    let reason = entry["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("built against plugin-api 1.0.0")
            && reason.contains(&format!("this host's plugin-api {ABI_VERSION}"))
            && reason.contains(&format!("rebuild it against plugin-api {ABI_VERSION}")),
        "{reason}"
    );
    // The 1.0 storage and output next to it still load.
    assert_eq!(
        plugin(&report, "libbonnie_compat_storage.so")["status"],
        "loaded"
    );

    // A breaking change made properly, with a new major version: refused naming both.
    lab.add_plugin(&fixtures::wrong_abi_plugin());
    let (_, report) = lab.check_plugins_json();
    let entry = plugin(&report, "libbonnie_fixture_wrong_abi.so");
    assert_eq!(entry["layout_check"], "not checked", "{entry}");
    let reason = entry["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("built against plugin-api 2.0.0")
            && reason.contains(&format!("this host has plugin-api {ABI_VERSION}")),
        "{reason}"
    );
}

/// The fenced blocks of docs/plugins.md's step-by-step section, in order: (language, text).
fn guide_blocks() -> Vec<(String, String)> {
    let guide = std::fs::read_to_string(paths::repo_root().join("docs/plugins.md")).unwrap();
    let start = guide
        .find("## Writing a handler, step by step")
        .expect("docs/plugins.md has its step-by-step section");
    let section = &guide[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let mut blocks = Vec::new();
    let mut open: Option<(String, usize, String)> = None;
    for line in section.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match (&mut open, trimmed.strip_prefix("```")) {
            (None, Some(language)) => open = Some((language.to_string(), indent, String::new())),
            (Some(_), Some("")) => {
                let (language, _, text) = open.take().unwrap();
                blocks.push((language, text));
            }
            (Some((_, indent, text)), _) => {
                text.push_str(line.get(*indent..).unwrap_or(""));
                text.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

fn block(blocks: &[(String, String)], language: &str, containing: &str) -> String {
    blocks
        .iter()
        .find(|(l, text)| l == language && text.contains(containing))
        .map(|(_, text)| text.clone())
        .unwrap_or_else(|| panic!("no {language} block with {containing:?} in the guide"))
}

fn git(dir: &Path, args: &[&str]) {
    let output = process::run(
        "git",
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=bonnie tests",
                "-c",
                "user.email=tests@bonnie.invalid",
            ])
            .args(args),
    );
    assert!(output.status.success(), "{}", process::describe(&output));
}

#[test]
fn an_author_following_the_guide_from_an_empty_folder_builds_tests_and_loads_a_handler() {
    let blocks = guide_blocks();
    let root = tempfile::tempdir().unwrap();

    // bonnie's repository as the author finds it: plugin-api tagged with its version (the
    // guide's commands name the tag, so the guide must follow every version bump).
    let bonnie = root.path().join("bonnie");
    fixtures::vendor_plugin_api(&bonnie.join("plugin-api"));
    git(&bonnie, &["init", "--quiet"]);
    git(&bonnie, &["add", "plugin-api"]);
    git(&bonnie, &["commit", "--quiet", "-m", "plugin-api"]);
    git(&bonnie, &["tag", &format!("plugin-api-v{ABI_VERSION}")]);

    // The author's empty folder, and the guide's steps.
    let project = root.path().join("my-handler");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        block(&blocks, "toml", "[package]"),
    )
    .unwrap();
    std::fs::write(
        project.join("src/lib.rs"),
        block(&blocks, "rust", "export_handler!"),
    )
    .unwrap();
    let vendoring = process::run(
        "the guide's vendoring commands",
        Command::new("sh")
            .arg("-ec")
            .arg(block(&blocks, "sh", "archive"))
            .current_dir(&project)
            .env("BONNIE", &bonnie),
    );
    assert!(
        vendoring.status.success(),
        "{}",
        process::describe(&vendoring)
    );

    // A target folder of its own: the example's vendored copy has the same relative path,
    // and cargo would name both builds alike.
    let target = fixtures::external_target().join("author");
    let tested = process::build(
        "cargo test (the author's)",
        &mut fixtures::cargo_in(&project, "test", &target),
    );
    assert!(tested.status.success(), "{}", process::describe(&tested));
    assert!(
        String::from_utf8_lossy(&tested.stdout).contains("test result: ok. 1 passed"),
        "{}",
        process::describe(&tested)
    );
    let built = process::build(
        "cargo build (the author's)",
        &mut fixtures::cargo_in(&project, "build", &target),
    );
    assert!(built.status.success(), "{}", process::describe(&built));
    let library = target.join("debug/libmy_handler.so");

    let lab = WorkerLab::with_plugins(&[], "");
    lab.add_plugin(&library);
    let (output, report) = lab.check_plugins_json();
    assert!(
        process::succeeded(&output.status),
        "{}",
        process::describe(&output)
    );
    let entry = plugin(&report, "libmy_handler.so");
    assert_eq!(entry["status"], "loaded", "{entry}");
    assert_eq!(entry["plugin_api"], ABI_VERSION, "{entry}");
    lab.notifications(&[paths::cyrus_event("Login-2.json")]);
    let output = lab.run();
    assert_eq!(
        lab.record("in.jsonl:1")["my_handler"],
        json!({ "seen": true })
    );
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.lines()
            .any(|l| l.contains("Seen.") && l.contains("my-handler")),
        "{log}"
    );
}
