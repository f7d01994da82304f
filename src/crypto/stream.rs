//! Sealed blobs: photos of any size encrypted and decrypted chunk by chunk
//! with constant memory, in the STREAM construction (a 32-bit big-endian
//! chunk counter and a last-chunk flag in every nonce), so that truncating,
//! reordering or swapping chunks is detected.
//!
//! Layouts (the fourth byte is the version):
//! ```text
//! v2: "FHB" 0x02 | key_id: u32 BE | salt: 32 bytes         | chunk*
//! v1: "FHB" 0x01 | key_id: u32 BE | nonce prefix: 19 bytes | chunk*
//! ```
//! A chunk is CHUNK plaintext bytes and a 16-byte tag; the last holds
//! 0..=CHUNK bytes.
//!
//! New blobs are v2: AES-256-GCM under a key of their own, derived with
//! HKDF-SHA256 from the data key, the blob's random salt and the blob's
//! name (as Tink's AES-GCM-HKDF streaming AEAD does). AES-GCM has hardware
//! support (AES-NI, VAES, CLMUL) through `ring`, an order of magnitude
//! faster on this path than XChaCha20-Poly1305 in portable Rust; the
//! per-blob key makes its 96-bit nonces safe however many blobs a data
//! key seals (a nonce needs to be unique only under its blob's key), and
//! the name in the derivation keeps one blob's bytes from opening as
//! another's.
//!
//! v1 blobs (XChaCha20-Poly1305, the blob's name as every chunk's
//! associated data) stay readable; `key reseal` after a rotation rewrites
//! them as v2.

use anyhow::{Context, bail};
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::stream::{NewStream, StreamBE32, StreamPrimitive};
use chacha20poly1305::aead::{Buffer, OsRng};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use super::{Key, KeyRing};

/// Plaintext bytes per sealed chunk.
pub const CHUNK: usize = 64 * 1024;
pub const TAG: usize = 16;
/// The bytes every header starts with: magic, version, key id.
pub const HEADER_PREFIX: usize = 8;
/// The longest header of any version.
pub const MAX_HEADER: usize = HEADER_PREFIX + SALT;
const SALT: usize = 32;
const V1_PREFIX: usize = 19;
const MAGIC: [u8; 3] = *b"FHB";
const V1: u8 = 1;
const V2: u8 = 2;
/// HKDF info that sets v2's blob keys apart from any other use of the
/// data key.
const V2_INFO: &[u8] = b"facehub blob v2\0";

/// A header's version and key id, if it starts like a sealed blob of a
/// known version.
fn parse_prefix(header: &[u8]) -> Option<(u8, u32)> {
    let prefix = header.get(..HEADER_PREFIX)?;
    let version = prefix[3];
    (prefix[..3] == MAGIC && (version == V1 || version == V2)).then(|| {
        (
            version,
            u32::from_be_bytes(prefix[4..8].try_into().expect("4 bytes")),
        )
    })
}

/// The whole header's length, from its first [`HEADER_PREFIX`] bytes;
/// `None` if they are not those of a sealed blob.
pub fn header_len(prefix: &[u8]) -> Option<usize> {
    parse_prefix(prefix).map(|(version, _)| match version {
        V1 => HEADER_PREFIX + V1_PREFIX,
        _ => HEADER_PREFIX + SALT,
    })
}

/// Whether a blob starting with `header` (whole) is sealed the way new
/// blobs are, under the key `current`: nothing for a re-seal to do.
pub fn is_current(header: &[u8], current: u32) -> bool {
    parse_prefix(header) == Some((V2, current)) && header.len() >= HEADER_PREFIX + SALT
}

/// A v2 blob's own AES-256-GCM key.
fn blob_key(key: &Key, salt: &[u8], aad: &[u8]) -> LessSafeKey {
    let info = [V2_INFO, salt, aad];
    let okm = key
        .blob_prk
        .expand(&info, &AES_256_GCM)
        .expect("32 bytes are within HKDF-SHA256's output limit");
    LessSafeKey::new(UnboundKey::from(okm))
}

/// The STREAM nonce of chunk `counter`: the blob's key is its own, so the
/// prefix is zero.
fn chunk_nonce(counter: u32, last: bool) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[7..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

/// A v2 blob's chunk sequence: its key and the next chunk's counter.
struct Chunks {
    key: LessSafeKey,
    counter: u32,
}

impl Chunks {
    fn next_nonce(&mut self, last: bool) -> anyhow::Result<Nonce> {
        let nonce = chunk_nonce(self.counter, last);
        self.counter = self
            .counter
            .checked_add(1)
            .context("a blob holds at most 2^32 chunks")?;
        Ok(nonce)
    }
}

impl KeyRing {
    /// Starts sealing a blob named `aad` under the current key.
    pub fn encryptor(&self, aad: &[u8]) -> SealWriter {
        SealWriter::new(&self.current(), aad)
    }

    /// Starts opening a sealed blob named `aad` from its whole header
    /// ([`header_len`] bytes).
    pub fn decryptor(&self, header: &[u8], aad: &[u8]) -> anyhow::Result<SealReader> {
        let Some((version, id)) = parse_prefix(header) else {
            bail!("not a sealed facehub blob");
        };
        let len = header_len(header).expect("a known version");
        if header.len() < len {
            bail!("sealed blob header cut short");
        }
        let key = self
            .get(id)
            .with_context(|| format!("blob sealed with unknown key {id:08x}"))?;
        let opener = match version {
            V1 => Opener::V1 {
                stream: StreamBE32::from_aead(
                    key.cipher.clone(),
                    header[HEADER_PREFIX..len].into(),
                ),
                aad: aad.to_vec(),
                counter: 0,
            },
            _ => Opener::V2(Chunks {
                key: blob_key(&key, &header[HEADER_PREFIX..len], aad),
                counter: 0,
            }),
        };
        Ok(SealReader {
            opener: Some(opener),
            failed: false,
        })
    }
}

/// Incremental encryption: feed plaintext, take ciphertext out.
pub struct SealWriter {
    key_id: u32,
    chunks: Option<Chunks>,
    pending: Vec<u8>,
    header: Option<Vec<u8>>,
}

impl SealWriter {
    fn new(key: &Key, aad: &[u8]) -> SealWriter {
        let mut salt = [0u8; SALT];
        OsRng.fill_bytes(&mut salt);
        let mut header = Vec::with_capacity(MAX_HEADER);
        header.extend_from_slice(&MAGIC);
        header.push(V2);
        header.extend_from_slice(&key.id.to_be_bytes());
        header.extend_from_slice(&salt);
        SealWriter {
            key_id: key.id,
            chunks: Some(Chunks {
                key: blob_key(key, &salt, aad),
                counter: 0,
            }),
            pending: Vec::with_capacity(CHUNK + TAG),
            header: Some(header),
        }
    }

    /// The key this blob is sealed under: the ring's current key when the
    /// writer began, which a rotation may have replaced since.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Adds plaintext; appends any ciphertext ready to be written to `out`.
    pub fn update(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> anyhow::Result<()> {
        if let Some(h) = self.header.take() {
            out.extend_from_slice(&h);
        }
        // A chunk is sealed only once more plaintext follows it, because the
        // last chunk must be sealed with the "last" flag.
        while !data.is_empty() {
            if self.pending.len() == CHUNK {
                self.seal_pending(false, out)?;
            }
            let take = (CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    fn seal_pending(&mut self, last: bool, out: &mut Vec<u8>) -> anyhow::Result<()> {
        let chunks = self.chunks.as_mut().context("encryptor already finished")?;
        let nonce = chunks.next_nonce(last)?;
        let tag = chunks
            .key
            .seal_in_place_separate_tag(nonce, Aad::empty(), &mut self.pending)
            .map_err(|_| anyhow::anyhow!("chunk encryption failed"))?;
        out.extend_from_slice(&self.pending);
        out.extend_from_slice(tag.as_ref());
        self.pending.clear();
        Ok(())
    }

    /// Seals what is left as the last chunk.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> anyhow::Result<()> {
        if let Some(h) = self.header.take() {
            out.extend_from_slice(&h);
        }
        self.seal_pending(true, out)?;
        self.chunks = None;
        Ok(())
    }
}

/// How a blob's chunks open, by its version.
// The large variant (AES-GCM's key schedule and tables) is the common one:
// boxing it would cost an allocation per blob for nothing.
#[allow(clippy::large_enum_variant)]
enum Opener {
    V1 {
        stream: StreamBE32<XChaCha20Poly1305>,
        aad: Vec<u8>,
        counter: u32,
    },
    V2(Chunks),
}

/// Incremental decryption of the chunks that follow the header.
pub struct SealReader {
    /// `None` once the last chunk has opened.
    opener: Option<Opener>,
    /// A chunk failed: every later one fails too, so that no caller can
    /// read on past a bad chunk to a stream that looks whole.
    failed: bool,
}

impl SealReader {
    /// Decrypts one chunk (ciphertext and tag) in place, leaving its
    /// plaintext. `last` must be true exactly for the final chunk. After a
    /// chunk fails, the reader never finishes and every call fails.
    pub fn open_chunk(&mut self, chunk: &mut dyn Buffer, last: bool) -> anyhow::Result<()> {
        anyhow::ensure!(!self.failed, "blob chunk after one that failed");
        let opened = self.open(chunk, last);
        self.failed = opened.is_err();
        opened
    }

    fn open(&mut self, chunk: &mut dyn Buffer, last: bool) -> anyhow::Result<()> {
        let failed = || anyhow::anyhow!("blob chunk failed authentication (corrupt or truncated)");
        match self.opener.as_mut().context("decryptor already finished")? {
            Opener::V1 {
                stream,
                aad,
                counter,
            } => {
                stream
                    .decrypt_in_place(*counter, last, aad, chunk)
                    .map_err(|_| failed())?;
                *counter = counter
                    .checked_add(1)
                    .context("a blob holds at most 2^32 chunks")?;
                if last {
                    self.opener = None;
                }
            }
            Opener::V2(chunks) => {
                let nonce = chunks.next_nonce(last)?;
                let plain = chunks
                    .key
                    .open_in_place(nonce, Aad::empty(), chunk.as_mut())
                    .map_err(|_| failed())?
                    .len();
                chunk.truncate(plain);
                if last {
                    self.opener = None;
                }
            }
        }
        Ok(())
    }

    pub fn is_finished(&self) -> bool {
        self.opener.is_none()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chacha20poly1305::aead::stream::EncryptorBE32;

    use super::*;

    /// A blob as v1 wrote it (XChaCha20-Poly1305, the name as every
    /// chunk's associated data).
    pub(crate) fn seal_v1(key: &Key, aad: &[u8], data: &[u8]) -> Vec<u8> {
        let prefix = [5u8; V1_PREFIX];
        let mut out = b"FHB\x01".to_vec();
        out.extend_from_slice(&key.id.to_be_bytes());
        out.extend_from_slice(&prefix);
        let mut enc = EncryptorBE32::from_aead(key.cipher.clone(), (&prefix[..]).into());
        let mut pieces = data.chunks(CHUNK).peekable();
        loop {
            let mut c = pieces.next().unwrap_or_default().to_vec();
            if pieces.peek().is_none() {
                enc.encrypt_last_in_place(aad, &mut c).unwrap();
                out.extend_from_slice(&c);
                return out;
            }
            enc.encrypt_next_in_place(aad, &mut c).unwrap();
            out.extend_from_slice(&c);
        }
    }

    const V2_HEADER: usize = HEADER_PREFIX + SALT;
    const V1_HEADER: usize = HEADER_PREFIX + V1_PREFIX;

    /// Size of the sealed form of `plain_len` plaintext bytes.
    fn sealed_len(plain_len: u64) -> u64 {
        let chunk = CHUNK as u64;
        let full = if plain_len == 0 {
            0
        } else {
            (plain_len - 1) / chunk
        };
        V2_HEADER as u64 + plain_len + (full + 1) * TAG as u64
    }

    fn ring() -> KeyRing {
        KeyRing::new(Key::from_bytes(&[7u8; 32]).unwrap())
    }

    fn seal(r: &KeyRing, aad: &[u8], data: &[u8], piece: usize) -> Vec<u8> {
        let mut w = r.encryptor(aad);
        let mut out = Vec::new();
        for p in data.chunks(piece.max(1)) {
            w.update(p, &mut out).unwrap();
        }
        w.finish(&mut out).unwrap();
        out
    }

    fn open(r: &KeyRing, aad: &[u8], sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        let len = header_len(sealed)
            .unwrap_or(HEADER_PREFIX)
            .min(sealed.len());
        let mut rd = r.decryptor(&sealed[..len], aad)?;
        let mut rest = &sealed[len..];
        let mut out = Vec::new();
        loop {
            let last = rest.len() <= CHUNK + TAG;
            let n = rest.len().min(CHUNK + TAG);
            let mut c = rest[..n].to_vec();
            rd.open_chunk(&mut c, last)?;
            out.extend_from_slice(&c);
            rest = &rest[n..];
            if last {
                assert!(rd.is_finished());
                return Ok(out);
            }
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn roundtrip_at_chunk_edges() {
        let r = ring();
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5] {
            let data = data(len);
            for piece in [1000, CHUNK, 7 * CHUNK] {
                let sealed = seal(&r, b"k", &data, piece);
                assert_eq!(sealed.len() as u64, sealed_len(len as u64), "len {len}");
                assert_eq!(open(&r, b"k", &sealed).unwrap(), data, "len {len}");
            }
        }
    }

    #[test]
    fn tampering_is_detected() {
        let r = ring();
        let data = vec![42u8; 2 * CHUNK + 10];
        let sealed = seal(&r, b"k", &data, 4096);
        // Another blob's name.
        assert!(open(&r, b"other", &sealed).is_err());
        // A flipped bit, in a chunk and in the salt.
        for at in [V2_HEADER + 100, HEADER_PREFIX + 3] {
            let mut bad = sealed.clone();
            bad[at] ^= 1;
            assert!(open(&r, b"k", &bad).is_err(), "bit flipped at {at}");
        }
        // Truncated at a chunk boundary: the new last chunk was not sealed as last.
        let cut = &sealed[..V2_HEADER + 2 * (CHUNK + TAG)];
        assert!(open(&r, b"k", cut).is_err());
        // The first two chunks swapped.
        let (a, b) = (V2_HEADER, V2_HEADER + CHUNK + TAG);
        let mut swapped = sealed[..a].to_vec();
        swapped.extend_from_slice(&sealed[b..b + CHUNK + TAG]);
        swapped.extend_from_slice(&sealed[a..b]);
        swapped.extend_from_slice(&sealed[b + CHUNK + TAG..]);
        assert!(open(&r, b"k", &swapped).is_err());
        // A chunk of another blob sealed under the same key and name.
        let other = seal(&r, b"k", &data, 4096);
        let mut spliced = sealed.clone();
        spliced[b..b + CHUNK + TAG].copy_from_slice(&other[b..b + CHUNK + TAG]);
        assert!(open(&r, b"k", &spliced).is_err());
        // Unknown key; a header cut short; an unknown version.
        let stranger = KeyRing::new(Key::from_bytes(&[9u8; 32]).unwrap());
        assert!(open(&stranger, b"k", &sealed).is_err());
        assert!(r.decryptor(&sealed[..V2_HEADER - 1], b"k").is_err());
        let mut v3 = sealed.clone();
        v3[3] = 3;
        assert!(open(&r, b"k", &v3).is_err());
    }

    #[test]
    fn a_failed_chunk_never_reads_as_the_end() {
        let r = ring();
        let key = r.current();
        let plain = data(2 * CHUNK + 5);
        for sealed in [seal(&r, b"k", &plain, 1000), seal_v1(&key, b"k", &plain)] {
            let len = header_len(&sealed).unwrap();
            let mut rd = r.decryptor(&sealed[..len], b"k").unwrap();
            let chunk = |i: usize| {
                let at = len + i * (CHUNK + TAG);
                sealed[at..(at + CHUNK + TAG).min(sealed.len())].to_vec()
            };
            let mut bad = chunk(0);
            bad[0] ^= 1;
            assert!(rd.open_chunk(&mut bad, false).is_err());
            // The chunks after it are sound, but do not open once one failed.
            assert!(rd.open_chunk(&mut chunk(1), false).is_err());
            assert!(rd.open_chunk(&mut chunk(2), true).is_err());
            assert!(!rd.is_finished());
        }
    }

    #[test]
    fn v1_blobs_stay_readable_and_are_not_current() {
        let r = ring();
        let key = r.current();
        for len in [0, 10, CHUNK, 2 * CHUNK + 3] {
            let sealed = seal_v1(&key, b"k", &data(len));
            assert_eq!(header_len(&sealed), Some(V1_HEADER));
            assert_eq!(open(&r, b"k", &sealed).unwrap(), data(len), "len {len}");
            assert!(open(&r, b"other", &sealed).is_err());
            assert_eq!(parse_prefix(&sealed), Some((V1, key.id())));
            assert!(!is_current(&sealed, key.id()), "a v1 blob is re-sealed");
        }
        let v2 = seal(&r, b"k", b"x", 1);
        assert!(is_current(&v2, key.id()));
        assert!(!is_current(&v2, key.id() ^ 1));
        // A header cut short is not one to leave as it is.
        assert!(!is_current(&v2[..V2_HEADER - 1], key.id()));
    }

    #[test]
    fn every_blob_has_a_key_of_its_own() {
        let r = ring();
        let data = data(1000);
        let (a, b) = (seal(&r, b"k", &data, 1000), seal(&r, b"k", &data, 1000));
        // Same key, name and plaintext: different salts, different bytes.
        assert_ne!(a[HEADER_PREFIX..V2_HEADER], b[HEADER_PREFIX..V2_HEADER]);
        assert_ne!(a[V2_HEADER..], b[V2_HEADER..]);
    }

    #[test]
    fn ciphertext_does_not_contain_plaintext() {
        let r = ring();
        let data = b"FACE-PHOTO-MARKER-0123456789".repeat(1000);
        let sealed = seal(&r, b"k", &data, 999);
        assert!(!sealed.windows(18).any(|w| w == b"FACE-PHOTO-MARKER-"));
    }
}
