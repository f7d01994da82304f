//! Encryption between the core and any [`BlobStore`]: what reaches the
//! store (a local directory today, S3 later) is always ciphertext.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::blob::{Ahead, BlobReader, BlobStore, BlobWriter};
use crate::crypto::{CHUNK, HEADER_PREFIX, KeyRing, MAX_HEADER, SealReader, SealWriter, TAG};

/// Bytes read from the store at once while decrypting.
const READ_AHEAD: usize = 4 * (CHUNK + TAG);

#[derive(Clone)]
pub struct SealedBlobs {
    store: Arc<dyn BlobStore>,
    keys: KeyRing,
}

impl SealedBlobs {
    pub fn new(store: Arc<dyn BlobStore>, keys: KeyRing) -> SealedBlobs {
        SealedBlobs { store, keys }
    }

    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }

    pub async fn create(&self, key: &str) -> anyhow::Result<SealedWriter> {
        Ok(SealedWriter {
            sha: Sha256::new(),
            inner: self.store.create(key).await?,
            seal: self.keys.encryptor(key.as_bytes()),
            out: Vec::with_capacity(CHUNK + TAG + MAX_HEADER),
        })
    }

    /// Opens a blob and checks its first chunk before any byte is handed
    /// out, so that a missing key or a corrupt header is an error the caller
    /// can still answer with a status, not a truncated 200.
    pub async fn open(&self, key: &str) -> anyhow::Result<Option<PlainStream>> {
        self.open_ahead(key, READ_AHEAD).await
    }

    /// [`SealedBlobs::open`] for a blob of `plain_len` bytes: reads ahead
    /// no more than the blob holds, so that a thousand downloads of small
    /// photos at once cost a thousand small buffers, not 256 KiB each, and
    /// a photo that fits is read whole with the opening.
    pub async fn open_sized(
        &self,
        key: &str,
        plain_len: u64,
    ) -> anyhow::Result<Option<PlainStream>> {
        let chunks = plain_len / CHUNK as u64 + 1;
        let sealed = plain_len.saturating_add(chunks * TAG as u64);
        let ahead = usize::try_from(sealed)
            .unwrap_or(READ_AHEAD)
            .clamp(CHUNK + TAG + 1, READ_AHEAD);
        self.open_ahead(key, ahead).await
    }

    /// Opens a blob reading `ahead` bytes of chunks at a time; the first
    /// read takes the header too, and one byte more, which tells whether
    /// the blob ended within it (then no read is left to find its end).
    async fn open_ahead(&self, key: &str, ahead: usize) -> anyhow::Result<Option<PlainStream>> {
        let want = ahead + MAX_HEADER + 1;
        let Some(Ahead { first, reader }) = self.store.open_ahead(key, want).await? else {
            return Ok(None);
        };
        let eof = first.len() < want;
        self.open_stream(key, reader, first, eof, ahead)
            .await
            .map(Some)
    }

    /// Starts decrypting a blob whose first bytes are in `buf` (`eof`:
    /// they are all of it) and the rest in `reader`.
    async fn open_stream(
        &self,
        key: &str,
        mut reader: BlobReader,
        mut buf: BytesMut,
        eof: bool,
        ahead: usize,
    ) -> anyhow::Result<PlainStream> {
        let header_len = loop {
            match crate::crypto::header_len(&buf) {
                Some(len) if buf.len() >= len => break len,
                None if buf.len() >= HEADER_PREFIX => anyhow::bail!("not a sealed facehub blob"),
                _ => {}
            }
            if eof || reader.read_buf(&mut buf).await? == 0 {
                anyhow::bail!("blob shorter than its header");
            }
        };
        let header = buf.split_to(header_len);
        let dec = self.keys.decryptor(&header, key.as_bytes())?;
        let mut stream = PlainStream {
            reader,
            dec,
            buf,
            ahead,
            eof,
            first: None,
        };
        stream.first = stream.next_chunk().await?;
        Ok(stream)
    }

    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.store.delete(key).await
    }

    /// Re-seals a blob under the ring's current key, replacing it in place
    /// (atomically: readers see the old or the new blob, both valid).
    /// Returns the new digest of the sealed bytes and the key it is sealed
    /// under, or `None` if the blob is gone. A blob already sealed as new
    /// blobs are, under the current key (a rotation that stopped after
    /// replacing it), is only digested; one of an older format is
    /// rewritten in the current one.
    pub async fn reseal(&self, key: &str) -> anyhow::Result<Option<(String, u32)>> {
        let Some(Ahead { first, mut reader }) = self.store.open_ahead(key, MAX_HEADER).await?
        else {
            return Ok(None);
        };
        let current = self.keys.current().id();
        if crate::crypto::is_current(&first, current) {
            let mut sha = Sha256::new();
            sha.update(&first);
            let digest = super::blob::sha256_rest(sha, &mut reader, READ_AHEAD).await?;
            return Ok(Some((digest, current)));
        }
        drop(reader);
        let Some(mut plain) = self.open(key).await? else {
            return Ok(None);
        };
        let mut w = self.create(key).await?;
        let copied = async {
            if let Some(first) = plain.first.take() {
                w.write(&first).await?;
            }
            while let Some(chunk) = plain.next_chunk().await? {
                w.write(&chunk).await?;
            }
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = copied {
            w.abort().await;
            return Err(e);
        }
        let key_id = w.key_id();
        Ok(Some((w.finish().await?, key_id)))
    }

    /// Reads a whole blob and judges it: present, its sealed bytes hashing
    /// to `sealed_sha256`, and every chunk opening under a key of the ring.
    /// Returns the sealed size when it is sound.
    pub async fn verify(&self, key: &str, sealed_sha256: &str) -> anyhow::Result<BlobVerdict> {
        let Some(reader) = self.store.open(key).await? else {
            return Ok(BlobVerdict::Missing);
        };
        let hashed = HashingReader {
            inner: reader,
            sha: Sha256::new(),
            len: 0,
        };
        let state = std::sync::Arc::new(std::sync::Mutex::new(None));
        let reader: BlobReader = Box::new(ReportOnDrop {
            inner: Some(hashed),
            out: state.clone(),
        });
        let opened = self
            .open_stream(key, reader, BytesMut::new(), false, READ_AHEAD)
            .await;
        let authentic = match opened {
            Ok(mut stream) => loop {
                match stream.next_chunk().await {
                    Ok(Some(_)) => {}
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            },
            Err(e) => Err(e),
        };
        // The stream (and with it the reader) is dropped here: read the digest.
        let (sha, len) = state
            .lock()
            .expect("verify state")
            .take()
            .unwrap_or_default();
        if let Err(e) = authentic {
            return Ok(BlobVerdict::Corrupt(format!("does not decrypt: {e:#}")));
        }
        if sha != sealed_sha256 {
            return Ok(BlobVerdict::Corrupt(
                "the sealed bytes differ from their recorded digest".into(),
            ));
        }
        Ok(BlobVerdict::Sound { sealed_bytes: len })
    }
}

/// What [`SealedBlobs::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobVerdict {
    Sound { sealed_bytes: u64 },
    Missing,
    Corrupt(String),
}

/// Hashes what passes through, for [`SealedBlobs::verify`].
struct HashingReader {
    inner: BlobReader,
    sha: Sha256,
    len: u64,
}

/// Hands the digest of everything read to `out` when dropped.
struct ReportOnDrop {
    inner: Option<HashingReader>,
    out: std::sync::Arc<std::sync::Mutex<Option<(String, u64)>>>,
}

impl Drop for ReportOnDrop {
    fn drop(&mut self) {
        if let Some(h) = self.inner.take() {
            let digest = hex::encode(h.sha.finalize());
            *self.out.lock().expect("verify state") = Some((digest, h.len));
        }
    }
}

impl tokio::io::AsyncRead for ReportOnDrop {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let h = self.inner.as_mut().expect("reader present until dropped");
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut h.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &poll {
            let new = &buf.filled()[before..];
            h.sha.update(new);
            h.len += new.len() as u64;
        }
        poll
    }
}

pub struct SealedWriter {
    /// Digest of the sealed bytes, for integrity checks that need no key
    /// and reveal nothing about the photo.
    sha: Sha256,
    inner: Box<dyn BlobWriter>,
    seal: SealWriter,
    out: Vec<u8>,
}

impl SealedWriter {
    pub async fn write(&mut self, plain: &[u8]) -> anyhow::Result<()> {
        // Piece by piece, so the ciphertext buffer stays one chunk long
        // however large the incoming piece is.
        for piece in plain.chunks(CHUNK) {
            self.seal.update(piece, &mut self.out)?;
            if !self.out.is_empty() {
                self.sha.update(&self.out);
                self.inner.write(&self.out).await?;
                self.out.clear();
            }
        }
        Ok(())
    }

    /// The key the blob is sealed under. Metadata must record this one,
    /// not the ring's current key at commit time: a rotation taken up
    /// mid-upload would otherwise mark an old-key blob as current, and the
    /// old key's retirement would make it unreadable.
    pub fn key_id(&self) -> u32 {
        self.seal.key_id()
    }

    /// Seals the rest, makes the blob durable and visible, and returns the
    /// hex SHA-256 of the sealed bytes.
    pub async fn finish(mut self) -> anyhow::Result<String> {
        if let Err(e) = self.seal.finish(&mut self.out) {
            self.inner.abort().await;
            return Err(e);
        }
        self.sha.update(&self.out);
        if let Err(e) = self.inner.write(&self.out).await {
            self.inner.abort().await;
            return Err(e);
        }
        self.inner.finish().await?;
        Ok(hex::encode(self.sha.finalize()))
    }

    pub async fn abort(self) {
        self.inner.abort().await
    }
}

/// The decrypted bytes of a blob, chunk by chunk.
pub struct PlainStream {
    reader: BlobReader,
    dec: SealReader,
    buf: BytesMut,
    /// Bytes read from the store at once.
    ahead: usize,
    eof: bool,
    first: Option<Bytes>,
}

impl PlainStream {
    async fn next_chunk(&mut self) -> anyhow::Result<Option<Bytes>> {
        if self.dec.is_finished() {
            return Ok(None);
        }
        // Read until more than one sealed chunk is buffered (then the first
        // is not the last) or the blob ends (then what is left is the last).
        while !self.eof && self.buf.len() <= CHUNK + TAG {
            // Read ahead several chunks at a time: each read of a file is a
            // hop to the blocking pool, which costs more than the memory.
            self.buf.reserve(self.ahead);
            if self.reader.read_buf(&mut self.buf).await? == 0 {
                self.eof = true;
            }
        }
        let last = self.buf.len() <= CHUNK + TAG;
        let take = self.buf.len().min(CHUNK + TAG);
        let mut chunk = self.buf.split_to(take);
        self.dec.open_chunk(&mut chunk, last)?;
        Ok(Some(chunk.freeze()))
    }

    pub fn into_stream(self) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        futures_util::stream::try_unfold(self, |mut s| async move {
            if let Some(first) = s.first.take() {
                return Ok(Some((first, s)));
            }
            match s.next_chunk().await {
                Ok(Some(b)) => Ok(Some((b, s))),
                Ok(None) => Ok(None),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "blob failed while streaming");
                    Err(std::io::Error::other(e))
                }
            }
        })
    }

    /// Reads the whole blob into one buffer (`size_hint` bytes reserved).
    pub async fn read_all(mut self, size_hint: usize) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(size_hint);
        if let Some(first) = self.first.take() {
            out.extend_from_slice(&first);
        }
        while let Some(chunk) = self.next_chunk().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;
    use crate::store::blob::LocalBlobStore;

    async fn setup() -> (tempfile::TempDir, SealedBlobs) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalBlobStore::open(dir.path()).unwrap());
        let keys = KeyRing::new(Key::from_bytes(&[3u8; 32]).unwrap());
        (dir, SealedBlobs::new(store, keys))
    }

    #[tokio::test]
    async fn roundtrip_through_disk() {
        let (dir, blobs) = setup().await;
        let data: Vec<u8> = (0..(3 * CHUNK + 17)).map(|i| (i % 253) as u8).collect();
        let mut w = blobs.create("att_roundtrip").await.unwrap();
        for piece in data.chunks(10_000) {
            w.write(piece).await.unwrap();
        }
        w.finish().await.unwrap();
        let got = blobs.open("att_roundtrip").await.unwrap().unwrap();
        assert_eq!(got.read_all(0).await.unwrap(), data);
        // Nothing on disk holds the plaintext.
        let raw = std::fs::read(dir.path().join("blobs/ip/att_roundtrip")).unwrap();
        assert!(!raw.windows(64).any(|w| w == &data[1000..1064]));
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 253) as u8).collect()
    }

    #[tokio::test]
    async fn sized_opens_read_every_length_whole_whatever_the_hint() {
        let (_dir, blobs) = setup().await;
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 4 * CHUNK, 5 * CHUNK + 3] {
            let key = format!("att_sized{len}");
            let mut w = blobs.create(&key).await.unwrap();
            w.write(&data(len)).await.unwrap();
            w.finish().await.unwrap();
            // The hint is the recorded size; a wrong one costs reads, not bytes.
            for hint in [len as u64, 0, 3 * len as u64 + 1] {
                let got = blobs.open_sized(&key, hint).await.unwrap().unwrap();
                assert_eq!(got.read_all(0).await.unwrap(), data(len), "{len} {hint}");
            }
        }
    }

    #[tokio::test]
    async fn v1_blobs_open_and_reseal_into_v2() {
        let (dir, blobs) = setup().await;
        let key = blobs.keys.current();
        let plain = data(2 * CHUNK + 9);
        let v1 = crate::crypto::stream::tests::seal_v1(&key, b"att_old", &plain);
        let mut w = blobs.store().create("att_old").await.unwrap();
        w.write(&v1).await.unwrap();
        w.finish().await.unwrap();
        let got = blobs.open("att_old").await.unwrap().unwrap();
        assert_eq!(got.read_all(0).await.unwrap(), plain);
        // Under the current key, but of the old format: rewritten.
        let (digest, key_id) = blobs.reseal("att_old").await.unwrap().unwrap();
        assert_eq!(key_id, key.id());
        let raw = std::fs::read(dir.path().join("blobs/ld/att_old")).unwrap();
        assert!(raw.starts_with(b"FHB\x02"));
        assert_eq!(digest, hex::encode(Sha256::digest(&raw)));
        let got = blobs.open("att_old").await.unwrap().unwrap();
        assert_eq!(got.read_all(0).await.unwrap(), plain);
        // Once current, a re-seal only digests it.
        assert_eq!(blobs.reseal("att_old").await.unwrap().unwrap().0, digest);
        assert_eq!(
            std::fs::read(dir.path().join("blobs/ld/att_old")).unwrap(),
            raw
        );
    }

    #[tokio::test]
    async fn corrupt_blob_is_an_error_not_data() {
        let (dir, blobs) = setup().await;
        let mut w = blobs.create("att_corrupt").await.unwrap();
        w.write(b"some photo bytes").await.unwrap();
        w.finish().await.unwrap();
        let p = dir.path().join("blobs/pt/att_corrupt");
        let mut raw = std::fs::read(&p).unwrap();
        let n = raw.len();
        raw[n - 1] ^= 0x80;
        std::fs::write(&p, raw).unwrap();
        assert!(blobs.open("att_corrupt").await.is_err());
        assert!(blobs.open("att_missing").await.unwrap().is_none());
    }
}
