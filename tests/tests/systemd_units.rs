//! The systemd units of `packaging/systemd/` pass `systemd-analyze verify`, and the
//! configuration the package installs (`packaging/bonnie.toml`) loads and keeps every file a
//! daemon writes inside the folders the units let it write.

use std::path::{Path, PathBuf};
use std::process::Command;

use bonnie_core::Config;
use bonnie_tests::paths;

/// Every unit the package installs, with the binary its `ExecStart` runs.
const UNITS: [(&str, &str); 5] = [
    ("bonnie-broker.service", "bonnie-broker"),
    ("bonnie-dealer.service", "bonnie-dealer"),
    ("bonnie-collector.service", "bonnie-collector"),
    ("bonnie-worker@.service", "bonnie-worker"),
    ("bonnie-api.service", "bonnie-api"),
];

/// The folders the units' `ReadWritePaths=` (and `RuntimeDirectory=bonnie`) open under
/// `ProtectSystem=strict`.
const WRITABLE: [&str; 3] = ["/var/lib/bonnie", "/var/log/bonnie", "/run/bonnie"];

fn unit_text(name: &str) -> String {
    let path = paths::repo_root().join("packaging/systemd").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn systemd_analyze() -> PathBuf {
    let path = PathBuf::from("/usr/bin/systemd-analyze");
    assert!(
        path.exists(),
        "systemd-analyze is not installed: `apt-get install -y systemd`"
    );
    path
}

#[test]
fn every_unit_passes_systemd_analyze_verify() {
    let analyze = systemd_analyze();
    // verify insists that ExecStart's binary exists: the copies run this build's binaries
    // from where cargo put them, with every other line as shipped.
    let dir = tempfile::tempdir().expect("a temporary folder");
    for (unit, binary) in UNITS {
        let text = unit_text(unit);
        let installed = format!("/usr/bin/{binary} ");
        assert!(
            text.contains(&format!("ExecStart={installed}")),
            "{unit} does not start {installed}"
        );
        let built = format!("{} ", paths::bin(binary).display());
        let copy = dir.path().join(unit);
        std::fs::write(&copy, text.replace(&installed, &built)).expect("writing the unit's copy");

        let out = Command::new(&analyze)
            .arg("verify")
            .arg(&copy)
            .output()
            .expect("running systemd-analyze verify");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // verify exits 0 on an unknown or misspelt directive, which it only reports: any
        // line it prints is a fault of the unit.
        assert!(
            out.status.success() && stderr.trim().is_empty() && out.stdout.is_empty(),
            "systemd-analyze verify {unit}: {}\n{stderr}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// A timer and its oneshot service (`<name>.timer`, `<name>.service` running `bonnie <args>`)
/// pass verify, run daily as bonnie, hardened.
fn check_timer(name: &str, args: &str) {
    let analyze = systemd_analyze();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (service_unit, timer_unit) = (format!("{name}.service"), format!("{name}.timer"));
    let service = unit_text(&service_unit);
    let installed = "/usr/bin/bonnie ";
    assert!(
        service.contains(&format!(
            "ExecStart={installed}--config /etc/bonnie/bonnie.toml {args}"
        )),
        "{service}"
    );
    let built = format!("{} ", paths::bin("bonnie").display());
    std::fs::write(
        dir.path().join(&service_unit),
        service.replace(installed, &built),
    )
    .unwrap();
    std::fs::write(dir.path().join(&timer_unit), unit_text(&timer_unit)).unwrap();
    for unit in [&service_unit, &timer_unit] {
        let out = Command::new(&analyze)
            .arg("verify")
            .arg(dir.path().join(unit))
            .output()
            .expect("running systemd-analyze verify");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty() && out.stdout.is_empty(),
            "systemd-analyze verify {unit}: {}\n{stderr}",
            out.status
        );
    }
    let lines: Vec<&str> = service.lines().map(str::trim).collect();
    for wanted in [
        "Type=oneshot",
        "User=bonnie",
        "Group=bonnie",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
    ] {
        assert!(lines.contains(&wanted), "{service_unit} lacks `{wanted}`");
    }
    assert!(unit_text(&timer_unit).contains("OnCalendar=daily"));
}

#[test]
fn the_retention_timer_and_its_service_pass_verify_and_purge_as_bonnie() {
    check_timer("bonnie-retention", "retention apply --yes");
}

#[test]
fn the_reconcile_timer_and_its_service_pass_verify_and_reconcile_as_bonnie() {
    check_timer("bonnie-reconcile", "reconcile --all");
}

#[test]
fn every_unit_is_a_hardened_notify_service_as_bonnie() {
    for (unit, _) in UNITS {
        let text = unit_text(unit);
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for wanted in [
            "Type=notify",
            "User=bonnie",
            "Restart=on-failure",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "ReadWritePaths=/var/lib/bonnie /var/log/bonnie",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
            "CapabilityBoundingSet=",
            "SystemCallFilter=@system-service",
        ] {
            assert!(lines.contains(&wanted), "{unit} lacks `{wanted}`");
        }
        assert!(
            lines.iter().any(|l| l.starts_with("WatchdogSec=")),
            "{unit} has no watchdog"
        );
        // The configuration is root:bonnie 0640: the daemon needs the group.
        assert!(
            lines.contains(&"Group=bonnie") || lines.contains(&"SupplementaryGroups=bonnie"),
            "{unit} runs without group bonnie, which /etc/bonnie/bonnie.toml needs"
        );
    }
    // Only the broker does something on SIGHUP (it reads the allowed keys again).
    assert!(unit_text("bonnie-broker.service").contains("ExecReload=/bin/kill -HUP $MAINPID"));
}

fn assert_writable(what: &str, path: &Path) {
    assert!(
        WRITABLE.iter().any(|dir| path.starts_with(dir)),
        "{what} = {} is outside the folders the units may write ({WRITABLE:?})",
        path.display()
    );
}

#[test]
fn packaged_configuration_loads_and_writes_only_where_the_units_allow() {
    let mut config = Config::load(&paths::repo_root().join("packaging/bonnie.toml"))
        .unwrap_or_else(|e| panic!("packaging/bonnie.toml: {e}"));
    // Every daemon reads the secret files named at start: a fresh install has none.
    config
        .load_secrets()
        .unwrap_or_else(|e| panic!("packaging/bonnie.toml on a fresh install: {e}"));
    assert_eq!(
        config.worker.plugin_dir,
        Path::new("/usr/lib/bonnie/plugins")
    );
    assert_writable("[broker] database", &config.broker.database);
    assert_writable("[dealer] spool_dir", &config.dealer.spool_dir);
    assert_writable("[dealer] socket", &config.dealer.socket);
    assert_writable("[api] clients", &config.api.clients);
    assert_writable("[api] audit_log", &config.api.audit_log);
    let publish = config
        .ledger
        .publish_dir
        .as_deref()
        .expect("[ledger] publish_dir");
    assert_writable("[ledger] publish_dir", publish);
    let storage = &config.plugins["sqlite-storage"];
    for key in ["path", "payload_dir"] {
        let value = storage[key].as_str().expect("a path");
        assert_writable(&format!("[plugins.sqlite-storage] {key}"), Path::new(value));
    }
}

#[test]
fn the_debian_package_ships_every_plugin_of_the_workspace() {
    let manifest =
        std::fs::read_to_string(paths::repo_root().join("cli/Cargo.toml")).expect("cli/Cargo.toml");
    let mut packaged: Vec<String> = manifest
        .lines()
        .filter(|l| l.contains("usr/lib/bonnie/plugins/"))
        .filter_map(|l| l.split("target/release/").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect();
    packaged.sort();
    let shipped: Vec<String> = paths::shipped_plugins()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        packaged, shipped,
        "the package's plugin assets in cli/Cargo.toml"
    );
}
