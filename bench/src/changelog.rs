//! Changelog requests against a large archive: the store (SQLite, or es-storage on
//! osmem-server) is filled with the history of `events` message events on Kolab events (each
//! object appended, updated six times the way clients update — append the new version, flag
//! the old deleted, expunge it — and moved), by the changelog handler's own recording code,
//! called in-process through the storage plugin bonnie-api loads (the event log itself is not
//! written: the requests read only what the handler keeps). Then a real `bonnie-api` on that
//! store answers signed `event.changelog` requests over HTTP, one connection each, as
//! Roundcube sends them; their latency is measured at the client.

use std::{
    path::Path,
    process::Stdio,
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use bonnie_model::{mail_history, objects, users};
use bonnie_plugin_api::{RecordQuery, storage::StorageClient};
use bonnie_tests::api::ApiClient;

use crate::{lab::Lab, storage::Target};
use serde_json::{Value, json};

/// Events per object: one append, six updates of three events, one move.
const EVENTS_PER_OBJECT: u64 = 20;
const USERS: u64 = 500;

/// The figures of one run.
pub struct Figures {
    /// Events whose history was stored.
    pub events: u64,
    /// How fast they were recorded, events per second.
    pub recorded_per_s: f64,
    /// Request latency, median and 99th percentile, in milliseconds.
    pub p50_ms: f64,
    /// See `p50_ms`.
    pub p99_ms: f64,
    /// The server's own time per request (its audit log), median and 99th percentile.
    pub server_p50_ms: f64,
    /// See `server_p50_ms`.
    pub server_p99_ms: f64,
}

fn object_uid(object: u64) -> String {
    format!("{object:08X}-BENC-4000-8000-000000000000")
}

fn owner(object: u64) -> String {
    format!("user{}@example.org", object % USERS)
}

fn calendar(object: u64, sub: &str) -> String {
    format!("user/user{}/Calendar{sub}@example.org", object % USERS)
}

fn kolab_message(uid: &str, version: u64) -> String {
    format!(
        "Content-Type: multipart/mixed; boundary=\"b\"\r\nX-Kolab-Type: application/x-vnd.kolab.event\r\nSubject: {uid}\r\n\r\n\
         --b\r\nContent-Type: application/calendar+xml\r\n\r\n<icalendar><vcalendar><components><vevent><properties>\
         <uid><text>{uid}</text></uid><sequence><integer>{version}</integer></sequence><summary><text>Meeting {version}</text></summary>\
         </properties></vevent></components></vcalendar></icalendar>\r\n--b--\r\n"
    )
}

/// The normalized record of event `step` (0..20) of `object`, as the handler sees it once the
/// collector answered.
fn record(object: u64, step: u64, time_ms: i64) -> Value {
    let uid = object_uid(object);
    // UIDs are unique within each user's folders: the user's n-th object holds 8n+1..8n+7.
    let message_uid = |version: u64| (object / USERS) * 8 + version + 1;
    let base = |event: &str, folder: String, uids: Vec<u64>| {
        json!({
            "event": event,
            "@timestamp": bonnie_core::time::format_rfc3339_ms(time_ms),
            "user": owner(object),
            "folder": folder,
            "uidvalidity": 1,
            "uids": uids,
        })
    };
    match step {
        0 | 1 | 4 | 7 | 10 | 13 | 16 => {
            let version = if step == 0 { 0 } else { (step - 1) / 3 + 1 };
            let mut r = base(
                "MessageAppend",
                calendar(object, ""),
                vec![message_uid(version)],
            );
            let key = message_uid(version).to_string();
            r["messageHeaders"] = json!({ &key: { "X-Kolab-Type": "application/x-vnd.kolab.event", "Subject": uid } });
            r["messageContent"] = json!({ &key: { "data": kolab_message(&uid, version) } });
            r
        }
        19 => {
            let mut r = base(
                "vnd.cmu.MessageMove",
                calendar(object, "/Archive"),
                vec![object / USERS + 1],
            );
            r["old_folder"] = json!(calendar(object, ""));
            r["old_uidvalidity"] = json!(1);
            r["old_uids"] = json!([message_uid(6)]);
            r
        }
        _ => {
            // 2, 3 / 5, 6 / ...: the previous version flagged deleted, then expunged.
            let version = (step - 2) / 3;
            let event = if (step - 2).is_multiple_of(3) {
                "MessageTrash"
            } else {
                "MessageExpunge"
            };
            base(event, calendar(object, ""), vec![message_uid(version)])
        }
    }
}

/// Fills the store configured in `config` with the history of `events` events, by `threads`
/// threads (each its own objects, every object's events in order).
fn fill(config: &Path, events: u64, threads: u64) -> anyhow::Result<f64> {
    let config = bonnie_core::Config::load(config)?;
    let (_, storage) = bonnie_host::open_storage(&config, Arc::new(AtomicBool::new(false)))?;
    let storage = StorageClient::new(storage);
    let objects_count = (events / EVENTS_PER_OBJECT).max(1);
    for n in 0..USERS.min(objects_count) {
        let login = owner(n);
        let data = json!({ "id": format!("uuid-{n}"), "dn": format!("uid=user{n},ou=People,dc=example,dc=org"), "cn": format!("User {n}") });
        users::store_resolved(&storage, &login, data.as_object().context("an object")?, 0)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let started = Instant::now();
    let start_ms = 1_795_000_000_000i64;
    let recorded = std::sync::atomic::AtomicU64::new(0);
    let record_one = |object: u64, step: u64| -> anyhow::Result<()> {
        let time_ms = start_ms + (step * objects_count + object) as i64 * 10;
        let value = record(object, step, time_ms);
        let record = value.as_object().context("a record")?;
        let job = format!("bench-{step}-{object}");
        mail_history::record(&storage, record, &job).map_err(|e| anyhow::anyhow!("{e}"))?;
        objects::record(&storage, record, &job, |_| false).map_err(|e| anyhow::anyhow!("{e}"))?;
        let done = recorded.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if done.is_multiple_of(objects_count.max(50_000)) {
            eprintln!(
                "changelog store: {done} of {} events recorded",
                objects_count * EVENTS_PER_OBJECT
            );
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|thread| {
                let record_one = &record_one;
                scope.spawn(move || -> anyhow::Result<()> {
                    for step in 0..EVENTS_PER_OBJECT {
                        for object in (thread..objects_count).step_by(threads as usize) {
                            record_one(object, step)?;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .map_err(|_| anyhow::anyhow!("a fill thread panicked"))?
        })
    })?;
    let recorded = recorded.into_inner();
    Ok(recorded as f64 / started.elapsed().as_secs_f64())
}

/// Copies every record the fill wrote into the SQLite store of `sqlite_config` to es-storage's
/// indices on `url`, with `_bulk` requests (bonnie-es's `put_records`, the documents es-storage's
/// `put` writes), collection by collection.
fn copy_to_search(sqlite_config: &Path, url: &str, dead_letter: &Path) -> anyhow::Result<u64> {
    let config = bonnie_core::Config::load(sqlite_config)?;
    let (_, storage) = bonnie_host::open_storage(&config, Arc::new(AtomicBool::new(false)))?;
    let storage = StorageClient::new(storage);
    let settings: bonnie_es::Settings = serde_json::from_value(json!({ "url": url }))?;
    let es = bonnie_es::Es::new(settings, dead_letter).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut copied = 0u64;
    for collection in [
        users::USERS,
        mail_history::HISTORY,
        objects::FACTS,
        objects::MESSAGES,
        objects::PENDING,
    ] {
        let records = storage
            .query(&RecordQuery {
                collection: collection.to_string(),
                all: true,
                ..RecordQuery::default()
            })
            .map_err(|e| anyhow::anyhow!("reading {collection}: {e}"))?;
        for chunk in records.chunks(20_000) {
            es.put_records(chunk)
                .map_err(|e| anyhow::anyhow!("copying {collection}: {e}"))?;
        }
        copied += records.len() as u64;
        eprintln!(
            "changelog store: {} {collection} records copied to es-storage",
            records.len()
        );
    }
    Ok(copied)
}

/// Fills a store on `target` with `events` events (by `threads` threads), starts bonnie-api
/// on it (with a broker, which keeps the API's audit records) and times `requests` requests.
/// es-storage is filled through SQLite: the handler's code records the events there, and the
/// records are then copied to the server in bulk, as one `put` each would leave them (one
/// `put` per record, each refreshed, fills osmem-server at under 300 events a second).
pub fn latency(
    target: Target<'_>,
    events: u64,
    requests: usize,
    threads: u64,
) -> anyhow::Result<Figures> {
    const SQLITE: &str = "[plugins.sqlite-storage]\npath = \"var/bonnie.db\"\n";
    let (library, storage_table) = match target {
        Target::Sqlite => ("libbonnie_sqlite_storage.so", SQLITE.to_string()),
        Target::Search(url) => (
            "libbonnie_es_storage.so",
            format!("[plugins.es-storage]\nurl = \"{url}\"\n"),
        ),
    };
    let port = super::lab::free_port()?;
    let lab = Lab::with_storage(
        &[library],
        &storage_table,
        &format!(
            "\n[api]\nlisten = \"127.0.0.1:{port}\"\nclients = \"var/api-clients.json\"\naudit_log = \"var/api-audit.log\"\n"
        ),
    )?;
    let dir = lab.path();
    std::fs::create_dir_all(dir.join("var"))?;
    let config = dir.join("bonnie.toml");
    let filled = Instant::now();
    match target {
        Target::Sqlite => {
            fill(&config, events, threads)?;
        }
        Target::Search(url) => {
            let side = Lab::with_storage(&["libbonnie_sqlite_storage.so"], SQLITE, "")?;
            std::fs::create_dir_all(side.path().join("var"))?;
            let side_config = side.path().join("bonnie.toml");
            fill(&side_config, events, threads)?;
            copy_to_search(&side_config, url, &dir.join("var/dead-letter.jsonl"))?;
        }
    }
    let objects_count = (events / EVENTS_PER_OBJECT).max(1);
    let recorded_per_s =
        (objects_count * EVENTS_PER_OBJECT) as f64 / filled.elapsed().as_secs_f64();
    let added = lab
        .command("bonnie")
        .args(["api-client", "add", "bench"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()?;
    if !added.status.success() {
        bail!(
            "bonnie api-client add failed: {}",
            String::from_utf8_lossy(&added.stderr)
        );
    }
    let client = ApiClient {
        address: format!("127.0.0.1:{port}"),
        ..ApiClient::from_added("bench", &String::from_utf8_lossy(&added.stdout))
            .context("no credentials in the output of bonnie api-client add")?
    };
    let _broker = lab.broker()?;
    let _api = lab.spawn("bonnie-api", &[])?;
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!(
                "bonnie-api did not come up; see its log in {}",
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut latencies = Vec::with_capacity(requests);
    for _ in 0..requests {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let object = state % objects_count;
        let asked = Instant::now();
        let answer = client.call_raw(
            &owner(object),
            "event.changelog",
            json!({ "uid": object_uid(object), "mailbox": "Calendar" }),
        );
        latencies.push(asked.elapsed().as_secs_f64() * 1000.0);
        let changes = answer.body["result"]["changes"]
            .as_array()
            .map_or(0, Vec::len);
        if changes != 8 {
            bail!("object {object}: {changes} changes instead of 8: {answer:?}");
        }
    }
    let audit = std::fs::read_to_string(dir.join("var/api-audit.log"))?;
    let server: Vec<f64> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok()?["ms"].as_f64())
        .collect();
    let (p50_ms, p99_ms) = percentiles(latencies);
    let (server_p50_ms, server_p99_ms) = percentiles(server);
    Ok(Figures {
        events: objects_count * EVENTS_PER_OBJECT,
        recorded_per_s,
        p50_ms,
        p99_ms,
        server_p50_ms,
        server_p99_ms,
    })
}

fn percentiles(mut values: Vec<f64>) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() as f64 * q) as usize).min(values.len() - 1)];
    (at(0.50), at(0.99))
}
