//! Payloads sealed at rest: with a key file configured (`payload_key_file`), what a store keeps
//! of a payload is its zstd frame sealed with XChaCha20-Poly1305; without one, the frame
//! itself. Every store goes through a [`Sealer`] (sqlite-storage's `payloads` rows,
//! es-storage's payload documents, payload files and bucket objects), so none keeps a plain
//! payload once a key is configured, and each reads both forms: payloads kept before the key
//! was configured stay readable.
//!
//! A sealed frame is `BNS1`, the length of the key's id (one byte), the id, a random 24-byte
//! nonce, then the ciphertext and its 16-byte tag. The associated data are that header, the
//! payload's digest and its size, so sealed bytes moved under another digest, or a size
//! changed beside them, fail authentication like any altered byte. Digests stay those of the
//! plain message: deduplication and `bonnie verify` are unchanged.
//!
//! The key file holds one key per line, `<id> <64 hex digits>` (32 bytes), `#` comments and
//! blank lines ignored; the last key seals, every key opens. Rotating adds a line: payloads
//! sealed under the older ids stay readable as long as their lines stay.

use std::{collections::HashMap, path::Path, sync::Arc};

use bonnie_core::payload;
use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};

use crate::Error;

/// The first bytes of a sealed frame (a zstd frame starts with `28 b5 2f fd`).
const SEALED_MAGIC: &[u8; 4] = b"BNS1";

/// The nonce's length: XChaCha20's 192 bits, drawn at random for every payload.
const NONCE_LEN: usize = 24;

/// The longest key id: it travels in every sealed frame.
const MAX_ID_LEN: usize = 32;

/// The keys of a key file: each by its id, and the id of the one that seals.
struct Keys {
    current: String,
    by_id: HashMap<String, XChaCha20Poly1305>,
}

/// Seals the payloads a store keeps when it was given keys, and opens what it kept: sealed
/// frames with the key their id names, plain ones as they are.
#[derive(Clone, Default)]
pub struct Sealer {
    keys: Option<Arc<Keys>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.keys {
            None => f.write_str("Sealer(plain)"),
            Some(keys) => write!(f, "Sealer(sealing with key {:?})", keys.current),
        }
    }
}

impl Sealer {
    /// A sealer with the keys of the key file `file`, which must be bonnie's alone (mode 0600
    /// or 0640) and hold at least one key; a line that is not `<id> <64 hex digits>` or an id
    /// given twice is an error naming the file and the line (never the key).
    pub fn from_file(plugin: &str, file: &Path) -> Result<Self, String> {
        let text = crate::settings::read_private(plugin, "payload_key_file", file)?;
        Self::from_text(&text).map_err(|why| {
            format!(
                "[plugins.{plugin}] payload_key_file: {}: {why}",
                file.display()
            )
        })
    }

    /// A sealer with the keys of a key file's text.
    fn from_text(text: &str) -> Result<Self, String> {
        let mut by_id = HashMap::new();
        let mut current = None;
        for (number, line) in (1..).zip(text.lines()) {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (id, key) = line
                .split_once(char::is_whitespace)
                .map(|(id, key)| (id, key.trim()))
                .ok_or_else(|| format!("line {number} is not \"<id> <64 hex digits>\""))?;
            let valid_id = id.len() <= MAX_ID_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !valid_id {
                return Err(format!(
                    "line {number}: a key id is 1 to {MAX_ID_LEN} letters, digits, '.', '_' or '-'"
                ));
            }
            let key = hex_key(key).ok_or_else(|| {
                format!("line {number}: key {id:?} must be 64 hex digits (32 bytes)")
            })?;
            if by_id
                .insert(id.to_string(), XChaCha20Poly1305::new(&key.into()))
                .is_some()
            {
                return Err(format!("line {number}: key id {id:?} is given twice"));
            }
            current = Some(id.to_string());
        }
        let current = current.ok_or("it holds no key")?;
        Ok(Self {
            keys: Some(Arc::new(Keys { current, by_id })),
        })
    }

    /// Whether new payloads are sealed (a key file was given).
    pub fn seals(&self) -> bool {
        self.keys.is_some()
    }

    /// What a store keeps of payload `bytes` of digest `digest` beside their size: the zstd
    /// frame, sealed with the current key if there are keys.
    pub fn keep(&self, digest: &str, bytes: &[u8]) -> Result<Vec<u8>, Error> {
        let frame = payload::compress(bytes)
            .map_err(|e| Error::Unavailable(format!("cannot compress payload {digest}: {e}")))?;
        let Some(keys) = &self.keys else {
            return Ok(frame);
        };
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(|e| {
            Error::Unavailable(format!("no random nonce for payload {digest}: {e}"))
        })?;
        let id = keys.current.as_bytes();
        let mut sealed = Vec::with_capacity(6 + id.len() + NONCE_LEN + frame.len() + 16);
        sealed.extend_from_slice(SEALED_MAGIC);
        sealed.push(id.len() as u8);
        sealed.extend_from_slice(id);
        sealed.extend_from_slice(&nonce);
        let aad = associated_data(&sealed, digest, bytes.len() as u64);
        let ciphertext = keys.by_id[&keys.current]
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &frame,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::Unavailable(format!("cannot seal payload {digest}")))?;
        sealed.extend(ciphertext);
        Ok(sealed)
    }

    /// The payload of digest `digest` and `size` bytes in what a store kept of it
    /// ([`Self::keep`]), checked against the digest: a sealed frame that fails authentication,
    /// a frame that does not hold `size` bytes and bytes of another digest are damage; a
    /// frame sealed under a key id this sealer lacks is [`Error::Key`], naming the id.
    pub fn open(&self, digest: &str, size: u64, kept: &[u8]) -> Result<Vec<u8>, Error> {
        let damaged = |why: &str| Error::Damaged(format!("payload {digest} is damaged: {why}"));
        let opened;
        let frame = if let Some(rest) = kept.strip_prefix(SEALED_MAGIC) {
            let (&id_len, rest) = rest.split_first().ok_or_else(|| damaged("truncated"))?;
            let id_len = usize::from(id_len);
            if rest.len() < id_len + NONCE_LEN {
                return Err(damaged("truncated"));
            }
            let (id, rest) = rest.split_at(id_len);
            let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
            let id = String::from_utf8_lossy(id);
            let Some(keys) = &self.keys else {
                return Err(Error::Key(format!(
                    "payload {digest} is sealed with key {id:?}, but no payload_key_file is configured"
                )));
            };
            let Some(key) = keys.by_id.get(id.as_ref()) else {
                return Err(Error::Key(format!(
                    "payload {digest} is sealed with key {id:?}, which the payload key file does not hold"
                )));
            };
            let header = &kept[..kept.len() - ciphertext.len()];
            let aad = associated_data(header, digest, size);
            opened = key
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| {
                    damaged(&format!(
                        "its sealed bytes fail authentication with key {id:?}"
                    ))
                })?;
            &opened[..]
        } else {
            kept
        };
        let size = usize::try_from(size)
            .map_err(|_| damaged("it claims more bytes than this machine can address"))?;
        let bytes = payload::decompress(frame, size).map_err(|e| damaged(&e.to_string()))?;
        if payload::digest(&bytes) != digest {
            return Err(damaged("it does not match its digest"));
        }
        Ok(bytes)
    }

    /// What a payload file or object holds: the size (8 bytes, little-endian), then
    /// [`Self::keep`]'s frame.
    pub fn pack(&self, digest: &str, bytes: &[u8]) -> Result<Vec<u8>, Error> {
        let mut content = (bytes.len() as u64).to_le_bytes().to_vec();
        content.extend(self.keep(digest, bytes)?);
        Ok(content)
    }

    /// The payload in a payload file's or object's bytes ([`Self::pack`]), checked as
    /// [`Self::open`] checks it.
    pub fn unpack(&self, digest: &str, content: &[u8]) -> Result<Vec<u8>, Error> {
        let (size, kept) = content
            .split_first_chunk::<8>()
            .ok_or_else(|| Error::Damaged(format!("payload {digest} is damaged: truncated")))?;
        self.open(digest, u64::from_le_bytes(*size), kept)
    }
}

/// Whether what a store kept of a payload (a frame, not a file's size prefix) is sealed.
pub fn is_sealed(kept: &[u8]) -> bool {
    kept.starts_with(SEALED_MAGIC)
}

/// The associated data of a sealed frame: its header, then the payload's digest and size.
fn associated_data(header: &[u8], digest: &str, size: u64) -> Vec<u8> {
    let mut aad = header.to_vec();
    aad.extend_from_slice(digest.as_bytes());
    aad.extend_from_slice(&size.to_le_bytes());
    aad
}

/// 64 hex digits as 32 bytes.
fn hex_key(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (byte, pair) in key.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] =
        b"From: a@example.org\r\nSubject: sealed\r\n\r\nThe confidential body.\r\n";
    const KEY_1: &str = "2026-01 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const KEY_2: &str = "2026-07 f0e0d0c0b0a090807060504030201000ffeeddccbbaa99887766554433221100";

    fn sealer(text: &str) -> Sealer {
        Sealer::from_text(text).unwrap()
    }

    fn kept(sealer: &Sealer) -> (String, Vec<u8>) {
        let digest = payload::digest(MESSAGE);
        let kept = sealer.keep(&digest, MESSAGE).unwrap();
        (digest, kept)
    }

    fn size() -> u64 {
        MESSAGE.len() as u64
    }

    #[test]
    fn a_sealed_payload_opens_and_holds_neither_the_text_nor_its_zstd_frame() {
        let sealer = sealer(KEY_1);
        let (digest, kept) = kept(&sealer);
        assert!(is_sealed(&kept));
        assert_eq!(sealer.open(&digest, size(), &kept).unwrap(), MESSAGE);
        let frame = payload::compress(MESSAGE).unwrap();
        let holds = |needle: &[u8]| kept.windows(needle.len()).any(|w| w == needle);
        assert!(!holds(b"confidential") && !holds(&frame[4..20]));
        let (_, again) = self::kept(&sealer);
        assert_ne!(kept, again, "a fresh nonce each time");
        let packed = sealer.pack(&digest, MESSAGE).unwrap();
        assert_eq!(sealer.unpack(&digest, &packed).unwrap(), MESSAGE);
    }

    #[test]
    fn a_wrong_key_a_changed_byte_another_digest_or_size_fail_authentication() {
        let (digest, kept) = kept(&sealer(KEY_1));
        let other_key = "2026-01 ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
        let damaged = |sealer: &Sealer, digest: &str, size: u64, kept: &[u8]| {
            let error = sealer.open(digest, size, kept).unwrap_err();
            assert!(matches!(error, Error::Damaged(_)), "{error:?}");
            error.to_string()
        };
        let wrong = damaged(&sealer(other_key), &digest, size(), &kept);
        assert!(
            wrong.contains("authentication") && wrong.contains(&digest),
            "{wrong}"
        );
        // The nonce, the ciphertext, the tag (a changed id names a key the file lacks).
        for at in [kept.len() - 1, kept.len() - 20, 20, 40] {
            let mut changed = kept.clone();
            changed[at] ^= 1;
            damaged(&sealer(KEY_1), &digest, size(), &changed);
        }
        damaged(&sealer(KEY_1), &payload::digest(b"other"), size(), &kept);
        damaged(&sealer(KEY_1), &digest, size() + 1, &kept);
        damaged(&sealer(KEY_1), &digest, size(), &kept[..kept.len() - 1]);
        damaged(&sealer(KEY_1), &digest, size(), &kept[..10]);
    }

    #[test]
    fn an_unknown_key_id_and_a_sealed_payload_without_keys_are_errors_naming_the_id() {
        let (digest, kept) = kept(&sealer(KEY_2));
        let unknown = sealer(KEY_1).open(&digest, size(), &kept).unwrap_err();
        assert!(matches!(unknown, Error::Key(_)), "{unknown:?}");
        assert!(unknown.to_string().contains("\"2026-07\""), "{unknown}");
        let none = Sealer::default().open(&digest, size(), &kept).unwrap_err();
        assert!(
            none.to_string().contains("2026-07") && none.to_string().contains("payload_key_file"),
            "{none}"
        );
    }

    #[test]
    fn after_a_rotation_old_payloads_open_and_new_ones_are_sealed_with_the_new_key() {
        let (old_digest, old) = kept(&sealer(KEY_1));
        let rotated = sealer(&format!("# keys\n{KEY_1}\n\n{KEY_2}\n"));
        assert_eq!(rotated.open(&old_digest, size(), &old).unwrap(), MESSAGE);
        let (digest, new) = kept(&rotated);
        assert_eq!(&new[4..12], b"\x072026-07", "the last key seals");
        assert!(sealer(KEY_1).open(&digest, size(), &new).is_err());
        assert_eq!(sealer(KEY_2).open(&digest, size(), &new).unwrap(), MESSAGE);
    }

    #[test]
    fn a_plain_payload_kept_before_the_key_still_opens_and_plain_stores_keep_plain() {
        let (digest, plain) = kept(&Sealer::default());
        assert!(!is_sealed(&plain));
        assert_eq!(plain, payload::compress(MESSAGE).unwrap());
        assert_eq!(
            sealer(KEY_1).open(&digest, size(), &plain).unwrap(),
            MESSAGE
        );
        let mut other = MESSAGE.to_vec();
        other[5] ^= 1;
        let forged = payload::compress(&other).unwrap();
        assert!(matches!(
            sealer(KEY_1).open(&digest, size(), &forged),
            Err(Error::Damaged(_))
        ));
    }

    #[test]
    fn a_key_file_with_a_bad_line_a_short_key_or_a_repeated_id_is_refused_naming_the_line() {
        let refused = |text: &str| Sealer::from_text(text).err().unwrap();
        assert!(refused("# nothing\n").contains("no key"));
        assert!(refused("justonetoken\n").contains("line 1"));
        let short = refused(&format!("{KEY_1}\nk2 00ff\n"));
        assert!(
            short.contains("line 2") && short.contains("64 hex"),
            "{short}"
        );
        assert!(!short.contains("00ff"), "the key is not echoed: {short}");
        assert!(refused(&format!("{KEY_1}\n{KEY_1}\n")).contains("twice"));
        assert!(refused(&format!("bad/id {}", &KEY_1[8..])).contains("key id"));
        let not_hex = format!("k {}", "zz".repeat(32));
        assert!(refused(&not_hex).contains("64 hex"));
    }
}
