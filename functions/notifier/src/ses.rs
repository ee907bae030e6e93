//! The SES adapter of the [`Mailer`] port (the deployed notifier's; the local server and most
//! tests use [`crate::MemoryMailer`]).

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sesv2::error::{DisplayErrorContext, SdkError};
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};

use crate::{Email, Mailer, SendError, mime};

/// SES (v2) with a raw MIME message: text and HTML alternatives plus inline QR images.
pub struct SesMailer {
    client: tokio::sync::OnceCell<aws_sdk_sesv2::Client>,
    /// What the client is made from when the first email is sent.
    sdk: Option<Arc<shared::aws::SdkConfig>>,
    from: String,
}

impl SesMailer {
    pub fn new(client: aws_sdk_sesv2::Client, from: impl Into<String>) -> Self {
        SesMailer { client: client.into(), sdk: None, from: from.into() }
    }

    /// A client made when first needed (or when [`SesMailer::warm`] asks), from `sdk` (the
    /// process's AWS configuration), else from the environment.
    pub fn lazy(sdk: Option<Arc<shared::aws::SdkConfig>>, from: impl Into<String>) -> Self {
        SesMailer { client: tokio::sync::OnceCell::new(), sdk, from: from.into() }
    }

    /// Makes the client now, in a task of its own: a function's start does this while it waits
    /// for its first event (the runtime API's answer), so that the first email does not. A
    /// batch of duplicates that never sends leaves the work done and unused.
    pub fn warm(self: &Arc<Self>) {
        let mailer = self.clone();
        tokio::spawn(async move {
            mailer.client().await;
        });
    }

    async fn client(&self) -> &aws_sdk_sesv2::Client {
        self.client
            .get_or_init(|| async {
                match &self.sdk {
                    Some(sdk) => aws_sdk_sesv2::Client::new(sdk),
                    None => aws_sdk_sesv2::Client::new(&shared::aws::load()),
                }
            })
            .await
    }

    pub fn from_address(&self) -> &str {
        &self.from
    }
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &Email) -> Result<(), SendError> {
        let data = mime(&self.from, email).map_err(SendError::NotSent)?;
        let raw = RawMessage::builder()
            .data(Blob::new(data))
            .build()
            .map_err(|e| SendError::NotSent(e.to_string()))?;
        let res = self
            .client()
            .await
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&email.to).build())
            .content(EmailContent::builder().raw(raw).build())
            .send()
            .await;
        match res {
            Ok(out) => {
                tracing::info!(id = %email.id, ses_message_id = out.message_id().unwrap_or(""), "email sent");
                Ok(())
            }
            Err(err) => {
                let text = DisplayErrorContext(&err).to_string();
                // A service error is SES refusing; a construction or connection failure never
                // reached it. A timeout or an unreadable response may follow a send.
                match err {
                    SdkError::ServiceError(_) | SdkError::ConstructionFailure(_) => {
                        Err(SendError::NotSent(text))
                    }
                    SdkError::DispatchFailure(ref d) if !d.is_timeout() => Err(SendError::NotSent(text)),
                    _ => Err(SendError::Unknown(text)),
                }
            }
        }
    }
}
