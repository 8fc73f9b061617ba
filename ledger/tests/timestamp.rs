//! RFC 3161 time stamps from a local TSA (Debian's `openssl ts -reply` behind a one-request
//! HTTP responder): the token is kept with a published checkpoint, `openssl ts -verify` accepts
//! it, and refuses it once the checkpoint is changed.

use std::{
    fs,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::TcpListener,
    path::Path,
    process::Command,
    thread,
    time::Duration,
};

use bonnie_ledger::{
    ArchiveKey, Checkpoint, Entry, FindingKind, LeafData, LeafKind, MemoryStore, NodeStore as _,
    StoredCheckpoint, append,
    checkpoint::publish,
    timestamp::{TimestampRequest, check_response, request_timestamp},
    verify,
};

/// The TSA's configuration (as in the reference recipe): a throwaway CA, a TSA certificate with
/// the critical timeStamping extended key usage, SHA-256 signatures.
const TS_CNF: &str = "\
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ v3_tsa ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = .
serial = ./tsaserial
crypto_device = builtin
signer_cert = ./tsa.crt
certs = ./tsa.crt
signer_key = ./tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
";

/// Runs openssl in `dir`; returns whether it succeeded and what it printed.
fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (Debian's openssl package)");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

fn make_tsa(dir: &Path) {
    fs::write(dir.join("ts.cnf"), TS_CNF).unwrap();
    fs::write(dir.join("tsaserial"), "01\n").unwrap();
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let steps: [&[&str]; 3] = [
        &[
            &["req", "-x509", "-new"],
            &key[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=test CA",
                "-config",
                "ts.cnf",
                "-extensions",
                "v3_ca",
            ],
        ]
        .concat(),
        &[
            &["req", "-new"],
            &key[..],
            &[
                "-keyout",
                "tsa.key",
                "-out",
                "tsa.csr",
                "-subj",
                "/CN=test TSA",
                "-config",
                "ts.cnf",
            ],
        ]
        .concat(),
        &[
            "x509",
            "-req",
            "-in",
            "tsa.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "tsa.crt",
            "-days",
            "2",
            "-extfile",
            "ts.cnf",
            "-extensions",
            "v3_tsa",
        ],
    ];
    for step in steps {
        let (ok, printed) = openssl(dir, step);
        assert!(ok, "openssl {step:?}: {printed}");
    }
}

/// The local TSA's TimeStampResp to a TimeStampReq.
fn tsa_reply(dir: &Path, query: &[u8]) -> Vec<u8> {
    fs::write(dir.join("req.tsq"), query).unwrap();
    let (ok, printed) = openssl(
        dir,
        &[
            "ts",
            "-reply",
            "-config",
            "ts.cnf",
            "-section",
            "tsa_config1",
            "-queryfile",
            "req.tsq",
            "-out",
            "resp.tsr",
        ],
    );
    assert!(ok, "openssl ts -reply: {printed}");
    fs::read(dir.join("resp.tsr")).unwrap()
}

/// Serves one RFC 3161 request over HTTP on a free loopback port: the body goes to
/// `openssl ts -reply`, its answer back as `application/timestamp-reply`. Returns the URL.
fn serve_one_request(dir: &Path) -> (String, thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/tsa", listener.local_addr().unwrap());
    let dir = dir.to_path_buf();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut query = vec![0; length];
        reader.read_exact(&mut query).unwrap();
        let reply = tsa_reply(&dir, &query);
        let mut stream = reader.into_inner();
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/timestamp-reply\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            reply.len()
        )
        .unwrap();
        stream.write_all(&reply).unwrap();
        head
    });
    (url, server)
}

#[test]
fn a_checkpoint_stamped_by_a_local_tsa_verifies_with_openssl_and_fails_once_changed() {
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path();
    make_tsa(lab);
    let key = ArchiveKey::generate(&lab.join("archive.key"), "archive.test").unwrap();
    let mut store = MemoryStore::new();
    append(
        &mut store,
        (0..3).map(|i| Entry {
            kind: LeafKind::Record,
            id: format!("job-{i}"),
            record_digest: [i; 32],
            payload_digests: Vec::new(),
            refers_to: None,
        }),
    )
    .unwrap();
    let checkpoint = Checkpoint::of_tree(&store, key.name(), None, jiff::Timestamp::now()).unwrap();
    let note = key.sign(&checkpoint).unwrap();

    let (url, server) = serve_one_request(lab);
    let (response, time) =
        request_timestamp(&url, note.as_bytes(), Duration::from_secs(60)).unwrap();
    let request_head = server.join().unwrap();
    assert!(
        request_head
            .to_ascii_lowercase()
            .contains("content-type: application/timestamp-query"),
        "{request_head}"
    );
    assert!(time.as_second() >= checkpoint.time.as_second() - 1);
    assert_eq!(check_response(&response, note.as_bytes()).unwrap(), time);

    let published = lab.join("published");
    let note_path = publish(&published, checkpoint.size, &note, Some(&response)).unwrap();
    let token_path = published.join("3.tsr");
    let openssl_verify = |data: &Path| {
        openssl(
            lab,
            &[
                "ts",
                "-verify",
                "-data",
                data.to_str().unwrap(),
                "-in",
                token_path.to_str().unwrap(),
                "-CAfile",
                "ca.crt",
                "-untrusted",
                "tsa.crt",
            ],
        )
    };
    let (ok, printed) = openssl_verify(&note_path);
    assert!(ok && printed.contains("Verification: OK"), "{printed}");

    let tampered = note.replacen("\n3\n", "\n2\n", 1);
    fs::write(&note_path, &tampered).unwrap();
    let (ok, printed) = openssl_verify(&note_path);
    assert!(!ok && printed.contains("Verification: FAILED"), "{printed}");
    assert!(check_response(&response, tampered.as_bytes()).is_err());

    // The verifier checks a stored token against its checkpoint: this one's passes, and the
    // same token kept with another (validly signed) checkpoint of the tree does not.
    let stored: Vec<(u64, Vec<u8>)> = (0..3).map(|seq| (seq, store.leaf(seq).unwrap())).collect();
    let recomputed: Vec<LeafData> = stored
        .iter()
        .map(|(_, bytes)| LeafData::decode(bytes).unwrap())
        .collect();
    let later = Checkpoint {
        time: checkpoint
            .time
            .checked_add(jiff::SignedDuration::from_secs(60))
            .unwrap(),
        ..checkpoint.clone()
    };
    let kept = |note: &str| StoredCheckpoint {
        size: 3,
        note: note.to_string(),
        timestamp_response: Some(response.clone()),
    };
    let check = |kept: StoredCheckpoint| {
        let leaves = stored.iter().cloned().map(Ok);
        verify(&key.public(), &[kept], leaves, recomputed.clone()).unwrap()
    };
    assert!(check(kept(&note)).is_clean());
    let report = check(kept(&key.sign(&later).unwrap()));
    let finding = report.first().unwrap();
    assert_eq!(
        (finding.kind, finding.checkpoint),
        (FindingKind::BadSignature, Some(3))
    );
    assert!(finding.detail.contains("time stamp"), "{}", finding.detail);
}

#[test]
fn a_tsa_that_answers_with_an_error_status_is_named_in_the_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/tsa", listener.local_addr().unwrap());
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buffer = [0u8; 4096];
        let _ = stream.read(&mut buffer).unwrap();
        stream
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
    });
    let error = request_timestamp(&url, b"note", Duration::from_secs(60)).unwrap_err();
    server.join().unwrap();
    let message = error.to_string();
    assert!(
        message.contains(&url) && message.contains("503"),
        "{message}"
    );
}

#[test]
fn a_token_answering_another_request_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path();
    make_tsa(lab);
    let asked = TimestampRequest::new(b"checkpoint").unwrap();
    let other = TimestampRequest::new(b"checkpoint").unwrap();
    let reply = tsa_reply(lab, &other.der);
    assert!(other.check(&reply).is_ok());
    let error = asked.check(&reply).unwrap_err().to_string();
    assert!(error.contains("nonce"), "{error}");
}
