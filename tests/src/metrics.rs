//! Scraping a daemon's `/metrics` as Prometheus does (plain HTTP/1.1 GET), reading series
//! out of the page, and `promtool check metrics` on it.

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
};

use crate::process;

/// One scrape of `/metrics`.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// The status line, such as `HTTP/1.1 200 OK`.
    pub status: String,
    /// The `Content-Type` answered.
    pub content_type: String,
    /// The page.
    pub body: String,
}

impl Scrape {
    /// The value of the series written exactly `series` (name and labels as the page writes
    /// them, such as `bonnie_broker_jobs{state="DONE"}`), if the page has it.
    pub fn value(&self, series: &str) -> Option<f64> {
        self.body.lines().find_map(|line| {
            let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
            rest.split(' ').next()?.parse().ok()
        })
    }

    /// Whether the page describes the metric family `name` (its `# TYPE` line).
    pub fn has_family(&self, name: &str) -> bool {
        self.body.lines().any(|line| {
            line.strip_prefix("# TYPE ")
                .and_then(|t| t.split(' ').next())
                == Some(name)
        })
    }
}

/// `GET /metrics` from `address` (`127.0.0.1:port`); `None` if nothing answers there yet.
pub fn try_scrape(address: &str) -> Option<Scrape> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let answer = String::from_utf8(answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.to_string();
    let content_type = lines
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    Some(Scrape {
        status,
        content_type,
        body: body.to_string(),
    })
}

/// Scrapes `address` until `ready` holds for the page (the listener may not be up yet, and
/// counts arrive as the daemon works); the page it held for.
pub fn scrape_until(address: &str, what: &str, mut ready: impl FnMut(&Scrape) -> bool) -> Scrape {
    let mut last = None;
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        process::wait_until(what, || {
            last = try_scrape(address);
            last.as_ref().is_some_and(&mut ready)
        })
    }));
    match (waited, last) {
        (Ok(()), Some(page)) => page,
        (_, last) => panic!(
            "gave up waiting for {what}; the last page from {address}:\n{}",
            last.map(|page| page.body).unwrap_or_default()
        ),
    }
}

/// Runs `promtool check metrics` on `page`: its exit status and what it printed.
pub fn promtool_check(page: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running promtool (Debian package prometheus; scripts/test installs it)");
    child
        .stdin
        .take()
        .expect("promtool's input")
        .write_all(page.as_bytes())
        .expect("writing the page to promtool");
    let output = child.wait_with_output().expect("waiting for promtool");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// Asserts that `page` is what Prometheus expects: served as the text format 0.0.4, and
/// accepted by `promtool check metrics` without a complaint.
pub fn assert_valid(daemon: &str, scrape: &Scrape) {
    assert_eq!(scrape.status, "HTTP/1.1 200 OK", "{daemon}: {scrape:?}");
    assert_eq!(
        scrape.content_type, "text/plain; version=0.0.4; charset=utf-8",
        "{daemon}"
    );
    let (ok, said) = promtool_check(&scrape.body);
    assert!(
        ok && said.trim().is_empty(),
        "promtool check metrics refused {daemon}'s page:\n{said}\n--- page\n{}",
        scrape.body
    );
}
