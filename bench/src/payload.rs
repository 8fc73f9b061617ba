//! Payload ingest on a real Cyrus 3.6 spool: the body-text corpus (mostly messages of a few
//! to 20 KB, every 25th of about 2.7 MB and every 100th of about 11 MB, with text and binary
//! attachments) is delivered to Cyrus over LMTP (every tenth to three mailboxes at once, so
//! that the store keeps it once) and IMAP APPEND. Cyrus notifies the dealer daemon, which
//! hands the MessageNew and MessageAppend notifications to the broker. Then the collector
//! (reading the spool files) and the workers (every archive handler, SQLite: payloads
//! compressed and deduplicated, body text indexed) start, and the clock runs until the broker
//! holds no unfinished job. Delivery is timed on its own: Cyrus is slower than bonnie here.

use std::{
    os::unix::fs::PermissionsExt as _,
    time::{Duration, Instant},
};

use anyhow::bail;
use bonnie_tests::cyrus::{ADMIN, Cyrus, Notify};
use serde_json::{Value, json};

use crate::{chaos::ARCHIVE_HANDLERS, lab::Lab};

/// Mailboxes the corpus is delivered to.
const USERS: usize = 10;

fn user(n: usize) -> String {
    format!("user{}@example.org", n % USERS)
}

/// What the run measures.
pub struct Settings {
    /// Messages of the corpus (deliveries to several mailboxes count once).
    pub messages: usize,
    /// Worker processes.
    pub workers: usize,
    /// Whether the broker signs checkpoints of the verifiable log (an archive key is made).
    pub ledger: bool,
    /// Whether the workers also run the DLP handler with the shipped rules.
    pub dlp: bool,
}

/// A lab whose workers run every archive handler, messageappend fetching each message through
/// the collector, which reads Cyrus's spool (and IMAP as the admin where the spool fails).
pub(crate) fn payload_lab(cyrus: &Cyrus, ledger: bool, dlp: bool) -> anyhow::Result<Lab> {
    let mut libraries = vec!["libbonnie_zmq_input.so", "libbonnie_sqlite_storage.so"];
    libraries.extend(ARCHIVE_HANDLERS);
    if dlp {
        libraries.push("libbonnie_dlp_plugin.so");
    }
    let mut collector = format!(
        "imap_address = \"{}\"\nimap_admin = \"{ADMIN}\"\nimap_password_file = \"imap-password\"\n\
         partitions = [\"{}\"]\n\n[plugins.messageappend]\ncollect = [\"FETCH\"]\n",
        cyrus.imap_address(),
        cyrus.spool().display()
    );
    if ledger {
        collector.push_str(crate::ledger::LEDGER);
    }
    let lab = Lab::with(&libraries, &collector)?;
    if ledger {
        crate::ledger::init(&lab)?;
    }
    let password = lab.path().join("imap-password");
    std::fs::write(&password, "secret\n")?;
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600))?;
    crate::cyrus::open_to_cyrus(&lab)?;
    Ok(lab)
}

/// The broker's jobs that match `condition` (SQL on its `jobs` table).
pub(crate) fn jobs(lab: &Lab, condition: &str) -> anyhow::Result<u64> {
    let db = rusqlite::Connection::open_with_flags(
        lab.path().join("var/broker.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let sql = format!("SELECT count(*) FROM jobs WHERE {condition}");
    Ok(db.query_row(&sql, [], |r| r.get::<_, i64>(0))? as u64)
}

/// Jobs waiting for a worker that bring a new message (Cyrus's notification, before the
/// collector added the message to it).
const QUEUED_NEW_MESSAGES: &str = "state = 'PENDING' AND (CAST(notification AS TEXT) LIKE '%\"event\":\"MessageNew\"%' \
     OR CAST(notification AS TEXT) LIKE '%\"event\":\"MessageAppend\"%')";

/// Polls `progress` every 100 ms until it says done; fails once its count did not change
/// for a minute.
pub(crate) fn wait_for(
    what: &str,
    mut progress: impl FnMut() -> anyhow::Result<(u64, bool)>,
) -> anyhow::Result<()> {
    let mut last = (u64::MAX, Instant::now());
    loop {
        let (count, done) = progress()?;
        if done {
            return Ok(());
        }
        if count != last.0 {
            last = (count, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(60) {
            bail!("waiting for {what}: stuck at {count}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the ingest once and returns its figures.
pub fn ingest(settings: &Settings) -> anyhow::Result<Value> {
    Ok(ingest_into(settings)?.0)
}

/// Runs the ingest once; its figures, and the lab with the archive it made (its processes
/// stopped).
pub fn ingest_into(settings: &Settings) -> anyhow::Result<(Value, Lab)> {
    let corpus = crate::mailtext::corpus(settings.messages)?;
    let mut cyrus = Cyrus::new();
    let lab = payload_lab(&cyrus, settings.ledger, settings.dlp)?;
    let broker = lab.broker()?;
    let daemon = lab.dealer_daemon()?;
    cyrus.start(Notify::Daemon {
        socket: &lab.path().join("var/dealer.sock"),
    });
    let mut admin = cyrus.login(ADMIN);
    for n in 0..USERS {
        admin.run(&format!("CREATE \"user/{}\"", user(n)), &[])?;
    }
    admin.logout()?;

    // Delivery: LMTP for most, every fourth by IMAP APPEND into its user's INBOX.
    let started = Instant::now();
    // Bytes of every delivery: a message delivered to three mailboxes is read three times.
    let (mut deliveries, mut bytes, mut distinct_bytes) = (0u64, 0u64, 0u64);
    let mut clients: Vec<_> = (0..USERS).map(|n| cyrus.login(&user(n))).collect();
    for (n, message) in corpus.iter().enumerate() {
        if n % 4 == 3 {
            clients[n % USERS].append("INBOX", &Default::default(), message)?;
            deliveries += 1;
            bytes += message.len() as u64;
        } else {
            let recipients: Vec<String> = if n % 10 == 0 {
                (n..n + 3).map(user).collect()
            } else {
                vec![user(n)]
            };
            let to: Vec<&str> = recipients.iter().map(String::as_str).collect();
            cyrus.lmtp("sender@example.net", &to, message);
            deliveries += to.len() as u64;
            bytes += (message.len() * to.len()) as u64;
        }
        distinct_bytes += message.len() as u64;
    }
    for client in &mut clients {
        client.logout()?;
    }
    wait_for("every new message's notification at the broker", || {
        let queued = jobs(&lab, QUEUED_NEW_MESSAGES)?;
        Ok((queued, queued >= deliveries))
    })?;
    let delivery_s = started.elapsed().as_secs_f64();
    let queued = jobs(&lab, "state = 'PENDING'")?;
    let (broker_cpu, daemon_cpu) = (broker.cpu_s(), daemon.cpu_s());
    eprintln!(
        "payload: {deliveries} deliveries of {} messages ({:.1} MB) into Cyrus and queued in {delivery_s:.1} s",
        corpus.len(),
        bytes as f64 / 1e6
    );

    let started = Instant::now();
    let collector = lab.spawn("bonnie-collector", &[])?;
    let workers: Vec<_> = (0..settings.workers)
        .map(|_| lab.worker())
        .collect::<Result<_, _>>()?;
    wait_for("the broker to finish every job", || {
        let unfinished = jobs(&lab, "state IN ('PENDING', 'POSTPONED')")?;
        Ok((unfinished, unfinished == 0))
    })?;
    let ingest_s = started.elapsed().as_secs_f64();
    let failed = jobs(&lab, "state = 'FAILED'")?;
    if failed > 0 {
        bail!(
            "{failed} jobs failed; see `bonnie jobs failed` on {}",
            lab.path().display()
        );
    }

    let archive = rusqlite::Connection::open(lab.path().join("var/bonnie.db"))?;
    let count = |sql: &str| -> anyhow::Result<u64> {
        Ok(archive.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
    };
    let with_payload = count(
        "SELECT count(*) FROM log WHERE json_extract(record, '$.payload_digest') IS NOT NULL",
    )?;
    if with_payload < deliveries {
        bail!(
            "only {with_payload} of {deliveries} delivered messages were stored with their payload"
        );
    }
    let payloads = count("SELECT count(*) FROM payloads")?;
    let stored_bytes = count("SELECT coalesce(sum(length(data)), 0) FROM payloads")?;
    let payload_bytes = count("SELECT coalesce(sum(size), 0) FROM payloads")?;
    // A word of the German prose of the newsletters and reports, folded as bonnie indexes it.
    let text_found = count("SELECT count(*) FROM log_text WHERE log_text MATCH 'ubersicht'")?;
    if text_found == 0 {
        bail!("no body text was found in the index");
    }
    let cpu = |running: &crate::lab::Running, before: Option<f64>| {
        running
            .cpu_s()
            .map(|s| crate::round(s - before.unwrap_or(0.0), 2))
    };
    let mut processes = serde_json::Map::new();
    processes.insert("broker".into(), json!(cpu(&broker, broker_cpu)));
    processes.insert("dealer_daemon".into(), json!(cpu(&daemon, daemon_cpu)));
    processes.insert("collector".into(), json!(cpu(&collector, None)));
    for (i, worker) in workers.iter().enumerate() {
        processes.insert(format!("worker_{}", i + 1), json!(cpu(worker, None)));
    }
    let mb = bytes as f64 / 1e6;
    let figures = json!({
        "payload_messages_per_s": crate::round(deliveries as f64 / ingest_s, 1),
        "payload_mb_per_s": crate::round(mb / ingest_s, 1),
        "measured": "from the start of the collector and the workers, every notification queued at the broker, to the last job finished; MB of every delivery",
        "messages": corpus.len(),
        "deliveries": deliveries,
        "mb": crate::round(mb, 1),
        "distinct_mb": crate::round(distinct_bytes as f64 / 1e6, 1),
        "jobs_queued": queued,
        "ingest_s": crate::round(ingest_s, 2),
        "delivery_s": crate::round(delivery_s, 2),
        "delivery_mb_per_s": crate::round(mb / delivery_s, 1),
        "payloads_stored": payloads,
        "payload_mb_stored": crate::round(payload_bytes as f64 / 1e6, 1),
        "payload_mb_compressed": crate::round(stored_bytes as f64 / 1e6, 1),
        "entries_found_by_body_word": text_found,
        "cpu_s_during_ingest": processes,
    });
    eprintln!(
        "payload ingest: {:.0} messages/s, {:.1} MB/s ({deliveries} deliveries, {mb:.1} MB, in {ingest_s:.1} s)",
        deliveries as f64 / ingest_s,
        mb / ingest_s
    );
    drop((collector, workers, daemon, broker));
    Ok((figures, lab))
}
