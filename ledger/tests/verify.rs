//! The log verifier names each way a log can be tampered with, and nothing on an untouched log.

use bonnie_ledger::{
    ArchiveKey, Checkpoint, Entry, FindingKind, LeafData, LeafKind, MemoryStore, NodeReader,
    NodeStore, Report, StoredCheckpoint, append, verify,
};

/// A log of 12 records with checkpoints at 5 and 10 (the second extending the first).
struct Lab {
    _dir: tempfile::TempDir,
    key: ArchiveKey,
    store: MemoryStore,
    checkpoints: Vec<String>,
}

fn record(seq: u64) -> Entry {
    Entry {
        kind: LeafKind::Record,
        id: format!("job-{seq}"),
        record_digest: [seq as u8 + 1; 32],
        payload_digests: vec![[0xf0 | (seq % 3) as u8; 32], [0xe0; 32]],
        refers_to: None,
    }
}

fn time() -> jiff::Timestamp {
    "2026-12-01T10:00:00Z".parse().unwrap()
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let key = ArchiveKey::generate(&dir.path().join("archive.key"), "archive.test").unwrap();
        let mut lab = Lab {
            _dir: dir,
            key,
            store: MemoryStore::new(),
            checkpoints: Vec::new(),
        };
        lab.append((0..5).map(record));
        lab.checkpoint(None);
        lab.append((5..10).map(record));
        lab.checkpoint(Some(5));
        lab.append((10..12).map(record));
        lab
    }

    fn append(&mut self, entries: impl IntoIterator<Item = Entry>) {
        append(&mut self.store, entries).unwrap();
    }

    fn checkpoint(&mut self, previous: Option<u64>) {
        let checkpoint =
            Checkpoint::of_tree(&self.store, self.key.name(), previous, time()).unwrap();
        self.checkpoints.push(self.key.sign(&checkpoint).unwrap());
    }

    fn stored(&self) -> Vec<(u64, Vec<u8>)> {
        let size = self.store.size().unwrap();
        (0..size)
            .map(|seq| (seq, self.store.leaf(seq).unwrap()))
            .collect()
    }

    /// What storage gives back when nothing was touched.
    fn recomputed(&self) -> Vec<LeafData> {
        self.stored()
            .iter()
            .map(|(_, bytes)| LeafData::decode(bytes).unwrap())
            .filter(|leaf| leaf.entry.kind == LeafKind::Record)
            .collect()
    }

    fn verify(&self, stored: Vec<(u64, Vec<u8>)>, recomputed: Vec<LeafData>) -> Report {
        let checkpoints = as_stored(&self.checkpoints);
        verify(
            &self.key.public(),
            &checkpoints,
            stored.into_iter().map(Ok),
            recomputed,
        )
        .unwrap()
    }

    /// The findings, as (kind, checkpoint), of the untouched log with `checkpoints` instead.
    fn checkpoint_findings(&self, checkpoints: &[String]) -> Vec<(FindingKind, Option<u64>)> {
        let stored = self.stored().into_iter().map(Ok);
        let checkpoints = as_stored(checkpoints);
        let report = verify(&self.key.public(), &checkpoints, stored, self.recomputed()).unwrap();
        report
            .findings
            .iter()
            .map(|f| (f.kind, f.checkpoint))
            .collect()
    }
}

/// Checkpoint notes as the broker keeps them, without time stamps.
fn as_stored(notes: &[String]) -> Vec<StoredCheckpoint> {
    notes
        .iter()
        .map(|note| StoredCheckpoint {
            size: Checkpoint::parse(note).map_or(0, |c| c.size),
            note: note.clone(),
            timestamp_response: None,
        })
        .collect()
}

/// The first finding's kind and sequence number.
fn first(report: &Report) -> (FindingKind, Option<u64>) {
    let finding = report.first().expect("a finding");
    (finding.kind, finding.seq)
}

#[test]
fn an_untouched_log_verifies() {
    let lab = Lab::new();
    let report = lab.verify(lab.stored(), lab.recomputed());
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!((report.leaves, report.checkpoints), (12, 2));
}

#[test]
fn a_changed_record_is_named_by_its_sequence_number() {
    let lab = Lab::new();
    let mut recomputed = lab.recomputed();
    recomputed[3].entry.record_digest[7] ^= 1;
    let report = lab.verify(lab.stored(), recomputed);
    assert_eq!(first(&report), (FindingKind::Changed, Some(3)));
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
}

#[test]
fn an_altered_payload_is_told_from_a_changed_record() {
    let lab = Lab::new();
    let mut recomputed = lab.recomputed();
    recomputed[7].entry.payload_digests[1][0] ^= 1;
    let report = lab.verify(lab.stored(), recomputed);
    assert_eq!(first(&report), (FindingKind::PayloadAltered, Some(7)));
    // Storage listing the same payloads in another order is no finding.
    let mut recomputed = lab.recomputed();
    recomputed[7].entry.payload_digests.reverse();
    assert!(lab.verify(lab.stored(), recomputed).is_clean());
}

#[test]
fn a_deleted_record_is_missing_unless_a_logged_purge_names_it() {
    let mut lab = Lab::new();
    let mut recomputed = lab.recomputed();
    recomputed.remove(4);
    let report = lab.verify(lab.stored(), recomputed.clone());
    assert_eq!(first(&report), (FindingKind::Missing, Some(4)));

    let purge = Entry {
        kind: LeafKind::Purge,
        id: "retention-apply-1".into(),
        record_digest: [0x77; 32],
        payload_digests: record(4).payload_digests,
        refers_to: Some(4),
    };
    lab.append([purge.clone()]);
    // The purge record itself is in storage like any other.
    recomputed.push(LeafData {
        seq: 12,
        entry: purge,
    });
    let report = lab.verify(lab.stored(), recomputed);
    assert!(report.is_clean(), "{:?}", report.findings);
}

#[test]
fn a_deleted_leaf_is_missing_from_the_log() {
    let lab = Lab::new();
    let mut stored = lab.stored();
    stored.remove(11);
    stored.remove(10);
    let mut recomputed = lab.recomputed();
    recomputed.truncate(10);
    recomputed.push(LeafData {
        seq: 11,
        entry: record(11),
    });
    let report = lab.verify(stored, recomputed);
    assert_eq!(first(&report), (FindingKind::Missing, Some(11)));
}

#[test]
fn a_leaf_deleted_from_the_middle_of_the_log_is_missing() {
    let lab = Lab::new();
    let mut stored = lab.stored();
    stored.remove(3);
    let report = lab.verify(stored, lab.recomputed());
    assert_eq!(first(&report), (FindingKind::Missing, Some(3)));
    let kinds: Vec<_> = report.findings.iter().map(|f| f.kind).collect();
    assert!(
        !kinds.contains(&FindingKind::Reordered),
        "{:?}",
        report.findings
    );
}

#[test]
fn storage_listing_records_out_of_order_is_reordered() {
    let lab = Lab::new();
    let mut recomputed = lab.recomputed();
    recomputed.swap(3, 4);
    let report = lab.verify(lab.stored(), recomputed);
    assert_eq!(first(&report), (FindingKind::Reordered, Some(3)));
}

#[test]
fn two_swapped_records_are_reordered() {
    let lab = Lab::new();
    let mut recomputed = lab.recomputed();
    let (two, six) = (recomputed[2].entry.clone(), recomputed[6].entry.clone());
    recomputed[2].entry = six;
    recomputed[6].entry = two;
    let report = lab.verify(lab.stored(), recomputed);
    assert_eq!(first(&report), (FindingKind::Reordered, Some(2)));
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
}

#[test]
fn two_swapped_leaves_in_the_log_are_reordered() {
    let lab = Lab::new();
    let mut stored = lab.stored();
    let (two, six) = (stored[2].1.clone(), stored[6].1.clone());
    stored[2].1 = six;
    stored[6].1 = two;
    let report = lab.verify(stored, lab.recomputed());
    assert_eq!(first(&report), (FindingKind::Reordered, Some(2)));
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::Inconsistent && f.checkpoint == Some(5)),
        "{:?}",
        report.findings
    );
}

#[test]
fn a_log_cut_short_after_a_checkpoint_is_truncated() {
    let lab = Lab::new();
    let mut stored = lab.stored();
    stored.truncate(8);
    let mut recomputed = lab.recomputed();
    recomputed.truncate(8);
    let report = lab.verify(stored, recomputed);
    assert_eq!(
        first(&report),
        (FindingKind::TruncatedAfterCheckpoint, Some(8))
    );
    assert_eq!(report.first().unwrap().checkpoint, Some(10));
}

#[test]
fn a_tree_recomputed_without_the_key_is_inconsistent_with_the_signed_root() {
    // Someone changes record 7, rebuilds every leaf and the tree, and leaves the checkpoints.
    let lab = Lab::new();
    let mut forged = MemoryStore::new();
    let mut changed = record(7);
    changed.record_digest = [0x99; 32];
    append(
        &mut forged,
        (0..12).map(|seq| {
            if seq == 7 {
                changed.clone()
            } else {
                record(seq)
            }
        }),
    )
    .unwrap();
    let stored: Vec<_> = (0..12)
        .map(|seq| (seq, forged.leaf(seq).unwrap()))
        .collect();
    let recomputed = stored
        .iter()
        .map(|(_, bytes)| LeafData::decode(bytes).unwrap())
        .collect();
    let report = lab.verify(stored, recomputed);
    assert_eq!(first(&report), (FindingKind::Inconsistent, Some(5)));
    assert_eq!(report.first().unwrap().checkpoint, Some(10));
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
}

#[test]
fn a_checkpoint_not_signed_by_the_archive_key_is_a_bad_signature() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let forger = ArchiveKey::generate(&dir.path().join("other.key"), "archive.test").unwrap();
    let mut checkpoints = lab.checkpoints.clone();
    let checkpoint = Checkpoint::of_tree(&lab.store, forger.name(), Some(10), time()).unwrap();
    checkpoints.push(forger.sign(&checkpoint).unwrap());
    checkpoints[0] = checkpoints[0].replacen("time 2026", "time 2025", 1);
    let bad = lab.checkpoint_findings(&checkpoints);
    assert!(
        bad.contains(&(FindingKind::BadSignature, Some(5))),
        "{bad:?}"
    );
    assert!(
        bad.contains(&(FindingKind::BadSignature, Some(12))),
        "{bad:?}"
    );
    // Checkpoint 10 names checkpoint 5 as its predecessor, which no longer counts.
    assert!(
        bad.contains(&(FindingKind::Inconsistent, Some(10))),
        "{bad:?}"
    );
}

#[test]
fn a_checkpoint_that_does_not_extend_its_predecessor_is_inconsistent() {
    // A fork: checkpoint 10 of a log whose first five leaves differ from checkpoint 5's.
    let lab = Lab::new();
    let mut fork = MemoryStore::new();
    append(
        &mut fork,
        (0..10).map(|seq| Entry {
            id: format!("fork-{seq}"),
            ..record(seq)
        }),
    )
    .unwrap();
    let forked = Checkpoint::of_tree(&fork, lab.key.name(), Some(5), time()).unwrap();
    let checkpoints = vec![lab.checkpoints[0].clone(), lab.key.sign(&forked).unwrap()];
    let kinds = lab.checkpoint_findings(&checkpoints);
    assert!(
        kinds.contains(&(FindingKind::Inconsistent, Some(10))),
        "{kinds:?}"
    );
}
