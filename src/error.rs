//! The one error type of facehub and how it becomes the platform's envelope.
//!
//! Handlers and the core return [`Error`]. Which numeric `code` a client sees
//! depends on the wire surface the request came through (attendance answers a
//! bad parameter with 1220001, lingo with 2250001, …), so `Error` renders
//! itself only once the surface is known: [`Error::into_response`] parks the
//! error in the response extensions and the API middleware
//! ([`crate::api::middleware`]) renders `{code,msg,data,error:{log_id}}` with
//! the surface's code and HTTP status. Internal details go to the log only.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub type Result<T, E = Error> = std::result::Result<T, E>;

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
        Error::Internal(e)
    }
}

/// PostgreSQL refuses text holding U+0000 (SQLSTATE 22021), which only a
/// client's parameter can bring; SQLite stores it and finds nothing.
fn is_unstorable_text(e: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        e.downcast_ref::<sqlx::Error>(),
        Some(sqlx::Error::Database(d)) if d.code().as_deref() == Some("22021")
    )
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Internal(anyhow::Error::new(e).context("blob store"))
    }
}

/// The wire surface a request belongs to; it decides the business codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Auth,
    Attendance,
    Lingo,
    Acs,
    Other,
}

impl Surface {
    pub fn of_path(path: &str) -> Surface {
        if path.starts_with("/open-apis/auth/") {
            Surface::Auth
        } else if path.starts_with("/open-apis/attendance/") {
            Surface::Attendance
        } else if path.starts_with("/open-apis/lingo/") {
            Surface::Lingo
        } else if path.starts_with("/open-apis/acs/") {
            Surface::Acs
        } else {
            Surface::Other
        }
    }

    /// (HTTP status, code, message prefix) for a bad parameter; the prefix
    /// is the code's own message in the surface's error table.
    fn param_code(self) -> (StatusCode, i64, &'static str) {
        match self {
            Surface::Auth => (StatusCode::OK, 10003, "invalid param"),
            Surface::Attendance | Surface::Other => {
                (StatusCode::BAD_REQUEST, 1220001, "param is invalid")
            }
            Surface::Lingo => (StatusCode::BAD_REQUEST, 2250001, "invalid param"),
            // The ACS pages list no parameter code; the platform's generic
            // "request parameters missing or wrong" is used.
            Surface::Acs => (StatusCode::BAD_REQUEST, 99992402, "invalid param"),
        }
    }

    /// (code, message) for an internal fault.
    fn internal_code(self) -> (i64, &'static str) {
        match self {
            Surface::Auth => (10013, "internal server error"),
            Surface::Attendance | Surface::Other => (1225000, "internal server error"),
            Surface::Lingo => (2250002, "network anomaly, please try again"),
            Surface::Acs => (1490002, "internal server error"),
        }
    }
}

/// What the client is told: status, platform code, message and extra headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub status: StatusCode,
    pub code: i64,
    pub msg: String,
    pub headers: Vec<(&'static str, String)>,
}

impl Error {
    pub fn render(&self, surface: Surface) -> Rendered {
        let r = |status, code, msg: String| Rendered {
            status,
            code,
            msg,
            headers: Vec::new(),
        };
        match self {
            Error::MissingToken => r(StatusCode::BAD_REQUEST, 99991661, self.to_string()),
            Error::MalformedToken => r(StatusCode::BAD_REQUEST, 99991671, self.to_string()),
            Error::InvalidTenantToken => r(StatusCode::BAD_REQUEST, 99991663, self.to_string()),
            Error::InvalidUserToken => r(StatusCode::BAD_REQUEST, 99991668, self.to_string()),
            Error::UserTokenExpired => r(StatusCode::BAD_REQUEST, 99991677, self.to_string()),
            Error::ScopeDenied(_) => r(StatusCode::BAD_REQUEST, 99991672, self.to_string()),
            Error::RateLimited { limit, reset_secs } => Rendered {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: 99991400,
                msg: self.to_string(),
                headers: vec![
                    ("x-ogw-ratelimit-limit", limit.to_string()),
                    ("x-ogw-ratelimit-reset", reset_secs.to_string()),
                ],
            },
            Error::Throttled {
                retry_after_secs, ..
            } => Rendered {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: 99991400,
                msg: self.to_string(),
                headers: vec![
                    ("retry-after", retry_after_secs.to_string()),
                    ("x-ogw-ratelimit-reset", retry_after_secs.to_string()),
                ],
            },
            Error::AdminLoginRequired => r(StatusCode::UNAUTHORIZED, 99991661, self.to_string()),
            Error::CsrfRejected => r(StatusCode::FORBIDDEN, 99991672, self.to_string()),
            Error::Forbidden(m) => r(StatusCode::FORBIDDEN, 99991672, m.clone()),
            Error::TokenParam(m) => r(StatusCode::OK, 10003, m.clone()),
            Error::WrongAppSecret => r(StatusCode::OK, 10015, self.to_string()),
            Error::AppDisabled => r(StatusCode::OK, 10014, self.to_string()),
            Error::InvalidParam(m) => {
                let (status, code, prefix) = surface.param_code();
                r(status, code, format!("{prefix}: {m}"))
            }
            Error::UserNotFound(_) => match surface {
                Surface::Attendance | Surface::Other => {
                    r(StatusCode::BAD_REQUEST, 1220004, self.to_string())
                }
                Surface::Lingo => r(StatusCode::BAD_REQUEST, 2250001, self.to_string()),
                Surface::Acs => r(StatusCode::BAD_REQUEST, 1490101, "user not found".into()),
                Surface::Auth => r(StatusCode::OK, 10003, self.to_string()),
            },
            Error::AcsUserNotFound => r(StatusCode::BAD_REQUEST, 1490101, self.to_string()),
            Error::DeviceRefused(_, m) => {
                let (status, code, prefix) = surface.param_code();
                r(status, code, format!("{prefix}: {m}"))
            }
            Error::FaceCropFail(_) => r(StatusCode::BAD_REQUEST, 1490108, self.to_string()),
            Error::RouteNotFound => r(StatusCode::NOT_FOUND, 99991201, self.to_string()),
            Error::MethodNotAllowed => {
                r(StatusCode::METHOD_NOT_ALLOWED, 99991301, self.to_string())
            }
            Error::StorageFull(_) => {
                let (code, _) = surface.internal_code();
                r(StatusCode::INSUFFICIENT_STORAGE, code, self.to_string())
            }
            Error::Internal(_) => {
                let (code, msg) = surface.internal_code();
                r(StatusCode::INTERNAL_SERVER_ERROR, code, msg.to_string())
            }
        }
    }

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
            Error::Internal(_) => "internal",
        }
    }

    /// `(errcode, errmsg)` on the WeCom device protocol. The protocol's own
    /// codes (6000xx) come from [`Error::DeviceRefused`]; the rest are
    /// WeCom's global codes: 40058 invalid parameter, 45009 frequency
    /// limit, -1 system busy (see docs/device-protocol.md).
    pub fn device_code(&self) -> (i64, String) {
        match self {
            Error::DeviceRefused(code, m) => (*code, m.clone()),
            Error::InvalidParam(m) => (40058, format!("invalid parameter: {m}")),
            Error::UserNotFound(_) => (40003, self.to_string()),
            Error::RateLimited { .. } => (45009, "api freq out of limit".into()),
            Error::Throttled { msg, .. } => (45009, format!("api freq out of limit: {msg}")),
            Error::Internal(_) => (-1, "system busy".into()),
            other => (40058, other.to_string()),
        }
    }

    /// The full envelope for `surface`, carrying `log_id`.
    pub fn to_response(&self, surface: Surface, log_id: &str) -> Response {
        let rendered = self.render(surface);
        let body = json!({
            "code": rendered.code,
            "msg": rendered.msg,
            "data": {},
            "error": { "log_id": log_id },
        });
        let mut resp = (rendered.status, axum::Json(body)).into_response();
        for (name, value) in rendered.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
        resp
    }
}

/// Marker left in the response extensions for the API middleware.
#[derive(Clone)]
pub struct PendingError(pub Arc<Error>);

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        // The surface-independent fallback; the middleware replaces it.
        let mut resp = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        resp.extensions_mut().insert(PendingError(Arc::new(self)));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_codes_depend_on_surface() {
        let e = Error::param("file_name is required");
        let a = e.render(Surface::Attendance);
        assert_eq!((a.status, a.code), (StatusCode::BAD_REQUEST, 1220001));
        assert_eq!(a.msg, "param is invalid: file_name is required");
        let t = e.render(Surface::Auth);
        assert_eq!((t.status, t.code), (StatusCode::OK, 10003));
        let l = e.render(Surface::Lingo);
        assert_eq!((l.status, l.code), (StatusCode::BAD_REQUEST, 2250001));
        assert_eq!(l.msg, "invalid param: file_name is required");
        let i = Error::internal("disk").render(Surface::Lingo);
        assert_eq!(
            (i.status, i.code),
            (StatusCode::INTERNAL_SERVER_ERROR, 2250002)
        );
    }

    #[test]
    fn auth_errors_are_400_with_platform_codes() {
        for (e, code) in [
            (Error::MissingToken, 99991661),
            (Error::MalformedToken, 99991671),
            (Error::InvalidTenantToken, 99991663),
            (Error::InvalidUserToken, 99991668),
            (Error::UserTokenExpired, 99991677),
            (Error::ScopeDenied(&["attendance:rule"]), 99991672),
        ] {
            let r = e.render(Surface::Attendance);
            assert_eq!((r.status, r.code), (StatusCode::BAD_REQUEST, code), "{e:?}");
        }
    }

    #[test]
    fn scope_message_lists_scopes() {
        let r = Error::ScopeDenied(&["attendance:rule", "x:y"]).render(Surface::Attendance);
        assert!(r.msg.contains("[attendance:rule, x:y]"), "{}", r.msg);
    }

    #[test]
    fn rate_limit_has_headers_and_429() {
        let r = Error::RateLimited {
            limit: 50,
            reset_secs: 1,
        }
        .render(Surface::Attendance);
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.code, 99991400);
        assert!(r.headers.contains(&("x-ogw-ratelimit-limit", "50".into())));
        assert!(r.headers.contains(&("x-ogw-ratelimit-reset", "1".into())));
    }

    #[test]
    fn internal_detail_is_not_rendered() {
        let e = Error::Internal(anyhow::anyhow!("disk /secret/path exploded"));
        let r = e.render(Surface::Attendance);
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(r.code, 1225000);
        assert!(!r.msg.contains("secret"));
    }
}
