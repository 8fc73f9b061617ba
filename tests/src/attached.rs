//! A bonnie attached to a real Cyrus and directory, as the back-fill and reconciliation tests
//! run it: [`Cluster::for_cyrus`] with its broker, two workers and collector running, Cyrus
//! notifying the exec dealer or nobody at all (a Cyrus bonnie is not attached to yet).

use crate::{
    cluster::Cluster,
    cyrus::{Cyrus, Notify},
    ldap::Slapd,
    paths,
    process::ChildGuard,
};

/// Where Cyrus's notifications go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notifications {
    /// To the exec dealer, archived live.
    Exec,
    /// Nowhere: bonnie hears nothing of what happens in Cyrus.
    Off,
}

/// The running lab. Its processes stop before its folders go.
pub struct Attached {
    _processes: Vec<ChildGuard>,
    /// bonnie's side.
    pub cluster: Cluster,
    /// Cyrus, started.
    pub cyrus: Cyrus,
    _ldap: Slapd,
}

impl Attached {
    /// Starts the directory, bonnie (broker, workers `worker-1` and `worker-2`, collector; the
    /// archive handlers and the changelog, whose message trails reconciliation compares flags
    /// with, as the shipped configuration has them) and Cyrus with `notifications`.
    pub fn start(notifications: Notifications) -> Self {
        Self::start_with(notifications, &["bonnie-changelog"])
    }

    /// [`Attached::start`] with these plugins beside the archive handlers (none: an archive
    /// made before the changelog was enabled).
    pub fn start_with(notifications: Notifications, groupware: &[&str]) -> Self {
        Self::start_configured(notifications, groupware, |_| {})
    }

    /// [`Attached::start`] with a ledger signing key (`var/archive.key`, made by `bonnie
    /// ledger init`), so checkpoints are signed and exports can be made.
    pub fn start_with_ledger(notifications: Notifications) -> Self {
        Self::start_configured(notifications, &["bonnie-changelog"], |cluster| {
            let mut config = std::fs::read_to_string(cluster.config()).expect("the configuration");
            config.push_str("\n[ledger]\nsigning_key = \"var/archive.key\"\n");
            std::fs::write(cluster.config(), config).expect("writing the configuration");
            let init = cluster.bonnie(&["ledger", "init", "--name", "archive.test/bonnie"]);
            assert!(init.status.success(), "{}", crate::process::describe(&init));
        })
    }

    fn start_configured(
        notifications: Notifications,
        groupware: &[&str],
        configure: impl FnOnce(&Cluster),
    ) -> Self {
        let ldap = Slapd::start();
        let mut cyrus = Cyrus::new();
        let cluster = Cluster::for_cyrus(&cyrus, &ldap, groupware);
        configure(&cluster);
        let mut processes = vec![cluster.start_broker()];
        processes.extend(cluster.start_workers(&["worker-1", "worker-2"]));
        let (dealer, config) = (paths::bin("bonnie-dealer"), cluster.config());
        cyrus.start(match notifications {
            Notifications::Exec => Notify::Exec {
                dealer: &dealer,
                config: &config,
            },
            Notifications::Off => Notify::Off,
        });
        processes.push(cluster.start_collector("collector"));
        Self {
            _processes: processes,
            cluster,
            cyrus,
            _ldap: ldap,
        }
    }
}

/// Makes `login`'s INBOX, as the admin.
pub fn create_user(cyrus: &Cyrus, login: &str) {
    let mut admin = cyrus.login(crate::cyrus::ADMIN);
    let path = bonnie_imap::quote(&format!("user/{login}"));
    admin
        .run(&format!("CREATE {path}"), &[])
        .unwrap_or_else(|e| panic!("CREATE {path}: {e}"));
    admin.logout().expect("the admin logs out");
}
