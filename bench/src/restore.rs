//! Restore into a real Cyrus 3.6, beside `mbsync`: the body-text corpus is appended to one
//! user's folder with flags (every third `\Seen`, every fifth `\Flagged`, every seventh
//! `$Label1`) while bonnie is not attached, back-filled into the archive, then `bonnie restore
//! --rate` unlimited puts the folder back into a new `Restored/...` folder (APPEND with flags
//! and INTERNALDATE, matched first, read back byte for byte). The same messages, written as a
//! Maildir with the same flags, are pushed by `mbsync` (Debian's isync: what a Cyrus admin
//! reaches for to put a mailbox back from a file backup) into another new folder of the same
//! Cyrus. Measured: messages/s and MB/s of each, every message checked there.

use std::{
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, bail};
use bonnie_tests::cyrus::{ADMIN, Cyrus, Notify};
use serde_json::{Value, json};

use crate::payload::{jobs, payload_lab, wait_for};

/// The user whose folder is restored.
const USER: &str = "restore@example.org";
/// The folder the corpus is in.
const SOURCE: &str = "Quelle";
/// The folder mbsync pushes the Maildir into.
const MBSYNC_TARGET: &str = "Mbsync";

/// The flags message `n` has.
fn flags(n: usize) -> Vec<&'static str> {
    [(3, "\\Seen"), (5, "\\Flagged"), (7, "$Label1")]
        .into_iter()
        .filter(|(every, _)| n.is_multiple_of(*every))
        .map(|(_, flag)| flag)
        .collect()
}

/// The Maildir info suffix of a message's flags (`:2,FS`, system flags only: mbsync keeps
/// keywords in no Maildir field).
fn maildir_info(flags: &[&str]) -> String {
    let mut letters: Vec<char> = flags
        .iter()
        .filter_map(|f| match *f {
            "\\Flagged" => Some('F'),
            "\\Seen" => Some('S'),
            _ => None,
        })
        .collect();
    letters.sort_unstable();
    format!(":2,{}", letters.into_iter().collect::<String>())
}

/// How many messages `folder` of the user holds.
fn count(cyrus: &Cyrus, folder: &str) -> anyhow::Result<u64> {
    let mut client = cyrus.login(USER);
    let exists = client.examine(folder)?.exists.unwrap_or(0);
    client.logout()?;
    Ok(u64::from(exists))
}

/// Runs the restore benchmark once: `messages` of the corpus, `workers` worker processes
/// archiving the back-fill.
pub fn figures(messages: usize, workers: usize) -> anyhow::Result<Value> {
    let corpus = crate::mailtext::corpus(messages)?;
    let bytes: u64 = corpus.iter().map(|m| m.len() as u64).sum();
    let mut cyrus = Cyrus::new();
    let lab = payload_lab(&cyrus, false, false)?;
    cyrus.start(Notify::Off);
    let mut admin = cyrus.login(ADMIN);
    admin.run(&format!("CREATE \"user/{USER}\""), &[])?;
    admin.logout()?;
    let mut client = cyrus.login(USER);
    client.create(SOURCE)?;
    for (n, message) in corpus.iter().enumerate() {
        client.append(
            SOURCE,
            &bonnie_imap::AppendOptions::flags(&flags(n)),
            message,
        )?;
    }
    client.logout()?;

    let _broker = lab.broker()?;
    let _collector = lab.spawn("bonnie-collector", &[])?;
    let _workers: Vec<_> = (0..workers)
        .map(|_| lab.worker())
        .collect::<Result<_, _>>()?;
    let output = lab
        .command("bonnie")
        .args(["backfill", "--json", "--rate", "1000000", "--user", USER])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .context("running bonnie backfill")?;
    if !output.status.success() {
        bail!(
            "bonnie backfill failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    wait_for("the broker to finish every back-filled job", || {
        let unfinished = jobs(&lab, "state IN ('PENDING', 'ALLOC', 'POSTPONED')")?;
        Ok((unfinished, unfinished == 0))
    })?;

    let mb = bytes as f64 / 1e6;
    let started = Instant::now();
    let output = lab
        .command("bonnie")
        .args([
            "restore", "--json", "--rate", "1000000", "--user", USER, "--folder", SOURCE,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .context("running bonnie restore")?;
    let restore_s = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "bonnie restore failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let report: Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "bonnie restore --json's report: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    let target = report["folders"][0]["target"]
        .as_str()
        .context("bonnie restore's report names no target")?;
    if report["appended_count"].as_u64() != Some(messages as u64)
        || count(&cyrus, target)? != messages as u64
    {
        bail!(
            "bonnie restore put {} of {messages} messages back: {report}",
            count(&cyrus, target)?
        );
    }

    // The same messages as a Maildir, pushed by mbsync.
    let maildir = lab.path().join("maildir");
    let folder = maildir.join(MBSYNC_TARGET);
    for part in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(folder.join(part))?;
    }
    for (n, message) in corpus.iter().enumerate() {
        let name = format!("{n}.bench.restore{}", maildir_info(&flags(n)));
        std::fs::write(folder.join("cur").join(name), message)?;
    }
    let config = lab.path().join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "IMAPAccount bench\nHost 127.0.0.1\nPort {port}\nUser {USER}\nPass secret\n\
             SSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore cyrus\nAccount bench\n\n\
             MaildirStore backup\nPath {dir}/\nSubFolders Verbatim\n\n\
             Channel push\nFar :cyrus:{MBSYNC_TARGET}\nNear :backup:{MBSYNC_TARGET}\n\
             Create Far\nSync Push\nSyncState *\n",
            port = cyrus.imap_port,
            dir = maildir.display(),
        ),
    )?;
    let started = Instant::now();
    let output = Command::new("mbsync")
        .arg("-c")
        .arg(&config)
        .arg("push")
        .output()
        .context("running mbsync (Debian package isync; scripts/bench installs it)")?;
    let mbsync_s = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "mbsync failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let pushed = count(&cyrus, MBSYNC_TARGET)?;
    if pushed != messages as u64 {
        bail!("mbsync pushed {pushed} of {messages} messages");
    }
    let n = messages as f64;
    eprintln!(
        "restore: {messages} messages ({mb:.1} MB): bonnie restore {restore_s:.1} s ({:.0} messages/s, {:.1} MB/s); \
         mbsync from a Maildir {mbsync_s:.1} s ({:.0} messages/s, {:.1} MB/s)",
        n / restore_s,
        mb / restore_s,
        n / mbsync_s,
        mb / mbsync_s
    );
    Ok(json!({
        "messages": messages,
        "mb": crate::round(mb, 1),
        "bonnie_restore": {
            "s": crate::round(restore_s, 2),
            "messages_per_s": crate::round(n / restore_s, 0),
            "mb_per_s": crate::round(mb / restore_s, 1),
        },
        "mbsync": {
            "s": crate::round(mbsync_s, 2),
            "messages_per_s": crate::round(n / mbsync_s, 0),
            "mb_per_s": crate::round(mb / mbsync_s, 1),
        },
    }))
}
