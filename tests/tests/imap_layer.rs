//! bonnie-imap against a real Cyrus 3.6: LOGIN and SASL PLAIN with and without SASL-IR,
//! STARTTLS and implicit TLS with a self-signed certificate, folders named in German, Russian
//! and Japanese created, listed and read with GETACL and GETMETADATA, APPEND with flags and
//! INTERNALDATE returning APPENDUID, STATUS, FETCH CHANGEDSINCE, STORE and MOVE, and a pool
//! whose connection Cyrus drops. A tiny fake server (a TcpListener in the test) plays what
//! Cyrus never does: a literal bomb, and a server without LITERAL+.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    thread::JoinHandle,
    time::Duration,
};

use bonnie_imap::{
    AppendOptions, Config, Connection, Credentials, Identity, ImapError, Pool, Security, StoreMode,
    tls,
};
use bonnie_tests::{
    cluster::Cluster,
    cyrus::{ADMIN, Cyrus, Notify},
    ldap::Slapd,
};
use serde_json::Value;

const JOHN: &str = "john.doe@example.org";
const FOLDERS: [&str; 3] = ["Büro", "Входящие", "日本語"];

fn started(cyrus: Cyrus) -> Cyrus {
    let mut cyrus = cyrus;
    cyrus.start(Notify::Off);
    let mut admin = cyrus.login(ADMIN);
    admin
        .create(&format!("user/{JOHN}"))
        .expect("creating john's account");
    admin.logout().unwrap();
    cyrus
}

fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Jane Doe <jane.doe@example.org>\r\nTo: John Doe <{JOHN}>\r\nSubject: {subject}\r\n\
         Date: Sat, 28 Nov 2026 17:13:36 +0000\r\nMessage-ID: <{}@example.org>\r\n\r\n{body}\r\n",
        subject.replace(' ', "-")
    )
    .into_bytes()
}

#[test]
fn login_and_sasl_plain_with_and_without_initial_response_work_against_cyrus() {
    let cyrus = started(Cyrus::new());
    let config = cyrus.imap_config();

    let mut plain = Connection::connect(&config).unwrap();
    assert!(plain.has("SASL-IR"), "{:?}", plain.capabilities());
    assert!(!plain.is_tls());
    // A password only a literal carries (8-bit): sent as LITERAL+, then synchronizing.
    plain.login(JOHN, "pässwört").unwrap();
    assert!(
        plain
            .list("", "INBOX")
            .unwrap()
            .iter()
            .any(|e| e.name == "INBOX")
    );
    let mut synchronizing = Connection::connect(&config).unwrap();
    synchronizing.set_non_synchronizing_literals(false);
    synchronizing.login(JOHN, "pässwört").unwrap();
    synchronizing.noop().unwrap();

    for initial_response in [Some(true), Some(false)] {
        let mut sasl = Connection::connect(&config).unwrap();
        sasl.authenticate_plain(None, JOHN, "secret", initial_response)
            .unwrap_or_else(|e| panic!("SASL-IR {initial_response:?}: {e}"));
        assert_eq!(sasl.status("INBOX").unwrap().messages, Some(0));
        // The admin acting for john sees john's INBOX as INBOX.
        let mut proxy = Connection::connect(&config).unwrap();
        proxy
            .authenticate_plain(Some(JOHN), ADMIN, "secret", initial_response)
            .unwrap();
        assert!(proxy.examine("INBOX").unwrap().read_only);
    }
}

#[test]
fn starttls_and_implicit_tls_with_a_self_signed_certificate_work_against_cyrus() {
    let cyrus = started(Cyrus::new().with_tls());
    let trusted = tls::client_config(Some(&cyrus.tls_certificate())).unwrap();
    let base = Config {
        server_name: Some("localhost".into()),
        tls: Some(trusted),
        ..cyrus.imap_config()
    };

    let starttls = Config {
        security: Security::StartTls,
        ..base.clone()
    };
    let mut connection = Connection::connect(&starttls).unwrap();
    assert!(connection.is_tls());
    assert!(
        !connection.has("STARTTLS"),
        "capabilities after STARTTLS: {:?}",
        connection.capabilities()
    );
    connection
        .authenticate_plain(None, JOHN, "secret", None)
        .unwrap();
    connection
        .append(
            "INBOX",
            &Default::default(),
            &message("over STARTTLS", "hello"),
        )
        .unwrap();
    assert_eq!(connection.status("INBOX").unwrap().messages, Some(1));

    let implicit = Config {
        address: format!("127.0.0.1:{}", cyrus.imaps_port),
        security: Security::Tls,
        ..base.clone()
    };
    let mut connection = Connection::connect(&implicit).unwrap();
    assert!(connection.is_tls());
    connection.login(JOHN, "secret").unwrap();
    assert_eq!(connection.status("INBOX").unwrap().messages, Some(1));

    // The certificate is checked: without the lab's certificate among the roots, or under
    // another name, TLS fails and nothing is sent.
    let untrusted = Config {
        tls: Some(tls::client_config(None).unwrap()),
        ..implicit.clone()
    };
    assert!(matches!(
        Connection::connect(&untrusted),
        Err(ImapError::Tls(_))
    ));
    let wrong_name = Config {
        server_name: Some("imap.example.org".into()),
        ..implicit
    };
    assert!(matches!(
        Connection::connect(&wrong_name),
        Err(ImapError::Tls(_))
    ));
}

#[test]
fn folders_with_non_ascii_names_are_created_listed_and_read_with_getacl_and_getmetadata() {
    let cyrus = started(Cyrus::new());
    let mut john = cyrus.login(JOHN);
    for folder in FOLDERS {
        john.create(folder).unwrap();
        john.setmetadata(folder, "/shared/vendor/kolab/folder-type", Some(b"mail"))
            .unwrap();
        john.setacl(folder, "jane.doe@example.org", "lrs").unwrap();
        // The name in the body: Cyrus masks 8-bit header bytes.
        john.append(folder, &Default::default(), &message("in a folder", folder))
            .unwrap();
    }
    let listed = john.list("", "*").unwrap();
    for folder in FOLDERS {
        let entry = listed
            .iter()
            .find(|e| e.name == folder)
            .unwrap_or_else(|| panic!("{folder} not in {listed:?}"));
        assert_eq!(entry.wire_name, bonnie_imap::utf7::encode(folder));
        assert_eq!(john.status(folder).unwrap().messages, Some(1));
    }
    // What the removed client did: the name sent raw, in UTF-8. Cyrus refuses it.
    assert!(john.run("GETACL \"Büro\"", &[]).is_err());

    // As the collector asks: the admin, with the admin-namespace path of a notification.
    let mut admin = cyrus.login(ADMIN);
    for folder in FOLDERS {
        let path = format!("user/john.doe/{folder}@example.org");
        let acl = admin.getacl(&path).unwrap();
        assert!(
            acl.contains(&("jane.doe@example.org".to_string(), "lrs".to_string())),
            "{path}: {acl:?}"
        );
        assert!(acl.iter().any(|(who, _)| who == JOHN), "{path}: {acl:?}");
        let metadata = admin.getmetadata(&path, &["/shared", "/private"]).unwrap();
        assert_eq!(
            metadata
                .get("/shared/vendor/kolab/folder-type")
                .map(String::as_str),
            Some("mail"),
            "{path}: {metadata:?}"
        );
    }
    // As the collector fetches: the admin acting for john, with john's own name of it.
    let mut proxy = Connection::connect(&cyrus.imap_config()).unwrap();
    proxy
        .authenticate_plain(Some(JOHN), ADMIN, "secret", None)
        .unwrap();
    for folder in FOLDERS {
        proxy.examine(folder).unwrap();
        let body = proxy.uid_fetch_section(1, "").unwrap();
        assert!(
            body.is_some_and(|b| String::from_utf8_lossy(&b).contains(folder)),
            "{folder}"
        );
    }
}

#[test]
fn the_collector_reads_acl_metadata_and_messages_of_folders_named_in_any_language_over_tls() {
    let ldap = Slapd::start();
    let mut cyrus = Cyrus::new().with_tls();
    let cluster = Cluster::for_cyrus(&cyrus, &ldap, &[]);
    // No spool: the collector fetches the messages over IMAP too.
    let config = std::fs::read_to_string(cluster.config()).unwrap();
    let spool = format!("partitions = [\"{}\"]", cyrus.spool().display());
    assert!(config.contains(&spool));
    // And over TLS (imaps), Cyrus's certificate checked against the lab's.
    let plain = format!("imap_address = \"{}\"", cyrus.imap_address());
    assert!(config.contains(&plain));
    let tls = format!(
        "imap_address = \"127.0.0.1:{}\"\nimap_security = \"tls\"\nimap_tls_ca_file = \"{}\"\n\
         imap_tls_server_name = \"localhost\"",
        cyrus.imaps_port,
        cyrus.tls_certificate().display()
    );
    let config = config
        .replace(&spool, "partitions = []")
        .replace(&plain, &tls);
    std::fs::write(cluster.config(), config).unwrap();
    let _running = [
        cluster.start_broker(),
        cluster.start_worker("worker"),
        cluster.start_dealer_daemon(),
        cluster.start_collector("collector"),
    ];
    cyrus.start(Notify::Daemon {
        socket: &cluster.dealer_socket(),
    });
    let mut admin = cyrus.login(ADMIN);
    admin.create(&format!("user/{JOHN}")).unwrap();
    admin.logout().unwrap();
    let mut john = cyrus.login(JOHN);
    for folder in FOLDERS {
        john.create(folder).unwrap();
        john.setmetadata(folder, "/shared/vendor/kolab/folder-type", Some(b"mail"))
            .unwrap();
    }
    for folder in FOLDERS {
        john.setacl(folder, "jane.doe@example.org", "lrs").unwrap();
        john.append(folder, &Default::default(), &message("in a folder", folder))
            .unwrap();
    }
    john.logout().unwrap();
    cyrus.wait_until_archived(&cluster);

    let events = cluster.log_records();
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e.get("collector_errors").is_some())
        .collect();
    assert!(failed.is_empty(), "collector errors: {failed:?}");
    for folder in FOLDERS {
        let wire = bonnie_imap::utf7::encode(folder);
        let append = events
            .iter()
            .find(|e| {
                e["event"] == "MessageAppend"
                    && (e["folder_name"] == folder || e["folder_name"] == wire.as_str())
            })
            .unwrap_or_else(|| panic!("no append into {folder}"));
        let payload = cluster.payload(append["payload_digest"].as_str().expect("a payload"));
        assert_eq!(payload, message("in a folder", folder));
        let uniqueid = append["folder_uniqueid"].as_str().unwrap();
        let body: String = cluster
            .archive()
            .query_row(
                "SELECT body FROM records WHERE collection = 'folders-current' AND key = ?1",
                [uniqueid],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("no folders-current of {folder}: {e}"));
        let current: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            current["metadata"]["/shared/vendor/kolab/folder-type"], "mail",
            "{folder}: {current}"
        );
        assert_eq!(
            current["acl"]["jane.doe@example.org"], "lrs",
            "{folder}: {current}"
        );
    }
}

#[test]
fn append_status_fetch_changedsince_store_and_move_carry_what_restore_needs() {
    let cyrus = started(Cyrus::new());
    let mut john = cyrus.login(JOHN);
    john.create("Archive").unwrap();
    let date = jiff::civil::datetime(2020, 2, 3, 4, 5, 6, 0)
        .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(1)))
        .unwrap();
    let options = AppendOptions {
        flags: vec!["\\Seen".into(), "$Label1".into()],
        internal_date: Some(date),
    };
    // 8-bit and 200 kB: a literal each way, larger than LITERAL-'s 4 kB.
    let big = message("restored", &"Grüße aus Köln. ".repeat(12_000));
    let first = john
        .append("INBOX", &options, &big)
        .unwrap()
        .expect("APPENDUID");
    john.set_non_synchronizing_literals(false);
    let second = john
        .append("INBOX", &Default::default(), &message("second", "two"))
        .unwrap()
        .expect("APPENDUID");
    john.set_non_synchronizing_literals(true);
    assert_eq!(second.uidvalidity, first.uidvalidity);
    assert_eq!(second.uid, first.uid + 1);

    let status = john.status("INBOX").unwrap();
    assert_eq!(status.messages, Some(2));
    assert_eq!(status.uidnext, Some(second.uid + 1));
    assert_eq!(status.uidvalidity, Some(first.uidvalidity));
    let before = status.highestmodseq.expect("HIGHESTMODSEQ");

    let selected = john.select("INBOX").unwrap();
    assert_eq!(selected.uidvalidity, Some(first.uidvalidity));
    assert_eq!(selected.highestmodseq, Some(before));
    let fetched = john
        .uid_fetch(
            &first.uid.to_string(),
            "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])",
            None,
        )
        .unwrap();
    let [one] = fetched.as_slice() else {
        panic!("{fetched:?}")
    };
    assert_eq!(one.uid, Some(first.uid));
    assert!(one.flags.iter().any(|f| f == "\\Seen"), "{:?}", one.flags);
    assert!(one.flags.iter().any(|f| f == "$Label1"), "{:?}", one.flags);
    // Cyrus answers in its own zone, with the day padded by a space: the same instant.
    let internal_date = one.internal_date.as_deref().expect("INTERNALDATE");
    let internal_date =
        jiff::fmt::strtime::parse("%d-%b-%Y %H:%M:%S %z", internal_date.trim_start())
            .and_then(|t| t.to_timestamp())
            .unwrap_or_else(|e| panic!("{internal_date:?}: {e}"));
    assert_eq!(
        internal_date,
        options.internal_date.as_ref().unwrap().timestamp()
    );
    assert_eq!(one.size, Some(big.len() as u32));
    assert_eq!(one.sections.get(""), Some(&big));

    let stored = john
        .uid_store(&first.uid.to_string(), StoreMode::Add, &["\\Flagged"], None)
        .unwrap();
    assert!(stored[0].flags.iter().any(|f| f == "\\Flagged"));
    let changed = john.uid_fetch("1:*", "(UID FLAGS)", Some(before)).unwrap();
    assert_eq!(
        changed.iter().map(|f| f.uid).collect::<Vec<_>>(),
        vec![Some(first.uid)],
        "only the message changed since modseq {before}"
    );
    assert!(changed[0].modseq.is_some_and(|m| m > before));

    john.uid_move(&first.uid.to_string(), "Archive").unwrap();
    assert_eq!(john.status("INBOX").unwrap().messages, Some(1));
    let archive = john.status("Archive").unwrap();
    assert_eq!(archive.messages, Some(1));
    john.select("Archive").unwrap();
    let moved = john
        .uid_fetch("1:*", "(UID FLAGS BODY.PEEK[])", None)
        .unwrap();
    assert_eq!(moved[0].sections.get(""), Some(&big));
    assert!(moved[0].flags.iter().any(|f| f == "$Label1"));
}

#[test]
fn a_connection_cyrus_dropped_is_reopened_by_the_pool() {
    let mut cyrus = started(Cyrus::new());
    let mut pool = Pool::new(
        cyrus.imap_config(),
        Credentials {
            admin: ADMIN.into(),
            password: "secret".into(),
        },
    );
    let john = Identity::User(JOHN.into());
    let inbox = |c: &mut Connection| c.status("INBOX");
    assert_eq!(pool.run(&john, inbox).unwrap().messages, Some(0));
    assert_eq!(pool.run(&john, inbox).unwrap().messages, Some(0));
    assert_eq!(pool.opened(), 1, "the connection is reused");

    cyrus.stop();
    cyrus.restart();
    assert_eq!(pool.run(&john, inbox).unwrap().messages, Some(0));
    assert_eq!(pool.opened(), 2, "the dropped connection was replaced");

    // Another identity: the one connection is authenticated anew.
    let acl = pool
        .run(&Identity::Admin, |c| c.getacl(&format!("user/{JOHN}")))
        .unwrap();
    assert!(acl.iter().any(|(who, _)| who == JOHN));
    assert_eq!(pool.opened(), 3);
    // A refusal keeps the connection.
    assert!(matches!(
        pool.run(&Identity::Admin, |c| c.examine("user/nobody@example.org")),
        Err(ImapError::Refused { .. })
    ));
    pool.run(&Identity::Admin, |c| c.noop()).unwrap();
    assert_eq!(pool.opened(), 3);
}

/// A fake IMAP server for one connection (mock: Cyrus never sends these): it greets with
/// `capabilities`, then `script` talks with the client.
fn fake_server(
    capabilities: &'static str,
    script: impl FnOnce(&mut BufReader<TcpStream>, &mut TcpStream) + Send + 'static,
) -> (Config, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let capabilities = format!("IMAP4rev1 {capabilities}");
        write!(
            stream,
            "* OK [CAPABILITY {}] fake\r\n",
            capabilities.trim_end()
        )
        .unwrap();
        script(&mut reader, &mut stream);
    });
    let config = Config {
        address,
        timeout: Duration::from_secs(60),
        max_literal_bytes: 1024 * 1024,
        ..Config::default()
    };
    (config, server)
}

fn line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line
}

#[test]
fn a_literal_bomb_is_refused_before_anything_is_read_or_allocated() {
    // 99999999999 bytes (more than imap-proto's numbers hold), 4000000000 (less), and just
    // over the bound: each refused at once. The fake server sends none of the bytes and keeps
    // the connection open, so a client that tried to read them would wait for its timeout
    // and fail with Io instead.
    for announced in [99_999_999_999u64, 4_000_000_000, 1024 * 1024 + 1] {
        let (config, server) = fake_server("", move |reader, stream| {
            let command = line(reader);
            let tag = command.split(' ').next().unwrap().to_string();
            assert!(
                command.contains("UID FETCH 1 (UID BODY.PEEK[])"),
                "{command}"
            );
            write!(stream, "* 1 FETCH (UID 1 BODY[] {{{announced}}}\r\n").unwrap();
            // Until the client gives up the connection.
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
            let _ = tag;
        });
        let mut client = Connection::connect(&config).unwrap();
        match client.uid_fetch_section(1, "") {
            Err(ImapError::TooLarge { announced: a, max }) => {
                assert_eq!(a, announced);
                assert_eq!(max, 1024 * 1024);
            }
            other => panic!("{announced}: {other:?}"),
        }
        drop(client);
        server.join().unwrap();
    }
}

#[test]
fn literals_wait_for_the_servers_go_ahead_unless_it_offers_literal_plus() {
    for capabilities in ["", "LITERAL+"] {
        let (config, server) = fake_server(capabilities, move |reader, stream| {
            let command = line(reader);
            let tag = command.split(' ').next().unwrap().to_string();
            if capabilities.is_empty() {
                assert!(command.ends_with(" {5}\r\n"), "{command:?}");
                write!(stream, "+ go ahead\r\n").unwrap();
            } else {
                assert!(command.ends_with(" {5+}\r\n"), "{command:?}");
            }
            let mut data = [0u8; 7];
            reader.read_exact(&mut data).unwrap();
            assert_eq!(&data, b"hello\r\n");
            write!(stream, "{tag} OK [APPENDUID 7 42] done\r\n").unwrap();
        });
        let mut client = Connection::connect(&config).unwrap();
        let appended = client
            .append("Büro", &Default::default(), b"hello")
            .unwrap()
            .unwrap();
        assert_eq!((appended.uidvalidity, appended.uid), (7, 42));
        server.join().unwrap();
    }
}
