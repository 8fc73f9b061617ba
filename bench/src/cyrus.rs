//! What bonnie costs Cyrus: APPENDs per second of one IMAP client against a real Cyrus 3.6,
//! with notifications off, with the exec dealer, and with the dealer daemon, in the same run.

use std::{process::Command, time::Instant};

use bonnie_tests::cyrus::{ADMIN, Cyrus, Notify};

use crate::lab::Lab;

/// The ways Cyrus is set up.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// No notifications.
    Off,
    /// notifyd runs bonnie-dealer per event.
    Exec,
    /// imapd writes to the dealer daemon's dlist socket.
    Daemon,
}

fn message(n: usize) -> Vec<u8> {
    format!(
        "From: Jane Doe <jane.doe@example.org>\r\nTo: John Doe <john.doe@example.org>\r\nSubject: bench {n}\r\n\
         Message-ID: <bench-{n}@example.org>\r\nDate: Sat, 28 Nov 2026 17:13:36 +0000\r\n\r\nHello, message {n}.\r\n"
    )
    .into_bytes()
}

/// APPENDs per second in `mode`, over `count` appends.
pub fn appends_per_s(mode: Mode, count: usize) -> anyhow::Result<f64> {
    let lab = Lab::new()?;
    open_to_cyrus(&lab)?;
    let dealer = crate::lab::bin_dir()?.join("bonnie-dealer");
    let (config, socket) = (
        lab.path().join("bonnie.toml"),
        lab.path().join("var/dealer.sock"),
    );
    let mut running = Vec::new();
    if !matches!(mode, Mode::Off) {
        running.push(lab.broker()?);
        running.push(lab.worker()?);
    }
    if matches!(mode, Mode::Daemon) {
        running.push(lab.dealer_daemon()?);
    }
    let mut cyrus = Cyrus::new();
    cyrus.start(match mode {
        Mode::Off => Notify::Off,
        Mode::Exec => Notify::Exec {
            dealer: &dealer,
            config: &config,
        },
        Mode::Daemon => Notify::Daemon { socket: &socket },
    });
    let mut admin = cyrus.login(ADMIN);
    admin.run("CREATE \"user/john.doe@example.org\"", &[])?;
    let mut john = cyrus.login("john.doe@example.org");
    let messages: Vec<Vec<u8>> = (0..count).map(message).collect();
    let started = Instant::now();
    for message in &messages {
        john.append("INBOX", &Default::default(), message)?;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    john.logout()?;
    drop(running);
    Ok(rate)
}

/// Lets user cyrus into the lab: to the dealer daemon's socket, and, for the exec dealer that
/// notifyd runs as cyrus, to the configuration and the dealer's spool.
pub fn open_to_cyrus(lab: &Lab) -> anyhow::Result<()> {
    std::fs::create_dir_all(lab.path().join("var/dealer-spool"))?;
    Command::new("chmod")
        .arg("755")
        .arg(lab.path())
        .arg(lab.path().join("var"))
        .status()?;
    Command::new("chmod")
        .arg("644")
        .arg(lab.path().join("bonnie.toml"))
        .status()?;
    Command::new("chown")
        .args(["-R", "cyrus:mail"])
        .arg(lab.path().join("var/dealer-spool"))
        .status()?;
    Ok(())
}
