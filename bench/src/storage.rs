//! Records per second into each storage: a worker replays a file of notifications through the
//! JSON-lines input into SQLite (bare, and with every archive handler), and into osmem-server
//! through es-storage; from the worker's start to its exit, every write synced or accepted.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::json;

use crate::chaos::ARCHIVE_HANDLERS as HANDLERS;

/// Where the storage goes.
pub enum Target<'a> {
    /// The embedded default.
    Sqlite,
    /// es-storage against this URL.
    Search(&'a str),
}

/// A notification of a realistic mix: appends, flag changes, logins, folder events.
pub(crate) fn notification(n: u64) -> String {
    let time = format!(
        "2026-11-28T{:02}:{:02}:{:02}.{:03}Z",
        (n / 3_600_000) % 24,
        (n / 60_000) % 60,
        (n / 1000) % 60,
        n % 1000
    );
    let user = format!("user{}@example.org", n % 50);
    let folder = format!(
        "imap://cyrus-lab.example.org/user/user{}%40example.org;UIDVALIDITY=1795885999",
        n % 50
    );
    match n % 4 {
        0 => json!({ "event": "MessageAppend", "timestamp": time, "service": "imap", "mailboxID": format!("box{}", n % 50),
            "uri": format!("{folder}/;UID={n}"), "user": user, "messageSize": 2405, "vnd.cmu.midset": [format!("<{n}@example.org>")],
            "vnd.cmu.mailboxACL": format!("{user}\tlrswipkxtecdan\t"), "vnd.cmu.sessionId": format!("s{}", n % 50),
            "vnd.cmu.envelope": format!("(\"Sat, 28 Nov 2026 17:13:36 +0000\" \"message {n}\" ((\"Jane Doe\" NIL \"jane.doe\" \"example.org\")) NIL NIL ((\"John Doe\" NIL \"john.doe\" \"example.org\")) NIL NIL NIL \"<{n}@example.org>\")") }),
        1 => json!({ "event": "FlagsSet", "timestamp": time, "service": "imap", "mailboxID": format!("box{}", n % 50),
            "uri": folder, "uidset": format!("{}", n.max(1)), "flagNames": "\\Seen", "user": user,
            "vnd.cmu.mailboxACL": format!("{user}\tlrswipkxtecdan\t"), "vnd.cmu.sessionId": format!("s{}", n % 50) }),
        2 => json!({ "event": "Login", "timestamp": time, "service": "imap", "clientIP": "192.0.2.7", "uri": "imap://cyrus-lab.example.org",
            "user": user, "vnd.cmu.sessionId": format!("session-{n}") }),
        _ => json!({ "event": "MailboxModseq", "timestamp": time, "service": "imap", "mailboxID": format!("box{}", n % 50),
            "uri": folder, "user": "", "vnd.cmu.mailboxACL": format!("{user}\tlrswipkxtecdan\t") }),
    }
    .to_string()
}

/// Replays `count` notifications into `target`; records per second.
pub fn records_per_s(
    bin: &Path,
    root: &Path,
    target: Target<'_>,
    handlers: bool,
    count: u64,
) -> anyhow::Result<f64> {
    let dir = tempfile::Builder::new()
        .prefix("bonnie-bench-storage-")
        .tempdir_in(root)?;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins)?;
    let storage = match target {
        Target::Sqlite => "libbonnie_sqlite_storage.so",
        Target::Search(_) => "libbonnie_es_storage.so",
    };
    let mut libraries = vec!["libbonnie_jsonl_input.so", storage];
    if handlers {
        libraries.extend(HANDLERS);
    }
    for library in libraries {
        std::fs::copy(bin.join(library), plugins.join(library))
            .with_context(|| format!("copying {library}"))?;
    }
    let storage_table = match target {
        Target::Sqlite => "[plugins.sqlite-storage]\npath = \"var/bonnie.db\"\n".to_string(),
        Target::Search(url) => format!("[plugins.es-storage]\nurl = \"{url}\"\n"),
    };
    std::fs::write(
        dir.path().join("bonnie.toml"),
        format!(
            "[worker]\nplugin_dir = \"plugins\"\nbatch_size = 500\n\n[plugins.jsonl-input]\nfiles = [\"in.jsonl\"]\n\n{storage_table}"
        ),
    )?;
    let elapsed = replay(bin, dir.path(), (0..count).map(notification))?;
    let journal = std::fs::read_to_string(dir.path().join("var/jsonl-input/outcomes.jsonl"))?;
    let done = journal
        .lines()
        .filter(|l| l.contains("\"outcome\":\"done\""))
        .count() as u64;
    if done != count {
        bail!(
            "only {done} of {count} notifications were stored; see {}",
            dir.path().display()
        );
    }
    Ok(count as f64 / elapsed.as_secs_f64())
}

/// Runs a worker on the configuration in `dir` (whose JSON-lines input reads `in.jsonl`)
/// over `lines` until it has taken them all and exits; how long it took.
pub fn replay(
    bin: &Path,
    dir: &Path,
    lines: impl Iterator<Item = impl AsRef<str>>,
) -> anyhow::Result<Duration> {
    let mut text = String::new();
    for line in lines {
        text.push_str(line.as_ref());
        text.push('\n');
    }
    std::fs::write(dir.join("in.jsonl"), text)?;
    let started = Instant::now();
    let status = Command::new(bin.join("bonnie-worker"))
        .arg("--config")
        .arg(dir.join("bonnie.toml"))
        .args(["--log-level", "warn", "--log-file"])
        .arg(dir.join("worker.log"))
        .stdin(Stdio::null())
        .status()?;
    let elapsed = started.elapsed();
    if !status.success() {
        bail!(
            "the worker failed; see {}",
            dir.join("worker.log").display()
        );
    }
    Ok(elapsed)
}

/// Starts osmem-server on a free port; the process and its URL.
pub fn start_search_server(binary: &Path) -> anyhow::Result<(super::lab::Running, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(binary)
        .args(["--addr", &format!("127.0.0.1:{port}"), "--no-stdin-watch"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("osmem-server did not come up");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((
        super::lab::Running::from(child),
        format!("http://127.0.0.1:{port}"),
    ))
}

/// The osmem-server binary: `$BONNIE_OSMEM_SERVER`, else the repository's `.venv`.
pub fn search_server_binary(bin: &Path) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("BONNIE_OSMEM_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let repo = bin.ancestors().nth(2).context("the repository")?;
    for version in std::fs::read_dir(repo.join(".venv/lib"))
        .context("no .venv: scripts/bench installs osmem-server there")?
    {
        let candidate = version?
            .path()
            .join("site-packages/osmem_server/bin/osmem-server");
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    bail!("osmem-server is not installed in .venv (scripts/bench installs it)")
}
