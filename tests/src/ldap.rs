//! A real OpenLDAP slapd (Debian's `slapd`, installed by scripts/test) in a temporary folder,
//! loaded with the Kolab-like tree of ../shared/reference/ldap, on a free loopback port.

use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::{
    cluster::free_port,
    paths,
    process::{self, ChildGuard},
};

/// A running slapd.
pub struct Slapd {
    /// `ldap://127.0.0.1:PORT/`.
    pub url: String,
    _process: ChildGuard,
    _dir: TempDir,
}

/// The service account the tree has, and its password.
pub const SERVICE_DN: &str = "uid=kolab-service,ou=Special Users,dc=example,dc=org";
/// The service account's password.
pub const SERVICE_PASSWORD: &str = "service-secret";
/// The directory's administrator (config.ldif's olcRootDN), who may add entries.
const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
/// Its password.
const ROOT_PASSWORD: &str = "secret";

impl Slapd {
    /// Builds the directory and starts slapd in the foreground (killed on drop).
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("bonnie-ldap-")
            .tempdir()
            .expect("a temporary folder");
        let lab = dir.path();
        for sub in ["slapd.d", "db", "run"] {
            std::fs::create_dir_all(lab.join(sub)).expect("creating the LDAP lab");
        }
        let reference = paths::repo_root().join("../shared/reference/ldap");
        let config = std::fs::read_to_string(reference.join("config.ldif")).expect("config.ldif");
        std::fs::write(
            lab.join("config.ldif"),
            config.replace("$LDAPLAB", &lab.to_string_lossy()),
        )
        .unwrap();
        let slapd_d = lab.join("slapd.d");
        let load = |args: &[&str], file: &std::path::Path| {
            let output = process::run(
                "slapadd",
                Command::new("slapadd")
                    .args(args)
                    .arg("-F")
                    .arg(&slapd_d)
                    .arg("-l")
                    .arg(file),
            );
            assert!(
                output.status.success(),
                "slapadd failed (is slapd installed?):\n{}",
                process::describe(&output)
            );
        };
        load(&["-n0"], &lab.join("config.ldif"));
        load(&["-b", "dc=example,dc=org"], &reference.join("base.ldif"));
        let port = free_port();
        let url = format!("ldap://127.0.0.1:{port}/");
        let child = ChildGuard::spawn(
            "slapd",
            Command::new("slapd")
                .args(["-d", "0", "-h", &url, "-F"])
                .arg(&slapd_d)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        process::wait_until("slapd to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self {
            url,
            _process: child,
            _dir: dir,
        }
    }

    /// Adds the entries of `ldif` to the running directory as its administrator (ldapadd).
    pub fn add(&self, ldif: &str) {
        let mut child = Command::new("ldapadd")
            .args(["-x", "-H", &self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapadd (is ldap-utils installed?)");
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), ldif.as_bytes()).unwrap();
        drop(child.stdin.take());
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", process::describe(&output));
    }

    /// The entryUUID slapd gave a user (`uid=<uid>`), read with ldapsearch.
    pub fn entry_uuid(&self, uid: &str) -> String {
        let output = process::run(
            "ldapsearch",
            Command::new("ldapsearch").args([
                "-x",
                "-LLL",
                "-H",
                &self.url,
                "-b",
                "dc=example,dc=org",
                &format!("(uid={uid})"),
                "entryUUID",
            ]),
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("entryUUID: ").map(str::to_string))
            .unwrap_or_else(|| panic!("no entryUUID for {uid}: {}", process::describe(&output)))
    }
}
