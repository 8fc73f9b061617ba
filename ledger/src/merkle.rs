//! RFC 6962 (RFC 9162 section 2.1) Merkle tree hashing: leaf and node hashes, the root of any
//! size, inclusion and consistency proofs read from a node store, and their verification by
//! someone who holds only hashes.
//!
//! Nodes are addressed by `(level, index)`: level 0 holds the leaf hashes, and node
//! `(level, index)` is the hash of the complete subtree over leaves
//! `index << level .. (index + 1) << level`. Every range the RFC's recursions visit is a run of
//! such complete subtrees, so a root or a proof costs O(log n) node reads.

use sha2::{Digest as _, Sha256};

use crate::LedgerError;

/// A SHA-256 hash: of a leaf, of a node, of a record or a payload.
pub type Hash = [u8; 32];

/// The hash of a leaf: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    hasher.finalize().into()
}

/// The hash of an inner node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Read access to the hashes of complete subtrees, which is all a root or a proof needs.
pub trait NodeReader {
    /// The number of leaves.
    fn size(&self) -> Result<u64, LedgerError>;
    /// The hash of the complete subtree `(level, index)`, present whenever
    /// `(index + 1) << level <= size`.
    fn node(&self, level: u32, index: u64) -> Result<Hash, LedgerError>;
}

/// The largest power of two smaller than `n` (n >= 2): where the RFC splits a range.
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The roots of the complete subtrees that make up leaves `start..end`, left to right, where
/// `start` is a multiple of the largest power of two not above `end - start` (true of every
/// range the RFC's recursions visit, and of every prefix of the tree).
fn subtrees(nodes: &impl NodeReader, start: u64, end: u64) -> Result<Vec<Hash>, LedgerError> {
    let mut subtrees = Vec::new();
    let mut position = start;
    let length = end - start;
    for level in (0..64).rev() {
        if length & (1 << level) != 0 {
            subtrees.push(nodes.node(level, position >> level)?);
            position += 1 << level;
        }
    }
    Ok(subtrees)
}

/// The hash of a run of complete subtrees (left to right): folded from the right, as RFC 6962
/// splits a range at its largest power of two.
fn fold(subtrees: &[Hash]) -> Hash {
    let mut subtrees = subtrees.iter().rev();
    let Some(last) = subtrees.next() else {
        return empty_root();
    };
    subtrees.fold(*last, |right, left| node_hash(left, &right))
}

/// The hash of leaves `start..end` (aligned as [`subtrees`] needs).
fn range_hash(nodes: &impl NodeReader, start: u64, end: u64) -> Result<Hash, LedgerError> {
    Ok(fold(&subtrees(nodes, start, end)?))
}

/// The root of the tree of the first `size` leaves.
pub fn root(nodes: &impl NodeReader, size: u64) -> Result<Hash, LedgerError> {
    check_size(nodes, size)?;
    range_hash(nodes, 0, size)
}

fn check_size(nodes: &impl NodeReader, size: u64) -> Result<(), LedgerError> {
    let stored = nodes.size()?;
    if size > stored {
        return Err(LedgerError::TreeTooSmall {
            wanted: size,
            size: stored,
        });
    }
    Ok(())
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves (RFC 9162 2.1.3.1),
/// the sibling nearest the leaf first.
pub fn inclusion_proof(
    nodes: &impl NodeReader,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, LedgerError> {
    check_size(nodes, size)?;
    if index >= size {
        return Err(LedgerError::NoSuchLeaf { index, size });
    }
    let mut proof = Vec::new();
    path(nodes, index, 0, size, &mut proof)?;
    Ok(proof)
}

fn path(
    nodes: &impl NodeReader,
    index: u64,
    start: u64,
    end: u64,
    proof: &mut Vec<Hash>,
) -> Result<(), LedgerError> {
    if end - start == 1 {
        return Ok(());
    }
    let middle = start + split(end - start);
    if index < middle {
        path(nodes, index, start, middle, proof)?;
        proof.push(range_hash(nodes, middle, end)?);
    } else {
        path(nodes, index, middle, end, proof)?;
        proof.push(range_hash(nodes, start, middle)?);
    }
    Ok(())
}

/// The proof that the tree of `old_size` leaves is a prefix of the tree of `new_size` leaves
/// (RFC 9162 2.1.4.1); empty when `old_size` is 0 or equal to `new_size`.
pub fn consistency_proof(
    nodes: &impl NodeReader,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, LedgerError> {
    check_size(nodes, new_size)?;
    if old_size > new_size {
        return Err(LedgerError::TreeTooSmall {
            wanted: old_size,
            size: new_size,
        });
    }
    let mut proof = Vec::new();
    if old_size > 0 && old_size < new_size {
        subproof(nodes, old_size, 0, new_size, true, &mut proof)?;
    }
    Ok(proof)
}

fn subproof(
    nodes: &impl NodeReader,
    old_size: u64,
    start: u64,
    end: u64,
    old_is_whole: bool,
    proof: &mut Vec<Hash>,
) -> Result<(), LedgerError> {
    if start + old_size == end {
        if !old_is_whole {
            proof.push(range_hash(nodes, start, end)?);
        }
        return Ok(());
    }
    let middle = start + split(end - start);
    if start + old_size <= middle {
        subproof(nodes, old_size, start, middle, old_is_whole, proof)?;
        proof.push(range_hash(nodes, middle, end)?);
    } else {
        subproof(nodes, start + old_size - middle, middle, end, false, proof)?;
        proof.push(range_hash(nodes, start, middle)?);
    }
    Ok(())
}

/// Whether `proof` shows leaf `index`, hashing to `leaf`, in the tree of `size` leaves whose
/// root is `root` (RFC 9162 2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut position, mut last) = (index, size - 1);
    let mut hash = *leaf;
    for sibling in proof {
        if last == 0 {
            return false;
        }
        if position & 1 == 1 || position == last {
            hash = node_hash(sibling, &hash);
            while position & 1 == 0 && position != 0 {
                position >>= 1;
                last >>= 1;
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        position >>= 1;
        last >>= 1;
    }
    last == 0 && hash == *root
}

/// Whether `proof` shows the tree of `old_size` leaves with root `old_root` to be a prefix of
/// the tree of `new_size` leaves with root `new_root` (RFC 9162 2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty();
    }
    let Some((first, rest)) = proof.split_first() else {
        return false;
    };
    // When the old tree is a complete subtree, the proof leaves out its root, which the
    // verifier has: it is the starting point on both sides.
    let (start, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        (first, rest)
    };
    let (mut position, mut last) = (old_size - 1, new_size - 1);
    while position & 1 == 1 {
        position >>= 1;
        last >>= 1;
    }
    let (mut old_hash, mut new_hash) = (*start, *start);
    for sibling in rest {
        if last == 0 {
            return false;
        }
        if position & 1 == 1 || position == last {
            old_hash = node_hash(sibling, &old_hash);
            new_hash = node_hash(sibling, &new_hash);
            while position & 1 == 0 && position != 0 {
                position >>= 1;
                last >>= 1;
            }
        } else {
            new_hash = node_hash(&new_hash, sibling);
        }
        position >>= 1;
        last >>= 1;
    }
    last == 0 && old_hash == *old_root && new_hash == *new_root
}

/// The right edge of a tree: the roots of its complete subtrees, largest first. It is all an
/// append needs (new nodes are made from it and the new leaves), and all a verifier streaming
/// through the leaves needs to know the root at every size.
#[derive(Debug, Clone, Default)]
pub struct Frontier {
    size: u64,
    /// One hash per set bit of `size`, the highest bit first.
    subtrees: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The frontier of the stored tree's first `size` leaves (one node read per set bit).
    pub fn load(nodes: &impl NodeReader, size: u64) -> Result<Self, LedgerError> {
        check_size(nodes, size)?;
        Ok(Self {
            size,
            subtrees: subtrees(nodes, 0, size)?,
        })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds a leaf hash; `new_node(level, index, hash)` is told every complete subtree that the
    /// leaf completes (level 1 and up), which is what a node store keeps.
    pub fn push(&mut self, leaf: Hash, mut new_node: impl FnMut(u32, u64, &Hash)) {
        let index = self.size;
        let mut hash = leaf;
        let mut level = 0;
        while index & (1 << level) != 0 {
            let left = self
                .subtrees
                .pop()
                .expect("one subtree per set bit of the size");
            hash = node_hash(&left, &hash);
            level += 1;
            new_node(level, index >> level, &hash);
        }
        self.subtrees.push(hash);
        self.size += 1;
    }

    /// The root of the tree so far.
    pub fn root(&self) -> Hash {
        fold(&self.subtrees)
    }
}

#[cfg(test)]
mod tests {
    //! The RFC 6962 test leaves and the roots and proofs that transparency-dev/merkle publishes
    //! for them (proof/verify_test.go).

    use super::*;
    use crate::{MemoryStore, store::append_encoded};

    const LEAVES: [&[u8]; 8] = [
        b"",
        &[0x00],
        &[0x10],
        &[0x20, 0x21],
        &[0x30, 0x31],
        &[0x40, 0x41, 0x42, 0x43],
        &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
        &[
            0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
            0x6e, 0x6f,
        ],
    ];

    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// (leaf index, tree size, proof).
    const INCLUSION: [(u64, u64, &[&str]); 5] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];

    /// (old size, new size, proof).
    const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];

    fn hash(hex: &str) -> Hash {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        bytes.try_into().unwrap()
    }

    fn hashes(hexes: &[&str]) -> Vec<Hash> {
        hexes.iter().map(|h| hash(h)).collect()
    }

    fn test_tree() -> MemoryStore {
        let mut store = MemoryStore::new();
        append_encoded(&mut store, 0, LEAVES.iter().map(|l| Ok(l.to_vec()))).unwrap();
        store
    }

    #[test]
    fn roots_of_the_rfc_6962_test_leaves_are_the_published_ones() {
        let store = test_tree();
        assert_eq!(
            root(&store, 0).unwrap(),
            hash("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        let mut frontier = Frontier::new();
        for (size, expected) in (1..=8).zip(ROOTS) {
            assert_eq!(root(&store, size).unwrap(), hash(expected), "size {size}");
            frontier.push(leaf_hash(LEAVES[size as usize - 1]), |_, _, _| {});
            assert_eq!(frontier.root(), hash(expected), "frontier at size {size}");
            assert_eq!(Frontier::load(&store, size).unwrap().root(), hash(expected));
        }
    }

    #[test]
    fn inclusion_proofs_are_the_published_ones_and_verify() {
        let store = test_tree();
        for (index, size, expected) in INCLUSION {
            let proof = inclusion_proof(&store, index, size).unwrap();
            assert_eq!(proof, hashes(expected), "leaf {index} of {size}");
            let leaf = leaf_hash(LEAVES[index as usize]);
            let root = hash(ROOTS[size as usize - 1]);
            assert!(verify_inclusion(index, size, &leaf, &proof, &root));
        }
    }

    #[test]
    fn consistency_proofs_are_the_published_ones_and_verify() {
        let store = test_tree();
        for (old, new, expected) in CONSISTENCY {
            let proof = consistency_proof(&store, old, new).unwrap();
            assert_eq!(proof, hashes(expected), "{old} to {new}");
            let (old_root, new_root) =
                (hash(ROOTS[old as usize - 1]), hash(ROOTS[new as usize - 1]));
            assert!(verify_consistency(old, new, &old_root, &new_root, &proof));
        }
    }

    #[test]
    fn every_proof_of_every_small_tree_verifies_and_no_altered_one_does() {
        let mut store = MemoryStore::new();
        append_encoded(
            &mut store,
            0,
            (0..40u32).map(|i| Ok(i.to_be_bytes().to_vec())),
        )
        .unwrap();
        let other_root = [0x5a; 32];
        for size in 1..=40 {
            let root = root(&store, size).unwrap();
            for index in 0..size {
                let leaf = store.node(0, index).unwrap();
                let proof = inclusion_proof(&store, index, size).unwrap();
                assert!(verify_inclusion(index, size, &leaf, &proof, &root));
                assert!(!verify_inclusion(index ^ 1, size, &leaf, &proof, &root) || size == 1);
                assert!(!verify_inclusion(index, size * 2, &leaf, &proof, &root));
                assert!(!verify_inclusion(index, size, &leaf, &proof, &other_root));
                for i in 0..proof.len() {
                    let mut altered = proof.clone();
                    altered[i][0] ^= 8;
                    assert!(!verify_inclusion(index, size, &leaf, &altered, &root));
                }
            }
            for old in 0..=size {
                let old_root = self::root(&store, old).unwrap();
                let proof = consistency_proof(&store, old, size).unwrap();
                assert!(
                    verify_consistency(old, size, &old_root, &root, &proof),
                    "{old} to {size}"
                );
                if old == 0 || old == size {
                    continue;
                }
                assert!(!verify_consistency(old, size, &other_root, &root, &proof));
                assert!(!verify_consistency(
                    old,
                    size,
                    &old_root,
                    &other_root,
                    &proof
                ));
                assert!(!verify_consistency(
                    old,
                    size,
                    &old_root,
                    &root,
                    &proof[..proof.len() - 1]
                ));
                let mut longer = proof.clone();
                longer.push(root);
                assert!(!verify_consistency(old, size, &old_root, &root, &longer));
                for i in 0..proof.len() {
                    let mut altered = proof.clone();
                    altered[i][0] ^= 16;
                    assert!(!verify_consistency(old, size, &old_root, &root, &altered));
                }
            }
        }
    }

    #[test]
    fn proofs_beyond_the_tree_are_refused() {
        let store = test_tree();
        assert!(matches!(
            root(&store, 9),
            Err(LedgerError::TreeTooSmall { wanted: 9, size: 8 })
        ));
        assert!(matches!(
            inclusion_proof(&store, 8, 8),
            Err(LedgerError::NoSuchLeaf { .. })
        ));
        assert!(consistency_proof(&store, 5, 4).is_err());
    }
}
