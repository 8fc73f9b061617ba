//! Exports in each format read back by independent readers: Python's `email` for EML, an
//! mboxrd reader written here in Python for MBOX, a DAT parser written in the test for the load
//! file; each matches the archive byte for byte, and `verify` passes on it.

mod common;

use std::collections::BTreeSet;

use bonnie_export::{Format, KeyTrust, export, verify};
use common::{
    Corpus, manifest, natives, options, parse_dat, python, python_json_lines, sha256_hex,
};

fn corpus(dir: &std::path::Path) -> Corpus {
    Corpus::new(&dir.join("archive.key"), natives())
}

#[test]
fn an_eml_export_is_the_archived_bytes_and_python_reads_every_message() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus(dir.path());
    let out = dir.path().join("export");
    let mut calls = Vec::new();
    let summary = export(
        &out,
        &corpus.header,
        &options(Format::Eml),
        corpus.items(),
        &mut |p| calls.push(p.done),
    )
    .unwrap();
    assert_eq!(summary.exported, corpus.messages.len() as u64);
    assert_eq!(summary.exceptions, 0);
    assert_eq!(
        calls,
        (1..=corpus.messages.len() as u64).collect::<Vec<_>>()
    );

    let manifest = manifest(&out);
    assert_eq!(manifest.items.len(), corpus.messages.len());
    let script = r#"
import email, email.policy, json, sys
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        m = email.message_from_binary_file(f, policy=email.policy.default)
    print(json.dumps({"message_id": (m['Message-ID'] or '').strip('<>')}))
"#;
    let read = python_json_lines(script, &out, manifest.items.iter().map(|i| i.path.as_str()));
    for ((item, message), python) in manifest.items.iter().zip(&corpus.messages).zip(&read) {
        assert_eq!(
            std::fs::read(out.join(&item.path)).unwrap(),
            message.native,
            "{}",
            item.docid
        );
        assert!(item.path.starts_with("natives/0001/") && item.path.ends_with(".eml"));
        assert_eq!(item.sha256, message.meta.digest);
        assert_eq!(
            python["message_id"].as_str().unwrap(),
            message.meta.envelope.message_id.clone().unwrap_or_default(),
            "{}",
            item.docid
        );
    }
    let per_custodian: u64 = manifest.export.per_custodian.values().sum();
    assert_eq!(per_custodian, corpus.messages.len() as u64);
    assert_eq!(manifest.export.per_custodian["jörg"], 5);
    let report = verify(&out, Some(&corpus.header.public_key)).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!(report.key, KeyTrust::Given);
    assert_eq!(report.items, corpus.messages.len() as u64);
    assert!(!out.join(".bonnie-export").exists());
    let sums = python(
        "import subprocess, sys; print(subprocess.run(['sha256sum', '-c', '--quiet', 'SHA256SUMS'], cwd=sys.argv[1]).returncode)",
        &[out.to_str().unwrap()],
    );
    assert_eq!(sums.trim(), "0", "sha256sum -c accepts SHA256SUMS");
}

#[test]
fn an_mbox_export_round_trips_through_an_mboxrd_reader_and_rolls_parts() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus(dir.path());
    let out = dir.path().join("export");
    let mut options = options(Format::Mbox);
    options.part_bytes = 2_000;
    export(&out, &corpus.header, &options, corpus.items(), &mut |_| {}).unwrap();
    let manifest = manifest(&out);
    let parts: BTreeSet<&str> = manifest.items.iter().map(|i| i.path.as_str()).collect();
    assert!(parts.len() > 2, "parts of 2,000 bytes: {parts:?}");
    assert_eq!(manifest.export.parts as usize, parts.len());
    for part in &parts {
        let items: Vec<_> = manifest.items.iter().filter(|i| i.path == *part).collect();
        let natives: u64 = items.iter().map(|i| i.size).sum();
        assert!(
            items.len() == 1 || natives <= options.part_bytes,
            "{part} holds {natives} bytes of {} messages",
            items.len()
        );
    }
    let read = python_json_lines(common::MBOXRD_READER, &out, parts.iter().copied());
    assert_eq!(read.len(), corpus.messages.len());
    for (python, message) in read.iter().zip(&corpus.messages) {
        assert_eq!(python["sha256"], message.meta.digest, "byte for byte");
        assert_eq!(
            python["message_id"].as_str().unwrap(),
            message.meta.envelope.message_id.clone().unwrap_or_default()
        );
    }
    let quoted = std::fs::read_to_string(out.join(&manifest.items[13].path)).unwrap();
    assert!(quoted.contains(
        "\r\n>From here on, beware.\r\n>>From a quoted reply\r\n>>>From deeper\r\n>From \r\n"
    ));
    let report = verify(&out, None).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!(report.key, KeyTrust::SelfAsserted);
}

#[test]
fn a_dat_export_loads_with_natives_text_and_attachments_as_families() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus(dir.path());
    let out = dir.path().join("export");
    export(
        &out,
        &corpus.header,
        &options(Format::Dat),
        corpus.items(),
        &mut |_| {},
    )
    .unwrap();
    let records = parse_dat(&std::fs::read(out.join("loadfile.dat")).unwrap());
    let fields = &records[0];
    assert_eq!(fields.len(), bonnie_export::dat::FIELDS.len());
    let column = |name: &str| fields.iter().position(|f| f == name).unwrap();
    let rows = &records[1..];
    let attachments: usize = corpus.messages.iter().map(|m| m.attachments.len()).sum();
    assert!(attachments >= 3, "the corpus has attachments");
    assert_eq!(rows.len(), corpus.messages.len() + attachments);
    let file = |row: &Vec<String>, name: &str| {
        std::fs::read(out.join(row[column(name)].replace('\\', "/"))).unwrap()
    };
    let mut parents = rows.iter().filter(|r| r[column("PARENTID")].is_empty());
    for message in &corpus.messages {
        let row = parents.next().unwrap();
        let docid = &row[column("DOCID")];
        assert_eq!(file(row, "NATIVEPATH"), message.native, "{docid}");
        assert_eq!(file(row, "TEXTPATH"), message.text.as_bytes(), "{docid}");
        assert_eq!(row[column("SHA256")], message.meta.digest);
        assert_eq!(row[column("CUSTODIAN")], message.meta.custodian);
        assert_eq!(
            row[column("SUBJECT")],
            message.meta.envelope.subject.replace('®', "\n")
        );
        assert_eq!(row[column("FILESIZE")], message.native.len().to_string());
        assert_eq!(row[column("LOGSEQ")], message.meta.log_seq.to_string());
        assert_eq!(
            row[column("DELETED")],
            if message.meta.deleted { "Y" } else { "N" }
        );
        assert_eq!(row[column("FOLDERS")], message.meta.folders.join(";"));
        if let Some(sent) = message.meta.sent_ms {
            let expected = jiff::Timestamp::from_millisecond(sent)
                .unwrap()
                .to_zoned(jiff::tz::TimeZone::get("Europe/Berlin").unwrap())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string();
            assert_eq!(row[column("DATESENT")], expected);
        }
        let children: Vec<&str> = row[column("ATTACHMENTIDS")]
            .split(';')
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(children.len(), message.attachments.len(), "{docid}");
        for (child, attachment) in children.iter().zip(&message.attachments) {
            let member = rows.iter().find(|r| r[column("DOCID")] == *child).unwrap();
            assert_eq!(member[column("PARENTID")], *docid);
            assert_eq!(member[column("BEGATTACH")], *docid);
            assert_eq!(member[column("ENDATTACH")], *children.last().unwrap());
            assert_eq!(member[column("FILENAME")], attachment.name);
            assert_eq!(file(member, "NATIVEPATH"), attachment.bytes);
            assert_eq!(file(member, "TEXTPATH"), attachment.text.as_bytes());
            assert_eq!(member[column("SHA256")], sha256_hex(&attachment.bytes));
        }
    }
    let thorn = rows
        .iter()
        .find(|r| r[column("MESSAGEID")] == "thorn@example.is")
        .unwrap();
    assert_eq!(thorn[column("SUBJECT")], "Þetta er þorn \n og ; semikomma");
    let csv = &corpus.messages.last().unwrap().attachments[0];
    assert_eq!(csv.bytes, b"a,b,c\n1,2,3\n");
    let report = verify(&out, Some(&corpus.header.public_key)).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
}
