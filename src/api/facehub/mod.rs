//! `/open-apis/facehub/v1/…`: facehub's own endpoints beside the platform's,
//! in the platform's envelope: the tenant's terminals ([`devices`]) and
//! privacy administration ([`privacy`]).

pub mod devices;
pub mod privacy;

use axum::Router;

use super::AppState;
use super::feishu::envelope::Codes;
use super::middleware::speaking;

/// facehub's own endpoints answer in the table of attendance, the product
/// they extend; so do the routes outside every Feishu surface (console,
/// operations, the device upgrade).
pub const CODES: Codes = super::feishu::attendance::CODES;

pub fn router() -> Router<AppState> {
    let routes = Router::new()
        .merge(devices::router())
        .merge(privacy::router());
    speaking(routes, &CODES)
}
