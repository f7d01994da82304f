//! The Feishu/Lark open-apis facehub speaks: one module per product, each
//! owning its routes, its wire types and its error codes, and what they
//! share (the envelope, streamed multipart uploads, file downloads).

pub mod access_records;
pub mod access_rules;
pub mod acs;
pub mod attendance;
pub mod auth;
pub mod download;
pub mod envelope;
pub mod lingo;
pub mod multipart;
pub mod user_flows;
pub mod visitors;

use axum::Router;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(attendance::router())
        .merge(lingo::router())
        .merge(acs::router())
        .merge(access_records::router())
        .merge(access_rules::router())
        .merge(visitors::router())
        .merge(user_flows::router())
}
