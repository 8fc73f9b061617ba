//! Back-fill from a real Cyrus 3.6: the body-text corpus is appended to ten users' INBOXes
//! while bonnie is not attached (notifications off), then `bonnie backfill` walks them (LIST,
//! STATUS, UID FETCH pages) and submits every message to the broker, the collector reads the
//! spool files and two workers archive them (every archive handler, SQLite). Measured: the
//! walk's messages/s and MB/s (the CLI's own run), the whole back-fill until the broker holds no
//! unfinished job, and what it costs Cyrus: one other user's APPENDs a second while the
//! back-fill runs, against the same user's rate before it; half the users unthrottled, the
//! other half at a `--rate`.

use std::{process::Stdio, time::Instant};

use anyhow::{Context as _, bail};
use bonnie_tests::cyrus::{ADMIN, Cyrus, Notify};
use serde_json::{Value, json};

use crate::payload::{jobs, payload_lab, wait_for};

/// The users the corpus goes to.
const USERS: usize = 10;
/// The user whose APPENDs measure Cyrus's load; not back-filled.
const PROBE_USER: &str = "probe@example.org";

fn user(n: usize) -> String {
    format!("user{}@example.org", n % USERS)
}

fn probe_message(n: usize) -> Vec<u8> {
    format!(
        "From: probe@example.org\r\nTo: probe@example.org\r\nSubject: load probe {n}\r\n\
         Message-ID: <load-probe-{n}@example.org>\r\n\r\nAppended while the back-fill runs.\r\n"
    )
    .into_bytes()
}

/// APPENDs a second by the probe user, for `count` appends or until `until` says stop.
fn append_rate(
    cyrus: &Cyrus,
    first: usize,
    count: usize,
    mut until: impl FnMut() -> bool,
) -> anyhow::Result<(f64, usize)> {
    let mut client = cyrus.login(PROBE_USER);
    let started = Instant::now();
    let mut made = 0;
    while made < count && !until() {
        client.append("INBOX", &Default::default(), &probe_message(first + made))?;
        made += 1;
    }
    let rate = made as f64 / started.elapsed().as_secs_f64().max(1e-9);
    client.logout()?;
    Ok((rate, made))
}

/// One back-fill of `users` at `rate` messages a second (`None`: unthrottled), with the probe
/// user appending meanwhile: its figures, once the broker finished every job it made.
fn run_backfill(
    lab: &crate::lab::Lab,
    cyrus: &Cyrus,
    users: std::ops::Range<usize>,
    rate: Option<u32>,
    expected: (u64, u64),
    first_probe: usize,
) -> anyhow::Result<(Value, usize)> {
    let mut args = vec!["backfill".to_string(), "--json".into(), "--rate".into()];
    args.push(rate.unwrap_or(1_000_000).to_string());
    for n in users {
        args.extend(["--user".to_string(), user(n)]);
    }
    let started = Instant::now();
    let mut run = lab
        .command("bonnie")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting bonnie backfill")?;
    let (busy_rate, busy_count) = append_rate(cyrus, first_probe, usize::MAX, || {
        run.try_wait().ok().flatten().is_some()
    })?;
    let output = run.wait_with_output()?;
    let walk_s = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "bonnie backfill failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let report: Value =
        serde_json::from_slice(&output.stdout).context("bonnie backfill --json's report")?;
    let (messages, bytes) = expected;
    if report["submitted"].as_u64() != Some(messages) {
        bail!(
            "the back-fill submitted {} of {messages} messages",
            report["submitted"]
        );
    }
    wait_for("the broker to finish every back-filled job", || {
        let unfinished = jobs(lab, "state IN ('PENDING', 'ALLOC', 'POSTPONED')")?;
        Ok((unfinished, unfinished == 0))
    })?;
    let archived_s = started.elapsed().as_secs_f64();
    let failed = jobs(lab, "state = 'FAILED'")?;
    if failed > 0 {
        bail!(
            "{failed} back-filled jobs failed; see {}",
            lab.path().display()
        );
    }
    let (mb, count) = (bytes as f64 / 1e6, messages as f64);
    eprintln!(
        "backfill at {}: {messages} messages ({mb:.1} MB) walked and submitted in {walk_s:.1} s ({:.0} messages/s, {:.1} MB/s), \
         archived in {archived_s:.1} s; another user's APPENDs {busy_rate:.0}/s meanwhile",
        rate.map_or("no limit".to_string(), |r| format!("--rate {r}")),
        count / walk_s,
        mb / walk_s
    );
    // The probe's appends during a run too short to measure are not a figure.
    let during = (busy_count >= 20).then(|| crate::round(busy_rate, 0));
    Ok((
        json!({
            "rate": rate,
            "messages": messages,
            "mb": crate::round(mb, 1),
            "walk_s": crate::round(walk_s, 2),
            "walk_messages_per_s": crate::round(count / walk_s, 0),
            "walk_mb_per_s": crate::round(mb / walk_s, 1),
            "archived_s": crate::round(archived_s, 2),
            "archived_messages_per_s": crate::round(count / archived_s, 0),
            "archived_mb_per_s": crate::round(mb / archived_s, 1),
            "cyrus_appends_per_s_during": during,
            "cyrus_appends_during": busy_count,
        }),
        busy_count,
    ))
}

/// Runs the back-fill benchmark once: `messages` of the corpus, `workers` worker processes;
/// half the users unthrottled, the other half at `--rate throttled`.
pub fn figures(messages: usize, workers: usize, throttled: u32) -> anyhow::Result<Value> {
    let corpus = crate::mailtext::corpus(messages)?;
    let mut cyrus = Cyrus::new();
    let lab = payload_lab(&cyrus, false, false)?;
    cyrus.start(Notify::Off);
    let mut admin = cyrus.login(ADMIN);
    for name in (0..USERS).map(user).chain([PROBE_USER.to_string()]) {
        admin.run(&format!("CREATE \"user/{name}\""), &[])?;
    }
    admin.logout()?;
    let mut clients: Vec<_> = (0..USERS).map(|n| cyrus.login(&user(n))).collect();
    let mut halves = [(0u64, 0u64); 2];
    for (n, message) in corpus.iter().enumerate() {
        clients[n % USERS].append("INBOX", &Default::default(), message)?;
        let half = &mut halves[usize::from(n % USERS >= USERS / 2)];
        *half = (half.0 + 1, half.1 + message.len() as u64);
    }
    for client in &mut clients {
        client.logout()?;
    }
    let (quiet_rate, quiet_count) = append_rate(&cyrus, 0, 300, || false)?;
    eprintln!("backfill: another user's APPENDs {quiet_rate:.0}/s with no back-fill");

    let _broker = lab.broker()?;
    let _collector = lab.spawn("bonnie-collector", &[])?;
    let _workers: Vec<_> = (0..workers)
        .map(|_| lab.worker())
        .collect::<Result<_, _>>()?;
    let (unthrottled, probes) =
        run_backfill(&lab, &cyrus, 0..USERS / 2, None, halves[0], quiet_count)?;
    let (throttled, _) = run_backfill(
        &lab,
        &cyrus,
        USERS / 2..USERS,
        Some(throttled),
        halves[1],
        quiet_count + probes,
    )?;
    Ok(json!({
        "workers": workers,
        "cyrus_appends_per_s_before": crate::round(quiet_rate, 0),
        "unthrottled": unthrottled,
        "throttled": throttled,
    }))
}
