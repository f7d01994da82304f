//! The core: tenants and apps, tokens, people, stored photos. Knows nothing
//! of HTTP; the API modules translate wire requests into calls on [`Core`].

pub mod access_records;
pub mod access_rules;
pub mod acs;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod decoding;
pub mod deployment;
pub mod devices;
pub mod erasure;
pub mod files;
pub mod flows;
pub mod group_commit;
pub mod guard;
pub mod integrity;
pub mod keys;
pub mod lingo;
pub mod migrate;
pub mod people;
pub mod photos;
pub mod recovery;
pub mod space;
pub mod visitors;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

// The model's values, as the core's callers name them.
pub use crate::model::{
    App, AttendanceSetting, FileId, FileRecord, Person, PersonDraft, PhotoName, Scope, Tenant,
    TokenKind, TokenRecord, UserId, UserType, ids,
};

use crate::config::Config;
use crate::crypto::KeyRing;
use crate::store::sealed::SealedBlobs;
use crate::store::{Db, Notice};

/// Wall clock with an adjustable offset, so tests can let tokens expire
/// without sleeping.
#[derive(Debug, Default)]
pub struct Clock {
    offset: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.offset.load(Ordering::Relaxed)
    }

    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}

/// Everything the core needs, shared by the server and the CLI.
///
/// Every field is the core's alone: the API, the CLI and the server ask
/// the core, in its terms, so what the store holds and how, and which
/// state the core keeps, can change behind it (a test in `architecture.rs`
/// keeps it so).
pub struct Core {
    config: Config,
    db: Db,
    blobs: SealedBlobs,
    keys: KeyRing,
    clock: Arc<Clock>,
    /// Secret from which union/open ids are derived (stored in the database
    /// so that every node derives the same ids).
    id_secret: Vec<u8>,
    /// Recently verified tokens (see [`auth::TokenCache`]).
    token_cache: auth::TokenCache,
    /// Full image decodes allowed at once: one per CPU (they are CPU-bound).
    decode_slots: tokio::sync::Semaphore,
    /// Memory for decodes, in MiB: each decode holds its file and pixels.
    decode_memory: tokio::sync::Semaphore,
    /// Devices connected to this node.
    hub: devices::hub::Hub,
    metrics: crate::metrics::Metrics,
    audit: audit::AuditLog,
    /// Terminals' punches, written with group commit.
    punch_writer: group_commit::GroupCommit<crate::store::flows::PunchFrame, Vec<String>>,
    /// Failed attempts at secrets and the password-check pool.
    guard: guard::Guard,
    /// When a full disk was last logged (unix seconds).
    space_warned: crate::quiet::Quiet,
}

impl Core {
    pub async fn new(
        config: Config,
        db: Db,
        blobs: SealedBlobs,
        keys: KeyRing,
    ) -> anyhow::Result<Core> {
        let id_secret = db
            .meta_get_or_init("id_secret", || hex::encode(ids::random_bytes::<32>()))
            .await?;
        // From when on every stored biometric write commits with its audit
        // record (`facehub check` holds what is older to nothing): this
        // store's creation, or its first start since that became so.
        db.meta_get_or_init("audit_complete_since", || {
            chrono::Utc::now().timestamp().to_string()
        })
        .await?;
        let audit = audit::AuditLog::start(db.clone());
        let punch_writer = devices::checkin::punch_writer(db.clone());
        Ok(Core {
            db,
            blobs,
            keys,
            clock: Arc::new(Clock::default()),
            id_secret: hex::decode(id_secret)?,
            token_cache: auth::TokenCache::new(),
            decode_slots: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            decode_memory: tokio::sync::Semaphore::new(
                usize::try_from(config.limits.decode_memory_mib.max(1)).unwrap_or(usize::MAX >> 4),
            ),
            hub: devices::hub::Hub::default(),
            metrics: crate::metrics::Metrics::default(),
            audit,
            punch_writer,
            guard: guard::Guard::new(&config.security),
            space_warned: crate::quiet::Quiet::new(),
            config,
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Moves the core's clock on, so tests let tokens expire without
    /// sleeping.
    #[doc(hidden)]
    pub fn advance_clock(&self, secs: i64) {
        self.clock.advance(secs);
    }

    /// The configuration the core was opened with: the surfaces read their
    /// limits and settings from it.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The metrics registry, which the surfaces count into too.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// This node's device connections, which a device protocol's connection
    /// joins, logs in to and leaves.
    pub fn hub(&self) -> &devices::hub::Hub {
        &self.hub
    }

    /// Whether terminal `sn` is connected to this node.
    pub fn is_online(&self, sn: &str) -> bool {
        self.hub.is_online(sn)
    }

    /// How many terminals are connected to this node.
    pub fn devices_online(&self) -> usize {
        self.hub.online()
    }

    /// Closes this node's device connections (at shutdown), with the
    /// address-book version each had reached and its connection number,
    /// for `record_sync_position`.
    pub fn close_device_connections(&self) -> Vec<(String, crate::model::Seen, u64)> {
        self.hub.close_all()
    }

    /// Listens, over a shared store, to what every node announces, on
    /// the node's one LISTEN connection: device changes call `wake`, token
    /// revocations empty the token cache, and so does each (re)connection,
    /// since notices sent while it was down are lost. Runs until the
    /// returned task is aborted; `None` on SQLite.
    pub fn hear_other_nodes(
        &self,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let tokens = self.token_cache.clone();
        self.db.on_notices(move |notice| match notice {
            Notice::DevicesChanged => wake(),
            Notice::TokensRevoked => tokens.invalidate_all(),
            Notice::Listening => {
                tokens.invalidate_all();
                wake();
            }
        })
    }

    /// Commits a one-row write, as every upload must (the readiness
    /// probe): fails while the metadata store cannot commit.
    pub async fn probe_commit(&self, now_ms: i64) -> anyhow::Result<()> {
        self.db.probe_commit(now_ms).await
    }

    /// Asks the blob store whether it answers (the readiness probe).
    pub async fn probe_blob_store(&self) -> anyhow::Result<()> {
        self.blobs.store().ping().await
    }

    /// Address-book versions bound terminals have not been sent, summed.
    pub async fn sync_backlog(&self) -> anyhow::Result<i64> {
        self.db.sync_backlog().await
    }

    /// The store under the core, for integration tests and the fuzz
    /// harness that set up or inspect what no API shows (a crash's
    /// leftovers, a row deleted behind the core's back). Not for `src/`:
    /// a test in `architecture.rs` fails on any use there.
    #[doc(hidden)]
    pub fn store_for_tests(&self) -> StoreForTests<'_> {
        StoreForTests {
            db: &self.db,
            blobs: &self.blobs,
        }
    }

    /// How old an unreferenced blob must be to count as an orphan: in a
    /// store other nodes write to, a younger one may be an upload about to
    /// commit. The local store has no other writer.
    pub fn orphan_grace(&self) -> std::time::Duration {
        if self.blobs.store().shared() {
            std::time::Duration::from_secs(self.config.orphan_grace_secs)
        } else {
            std::time::Duration::ZERO
        }
    }
}

/// See [`Core::store_for_tests`].
#[doc(hidden)]
pub struct StoreForTests<'a> {
    pub db: &'a Db,
    pub blobs: &'a SealedBlobs,
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A core on a fresh temporary data directory.
    pub async fn core() -> (tempfile::TempDir, Core) {
        core_with(|_| {}).await
    }

    /// The same, with the configuration adjusted first.
    pub async fn core_with(tweak: impl FnOnce(&mut Config)) -> (tempfile::TempDir, Core) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        tweak(&mut config);
        config.blobs = Some("local".into());
        let db = Db::open(config.database.as_deref(), &config.database_path())
            .await
            .unwrap();
        let keys = KeyRing::load_or_create(&config.key_file()).unwrap();
        let store = crate::store::blob::LocalBlobStore::open(&config.data_dir).unwrap();
        let blobs = SealedBlobs::new(Arc::new(store), keys.clone());
        let core = Core::new(config, db, blobs, keys).await.unwrap();
        (dir, core)
    }
}
