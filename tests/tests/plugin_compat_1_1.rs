//! Plugins built against plugin-api 1.1 load and work in this host: the example third-party
//! handler as it was at tag `plugin-api-v1.1.0` (tests/fixtures/compat-1.1), built against the plugin-api of that tag
//! vendored as docs/plugins.md says, is loaded with its layout checked (1.2 grew no type of
//! the ABI, so it is checked against today's: plugin-api/src/frozen.rs) and changes what is
//! written.

use std::process::Command;

use bonnie_tests::{
    fixtures, paths, process,
    worker::{WorkerLab, listed as plugin},
};
use serde_json::json;

/// The example handler of tag `plugin-api-v1.1.0`, built offline and `--locked` into
/// `target/external/compat-1.1`. Its sources, and plugin-api's, are kept as they were at the
/// tag in tests/fixtures/compat-1.1 (`git archive plugin-api-v1.1.0 examples/third-party-handler
/// plugin-api`), so the test needs no tags in the clone it runs from.
fn example_handler_of_1_1() -> std::path::PathBuf {
    let root = fixtures::external_target().join("compat-1.1");
    let project = root.join("source/examples/third-party-handler");
    if !project.join("Cargo.toml").exists() {
        let unpacked = tempfile::tempdir_in(fixtures::external_target()).unwrap();
        let copied = process::run(
            "copying the 1.1 example and plugin-api",
            Command::new("cp")
                .arg("-R")
                .arg(paths::repo_root().join("tests/fixtures/compat-1.1/."))
                .arg(unpacked.path()),
        );
        assert!(copied.status.success(), "{}", process::describe(&copied));
        let example = unpacked.path().join("examples/third-party-handler");
        std::fs::create_dir_all(example.join("vendor")).unwrap();
        std::fs::rename(
            unpacked.path().join("plugin-api"),
            example.join("vendor/bonnie-plugin-api"),
        )
        .unwrap();
        // Another test process may have put it there meanwhile: the same files.
        let _ = std::fs::remove_dir_all(root.join("source"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::rename(unpacked.keep(), root.join("source")).unwrap();
    }
    let target = root.join("target");
    let built = process::build(
        "cargo build (the 1.1 example)",
        fixtures::cargo_in(&project, "build", &target).arg("--locked"),
    );
    assert!(built.status.success(), "{}", process::describe(&built));
    target.join("debug/liblogin_watch.so")
}

#[test]
fn the_example_handler_built_against_plugin_api_1_1_loads_and_works_in_this_host() {
    let library = example_handler_of_1_1();
    let lab = WorkerLab::with_plugins(
        &[],
        "[plugins.login-watch]\ntrusted_networks = [\"10.0.0.0/8\"]\n",
    );
    lab.add_plugin(&library);
    let (_, report) = lab.check_plugins_json();
    let entry = plugin(&report, "liblogin_watch.so");
    // Loaded, its layout checked, and its root module's `build` (since 1.1) read.
    let checked = ["status", "plugin_api", "layout_check", "panic"]
        .map(|key| (key.to_string(), entry[key].clone()));
    assert_eq!(
        serde_json::Value::Object(checked.into_iter().collect()),
        json!({ "status": "loaded", "plugin_api": "1.1.0", "layout_check": "passed", "panic": "unwind" }),
        "{entry}"
    );

    let mut from_lan: serde_json::Value =
        serde_json::from_str(&paths::cyrus_event("Login-2.json")).unwrap();
    from_lan["clientIP"] = json!("10.1.2.3");
    lab.notifications(&[from_lan.to_string()]);
    lab.run();
    assert_eq!(
        lab.record("in.jsonl:1")["login_watch"],
        json!({ "trusted": true })
    );
}
