//! A whole installation against real servers: OpenLDAP, Cyrus IMAP 3.6 notifying the exec
//! dealer, and a bonnie cluster (broker, one worker with the archive handlers and the given
//! groupware plugins, a collector), with users' mailboxes created by the Cyrus admin.

use bonnie_imap::quote;

use crate::{
    cluster::Cluster,
    cyrus::{ADMIN, Cyrus, Notify},
    ldap::Slapd,
    paths,
    process::ChildGuard,
    storages::{Archive, Storage},
};

/// The servers and bonnie's processes, stopped when dropped.
pub struct CyrusLab {
    /// The bonnie cluster.
    pub cluster: Cluster,
    /// Cyrus IMAP.
    pub cyrus: Cyrus,
    /// The directory.
    pub ldap: Slapd,
    _processes: Vec<ChildGuard>,
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
        Self::start_prepared(storage, groupware, users, |cluster| {
            if !extra.is_empty() {
                let config =
                    std::fs::read_to_string(cluster.config()).expect("reading the configuration");
                std::fs::write(cluster.config(), format!("{config}\n{extra}\n"))
                    .expect("writing the configuration");
            }
        })
    }

    /// Like [`CyrusLab::start_on`], with `prepare` run on the cluster before anything starts
    /// (to change the configuration's tables, write secrets' files...).
    pub fn start_prepared(
        storage: Storage,
        groupware: &[&str],
        users: &[&str],
        prepare: impl FnOnce(&Cluster),
    ) -> Self {
        let ldap = Slapd::start();
        let mut cyrus = Cyrus::new();
        let cluster = Cluster::for_cyrus(&cyrus, &ldap, groupware);
        prepare(&cluster);
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
        admin.logout().expect("the admin logs out");
        Self {
            cluster,
            cyrus,
            ldap,
            _processes: processes,
            _archive: archive,
        }
    }

    /// The storage the archive is on.
    pub fn archive(&self) -> &Archive {
        &self._archive
    }

    /// Waits until every notification Cyrus sent so far is archived.
    pub fn wait_until_archived(&self) {
        self.cyrus.wait_until_archived(&self.cluster);
    }
}
