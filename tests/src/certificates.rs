//! Self-signed server certificates for `localhost`, made with openssl, for the TLS of the real
//! servers the tests start (Cyrus, Postfix); clients trust the certificate itself as their CA.

use std::{path::Path, process::Command};

use crate::process;

/// Writes a self-signed certificate for `localhost` to `cert` and its key to `key` (PEM).
pub fn localhost(cert: &Path, key: &Path) {
    let made = process::run(
        "openssl",
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args([
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost",
            ])
            // A server's own certificate, not a CA's (webpki refuses a CA as server).
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .args(["-addext", "extendedKeyUsage=serverAuth"])
            .arg("-keyout")
            .arg(key)
            .arg("-out")
            .arg(cert),
    );
    assert!(
        made.status.success(),
        "openssl: {}",
        process::describe(&made)
    );
}
