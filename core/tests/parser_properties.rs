//! Property tests of the parsers that read outside input in bonnie-core: the wire protocol,
//! IMAP URLs, UID sets, ACLs, ENVELOPEs and IMAP response tokens, base64 and JSON-lines
//! files (message headers and encoded words: bonnie-mail's own property tests). Arbitrary
//! input never panics; where a parser has an inverse,
//! what is written comes back.

use bonnie_core::{
    b64,
    imap::{acl, envelope, uidset, uri},
    jsonl, protocol,
};
use proptest::{collection::vec, prelude::*};

/// A frame: a command this protocol knows, or anything.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(vec![
            "NOTIFY",
            "ACK",
            "READY",
            "HEARTBEAT",
            "DONE",
            "POSTPONE",
            "COLLECT",
            "FAIL",
            "TAKE",
            "GET",
            "JOB",
            "NOJOB",
            "STATUS",
            "FAILED",
            "RETRY",
            "RETRY-ALL",
            "OK",
            "ERROR",
            "FETCH HEADER",
            "4",
            "imap1",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        vec(any::<u8>(), 0..40),
    ]
}

/// A job id as the protocol takes it.
fn job_id() -> impl Strategy<Value = String> {
    "[!-~]{1,128}"
}

proptest! {
    #[test]
    fn no_frames_panic_a_protocol_parser(frames in vec(frame(), 0..6)) {
        let _ = protocol::DealerMsg::parse(&frames);
        let _ = protocol::parse_ack(&frames);
        let _ = protocol::ControlMsg::parse(&frames);
        let _ = protocol::ToWorker::parse(&frames);
        let _ = protocol::parse_get(&frames);
        let _ = protocol::DataReply::parse(&frames);
        let _ = protocol::CollectorMsg::parse(&frames);
        let _ = protocol::ToCollector::parse(&frames);
        let _ = protocol::AdminRequest::parse(&frames);
        let _ = protocol::AdminReply::parse(&frames);
        for frame in &frames {
            let _ = protocol::host_of_dealer(frame);
        }
    }

    #[test]
    fn protocol_messages_round_trip(
        id in job_id(),
        notification in vec(any::<u8>(), 0..200),
        reason in any::<String>(),
        commands in vec("[A-Z]{1,12}", 1..4),
        credit in any::<u32>(),
    ) {
        let notify = protocol::DealerMsg::Notify { id: id.clone(), notification: notification.clone() };
        prop_assert_eq!(protocol::DealerMsg::parse(&notify.frames()).unwrap(), notify);
        prop_assert_eq!(protocol::parse_ack(&protocol::ack_frames(&id)).unwrap(), id.clone());
        prop_assert_eq!(protocol::parse_get(&protocol::get_frames(&id)).unwrap(), id.clone());
        for msg in [
            protocol::ControlMsg::Ready { credit },
            protocol::ControlMsg::Done {
                id: id.clone(),
                leaves: None,
            },
            protocol::ControlMsg::Postpone { id: id.clone(), reason: reason.clone() },
            protocol::ControlMsg::Collect {
                id: id.clone(),
                commands: commands.clone(),
                notification: notification.clone(),
            },
            protocol::ControlMsg::Fail { id: id.clone(), reason: reason.clone() },
        ] {
            prop_assert_eq!(protocol::ControlMsg::parse(&msg.frames()).unwrap(), msg);
        }
        for meta in [None, Some(reason.clone())] {
            let job = protocol::DataReply::Job { id: id.clone(), notification: notification.clone(), meta };
            prop_assert_eq!(protocol::DataReply::parse(&job.frames()).unwrap(), job);
        }
        let collect = protocol::ToCollector::Collect { id: id.clone(), commands, notification };
        prop_assert_eq!(protocol::ToCollector::parse(&collect.frames()).unwrap(), collect);
        let error = protocol::AdminReply::Error(reason);
        prop_assert_eq!(protocol::AdminReply::parse(&error.frames()).unwrap(), error);
    }

    #[test]
    fn no_string_panics_the_imap_parsers(text in any::<String>(), other in any::<String>()) {
        let _ = uri::parse(&text);
        let _ = uri::parse(&format!("imap://{text}"));
        let _ = uri::percent_decode(&text);
        let _ = uri::Mailbox::from_path(&text);
        let _ = uri::Mailbox::of_user(&text, &other);
        let _ = uidset::expand(&text);
        let _ = acl::parse(&text);
        let _ = acl::grants(&text, &other);
        let _ = envelope::parse(&text);
        let _ = b64::base64(&text);
    }

    #[test]
    fn imap_like_strings_do_not_panic(
        url in "imap://[a-z@%0-9.:]{0,20}(/[a-zA-Z.%@0-9é€]{0,12}){0,3}(;[A-Z]{0,11}=[0-9é]{0,12}/?){0,2}",
        set in "[0-9:,* é]{0,24}",
        response in "(\\(|\\)|NIL|\"[a-z\\\\\"é]{0,5}\"|\\{[0-9]{0,22}\\+?\\}\r\n[a-z]{0,4}|\\[|\\]| |[A-Z]{1,4}){0,30}",
    ) {
        let _ = uri::parse(&url);
        let _ = uidset::expand(&set);
        let _ = envelope::parse(&response);
    }

    #[test]
    fn percent_encoding_round_trips(text in any::<String>()) {
        let encoded: String = text.bytes().map(|b| format!("%{b:02X}")).collect();
        prop_assert_eq!(uri::percent_decode(&encoded), text);
    }

    #[test]
    fn cyrus_folder_urls_name_their_owner_folder_and_uid(
        local in "[a-z][a-z0-9.]{0,10}",
        folder in "[A-Za-z][A-Za-z0-9 ]{0,10}",
        domain in "[a-z]{1,8}\\.org",
        uidvalidity in any::<u64>(),
        uid in any::<u64>(),
    ) {
        let escaped = folder.replace(' ', "%20");
        let url = format!(
            "imap://cyrus.example.org/user/{local}/{escaped}%40{domain};UIDVALIDITY={uidvalidity}/;UID={uid}"
        );
        let parsed = uri::parse(&url).unwrap();
        prop_assert_eq!(parsed.server.as_str(), "cyrus.example.org");
        prop_assert_eq!(parsed.uidvalidity, Some(uidvalidity));
        prop_assert_eq!(parsed.uid, Some(uid));
        let mailbox = parsed.mailbox.unwrap();
        prop_assert_eq!(mailbox.owner, Some(format!("{local}@{domain}")));
        prop_assert_eq!(mailbox.name, folder);
        prop_assert_eq!(mailbox.domain, Some(domain));
    }

    #[test]
    fn uid_sets_expand_to_what_they_name(ranges in vec((1u64..1_000_000_000_000, 0u64..40), 1..8)) {
        let set: Vec<String> = ranges
            .iter()
            .map(|&(low, extra)| if extra == 0 { low.to_string() } else { format!("{low}:{}", low + extra) })
            .collect();
        let expected: Vec<u64> = ranges.iter().flat_map(|&(low, extra)| low..=low + extra).collect();
        prop_assert_eq!(uidset::expand(&set.join(",")).unwrap(), expected);
    }

    #[test]
    fn acl_strings_round_trip(entries in vec(("[^\t]{1,20}", "[a-z]{0,14}"), 0..6)) {
        let text: String = entries.iter().map(|(subject, rights)| format!("{subject}\t{rights}\t")).collect();
        let entries: Vec<(String, String)> = entries.into_iter().collect();
        prop_assert_eq!(acl::parse(&text), entries);
    }

    #[test]
    fn envelope_subjects_and_addresses_come_back(
        subject in "[ -<>-~]{0,40}",
        name in "[A-Za-z][A-Za-z ]{0,19}",
        mailbox in "[a-z.]{1,10}",
        host in "[a-z]{1,10}\\.org",
    ) {
        let quoted = format!("\"{}\"", subject.replace('\\', "\\\\").replace('"', "\\\""));
        let text = format!(
            "(NIL {quoted} ((\"{name}\" NIL \"{mailbox}\" \"{host}\")) NIL NIL NIL NIL NIL NIL {{5}}\r\n<1@x>)"
        );
        let parsed = envelope::parse(&text).unwrap();
        prop_assert_eq!(parsed.subject, Some(subject));
        prop_assert_eq!(parsed.from, vec![format!("{name} <{mailbox}@{host}>")]);
        prop_assert_eq!(parsed.message_id.as_deref(), Some("<1@x>"));
    }

    #[test]
    fn base64_round_trips(bytes in vec(any::<u8>(), 0..100)) {
        let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes);
        prop_assert_eq!(b64::base64(&encoded), Some(bytes));
    }

    #[test]
    fn torn_jsonl_files_keep_their_complete_lines(bytes in vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file.jsonl");
        std::fs::write(&path, &bytes).unwrap();
        let lines = jsonl::read_repairing(&path).unwrap();
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        prop_assert_eq!(std::fs::read(&path).unwrap(), bytes[..complete].to_vec());
        let expected: Vec<String> = bytes[..complete]
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| String::from_utf8_lossy(line).into_owned())
            .collect();
        prop_assert_eq!(lines, expected);
    }
}

/// Input that once overflowed the stack or an addition: deep nesting, a literal that claims
/// more bytes than memory has.
#[test]
fn deep_nesting_and_huge_literals_are_refused() {
    let deep = "(".repeat(1_000_000);
    assert_eq!(envelope::parse(&deep), None);
    let huge = format!("(NIL {{{}}}\r\nabc", usize::MAX);
    assert_eq!(envelope::parse(&huge), None);
}
