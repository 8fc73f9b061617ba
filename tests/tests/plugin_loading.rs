//! Loading plugins from the plugin directory: the shipped configuration lists every plugin of
//! the workspace as loaded; bad plugins are refused with their reason while the rest run.

use std::{os::unix::fs::PermissionsExt, process::Command};

use bonnie_tests::{
    fixtures, paths, process,
    worker::{self, WorkerLab},
};

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The line `--check-plugins` printed for a file.
fn line_for<'a>(listing: &'a str, file: &str) -> &'a str {
    listing
        .lines()
        .find(|l| l.starts_with(file))
        .unwrap_or_else(|| panic!("no line for {file} in:\n{listing}"))
}

#[test]
fn shipped_config_lists_every_workspace_plugin_as_loaded() {
    // etc/bonnie.toml as shipped, with its plugin directory filled as scripts/run fills it.
    let lab = WorkerLab::new();
    let shipped = std::fs::read_to_string(paths::repo_root().join("etc/bonnie.toml"))
        .expect("etc/bonnie.toml");
    lab.write("bonnie.toml", &shipped);
    let plugin_dir = lab.path().join("var/plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    let plugins = paths::shipped_plugins();
    for plugin in &plugins {
        std::fs::copy(plugin, plugin_dir.join(plugin.file_name().unwrap())).unwrap();
    }

    let output = lab.check_plugins();
    let listing = stdout(&output);
    assert!(
        process::succeeded(&output.status),
        "{}",
        process::describe(&output)
    );
    for plugin in &plugins {
        let file = plugin.file_name().unwrap().to_string_lossy().into_owned();
        let line = line_for(&listing, &file);
        assert!(line.contains("  loaded"), "{line}");
        assert!(
            line.contains(&format!("plugin-api {}", bonnie_plugin_api::ABI_VERSION)),
            "{line}"
        );
    }
    for name in [
        "jsonl-input",
        "jsonl-output",
        "sqlite-storage",
        "messageappend",
        "changelog",
        "freebusy",
        "zmq-input",
        "es-output",
    ] {
        assert!(
            listing
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(name)),
            "{name} missing:\n{listing}"
        );
    }
}

#[test]
fn bad_plugins_are_refused_with_their_reasons_and_the_listing_exits_1() {
    let lab = WorkerLab::with_plugins(&[], "");
    lab.add_plugin(&fixtures::wrong_abi_plugin());
    lab.add_plugin(&paths::plugin("bonnie-fixture-not-a-plugin"));
    lab.write(
        "plugins/garbage.so",
        "\x7fELF but not really a shared library",
    );
    std::os::unix::fs::symlink(
        lab.path().join("gone.so"),
        lab.plugin_dir().join("dangling.so"),
    )
    .unwrap();
    let unreadable = lab.plugin_dir().join("unreadable.so");
    std::fs::write(&unreadable, b"no permission to read this").unwrap();
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();

    let output = lab.check_plugins();
    let listing = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        process::describe(&output)
    );

    let wrong = line_for(&listing, "libbonnie_fixture_wrong_abi.so");
    assert!(
        wrong.contains("refused: built against plugin-api 2.0.0"),
        "{wrong}"
    );
    assert!(
        wrong.contains(&format!(
            "this host has plugin-api {}",
            bonnie_plugin_api::ABI_VERSION
        )),
        "{wrong}"
    );
    let not_plugin = line_for(&listing, "libbonnie_fixture_not_a_plugin.so");
    assert!(
        not_plugin.contains("refused: not a bonnie plugin"),
        "{not_plugin}"
    );
    let garbage = line_for(&listing, "garbage.so");
    assert!(garbage.contains("refused: cannot open"), "{garbage}");
    let dangling = line_for(&listing, "dangling.so");
    assert!(
        dangling.contains("refused: cannot open: the file does not exist"),
        "{dangling}"
    );
    // As root the mode does not stop reading, and the content is refused instead.
    let unreadable_line = line_for(&listing, "unreadable.so");
    assert!(
        unreadable_line.contains("refused: cannot open"),
        "{unreadable_line}"
    );

    for good in [
        "libbonnie_jsonl_input.so",
        "libbonnie_jsonl_output.so",
        "libbonnie_sqlite_storage.so",
    ] {
        assert!(line_for(&listing, good).ends_with("loaded"), "{listing}");
    }
}

#[test]
fn refused_plugins_are_skipped_and_the_others_run_jobs() {
    let lab = WorkerLab::with_plugins(&["bonnie-fixture-test-handler"], "");
    lab.add_plugin(&fixtures::wrong_abi_plugin());
    lab.add_plugin(&paths::plugin("bonnie-fixture-not-a-plugin"));
    lab.notifications(&[paths::cyrus_event("Login-2.json")]);

    let output = lab.run();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("Plugin refused; skipped."), "{log}");
    assert!(log.contains("plugin-api 2.0.0"), "{log}");
    let record = lab.record("in.jsonl:1");
    assert_eq!(record["handled_by"], serde_json::json!(["test-handler"]));
}

#[test]
fn a_disabled_plugin_is_listed_as_disabled_and_not_loaded() {
    let lab = WorkerLab::with_plugins(&["bonnie-fixture-test-handler"], "");
    let config = std::fs::read_to_string(lab.config()).unwrap().replace(
        "[worker]\n",
        "[worker]\ndisabled = [\"test-handler\", \"libbonnie_fixture_not_a_plugin.so\"]\n",
    );
    lab.write("bonnie.toml", &config);
    lab.add_plugin(&paths::plugin("bonnie-fixture-not-a-plugin"));

    let output = lab.check_plugins();
    let listing = stdout(&output);
    assert!(
        process::succeeded(&output.status),
        "{}",
        process::describe(&output)
    );
    // Listed as disabled, but still checked.
    assert!(
        line_for(&listing, "libbonnie_fixture_test_handler.so").ends_with("loaded (disabled)"),
        "{listing}"
    );
    let not_plugin = line_for(&listing, "libbonnie_fixture_not_a_plugin.so");
    assert!(
        not_plugin.contains("refused: not a bonnie plugin") && not_plugin.ends_with("(disabled)"),
        "{listing}"
    );

    // A disabled plugin does not run.
    lab.notifications(&[bonnie_tests::paths::cyrus_event("Login-2.json")]);
    lab.run();
    assert!(lab.record("in.jsonl:1").get("handled_by").is_none());
}

#[test]
fn an_invalid_config_is_refused_at_start_up_naming_the_key() {
    let lab = WorkerLab::with_plugins(&[], "");
    lab.write(
        "bonnie.toml",
        "[worker]\nplugin_dir = \"plugins\"\nthreds = 4\n",
    );
    let output = process::run("bonnie-worker", &mut lab.command(&[]));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("threds"), "{stderr}");
}

#[test]
fn help_describes_the_options() {
    let output = process::run(
        "bonnie-worker --help",
        Command::new(paths::bin("bonnie-worker")).arg("--help"),
    );
    assert!(process::succeeded(&output.status));
    let help = stdout(&output);
    for option in ["--config", "--check-plugins", "--log-level", "--log-file"] {
        assert!(help.contains(option), "{help}");
    }
}

#[test]
fn the_json_listing_gives_each_file_its_facts_and_refused_ones_their_reason() {
    let lab = WorkerLab::with_plugins(&[], "");
    lab.add_plugin(&fixtures::wrong_abi_plugin());
    lab.add_plugin(&paths::plugin("bonnie-fixture-not-a-plugin"));
    let (output, report) = lab.check_plugins_json();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        process::describe(&output)
    );
    assert_eq!(report["host_plugin_api"], bonnie_plugin_api::ABI_VERSION);
    let entry = |file: &str| worker::listed(&report, file).clone();
    let storage = entry("libbonnie_sqlite_storage.so");
    assert_eq!(
        storage,
        serde_json::json!({
            "file": "libbonnie_sqlite_storage.so",
            "name": "sqlite-storage",
            "kind": "storage",
            "plugin_api": bonnie_plugin_api::ABI_VERSION,
            "layout_check": "passed",
            "panic": "unwind",
            "status": "loaded",
            "enabled": true,
            "reason": null,
        })
    );
    let wrong = entry("libbonnie_fixture_wrong_abi.so");
    assert_eq!(wrong["status"], "refused");
    assert_eq!(wrong["kind"], "handler");
    assert_eq!(wrong["plugin_api"], "2.0.0");
    assert_eq!(wrong["layout_check"], "not checked");
    assert!(
        wrong["reason"]
            .as_str()
            .is_some_and(|r| r.contains("built against plugin-api 2.0.0")
                && r.contains("rebuild the plugin against plugin-api")),
        "{wrong}"
    );
    let not_plugin = entry("libbonnie_fixture_not_a_plugin.so");
    assert_eq!(not_plugin["status"], "refused");
    assert_eq!(not_plugin["kind"], serde_json::Value::Null);
    assert!(
        not_plugin["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("not a bonnie plugin")),
        "{not_plugin}"
    );
}

#[test]
fn a_plugin_built_with_panic_abort_is_refused_saying_how_to_rebuild_it() {
    let lab = WorkerLab::with_plugins(&["bonnie-fixture-test-handler"], "");
    lab.add_plugin(&fixtures::abort_plugin());

    let output = lab.check_plugins();
    let listing = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        process::describe(&output)
    );
    let line = line_for(&listing, "libbonnie_fixture_abort.so");
    assert!(
        line.contains("abort-handler")
            && line.contains("refused: built with panic = \"abort\"")
            && line.contains("rebuild it with the default panic = \"unwind\""),
        "{line}"
    );
    let (_, report) = lab.check_plugins_json();
    let entry = worker::listed(&report, "libbonnie_fixture_abort.so");
    assert_eq!(entry["panic"], "abort", "{entry}");
    assert_eq!(entry["status"], "refused", "{entry}");

    // The worker skips it and runs the others.
    lab.notifications(&[paths::cyrus_event("Login-2.json")]);
    let output = lab.run();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.lines().any(|l| l.contains("Plugin refused; skipped.")
            && l.contains("libbonnie_fixture_abort.so")
            && l.contains("abort")),
        "{log}"
    );
    assert_eq!(
        lab.record("in.jsonl:1")["handled_by"],
        serde_json::json!(["test-handler"])
    );
}

#[test]
fn a_handler_whose_constructor_panics_stops_the_worker_naming_it_and_the_panic() {
    let lab = WorkerLab::with_plugins(
        &["bonnie-fixture-test-handler"],
        "[plugins.test-handler]\npanic_at_start = \"the licence server answered nonsense\"\n",
    );
    lab.notifications(&[paths::cyrus_event("Login-2.json")]);
    let output = process::run("bonnie-worker", &mut lab.command(&[]));
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        process::describe(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the handler plugin test-handler did not start")
            && stderr.contains("panicked")
            && stderr.contains("the licence server answered nonsense"),
        "{stderr}"
    );
    assert!(lab.outcomes().is_empty(), "no job was taken");
    assert!(lab.output_records().is_empty());
}
