//! Encryption at rest.
//!
//! Blobs are sealed with XChaCha20-Poly1305 in the STREAM construction
//! (`aead::stream`, big-endian 32-bit counter + last-block flag) so that a
//! photo of any size is encrypted and decrypted chunk by chunk with constant
//! memory, and so that truncating, reordering or swapping chunks is detected.
//! The blob key is the associated data of every chunk, so one blob's bytes
//! cannot be passed off as another's.
//!
//! Sealed blob layout (version 1):
//! ```text
//! "FHB" 0x01 | key_id: u32 BE | nonce prefix: 19 bytes | chunk* (each CHUNK
//! plaintext bytes + 16-byte tag; the last chunk holds 0..=CHUNK bytes)
//! ```

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Plaintext bytes per sealed chunk.
pub const CHUNK: usize = 64 * 1024;
pub const TAG: usize = 16;
pub const HEADER_LEN: usize = 4 + 4 + 19;
const MAGIC: [u8; 4] = *b"FHB\x01";

/// A 256-bit data key and its public identifier.
#[derive(Clone)]
pub struct Key {
    id: u32,
    cipher: XChaCha20Poly1305,
    /// For keyed digests of sealed values (never for encryption).
    digest_key: [u8; 32],
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:08x})", self.id)
    }
}

impl Key {
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Key> {
        if bytes.len() != 32 {
            bail!("an encryption key is 32 bytes, got {}", bytes.len());
        }
        let digest = Sha256::new()
            .chain_update(b"facehub key id\0")
            .chain_update(bytes)
            .finalize();
        let digest_key = Sha256::new()
            .chain_update(b"facehub digest key\0")
            .chain_update(bytes)
            .finalize();
        Ok(Key {
            id: u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]),
            cipher: XChaCha20Poly1305::new_from_slice(bytes).expect("32-byte key"),
            digest_key: digest_key.into(),
        })
    }

    /// Parses the base64 form used in config files and the key file.
    pub fn from_base64(text: &str) -> anyhow::Result<Key> {
        let bytes = B64
            .decode(text.trim())
            .context("encryption key is not valid base64")?;
        Key::from_bytes(&bytes)
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    /// A key for keyed digests of data sealed under this key: someone with
    /// the database but not the key cannot test guesses against them.
    pub fn digest_key(&self) -> &[u8; 32] {
        &self.digest_key
    }
}

/// The key new data is sealed with, plus older keys still readable.
///
/// Clones share one ring, so a rotation picked up by [`KeyRing::reload`]
/// reaches every holder (the blob store, the core) at once.
#[derive(Clone)]
pub struct KeyRing {
    inner: std::sync::Arc<std::sync::RwLock<Ring>>,
}

struct Ring {
    current: Key,
    all: HashMap<u32, Key>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.read();
        write!(f, "KeyRing(current {:?}, {} keys)", r.current, r.all.len())
    }
}

/// The keys of a key file: one base64 key per line, the current one first,
/// then older keys whose data may not be re-sealed yet. Blank lines and
/// `#` comments are ignored.
pub fn parse_key_file(text: &str) -> anyhow::Result<Vec<Key>> {
    let keys = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(Key::from_base64)
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!keys.is_empty(), "the key file holds no key");
    Ok(keys)
}

impl KeyRing {
    pub fn new(current: Key) -> KeyRing {
        KeyRing::from_keys(vec![current])
    }

    /// The first key is current; all are readable.
    pub fn from_keys(keys: Vec<Key>) -> KeyRing {
        let current = keys[0].clone();
        let all = keys.into_iter().map(|k| (k.id, k)).collect();
        KeyRing {
            inner: std::sync::Arc::new(std::sync::RwLock::new(Ring { current, all })),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Ring> {
        // A panic while holding the lock cannot leave the ring half-written
        // (it is replaced whole), so a poisoned lock is still sound.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the key file at `path`, or creates one (mode 0600) with a new
    /// key if the file does not exist yet. A key file group or others may
    /// read or write is refused ([`check_key_file_mode`]).
    pub fn load_or_create(path: &Path) -> anyhow::Result<KeyRing> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_key_file_mode(path)?;
                Ok(KeyRing::from_keys(
                    parse_key_file(&text)
                        .with_context(|| format!("key file {}", path.display()))?,
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let line = new_key_line();
                write_secret_file(path, line.as_bytes())
                    .with_context(|| format!("creating key file {}", path.display()))?;
                tracing::info!(path = %path.display(), "generated a new encryption key file");
                Ok(KeyRing::new(Key::from_base64(&line)?))
            }
            Err(e) => Err(e).with_context(|| format!("reading key file {}", path.display())),
        }
    }

    /// Takes up the key file's current key (after a rotation by another
    /// process). Keys already known stay readable.
    pub fn reload(&self, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading key file {}", path.display()))?;
        let keys = parse_key_file(&text)?;
        let mut ring = self.inner.write().unwrap_or_else(|e| e.into_inner());
        ring.current = keys[0].clone();
        for k in keys {
            ring.all.insert(k.id, k);
        }
        Ok(())
    }

    pub fn current(&self) -> Key {
        self.read().current.clone()
    }

    pub fn get(&self, id: u32) -> Option<Key> {
        self.read().all.get(&id).cloned()
    }

    /// Seals a small value in one piece: `key_id | nonce(24) | ciphertext`.
    pub fn seal_small(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let current = self.current();
        let ct = current
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for small inputs");
        let mut out = Vec::with_capacity(4 + 24 + ct.len());
        out.extend_from_slice(&current.id.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// The key a value from [`KeyRing::seal_small`] was sealed with, if the
    /// ring holds it.
    pub fn key_of_small(&self, sealed: &[u8]) -> Option<Key> {
        let id = u32::from_be_bytes(sealed.get(..4)?.try_into().ok()?);
        self.get(id)
    }

    pub fn open_small(&self, aad: &[u8], sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        if sealed.len() < 4 + 24 + TAG {
            bail!("sealed value too short");
        }
        let id = u32::from_be_bytes(sealed[..4].try_into().expect("4 bytes"));
        let key = self
            .get(id)
            .with_context(|| format!("no key with id {id:08x}"))?;
        let nonce = XNonce::from_slice(&sealed[4..28]);
        key.cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &sealed[28..],
                    aad,
                },
            )
            .map_err(|_| anyhow::anyhow!("sealed value failed authentication"))
    }

    pub fn encryptor(&self, aad: &[u8]) -> SealWriter {
        SealWriter::new(&self.current(), aad)
    }

    /// Starts decrypting a sealed blob from its header.
    pub fn decryptor(&self, header: &[u8], aad: &[u8]) -> anyhow::Result<SealReader> {
        if header.len() < HEADER_LEN || header[..4] != MAGIC {
            bail!("not a sealed facehub blob");
        }
        let id = u32::from_be_bytes(header[4..8].try_into().expect("4 bytes"));
        let key = self
            .get(id)
            .with_context(|| format!("blob sealed with unknown key {id:08x}"))?;
        let dec = DecryptorBE32::from_aead(key.cipher.clone(), header[8..HEADER_LEN].into());
        Ok(SealReader {
            dec: Some(dec),
            aad: aad.to_vec(),
        })
    }
}

/// A fresh random key, base64, as a key file line.
/// A key id as shown to operators and recorded in `meta.key_id`.
pub fn key_id_hex(id: u32) -> String {
    format!("{id:08x}")
}

pub fn new_key_line() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    B64.encode(bytes)
}

/// The id of a sealed blob's key, from its header.
pub fn blob_key_id(header: &[u8]) -> Option<u32> {
    (header.len() >= 8 && header[..4] == MAGIC)
        .then(|| u32::from_be_bytes(header[4..8].try_into().expect("4 bytes")))
}

/// Refuses a key file that group or others may read or write: whoever can
/// read it can open every sealed value, and whoever can write it can
/// swap the key new data is sealed under.
pub fn check_key_file_mode(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("reading key file {}", path.display()))?
            .permissions()
            .mode()
            & 0o7777;
        anyhow::ensure!(
            mode & 0o066 == 0,
            "the key file {path} has mode {mode:04o}: group or others may read or write it. \
             Make it readable by its owner only with `chmod 600 {path}`, and rotate the key \
             (`facehub key rotate`) if anyone else may have read it",
            path = path.display()
        );
    }
    let _ = path;
    Ok(())
}

/// Writes `bytes` to a new file readable only by its owner.
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    if let Some(dir) = path.parent() {
        crate::durable::sync_dir(dir)?;
    }
    Ok(())
}

/// Incremental encryption: feed plaintext, take ciphertext out.
pub struct SealWriter {
    key_id: u32,
    enc: Option<EncryptorBE32<XChaCha20Poly1305>>,
    aad: Vec<u8>,
    pending: Vec<u8>,
    header: Option<Vec<u8>>,
}

impl SealWriter {
    fn new(key: &Key, aad: &[u8]) -> SealWriter {
        let mut prefix = [0u8; 19];
        OsRng.fill_bytes(&mut prefix);
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(&MAGIC);
        header.extend_from_slice(&key.id.to_be_bytes());
        header.extend_from_slice(&prefix);
        SealWriter {
            key_id: key.id,
            enc: Some(EncryptorBE32::from_aead(
                key.cipher.clone(),
                (&prefix[..]).into(),
            )),
            aad: aad.to_vec(),
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
                self.seal_pending(out)?;
            }
            let take = (CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    fn seal_pending(&mut self, out: &mut Vec<u8>) -> anyhow::Result<()> {
        let enc = self.enc.as_mut().context("encryptor already finished")?;
        enc.encrypt_next_in_place(&self.aad, &mut self.pending)
            .map_err(|_| anyhow::anyhow!("chunk encryption failed"))?;
        out.extend_from_slice(&self.pending);
        self.pending.clear();
        Ok(())
    }

    /// Seals what is left as the last chunk.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> anyhow::Result<()> {
        if let Some(h) = self.header.take() {
            out.extend_from_slice(&h);
        }
        let enc = self.enc.take().context("encryptor already finished")?;
        enc.encrypt_last_in_place(&self.aad[..], &mut self.pending)
            .map_err(|_| anyhow::anyhow!("chunk encryption failed"))?;
        out.extend_from_slice(&self.pending);
        self.pending.clear();
        Ok(())
    }
}

/// Incremental decryption of the chunks that follow the header.
pub struct SealReader {
    dec: Option<DecryptorBE32<XChaCha20Poly1305>>,
    aad: Vec<u8>,
}

impl SealReader {
    /// Decrypts one chunk in place. `last` must be true exactly for the
    /// final chunk of the blob.
    pub fn open_chunk(
        &mut self,
        chunk: &mut dyn chacha20poly1305::aead::Buffer,
        last: bool,
    ) -> anyhow::Result<()> {
        let failed = || anyhow::anyhow!("blob chunk failed authentication (corrupt or truncated)");
        if last {
            let dec = self.dec.take().context("decryptor already finished")?;
            dec.decrypt_last_in_place(&self.aad[..], chunk)
                .map_err(|_| failed())
        } else {
            let dec = self.dec.as_mut().context("decryptor already finished")?;
            dec.decrypt_next_in_place(&self.aad, chunk)
                .map_err(|_| failed())
        }
    }

    pub fn is_finished(&self) -> bool {
        self.dec.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Size of the sealed form of `plain_len` plaintext bytes.
    fn sealed_len(plain_len: u64) -> u64 {
        let chunk = CHUNK as u64;
        let full = if plain_len == 0 {
            0
        } else {
            (plain_len - 1) / chunk
        };
        HEADER_LEN as u64 + plain_len + (full + 1) * TAG as u64
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
        let mut rd = r.decryptor(&sealed[..HEADER_LEN.min(sealed.len())], aad)?;
        let mut rest = &sealed[HEADER_LEN..];
        let mut out = Vec::new();
        loop {
            let last = rest.len() <= CHUNK + TAG;
            let n = rest.len().min(CHUNK + TAG);
            let mut c = rest[..n].to_vec();
            rd.open_chunk(&mut c, last)?;
            out.extend_from_slice(&c);
            rest = &rest[n..];
            if last {
                return Ok(out);
            }
        }
    }

    #[test]
    fn roundtrip_at_chunk_edges() {
        let r = ring();
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
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
        // Wrong associated data (another blob's key).
        assert!(open(&r, b"other", &sealed).is_err());
        // A flipped bit.
        let mut bad = sealed.clone();
        bad[HEADER_LEN + 100] ^= 1;
        assert!(open(&r, b"k", &bad).is_err());
        // Truncated at a chunk boundary: the new last chunk was not sealed as last.
        let cut = &sealed[..HEADER_LEN + 2 * (CHUNK + TAG)];
        assert!(open(&r, b"k", cut).is_err());
        // Unknown key.
        let other = KeyRing::new(Key::from_bytes(&[9u8; 32]).unwrap());
        assert!(open(&other, b"k", &sealed).is_err());
    }

    #[test]
    fn ciphertext_does_not_contain_plaintext() {
        let r = ring();
        let data = b"FACE-PHOTO-MARKER-0123456789".repeat(1000);
        let sealed = seal(&r, b"k", &data, 999);
        assert!(!sealed.windows(18).any(|w| w == b"FACE-PHOTO-MARKER-"));
    }

    #[test]
    fn small_values_roundtrip_and_bind_aad() {
        let r = ring();
        let s = r.seal_small(b"token", b"t-abc");
        assert_eq!(r.open_small(b"token", &s).unwrap(), b"t-abc");
        assert!(r.open_small(b"other", &s).is_err());
        assert!(r.open_small(b"token", &s[..10]).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("master.key");
        let a = KeyRing::load_or_create(&p).unwrap();
        let b = KeyRing::load_or_create(&p).unwrap();
        assert_eq!(a.current().id(), b.current().id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            // Group or others reading or writing it: refused. The owner
            // alone, read-only: fine.
            for (mode, ok) in [
                (0o640, false),
                (0o620, false),
                (0o604, false),
                (0o400, true),
            ] {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
                let loaded = KeyRing::load_or_create(&p);
                assert_eq!(loaded.is_ok(), ok, "{mode:o}");
                if let Err(e) = loaded {
                    let msg = format!("{e:#}");
                    assert!(msg.contains(&format!("chmod 600 {}", p.display())), "{msg}");
                }
            }
        }
    }

    #[test]
    fn key_files_hold_the_current_key_first_and_reload_keeps_old_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("master.key");
        let first = new_key_line();
        write_secret_file(&p, format!("{first}\n").as_bytes()).unwrap();
        let ring = KeyRing::load_or_create(&p).unwrap();
        let shared = ring.clone();
        let old = ring.seal_small(b"v", b"sealed under the first key");
        let second = new_key_line();
        std::fs::write(&p, format!("# rotated\n{second}\n\n{first}\n")).unwrap();
        ring.reload(&p).unwrap();
        // Every clone sees the new current key, and the old one still opens.
        assert_eq!(
            shared.current().id(),
            Key::from_base64(&second).unwrap().id()
        );
        assert_eq!(
            shared.open_small(b"v", &old).unwrap(),
            b"sealed under the first key"
        );
        assert_eq!(
            shared
                .key_of_small(&shared.seal_small(b"v", b"x"))
                .unwrap()
                .id(),
            shared.current().id()
        );
        assert!(parse_key_file("# nothing\n\n").is_err());
        assert!(parse_key_file("not base64!\n").is_err());
    }
}
