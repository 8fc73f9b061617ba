//! A whole installation against real servers: OpenLDAP, Cyrus IMAP 3.6 notifying the exec
//! dealer, and a bonnie cluster (broker, one worker with the archive handlers and the given
//! groupware plugins, a collector), with users' mailboxes created by the Cyrus admin.

use std::cell::Cell;

use bonnie_imap::quote;

use crate::{
    cluster::Cluster,
    cyrus::{ADMIN, Cyrus, Notify},
    ldap::Slapd,
    paths,
    process::{self, ChildGuard},
    storages::{Archive, Storage},
};

/// The shared folder [`CyrusLab::wait_until_archived`] appends its probes to.
pub const PROBE: &str = "bonnie-probe";

/// The servers and bonnie's processes, stopped when dropped.
pub struct CyrusLab {
    /// The bonnie cluster.
    pub cluster: Cluster,
    /// Cyrus IMAP.
    pub cyrus: Cyrus,
    /// The directory.
    pub ldap: Slapd,
    _processes: Vec<ChildGuard>,
    /// How many probes [`CyrusLab::wait_until_archived`] appended so far.
    probes: Cell<u32>,
    /// Dropped after the processes: the search server outlives the worker.
    _archive: Archive,
}

impl CyrusLab {
    /// Starts everything, with the `groupware` plugins (`bonnie-changelog`...) loaded too, and
    /// creates the mailboxes of `users`.
    pub fn start(groupware: &[&str], users: &[&str]) -> Self {
        Self::start_on(Storage::Sqlite, groupware, users)
    }

    /// Like [`CyrusLab::start`], with the archive on `storage`.
    pub fn start_on(storage: Storage, groupware: &[&str], users: &[&str]) -> Self {
        Self::start_configured(storage, groupware, users, "")
    }

    /// Like [`CyrusLab::start_on`], with `extra` (TOML of new tables, such as a groupware
    /// plugin's `[plugins.freebusy]`) added to the configuration before anything starts.
    pub fn start_configured(
        storage: Storage,
        groupware: &[&str],
        users: &[&str],
        extra: &str,
    ) -> Self {
        let ldap = Slapd::start();
        let mut cyrus = Cyrus::new();
        let cluster = Cluster::for_cyrus(&cyrus, &ldap, groupware);
        if !extra.is_empty() {
            let config =
                std::fs::read_to_string(cluster.config()).expect("reading the configuration");
            std::fs::write(cluster.config(), format!("{config}\n{extra}\n"))
                .expect("writing the configuration");
        }
        let archive = cluster.use_storage(storage);
        let processes = vec![
            cluster.start_broker(),
            cluster.start_worker("worker"),
            cluster.start_collector("collector"),
        ];
        let (dealer, config) = (paths::bin("bonnie-dealer"), cluster.config());
        cyrus.start(Notify::Exec {
            dealer: &dealer,
            config: &config,
        });
        let mut admin = cyrus.login(ADMIN);
        for user in users {
            admin
                .run(&format!("CREATE {}", quote(&format!("user/{user}"))), &[])
                .unwrap_or_else(|e| panic!("creating the mailbox of {user}: {e}"));
        }
        for command in [
            format!("CREATE {PROBE}"),
            format!("SETACL {PROBE} {ADMIN} lrswipkxtecdan"),
        ] {
            admin
                .run(&command, &[])
                .unwrap_or_else(|e| panic!("{command}: {e}"));
        }
        admin.logout().expect("the admin logs out");
        Self {
            cluster,
            cyrus,
            ldap,
            _processes: processes,
            _archive: archive,
            probes: Cell::new(0),
        }
    }

    /// Waits until every notification Cyrus sent so far is archived.
    ///
    /// notifyd runs the dealer for one notification after the other (fork, exec, wait), so
    /// once the notification of a probe message, appended now, is a finished job, every
    /// notification sent before it was handed over; then the broker is waited for until it
    /// holds nothing unfinished. A fixed pause would be too short on a loaded machine.
    pub fn wait_until_archived(&self) {
        let probe = self.probes.get() + 1;
        self.probes.set(probe);
        let message_id = format!("<probe-{probe}@bonnie-lab.invalid>");
        let message = format!(
            "From: probe@bonnie-lab.invalid\r\nMessage-ID: {message_id}\r\n\
             Subject: probe {probe}\r\n\r\nThe lab waits for this message.\r\n"
        );
        let mut admin = self.cyrus.login(ADMIN);
        admin
            .append(PROBE, &Default::default(), message.as_bytes())
            .expect("appending the probe");
        admin.logout().expect("the admin logs out");
        let pattern = format!("%{message_id}%");
        process::wait_until("the probe's notification finished", || {
            self.cluster
                .job_store()
                .query_row(
                    "SELECT count(*) FROM jobs WHERE CAST(notification AS TEXT) LIKE ?1 \
                     AND state NOT IN ('PENDING', 'ALLOC', 'POSTPONED')",
                    [&pattern],
                    |row| row.get::<_, i64>(0),
                )
                .is_ok_and(|n| n > 0)
        });
        process::wait_until("every job finished", || {
            self.cluster.idle() && self.cluster.status()["waiting_for_collectors"] == 0
        });
    }
}
