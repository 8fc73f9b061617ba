//! `bonnie keys` on a host making its first keys while another bonnie's broker already answers
//! at the configured admin address (a first run of scripts/run beside a running bonnie): the
//! keys up to and including this host's admin key are made, said to be unaudited; once the
//! admin key exists, a key change that the answering broker does not keep is refused, and one
//! that this host's own broker keeps is in its audit records.

use bonnie_tests::{cluster::Cluster, process};
use serde_json::Value;

/// The `admin_address` line of a cluster's configuration.
fn admin_address(cluster: &Cluster) -> String {
    let config = std::fs::read_to_string(cluster.config()).expect("reading the configuration");
    config
        .lines()
        .find_map(|line| line.strip_prefix("admin_address = "))
        .map(|quoted| quoted.trim_matches('"').to_string())
        .expect("the cluster's admin address")
}

#[test]
fn first_keys_are_made_beside_another_broker_and_later_changes_must_be_audited() {
    let running = Cluster::new(&[], "");
    running.enable_curve("imap1");
    let _broker = running.start_broker();

    // A second bonnie configured with the same admin address and a keys folder of its own,
    // still empty.
    let fresh = tempfile::tempdir().expect("a temporary folder");
    let config = fresh.path().join("bonnie.toml");
    std::fs::write(
        &config,
        format!(
            "[broker]\nadmin_address = \"{}\"\n\n[curve]\nenabled = true\nkeys_dir = \"keys\"\n",
            admin_address(&running)
        ),
    )
    .expect("writing the configuration");
    let bonnie = |args: &[&str]| {
        let mut command = std::process::Command::new(bonnie_tests::paths::bin("bonnie"));
        command
            .arg("--config")
            .arg(&config)
            .args(["--timeout", "1"])
            .args(args);
        process::run("bonnie", &mut command)
    };

    // scripts/run's order: the broker's key, then the dealer's, the worker's, the admin's.
    for role in ["broker", "dealer", "worker", "admin"] {
        let output = bonnie(&["keys", "generate", role]);
        assert!(
            process::succeeded(&output.status),
            "`bonnie keys generate {role}` was refused before this host had an admin key:\n{}",
            process::describe(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("is not audited") && stderr.contains("no admin key yet"),
            "the bootstrap change says it is unaudited and why:\n{stderr}"
        );
        assert!(fresh.path().join(format!("keys/{role}.key")).exists());
    }

    // Now this host has an admin key: the broker answering does not know it, so the change
    // cannot be audited there and is not made.
    let refused = bonnie(&["keys", "generate", "collector", "imap2"]);
    assert!(
        !process::succeeded(&refused.status),
        "a key change with an admin key and an answering broker must be audited:\n{}",
        process::describe(&refused)
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("audit record cannot be written"),
        "{}",
        process::describe(&refused)
    );
    assert!(!fresh.path().join("keys/collector.key").exists());

    // The running bonnie's own key change is audited by its broker.
    let public = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
    let allowed = running.bonnie(&["keys", "allow", "worker", "worker2", public]);
    assert!(
        process::succeeded(&allowed.status),
        "{}",
        process::describe(&allowed)
    );
    let audit = running.bonnie(&["audit", "--json"]);
    assert!(
        process::succeeded(&audit.status),
        "{}",
        process::describe(&audit)
    );
    let records: Vec<Value> = serde_json::from_slice(&audit.stdout).expect("audit is JSON");
    assert!(
        records
            .iter()
            .any(|r| r["action"] == "keys allow" && r["params"]["name"] == "worker2"),
        "{records:?}"
    );
}
