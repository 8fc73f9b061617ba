//! `bonnie config check` on real files, plugins and peers: the shipped configuration, installed
//! as the Debian package lays it out, and the development one of scripts/run name exactly what
//! a fresh install must still provide and pass once it is there; an unknown key, a secret key
//! open to every user or damaged, a table for a plugin that is not installed, a plugin refusing
//! its table, a broker that is not there (for the admin and for a worker), a wrong LDAP password
//! (a real slapd) and an Elasticsearch server that does not answer are each one line naming the
//! key with a non-zero exit; a configuration whose broker, Cyrus and slapd run passes.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use bonnie_tests::{
    cluster::{Cluster, free_port},
    cyrus::{Cyrus, Notify},
    ldap::{SERVICE_DN, Slapd},
    paths, process,
    search_server::SearchServer,
};
use serde_json::Value;

/// Runs `bonnie --config <config> <args>`.
fn bonnie(config: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(paths::bin("bonnie"));
    command.arg("--config").arg(config).args(args);
    process::run("bonnie", &mut command)
}

/// `bonnie config check` with `args`: its output, and its findings' lines.
fn check(config: &Path, args: &[&str]) -> (Output, Vec<String>) {
    let output = bonnie(config, &[&["config", "check"], args].concat());
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    (output, lines)
}

/// `bonnie config check --json` with `args`: each finding as its key and the first of `files`
/// its problem names (`-` for none), sorted.
fn finding_labels(config: &Path, args: &[&str], files: &[&str]) -> (Output, Vec<String>) {
    let output = bonnie(config, &[&["config", "check", "--json"], args].concat());
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", process::describe(&output)));
    let mut labels: Vec<String> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let problem = f["problem"].as_str().unwrap_or("");
            let file = files
                .iter()
                .find(|name| problem.contains(*name))
                .unwrap_or(&"-");
            format!("{} {file}", f["key"].as_str().unwrap_or("?"))
        })
        .collect();
    labels.sort();
    (output, labels)
}

fn succeed(what: &str, output: &Output) {
    assert!(
        process::succeeded(&output.status),
        "{what} failed:\n{}",
        process::describe(output)
    );
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Installs the shipped plugins into `dir` (0644 in a 0755 folder), as the package does.
fn install_plugins(dir: &Path) {
    std::fs::create_dir_all(dir).expect("the plugin folder");
    chmod(dir, 0o755);
    for library in paths::shipped_plugins() {
        let installed = dir.join(library.file_name().expect("a file name"));
        std::fs::copy(&library, &installed).expect("installing a plugin");
        chmod(&installed, 0o644);
    }
}

const KEY_FILES: &[&str] = &[
    "broker.key",
    "dealer.key",
    "collector.key",
    "worker.key",
    "broker.pub",
    "archive.key",
    "api-clients.json",
    "cyrus/mail",
];

#[test]
fn the_shipped_configuration_names_what_a_fresh_install_must_provide_then_passes() {
    let root = tempfile::tempdir().expect("a temporary folder");
    let root_text = root.path().to_string_lossy().into_owned();
    // The package's layout under a folder of its own: every absolute path moved into it.
    let mut text = std::fs::read_to_string(paths::repo_root().join("packaging/bonnie.toml"))
        .expect("packaging/bonnie.toml");
    for prefix in [
        "/usr/lib/bonnie",
        "/etc/bonnie",
        "/var/lib/bonnie",
        "/var/log/bonnie",
        "/run/bonnie",
        "/var/spool/cyrus",
    ] {
        text = text.replace(&format!("\"{prefix}"), &format!("\"{root_text}{prefix}"));
    }
    // What postinst makes: the state, log and keys folders (0750) and the file (0640).
    for folder in ["var/lib/bonnie", "var/log/bonnie", "etc/bonnie/keys"] {
        let path = root.path().join(folder);
        std::fs::create_dir_all(&path).expect("a package folder");
        chmod(&path, 0o750);
    }
    let config = root.path().join("etc/bonnie/bonnie.toml");
    std::fs::write(&config, text).expect("writing the configuration");
    chmod(&config, 0o640);
    install_plugins(&root.path().join("usr/lib/bonnie/plugins"));

    let (output, labels) = finding_labels(&config, &["--offline"], KEY_FILES);
    assert!(!process::succeeded(&output.status));
    assert_eq!(
        labels,
        [
            "[api] clients api-clients.json",
            "[collector] partitions cyrus/mail",
            "[curve] keys_dir broker.key",
            "[curve] keys_dir broker.pub",
            "[curve] keys_dir collector.key",
            "[curve] keys_dir dealer.key",
            "[ledger] signing_key archive.key",
            "[plugins.zmq-input] worker.key",
        ],
        "a fresh install lacks its keys, its API client and Cyrus's partition, nothing else:\n{}",
        process::describe(&output)
    );

    // docs/operations.md's first steps; the admin key last (bonnie keys, before it exists, is
    // a bootstrap whatever broker answers on this machine's default ports).
    for args in [
        &["keys", "generate", "broker"][..],
        &["keys", "generate", "dealer"],
        &["keys", "generate", "collector"],
        &["keys", "generate", "worker"],
        &["api-client", "add", "roundcube"],
        &["ledger", "init"],
        &["keys", "generate", "admin"],
    ] {
        succeed(&format!("bonnie {args:?}"), &bonnie(&config, args));
    }
    std::fs::create_dir_all(root.path().join("var/spool/cyrus/mail")).expect("a partition");
    let (output, lines) = check(&config, &["--offline"]);
    succeed("bonnie config check --offline", &output);
    assert!(
        lines.len() == 1 && lines[0].contains("no problem found"),
        "{lines:?}"
    );
}

#[test]
fn the_development_configuration_needs_only_what_scripts_run_makes() {
    let root = tempfile::tempdir().expect("a temporary folder");
    let etc = root.path().join("etc");
    std::fs::create_dir_all(etc.join("var")).expect("etc/var");
    std::fs::create_dir_all(root.path().join("examples")).expect("examples");
    std::fs::copy(
        paths::repo_root().join("examples/cyrus-3.6-scenario.jsonl"),
        root.path().join("examples/cyrus-3.6-scenario.jsonl"),
    )
    .expect("the scenario");
    let config = etc.join("bonnie.toml");
    std::fs::copy(paths::repo_root().join("etc/bonnie.toml"), &config).expect("etc/bonnie.toml");
    install_plugins(&etc.join("var/plugins"));

    let (output, labels) = finding_labels(&config, &["--offline"], KEY_FILES);
    assert!(!process::succeeded(&output.status));
    assert_eq!(
        labels,
        [
            "[api] clients api-clients.json",
            "[curve] keys_dir broker.key",
            "[curve] keys_dir broker.pub",
            "[curve] keys_dir dealer.key",
            "[ledger] signing_key archive.key",
            "[plugins.zmq-input] worker.key",
        ],
        "{}",
        process::describe(&output)
    );
    // scripts/run's first run.
    for role in ["broker", "dealer", "worker", "admin"] {
        succeed(
            &format!("bonnie keys generate {role}"),
            &bonnie(&config, &["keys", "generate", role]),
        );
    }
    succeed("bonnie ledger init", &bonnie(&config, &["ledger", "init"]));
    // scripts/run runs no bonnie-api: its clients file is all that is left, and the daemons
    // scripts/run starts pass.
    let (output, labels) = finding_labels(&config, &["--offline"], KEY_FILES);
    assert_eq!(
        labels,
        ["[api] clients api-clients.json"],
        "{}",
        process::describe(&output)
    );
    let (output, _) = check(&config, &["--offline", "--role", "broker,dealer,worker"]);
    succeed("bonnie config check --role broker,dealer,worker", &output);
}

/// A worker host's folder: zmq-input and sqlite-storage installed, `worker` added to its
/// `[worker]` table and `extra` to the file.
fn worker_host(worker: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("the plugin folder");
    for name in ["bonnie-zmq-input", "bonnie-sqlite-storage"] {
        let library = paths::plugin(name);
        std::fs::copy(&library, plugins.join(library.file_name().unwrap())).expect("a plugin");
    }
    let config = dir.path().join("bonnie.toml");
    std::fs::write(
        &config,
        format!(
            "[worker]\nplugin_dir = \"plugins\"\n{worker}\n\n[curve]\nenabled = false\n\n\
             [plugins.zmq-input]\ncurve = false\n\n[plugins.sqlite-storage]\npath = \"var/bonnie.db\"\n{extra}"
        ),
    )
    .expect("writing the configuration");
    (dir, config)
}

/// The one finding of a failed check, which must name every one of `words`.
fn one_finding(config: &Path, args: &[&str], words: &[&str]) -> String {
    let (output, lines) = check(config, args);
    assert!(
        !process::succeeded(&output.status),
        "a problem is a non-zero exit:\n{}",
        process::describe(&output)
    );
    assert_eq!(lines.len(), 1, "one line: {}", process::describe(&output));
    let line = &lines[0];
    assert!(
        line.starts_with(&format!("{}: ", config.display())),
        "the line names the file: {line}"
    );
    for word in words {
        assert!(line.contains(word), "{word:?} not in: {line}");
    }
    line.clone()
}

#[test]
fn a_worker_host_that_is_right_passes_and_each_problem_is_one_line() {
    let (_dir, config) = worker_host("", "");
    let (output, lines) = check(&config, &["--offline"]);
    succeed("the check of a good worker host", &output);
    assert!(
        lines[0].contains("no problem found") && lines[0].contains("worker"),
        "{lines:?}"
    );

    let (_dir, config) = worker_host("threds = 2", "");
    one_finding(
        &config,
        &["--offline"],
        &[
            "[worker] threds",
            "line 3",
            "unknown field",
            "remove it or correct its name",
        ],
    );

    let (_dir, config) = worker_host("", "\n[plugins.jsonl-output]\npath = \"out.jsonl\"\n");
    one_finding(
        &config,
        &["--offline"],
        &[
            "[plugins.jsonl-output]",
            "not in",
            "plugins",
            "install the plugin",
        ],
    );

    let (_dir, config) = worker_host("", "");
    rewrite(
        &config,
        "curve = false\n",
        "curve = false\nheartbeat_ms = 0\n",
    );
    one_finding(
        &config,
        &["--offline"],
        &[
            "[plugins.zmq-input]",
            "refuses to start",
            "heartbeat_ms",
            "correct [plugins.zmq-input]",
        ],
    );
}

#[test]
fn retention_rules_that_the_timer_would_refuse_are_named() {
    let (_dir, config) = worker_host(
        "",
        "\n[retention]\n[[retention.rule]]\nname = \"mail\"\nkeep = \"seven years\"\n",
    );
    one_finding(
        &config,
        &["--offline"],
        &["[retention]", "rule \"mail\"", "keep"],
    );
    let (_dir, config) = worker_host(
        "",
        "\n[retention]\n[[retention.rule]]\nname = \"mail\"\nkeep = \"7y\"\nkinds = [\"spam\"]\n",
    );
    one_finding(&config, &["--offline"], &["[retention]", "spam"]);
    let (_dir, config) = worker_host(
        "",
        "\n[retention]\ndefault = \"10y\"\n[[retention.rule]]\nname = \"sessions\"\nkinds = [\"sessions\"]\nkeep = \"90d\"\n",
    );
    let (output, _) = check(&config, &["--offline"]);
    assert!(
        process::succeeded(&output.status),
        "{}",
        process::describe(&output)
    );
}

#[test]
fn a_discovery_table_with_an_unknown_zone_or_domain_is_named() {
    let (_dir, config) = worker_host("", "\n[discovery]\ntime_zone = \"Europe/Atlantis\"\n");
    one_finding(
        &config,
        &["--offline"],
        &["[discovery]", "time_zone", "Europe/Atlantis"],
    );
    let (_dir, config) = worker_host("", "\n[discovery]\nlocal_domains = [\"not a domain\"]\n");
    one_finding(&config, &["--offline"], &["[discovery]", "local_domains"]);
    let (_dir, config) = worker_host(
        "",
        "\n[discovery]\ntime_zone = \"Europe/Berlin\"\nlocal_domains = [\"example.org\"]\n",
    );
    let (output, _) = check(&config, &["--offline"]);
    assert!(
        process::succeeded(&output.status),
        "{}",
        process::describe(&output)
    );
}

/// Replaces the first `from` of a configuration file by `to`.
fn rewrite(config: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(config).expect("reading the configuration");
    assert!(text.contains(from), "{from:?} not in {}", config.display());
    std::fs::write(config, text.replacen(from, to, 1)).expect("writing the configuration");
}

#[test]
fn a_secret_key_open_to_every_user_or_damaged_is_named() {
    let (dir, config) = worker_host(
        "",
        "\n[broker]\ndatabase = \"var/broker.db\"\nadmin_address = \"tcp://127.0.0.1:1\"\n",
    );
    rewrite(
        &config,
        "[curve]\nenabled = false\n",
        "[curve]\nenabled = true\nkeys_dir = \"keys\"\n",
    );
    succeed(
        "bonnie keys generate broker",
        &bonnie(&config, &["keys", "generate", "broker"]),
    );
    chmod(&dir.path().join("keys/broker.key"), 0o644);
    one_finding(
        &config,
        &["--offline", "--role", "broker"],
        &[
            "[curve] keys_dir",
            "broker.key",
            "every user",
            "0644",
            "chmod 0600",
        ],
    );
    // Closed, but damaged: read as the broker reads it.
    let key = dir.path().join("keys/broker.key");
    std::fs::write(&key, "public = \"not a key\"\n").unwrap();
    chmod(&key, 0o600);
    one_finding(
        &config,
        &["--offline", "--role", "broker"],
        &[
            "[curve] keys_dir",
            "broker.key",
            "not a usable key",
            "bonnie keys generate",
        ],
    );
}

#[test]
fn a_broker_that_is_not_there_is_named_in_text_and_json() {
    let address = format!("tcp://127.0.0.1:{}", free_port());
    let (_dir, config) = worker_host("", &format!("\n[broker]\nadmin_address = \"{address}\"\n"));
    one_finding(
        &config,
        &["--role", "broker", "--timeout", "1"],
        &[
            "[broker] admin_address",
            "nothing listens",
            &address,
            "start bonnie-broker",
        ],
    );
    let output = bonnie(
        &config,
        &[
            "config",
            "check",
            "--role",
            "broker",
            "--json",
            "--timeout",
            "1",
        ],
    );
    assert!(!process::succeeded(&output.status));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["ok"], false);
    assert_eq!(report["roles"], serde_json::json!(["broker"]));
    assert_eq!(report["findings"][0]["key"], "[broker] admin_address");
    assert_eq!(
        report["findings"][0]["file"],
        config.to_string_lossy().as_ref()
    );
}

#[test]
fn a_wrong_ldap_password_is_named() {
    let ldap = Slapd::start();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let password = dir.path().join("ldap-password");
    std::fs::write(&password, "not-the-password\n").unwrap();
    chmod(&password, 0o600);
    let config = dir.path().join("bonnie.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\nbroker_address = \"tcp://127.0.0.1:{}\"\nimap_address = \"127.0.0.1:{}\"\n\
             partitions = [\".\"]\n\n[collector.ldap]\nurl = \"{}\"\nbind_dn = \"{SERVICE_DN}\"\n\
             bind_password_file = \"ldap-password\"\n\n[curve]\nenabled = false\n",
            free_port(),
            free_port(),
            ldap.url
        ),
    )
    .unwrap();
    let (output, lines) = check(&config, &["--timeout", "2"]);
    assert!(
        !process::succeeded(&output.status),
        "{}",
        process::describe(&output)
    );
    let ldap_lines: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("[collector.ldap]"))
        .collect();
    assert_eq!(ldap_lines.len(), 1, "{}", process::describe(&output));
    for word in [
        "[collector.ldap] bind_dn",
        "refuses the bind",
        SERVICE_DN,
        "bind_password_file",
    ] {
        assert!(
            ldap_lines[0].contains(word),
            "{word:?} not in {}",
            ldap_lines[0]
        );
    }
}

#[test]
fn a_configuration_whose_broker_cyrus_and_directory_run_passes() {
    let ldap = Slapd::start();
    let mut cyrus = Cyrus::new();
    let cluster = Cluster::for_cyrus(&cyrus, &ldap, &[]);
    cyrus.start(Notify::Off);
    let _broker = cluster.start_broker();
    // The test cluster leaves the spool open for user cyrus's exec dealer; a real one is 0750.
    chmod(&cluster.spool_dir(), 0o750);
    let (output, lines) = check(&cluster.config(), &[]);
    succeed("bonnie config check", &output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    for word in [
        "no problem found",
        "broker, dealer, collector, worker",
        "its peers answer",
    ] {
        assert!(lines[0].contains(word), "{word:?} not in {}", lines[0]);
    }
}

#[test]
fn the_elasticsearch_server_of_an_enabled_es_output_is_asked() {
    let mut server = SearchServer::start();
    let (dir, config) = worker_host(
        "",
        &format!("\n[plugins.es-output]\nurl = \"{}\"\n", server.url),
    );
    // Where zmq-input connects, something listens (only Elasticsearch is at issue here).
    let broker = std::net::TcpListener::bind("127.0.0.1:0").expect("a listening socket");
    let endpoint = format!("tcp://{}", broker.local_addr().unwrap());
    rewrite(
        &config,
        "curve = false\n",
        &format!(
            "curve = false\nworker_address = \"{endpoint}\"\ncontroller_address = \"{endpoint}\"\n"
        ),
    );
    let library = paths::plugin("bonnie-es-output");
    std::fs::copy(
        &library,
        dir.path()
            .join("plugins")
            .join(library.file_name().unwrap()),
    )
    .expect("installing es-output");
    let (output, _) = check(&config, &["--role", "worker"]);
    succeed("the check with the search server up", &output);
    server.kill();
    one_finding(
        &config,
        &["--role", "worker"],
        &[
            "[plugins.es-output] url",
            "cannot reach Elasticsearch",
            &server.url,
        ],
    );
}

#[test]
fn a_worker_whose_broker_is_not_there_is_told_so() {
    let (_dir, config) = worker_host("", "");
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    rewrite(
        &config,
        "curve = false\n",
        &format!(
            "curve = false\nworker_address = \"{endpoint}\"\ncontroller_address = \"{endpoint}\"\n"
        ),
    );
    let (output, lines) = check(&config, &["--role", "worker"]);
    assert!(!process::succeeded(&output.status));
    assert_eq!(lines.len(), 2, "{}", process::describe(&output));
    for (line, key) in lines.iter().zip(["worker_address", "controller_address"]) {
        assert!(
            line.contains(&format!(
                "[plugins.zmq-input] {key}: nothing listens at {endpoint}"
            )),
            "{line}"
        );
    }
}
