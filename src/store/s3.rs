//! Blob storage in any S3-compatible object store (Garage, MinIO, Ceph
//! RGW, AWS S3), through the `object_store` crate.
//!
//! Selected with `blobs = "s3://bucket[/prefix]?endpoint=…&region=…"`;
//! credentials come from the usual `AWS_ACCESS_KEY_ID` /
//! `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`) variables. Requests use
//! path-style addressing, so a custom endpoint needs no wildcard DNS.
//!
//! Durability: a blob is visible only once its single PUT (small blobs) or
//! its CompleteMultipartUpload (large ones) has succeeded, which an object
//! store acknowledges only once the object is stored (Garage: on a write
//! quorum, fsynced when `data_fsync` is on). An interrupted multipart
//! upload is invisible to readers and listings; the bucket's lifecycle rule
//! (`AbortIncompleteMultipartUpload`) reclaims its parts.
//!
//! Several nodes may write to one bucket, so an unreferenced object is an
//! orphan only once it is older than any upload can take ([`BlobStore::shared`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, RetryConfig};
use tokio::io::AsyncWriteExt;

use super::blob::{
    BlobInfo, BlobReader, BlobStore, BlobWriter, Part, check_key, create_part, part_files,
    sweep_parts,
};

/// Largest blob sent in one PUT; larger ones are multipart uploads in
/// parts of this size (S3's minimum for all but the last part is 5 MiB).
const PART: usize = 5 * 1024 * 1024;
/// Bytes per GET of a download.
const RANGE: u64 = 1024 * 1024;
/// Parts of one blob in flight at once.
const PART_CONCURRENCY: usize = 2;

/// Where blobs go: parsed from the `blobs` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Key prefix inside the bucket, without slashes at either end.
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

impl S3Location {
    /// `s3://bucket[/prefix]?endpoint=http://host:port&region=name`. Every
    /// query parameter is optional; an unknown one is refused rather than
    /// ignored, so a typo does not silently send photos elsewhere.
    pub fn parse(url: &str) -> anyhow::Result<S3Location> {
        // Messages show the URL without anything that may be a credential.
        let shown = redact(url);
        let u = url::Url::parse(url).with_context(|| format!("blobs: {shown:?} is not a URL"))?;
        if u.scheme() != "s3" {
            bail!("blobs: {shown:?}: only s3:// URLs are supported");
        }
        if url.contains('@') || !u.username().is_empty() || u.password().is_some() {
            bail!(
                "blobs: put credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, not in \
                 the URL (it is logged)"
            );
        }
        let bucket = u.host_str().unwrap_or_default().to_string();
        if bucket.is_empty() {
            bail!("blobs: {shown:?} names no bucket (s3://bucket/…)");
        }
        let prefix = u.path().trim_matches('/').to_string();
        let mut loc = S3Location {
            bucket,
            prefix,
            endpoint: None,
            region: None,
        };
        for (k, v) in u.query_pairs() {
            match &*k {
                "endpoint" => {
                    let ev = redact(&v);
                    let e = url::Url::parse(&v)
                        .with_context(|| format!("blobs: endpoint {ev:?} is not a URL"))?;
                    if !matches!(e.scheme(), "http" | "https") {
                        bail!("blobs: endpoint {ev:?} must be http:// or https://");
                    }
                    if v.contains('@') {
                        bail!("blobs: the endpoint carries no credentials (AWS_* variables do)");
                    }
                    loc.endpoint = Some(v.trim_end_matches('/').to_string());
                }
                "region" => loc.region = Some(v.into_owned()),
                other => bail!("blobs: unknown parameter {other:?} (endpoint, region)"),
            }
        }
        Ok(loc)
    }

    /// A client for the bucket as facehub configures it (also the load
    /// generator's reference for plain PUTs).
    pub fn client(&self) -> anyhow::Result<AmazonS3> {
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&self.bucket)
            .with_virtual_hosted_style_request(false)
            // A failing store must surface as an error quickly, not after
            // minutes of retries with the client's request still open.
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_secs(1),
                    base: 2.0,
                },
                max_retries: 3,
                retry_timeout: Duration::from_secs(10),
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(3))
                    .with_timeout(Duration::from_secs(60)),
            );
        if let Some(e) = &self.endpoint {
            b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
        }
        if let Some(r) = &self.region {
            b = b.with_region(r);
        }
        b.build().context("configuring the S3 blob store")
    }
}

/// `url` with whatever lies between `://` and the last `@` (a user name
/// and password, maybe holding `/`, which URL parsers then misread) blanked.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

/// The canonical URL: what the data directory records as its store.
impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}", self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(e) = &self.endpoint {
            q.append_pair("endpoint", e);
        }
        if let Some(r) = &self.region {
            q.append_pair("region", r);
        }
        let q = q.finish();
        if !q.is_empty() {
            write!(f, "?{q}")?;
        }
        Ok(())
    }
}

pub struct S3BlobStore {
    store: Arc<AmazonS3>,
    /// `<prefix>/<store id>`: the data of one facehub deployment.
    root: Path,
    /// Where uploads are spooled until their last byte is in: a client
    /// trickling its body holds a file, not memory.
    spool: std::path::PathBuf,
    /// MiB of blob data in flight to the store at once, across uploads.
    transfers: Arc<tokio::sync::Semaphore>,
}

/// MiB all PUTs and multipart parts in flight may hold together.
const TRANSFER_BUDGET_MIB: u32 = 128;

impl S3BlobStore {
    /// Connects (lazily: the first request does) to the bucket. `namespace`
    /// separates deployments sharing a bucket and prefix: it is the
    /// metadata store's own id, so every node of one deployment agrees on
    /// it and a second deployment never sees the first one's blobs.
    pub fn open(
        loc: &S3Location,
        namespace: &str,
        spool: &std::path::Path,
    ) -> anyhow::Result<S3BlobStore> {
        std::fs::create_dir_all(spool)
            .with_context(|| format!("creating the upload spool {}", spool.display()))?;
        let store = loc.client()?;
        let root = if loc.prefix.is_empty() {
            Path::from(namespace)
        } else {
            Path::from(format!("{}/{namespace}", loc.prefix))
        };
        Ok(S3BlobStore {
            store: Arc::new(store),
            root,
            spool: spool.to_path_buf(),
            transfers: Arc::new(tokio::sync::Semaphore::new(TRANSFER_BUDGET_MIB as usize)),
        })
    }

    fn path(&self, key: &str) -> anyhow::Result<Path> {
        check_key(key)?;
        Ok(self.root.child(key))
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn create(&self, key: &str) -> anyhow::Result<Box<dyn BlobWriter>> {
        let path = self.path(key)?;
        Ok(Box::new(S3Writer {
            spool: create_part(&self.spool, key).await?,
            len: 0,
            store: self.store.clone(),
            path,
            transfers: self.transfers.clone(),
        }))
    }

    /// A series of ranged GETs of [`RANGE`] bytes, each bound to the
    /// first one's ETag: the client's request timeout then bounds one
    /// range, not a whole download to a slow client, and an object
    /// replaced meanwhile (re-sealed by a key rotation) fails the read
    /// instead of splicing two versions.
    async fn open(&self, key: &str) -> anyhow::Result<Option<BlobReader>> {
        let path = self.path(key)?;
        let first = GetOptions {
            range: Some(GetRange::Bounded(0..RANGE)),
            ..GetOptions::default()
        };
        let first = match self.store.get_opts(&path, first).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e).context("reading a blob from the S3 store"),
        };
        let size = first.meta.size;
        let etag = first.meta.e_tag.clone();
        let store = self.store.clone();
        let rest = futures_util::stream::iter((RANGE..size).step_by(RANGE as usize))
            .then(move |start| {
                let (store, path) = (store.clone(), path.clone());
                let opts = GetOptions {
                    range: Some(GetRange::Bounded(start..(start + RANGE).min(size))),
                    if_match: etag.clone(),
                    ..GetOptions::default()
                };
                async move { store.get_opts(&path, opts).await.map(|r| r.into_stream()) }
            })
            .try_flatten();
        let stream = first
            .into_stream()
            .chain(rest)
            .map_err(std::io::Error::other)
            .boxed();
        Ok(Some(Box::new(tokio_util::io::StreamReader::new(stream))))
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        let path = self.path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e).context("deleting a blob from the S3 store"),
        }
    }

    async fn list(&self) -> anyhow::Result<Vec<BlobInfo>> {
        let mut out = Vec::new();
        let mut listing = self.store.list(Some(&self.root));
        while let Some(meta) = listing.next().await {
            let meta = meta.context("listing the S3 blob store")?;
            let Some(key) = meta.location.filename() else {
                continue;
            };
            // Only what facehub itself writes (not the probe, not strays).
            if check_key(key).is_err() {
                continue;
            }
            out.push(BlobInfo {
                key: key.to_string(),
                modified: SystemTime::from(meta.last_modified),
            });
        }
        Ok(out)
    }

    fn shared(&self) -> bool {
        true
    }

    /// A HEAD of a key that need not exist: proves the endpoint answers
    /// and the credentials are accepted (a refused one is 403, not 404).
    /// Bounded well below the requests' own timeout: a readiness probe
    /// must answer while a stalled store would hold a request for a minute.
    async fn ping(&self) -> anyhow::Result<()> {
        let probe = self.root.child(".probe");
        let head = self.store.head(&probe);
        match tokio::time::timeout(Duration::from_secs(5), head).await {
            Ok(Ok(_) | Err(object_store::Error::NotFound { .. })) => Ok(()),
            Ok(Err(e)) => Err(e).context("the S3 blob store does not answer"),
            Err(_) => bail!("the S3 blob store did not answer a HEAD within 5 s"),
        }
    }

    async fn probe(&self) -> anyhow::Result<()> {
        let p = self.root.child(".probe");
        self.store
            .put(&p, bytes::Bytes::from_static(b"facehub").into())
            .await
            .context("writing a probe object to the S3 blob store")?;
        self.store
            .get(&p)
            .await
            .context("reading the probe object back from the S3 blob store")?;
        self.store
            .delete(&p)
            .await
            .context("deleting the probe object from the S3 blob store")?;
        Ok(())
    }

    async fn epoch(&self) -> anyhow::Result<u64> {
        match self.store.get(&self.root.child(".epoch")).await {
            Ok(r) => {
                let b = r.bytes().await.context("reading the namespace's epoch")?;
                std::str::from_utf8(&b)
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    .context("the namespace's .epoch object is not a number")
            }
            Err(object_store::Error::NotFound { .. }) => Ok(0),
            Err(e) => Err(e).context("reading the namespace's epoch"),
        }
    }

    async fn set_epoch(&self, epoch: u64) -> anyhow::Result<()> {
        self.store
            .put(
                &self.root.child(".epoch"),
                bytes::Bytes::from(epoch.to_string()).into(),
            )
            .await
            .context("writing the namespace's epoch")?;
        Ok(())
    }

    /// Spool files of uploads a crash interrupted. (A multipart upload a
    /// crash cut off is invisible; the bucket's lifecycle rule reclaims
    /// its parts.)
    async fn sweep_incomplete(&self) -> anyhow::Result<usize> {
        sweep_parts(&self.spool)
    }

    async fn incomplete(&self) -> anyhow::Result<usize> {
        Ok(part_files(&self.spool)?.len())
    }
}

/// An upload: spooled to a local file as it arrives (sealed bytes only),
/// sent to the store by `finish` in one PUT or, above [`PART`], a
/// multipart upload read from the file part by part.
struct S3Writer {
    spool: Part,
    len: u64,
    store: Arc<AmazonS3>,
    path: Path,
    transfers: Arc<tokio::sync::Semaphore>,
}

impl S3Writer {
    /// Sends the spooled bytes; the object exists only once this returns Ok.
    async fn send(&mut self, mut file: tokio::fs::File) -> anyhow::Result<()> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        file.seek(std::io::SeekFrom::Start(0)).await?;
        let len = self.len as usize;
        let mib = |bytes: usize| u32::try_from(bytes.div_ceil(1 << 20).max(1)).unwrap_or(u32::MAX);
        if len <= PART {
            let _budget = self.transfers.acquire_many(mib(len)).await?;
            let mut body = Vec::with_capacity(len);
            file.read_to_end(&mut body).await?;
            anyhow::ensure!(body.len() == len, "the upload spool changed size");
            self.store
                .put(&self.path, bytes::Bytes::from(body).into())
                .await?;
            return Ok(());
        }
        // The part being filled plus the parts in flight.
        let _budget = self
            .transfers
            .acquire_many(mib(PART * (PART_CONCURRENCY + 1)))
            .await?;
        let mut upload = self.store.put_multipart(&self.path).await?;
        let sent = async {
            let mut in_flight = futures_util::stream::FuturesUnordered::new();
            loop {
                // Where the fault suite loses bucket nodes mid-upload.
                #[cfg(debug_assertions)]
                fail::fail_point!("blob.part");
                // One part from the spool: PART bytes, or what is left.
                let mut part = Vec::with_capacity(PART);
                (&mut file).take(PART as u64).read_to_end(&mut part).await?;
                if part.is_empty() {
                    break;
                }
                in_flight.push(upload.put_part(bytes::Bytes::from(part).into()));
                if in_flight.len() >= PART_CONCURRENCY {
                    in_flight.next().await.expect("a part in flight")?;
                }
            }
            while let Some(done) = in_flight.next().await {
                done?;
            }
            upload.complete().await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = sent {
            // Every failure, the last part's and the completion's too,
            // aborts: no parts are left for a lifecycle rule to reclaim.
            if let Err(a) = upload.abort().await {
                tracing::warn!(error = %a, "aborting an S3 multipart upload");
            }
            return Err(e);
        }
        Ok(())
    }
}

#[async_trait]
impl BlobWriter for S3Writer {
    async fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        crate::faults::inject_eio!("blob.write");
        let f = self.spool.file()?;
        f.write_all(bytes).await.context("spooling an upload")?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> anyhow::Result<()> {
        crate::faults::inject_eio!("blob.finish");
        let mut f = self.spool.take()?;
        let result = async {
            f.flush().await.context("spooling an upload")?;
            // The PUT (or CompleteMultipartUpload) answered: the object is
            // stored. Only then is the upload acknowledged.
            self.send(f.into_inner())
                .await
                .context("storing a blob in the S3 store")
        }
        .await;
        self.spool.remove(SPOOL_LEFT).await;
        result
    }

    async fn abort(mut self: Box<Self>) {
        // Nothing was sent to the store; the spool file goes. (Dropped
        // unfinished, the client gone mid-body, the part goes by itself.)
        self.spool.remove(SPOOL_LEFT).await;
    }
}

const SPOOL_LEFT: &str = "removing an upload's spool file";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_strictly() {
        let l = S3Location::parse(
            "s3://photos/facehub/prod?endpoint=http://127.0.0.1:3900/&region=garage",
        )
        .unwrap();
        assert_eq!(
            l,
            S3Location {
                bucket: "photos".into(),
                prefix: "facehub/prod".into(),
                endpoint: Some("http://127.0.0.1:3900".into()),
                region: Some("garage".into()),
            }
        );
        // The canonical form reads back as the same location.
        assert_eq!(S3Location::parse(&l.to_string()).unwrap(), l);
        assert_eq!(
            l.to_string(),
            "s3://photos/facehub/prod?endpoint=http%3A%2F%2F127.0.0.1%3A3900&region=garage"
        );
        let l = S3Location::parse("s3://b").unwrap();
        assert_eq!(l.to_string(), "s3://b");
        assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("b", ""));
        assert_eq!(l.endpoint, None);
        for bad in [
            "http://bucket",
            "s3:///prefix",
            "s3://bucket?endpont=http://x",
            "s3://bucket?endpoint=ftp://x",
            "s3://bucket?endpoint=nonsense",
            "s3://key:secret@bucket",
            "s3://bucket?endpoint=http://key:secret@host:3900",
            "not a url",
        ] {
            assert!(S3Location::parse(bad).is_err(), "{bad} was accepted");
        }
        // An AWS secret may hold '/', which no URL parser reads as a
        // password: the message must still not show it.
        for bad in [
            "s3://AKIAEXAMPLE:se/cr3tK3y@bucket",
            "s3://AKIAEXAMPLE:se/cr3tK3y@bucket?endpoint=http://h",
            "s3://bucket?endpoint=http://AKIAEXAMPLE:se/cr3tK3y@h",
            "s3://b?endpoint=ftp://AKIAEXAMPLE:se/cr3tK3y@h",
        ] {
            let msg = format!("{:#}", S3Location::parse(bad).unwrap_err());
            assert!(!msg.contains("cr3tK3y"), "{msg}");
        }
    }
}
