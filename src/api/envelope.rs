//! The platform's error envelope: how a core [`Error`] reaches a Feishu
//! client.
//!
//! Which numeric `code` a client sees depends on the wire surface the
//! request came through (attendance answers a bad parameter with 1220001,
//! lingo with 2250001, …), so an `Error` is rendered only once the surface
//! is known: its `IntoResponse` parks it in the response extensions and the
//! API middleware ([`super::middleware`]) renders `{code,msg,data,error:{log_id}}`
//! with the surface's code and HTTP status.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::model::error::Error;

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

/// What `e` looks like on `surface`.
pub fn render(e: &Error, surface: Surface) -> Rendered {
    let r = |status, code, msg: String| Rendered {
        status,
        code,
        msg,
        headers: Vec::new(),
    };
    match e {
        Error::MissingToken => r(StatusCode::BAD_REQUEST, 99991661, e.to_string()),
        Error::MalformedToken => r(StatusCode::BAD_REQUEST, 99991671, e.to_string()),
        Error::InvalidTenantToken => r(StatusCode::BAD_REQUEST, 99991663, e.to_string()),
        Error::InvalidUserToken => r(StatusCode::BAD_REQUEST, 99991668, e.to_string()),
        Error::UserTokenExpired => r(StatusCode::BAD_REQUEST, 99991677, e.to_string()),
        Error::ScopeDenied(_) => r(StatusCode::BAD_REQUEST, 99991672, e.to_string()),
        Error::RateLimited { limit, reset_secs } => Rendered {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: 99991400,
            msg: e.to_string(),
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
            msg: e.to_string(),
            headers: vec![
                ("retry-after", retry_after_secs.to_string()),
                ("x-ogw-ratelimit-reset", retry_after_secs.to_string()),
            ],
        },
        Error::AdminLoginRequired => r(StatusCode::UNAUTHORIZED, 99991661, e.to_string()),
        Error::CsrfRejected => r(StatusCode::FORBIDDEN, 99991672, e.to_string()),
        Error::Forbidden(m) => r(StatusCode::FORBIDDEN, 99991672, m.clone()),
        Error::TokenParam(m) => r(StatusCode::OK, 10003, m.clone()),
        Error::WrongAppSecret => r(StatusCode::OK, 10015, e.to_string()),
        Error::AppDisabled => r(StatusCode::OK, 10014, e.to_string()),
        Error::InvalidParam(m) => {
            let (status, code, prefix) = surface.param_code();
            r(status, code, format!("{prefix}: {m}"))
        }
        Error::UserNotFound(_) => match surface {
            Surface::Attendance | Surface::Other => {
                r(StatusCode::BAD_REQUEST, 1220004, e.to_string())
            }
            Surface::Lingo => r(StatusCode::BAD_REQUEST, 2250001, e.to_string()),
            Surface::Acs => r(StatusCode::BAD_REQUEST, 1490101, "user not found".into()),
            Surface::Auth => r(StatusCode::OK, 10003, e.to_string()),
        },
        Error::AcsUserNotFound => r(StatusCode::BAD_REQUEST, 1490101, e.to_string()),
        Error::DeviceRefused(_, m) => {
            let (status, code, prefix) = surface.param_code();
            r(status, code, format!("{prefix}: {m}"))
        }
        Error::FaceCropFail(_) => r(StatusCode::BAD_REQUEST, 1490108, e.to_string()),
        Error::RouteNotFound => r(StatusCode::NOT_FOUND, 99991201, e.to_string()),
        Error::MethodNotAllowed => r(StatusCode::METHOD_NOT_ALLOWED, 99991301, e.to_string()),
        Error::StorageFull(_) => {
            let (code, _) = surface.internal_code();
            r(StatusCode::INSUFFICIENT_STORAGE, code, e.to_string())
        }
        Error::Internal(_) => {
            let (code, msg) = surface.internal_code();
            r(StatusCode::INTERNAL_SERVER_ERROR, code, msg.to_string())
        }
    }
}

/// The full envelope of `e` for `surface`, carrying `log_id`.
pub fn to_response(e: &Error, surface: Surface, log_id: &str) -> Response {
    let rendered = render(e, surface);
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
        let a = render(&e, Surface::Attendance);
        assert_eq!((a.status, a.code), (StatusCode::BAD_REQUEST, 1220001));
        assert_eq!(a.msg, "param is invalid: file_name is required");
        let t = render(&e, Surface::Auth);
        assert_eq!((t.status, t.code), (StatusCode::OK, 10003));
        let l = render(&e, Surface::Lingo);
        assert_eq!((l.status, l.code), (StatusCode::BAD_REQUEST, 2250001));
        assert_eq!(l.msg, "invalid param: file_name is required");
        let i = render(&Error::internal("disk"), Surface::Lingo);
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
            let r = render(&e, Surface::Attendance);
            assert_eq!((r.status, r.code), (StatusCode::BAD_REQUEST, code), "{e:?}");
        }
    }

    #[test]
    fn scope_message_lists_scopes() {
        let r = render(
            &Error::ScopeDenied(&["attendance:rule", "x:y"]),
            Surface::Attendance,
        );
        assert!(r.msg.contains("[attendance:rule, x:y]"), "{}", r.msg);
    }

    #[test]
    fn rate_limit_has_headers_and_429() {
        let e = Error::RateLimited {
            limit: 50,
            reset_secs: 1,
        };
        let r = render(&e, Surface::Attendance);
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.code, 99991400);
        assert!(r.headers.contains(&("x-ogw-ratelimit-limit", "50".into())));
        assert!(r.headers.contains(&("x-ogw-ratelimit-reset", "1".into())));
    }

    #[test]
    fn internal_detail_is_not_rendered() {
        let e = Error::Internal(anyhow::anyhow!("disk /secret/path exploded"));
        let r = render(&e, Surface::Attendance);
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(r.code, 1225000);
        assert!(!r.msg.contains("secret"));
    }
}
