//! Extractors whose rejections are platform envelopes, and that accept what
//! the official SDKs really send (JSON without a Content-Type, GET with a
//! JSON body, `True` for booleans).

use std::marker::PhantomData;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::AppState;
use crate::domain::auth::{Caller, TokenTypes};
use crate::model::error::Error;

/// Query string parameters.
pub struct Query<T>(pub T);

/// A path segment with its rejection kept, so that the handler refuses an
/// unreadable one as the surface's parameter error.
pub type PathParam = Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>;

/// The segment of `param`, or "`name` is invalid".
pub fn path_param(param: PathParam, name: &str) -> Result<String, Error> {
    param
        .map(|axum::extract::Path(v)| v)
        .map_err(|_| Error::param(format!("{name} is invalid")))
}

/// A `page_size` query parameter: `default` when absent or empty, else a
/// number from 1 to `max`, or the refusal `refusal`.
pub fn page_size(raw: Option<&str>, default: i64, max: i64, refusal: &str) -> Result<i64, Error> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| Error::param(refusal)),
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(q)
            .map(Query)
            .map_err(|e| Error::param(format!("invalid query string: {e}")))
    }
}

/// A JSON body, whatever the Content-Type says (the Python SDK sends none
/// on token requests), bounded by `limits.json_max_bytes`.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Error> {
        let limits = &state.core.config().limits;
        let bytes = bounded_body(
            req.into_body(),
            limits.json_max_bytes,
            std::time::Duration::from_secs(limits.json_deadline_secs),
        )
        .await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::param("request body must be a JSON object"));
        }
        serde_json::from_slice(&bytes)
            .map(Json)
            .map_err(|e| Error::param(format!("request body is not valid: {e}")))
    }
}

/// A whole request body of at most `limit` bytes that must arrive within
/// `deadline`: a body trickled in a byte at a time must not hold the
/// connection (and its memory) for days.
pub async fn bounded_body(
    body: axum::body::Body,
    limit: usize,
    deadline: std::time::Duration,
) -> Result<bytes::Bytes, Error> {
    let read = tokio::time::timeout(deadline, axum::body::to_bytes(body, limit));
    read.await
        .map_err(|_| {
            Error::param(format!(
                "request body did not arrive within {} s",
                deadline.as_secs()
            ))
        })?
        .map_err(|e| {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(c) = cause {
                if c.is::<http_body_util::LengthLimitError>() {
                    return Error::param(format!("request body is larger than {limit} bytes"));
                }
                cause = c.source();
            }
            Error::param(format!("request body could not be read: {e}"))
        })
}

/// What one endpoint requires of its caller.
pub trait Endpoint: Send + Sync + 'static {
    /// Rate-limit bucket name.
    const NAME: &'static str;
    /// The caller needs any one of these scopes.
    const SCOPES: &'static [&'static str];
    /// The access tokens the endpoint takes.
    const TOKENS: TokenTypes = TokenTypes::TENANT;
    /// Whether the platform also caps the endpoint per minute
    /// (`rate_limit_per_minute`).
    const PER_MINUTE: bool = false;
}

/// Declares an endpoint: its rate-limit bucket and the scopes, any one of
/// which it takes; tenant tokens, no per-minute cap (the defaults).
/// A fourth argument names the tokens it takes instead.
macro_rules! endpoint {
    ($name:ident, $label:literal, $scopes:expr) => {
        pub struct $name;
        impl $crate::api::extract::Endpoint for $name {
            const NAME: &'static str = $label;
            const SCOPES: &'static [&'static str] = $scopes;
        }
    };
    ($name:ident, $label:literal, $scopes:expr, $tokens:expr) => {
        pub struct $name;
        impl $crate::api::extract::Endpoint for $name {
            const NAME: &'static str = $label;
            const SCOPES: &'static [&'static str] = $scopes;
            const TOKENS: $crate::domain::auth::TokenTypes = $tokens;
        }
    };
}
pub(crate) use endpoint;

/// A caller holding a valid access token of a kind `E` takes, with one of
/// `E`'s scopes, within `E`'s rate limit.
pub struct Authed<E: Endpoint> {
    pub caller: Caller,
    _endpoint: PhantomData<E>,
}

/// The bearer token of a request; `None` when there is no
/// `Authorization: Bearer …` header (the platform answers a header without
/// the `Bearer ` prefix as a missing token).
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl<E: Endpoint> FromRequestParts<AppState> for Authed<E> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let token = bearer(parts).ok_or(Error::MissingToken)?;
        let mut caller = state.core.authenticate(token, E::TOKENS).await?;
        caller.log_id = parts
            .extensions
            .get::<super::middleware::LogId>()
            .map(ToString::to_string);
        if !caller.has_any(E::SCOPES) {
            return Err(Error::ScopeDenied(E::SCOPES));
        }
        if let Err(e) = state
            .limiter
            .check(&caller.app_id, E::NAME, E::PER_MINUTE)
            .await
        {
            state.core.metrics().rate_limit_hit(E::NAME);
            return Err(e);
        }
        Ok(Authed {
            caller,
            _endpoint: PhantomData,
        })
    }
}
