//! The platform's envelope: `{code, data, msg}` around every JSON answer,
//! and how a core [`Error`] reaches a Feishu client.
//!
//! Which numeric `code` a client sees for some errors depends on the wire
//! surface (attendance answers a bad parameter with 1220001, lingo with
//! 2250001, …): each surface declares its [`Codes`] in its own module, and
//! its router is wrapped in [`super::super::middleware::speaking`], which
//! tags the errors of its handlers with them. An `Error`'s `IntoResponse`
//! only parks it in the response extensions; the API middleware renders
//! `{code,data,error:{log_id},msg}` once the codes and the log id are known.
//!
//! Every body is serialised from a typed struct that the OpenAPI document
//! describes too. The fields are declared in alphabetical order: the bodies
//! were built as sorted JSON maps, and the wire stays byte-identical.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

use crate::model::error::Error;

/// `code: 0, msg: "success"` and the endpoint's data.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// 0 on success.
    code: i64,
    data: T,
    #[schema(value_type = String)]
    msg: std::borrow::Cow<'static, str>,
}

impl<T> Envelope<T> {
    pub fn success(data: T) -> Envelope<T> {
        Envelope {
            code: 0,
            data,
            msg: "success".into(),
        }
    }

    /// A success whose `msg` says more (the platform reports partial
    /// failures there).
    pub fn success_saying(data: T, msg: String) -> Envelope<T> {
        Envelope {
            code: 0,
            data,
            msg: msg.into(),
        }
    }
}

impl<T: Serialize> IntoResponse for Envelope<T> {
    fn into_response(self) -> Response {
        debug_assert!(
            keys_sorted(&self),
            "a response type declares its fields out of alphabetical order"
        );
        axum::Json(self).into_response()
    }
}

/// Whether `v` serialises with every object's keys in order, as a sorted
/// JSON map would (what the module doc requires of response types).
fn keys_sorted(v: &impl Serialize) -> bool {
    let direct = serde_json::to_string(v).ok();
    direct.is_some() && direct == serde_json::to_value(v).ok().map(|v| v.to_string())
}

/// `{}`: the data of an answer that has nothing to say.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Empty {}

/// Every refusal: a non-zero `code`, the reason in `msg`, and the request's
/// log id.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// The platform's error code (never 0).
    code: i64,
    data: Empty,
    error: ErrorDetail,
    msg: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The request's X-Tt-Logid.
    log_id: String,
}

/// The refusals any authenticated endpoint may answer, for its
/// `#[utoipa::path(responses(…, Refusals))]`.
#[derive(IntoResponses)]
pub enum Refusals {
    #[response(status = 400, description = "refused: a bad parameter, token or scope")]
    Refused(ErrorEnvelope),
    #[response(status = 429, description = "frequency limit")]
    RateLimited(ErrorEnvelope),
    #[response(status = 500, description = "internal fault")]
    Internal(ErrorEnvelope),
    #[response(
        status = 507,
        description = "storage full: the deployment's disk is full (or below its free-space floor); retry once space is freed"
    )]
    StorageFull(ErrorEnvelope),
    #[response(
        status = 503,
        description = "unavailable: the metadata store does not answer; retry after `Retry-After` seconds"
    )]
    Unavailable(ErrorEnvelope),
}

/// What a surface answers where the platform's error tables differ from one
/// product to the next; every other error has the same code everywhere.
#[derive(Debug)]
pub struct Codes {
    /// A bad parameter: HTTP status, code, and the code's own message in
    /// the surface's table, which prefixes the reason.
    pub param: (StatusCode, i64, &'static str),
    /// An internal fault: the code, and the message said instead of the
    /// detail (which goes to the log only).
    pub internal: (i64, &'static str),
    /// An unknown person: HTTP status, code, and the message where the
    /// surface's table fixes one (else the error's own).
    pub user_not_found: (StatusCode, i64, Option<&'static str>),
}

/// What the client is told: status, platform code, message and extra headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub status: StatusCode,
    pub code: i64,
    pub msg: String,
    pub headers: Vec<(&'static str, String)>,
}

impl Codes {
    /// What `e` looks like on this surface.
    pub fn render(&self, e: &Error) -> Rendered {
        let r = |status, code, msg: String| Rendered {
            status,
            code,
            msg,
            headers: Vec::new(),
        };
        // Both limits are the platform's one frequency refusal; only the
        // headers say which.
        let too_many = |headers| Rendered {
            headers,
            ..r(StatusCode::TOO_MANY_REQUESTS, 99991400, e.to_string())
        };
        let param = |m: &str| {
            let (status, code, prefix) = self.param;
            r(status, code, format!("{prefix}: {m}"))
        };
        match e {
            Error::MissingToken => r(StatusCode::BAD_REQUEST, 99991661, e.to_string()),
            Error::MalformedToken => r(StatusCode::BAD_REQUEST, 99991671, e.to_string()),
            Error::InvalidTenantToken => r(StatusCode::BAD_REQUEST, 99991663, e.to_string()),
            Error::InvalidUserToken => r(StatusCode::BAD_REQUEST, 99991668, e.to_string()),
            Error::UserTokenExpired => r(StatusCode::BAD_REQUEST, 99991677, e.to_string()),
            Error::ScopeDenied(_) => r(StatusCode::BAD_REQUEST, 99991672, e.to_string()),
            Error::RateLimited { limit, reset_secs } => too_many(vec![
                ("x-ogw-ratelimit-limit", limit.to_string()),
                ("x-ogw-ratelimit-reset", reset_secs.to_string()),
            ]),
            Error::Throttled {
                retry_after_secs, ..
            } => too_many(vec![
                ("retry-after", retry_after_secs.to_string()),
                ("x-ogw-ratelimit-reset", retry_after_secs.to_string()),
            ]),
            Error::AdminLoginRequired => r(StatusCode::UNAUTHORIZED, 99991661, e.to_string()),
            Error::CsrfRejected => r(StatusCode::FORBIDDEN, 99991672, e.to_string()),
            Error::Forbidden(m) => r(StatusCode::FORBIDDEN, 99991672, m.clone()),
            Error::TokenParam(m) => r(StatusCode::OK, 10003, m.clone()),
            Error::WrongAppSecret => r(StatusCode::OK, 10015, e.to_string()),
            Error::AppDisabled => r(StatusCode::OK, 10014, e.to_string()),
            Error::InvalidParam(m) => param(m),
            Error::UserNotFound(_) => {
                let (status, code, msg) = self.user_not_found;
                r(
                    status,
                    code,
                    msg.map_or_else(|| e.to_string(), String::from),
                )
            }
            Error::AcsUserNotFound => r(StatusCode::BAD_REQUEST, 1490101, e.to_string()),
            Error::DeviceRefused(_, m) => param(m),
            Error::FaceCropFail(_) => r(StatusCode::BAD_REQUEST, 1490108, e.to_string()),
            Error::RouteNotFound => r(StatusCode::NOT_FOUND, 99991201, e.to_string()),
            Error::MethodNotAllowed => r(StatusCode::METHOD_NOT_ALLOWED, 99991301, e.to_string()),
            Error::StorageFull(_) => r(
                StatusCode::INSUFFICIENT_STORAGE,
                self.internal.0,
                e.to_string(),
            ),
            Error::Unavailable(_) => Rendered {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: self.internal.0,
                msg: e.to_string(),
                headers: vec![("retry-after", "1".into())],
            },
            Error::Internal(_) => r(
                StatusCode::INTERNAL_SERVER_ERROR,
                self.internal.0,
                self.internal.1.to_string(),
            ),
        }
    }

    /// The full envelope of `e` on this surface, carrying `log_id`.
    pub fn to_response(&self, e: &Error, log_id: &str) -> Response {
        let rendered = self.render(e);
        let body = ErrorEnvelope {
            code: rendered.code,
            data: Empty {},
            error: ErrorDetail {
                log_id: log_id.to_string(),
            },
            msg: rendered.msg,
        };
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
    use crate::api::feishu::{acs, attendance, auth, lingo};

    #[test]
    fn param_codes_depend_on_surface() {
        let e = Error::param("file_name is required");
        let a = attendance::CODES.render(&e);
        assert_eq!((a.status, a.code), (StatusCode::BAD_REQUEST, 1220001));
        assert_eq!(a.msg, "param is invalid: file_name is required");
        let t = auth::CODES.render(&e);
        assert_eq!((t.status, t.code), (StatusCode::OK, 10003));
        let l = lingo::CODES.render(&e);
        assert_eq!((l.status, l.code), (StatusCode::BAD_REQUEST, 2250001));
        assert_eq!(l.msg, "invalid param: file_name is required");
        let i = lingo::CODES.render(&Error::internal("disk"));
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
            let r = attendance::CODES.render(&e);
            assert_eq!((r.status, r.code), (StatusCode::BAD_REQUEST, code), "{e:?}");
        }
    }

    #[test]
    fn scope_message_lists_scopes() {
        let r = attendance::CODES.render(&Error::ScopeDenied(&["attendance:rule", "x:y"]));
        assert!(r.msg.contains("[attendance:rule, x:y]"), "{}", r.msg);
    }

    #[test]
    fn rate_limit_has_headers_and_429() {
        let e = Error::RateLimited {
            limit: 50,
            reset_secs: 1,
        };
        let r = attendance::CODES.render(&e);
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.code, 99991400);
        assert!(r.headers.contains(&("x-ogw-ratelimit-limit", "50".into())));
        assert!(r.headers.contains(&("x-ogw-ratelimit-reset", "1".into())));
    }

    #[test]
    fn internal_detail_is_not_rendered() {
        let e = Error::Internal(anyhow::anyhow!("disk /secret/path exploded"));
        let r = attendance::CODES.render(&e);
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(r.code, 1225000);
        assert!(!r.msg.contains("secret"));
    }

    #[test]
    fn out_of_order_fields_are_caught() {
        #[derive(Serialize)]
        struct Sorted {
            a: u8,
            b: Vec<u8>,
        }
        #[derive(Serialize)]
        struct Unsorted {
            b: u8,
            a: u8,
        }
        assert!(keys_sorted(&Envelope::success(Sorted { a: 1, b: vec![] })));
        assert!(!keys_sorted(&Envelope::success(Unsorted { b: 1, a: 2 })));
    }

    #[test]
    fn an_unknown_person_takes_the_surface_s_code() {
        let e = Error::UserNotFound("u9".into());
        let a = acs::CODES.render(&e);
        assert_eq!(
            (a.status, a.code, a.msg.as_str()),
            (StatusCode::BAD_REQUEST, 1490101, "user not found")
        );
        let t = auth::CODES.render(&e);
        assert_eq!((t.status, t.code), (StatusCode::OK, 10003));
        assert_eq!(attendance::CODES.render(&e).code, 1220004);
    }
}
