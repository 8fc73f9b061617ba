//! The whole-log check behind `bonnie verify`: the stored leaves against the signed
//! checkpoints (signatures, consistency, roots, truncation), and the leaves recomputed from
//! storage against the stored ones (changed, missing, reordered, payload altered). Memory grows
//! with the findings and with the records purged (each is held, by id, from its leaf to the
//! purge leaf that names it), not with the log.

use std::collections::{BTreeMap, HashMap};

use crate::{
    Checkpoint, Entry, LeafData, LeafKind, LedgerError, PublicKey, StoredCheckpoint,
    merkle::{Frontier, leaf_hash},
    timestamp::check_response,
};

/// What is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingKind {
    /// A record (or the log's leaf) is not what the log committed to.
    Changed,
    /// A leaf or record is gone, and no purge accounts for it.
    Missing,
    /// A record or leaf is at another sequence number than the log committed to.
    Reordered,
    /// The log has fewer leaves than a signed checkpoint.
    TruncatedAfterCheckpoint,
    /// A record's payloads are not those the log committed to.
    PayloadAltered,
    /// A checkpoint is unreadable, not signed by the archive's key, or its time stamp does not
    /// stamp it.
    BadSignature,
    /// The leaves do not hash to a signed root, or a checkpoint does not extend its predecessor.
    Inconsistent,
}

/// One thing wrong, where it is, and in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What is wrong.
    pub kind: FindingKind,
    /// The first sequence number affected, when a leaf is.
    pub seq: Option<u64>,
    /// The checkpoint (by tree size) concerned, when one is.
    pub checkpoint: Option<u64>,
    /// What was found, for a person.
    pub detail: String,
}

/// The outcome of a check.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every finding, by sequence number (checkpoint findings without one last).
    pub findings: Vec<Finding>,
    /// Leaves read from the log.
    pub leaves: u64,
    /// Checkpoints whose signature verified.
    pub checkpoints: u64,
}

impl Report {
    /// The first finding: the first bad sequence number.
    pub fn first(&self) -> Option<&Finding> {
        self.findings.first()
    }

    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Checks the log.
///
/// - `key`: the archive's public key; `checkpoints`: the stored checkpoints (notes and
///   time-stamp responses).
/// - `stored`: the log's leaves as `(seq, bytes)` in sequence order (the broker's).
/// - `recomputed`: for each record found in storage, its leaf recomputed from the record's and
///   payloads' bytes, in sequence order. A record purged by a logged purge is simply absent.
pub fn verify(
    key: &PublicKey,
    checkpoints: &[StoredCheckpoint],
    stored: impl IntoIterator<Item = Result<(u64, Vec<u8>), LedgerError>>,
    recomputed: impl IntoIterator<Item = LeafData>,
) -> Result<Report, LedgerError> {
    let mut check = Check::default();
    let trusted = check.checkpoints(key, checkpoints);
    check.report.checkpoints = trusted.len() as u64;
    let mut roots_due = trusted.iter().peekable();
    let mut last_good_root = 0;
    let mut frontier = Frontier::new();
    let mut recomputed = recomputed.into_iter().peekable();
    let mut previous_seq = None;
    for row in stored {
        let (seq, bytes) = row?;
        check.skip_recomputed(&mut recomputed, seq, previous_seq);
        previous_seq = Some(seq);
        check.report.leaves += 1;
        if seq != frontier.size() {
            check.missing_leaves(frontier.size(), seq);
        }
        frontier.push(leaf_hash(&bytes), |_, _, _| {});
        while let Some(checkpoint) = roots_due.next_if(|c| c.size <= frontier.size()) {
            if checkpoint.size == frontier.size() && checkpoint.root == frontier.root() {
                last_good_root = checkpoint.size;
            } else {
                check.add(
                    FindingKind::Inconsistent,
                    Some(last_good_root),
                    Some(checkpoint.size),
                    format!(
                        "the log's leaves {last_good_root}..{} do not hash to the root that checkpoint {} signed",
                        checkpoint.size, checkpoint.size
                    ),
                );
            }
        }
        let stored_leaf = match LeafData::decode(&bytes) {
            Ok(leaf) => leaf,
            Err(error) => {
                check.add(
                    FindingKind::Changed,
                    Some(seq),
                    None,
                    format!("the log's leaf is unreadable: {error}"),
                );
                recomputed.next_if(|r| r.seq == seq);
                continue;
            }
        };
        if stored_leaf.seq != seq {
            check.add(
                FindingKind::Reordered,
                Some(seq),
                None,
                format!(
                    "the log's leaf {seq} carries sequence number {}",
                    stored_leaf.seq
                ),
            );
        }
        // A purge comes after the record it names: the record was put aside as not in storage.
        if stored_leaf.entry.kind == LeafKind::Purge
            && let Some(purged) = stored_leaf.entry.refers_to
        {
            check.unmatched.remove(&purged);
        }
        match recomputed.next_if(|r| r.seq == seq) {
            Some(found) => check.compare(seq, stored_leaf.entry, found.entry),
            None => {
                check.unmatched.insert(seq, stored_leaf.entry.id);
            }
        }
    }
    let size = frontier.size();
    if let Some(last) = trusted.last().filter(|c| c.size > size) {
        check.add(
            FindingKind::TruncatedAfterCheckpoint,
            Some(size),
            Some(last.size),
            format!(
                "the log ends at {size} leaves; checkpoint {} signed {} leaves",
                last.size, last.size
            ),
        );
    }
    for extra in recomputed {
        if extra.seq >= size && trusted.last().is_none_or(|c| extra.seq >= c.size) {
            check.add(
                FindingKind::Missing,
                Some(extra.seq),
                None,
                format!(
                    "storage has record {} ({}), the log has no leaf for it",
                    extra.seq, extra.entry.id
                ),
            );
        }
    }
    Ok(check.finish())
}

/// The state of one check.
#[derive(Default)]
struct Check {
    report: Report,
    /// The ids of stored leaves with no record in storage: missing unless a later purge names
    /// them.
    unmatched: BTreeMap<u64, String>,
    /// Mismatches not yet explained: (stored, recomputed) by sequence number.
    mismatches: BTreeMap<u64, (Entry, Entry)>,
    /// The stored entry of each mismatch, to find it again where storage put it.
    stored_at: HashMap<Entry, u64>,
    /// The recomputed entry of each mismatch, to find it where the log has it.
    recomputed_at: HashMap<Entry, u64>,
}

impl Check {
    fn add(
        &mut self,
        kind: FindingKind,
        seq: Option<u64>,
        checkpoint: Option<u64>,
        detail: String,
    ) {
        self.report.findings.push(Finding {
            kind,
            seq,
            checkpoint,
            detail,
        });
    }

    /// Opens every checkpoint note and checks its time stamp, if it has one; returns those
    /// signed by `key`, by size, after checking that they agree with each other.
    fn checkpoints(&mut self, key: &PublicKey, stored: &[StoredCheckpoint]) -> Vec<Checkpoint> {
        let mut trusted: Vec<Checkpoint> = Vec::new();
        for StoredCheckpoint {
            note,
            timestamp_response,
            ..
        } in stored
        {
            let size = Checkpoint::parse(note).ok().map(|c| c.size);
            match Checkpoint::open(note, key) {
                Ok(checkpoint) => trusted.push(checkpoint),
                Err(error) => self.add(FindingKind::BadSignature, None, size, error.to_string()),
            }
            if let Some(response) = timestamp_response
                && let Err(error) = check_response(response, note.as_bytes())
            {
                let detail = format!("its RFC 3161 time stamp: {error}");
                self.add(FindingKind::BadSignature, None, size, detail);
            }
        }
        trusted.sort_by_key(|c| c.size);
        let by_size: HashMap<u64, &Checkpoint> = trusted.iter().map(|c| (c.size, c)).collect();
        let mut findings = Vec::new();
        for checkpoint in &trusted {
            let Some(previous) = checkpoint.previous else {
                continue;
            };
            let detail = match by_size.get(&previous) {
                None => format!(
                    "checkpoint {} extends checkpoint {previous}, which is not there",
                    checkpoint.size
                ),
                Some(old) if !checkpoint.extends(old) => format!(
                    "checkpoint {}'s consistency proof does not show checkpoint {previous} as its prefix",
                    checkpoint.size
                ),
                Some(_) => continue,
            };
            findings.push((previous, checkpoint.size, detail));
        }
        for pair in trusted.windows(2) {
            if pair[0].size == pair[1].size && pair[0].root != pair[1].root {
                findings.push((
                    0,
                    pair[1].size,
                    format!(
                        "two checkpoints of size {} sign different roots",
                        pair[1].size
                    ),
                ));
            }
        }
        for (seq, size, detail) in findings {
            self.add(FindingKind::Inconsistent, Some(seq), Some(size), detail);
        }
        trusted
    }

    /// Stored leaves `from..to` are not in the log.
    fn missing_leaves(&mut self, from: u64, to: u64) {
        let detail = if to > from {
            format!("the log has no leaves {from}..{to}")
        } else {
            format!("the log's leaf {to} comes after leaf {}", from - 1)
        };
        let kind = if to > from {
            FindingKind::Missing
        } else {
            FindingKind::Reordered
        };
        self.add(kind, Some(from.min(to)), None, detail);
    }

    /// Passes the records from storage before the log's leaf `seq`: those in a gap of the log
    /// after `previous` are already reported missing; any other came out of order.
    fn skip_recomputed(
        &mut self,
        recomputed: &mut std::iter::Peekable<impl Iterator<Item = LeafData>>,
        seq: u64,
        previous: Option<u64>,
    ) {
        while let Some(early) = recomputed.next_if(|r| r.seq < seq) {
            if previous.is_none_or(|previous| early.seq > previous) {
                continue;
            }
            // Found after all, only late: the log's leaf it belongs to is not missing.
            let detail = match self.unmatched.remove(&early.seq) {
                Some(_) => format!(
                    "storage lists record {} ({}) out of sequence order",
                    early.seq, early.entry.id
                ),
                None => format!(
                    "storage lists record {} ({}) twice or out of sequence order",
                    early.seq, early.entry.id
                ),
            };
            self.add(FindingKind::Reordered, Some(early.seq), None, detail);
        }
    }

    fn compare(&mut self, seq: u64, stored: Entry, mut found: Entry) {
        // The encoding's order: storage may list payloads in any.
        found.payload_digests.sort_unstable();
        found.payload_digests.dedup();
        if stored == found {
            return;
        }
        // Two records swapped: each is the other's stored entry.
        if let Some(other) = self
            .stored_at
            .remove(&found)
            .or_else(|| self.recomputed_at.remove(&stored))
        {
            if let Some((other_stored, other_found)) = self.mismatches.remove(&other) {
                self.stored_at.remove(&other_stored);
                self.recomputed_at.remove(&other_found);
            }
            self.add(
                FindingKind::Reordered,
                Some(other),
                None,
                format!("storage has the records of {other} and {seq} in each other's place"),
            );
            return;
        }
        self.stored_at.insert(stored.clone(), seq);
        self.recomputed_at.insert(found.clone(), seq);
        self.mismatches.insert(seq, (stored, found));
    }

    fn finish(mut self) -> Report {
        for (seq, id) in std::mem::take(&mut self.unmatched) {
            self.add(
                FindingKind::Missing,
                Some(seq),
                None,
                format!("record {seq} ({id}) is not in storage, and no purge names it"),
            );
        }
        for (seq, (stored, found)) in std::mem::take(&mut self.mismatches) {
            let same_record = Entry {
                payload_digests: found.payload_digests.clone(),
                ..stored.clone()
            } == found;
            if same_record {
                self.add(
                    FindingKind::PayloadAltered,
                    Some(seq),
                    None,
                    format!(
                        "record {seq} ({})'s payloads are not those the log committed to",
                        stored.id
                    ),
                );
            } else {
                self.add(
                    FindingKind::Changed,
                    Some(seq),
                    None,
                    format!(
                        "record {seq} ({}) is not what the log committed to",
                        stored.id
                    ),
                );
            }
        }
        // Findings about a leaf first, by sequence number: a root that does not match names a
        // range (from the last checkpoint that matched), a precise finding inside it says more.
        self.report.findings.sort_by_key(|f| {
            let about_checkpoint = matches!(
                f.kind,
                FindingKind::Inconsistent | FindingKind::BadSignature
            );
            (about_checkpoint, f.seq.is_none(), f.seq, f.kind)
        });
        self.report
    }
}
