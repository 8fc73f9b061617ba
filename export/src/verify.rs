//! The offline check of a finished export: every file against `SHA256SUMS` (and no file
//! beside them), the checkpoint's signature (with the key given, or the export's own, then
//! only self-asserted), and per item of the manifest: its native's SHA-256 and MD5 as the
//! manifest says, that SHA-256 among its leaf's payload digests, and the leaf's inclusion proof
//! against the checkpoint's root. Every finding names the file or item at fault.

use std::{
    collections::BTreeSet,
    fs,
    io::{self, Seek as _},
    path::Path,
};

use bonnie_ledger::{Checkpoint, Hash, LeafData, LeafKind, PublicKey, merkle};
use serde::{
    Serialize,
    de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor},
};

use crate::{
    ExportError,
    export::{CHECKPOINT_FILE, MANIFEST_JSON, PUBLIC_KEY_FILE, SUMS_FILE},
    files::{self, Digested, Digests},
    item::ItemList,
    manifest::{ExportInfo, ManifestItem},
    mbox,
};

/// Whose key the checkpoint's signature was checked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyTrust {
    /// The key the verifier was given (from the archive's operator, out of band).
    Given,
    /// The key the export carries: it shows the export is whole, not who made it.
    SelfAsserted,
}

/// One thing wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The file at fault, relative to the export.
    pub path: Option<String>,
    /// The item at fault.
    pub docid: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Files checked against `SHA256SUMS`.
    pub files: u64,
    /// Items of the manifest checked.
    pub items: u64,
    /// Whose key signed the checkpoint, as far as this check can tell.
    pub key: KeyTrust,
    /// The checkpoint's tree size, when it could be read.
    pub checkpoint_size: Option<u64>,
    /// Everything wrong; empty when the export verifies.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    fn file(&mut self, path: &str, message: String) {
        self.findings.push(Finding {
            path: Some(path.to_string()),
            docid: None,
            message,
        });
    }

    fn item(&mut self, item: &ManifestItem, path: Option<&str>, message: String) {
        self.findings.push(Finding {
            path: path.map(str::to_string),
            docid: Some(item.docid.clone()),
            message,
        });
    }
}

/// Checks the export in `dir`; `public_key` is the archive's key (`<name>+<id>+<key>`) as the
/// verifier got it, `None` to use the one in the export. An error only when the folder cannot
/// be read at all; anything wrong in it is a finding.
pub fn verify(dir: &Path, public_key: Option<&str>) -> Result<Report, ExportError> {
    let mut report = Report {
        files: 0,
        items: 0,
        key: if public_key.is_some() {
            KeyTrust::Given
        } else {
            KeyTrust::SelfAsserted
        },
        checkpoint_size: None,
        findings: Vec::new(),
    };
    check_sums(dir, &mut report)?;
    let checkpoint = open_checkpoint(dir, public_key, &mut report);
    report.checkpoint_size = checkpoint.as_ref().map(|c| c.size);
    // Items are checked as they are read: memory holds one item, its DOCID and digest, and
    // the paths it names, not the whole manifest.
    let mut listed: Vec<(String, String)> = Vec::new();
    let mut referenced = BTreeSet::new();
    let read = read_manifest(&dir.join(MANIFEST_JSON), &mut |item| {
        report.items += 1;
        check_item(dir, &item, checkpoint.as_ref(), &mut report);
        listed.push((item.docid.clone(), item.sha256.clone()));
        referenced.insert(item.path);
        referenced.extend(item.text_path);
        for attachment in item.attachments {
            referenced.insert(attachment.path);
            referenced.insert(attachment.text_path);
        }
    });
    let info = match read {
        Ok(info) => info,
        Err(e) => {
            report.file(MANIFEST_JSON, format!("not a readable manifest: {e}"));
            return Ok(report);
        }
    };
    if let Some(checkpoint) = &checkpoint {
        let named = &info.checkpoint;
        if named.size != checkpoint.size
            || named.origin != checkpoint.origin
            || named.root != files::hex(&checkpoint.root)
        {
            report.file(
                MANIFEST_JSON,
                format!(
                    "names checkpoint {}/{}, not the {}/{} of {CHECKPOINT_FILE}",
                    named.origin, named.size, checkpoint.origin, checkpoint.size
                ),
            );
        }
    }
    check_complete(&info, listed, &mut report);
    check_referenced(dir, &referenced, &mut report)?;
    Ok(report)
}

/// Reads `manifest.json` as a stream: the export's part whole, each item handed to `each` as
/// it is read (whatever the layout: any JSON of the manifest's shape).
fn read_manifest(path: &Path, each: &mut dyn FnMut(ManifestItem)) -> Result<ExportInfo, String> {
    let file = fs::File::open(path).map_err(|e| e.to_string())?;
    let mut reader = serde_json::Deserializer::from_reader(io::BufReader::new(file));
    let info = serde::Deserializer::deserialize_map(&mut reader, ManifestVisitor { each })
        .map_err(|e| e.to_string())?;
    reader.end().map_err(|e| e.to_string())?;
    info.ok_or_else(|| "no \"export\" part".to_string())
}

/// The manifest's object: `export` read whole, `items` one by one.
struct ManifestVisitor<'a> {
    each: &'a mut dyn FnMut(ManifestItem),
}

impl<'de> Visitor<'de> for ManifestVisitor<'_> {
    type Value = Option<ExportInfo>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an export's manifest")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let each = self.each;
        let mut info = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "export" => info = Some(map.next_value::<ExportInfo>()?),
                "items" => map.next_value_seed(ItemsVisitor { each: &mut *each })?,
                other => return Err(A::Error::unknown_field(other, &["export", "items"])),
            }
        }
        Ok(info)
    }
}

/// The manifest's `items`, each handed on as it is read.
struct ItemsVisitor<'a> {
    each: &'a mut dyn FnMut(ManifestItem),
}

impl<'de> DeserializeSeed<'de> for ItemsVisitor<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ItemsVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<ManifestItem>()? {
            (self.each)(item);
        }
        Ok(())
    }
}

/// The items (DOCID, SHA-256) and exceptions, in DOCID order, are the list the export was
/// given (an item taken out of the manifest, with its files and their sums, is found here).
fn check_complete(info: &ExportInfo, mut listed: Vec<(String, String)>, report: &mut Report) {
    listed.extend(
        info.exceptions
            .iter()
            .map(|e| (e.docid.clone().unwrap_or_default(), e.digest.clone())),
    );
    listed.sort();
    let found = ItemList::of(listed.iter().map(|(_, digest)| digest.as_str()));
    if found != info.items {
        report.file(
            MANIFEST_JSON,
            format!(
                "its {} items and exceptions are not the list of {} items the export was given",
                found.count, info.items.count
            ),
        );
    }
}

/// Every native, text and mbox file belongs to an item of the manifest (a file left from
/// elsewhere, even with its sum in SHA256SUMS, is found here).
fn check_referenced(
    dir: &Path,
    referenced: &BTreeSet<String>,
    report: &mut Report,
) -> Result<(), ExportError> {
    for relative in files::walk(dir, &[])? {
        let held = ["natives/", "text/", "mbox/"]
            .iter()
            .any(|top| relative.starts_with(top));
        if held && !referenced.contains(&relative) {
            report.file(&relative, format!("belongs to no item of {MANIFEST_JSON}"));
        }
    }
    Ok(())
}

/// Every file listed has its checksum; every file is listed.
fn check_sums(dir: &Path, report: &mut Report) -> Result<(), ExportError> {
    let text = match fs::read_to_string(dir.join(SUMS_FILE)) {
        Ok(text) => text,
        Err(e) => {
            report.file(SUMS_FILE, format!("cannot be read: {e}"));
            return Ok(());
        }
    };
    let mut listed = std::collections::BTreeSet::new();
    for (number, line) in text.lines().enumerate() {
        let Some((sum, relative)) = line.split_once("  ") else {
            report.file(
                SUMS_FILE,
                format!("line {} is not `<sha256>  <file>`", number + 1),
            );
            continue;
        };
        let unsafe_path = relative.starts_with('/') || relative.split('/').any(|c| c == "..");
        if unsafe_path {
            report.file(
                SUMS_FILE,
                format!("line {} names {relative:?}, outside the export", number + 1),
            );
            continue;
        }
        listed.insert(relative.to_string());
        report.files += 1;
        match digest_file(&dir.join(relative)) {
            Ok(found) if found.sha256 == sum => {}
            Ok(found) => report.file(
                relative,
                format!("SHA-256 {}, not the {sum} of {SUMS_FILE}", found.sha256),
            ),
            Err(e) => report.file(relative, format!("cannot be read: {e}")),
        }
    }
    for relative in files::walk(dir, &[SUMS_FILE])? {
        if !listed.contains(&relative) {
            report.file(&relative, format!("is not in {SUMS_FILE}"));
        }
    }
    Ok(())
}

fn digest_file(path: &Path) -> io::Result<Digested> {
    Digests::of_reader(&mut fs::File::open(path)?)
}

/// The checkpoint, its signature checked; `None` (and a finding) when it does not hold.
fn open_checkpoint(
    dir: &Path,
    public_key: Option<&str>,
    report: &mut Report,
) -> Option<Checkpoint> {
    let key_text = match public_key {
        Some(text) => text.to_string(),
        None => match fs::read_to_string(dir.join(PUBLIC_KEY_FILE)) {
            Ok(text) => text,
            Err(e) => {
                report.file(PUBLIC_KEY_FILE, format!("cannot be read: {e}"));
                return None;
            }
        },
    };
    let key = match PublicKey::parse(&key_text) {
        Ok(key) => key,
        Err(e) => {
            let path = public_key.is_none().then_some(PUBLIC_KEY_FILE);
            report.findings.push(Finding {
                path: path.map(str::to_string),
                docid: None,
                message: format!("the public key: {e}"),
            });
            return None;
        }
    };
    let note = match fs::read_to_string(dir.join(CHECKPOINT_FILE)) {
        Ok(note) => note,
        Err(e) => {
            report.file(CHECKPOINT_FILE, format!("cannot be read: {e}"));
            return None;
        }
    };
    match Checkpoint::open(&note, &key) {
        Ok(checkpoint) => Some(checkpoint),
        Err(e) => {
            report.file(CHECKPOINT_FILE, format!("{e}"));
            None
        }
    }
}

/// One item: its native's digests, its leaf, its proof; its attachments' digests.
fn check_item(
    dir: &Path,
    item: &ManifestItem,
    checkpoint: Option<&Checkpoint>,
    report: &mut Report,
) {
    if !safe_relative(item, &item.path, report) {
        return;
    }
    let found = match item.offset {
        Some(offset) => digest_mbox_message(&dir.join(&item.path), offset),
        None => digest_file(&dir.join(&item.path)),
    };
    match found {
        Ok(found) => {
            if found.sha256 != item.sha256 || found.md5 != item.md5 || found.length != item.size {
                report.item(
                    item,
                    Some(&item.path),
                    format!(
                        "the native has SHA-256 {}, MD5 {}, {} bytes; the manifest says {}, {}, {}",
                        found.sha256, found.md5, found.length, item.sha256, item.md5, item.size
                    ),
                );
            }
        }
        Err(e) => report.item(
            item,
            Some(&item.path),
            format!("the native cannot be read: {e}"),
        ),
    }
    if let Err(message) = check_proof(item, checkpoint) {
        report.item(item, Some(MANIFEST_JSON), message);
    }
    for attachment in &item.attachments {
        if !safe_relative(item, &attachment.path, report) {
            continue;
        }
        match digest_file(&dir.join(&attachment.path)) {
            Ok(found) if found.sha256 == attachment.sha256 && found.md5 == attachment.md5 => {}
            Ok(found) => report.item(
                item,
                Some(&attachment.path),
                format!(
                    "attachment {} has SHA-256 {}, not the manifest's {}",
                    attachment.docid, found.sha256, attachment.sha256
                ),
            ),
            Err(e) => report.item(item, Some(&attachment.path), format!("cannot be read: {e}")),
        }
    }
}

/// Whether the manifest's `path` stays inside the export (a finding when not).
fn safe_relative(item: &ManifestItem, path: &str, report: &mut Report) -> bool {
    let inside = !path.is_empty() && !path.starts_with('/') && !path.split('/').any(|c| c == "..");
    if !inside {
        report.item(item, None, format!("a path outside the export: {path:?}"));
    }
    inside
}

/// The item's leaf, as the manifest gives it, names its native and is in the checkpoint's
/// tree.
fn check_proof(item: &ManifestItem, checkpoint: Option<&Checkpoint>) -> Result<(), String> {
    let leaf = files::unhex(&item.leaf).ok_or("its leaf is not hex")?;
    let hash = merkle::leaf_hash(&leaf);
    if files::hex(&hash) != item.leaf_hash {
        return Err(format!(
            "its leaf hashes to {}, not {}",
            files::hex(&hash),
            item.leaf_hash
        ));
    }
    let Some(checkpoint) = checkpoint else {
        return Err("no checkpoint that holds to check its proof against".into());
    };
    let proof: Option<Vec<Hash>> = item
        .proof
        .iter()
        .map(|h| files::unhex(h).and_then(|b| Hash::try_from(b).ok()))
        .collect();
    let proof = proof.ok_or("its proof is not hex SHA-256 hashes")?;
    check_leaf(&leaf, item.log_seq, &item.sha256, &proof, checkpoint).map(|_| ())
}

/// Whether `leaf` (its bytes) is record leaf `log_seq`, names payload `sha256` (hex), and
/// `proof` leads from it to `checkpoint`'s root; its hash. The export checks this before
/// writing an item, the verifier after.
pub(crate) fn check_leaf(
    leaf: &[u8],
    log_seq: u64,
    sha256: &str,
    proof: &[Hash],
    checkpoint: &Checkpoint,
) -> Result<Hash, String> {
    let decoded = LeafData::decode(leaf).map_err(|e| format!("its leaf: {e}"))?;
    if decoded.seq != log_seq || decoded.entry.kind != LeafKind::Record {
        return Err(format!(
            "its leaf is {:?} leaf {}, not record leaf {log_seq}",
            decoded.entry.kind, decoded.seq
        ));
    }
    let digest = files::unhex(sha256).unwrap_or_default();
    if !decoded
        .entry
        .payload_digests
        .iter()
        .any(|d| d[..] == digest[..])
    {
        return Err(format!("leaf {log_seq} does not name payload {sha256}"));
    }
    let hash = merkle::leaf_hash(leaf);
    if !merkle::verify_inclusion(log_seq, checkpoint.size, &hash, proof, &checkpoint.root) {
        return Err(format!(
            "the inclusion proof of leaf {log_seq} does not lead to the root of checkpoint {}",
            checkpoint.size
        ));
    }
    Ok(hash)
}

/// The digests of the message at `offset` of an mbox file, unquoted.
fn digest_mbox_message(path: &Path, offset: u64) -> io::Result<Digested> {
    let mut file = fs::File::open(path)?;
    file.seek(io::SeekFrom::Start(offset))?;
    let mut reader = mbox::Reader::new(io::BufReader::new(file));
    let mut digests = Digests::default();
    let from = reader.next_message(&mut |bytes| digests.update(bytes))?;
    if from.is_none() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("no message at byte {offset}"),
        ));
    }
    Ok(digests.finish())
}
