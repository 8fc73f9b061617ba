//! e-Discovery figures (`--only-discovery`): an archive of generated mail with body text in a
//! real SQLite storage (the sqlite-storage plugin loaded as the worker loads it), written the
//! way the pipeline writes it: each payload stored, its item document written by
//! `bonnie_model::items::store`, and a log entry placing it (a MessageAppend with its folder,
//! owner, UID and payload) appended in batches, so that `bonnie_discovery::state` finds its
//! places as in a real archive. Then:
//!
//! - search latency through `bonnie_discovery::search::search` (what `bonnie search` runs:
//!   limit 100, newest first, states read and the whole query decided), per kind of query:
//!   words of three frequency classes, field queries (`from:` a custodian, `subject:` a word),
//!   date ranges of a day to a year, and a word with a state term (`user:`);
//! - export throughput of `bonnie_export::export` (EML and DAT) over items read back from the
//!   storage; their inclusion proofs come from an in-memory `bonnie_ledger` tree over the
//!   items' leaves (as export/tests/common makes them), not from the broker's ledger;
//! - a real Cyrus 3.6 holding the first `cyrus_messages` of the same messages in one mailbox,
//!   IMAP `SEARCH BODY` / `FROM` / `SINCE … BEFORE` latency before and after squatter built
//!   its Xapian index, beside bonnie's search on an archive of the same messages.
//!
//! The mail: bodies of 2 to 20 KB (log-uniform) of sentences drawn from a 100,000-word
//! vocabulary with a Zipf distribution (s = 1), the words made of English, German, French,
//! Spanish and Russian syllables (diacritics, ß, Cyrillic); 200 custodians in four folders
//! each, 1,000 outside correspondents over 50 domains; Date headers uniform over three years
//! (so the archive's insertion order is not its date order, as after a back-fill); one
//! message in twelve with a text attachment, one in twenty-five with a PDF.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Instant,
};

use anyhow::{Context as _, bail};
use bonnie_discovery::{
    query::{self, Context},
    search::{self, SearchOptions},
};
use bonnie_export::{Attachment, Envelope, ExportHeader, ExportItem, Format, ItemList, ItemMeta};
use bonnie_ledger::{ArchiveKey, Checkpoint, Entry, LeafKind, MemoryStore, NodeStore as _};
use bonnie_model::custodians;
use bonnie_plugin_api::{OutputItem, abi_stable::std_types::RVec, storage::StorageClient};
use bonnie_tests::cyrus::{ADMIN, Cyrus, Notify};
use serde_json::{Value, json};

use crate::round;

/// What `--only-discovery` measures.
pub struct Settings {
    /// Messages in the archive searched.
    pub messages: usize,
    /// Queries timed per kind.
    pub queries: usize,
    /// Only the queries of these kinds (every kind when empty): to profile one.
    pub kinds: Vec<String>,
    /// Items exported per format.
    pub export_items: usize,
    /// Messages appended to Cyrus (and archived again for bonnie's side).
    pub cyrus_messages: usize,
    /// IMAP searches timed per kind and index state.
    pub cyrus_queries: usize,
    /// Threads filling the archive.
    pub fill_threads: usize,
    /// Fill without the custodian records the archive handlers write (to price them).
    pub without_custodians: bool,
    /// How long squatter may index Cyrus's messages, in seconds.
    pub squatter_timeout_s: u64,
    /// Keep the searched archive in this folder and, when it already holds one filled with
    /// the same messages, search that one instead of filling it again.
    pub keep: Option<PathBuf>,
}

/// Log entries appended per batch, as a worker's batch.
const BATCH: usize = 100;
/// The words of the vocabulary.
const VOCABULARY: usize = 100_000;
/// The custodians.
const CUSTODIANS: usize = 200;
/// 2023-12-01T00:00:00Z: the first date of the archive.
const START_MS: i64 = 1_701_388_800_000;
/// Three years.
const SPAN_MS: i64 = 3 * 365 * 86_400_000;
/// The ledger's origin for the export's proofs.
const ORIGIN: &str = "bench.example.org/bonnie";
/// What bonnie's search is asked for, as `bonnie search` does.
const LIMIT: usize = 100;

/// splitmix64: cheap, seedable, good enough for a corpus.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Syllables of each language the vocabulary's words are made of.
const SYLLABLES: [&[&str]; 5] = [
    &[
        "ta", "re", "con", "ment", "ing", "pro", "ver", "sion", "al", "com", "port", "ly", "ex",
        "ter", "ble", "ad", "mis", "tion", "fore", "cast",
    ],
    &[
        "schaft", "ung", "ver", "ge", "keit", "bär", "über", "straße", "heit", "zeug", "lich",
        "ber", "müll", "grö", "wald", "stück", "fahr", "kauf", "läu", "ßen",
    ],
    &[
        "é", "tion", "eau", "ère", "ment", "qu", "ai", "on", "ville", "gré", "çon", "fê", "té",
        "lon", "pré", "oi", "sé", "rou", "chê", "où",
    ],
    &[
        "ción", "ado", "ero", "ía", "es", "ta", "llo", "ñan", "pe", "dro", "güe", "rí", "mon",
        "cu", "bra", "sol", "ar", "ñe", "lí", "za",
    ],
    &[
        "ко", "ра", "ни", "ва", "ст", "ов", "пре", "ми", "ло", "ск", "ед", "ча", "жи", "ус", "ть",
        "бо", "зе", "ря", "щи", "ый",
    ],
];

/// The most frequent words, before the made ones.
const COMMON: [&str; 30] = [
    "the", "und", "de", "la", "and", "der", "que", "и", "to", "die", "le", "el", "of", "в", "das",
    "et", "en", "is", "не", "ist", "les", "los", "for", "mit", "un", "на", "we", "wir", "pour",
    "con",
];

/// The vocabulary in rank order, and the Zipf distribution over it.
struct Vocabulary {
    words: Vec<String>,
    /// Cumulative weights (1/rank), normalized to 1.
    cumulative: Vec<f64>,
}

impl Vocabulary {
    fn new() -> Vocabulary {
        let mut rng = Rng::new(7);
        let mut seen = std::collections::HashSet::new();
        let mut words: Vec<String> = COMMON.iter().map(|w| w.to_string()).collect();
        seen.extend(words.iter().cloned());
        while words.len() < VOCABULARY {
            let language = SYLLABLES[rng.below(SYLLABLES.len())];
            let syllables = 2 + rng.below(3);
            let word: String = (0..syllables)
                .map(|_| language[rng.below(language.len())])
                .collect();
            // Words must be whole tokens: a single letter or a made word already drawn is
            // passed over.
            if word.chars().count() >= 3 && seen.insert(word.clone()) {
                words.push(word);
            }
        }
        let mut total = 0.0;
        let mut cumulative: Vec<f64> = (1..=words.len())
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        for c in &mut cumulative {
            *c /= total;
        }
        Vocabulary { words, cumulative }
    }

    fn sample(&self, rng: &mut Rng) -> &str {
        let u = rng.unit();
        let rank = self
            .cumulative
            .partition_point(|&c| c < u)
            .min(self.words.len() - 1);
        &self.words[rank]
    }

    /// The word of a rank (0 = the most frequent).
    fn word(&self, rank: usize) -> &str {
        &self.words[rank.min(self.words.len() - 1)]
    }
}

const FIRST: [&str; 20] = [
    "anna", "jürgen", "marie", "lukas", "sofia", "jonas", "emma", "paul", "léa", "noah", "mia",
    "elias", "zoé", "felix", "lena", "josé", "olga", "ivan", "clara", "ben",
];
const LAST: [&str; 10] = [
    "müller", "schmidt", "dubois", "garcía", "petrov", "weber", "martin", "lópez", "fischer",
    "novak",
];
/// Each custodian's folders: (name, path below the user, share of the mail).
const FOLDERS: [(&str, Option<&str>, f64); 4] = [
    ("INBOX", None, 0.60),
    ("Sent", Some("Sent"), 0.15),
    ("Archiv/2025", Some("Archiv/2025"), 0.15),
    ("Projekte/Alpha", Some("Projekte/Alpha"), 0.10),
];

/// A custodian's login (ASCII, as logins are) and display name.
fn custodian(n: usize) -> (String, String) {
    let (first, last) = (FIRST[n % FIRST.len()], LAST[n / FIRST.len() % LAST.len()]);
    let ascii = |s: &str| -> String {
        bonnie_mail::fold_for_search(s)
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect()
    };
    let login = format!("{}.{}@example.org", ascii(first), ascii(last));
    let mut name = String::new();
    for (i, part) in [first, last].iter().enumerate() {
        if i > 0 {
            name.push(' ');
        }
        let mut chars = part.chars();
        name.extend(chars.next().into_iter().flat_map(char::to_uppercase));
        name.extend(chars);
    }
    (login, name)
}

fn correspondent(n: usize) -> String {
    format!("contact{}@partner{}.example.com", n % 1000, n % 50)
}

/// One generated message and where it is archived.
struct Generated {
    bytes: Vec<u8>,
    custodian: usize,
    folder: usize,
    date_ms: i64,
    subject: String,
    from: String,
    to: String,
    message_id: String,
}

/// The corpus: every message is a function of its number.
struct Generator {
    vocabulary: Vocabulary,
    custodians: Vec<(String, String)>,
}

impl Generator {
    fn new() -> Generator {
        Generator {
            vocabulary: Vocabulary::new(),
            custodians: (0..CUSTODIANS).map(custodian).collect(),
        }
    }

    /// `bytes` of prose: sentences of 5 to 19 words, lines of about 76 characters.
    fn prose(&self, rng: &mut Rng, bytes: usize) -> String {
        let mut text = String::with_capacity(bytes + 100);
        let mut line = 0;
        while text.len() < bytes {
            let words = 5 + rng.below(15);
            for w in 0..words {
                let word = self.vocabulary.sample(rng);
                let sep = if w == words - 1 { ". " } else { " " };
                if line + word.len() + 2 > 76 {
                    text.push_str("\r\n");
                    line = 0;
                }
                if w == 0 {
                    let mut chars = word.chars();
                    text.extend(chars.next().into_iter().flat_map(char::to_uppercase));
                    text.push_str(chars.as_str());
                } else {
                    text.push_str(word);
                }
                text.push_str(sep);
                line += word.len() + sep.len();
            }
        }
        text
    }

    fn message(&self, n: usize) -> Generated {
        let mut rng = Rng::new(n as u64);
        let custodian = rng.below(CUSTODIANS);
        let folder = {
            let u = rng.unit();
            let mut acc = 0.0;
            FOLDERS
                .iter()
                .position(|(_, _, share)| {
                    acc += share;
                    u < acc
                })
                .unwrap_or(0)
        };
        let (login, name) = &self.custodians[custodian];
        let own = format!("{name} <{login}>");
        let other = if rng.below(4) == 0 {
            let (l, n) = &self.custodians[rng.below(CUSTODIANS)];
            format!("{n} <{l}>")
        } else {
            correspondent(rng.below(1000))
        };
        // What the custodian sent is in Sent; the rest came to them.
        let (from, to) = if folder == 1 {
            (own, other)
        } else {
            (other, own)
        };
        let date_ms = START_MS + (rng.next() % SPAN_MS as u64) as i64 / 1000 * 1000;
        let date = jiff::Timestamp::from_millisecond(date_ms)
            .map(|t| t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string())
            .unwrap_or_default();
        let subject_words = 3 + rng.below(6);
        let subject: Vec<&str> = (0..subject_words)
            .map(|_| self.vocabulary.sample(&mut rng))
            .collect();
        let subject = subject.join(" ");
        let body_bytes = (2000.0 * 10f64.powf(rng.unit())) as usize;
        let body = self.prose(&mut rng, body_bytes);
        let message_id = format!("<{n}.{:x}@mail.example.org>", rng.next());
        let headers = format!(
            "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n\
             Message-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
        );
        let attachment = match rng.below(100) {
            0..8 => {
                let name = format!("notizen-{}.txt", self.vocabulary.sample(&mut rng));
                let size = 1000 + rng.below(3000);
                let text = self.prose(&mut rng, size);
                Some((name, "text/plain; charset=utf-8", text.into_bytes()))
            }
            8..12 => {
                let name = format!("{}-bericht.pdf", self.vocabulary.sample(&mut rng));
                let size = 5000 + rng.below(25_000);
                let mut pdf = b"%PDF-1.4\n".to_vec();
                pdf.extend((0..size).map(|_| rng.next() as u8));
                Some((name, "application/pdf", pdf))
            }
            _ => None,
        };
        let mut bytes = headers.into_bytes();
        match attachment {
            None => {
                bytes.extend_from_slice(
                    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
                );
                bytes.extend_from_slice(body.as_bytes());
                bytes.extend_from_slice(b"\r\n");
            }
            Some((name, media_type, data)) => {
                let part = format!(
                    "Content-Type: multipart/mixed; boundary=\"b{n}\"\r\n\r\n--b{n}\r\n\
                     Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
                     {body}\r\n--b{n}\r\nContent-Type: {media_type}; name=\"{name}\"\r\n\
                     Content-Disposition: attachment; filename=\"{name}\"\r\n\
                     Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b{n}--\r\n",
                    crate::mailtext::base64_lines(&data)
                );
                bytes.extend_from_slice(part.as_bytes());
            }
        }
        Generated {
            bytes,
            custodian,
            folder,
            date_ms,
            subject,
            from,
            to,
            message_id,
        }
    }

    /// The log entry placing message `n` (stored as `digest`), as a worker logs a
    /// MessageAppend, arriving a few seconds after its date.
    fn log_entry(&self, n: usize, message: &Generated, digest: &str) -> Value {
        let (login, _) = &self.custodians[message.custodian];
        let (local, domain) = login.split_once('@').unwrap_or((login, ""));
        let (folder_name, below, _) = FOLDERS[message.folder];
        let folder = match below {
            None => format!("user/{local}@{domain}"),
            Some(path) => format!("user/{local}/{path}@{domain}"),
        };
        let uid = n as u64 + 1;
        json!({
            "event": "MessageAppend",
            "@timestamp": bonnie_core::time::format_rfc3339_ms(message.date_ms + 3_000),
            "service": "imap",
            "user": login,
            "folder": folder,
            "folder_name": folder_name,
            "folder_owner": login,
            "folder_uniqueid": format!("{local}-{}", message.folder),
            "uidvalidity": 1,
            "uid": uid,
            "uids": [uid],
            "flags": ["\\Seen"],
            "subject": message.subject,
            "from": [message.from],
            "to": [message.to],
            "message_id": message.message_id,
            "payloads": [{ "uid": uid, "digest": digest, "size": message.bytes.len() }],
            "payload_digest": digest,
        })
    }
}

/// An archive in a folder: the storage client handlers use, and a second handle for the log.
struct Archive {
    dir: Place,
    /// True if the archive's database was there before it was opened.
    reused: bool,
    client: StorageClient,
    log: bonnie_plugin_api::storage::StorageBox,
}

impl Archive {
    fn open(name: &str) -> anyhow::Result<Archive> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("bonnie-bench-{name}-"))
            .tempdir_in(crate::lab::bench_root()?)?;
        Archive::open_in(Place::Temporary(dir))
    }

    /// The archive kept in `dir` (made there if it is not yet).
    fn kept(dir: &Path) -> anyhow::Result<Archive> {
        std::fs::create_dir_all(dir)?;
        let reused = dir.join("var/bonnie.db").exists();
        let mut archive = Archive::open_in(Place::Kept(dir.to_path_buf()))?;
        archive.reused = reused;
        Ok(archive)
    }

    fn open_in(dir: Place) -> anyhow::Result<Archive> {
        std::fs::create_dir_all(dir.path().join("plugins"))?;
        let library = "libbonnie_sqlite_storage.so";
        std::fs::copy(
            crate::lab::bin_dir()?.join(library),
            dir.path().join("plugins").join(library),
        )
        .with_context(|| format!("copying {library}: build it first (scripts/bench does)"))?;
        std::fs::write(
            dir.path().join("bonnie.toml"),
            "[worker]\nplugin_dir = \"plugins\"\n\n[plugins.sqlite-storage]\npath = \"var/bonnie.db\"\n",
        )?;
        std::fs::create_dir_all(dir.path().join("var"))?;
        let config = bonnie_core::Config::load(&dir.path().join("bonnie.toml"))?;
        let open = || bonnie_host::open_storage(&config, Arc::new(AtomicBool::new(false)));
        let client = StorageClient::new(open()?.1);
        let log = open()?.1;
        Ok(Archive {
            dir,
            reused: false,
            client,
            log,
        })
    }

    /// Stores messages `0..count` of the corpus by `threads` threads; the fill figures.
    fn fill(
        &self,
        generator: &Generator,
        count: usize,
        settings: &Settings,
    ) -> anyhow::Result<Value> {
        let (threads, with_custodians) = (settings.fill_threads, !settings.without_custodians);
        let started = Instant::now();
        if with_custodians {
            custodians::begin(&self.client)
                .map_err(|e| anyhow::anyhow!("marking the custodian records complete: {e}"))?;
        }
        let (done, bytes) = (AtomicU64::new(0), AtomicU64::new(0));
        let report_every = (count / 20).max(10_000) as u64;
        let fill_one = |thread: usize| -> anyhow::Result<()> {
            let mut batch = RVec::new();
            let mut numbers = (thread..count).step_by(threads).peekable();
            while let Some(n) = numbers.next() {
                let message = generator.message(n);
                let digest = self
                    .client
                    .put_payload(&message.bytes)
                    .map_err(|e| anyhow::anyhow!("storing payload {n}: {e}"))?;
                bonnie_model::items::store(&self.client, &digest, &message.bytes, message.date_ms)
                    .map_err(|e| anyhow::anyhow!("storing the item of message {n}: {e}"))?;
                let entry = generator.log_entry(n, &message, &digest);
                // Whose it is, as the archive handler records it (docs/decisions.md 91).
                if let (Value::Object(logged), true) = (&entry, with_custodians) {
                    custodians::record(&self.client, logged)
                        .map_err(|e| anyhow::anyhow!("recording the custodian of {n}: {e}"))?;
                }
                batch.push(OutputItem::new(format!("discovery-{n}"), entry.to_string()));
                bytes.fetch_add(message.bytes.len() as u64, Ordering::Relaxed);
                if batch.len() >= BATCH || numbers.peek().is_none() {
                    let items = std::mem::take(&mut batch);
                    let statuses = self
                        .log
                        .append_log(items)
                        .into_result()
                        .map_err(|e| anyhow::anyhow!("appending to the log: {e}"))?;
                    let added = statuses.len() as u64;
                    let total = done.fetch_add(added, Ordering::Relaxed) + added;
                    if total / report_every != (total - added) / report_every {
                        let s = started.elapsed().as_secs_f64();
                        eprintln!(
                            "discovery archive: {total} of {count} messages in {s:.0} s ({:.0}/s, {:.1} MB/s)",
                            total as f64 / s,
                            bytes.load(Ordering::Relaxed) as f64 / 1e6 / s
                        );
                    }
                }
            }
            Ok(())
        };
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let fill_one = &fill_one;
                    scope.spawn(move || fill_one(t))
                })
                .collect();
            workers.into_iter().try_for_each(|w| {
                w.join()
                    .map_err(|_| anyhow::anyhow!("a fill thread panicked"))?
            })
        })?;
        let s = started.elapsed().as_secs_f64();
        let mb = bytes.into_inner() as f64 / 1e6;
        let db = std::fs::metadata(self.dir.path().join("var/bonnie.db"))?.len();
        eprintln!(
            "discovery archive: {count} messages ({mb:.0} MB) stored in {s:.0} s: {:.0} messages/s, {:.1} MB/s; database {:.0} MB",
            count as f64 / s,
            mb / s,
            db as f64 / 1e6
        );
        let figures = json!({
            "messages": count,
            "mb": round(mb, 1),
            "threads": threads,
            "fill_s": round(s, 1),
            "fill_messages_per_s": round(count as f64 / s, 0),
            "fill_mb_per_s": round(mb / s, 1),
            "database_mb": round(db as f64 / 1e6, 0),
            "custodian_records": with_custodians,
        });
        std::fs::write(self.dir.path().join(FILLED), figures.to_string())?;
        Ok(figures)
    }

    /// The fill figures of a kept archive already filled with messages `0..count`, if it is.
    fn filled(&self, count: usize) -> Option<Value> {
        let figures: Value =
            serde_json::from_slice(&std::fs::read(self.dir.path().join(FILLED)).ok()?).ok()?;
        (figures["messages"].as_u64() == Some(count as u64)).then_some(figures)
    }
}

/// The file in an archive's folder recording its fill (written once the fill is complete).
const FILLED: &str = "filled.json";

/// Where an archive lives: a temporary folder, removed after the run, or a kept one.
enum Place {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl Place {
    fn path(&self) -> &Path {
        match self {
            Place::Temporary(dir) => dir.path(),
            Place::Kept(dir) => dir,
        }
    }
}

/// The latency figures of one kind of query.
#[derive(Default)]
struct Timings {
    ms: Vec<f64>,
    hits: usize,
}

impl Timings {
    fn summary(mut self) -> Value {
        self.ms.sort_by(f64::total_cmp);
        json!({
            "queries": self.ms.len(),
            "ms_p50": round(crate::percentile(&self.ms, 0.5), 2),
            "ms_p99": round(crate::percentile(&self.ms, 0.99), 2),
            "ms_max": round(self.ms.last().copied().unwrap_or(f64::NAN), 2),
            "mean_hits": round(self.hits as f64 / self.ms.len().max(1) as f64, 1),
        })
    }
}

fn context() -> Context {
    Context {
        zone: jiff::tz::TimeZone::UTC,
        local_domains: vec!["example.org".to_string()],
    }
}

/// What `bonnie search` asks by default: the newest [`LIMIT`] items, now.
fn search_options() -> SearchOptions {
    SearchOptions {
        as_of: None,
        limit: Some(LIMIT),
        descending: true,
    }
}

fn day(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// A date range of a day to a year: (`after:` day, `before:` day) in ms.
fn date_range(rng: &mut Rng) -> (i64, i64) {
    let days = [1, 7, 30, 90, 365][rng.below(5)];
    let span = days * 86_400_000;
    let first = START_MS + (rng.next() % (SPAN_MS - span) as u64) as i64;
    (first, first + span)
}

/// The queries of each kind, as `bonnie search` text: (kind, query).
fn queries(generator: &Generator, per_kind: usize) -> Vec<(String, String)> {
    let mut rng = Rng::new(42);
    let vocabulary = &generator.vocabulary;
    let mut out = Vec::new();
    let classes = [
        ("word_very_common", 0..50),
        ("word_common", 500..5000),
        ("word_rare", 20_000..VOCABULARY),
    ];
    for (class, ranks) in classes {
        for _ in 0..per_kind / 3 + 1 {
            let rank = ranks.start + rng.below(ranks.end - ranks.start);
            out.push((class.to_string(), vocabulary.word(rank).to_string()));
        }
    }
    for i in 0..per_kind {
        let query = if i % 2 == 0 {
            let (login, _) = &generator.custodians[rng.below(CUSTODIANS)];
            format!("from:{login}")
        } else {
            format!("subject:{}", vocabulary.word(100 + rng.below(5000)))
        };
        out.push(("field".to_string(), query));
    }
    for _ in 0..per_kind {
        let (from, to) = date_range(&mut rng);
        out.push((
            "date_range".to_string(),
            format!("after:{} before:{}", day(from), day(to)),
        ));
    }
    for _ in 0..per_kind {
        let (login, _) = &generator.custodians[rng.below(CUSTODIANS)];
        let user = login.split('@').next().unwrap_or_default();
        let word = vocabulary.word(rng.below(3000));
        out.push(("user_and_word".to_string(), format!("user:{user} {word}")));
    }
    out
}

/// Times `bonnie search`'s call for every query; per kind, p50/p99.
fn search_latency(
    storage: &StorageClient,
    queries: &[(String, String)],
) -> anyhow::Result<serde_json::Map<String, Value>> {
    let ctx = context();
    let options = search_options();
    let mut kinds: std::collections::BTreeMap<String, Timings> = Default::default();
    // The first queries read the database's pages into the cache; they are not counted.
    for (_, text) in queries.iter().take(20) {
        let query = query::parse(text, &ctx).map_err(|e| anyhow::anyhow!("{text}: {e}"))?;
        search::search(storage, &query, &ctx, &options)?;
    }
    for (kind, text) in queries {
        let query = query::parse(text, &ctx).map_err(|e| anyhow::anyhow!("{text}: {e}"))?;
        let asked = Instant::now();
        let found = search::search(storage, &query, &ctx, &options)
            .map_err(|e| anyhow::anyhow!("searching {text}: {e}"))?;
        let timings = kinds.entry(kind.clone()).or_default();
        timings.ms.push(asked.elapsed().as_secs_f64() * 1000.0);
        timings.hits += found.len();
    }
    let mut out = serde_json::Map::new();
    let mut words = Timings::default();
    for (kind, timings) in kinds {
        if kind.starts_with("word_") {
            words.ms.extend(&timings.ms);
            words.hits += timings.hits;
        }
        out.insert(kind, timings.summary());
    }
    out.insert("word".to_string(), words.summary());
    Ok(out)
}

/// An item ready to be exported: what the export is told of it, and its native.
struct Prepared {
    meta: ItemMeta,
    native: Vec<u8>,
    text: String,
    attachments: Vec<Attachment>,
}

impl Prepared {
    fn item(&self) -> ExportItem {
        let mut item = ExportItem::from_bytes(self.meta.clone(), self.native.clone());
        item.text = self.text.clone();
        item.attachments = self.attachments.clone();
        item
    }
}

/// What the export is told of the archived message `bytes` (payload `digest`).
fn export_item(digest: &str, bytes: Vec<u8>, custodian: &str) -> Prepared {
    let message = bonnie_mail::parse(&bytes);
    let (doc, text) = bonnie_model::items::document_of(digest, &message, bytes.len(), 0);
    let attachments = message
        .attachments
        .iter()
        .filter_map(|a| {
            let part = bonnie_mail::find_part(&bytes, &|media| media == a.media_type)
                .ok()
                .flatten()?;
            Some(Attachment {
                name: a.name.clone().unwrap_or_else(|| "attachment".into()),
                bytes: part.bytes,
                text: a.text.clone().unwrap_or_default(),
            })
        })
        .collect();
    let meta = ItemMeta {
        digest: digest.to_string(),
        custodian: custodian.to_string(),
        folders: vec!["INBOX".to_string()],
        sent_ms: Some(doc.date_ms),
        received_ms: Some(doc.date_ms + 3_000),
        envelope: Envelope {
            from: doc.from,
            to: doc.to,
            cc: doc.cc,
            bcc: doc.bcc,
            subject: doc.subject,
            message_id: doc
                .message_id
                .map(|m| m.trim_matches(['<', '>']).to_string()),
        },
        size: bytes.len() as u64,
        kind: "mail".to_string(),
        deleted: false,
        deleted_ms: None,
        backfilled: false,
        log_seq: 0,
        leaf: Vec::new(),
        proof: Vec::new(),
    };
    Prepared {
        meta,
        native: bytes,
        text: text.body,
        attachments,
    }
}

fn hex_digest(digest: &str) -> anyhow::Result<[u8; 32]> {
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(digest.get(2 * i..2 * i + 2).unwrap_or("zz"), 16))
        .collect::<Result<_, _>>()
        .with_context(|| format!("{digest} is not a SHA-256 digest"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("{digest} is not 32 bytes"))
}

/// `bonnie_export::export` of `count` items read back from the archive, EML and DAT.
fn export_throughput(
    archive: &Archive,
    generator: &Generator,
    count: usize,
) -> anyhow::Result<Value> {
    let ctx = context();
    let started = Instant::now();
    // The items a search gives, oldest first, as an export of a query takes them.
    let query = query::parse("after:2024-01-01", &ctx).map_err(|e| anyhow::anyhow!("{e}"))?;
    let found = search::search(
        &archive.client,
        &query,
        &ctx,
        &SearchOptions {
            as_of: None,
            limit: Some(count),
            descending: false,
        },
    )?;
    let search_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut items = Vec::with_capacity(found.len());
    for item in &found {
        let digest = &item.doc.digest;
        let bytes = archive
            .client
            .get_payload(digest)
            .map_err(|e| anyhow::anyhow!("reading payload {digest}: {e}"))?
            .with_context(|| format!("payload {digest} is not kept"))?;
        let custodian = item
            .state
            .places
            .first()
            .map_or_else(|| generator.custodians[0].0.clone(), |p| p.user.clone());
        items.push(export_item(digest, bytes, &custodian));
    }
    let read_s = started.elapsed().as_secs_f64();
    // The proofs: a tree whose leaves name the items' payloads, a checkpoint of it signed.
    let dir = tempfile::Builder::new()
        .prefix("bonnie-bench-export-")
        .tempdir_in(crate::lab::bench_root()?)?;
    let key = ArchiveKey::generate(&dir.path().join("archive.key"), ORIGIN)?;
    let mut store = MemoryStore::new();
    for (i, item) in items.iter_mut().enumerate() {
        let seqs = bonnie_ledger::append(
            &mut store,
            [Entry {
                kind: LeafKind::Record,
                id: format!("discovery-{i}"),
                record_digest: [1; 32],
                payload_digests: vec![hex_digest(&item.meta.digest)?],
                refers_to: None,
            }],
        )?;
        item.meta.log_seq = seqs.start;
    }
    let checkpoint = Checkpoint::of_tree(&store, ORIGIN, None, jiff::Timestamp::now())?;
    let note = key.sign(&checkpoint)?;
    for item in &mut items {
        item.meta.leaf = store.leaf(item.meta.log_seq)?;
        item.meta.proof =
            bonnie_ledger::merkle::inclusion_proof(&store, item.meta.log_seq, checkpoint.size)?;
    }
    let header = ExportHeader {
        query: query.to_string(),
        case: None,
        zone: "UTC".into(),
        created_ms: bonnie_core::time::now_ms(),
        checkpoint_note: note,
        public_key: key.public().to_string(),
        items: ItemList::of(items.iter().map(|i| i.meta.digest.as_str())),
    };
    let mb = items.iter().map(|i| i.meta.size).sum::<u64>() as f64 / 1e6;
    let mut figures = json!({
        "items": items.len(),
        "mb": round(mb, 1),
        "search_s": round(search_s, 2),
        "read_items_s": round(read_s, 2),
    });
    for format in [Format::Eml, Format::Dat] {
        let out = dir.path().join(format.name());
        let exported: Vec<ExportItem> = items.iter().map(Prepared::item).collect();
        let started = Instant::now();
        let summary = bonnie_export::export(
            &out,
            &header,
            &bonnie_export::Options::new(format),
            exported.into_iter().map(Ok),
            &mut |_| {},
        )?;
        let s = started.elapsed().as_secs_f64();
        if summary.exceptions > 0 {
            bail!(
                "{} of {} items were exceptions in the {} export; see {}",
                summary.exceptions,
                items.len(),
                format.name(),
                out.display()
            );
        }
        eprintln!(
            "export {}: {} items ({mb:.0} MB) in {s:.1} s: {:.0} messages/s, {:.1} MB/s",
            format.name(),
            summary.exported,
            summary.exported as f64 / s,
            mb / s
        );
        figures[format.name()] = json!({
            "s": round(s, 2),
            "messages_per_s": round(summary.exported as f64 / s, 0),
            "mb_per_s": round(mb / s, 1),
            "bytes_written": summary.bytes,
        });
        std::fs::remove_dir_all(&out)?;
    }
    Ok(figures)
}

/// The folder Cyrus's Xapian index goes to, inside its lab.
const SEARCH_FOLDER: &str = "search";
/// The Cyrus user holding the side-by-side messages.
const CYRUS_USER: &str = "archive@example.org";

/// UIDs an IMAP SEARCH answered.
fn search_hits(responses: &[bonnie_imap::Response<'static>]) -> usize {
    responses
        .iter()
        .map(|r| match r {
            bonnie_imap::Response::MailboxData(imap_proto::MailboxDatum::Search(uids)) => {
                uids.len()
            }
            _ => 0,
        })
        .sum()
}

fn imap_date(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%d-%b-%Y").to_string())
        .unwrap_or_default()
}

/// One side-by-side query: its kind, the IMAP SEARCH criteria (`{}` for the literal), the
/// literal (a word, sent as UTF-8 bytes), and bonnie's query.
#[derive(Clone)]
struct SideQuery {
    kind: &'static str,
    criteria: String,
    literal: Vec<u8>,
    bonnie: String,
}

impl SideQuery {
    fn new(kind: &'static str, criteria: String, literal: &str, bonnie: String) -> SideQuery {
        SideQuery {
            kind,
            criteria,
            literal: literal.as_bytes().to_vec(),
            bonnie,
        }
    }
}

/// The side-by-side queries: a word in the body, a custodian's address in From, a range of
/// Date headers (SENTSINCE / SENTBEFORE: SINCE and BEFORE are of the internal date, the time
/// of the APPEND).
fn side_by_side_queries(generator: &Generator, per_kind: usize) -> Vec<SideQuery> {
    let mut rng = Rng::new(99);
    let mut out = Vec::new();
    for _ in 0..per_kind {
        let word = generator.vocabulary.word(500 + rng.below(20_000));
        let bonnie = format!("body:{word}");
        out.push(SideQuery::new("body", "BODY {}".into(), word, bonnie));
    }
    for _ in 0..per_kind {
        let (login, _) = &generator.custodians[rng.below(CUSTODIANS)];
        let bonnie = format!("from:{login}");
        out.push(SideQuery::new("from", "FROM {}".into(), login, bonnie));
    }
    for _ in 0..per_kind {
        let (from, to) = date_range(&mut rng);
        let criteria = format!("SENTSINCE {} SENTBEFORE {}", imap_date(from), imap_date(to));
        let bonnie = format!("after:{} before:{}", day(from), day(to));
        out.push(SideQuery::new("date_range", criteria, "", bonnie));
    }
    out
}

/// IMAP SEARCH latency per kind, the mailbox selected.
fn imap_latency(
    client: &mut bonnie_imap::Connection,
    queries: &[SideQuery],
    prefix: &str,
) -> anyhow::Result<serde_json::Map<String, Value>> {
    let mut kinds: std::collections::BTreeMap<String, Timings> = Default::default();
    for query in queries {
        let command = format!("UID SEARCH CHARSET UTF-8 {prefix}{}", query.criteria);
        let literals: Vec<&[u8]> = if query.literal.is_empty() {
            Vec::new()
        } else {
            vec![&query.literal]
        };
        let asked = Instant::now();
        let responses = client.run(&command, &literals).with_context(|| {
            format!("{command} ({:?})", String::from_utf8_lossy(&query.literal))
        })?;
        let timings = kinds.entry(query.kind.to_string()).or_default();
        timings.ms.push(asked.elapsed().as_secs_f64() * 1000.0);
        timings.hits += search_hits(&responses);
    }
    Ok(kinds.into_iter().map(|(k, t)| (k, t.summary())).collect())
}

/// Cyrus's IMAP SEARCH over `count` of the messages in one mailbox, without and with its
/// Xapian index, and bonnie's search on an archive of the same messages.
fn side_by_side(generator: &Generator, settings: &Settings) -> anyhow::Result<Value> {
    let count = settings.cyrus_messages;
    let mut cyrus = Cyrus::new()
        .with_imapd_option("search_engine: xapian")
        .with_imapd_option("conversations: yes")
        .with_imapd_option("search_index_headers: yes")
        .with_imapd_option("defaultsearchtier: t1")
        // Messages per Xapian commit (default 20): all of them at once. With batches smaller
        // than the mailbox, Debian's squatter 3.6 went back to the mailbox's start after each
        // batch and had not finished 5,000 messages in 15 minutes (one batch of 500: 5 s).
        .with_imapd_option(&format!("search_batchsize: {}", count.max(1000)));
    let search_dir = cyrus.path().join(SEARCH_FOLDER);
    std::fs::create_dir_all(&search_dir)?;
    cyrus = cyrus.with_imapd_option(&format!(
        "t1searchpartition-default: {}",
        search_dir.display()
    ));
    cyrus.start(Notify::Off);
    let mut admin = cyrus.login(ADMIN);
    admin.run(&format!("CREATE \"user/{CYRUS_USER}\""), &[])?;
    admin.logout()?;
    let mut client = cyrus.login(CYRUS_USER);
    let started = Instant::now();
    let mut bytes = 0usize;
    for n in 0..count {
        let message = generator.message(n);
        bytes += message.bytes.len();
        client.append("INBOX", &Default::default(), &message.bytes)?;
    }
    let append_s = started.elapsed().as_secs_f64();
    eprintln!(
        "cyrus: {count} messages ({:.0} MB) appended in {append_s:.0} s",
        bytes as f64 / 1e6
    );
    client.select("INBOX")?;
    let queries = side_by_side_queries(generator, settings.cyrus_queries);
    let unindexed = imap_latency(&mut client, &queries, "")?;
    client.logout()?;
    let started = Instant::now();
    let config = cyrus.path().join("etc/imapd.conf");
    // squatter as Debian ships it, bounded: past the bound the indexed figures are missing.
    let squatter = Command::new("timeout")
        .arg(settings.squatter_timeout_s.to_string())
        .args([
            "runuser",
            "-u",
            "cyrus",
            "--",
            "/usr/lib/cyrus/bin/squatter",
            "-C",
        ])
        .arg(&config)
        .args(["-u", CYRUS_USER])
        .output()
        .context("running squatter")?;
    let squatter_s = started.elapsed().as_secs_f64();
    let index_bytes = folder_bytes(&search_dir);
    let indexed_figures = if squatter.status.success() {
        eprintln!(
            "cyrus: squatter indexed them in {squatter_s:.0} s ({:.0} MB of Xapian index)",
            index_bytes as f64 / 1e6
        );
        // A new session reads the index squatter built.
        let mut client = cyrus.login(CYRUS_USER);
        client.select("INBOX")?;
        let indexed = imap_latency(&mut client, &queries, "")?;
        let fuzzy_queries: Vec<SideQuery> = queries
            .iter()
            .filter(|q| q.kind == "body")
            .cloned()
            .collect();
        let fuzzy = imap_latency(&mut client, &fuzzy_queries, "FUZZY ")?;
        client.logout()?;
        Some((indexed, fuzzy))
    } else {
        eprintln!(
            "cyrus: squatter did not finish in {squatter_s:.0} s ({}; {:.0} MB of Xapian index so far): {}{}",
            squatter.status,
            index_bytes as f64 / 1e6,
            String::from_utf8_lossy(&squatter.stdout),
            String::from_utf8_lossy(&squatter.stderr)
        );
        None
    };
    drop(cyrus);

    let archive = Archive::open("discovery-side")?;
    let fill = archive.fill(generator, count, settings)?;
    let ctx = context();
    let options = search_options();
    let mut bonnie: std::collections::BTreeMap<String, Timings> = Default::default();
    for side in &queries {
        let text = &side.bonnie;
        let query = query::parse(text, &ctx).map_err(|e| anyhow::anyhow!("{text}: {e}"))?;
        let asked = Instant::now();
        let found = search::search(&archive.client, &query, &ctx, &options)?;
        let timings = bonnie.entry(side.kind.to_string()).or_default();
        timings.ms.push(asked.elapsed().as_secs_f64() * 1000.0);
        timings.hits += found.len();
    }
    let bonnie: serde_json::Map<String, Value> =
        bonnie.into_iter().map(|(k, t)| (k, t.summary())).collect();
    Ok(json!({
        "messages": count,
        "mb": round(bytes as f64 / 1e6, 1),
        "cyrus_append_s": round(append_s, 1),
        "cyrus_squatter_s": round(squatter_s, 1),
        "cyrus_xapian_index_mb": round(index_bytes as f64 / 1e6, 1),
        "cyrus_search_unindexed": unindexed,
        "cyrus_squatter_finished": indexed_figures.is_some(),
        "cyrus_search_xapian": indexed_figures.as_ref().map(|f| &f.0),
        "cyrus_search_xapian_fuzzy_body": indexed_figures.as_ref().map(|f| &f.1),
        "bonnie_fill": fill,
        "bonnie_search_limit_100": bonnie,
    }))
}

/// Bytes of the files under `folder`.
fn folder_bytes(folder: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => folder_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// A short table of a kind → figures map on stderr.
fn print_table(title: &str, kinds: &serde_json::Map<String, Value>) {
    eprintln!("{title}");
    eprintln!(
        "  {:<20} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "kind", "queries", "p50 ms", "p99 ms", "max ms", "hits"
    );
    for (kind, f) in kinds {
        eprintln!(
            "  {:<20} {:>7} {:>9} {:>9} {:>9} {:>9}",
            kind, f["queries"], f["ms_p50"], f["ms_p99"], f["ms_max"], f["mean_hits"]
        );
    }
}

/// Runs every e-discovery figure.
pub fn figures(settings: &Settings) -> anyhow::Result<Value> {
    let generator = Generator::new();
    let archive = match &settings.keep {
        Some(dir) => Archive::kept(dir)?,
        None => Archive::open("discovery")?,
    };
    let fill = match archive.filled(settings.messages) {
        Some(mut figures) => {
            eprintln!(
                "discovery archive: {} messages already filled in {}",
                settings.messages,
                archive.dir.path().display()
            );
            figures["reused"] = json!(true);
            if !settings.without_custodians && !custodians::is_complete(&archive.client)? {
                // Filled by a bonnie before custodian records: walked as `bonnie reprocess
                // --handler items` walks it.
                let started = Instant::now();
                let written = custodians::fill_logged(&archive.client, |_| {})?;
                let s = started.elapsed().as_secs_f64();
                eprintln!("discovery archive: {written} custodian records written in {s:.0} s");
                figures["custodians_fill_s"] = json!(round(s, 1));
            }
            figures
        }
        None if archive.reused => bail!(
            "{} holds an archive that is not one of {} filled messages: remove it first",
            archive.dir.path().display(),
            settings.messages
        ),
        None => archive.fill(&generator, settings.messages, settings)?,
    };
    let mut queries = queries(&generator, settings.queries);
    if !settings.kinds.is_empty() {
        queries.retain(|(kind, _)| settings.kinds.contains(kind));
    }
    let search = search_latency(&archive.client, &queries)?;
    print_table(
        &format!(
            "bonnie search (limit {LIMIT}, newest first) over {} messages:",
            settings.messages
        ),
        &search,
    );
    let export = export_throughput(&archive, &generator, settings.export_items)?;
    drop(archive);
    let side = side_by_side(&generator, settings)?;
    for (title, key) in [
        ("Cyrus UID SEARCH, no index:", "cyrus_search_unindexed"),
        ("Cyrus UID SEARCH, Xapian index:", "cyrus_search_xapian"),
        (
            "Cyrus UID SEARCH FUZZY BODY, Xapian index:",
            "cyrus_search_xapian_fuzzy_body",
        ),
        ("bonnie search, same messages:", "bonnie_search_limit_100"),
    ] {
        if let Some(kinds) = side[key].as_object() {
            print_table(title, kinds);
        }
    }
    Ok(json!({
        "archive": fill,
        "search": search,
        "export": export,
        "side_by_side": side,
    }))
}
