//! `verify` passes on a fresh export in each format and fails, naming the file, after any one
//! file is changed: a native, a text, the manifest (JSON or CSV), SHA256SUMS, the checkpoint,
//! the key; a file added; a native replaced with the manifest and SHA256SUMS made to agree
//! (the leaf does not name it); a checkpoint checked with another archive's key.

mod common;

use std::path::Path;

use bonnie_export::{Format, Report, verify};
use common::{Corpus, natives};

fn exported(dir: &Path, format: Format) -> (Corpus, std::path::PathBuf) {
    let corpus = Corpus::new(&dir.join("archive.key"), natives());
    let out = dir.join(format!("export-{}", format.name()));
    corpus.export(&out, format);
    (corpus, out)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Whether a finding names `relative`.
fn names(report: &Report, relative: &str) -> bool {
    report
        .findings
        .iter()
        .any(|f| f.path.as_deref() == Some(relative) || f.message.contains(relative))
}

/// A copy of the export with one byte of `relative` changed (at a third of its length).
fn tampered(out: &Path, scratch: &Path, relative: &str) -> std::path::PathBuf {
    let copy = scratch.join(relative.replace('/', "_"));
    copy_tree(out, &copy);
    let path = copy.join(relative);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 3;
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    std::fs::write(&path, bytes).unwrap();
    copy
}

fn fails_naming(out: &Path, scratch: &Path, relative: &str, key: Option<&str>) {
    let copy = tampered(out, scratch, relative);
    let report = verify(&copy, key).unwrap();
    assert!(!report.is_clean(), "a changed {relative} verifies");
    assert!(
        names(&report, relative),
        "no finding names {relative}: {:?}",
        report.findings
    );
}

#[test]
fn any_changed_file_of_an_eml_export_fails_verification_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus, out) = exported(dir.path(), Format::Eml);
    let key = Some(corpus.header.public_key.as_str());
    assert!(verify(&out, key).unwrap().is_clean());
    for relative in [
        "natives/0001/BON00000002.eml",
        "manifest.json",
        "manifest.csv",
        "SHA256SUMS",
        "checkpoint.txt",
        "public-key.txt",
    ] {
        fails_naming(&out, dir.path(), relative, key);
    }
    // The exported key changed and then trusted: the checkpoint's signature fails.
    fails_naming(&out, dir.path(), "public-key.txt", None);
}

#[test]
fn any_changed_file_of_an_mbox_or_dat_export_fails_verification_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mbox) = exported(dir.path(), Format::Mbox);
    assert!(verify(&mbox, None).unwrap().is_clean());
    fails_naming(&mbox, dir.path(), "mbox/0001.mbox", None);
    let (_, dat) = exported(dir.path(), Format::Dat);
    assert!(verify(&dat, None).unwrap().is_clean());
    for relative in [
        "loadfile.dat",
        "text/0001/BON00000003.txt",
        "natives/0001/BON00000015.0002.pdf",
        "natives/0001/BON00000015.eml",
    ] {
        fails_naming(&dat, dir.path(), relative, None);
    }
}

#[test]
fn a_forged_native_fails_even_with_the_manifest_and_sums_made_to_agree() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus, out) = exported(dir.path(), Format::Eml);
    let forged = b"From: ceo@example.org\r\nSubject: nothing to see\r\n\r\nAll is well.\r\n";
    let relative = "natives/0001/BON00000004.eml";
    std::fs::write(out.join(relative), forged).unwrap();
    let sha256 = common::sha256_hex(forged);
    let mut manifest = common::manifest(&out);
    let old = manifest.items[3].sha256.clone();
    manifest.items[3].sha256 = sha256.clone();
    manifest.items[3].md5 = {
        let digested = std::process::Command::new("md5sum")
            .arg(out.join(relative))
            .output()
            .unwrap();
        String::from_utf8(digested.stdout).unwrap()[..32].to_string()
    };
    manifest.items[3].size = forged.len() as u64;
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    resum(&out);
    assert_ne!(old, sha256);
    let report = verify(&out, Some(&corpus.header.public_key)).unwrap();
    // The leaf does not name the forged native; and the list of digests is not the one
    // the export was given.
    assert_eq!(report.findings.len(), 2, "{:?}", report.findings);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.docid.as_deref() == Some("BON00000004")
                && f.message.contains("does not name payload"))
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.message.contains("not the list"))
    );
}

/// Rewrites SHA256SUMS to agree with the files it lists, as a forger would, leaving out
/// those that are gone.
fn resum(out: &Path) {
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    let sums: String = sums
        .lines()
        .filter_map(|line| {
            let (_, file) = line.split_once("  ").unwrap();
            let bytes = std::fs::read(out.join(file)).ok()?;
            Some(format!("{}  {file}\n", common::sha256_hex(&bytes)))
        })
        .collect();
    std::fs::write(out.join("SHA256SUMS"), sums).unwrap();
}

#[test]
fn an_item_taken_out_with_its_files_and_sums_is_missed() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = exported(dir.path(), Format::Eml);
    let mut manifest = common::manifest(&out);
    let removed = manifest.items.remove(6);
    std::fs::remove_file(out.join(&removed.path)).unwrap();
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    resum(&out);
    let report = verify(&out, None).unwrap();
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    assert_eq!(report.findings[0].path.as_deref(), Some("manifest.json"));
    assert!(report.findings[0].message.contains("not the list"));
}

#[test]
fn another_key_an_added_file_and_a_missing_file_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = exported(dir.path(), Format::Eml);
    let other = common::key(&dir.path().join("other.key"))
        .public()
        .to_string();
    let report = verify(&out, Some(&other)).unwrap();
    assert!(names(&report, "checkpoint.txt"), "{:?}", report.findings);
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.path.as_deref() != Some("SHA256SUMS"))
    );

    std::fs::write(
        out.join("natives/0001/extra.eml"),
        b"Subject: planted\r\n\r\n",
    )
    .unwrap();
    let report = verify(&out, None).unwrap();
    assert!(
        names(&report, "natives/0001/extra.eml"),
        "{:?}",
        report.findings
    );
    std::fs::remove_file(out.join("natives/0001/extra.eml")).unwrap();

    std::fs::remove_file(out.join("natives/0001/BON00000005.eml")).unwrap();
    let report = verify(&out, None).unwrap();
    assert!(
        names(&report, "natives/0001/BON00000005.eml"),
        "{:?}",
        report.findings
    );
}
