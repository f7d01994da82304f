//! The one error of the core: what went wrong, in the core's terms. It
//! carries no HTTP status and no platform code; each wire surface maps it
//! to its own (`api::feishu::envelope` for the Feishu surfaces, `api::wecom`
//! for the WeCom device protocol). Internal details go to the log only.

use crate::quiet::Quiet;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error in a chain, as the classifiers below look at it.
type ErrorSource = dyn std::error::Error + 'static;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- authentication & authorisation (same code on every surface) ----
    /// No `Authorization: Bearer …` header (the platform treats a missing
    /// `Bearer ` prefix the same way).
    #[error("Missing access token for authorization. Please make a request with token attached.")]
    MissingToken,
    /// A bearer value that starts with neither `t-` nor `u-`.
    #[error("Invalid token: must start with t-/u-")]
    MalformedToken,
    /// An unknown or expired tenant access token.
    #[error("Invalid access token for authorization. Please make a request with token attached.")]
    InvalidTenantToken,
    /// A user access token where the API takes only tenant tokens, or an
    /// unknown/expired user token.
    #[error("Invalid access token for authorization. Please make a request with token attached.")]
    InvalidUserToken,
    /// A user access token past its expiry.
    #[error("token expire")]
    UserTokenExpired,
    /// The app holds none of the scopes the endpoint requires.
    #[error("Access denied. One of the following scopes is required: [{}].", .0.join(", "))]
    ScopeDenied(&'static [&'static str]),
    /// Frequency limit for this app and endpoint.
    #[error("request trigger frequency limit")]
    RateLimited { limit: u32, reset_secs: u64 },
    /// Too many failed attempts at a secret, or too many at once: the
    /// message says which and when to retry.
    #[error("{msg}")]
    Throttled { msg: String, retry_after_secs: u64 },

    /// The admin console: no live session (401), or a change without the
    /// session's CSRF token (403).
    #[error("admin login required")]
    AdminLoginRequired,
    #[error("the request lacks the session's CSRF token")]
    CsrfRejected,
    /// Refused whoever asks (a browser origin on the device protocol).
    #[error("{0}")]
    Forbidden(String),

    // ---- token endpoint (answered with HTTP 200 and a non-zero code) ----
    #[error("{0}")]
    TokenParam(String),
    #[error("wrong app secret")]
    WrongAppSecret,
    #[error("app is disabled")]
    AppDisabled,

    // ---- business errors ----
    /// The client sent something the contract does not allow.
    #[error("{0}")]
    InvalidParam(String),
    /// A referenced user does not exist in the caller's tenant.
    #[error("user does not exist or is out of scope: {0}")]
    UserNotFound(String),
    /// The user is not in the door-access directory (ACS 1490101).
    #[error("user not found")]
    AcsUserNotFound,
    /// No usable face in a door-access photo (ACS 1490108).
    #[error("user face crop fail: {0}")]
    FaceCropFail(String),

    /// Refused on the device protocol with one of its own codes (600004 …).
    #[error("{1}")]
    DeviceRefused(i64, String),

    // ---- routing ----
    #[error("resource not find")]
    RouteNotFound,
    #[error("request method doesn't match")]
    MethodNotAllowed,

    /// The data directory's filesystem is below its free-space floor:
    /// nothing new is stored until space is freed.
    #[error("storage full: {0}")]
    StorageFull(String),

    /// The metadata store does not answer (PostgreSQL stopped, restarting
    /// or cut off): nothing that needs it is done until it is back.
    #[error("service unavailable: {0}")]
    Unavailable(String),

    /// Anything that is not the client's fault. The chain goes to the log;
    /// the client sees only a generic message.
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl Error {
    pub fn param(msg: impl Into<String>) -> Self {
        Error::InvalidParam(msg.into())
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(anyhow::anyhow!(msg.into()))
    }

    /// A write met a full filesystem.
    pub fn disk_full() -> Self {
        Error::StorageFull(DISK_FULL.into())
    }

    /// A call met a metadata store that does not answer.
    pub fn unavailable() -> Self {
        Error::Unavailable(UNAVAILABLE.into())
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        anyhow::Error::new(e).context("metadata store").into()
    }
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        if e.chain().any(is_unstorable_text) {
            return Error::param("a text parameter contains a NUL character");
        }
        // The deployment's passing states: told as such, their cause logged.
        static FULL: Quiet = Quiet::new();
        static LOST: Quiet = Quiet::new();
        if e.chain().any(is_disk_full) {
            log_state(
                &FULL,
                &e,
                "a write met a full filesystem; refusing writes as storage full until space is freed",
            );
            return Error::disk_full();
        }
        if e.chain().any(is_unreachable) {
            log_state(
                &LOST,
                &e,
                "the metadata store does not answer; refusing what needs it until it does",
            );
            return Error::unavailable();
        }
        Error::Internal(e)
    }
}

/// What a client is told when a write meets a full filesystem: the state is
/// the deployment's, not a fault of the request, and it passes once space
/// is freed (no restart).
const DISK_FULL: &str =
    "the disk holding facehub's data is full; writes resume once space is freed";

/// What a client is told while the metadata store does not answer.
const UNAVAILABLE: &str = "the metadata store does not answer; retry shortly";

/// Logs the cause of a deployment's state (a full disk, a lost database)
/// that the client is told only in general terms, at most every 10 s.
fn log_state(quiet: &Quiet, e: &anyhow::Error, what: &str) {
    if quiet.speak(chrono::Utc::now().timestamp(), 10) {
        tracing::warn!(error = %format!("{e:#}"), "{what}");
    }
}

/// A write refused for want of space: ENOSPC or EDQUOT from the kernel,
/// SQLITE_FULL, or PostgreSQL's disk_full (SQLSTATE 53100).
fn is_disk_full(e: &ErrorSource) -> bool {
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return io.kind() == std::io::ErrorKind::StorageFull
            || io.kind() == std::io::ErrorKind::QuotaExceeded;
    }
    match e.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(d)) => matches!(d.code().as_deref(), Some("13" | "53100")),
        Some(sqlx::Error::Io(io)) => matches!(
            io.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        ),
        _ => false,
    }
}

/// The metadata store cannot be reached: no connection within the pool's
/// acquire timeout, the store's watch says it does not answer
/// (`NotConnected`), a connection failing on its socket, or PostgreSQL
/// saying it cannot serve now (class 08, connection exceptions; 57P0x,
/// shut down or starting up). A full disk is told apart before this.
fn is_unreachable(e: &ErrorSource) -> bool {
    match e.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)) => true,
        Some(sqlx::Error::Database(d)) => d.code().is_some_and(|c| cannot_serve_now(&c)),
        _ => false,
    }
}

/// An SQLSTATE with which PostgreSQL says it cannot serve at all now:
/// class 08 (connection exceptions) or 57P0x (shutting down, starting up).
pub fn cannot_serve_now(sqlstate: &str) -> bool {
    sqlstate.starts_with("08") || sqlstate.starts_with("57P0")
}

/// PostgreSQL refuses text holding U+0000 (SQLSTATE 22021), which only a
/// client's parameter can bring; SQLite stores it and finds nothing.
fn is_unstorable_text(e: &ErrorSource) -> bool {
    matches!(
        e.downcast_ref::<sqlx::Error>(),
        Some(sqlx::Error::Database(d)) if d.code().as_deref() == Some("22021")
    )
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        anyhow::Error::new(e).context("blob store").into()
    }
}

impl Error {
    /// A short, surface-independent name of the error (for the audit log).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::MissingToken
            | Error::MalformedToken
            | Error::InvalidTenantToken
            | Error::InvalidUserToken
            | Error::UserTokenExpired
            | Error::WrongAppSecret
            | Error::AppDisabled
            | Error::AdminLoginRequired
            | Error::CsrfRejected
            | Error::Forbidden(_) => "unauthenticated",
            Error::ScopeDenied(_) => "scope_denied",
            Error::RateLimited { .. } | Error::Throttled { .. } => "rate_limited",
            Error::TokenParam(_) | Error::InvalidParam(_) | Error::DeviceRefused(..) => {
                "invalid_param"
            }
            Error::UserNotFound(_) | Error::AcsUserNotFound => "user_not_found",
            Error::FaceCropFail(_) => "face_crop_fail",
            Error::RouteNotFound | Error::MethodNotAllowed => "no_route",
            Error::StorageFull(_) => "storage_full",
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_filesystem_is_storage_full_not_a_fault() {
        let enospc = std::io::Error::from_raw_os_error(28);
        assert!(matches!(Error::from(enospc), Error::StorageFull(_)));
        let edquot = std::io::Error::from_raw_os_error(122);
        assert!(matches!(Error::from(edquot), Error::StorageFull(_)));
        // Deep in a chain, as the blob store and the store report it.
        let chained = anyhow::Error::new(std::io::Error::from_raw_os_error(28))
            .context("writing a blob")
            .context("upload");
        assert!(matches!(Error::from(chained), Error::StorageFull(_)));
        let eio = std::io::Error::from_raw_os_error(5);
        assert!(matches!(Error::from(eio), Error::Internal(_)));
    }

    #[test]
    fn a_database_that_does_not_answer_is_unavailable_not_a_fault() {
        let lost = [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::Io(std::io::ErrorKind::NotConnected.into()),
            sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()),
        ];
        for e in lost {
            let shown = format!("{e:?}");
            assert!(matches!(Error::from(e), Error::Unavailable(_)), "{shown}");
        }
        // A full disk stays a full disk on the database's socket too.
        let full = sqlx::Error::Io(std::io::ErrorKind::StorageFull.into());
        assert!(matches!(Error::from(full), Error::StorageFull(_)));
        // A query's own fault stays internal.
        let bad = sqlx::Error::Protocol("unexpected message".into());
        assert!(matches!(Error::from(bad), Error::Internal(_)));
        // So does a blob store's I/O error (not the database's socket).
        let eio = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(matches!(Error::from(eio), Error::Internal(_)));
    }
}
