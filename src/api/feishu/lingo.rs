//! `/open-apis/lingo/v1/files/*`: wiki images.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Serialize;
use utoipa::ToSchema;

use super::envelope::{Codes, Envelope, Refusals};
use super::{download, multipart};
use crate::api::AppState;
use crate::api::extract::{Authed, Endpoint, PathParam, path_param};
use crate::api::middleware::speaking;
use crate::domain::auth::TokenTypes;
use crate::domain::files::StagedImage;
use crate::domain::lingo::ImageName;
use crate::model::error::{Error, Result};

/// Either wiki scope may upload (the page lists both as sufficient).
const WRITE_SCOPES: &[&str] = &["baike:entity", "baike:entity:exempt_review"];

pub struct Upload;
impl Endpoint for Upload {
    const NAME: &'static str = "lingo.files.upload";
    const SCOPES: &'static [&'static str] = WRITE_SCOPES;
    const TOKENS: TokenTypes = TokenTypes::TENANT_OR_USER;
    /// "1000 次/分钟、50 次/秒" on the page.
    const PER_MINUTE: bool = true;
}

pub struct Download;
impl Endpoint for Download {
    const NAME: &'static str = "lingo.files.download";
    const SCOPES: &'static [&'static str] = &[
        "baike:entity",
        "baike:entity:exempt_review",
        "baike:entity:readonly",
    ];
    const TOKENS: TokenTypes = TokenTypes::TENANT_OR_USER;
    const PER_MINUTE: bool = true;
}

pub const CODES: Codes = Codes {
    param: (StatusCode::BAD_REQUEST, 2250001, "invalid param"),
    internal: (2250002, "network anomaly, please try again"),
    user_not_found: (StatusCode::BAD_REQUEST, 2250001, None),
};

pub fn router() -> Router<AppState> {
    let routes = Router::new()
        .route("/open-apis/lingo/v1/files/upload", post(upload))
        .route(
            "/open-apis/lingo/v1/files/{file_token}/download",
            get(download),
        );
    speaking(routes, &CODES)
}

// The upload form (read field by field as it streams; this type only
// describes it).
#[derive(ToSchema)]
pub struct LingoForm {
    /// The image's name, with its extension.
    pub name: String,
    #[schema(format = Binary)]
    pub file: String,
}

#[derive(Serialize, ToSchema)]
pub struct LingoUploadData {
    file_token: String,
}

/// A `name` part longer than this is refused without reading further (100
/// characters of 4 UTF-8 bytes each fit).
const NAME_MAX_BYTES: usize = 4 * ImageName::MAX_CHARS;

#[utoipa::path(
    post,
    path = "/open-apis/lingo/v1/files/upload",
    tag = "lingo",
    request_body(content = inline(LingoForm), content_type = "multipart/form-data"),
    responses((status = 200, body = Envelope<LingoUploadData>), Refusals),
    security(("bearer" = []))
)]
async fn upload(
    auth: Authed<Upload>,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Envelope<LingoUploadData>> {
    let permit = state.upload_permit()?;
    let mut staged = None;
    let outcome =
        multipart::within_deadline(&state, receive(&state, &headers, body, &mut staged)).await;
    let (name, staged) = multipart::with_image(outcome, staged, "file").await?;
    let Some(name) = name else {
        staged.discard().await;
        return Err(Error::param("multipart field `name` is required"));
    };
    let file_token = state
        .core
        .store_lingo_image(auth.caller.tenant_id, staged, &name, permit)
        .await?;
    Ok(Envelope::success(LingoUploadData { file_token }))
}

/// Reads the form: `name` and `file` in any order (the Python SDK sends
/// `name` first, others `file` first). A bad name is refused as soon as it
/// arrives; the file streams into `staged`.
async fn receive(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    staged: &mut Option<StagedImage>,
) -> Result<Option<ImageName>> {
    let limits = &state.core.config().limits;
    let rules = state.core.lingo_rules();
    // The image limit is enforced precisely while streaming; this outer cap
    // only bounds what the multipart framing and the name may add.
    let mut form = multipart::reader(headers, body, rules.max_bytes)?;
    let idle = std::time::Duration::from_secs(limits.body_idle_timeout_secs);
    let mut name = None;
    while let Some(field) = multipart::next_field(&mut form, idle).await? {
        match field.name() {
            Some("name") => {
                let text = multipart::read_text(field, NAME_MAX_BYTES, idle).await?;
                // An empty part is how SDKs send an unset field.
                if !text.is_empty() {
                    name = Some(ImageName::parse(&text)?);
                }
            }
            Some("file") => {
                if staged.is_some() {
                    return Err(Error::param(
                        "multipart field `file` appears more than once",
                    ));
                }
                let bytes = multipart::idle_timeout(multipart::field_stream(field), idle);
                *staged = Some(state.core.receive_image(rules, bytes).await?);
            }
            // Unknown fields are skipped, as the platform ignores them.
            _ => {}
        }
    }
    Ok(name)
}

#[utoipa::path(
    get,
    path = "/open-apis/lingo/v1/files/{file_token}/download",
    tag = "lingo",
    params(("file_token" = String, Path)),
    responses((status = 200, description = "the image's bytes", content_type = "application/octet-stream"), Refusals),
    security(("bearer" = []))
)]
async fn download(
    auth: Authed<Download>,
    State(state): State<AppState>,
    token: PathParam,
) -> Result<Response> {
    let token = path_param(token, "file_token")?;
    let file = state
        .core
        .open_lingo_image(auth.caller.tenant_id, &token)
        .await?;
    Ok(download::file_response(file))
}
