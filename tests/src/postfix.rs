//! A real Postfix from Debian (`postfix`, installed by `apt-get install postfix` with the
//! "No configuration" answer) as a private instance in a temporary folder, set up as
//! ../shared/reference/postfix/RECIPE.md describes: its own config, queue and data folders,
//! chroot off, loopback only, SMTP on a free port, the log written by postlogd to its
//! `maillog_file`, everything delivered over LMTP to Cyrus or relayed over SMTP to another
//! instance.

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use tempfile::TempDir;

use crate::{cluster::free_port, paths, process};

/// Where an instance sends everything it accepts.
pub enum NextHop {
    /// LMTP to Cyrus's pre-authenticated TCP port.
    Lmtp(u16),
    /// SMTP to another instance's port.
    Smtp(u16),
}

/// One running Postfix instance; stopped on drop.
pub struct Postfix {
    dir: TempDir,
    /// Its SMTP port on 127.0.0.1.
    pub smtp_port: u16,
}

impl Postfix {
    /// True if Debian's Postfix is installed here.
    pub fn installed() -> bool {
        Path::new("/usr/sbin/postfix").exists()
            && Path::new("/usr/lib/postfix/sbin/master").exists()
    }

    /// Sets up and starts an instance logging as `syslog_name` on host `hostname`, with long
    /// queue IDs or short ones, handing everything to `next`.
    pub fn start(syslog_name: &str, hostname: &str, long_queue_ids: bool, next: NextHop) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("bonnie-postfix-")
            .tempdir()
            .expect("a temporary folder");
        let lab = dir.path();
        for sub in ["etc", "spool", "data"] {
            std::fs::create_dir_all(lab.join(sub)).expect("creating the Postfix lab");
        }
        let status = Command::new("chown")
            .arg("mail")
            .arg(lab.join("data"))
            .status()
            .expect("running chown");
        assert!(
            status.success(),
            "the data folder must belong to mail_owner"
        );
        let reference = paths::repo_root().join("../shared/reference/postfix");
        let read = |name: &str| {
            std::fs::read_to_string(reference.join(name))
                .expect("a reference file")
                .replace("@LAB@", &lab.to_string_lossy())
                .replace("@ROOT@", "")
        };
        let smtp_port = free_port();
        let transport = match next {
            NextHop::Lmtp(port) => format!("lmtp:inet:127.0.0.1:{port}"),
            NextHop::Smtp(port) => format!("smtp:[127.0.0.1]:{port}"),
        };
        let mut main_cf: String = read("main.cf")
            .lines()
            .filter(|line| {
                ![
                    "myhostname",
                    "meta_directory",
                    "setgid_group",
                    "enable_long_queue_ids",
                    "default_transport",
                    "relay_transport",
                ]
                .iter()
                .any(|key| line.starts_with(&format!("{key} =")))
            })
            .map(|line| format!("{line}\n"))
            .collect();
        main_cf.push_str(&format!(
            "myhostname = {hostname}\nsyslog_name = {syslog_name}\n\
             meta_directory = /etc/postfix\nsetgid_group = postdrop\n\
             enable_long_queue_ids = {}\ndefault_transport = {transport}\nrelay_transport = {transport}\n",
            if long_queue_ids { "yes" } else { "no" }
        ));
        std::fs::write(lab.join("etc/main.cf"), main_cf).expect("writing main.cf");
        let master_cf =
            read("master.cf").replace("127.0.0.1:2525", &format!("127.0.0.1:{smtp_port}"));
        std::fs::write(lab.join("etc/master.cf"), master_cf).expect("writing master.cf");
        let postfix = Self { dir, smtp_port };
        let output = process::run("postfix start", postfix.postfix_command().arg("start"));
        assert!(
            output.status.success(),
            "postfix start failed:\n{}\n{}",
            process::describe(&output),
            postfix.maillog_text()
        );
        process::wait_until("Postfix to accept SMTP", || {
            TcpStream::connect(("127.0.0.1", postfix.smtp_port)).is_ok()
        });
        postfix
    }

    fn postfix_command(&self) -> Command {
        let mut command = Command::new("/usr/sbin/postfix");
        command.arg("-c").arg(self.path().join("etc"));
        command
    }

    /// The instance's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Its `maillog_file`.
    pub fn maillog(&self) -> PathBuf {
        self.path().join("maillog")
    }

    /// What it logged so far.
    pub fn maillog_text(&self) -> String {
        std::fs::read_to_string(self.maillog()).unwrap_or_default()
    }

    /// Submits `message` over SMTP from `from` to `to`; the queue ID Postfix gave it.
    pub fn submit(&self, from: &str, to: &[&str], message: &[u8]) -> String {
        let queued = transfer(self.smtp_port, "EHLO", from, to, message, 1);
        queued
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

/// One SMTP (`hello` = `EHLO`) or LMTP (`LHLO`) transaction on 127.0.0.1 `port`: `message`
/// from `from` to `to`, dot-stuffed, with `data_replies` replies after its end (LMTP gives one
/// per recipient); the last of them.
pub fn transfer(
    port: u16,
    hello: &str,
    from: &str,
    to: &[&str],
    message: &[u8],
    data_replies: usize,
) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting to SMTP or LMTP");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut expect = |code: &str| -> String {
        loop {
            let mut line = String::new();
            reader
                .read_line(&mut line)
                .expect("reading the server's reply");
            assert!(
                line.starts_with(code),
                "{hello}: expected {code}, got {line:?}"
            );
            if line.as_bytes().get(3) != Some(&b'-') {
                return line;
            }
        }
    };
    expect("220");
    writer
        .write_all(format!("{hello} bonnie-tests.example\r\n").as_bytes())
        .unwrap();
    expect("250");
    writer
        .write_all(format!("MAIL FROM:<{from}>\r\n").as_bytes())
        .unwrap();
    expect("250");
    for rcpt in to {
        writer
            .write_all(format!("RCPT TO:<{rcpt}>\r\n").as_bytes())
            .unwrap();
        expect("250");
    }
    writer.write_all(b"DATA\r\n").unwrap();
    expect("354");
    let mut data = Vec::new();
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            data.push(b'.');
        }
        data.extend_from_slice(line);
    }
    data.extend_from_slice(b".\r\n");
    writer.write_all(&data).unwrap();
    let mut last = String::new();
    for _ in 0..data_replies {
        last = expect("250");
    }
    writer.write_all(b"QUIT\r\n").unwrap();
    last
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = self.postfix_command().arg("stop").output();
    }
}
