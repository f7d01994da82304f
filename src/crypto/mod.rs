//! Encryption at rest: data keys and their ring, key files, small sealed
//! values (tokens, secrets, file names: XChaCha20-Poly1305 in one piece,
//! bound to their row), and sealed blobs ([`stream`]).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub(crate) mod stream;

pub use stream::{
    CHUNK, HEADER_PREFIX, MAX_HEADER, SealReader, SealWriter, TAG, header_len, is_current,
};

/// A 256-bit data key and its public identifier.
#[derive(Clone)]
pub struct Key {
    id: u32,
    cipher: XChaCha20Poly1305,
    /// What sealed blobs' own keys are derived from.
    blob_prk: ring::hkdf::Prk,
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
            blob_prk: ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"facehub blob keys")
                .extract(bytes),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::new(Key::from_bytes(&[7u8; 32]).unwrap())
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
