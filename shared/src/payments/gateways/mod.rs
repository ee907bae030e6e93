//! The gateway adapters.

pub mod mandarin;
pub mod robokassa;
pub mod sandbox;
pub mod sngb;

use super::GatewayKind;
use super::gateway::Gateway;
use crate::App;

/// The adapter for a gateway, configured from `app.config.payments`.
pub fn for_kind(app: &App, kind: GatewayKind) -> Box<dyn Gateway> {
    let c = &app.config.payments;
    match kind {
        GatewayKind::Sandbox => Box::new(sandbox::Sandbox),
        GatewayKind::Robokassa => Box::new(robokassa::Robokassa(c.robokassa.clone())),
        GatewayKind::Mandarin => Box::new(mandarin::Mandarin(c.mandarin.clone())),
        GatewayKind::Sngb => Box::new(sngb::Sngb(c.sngb.clone())),
    }
}
