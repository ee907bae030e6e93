//! Mandarin gateway adapter.

use async_trait::async_trait;
use rust_decimal::Decimal;

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::payments::gateway::{CallbackEvent, Fields, Gateway, Redirect, Remote};
use crate::payments::{GatewayKind, Payment};

#[derive(Debug, Clone, Default)]
pub struct Config {}

impl Config {
    pub fn from_env() -> Self {
        Config {}
    }
}

pub struct Mandarin(pub Config);

#[async_trait]
impl Gateway for Mandarin {
    fn kind(&self) -> GatewayKind {
        GatewayKind::Mandarin
    }
    async fn create(&self, _app: &App, _p: &Payment) -> ApiResult<Redirect> {
        Err(ApiError::Gateway("not configured".into()))
    }
    async fn verify_callback(&self, _app: &App, _fields: &Fields) -> ApiResult<CallbackEvent> {
        Err(ApiError::Gateway("not configured".into()))
    }
    async fn query_status(&self, _app: &App, _p: &Payment) -> ApiResult<Remote> {
        Err(ApiError::Gateway("not configured".into()))
    }
    async fn refund(&self, _app: &App, _p: &Payment, _amount: Decimal) -> ApiResult<()> {
        Err(ApiError::Gateway("not configured".into()))
    }
}
