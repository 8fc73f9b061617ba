//! What a leaf commits to, and its canonical bytes (version 1, see the crate docs): the sequence
//! number, the kind, the job or action id, the record's digest and its payloads' digests.

use crate::{Hash, LedgerError, merkle::leaf_hash};

/// The version byte that opens every leaf's encoding.
pub const LEAF_VERSION: u8 = 1;

/// What kind of record a leaf stands for. The codes are part of the encoding and never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum LeafKind {
    /// An archived record (a job's result).
    Record = 1,
    /// An admin or API action on the archive.
    Audit = 2,
    /// A purge: `refers_to` names the purged record's sequence number.
    Purge = 3,
    /// A legal hold placed.
    Hold = 4,
    /// A legal hold released: `refers_to` names the hold's sequence number.
    HoldRelease = 5,
}

impl LeafKind {
    /// Every kind, in code order.
    pub const ALL: [LeafKind; 5] = [
        LeafKind::Record,
        LeafKind::Audit,
        LeafKind::Purge,
        LeafKind::Hold,
        LeafKind::HoldRelease,
    ];

    /// The kind's code in the encoding.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The kind of a code.
    pub fn from_code(code: u8) -> Option<LeafKind> {
        LeafKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// What a leaf commits to, apart from its place in the log: enough to check a record and its
/// payloads, and to tell after a purge what was there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The kind of record.
    pub kind: LeafKind,
    /// The job id (records) or the action id (audit, purge, hold): at most 65,535 bytes.
    pub id: String,
    /// SHA-256 of the record's canonical bytes.
    pub record_digest: Hash,
    /// SHA-256 of each payload the record names. The encoding sorts them and drops repeats, so
    /// the order a storage lists them in does not matter.
    pub payload_digests: Vec<Hash>,
    /// The sequence number this entry acts on (a purged record, a released hold).
    pub refers_to: Option<u64>,
}

/// A leaf: an entry at its sequence number (its index in the tree).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeafData {
    /// The leaf's index in the tree, from 0.
    pub seq: u64,
    /// What it commits to.
    pub entry: Entry,
}

impl LeafData {
    /// The canonical bytes (version 1).
    pub fn encode(&self) -> Result<Vec<u8>, LedgerError> {
        let entry = &self.entry;
        let id_length = u16::try_from(entry.id.len()).map_err(|_| LedgerError::IdTooLong {
            length: entry.id.len(),
        })?;
        let mut payloads = entry.payload_digests.clone();
        payloads.sort_unstable();
        payloads.dedup();
        let payload_count =
            u32::try_from(payloads.len()).map_err(|_| LedgerError::TooManyPayloads {
                count: payloads.len(),
            })?;
        let mut out =
            Vec::with_capacity(1 + 8 + 1 + 2 + entry.id.len() + 32 + 9 + 4 + 32 * payloads.len());
        out.push(LEAF_VERSION);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.push(entry.kind.code());
        out.extend_from_slice(&id_length.to_be_bytes());
        out.extend_from_slice(entry.id.as_bytes());
        out.extend_from_slice(&entry.record_digest);
        match entry.refers_to {
            None => out.push(0),
            Some(seq) => {
                out.push(1);
                out.extend_from_slice(&seq.to_be_bytes());
            }
        }
        out.extend_from_slice(&payload_count.to_be_bytes());
        for digest in &payloads {
            out.extend_from_slice(digest);
        }
        Ok(out)
    }

    /// The leaf's hash in the tree: SHA-256(0x00 || encoding).
    pub fn hash(&self) -> Result<Hash, LedgerError> {
        Ok(leaf_hash(&self.encode()?))
    }

    /// Reads canonical bytes; anything else (another version, an unknown kind, unsorted or
    /// repeated payload digests, bytes left over) is refused, so that one leaf has one encoding.
    pub fn decode(bytes: &[u8]) -> Result<LeafData, LedgerError> {
        let mut reader = Reader { bytes, at: 0 };
        let version = reader.byte()?;
        if version != LEAF_VERSION {
            return Err(reader.bad(format!("version {version}, not {LEAF_VERSION}")));
        }
        let seq = reader.u64()?;
        let code = reader.byte()?;
        let kind =
            LeafKind::from_code(code).ok_or_else(|| reader.bad(format!("unknown kind {code}")))?;
        let id_length = usize::from(u16::from_be_bytes(reader.array()?));
        let id = String::from_utf8(reader.take(id_length)?.to_vec())
            .map_err(|_| reader.bad("an id that is not UTF-8".into()))?;
        let record_digest = reader.array()?;
        let refers_to = match reader.byte()? {
            0 => None,
            1 => Some(reader.u64()?),
            other => return Err(reader.bad(format!("refers-to flag {other}"))),
        };
        let count = u32::from_be_bytes(reader.array()?);
        let mut payload_digests: Vec<Hash> = Vec::new();
        for _ in 0..count {
            let digest: Hash = reader.array()?;
            if payload_digests.last().is_some_and(|last| *last >= digest) {
                return Err(reader.bad("payload digests not sorted or repeated".into()));
            }
            payload_digests.push(digest);
        }
        if reader.at != bytes.len() {
            return Err(reader.bad(format!("{} bytes after the leaf", bytes.len() - reader.at)));
        }
        Ok(LeafData {
            seq,
            entry: Entry {
                kind,
                id,
                record_digest,
                payload_digests,
                refers_to,
            },
        })
    }
}

/// A cursor over an encoding that names the offset of what is wrong.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Result<&'a [u8], LedgerError> {
        let end = self
            .at
            .checked_add(length)
            .filter(|end| *end <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.bad(format!("ends before {length} more bytes")));
        };
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], LedgerError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn byte(&mut self) -> Result<u8, LedgerError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, LedgerError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn bad(&self, message: String) -> LedgerError {
        LedgerError::BadLeaf {
            offset: self.at,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LeafData {
        LeafData {
            seq: 7,
            entry: Entry {
                kind: LeafKind::Record,
                id: "job-42".into(),
                record_digest: [0xaa; 32],
                payload_digests: vec![[0x02; 32], [0x01; 32], [0x02; 32]],
                refers_to: None,
            },
        }
    }

    #[test]
    fn encoding_of_a_known_leaf_is_pinned() {
        let bytes = sample().encode().unwrap();
        let mut expected = vec![1, 0, 0, 0, 0, 0, 0, 0, 7, 1, 0, 6];
        expected.extend_from_slice(b"job-42");
        expected.extend_from_slice(&[0xaa; 32]);
        expected.extend_from_slice(&[0, 0, 0, 0, 2]);
        expected.extend_from_slice(&[0x01; 32]);
        expected.extend_from_slice(&[0x02; 32]);
        assert_eq!(bytes, expected);
        // The leaf hash a verifier in any language must get for this leaf.
        let hex: String = sample()
            .hash()
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "acc768c6f04aa07e10f2f353bc054e10bbbb5f6c127b2999bae8b8a14575a527"
        );
    }

    #[test]
    fn decode_reads_back_every_kind_with_and_without_refers_to() {
        for kind in LeafKind::ALL {
            for refers_to in [None, Some(3)] {
                let mut leaf = sample();
                leaf.entry.kind = kind;
                leaf.entry.refers_to = refers_to;
                let decoded = LeafData::decode(&leaf.encode().unwrap()).unwrap();
                leaf.entry.payload_digests = vec![[0x01; 32], [0x02; 32]];
                assert_eq!(decoded, leaf);
            }
        }
    }

    #[test]
    fn decode_refuses_non_canonical_bytes() {
        let good = sample().encode().unwrap();
        let mut other_version = good.clone();
        other_version[0] = 2;
        let mut unknown_kind = good.clone();
        unknown_kind[9] = 99;
        let mut trailing = good.clone();
        trailing.push(0);
        let truncated = &good[..good.len() - 1];
        let mut unsorted = good.clone();
        let payloads = good.len() - 64;
        unsorted[payloads..].rotate_left(32);
        for bad in [
            &other_version[..],
            &unknown_kind,
            &trailing,
            truncated,
            &unsorted,
        ] {
            assert!(
                matches!(LeafData::decode(bad), Err(LedgerError::BadLeaf { .. })),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn an_id_longer_than_the_encoding_allows_is_refused() {
        let mut leaf = sample();
        leaf.entry.id = "x".repeat(70_000);
        assert!(matches!(
            leaf.encode(),
            Err(LedgerError::IdTooLong { length: 70_000 })
        ));
    }
}
