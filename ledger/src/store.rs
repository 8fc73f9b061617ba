//! The append-only tree over a node store: the [`NodeStore`] trait a store implements (leaves
//! with their bytes, complete subtree hashes by level and index), [`append`] of a batch of
//! entries, and an in-memory store for tests and benchmarks.

use std::ops::Range;

use crate::{
    Entry, Hash, LeafData, LedgerError,
    merkle::{Frontier, NodeReader, leaf_hash},
};

/// A store that keeps the log: each leaf's bytes and hash, and the hash of every complete
/// subtree (level 1 and up). Writes go into whatever transaction the store's owner has open, so
/// an append commits or rolls back with the owner's own changes.
pub trait NodeStore: NodeReader {
    /// Stores leaf `seq` (which is the current size) with its bytes and hash.
    fn write_leaf(&mut self, seq: u64, data: &[u8], hash: &Hash) -> Result<(), LedgerError>;
    /// Stores the hash of the complete subtree `(level, index)`, level 1 and up.
    fn write_node(&mut self, level: u32, index: u64, hash: &Hash) -> Result<(), LedgerError>;
    /// The bytes of leaf `seq`.
    fn leaf(&self, seq: u64) -> Result<Vec<u8>, LedgerError>;
}

/// Appends `entries` in order, numbering them from the current size: one leaf write per entry
/// and, on average, one node write, after one node read per set bit of the old size. Returns
/// the sequence numbers given.
pub fn append(
    store: &mut impl NodeStore,
    entries: impl IntoIterator<Item = Entry>,
) -> Result<Range<u64>, LedgerError> {
    let start = store.size()?;
    let leaves = entries
        .into_iter()
        .zip(start..)
        .map(|(entry, seq)| LeafData { seq, entry }.encode());
    append_encoded(store, start, leaves)
}

/// Appends leaves given as their bytes (the tree does not look inside), from `start`, the
/// store's size.
pub(crate) fn append_encoded(
    store: &mut impl NodeStore,
    start: u64,
    leaves: impl IntoIterator<Item = Result<Vec<u8>, LedgerError>>,
) -> Result<Range<u64>, LedgerError> {
    let mut frontier = Frontier::load(store, start)?;
    let mut nodes = Vec::new();
    for data in leaves {
        let data = data?;
        let hash = leaf_hash(&data);
        store.write_leaf(frontier.size(), &data, &hash)?;
        frontier.push(hash, |level, index, hash| nodes.push((level, index, *hash)));
        for (level, index, hash) in nodes.drain(..) {
            store.write_node(level, index, &hash)?;
        }
    }
    Ok(start..frontier.size())
}

/// A node store in memory: for tests, benchmarks and verifiers that rebuild a tree.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    leaves: Vec<(Vec<u8>, Hash)>,
    /// `levels[l - 1][i]` is node `(l, i)`.
    levels: Vec<Vec<Hash>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl NodeReader for MemoryStore {
    fn size(&self) -> Result<u64, LedgerError> {
        Ok(self.leaves.len() as u64)
    }

    fn node(&self, level: u32, index: u64) -> Result<Hash, LedgerError> {
        let found = if level == 0 {
            self.leaves.get(index as usize).map(|(_, hash)| hash)
        } else {
            self.levels
                .get(level as usize - 1)
                .and_then(|nodes| nodes.get(index as usize))
        };
        found
            .copied()
            .ok_or(LedgerError::MissingNode { level, index })
    }
}

impl NodeStore for MemoryStore {
    fn write_leaf(&mut self, seq: u64, data: &[u8], hash: &Hash) -> Result<(), LedgerError> {
        if seq != self.leaves.len() as u64 {
            return Err(LedgerError::NotNext {
                seq,
                size: self.leaves.len() as u64,
            });
        }
        self.leaves.push((data.to_vec(), *hash));
        Ok(())
    }

    fn write_node(&mut self, level: u32, index: u64, hash: &Hash) -> Result<(), LedgerError> {
        let level = level as usize;
        if self.levels.len() < level {
            self.levels.resize(level, Vec::new());
        }
        let nodes = &mut self.levels[level - 1];
        if index != nodes.len() as u64 {
            return Err(LedgerError::MissingNode {
                level: level as u32,
                index: nodes.len() as u64,
            });
        }
        nodes.push(*hash);
        Ok(())
    }

    fn leaf(&self, seq: u64) -> Result<Vec<u8>, LedgerError> {
        self.leaves
            .get(seq as usize)
            .map(|(data, _)| data.clone())
            .ok_or(LedgerError::NoSuchLeaf {
                index: seq,
                size: self.leaves.len() as u64,
            })
    }
}
