//! Where things are: the repository, cargo's output folder, binaries and plugin libraries.

use std::path::{Path, PathBuf};

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The folder with this build's binaries and libraries (`target/debug` or `target/release`),
/// found from the running test executable (`<it>/deps/<test>`).
pub fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("the test executable's folder");
    deps.parent().expect("the build folder").to_path_buf()
}

/// cargo's target folder.
pub fn target_dir() -> PathBuf {
    build_dir()
        .parent()
        .expect("the target folder")
        .to_path_buf()
}

/// A workspace binary, which must have been built (`cargo build --workspace`).
pub fn bin(name: &str) -> PathBuf {
    let path = build_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before the tests",
        path.display()
    );
    path
}

/// A workspace plugin library by crate name (`bonnie-jsonl-input`).
pub fn plugin(crate_name: &str) -> PathBuf {
    let path = build_dir().join(format!("lib{}.so", crate_name.replace('-', "_")));
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before the tests",
        path.display()
    );
    path
}

/// The plugins an installation ships: the library of every crate under `plugins/`.
pub fn shipped_plugins() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(repo_root().join("plugins"))
        .expect("the plugins folder")
        .filter_map(Result::ok)
        .map(|entry| {
            let manifest = std::fs::read_to_string(entry.path().join("Cargo.toml"))
                .expect("a plugin's Cargo.toml");
            let name = manifest
                .lines()
                .find_map(|l| l.strip_prefix("name = \""))
                .and_then(|rest| rest.strip_suffix('"'))
                .expect("a package name");
            plugin(name)
        })
        .collect();
    found.sort();
    found
}

/// A sample notification captured from a real Cyrus 3.6 (`../shared/reference/cyrus/events`).
pub fn cyrus_event(file: &str) -> String {
    let path = repo_root()
        .join("../shared/reference/cyrus/events")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.trim_end().to_string()
}

/// The notifications of the captured Cyrus 3.6 scenario (`examples/cyrus-3.6-scenario.jsonl`),
/// one per line, in the order Cyrus sent them.
pub fn scenario() -> Vec<String> {
    let path = repo_root().join("examples/cyrus-3.6-scenario.jsonl");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// Every captured sample in the order Cyrus emitted it (`index.tsv`): file name and text.
pub fn cyrus_events() -> Vec<(String, String)> {
    let index = cyrus_event("index.tsv");
    index
        .lines()
        .skip(1)
        .map(|line| {
            let file = line.split('\t').next().unwrap_or_default().to_string();
            let text = cyrus_event(&file);
            (file, text)
        })
        .collect()
}

/// A folder path as Cyrus writes it in its IMAP URLs: every byte but `/` percent-encoded
/// (`/Черновики` is `/%D0%A7...`).
pub fn url_encoded(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'/' => "/".to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}
