//! The broker lets no one in where they don't belong, tried as an attacker on the same host
//! would, against a real broker with CURVE over real ZeroMQ: a forged NOTIFY without an
//! allowed key, a fake worker with a dealer's key, fake collectors, an outcome for a job the
//! sender does not hold, a collector's identity taken by another, and a stranger's admin
//! command are all refused and counted in `bonnie status`; without CURVE the broker will not
//! bind beyond loopback. The attackers are sockets of this test process (a peer that
//! misbehaves on purpose is exactly what the real binaries never do).

use std::time::Duration;

use bonnie_core::{
    keys::{self, KeyDir},
    transport::{self, ClientKeys, Socket},
};
use bonnie_tests::{cluster::Cluster, process};
use serde_json::{Value, json};

/// The IMAP host the cluster's dealer and collector keys are for.
const HOST: &str = "imap1";

fn login(n: usize) -> String {
    json!({ "event": "Login", "timestamp": "2026-11-28T17:13:17.506Z", "user": "john.doe@example.org", "n": n })
        .to_string()
}

/// Runs the real dealer (exec mode, as Cyrus does) with Login `n`; it must succeed.
fn deal(cluster: &Cluster, n: usize) {
    let output = cluster.deal(login(n).as_bytes());
    assert!(
        process::succeeded(&output.status),
        "{}",
        process::describe(&output)
    );
}

fn curve_cluster(plugins: &[&str], extra: &str) -> Cluster {
    let cluster = Cluster::new(plugins, extra);
    cluster.enable_curve(HOST);
    cluster
}

fn config(cluster: &Cluster) -> bonnie_core::Config {
    bonnie_core::Config::load(&cluster.config()).expect("the cluster's configuration")
}

/// The keys of this host's `role` (`keys/<role>.key`) with the broker's public key.
fn own_keys(cluster: &Cluster, role: &str) -> ClientKeys {
    let dir = KeyDir::new(&config(cluster).curve);
    keys::client_keys_from(&dir.pair_file(role), &dir.broker_public_file()).expect("the keys")
}

/// A key pair the broker never heard of, with the broker's public key.
fn stranger_keys(cluster: &Cluster) -> ClientKeys {
    ClientKeys {
        pair: transport::generate_keypair().unwrap(),
        ..own_keys(cluster, "admin")
    }
}

/// Allows a new key pair in `role` under `name` (before the broker starts) and returns it.
fn allow_new_key(cluster: &Cluster, role: &str, name: &str) -> ClientKeys {
    let keys = stranger_keys(cluster);
    let output = cluster.bonnie(&["keys", "allow", role, name, &keys.pair.public]);
    assert!(output.status.success(), "{}", process::describe(&output));
    keys
}

fn peer(
    context: &transport::Context,
    address: &str,
    identity: &str,
    keys: Option<&ClientKeys>,
) -> Socket {
    transport::dealer_with(context, address, identity.as_bytes(), Duration::ZERO, keys)
        .expect("a socket")
}

fn send(socket: &Socket, frames: &[&[u8]]) {
    let frames: Vec<Vec<u8>> = frames.iter().map(|f| f.to_vec()).collect();
    transport::send(socket, &frames).expect("queued");
}

/// Offers `frames` to a broker that refuses the peer's key: once it has refused the handshake,
/// the socket has no connection left to queue on and says so (EAGAIN), which is the refusal
/// the test waits for, not a fault of the test.
fn offer(socket: &Socket, frames: &[&[u8]]) {
    let frames: Vec<Vec<u8>> = frames.iter().map(|f| f.to_vec()).collect();
    match transport::send(socket, &frames) {
        Ok(()) | Err(transport::Error::EAGAIN) => {}
        Err(e) => panic!("offering {:?}: {e}", String::from_utf8_lossy(&frames[0])),
    }
}

/// A router's counter in `bonnie status`.
fn count(cluster: &Cluster, router: &str, counter: &str) -> u64 {
    cluster.status()["routers"][router][counter]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {router}.{counter} in bonnie status"))
}

fn wait_for_count(cluster: &Cluster, router: &str, counter: &str, at_least: u64) {
    process::wait_until(&format!("{router}.{counter} >= {at_least}"), || {
        count(cluster, router, counter) >= at_least
    });
}

/// Nothing arrived on any of `sockets` (everything the broker sent before the moment this is
/// called has long arrived on loopback: the callers first wait for the broker to have
/// counted what came after).
fn nothing_received(sockets: &[&Socket]) -> bool {
    sockets
        .iter()
        .all(|s| transport::try_recv(s).expect("receiving").is_none())
}

/// Every job of the job store: (id, host, state).
fn jobs(cluster: &Cluster) -> Vec<(String, String, String)> {
    let db = cluster.job_store();
    let mut stmt = db
        .prepare("SELECT id, host, state FROM jobs ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_forged_notify_without_an_allowed_key_is_refused_counted_and_never_stored() {
    let cluster = curve_cluster(&[], "");
    let _broker = cluster.start_broker();
    let _worker = cluster.start_worker("worker-1");
    let address = config(&cluster).broker.dealer_address;
    let context = transport::context();
    // The forged AclChange of the security test: it carries its own `acl` field.
    let forged =
        json!({ "event": "AclChange", "uri": "imap://imap1/user/john.doe@example.org/Calendar",
        "user": "jane.doe@example.org", "acl": "jane.doe@example.org lrswipkxtecdan" })
        .to_string();
    let no_key = peer(&context, &address, "Dealer-imap1-1", None);
    let unknown_key = peer(
        &context,
        &address,
        "Dealer-imap1-2",
        Some(&stranger_keys(&cluster)),
    );
    let worker_key = peer(
        &context,
        &address,
        "Dealer-imap1-3",
        Some(&own_keys(&cluster, "worker")),
    );
    for (n, socket) in [&no_key, &unknown_key, &worker_key].into_iter().enumerate() {
        send(
            socket,
            &[
                b"NOTIFY",
                format!("forged-{n}").as_bytes(),
                forged.as_bytes(),
            ],
        );
    }
    wait_for_count(&cluster, "dealer", "refused_connections", 3);

    // The real dealer, with its key, is let in; a peer with the dealer's key that names
    // another host in its identity is still filed under the host its key belongs to.
    deal(&cluster, 1);
    let liar = peer(
        &context,
        &address,
        "Dealer-imap2-7",
        Some(&own_keys(&cluster, "dealer")),
    );
    send(&liar, &[b"NOTIFY", b"liar-1", login(2).as_bytes()]);
    process::wait_until("both logins archived", || cluster.archived() >= 2);
    cluster.wait_until_drained();

    let stored = jobs(&cluster);
    assert_eq!(
        stored.len(),
        2,
        "only the real dealer's submissions: {stored:?}"
    );
    assert!(
        stored
            .iter()
            .all(|(id, host, _)| !id.starts_with("forged") && host == HOST),
        "{stored:?}"
    );
    assert!(
        cluster
            .log_records()
            .iter()
            .all(|r| r["event"] != "AclChange")
    );
    assert!(
        nothing_received(&[&no_key, &unknown_key, &worker_key]),
        "no ACK for the refused"
    );
    assert!(cluster.log("broker").contains("Refused a connection"));
}

#[test]
fn a_fake_worker_with_a_dealers_key_takes_no_job() {
    let cluster = curve_cluster(&[], "");
    let _broker = cluster.start_broker();
    deal(&cluster, 1);
    let config = config(&cluster);
    let context = transport::context();
    let dealer_keys = own_keys(&cluster, "dealer");
    let control = peer(
        &context,
        &config.broker.controller_address,
        "Worker-fake-1",
        Some(&dealer_keys),
    );
    let data = peer(
        &context,
        &config.broker.worker_address,
        "Worker-fake-1",
        Some(&dealer_keys),
    );
    offer(&control, &[b"READY", b"10"]);
    let (id, _, _) = jobs(&cluster).pop().expect("the job");
    offer(&data, &[b"GET", id.as_bytes()]);
    wait_for_count(&cluster, "controller", "refused_connections", 1);
    wait_for_count(&cluster, "worker", "refused_connections", 1);
    let status = cluster.status();
    assert_eq!(status["workers"], json!([]), "the fake is no worker");
    assert_eq!(status["jobs"]["PENDING"], 1);
    assert!(nothing_received(&[&control, &data]), "no TAKE, no JOB");

    let _worker = cluster.start_worker("worker-1");
    process::wait_until("the job done by the real worker", || {
        cluster.archived() == 1
    });
    cluster.wait_until_drained();
}

/// A cluster whose Logins need the collector (GETUSERDATA) of host imap1.
fn collecting_cluster() -> Cluster {
    curve_cluster(
        &["bonnie-sessions"],
        "[plugins.sessions]\ncollect = [\"GETUSERDATA\"]\n",
    )
}

fn collector_ready(socket: &Socket, host: &str) {
    send(
        socket,
        &[b"READY", host.as_bytes(), b"GETUSERDATA FETCH", b"10"],
    );
}

#[test]
fn fake_collectors_get_no_collect_jobs() {
    let cluster = collecting_cluster();
    let other_host = allow_new_key(&cluster, "collector", "imap2");
    let _broker = cluster.start_broker();
    let _worker = cluster.start_worker("worker-1");
    let address = config(&cluster).broker.collector_address;
    let context = transport::context();
    let no_key = peer(&context, &address, "Collector-aaa-1", None);
    let worker_key = peer(
        &context,
        &address,
        "Collector-aaa-2",
        Some(&own_keys(&cluster, "worker")),
    );
    // A real collector key, but for another host: it may not serve imap1.
    let wrong_host = peer(&context, &address, "Collector-aaa-3", Some(&other_host));
    for socket in [&no_key, &worker_key, &wrong_host] {
        collector_ready(socket, HOST);
    }
    deal(&cluster, 1);
    process::wait_until("the job waiting for a collector", || {
        cluster.status()["waiting_for_collectors"] == 1
    });
    wait_for_count(&cluster, "collector", "refused_connections", 2);
    wait_for_count(&cluster, "collector", "refused_messages", 1);
    // Heartbeats keep coming to wrong_host (it is connected), so read its COLLECTs only.
    for socket in [&no_key, &worker_key, &wrong_host] {
        while let Some(frames) = transport::try_recv(socket).unwrap() {
            assert_ne!(frames[0], b"COLLECT", "a fake collector got a job");
        }
    }
    assert_eq!(cluster.status()["collectors"], json!([]));
    assert_eq!(cluster.status()["waiting_for_collectors"], 1);
}

#[test]
fn a_collectors_identity_taken_by_another_does_not_take_its_place() {
    let cluster = collecting_cluster();
    let other_host = allow_new_key(&cluster, "collector", "imap2");
    let _broker = cluster.start_broker();
    let _worker = cluster.start_worker("worker-1");
    // The real collector; no LDAP answers here, so it postpones every job it gets.
    let _collector = cluster.start_collector("collector");
    let status = cluster.status();
    let real = status["collectors"][0].clone();
    let identity = real["identity"]
        .as_str()
        .expect("the collector's identity")
        .to_string();
    assert_eq!(real["host"], HOST);

    let address = config(&cluster).broker.collector_address;
    let context = transport::context();
    let no_key = peer(&context, &address, &identity, None);
    let another_key = peer(&context, &address, &identity, Some(&other_host));
    for socket in [&no_key, &another_key] {
        collector_ready(socket, HOST);
        send(socket, &[b"HEARTBEAT"]);
    }
    wait_for_count(&cluster, "collector", "refused_connections", 1);

    deal(&cluster, 1);
    // Only the collector's POSTPONE gives the job a reason that starts with "collector:".
    process::wait_until("the real collector to answer the job", || {
        cluster
            .job_store()
            .query_row(
                "SELECT count(*) FROM jobs WHERE reason LIKE 'collector:%'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap_or(0)
            > 0
    });
    for socket in [&no_key, &another_key] {
        while let Some(frames) = transport::try_recv(socket).unwrap() {
            assert_ne!(
                frames[0], b"COLLECT",
                "the impostor got the real collector's job"
            );
        }
    }
    let collectors = cluster.status()["collectors"].clone();
    let listed: Vec<&Value> = collectors.as_array().unwrap().iter().collect();
    assert_eq!(listed.len(), 1, "{collectors}");
    assert_eq!(listed[0]["identity"], identity.as_str());
    assert_eq!(listed[0]["host"], HOST);
}

#[test]
fn a_worker_cannot_fail_or_finish_a_job_it_does_not_hold() {
    let cluster = curve_cluster(&[], "");
    let intruder = allow_new_key(&cluster, "worker", "intruder");
    let _broker = cluster.start_broker();
    deal(&cluster, 1);
    let (id, _, _) = jobs(&cluster).pop().expect("the job");

    let context = transport::context();
    let address = config(&cluster).broker.controller_address;
    // An authenticated worker that takes nothing, and reports on a job it was never given.
    let control = peer(&context, &address, "Worker-intruder-1", Some(&intruder));
    send(&control, &[b"READY", b"0"]);
    send(&control, &[b"FAIL", id.as_bytes(), b"forged failure"]);
    send(&control, &[b"DONE", id.as_bytes()]);
    wait_for_count(&cluster, "controller", "refused_messages", 2);
    let status = cluster.status();
    assert_eq!(status["jobs"]["FAILED"], 0, "{status}");
    assert_eq!(status["jobs"]["DONE"], 0, "{status}");
    assert!(
        cluster
            .log("broker")
            .contains("an outcome for a job it does not hold")
    );

    let _worker = cluster.start_worker("worker-1");
    process::wait_until("the job done by its real holder", || {
        cluster.archived() == 1
    });
    cluster.wait_until_drained();
    let states: Vec<String> = jobs(&cluster).into_iter().map(|j| j.2).collect();
    assert_eq!(states, ["DONE"]);
}

#[test]
fn a_strangers_admin_command_is_refused_and_counted() {
    let cluster = curve_cluster(&[], "");
    let _broker = cluster.start_broker();
    let text = std::fs::read_to_string(cluster.config()).unwrap();
    // A stranger with a key of its own (and the broker's public key, which is no secret).
    let stranger_dir = cluster.path().join("stranger");
    std::fs::create_dir(&stranger_dir).unwrap();
    std::fs::copy(
        cluster.path().join("keys/broker.pub"),
        stranger_dir.join("broker.pub"),
    )
    .unwrap();
    KeyDir::write_pair(
        &stranger_dir.join("admin.key"),
        &transport::generate_keypair().unwrap(),
        "a stranger",
        false,
    )
    .unwrap();
    let with_key = cluster.path().join("stranger.toml");
    std::fs::write(
        &with_key,
        text.replace("keys_dir = \"keys\"", "keys_dir = \"stranger\""),
    )
    .unwrap();
    // And one without CURVE at all.
    let without = cluster.path().join("plain.toml");
    std::fs::write(
        &without,
        text.replace("[curve]\nenabled = true", "[curve]\nenabled = false"),
    )
    .unwrap();
    for config in [&with_key, &without] {
        let output = process::run(
            "bonnie status",
            std::process::Command::new(bonnie_tests::paths::bin("bonnie"))
                .arg("--config")
                .arg(config)
                .args(["status", "--timeout", "2"]),
        );
        assert!(!output.status.success(), "{}", process::describe(&output));
        assert!(output.stdout.is_empty(), "no status for a stranger");
    }
    wait_for_count(&cluster, "admin", "refused_connections", 2);
    // The administrator's own key still works.
    assert!(cluster.status()["jobs"].is_object());
}

#[test]
fn without_curve_the_broker_will_not_bind_beyond_loopback() {
    let cluster = Cluster::new(&[], "");
    let text = std::fs::read_to_string(cluster.config()).unwrap();
    let open = text.replacen(
        "dealer_address = \"tcp://127.0.0.1:",
        "dealer_address = \"tcp://0.0.0.0:",
        1,
    );
    assert_ne!(open, text);
    std::fs::write(cluster.config(), &open).unwrap();
    let mut broker = std::process::Command::new(bonnie_tests::paths::bin("bonnie-broker"));
    broker.arg("--config").arg(cluster.config());
    let output = process::run("bonnie-broker", &mut broker);
    assert!(!output.status.success(), "{}", process::describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("can be reached from other hosts"),
        "{stderr}"
    );

    // With CURVE the same address is fine.
    cluster.enable_curve(HOST);
    let _broker = cluster.start_broker();
    deal(&cluster, 1);
    process::wait_until("the job stored", || jobs(&cluster).len() == 1);
}

#[test]
fn without_curve_an_ipc_socket_must_sit_in_a_folder_closed_to_others() {
    use std::os::unix::fs::PermissionsExt as _;
    let cluster = Cluster::new(&[], "");
    let tcp = config(&cluster).broker.dealer_address;
    let folder = cluster.path().join("sockets");
    std::fs::create_dir(&folder).unwrap();
    let ipc = format!("ipc://{}", folder.join("dealer").display());
    let text = std::fs::read_to_string(cluster.config()).unwrap();
    std::fs::write(cluster.config(), text.replace(&tcp, &ipc)).unwrap();

    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut broker = std::process::Command::new(bonnie_tests::paths::bin("bonnie-broker"));
    broker.arg("--config").arg(cluster.config());
    let output = process::run("bonnie-broker", &mut broker);
    assert!(!output.status.success(), "{}", process::describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("must be closed to others"), "{stderr}");

    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o750)).unwrap();
    let _broker = cluster.start_broker();
    let _worker = cluster.start_worker("worker-1");
    deal(&cluster, 1);
    process::wait_until("the login archived over ipc://", || cluster.archived() == 1);
}

#[test]
fn keys_revoked_or_allowed_count_from_the_brokers_sighup() {
    let cluster = curve_cluster(&[], "");
    let broker = cluster.start_broker();
    let _worker = cluster.start_worker("worker-1");
    let dealer = own_keys(&cluster, "dealer");
    let revoke = cluster.bonnie(&["keys", "revoke", "dealer", HOST]);
    assert!(revoke.status.success(), "{}", process::describe(&revoke));
    broker.signal("HUP");
    process::wait_until("the keys read again", || {
        cluster.log("broker").matches("Allowed keys read.").count() >= 2
    });
    // The dealer is shut out: its notification waits in its spool.
    deal(&cluster, 1);
    wait_for_count(&cluster, "dealer", "refused_connections", 1);
    assert!(jobs(&cluster).is_empty());
    assert!(cluster.spooled(login(1).as_bytes()));

    let allow = cluster.bonnie(&["keys", "allow", "dealer", HOST, &dealer.pair.public]);
    assert!(allow.status.success(), "{}", process::describe(&allow));
    broker.signal("HUP");
    process::wait_until("the keys read again", || {
        cluster.log("broker").matches("Allowed keys read.").count() >= 3
    });
    process::wait_until("the spool flushed", || cluster.flush().status.success());
    process::wait_until("the login archived", || cluster.archived() == 1);
    assert_eq!(jobs(&cluster)[0].1, HOST);
}

#[test]
fn with_curve_the_daemon_dealer_and_workers_reconnect_to_a_restarted_broker() {
    let cluster = curve_cluster(&[], "");
    let broker = cluster.start_broker();
    let _worker = cluster.start_worker("worker-1");
    let _daemon = cluster.start_dealer_daemon();
    let send = |n: usize| {
        let mut stream =
            std::os::unix::net::UnixStream::connect(cluster.dealer_socket()).expect("the daemon");
        std::io::Write::write_all(
            &mut stream,
            &bonnie_tests::cluster::dlist_request(&login(n)),
        )
        .unwrap();
        let mut answer = [0u8; 8];
        std::io::Read::read_exact(&mut stream, &mut answer).unwrap();
        assert_eq!(&answer, b"OK NIL\r\n");
    };
    send(1);
    process::wait_until("the first login archived", || cluster.archived() == 1);
    broker.signal("KILL");
    drop(broker.wait());
    send(2);
    let _broker = cluster.start_broker();
    send(3);
    process::wait_until("every login archived once", || cluster.archived() == 3);
    cluster.wait_until_drained();
    assert!(jobs(&cluster).iter().all(|(_, host, _)| host == HOST));
}
