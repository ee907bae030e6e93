//! The gateway adapters.

pub mod mandarin;
pub mod robokassa;
pub mod sandbox;
pub mod sngb;

use super::GatewayKind;
use super::gateway::Gateway;
use crate::App;
use crate::error::{ApiError, ApiResult};

/// The adapter for a gateway, configured from `app.config.payments`. The sandbox exists only
/// where it is enabled: elsewhere nobody can pay with it, and its callbacks are 404.
pub fn for_kind(app: &App, kind: GatewayKind) -> ApiResult<Box<dyn Gateway>> {
    let c = &app.config.payments;
    Ok(match kind {
        GatewayKind::Sandbox if c.sandbox => Box::new(sandbox::Sandbox),
        GatewayKind::Sandbox => return Err(ApiError::NotFound("payment gateway".into())),
        GatewayKind::Robokassa => Box::new(robokassa::Robokassa(c.robokassa.clone())),
        GatewayKind::Mandarin => Box::new(mandarin::Mandarin(c.mandarin.clone())),
        GatewayKind::Sngb => Box::new(sngb::Sngb(c.sngb.clone())),
    })
}
