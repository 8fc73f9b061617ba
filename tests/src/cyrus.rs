//! A real Cyrus IMAP 3.6 (Debian's `cyrus-imapd`, installed by scripts/test) in a temporary
//! folder, set up as ../shared/reference/cyrus/RECIPE.md describes, on free loopback ports,
//! with its notifications going to `bonnie-dealer` in exec mode, to the dealer daemon's dlist
//! socket, or nowhere.

use std::{
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use bonnie_imap::Connection;
use tempfile::TempDir;

use crate::{
    certificates,
    cluster::{Cluster, free_port},
    paths, process,
};

/// The shared folder [`Cyrus::wait_until_archived`] appends its probes to; the harness's
/// readers of the archive leave its records out.
pub const PROBE: &str = "bonnie-probe";

/// Probes appended by this test process so far.
static PROBES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A message as IMAP shows it in a folder ([`Cyrus::held`]): its bytes, its flags as Cyrus
/// spells them (without `\Recent`), its INTERNALDATE (ms).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Held {
    pub bytes: Vec<u8>,
    pub flags: std::collections::BTreeSet<String>,
    pub internaldate_ms: i64,
}

/// Where Cyrus sends its notifications.
pub enum Notify<'a> {
    /// notifyd runs `bonnie-dealer` for each event, with this configuration.
    Exec {
        /// The dealer binary.
        dealer: &'a Path,
        /// bonnie's configuration file.
        config: &'a Path,
    },
    /// imapd and lmtpd write to this dlist socket (the dealer daemon's).
    Daemon {
        /// The socket.
        socket: &'a Path,
    },
    /// No notifications.
    Off,
}

/// A Cyrus lab: its folder, ports and (once started) master with its services.
pub struct Cyrus {
    dir: TempDir,
    /// The IMAP port on 127.0.0.1.
    pub imap_port: u16,
    /// The LMTP port on 127.0.0.1.
    pub lmtp_port: u16,
    /// The IMAP-over-TLS port on 127.0.0.1, served once [`Cyrus::with_tls`] was asked for.
    pub imaps_port: u16,
    /// Whether Cyrus gets a self-signed certificate (STARTTLS on `imap_port`, TLS on
    /// `imaps_port`).
    tls: bool,
    master: Option<std::process::Child>,
    /// The bonnie configuration an exec-mode dealer is started with, kept for a restart.
    exec_config: Option<PathBuf>,
    /// imapd.conf lines added to the reference configuration ([`Cyrus::with_imapd_option`]).
    imapd_options: Vec<String>,
}

/// The admin user of the lab (`admins: cyrus`); any password is accepted.
pub const ADMIN: &str = "cyrus";

impl Cyrus {
    /// A lab folder and ports, Cyrus not started yet (so that bonnie's configuration can name
    /// them first).
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("bonnie-cyrus-")
            .tempdir()
            .expect("a temporary folder");
        Self {
            dir,
            imap_port: free_port(),
            lmtp_port: free_port(),
            imaps_port: free_port(),
            tls: false,
            master: None,
            exec_config: None,
            imapd_options: Vec::new(),
        }
    }

    /// Adds a line to Cyrus's imapd.conf (`suppress_capabilities: MOVE`, for a server
    /// without an extension).
    pub fn with_imapd_option(mut self, line: &str) -> Self {
        self.imapd_options.push(line.to_string());
        self
    }

    /// Gives Cyrus, once started, a self-signed certificate for `localhost` (made here with
    /// openssl, [`Cyrus::tls_certificate`]): STARTTLS on the IMAP port, TLS on `imaps_port`.
    pub fn with_tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// The PEM file of the certificate [`Cyrus::with_tls`] made, to be trusted by clients.
    pub fn tls_certificate(&self) -> PathBuf {
        self.path().join("etc/server.pem")
    }

    /// Sets up and starts Cyrus.
    pub fn start(&mut self, notify: Notify<'_>) {
        let lab = self.dir.path().to_path_buf();
        let (imap_port, lmtp_port) = (self.imap_port, self.lmtp_port);
        for sub in [
            "etc",
            "log",
            "run",
            "spool",
            "sieve",
            "config/socket",
            "config/proc",
            "config/lock",
            "config/log",
            "config/db",
        ] {
            std::fs::create_dir_all(lab.join(sub)).expect("creating the Cyrus lab");
        }
        let reference = paths::repo_root().join("../shared/reference/cyrus");
        let read = |name: &str| {
            std::fs::read_to_string(reference.join(name))
                .expect("a reference file")
                .replace("@LAB@", &lab.to_string_lossy())
        };
        let mut imapd: Vec<String> = read("imapd.conf")
            .lines()
            .filter(|l| {
                !l.starts_with("notifysocket:")
                    && !l.starts_with("event_notifier:")
                    && !l.starts_with("notify_external:")
            })
            .map(|l| {
                // The quota group crashes imapd (RECIPE.md G1).
                if l.starts_with("event_groups:") {
                    "event_groups: message flags access mailbox subscription".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect();
        match notify {
            Notify::Exec { dealer, .. } => {
                // notifyd runs the dealer as user cyrus, who may not enter the folders above
                // the build (a clone inside `mktemp -d` is 0700): it runs a copy in the lab.
                let runnable = lab.join("run/bonnie-dealer");
                std::fs::copy(dealer, &runnable).expect("copying bonnie-dealer into the lab");
                imapd.push(format!(
                    "notifysocket: {}/config/socket/notify",
                    lab.display()
                ));
                imapd.push("event_notifier: external".to_string());
                imapd.push(format!("notify_external: {}", runnable.display()));
            }
            Notify::Daemon { socket } => {
                imapd.push(format!("notifysocket: dlist:{}", socket.display()));
                imapd.push("event_notifier: external".to_string());
            }
            Notify::Off => {}
        }
        let mut services = read("cyrus.conf")
            .replace("127.0.0.1:9143", &format!("127.0.0.1:{imap_port}"))
            .replace("127.0.0.1:9024", &format!("127.0.0.1:{lmtp_port}"));
        if self.tls {
            let (cert, key) = (lab.join("etc/server.pem"), lab.join("etc/server.key"));
            certificates::localhost(&cert, &key);
            imapd.push(format!("tls_server_cert: {}", cert.display()));
            imapd.push(format!("tls_server_key: {}", key.display()));
            let imap_line = services
                .lines()
                .find(|l| l.trim_start().starts_with("imap "))
                .expect("an imap service in cyrus.conf")
                .to_string();
            let imaps_line = imap_line
                .replacen("imap ", "imaps ", 1)
                .replacen("imapd ", "imapd -s ", 1)
                .replace(
                    &format!("127.0.0.1:{imap_port}"),
                    &format!("127.0.0.1:{}", self.imaps_port),
                );
            services = services.replace(&imap_line, &format!("{imap_line}\n{imaps_line}"));
        }
        imapd.extend(self.imapd_options.iter().cloned());
        std::fs::write(lab.join("etc/imapd.conf"), imapd.join("\n") + "\n").unwrap();
        std::fs::write(lab.join("etc/cyrus.conf"), services).unwrap();
        std::fs::copy(
            reference.join("imapd.annotations.conf"),
            lab.join("etc/imapd.annotations.conf"),
        )
        .unwrap();
        let chown = process::run(
            "chown",
            Command::new("chown").args(["-R", "cyrus:mail"]).arg(&lab),
        );
        assert!(
            chown.status.success(),
            "chown (is cyrus-imapd installed?): {}",
            process::describe(&chown)
        );
        let chmod = process::run("chmod", Command::new("chmod").arg("755").arg(&lab));
        assert!(chmod.status.success());
        if let Notify::Exec { config, .. } = notify {
            self.exec_config = Some(config.to_path_buf());
        }
        self.spawn_master();
    }

    /// Starts master on the lab as set up, and waits until IMAP answers.
    fn spawn_master(&mut self) {
        let lab = self.dir.path().to_path_buf();
        let mut command = Command::new("/usr/lib/cyrus/bin/master");
        command
            .arg("-C")
            .arg(lab.join("etc/imapd.conf"))
            .arg("-M")
            .arg(lab.join("etc/cyrus.conf"))
            .arg("-p")
            .arg(lab.join("run/master.pid"))
            .arg("-L")
            .arg(lab.join("log/master.out"))
            .env_remove("BONNIE_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(config) = &self.exec_config {
            // notifyd starts the dealer with master's environment.
            command.env("BONNIE_CONFIG", config);
        }
        self.master = Some(
            command
                .spawn()
                .expect("starting Cyrus master (is cyrus-imapd installed?)"),
        );
        let imap_port = self.imap_port;
        process::wait_until("Cyrus to accept IMAP", || {
            TcpStream::connect(("127.0.0.1", imap_port)).is_ok()
        });
    }

    /// Stops Cyrus (master and its services) and waits until IMAP no longer answers; the
    /// lab stays, for [`Cyrus::restart`].
    pub fn stop(&mut self) {
        self.stop_master();
        let imap_port = self.imap_port;
        process::wait_until("Cyrus to stop answering IMAP", || {
            TcpStream::connect(("127.0.0.1", imap_port)).is_err()
        });
    }

    /// Starts Cyrus again on the same lab, after [`Cyrus::stop`].
    pub fn restart(&mut self) {
        assert!(self.master.is_none(), "Cyrus is still running");
        self.spawn_master();
    }

    /// SIGTERM to master, which stops its services, then itself; SIGKILL if it does not.
    fn stop_master(&mut self) {
        if let Some(mut master) = self.master.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(master.id().to_string())
                .status();
            for _ in 0..100 {
                if matches!(master.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = master.kill();
            let _ = master.wait();
        }
    }

    /// The lab folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The partition folder (message files).
    pub fn spool(&self) -> PathBuf {
        self.path().join("spool")
    }

    /// `127.0.0.1:PORT` of IMAP.
    pub fn imap_address(&self) -> String {
        format!("127.0.0.1:{}", self.imap_port)
    }

    /// How bonnie-imap reaches this Cyrus over plain TCP.
    pub fn imap_config(&self) -> bonnie_imap::Config {
        bonnie_imap::Config {
            address: self.imap_address(),
            timeout: Duration::from_secs(30),
            ..bonnie_imap::Config::default()
        }
    }

    /// A logged-in IMAP client (Cyrus accepts any password here).
    pub fn login(&self, user: &str) -> Connection {
        let mut client = Connection::connect(&self.imap_config()).expect("connecting to Cyrus");
        client.login(user, "secret").expect("logging in");
        client
    }

    /// The messages `folder` holds as `user` sees them (EXAMINE, so nothing changes), in byte
    /// order: what a restore or a back-fill is checked against.
    pub fn held(&self, user: &str, folder: &str) -> Vec<Held> {
        let mut client = self.login(user);
        let selected = client
            .examine(folder)
            .unwrap_or_else(|e| panic!("EXAMINE {folder} as {user}: {e}"));
        let mut held: Vec<Held> = match selected.exists.unwrap_or(0) {
            0 => Vec::new(),
            _ => client
                .uid_fetch("1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])", None)
                .unwrap_or_else(|e| panic!("UID FETCH in {folder} as {user}: {e}"))
                .into_iter()
                .map(|mut f| Held {
                    bytes: f.sections.remove("").expect("the message's bytes"),
                    flags: f
                        .flags
                        .iter()
                        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                        .cloned()
                        .collect(),
                    internaldate_ms: f.internal_date_ms().expect("an INTERNALDATE"),
                })
                .collect(),
        };
        client.logout().expect("logging out");
        held.sort();
        held
    }

    /// Waits until every notification this Cyrus sent so far is archived by `cluster`.
    ///
    /// notifyd runs the dealer for one notification after the other (fork, exec, wait), and
    /// the dealer daemon reads its socket in order, so once the notification of a probe
    /// message appended now is a finished job, every notification sent before it was handed
    /// over; then the broker is waited for until it holds nothing unfinished. A fixed pause
    /// is too short on a loaded machine.
    ///
    /// The probe is a message append, collected like any other: `cluster` must run a collector.
    pub fn wait_until_archived(&self, cluster: &Cluster) {
        let probe = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let message_id = format!("<probe-{probe}@bonnie-lab.invalid>");
        let message = format!(
            "From: probe@bonnie-lab.invalid\r\nMessage-ID: {message_id}\r\n\
             Subject: probe {probe}\r\n\r\nThe test harness waits for this message.\r\n"
        );
        let mut admin = self.login(ADMIN);
        // Made by the first probe; CREATE then fails, and SETACL says whether the folder is there.
        let _ = admin.run(&format!("CREATE {PROBE}"), &[]);
        let grant = format!("SETACL {PROBE} {ADMIN} lrswipkxtecdan");
        admin
            .run(&grant, &[])
            .unwrap_or_else(|e| panic!("{grant}: {e}"));
        admin
            .append(PROBE, &Default::default(), message.as_bytes())
            .expect("appending the probe");
        admin.logout().expect("the admin logs out");
        let pattern = format!("%{message_id}%");
        let mut polls = 0u32;
        process::wait_until("the probe's notification to be a finished job", || {
            // An exec dealer whose ACK came late (a loaded machine) spooled its notification,
            // and the probe is the last one: no later dealer forwards it. Forward every spool.
            polls += 1;
            if polls.is_multiple_of(100) {
                let flushed = cluster.flush();
                assert!(flushed.status.success(), "{}", process::describe(&flushed));
            }
            cluster
                .job_store()
                .query_row(
                    "SELECT count(*) FROM jobs WHERE CAST(notification AS TEXT) LIKE ?1 \
                     AND state NOT IN ('PENDING', 'ALLOC', 'POSTPONED')",
                    [&pattern],
                    |row| row.get::<_, i64>(0),
                )
                .is_ok_and(|n| n > 0)
        });
        cluster.wait_until_drained();
    }

    /// Delivers a message over LMTP.
    pub fn lmtp(&self, from: &str, to: &[&str], message: &[u8]) {
        crate::postfix::transfer(self.lmtp_port, "LHLO", from, to, message, to.len());
    }

    /// What master logged (notification errors among it).
    pub fn master_log(&self) -> String {
        std::fs::read_to_string(self.path().join("log/master.out")).unwrap_or_default()
    }
}

impl Default for Cyrus {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Cyrus {
    fn drop(&mut self) {
        self.stop_master();
    }
}

/// The flags of message `uid` of `folder` as the connection's user sees them; `None` when the
/// folder does not hold it.
pub fn uid_flags(imap: &mut Connection, folder: &str, uid: u32) -> Option<Vec<String>> {
    imap.examine(folder).expect("examining the folder");
    imap.uid_fetch(&uid.to_string(), "(UID FLAGS)", None)
        .expect("fetching flags")
        .into_iter()
        .find(|f| f.uid == Some(uid))
        .map(|f| f.flags)
}
