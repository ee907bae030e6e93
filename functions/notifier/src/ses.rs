//! The SES adapter of the [`Mailer`] port (the deployed notifier's; the local server and most
//! tests use [`crate::MemoryMailer`]).
//!
//! One call, SES v2 `SendEmail` with a raw MIME message (text and HTML alternatives plus inline
//! QR images), made as the SES API reference describes it: `POST /v2/email/outbound-emails` with
//! a JSON body, signed with Signature Version 4 by `aws-sigv4` (the SDK's own signer), over the
//! HTTP client the function already has for webhooks. Not through `aws-sdk-sesv2`: making its
//! client parses the SDK's endpoint partition table and assembles its runtime plugins, and its
//! first call runs the orchestrator's setup before the socket opens: 14.8 of 49.5 samples in a
//! profile of a notifier start, for one request whose shape is fixed (starts 0.12–0.32 ms sooner
//! without it, in alternating rounds; the README's Performance section). What the SDK also gave
//! is kept here: its endpoint (`email.{region}.amazonaws.com`, or `AWS_ENDPOINT_URL`), the
//! credentials of the process's configuration, and retries of what SES answers as transient
//! (throttling, 5xx) or never received (no connection), three attempts in all.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use base64::Engine;
use serde::Deserialize;

use crate::{Email, Mailer, SendError, mime};

/// Attempts per email for answers that say it was not sent and may be sent on a retry.
const ATTEMPTS: u32 = 3;

/// SES v2 through its HTTP API (see the module docs).
pub struct SesMailer {
    region: String,
    /// `AWS_ENDPOINT_URL` (a local peer), else SES's regional endpoint.
    endpoint: Option<String>,
    credentials: Option<SharedCredentialsProvider>,
    /// Made on the first send: AWS's roots only, unless the endpoint was named by hand.
    http: std::sync::OnceLock<reqwest::Client>,
    from: String,
}

impl SesMailer {
    /// From the process's AWS configuration: its region, endpoint and credentials.
    pub fn new(sdk: &shared::aws::SdkConfig, from: impl Into<String>) -> Self {
        SesMailer {
            region: sdk.region().map(|r| r.as_ref().to_owned()).unwrap_or_default(),
            endpoint: sdk.endpoint_url().map(str::to_owned),
            credentials: sdk.credentials_provider(),
            http: std::sync::OnceLock::new(),
            from: from.into(),
        }
    }

    /// From the environment as Lambda sets it (see [`shared::aws::load`]), without making the
    /// SDK's HTTP client that this adapter does not use.
    pub fn from_env(from: impl Into<String>) -> Self {
        use shared::aws::env_var;
        SesMailer {
            region: shared::aws::region_from_vars(&env_var).unwrap_or_default(),
            endpoint: env_var("AWS_ENDPOINT_URL"),
            credentials: shared::aws::credentials_from_vars(&env_var),
            http: std::sync::OnceLock::new(),
            from: from.into(),
        }
    }

    pub fn from_address(&self) -> &str {
        &self.from
    }

    /// Where `SendEmail` is posted.
    fn url(&self) -> String {
        match &self.endpoint {
            Some(base) => format!("{}/v2/email/outbound-emails", base.trim_end_matches('/')),
            None => {
                let suffix =
                    if self.region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
                format!("https://email.{}.{suffix}/v2/email/outbound-emails", self.region)
            }
        }
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            let trust = shared::aws::Trust::for_endpoint(self.endpoint.as_deref());
            shared::aws::sdk_http::trusting(trust)
                .connect_timeout(shared::aws::CONNECT_TIMEOUT)
                .timeout(Duration::from_secs(8))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new())
        })
    }

    /// One signed `SendEmail` request: SES's message id, or why there is none.
    async fn attempt(&self, url: &str, body: &[u8]) -> Result<String, Attempt> {
        let provider =
            self.credentials.as_ref().ok_or_else(|| Attempt::Final("no AWS credentials".into()))?;
        let identity = provider
            .provide_credentials()
            .await
            .map_err(|e| Attempt::Final(format!("AWS credentials: {e}")))?
            .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("ses")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| Attempt::Final(format!("signing: {e}")))?
            .into();
        let headers = [("content-type", "application/json")];
        let signable = SignableRequest::new("POST", url, headers.into_iter(), SignableBody::Bytes(body))
            .map_err(|e| Attempt::Final(format!("signing: {e}")))?;
        let (signed, _) =
            sign(signable, &params).map_err(|e| Attempt::Final(format!("signing: {e}")))?.into_parts();
        let mut req = self.http().post(url).header("content-type", "application/json").body(body.to_vec());
        for (name, value) in signed.headers() {
            req = req.header(name, value);
        }
        let res = req.send().await.map_err(|e| match e.is_connect() {
            // Never reached SES: nothing sent.
            true => Attempt::Again(format!("SES unreachable: {e}")),
            // Sent, and then no whole answer (a timeout, a dropped connection): it may have been.
            false => Attempt::Unknown(format!("SES: {e}")),
        })?;
        let status = res.status();
        let kind = res.headers().get("x-amzn-errortype").and_then(|v| v.to_str().ok()).map(error_type);
        let kind = kind.unwrap_or_default().to_owned();
        // A success status is SES taking the message, whatever becomes of the rest of its answer.
        let text = res.bytes().await.unwrap_or_default();
        if status.is_success() {
            return Ok(serde_json::from_slice::<Sent>(&text).map(|s| s.message_id).unwrap_or_default());
        }
        let message = serde_json::from_slice::<Refused>(&text).map(|r| r.message()).unwrap_or_default();
        let what = format!("SES refused it ({status} {kind}): {message}");
        // SES answered, so it did not take the message; throttling and its own failures pass.
        match status.as_u16() == 429 || status.is_server_error() {
            true => Err(Attempt::Again(what)),
            false => Err(Attempt::Final(what)),
        }
    }
}

/// What one attempt came to, when not sent.
enum Attempt {
    /// Not sent; a later attempt may succeed.
    Again(String),
    /// Not sent; the same request would be refused again.
    Final(String),
    /// Perhaps sent.
    Unknown(String),
}

/// `MessageRejected:http://internal.amazon.com/...` reads `MessageRejected`.
fn error_type(header: &str) -> &str {
    header.split(':').next().unwrap_or(header)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Sent {
    message_id: String,
}

/// An error answer's body (`message`, or `Message` from some peers).
#[derive(Deserialize)]
struct Refused {
    message: Option<String>,
    #[serde(rename = "Message")]
    upper: Option<String>,
}

impl Refused {
    fn message(self) -> String {
        self.message.or(self.upper).unwrap_or_default()
    }
}

/// The `SendEmail` request body: the sender, the recipient and the raw message.
fn send_email_body(from: &str, to: &str, raw: &[u8]) -> Vec<u8> {
    let data = base64::engine::general_purpose::STANDARD.encode(raw);
    serde_json::to_vec(&serde_json::json!({
        "FromEmailAddress": from,
        "Destination": {"ToAddresses": [to]},
        "Content": {"Raw": {"Data": data}},
    }))
    .unwrap_or_default()
}

#[async_trait]
impl Mailer for SesMailer {
    fn prepare(&self) {
        self.http();
    }

    async fn send(&self, email: &Email) -> Result<(), SendError> {
        let data = mime(&self.from, email).map_err(SendError::NotSent)?;
        let body = send_email_body(&self.from, &email.to, &data);
        let url = self.url();
        let mut backoff = Duration::from_millis(50);
        for attempt in 1..=ATTEMPTS {
            match self.attempt(&url, &body).await {
                Ok(ses_message_id) => {
                    tracing::info!(id = %email.id, %ses_message_id, "email sent");
                    return Ok(());
                }
                Err(Attempt::Again(why)) if attempt < ATTEMPTS => {
                    tracing::warn!(id = %email.id, %why, attempt, "email not sent; trying again");
                    let jitter = Duration::from_millis(rand::random_range(0..=backoff.as_millis() as u64));
                    tokio::time::sleep(backoff + jitter).await;
                    backoff *= 4;
                }
                Err(Attempt::Again(why) | Attempt::Final(why)) => return Err(SendError::NotSent(why)),
                Err(Attempt::Unknown(why)) => return Err(SendError::Unknown(why)),
            }
        }
        Err(SendError::NotSent("no attempt made".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn mailer(endpoint: Option<String>) -> SesMailer {
        let creds = aws_credential_types::Credentials::new(
            "AKIDPEER",
            "peer-secret",
            Some("peer-token".into()),
            None,
            "test",
        );
        SesMailer {
            region: "eu-central-1".into(),
            endpoint,
            credentials: Some(SharedCredentialsProvider::new(creds)),
            http: Default::default(),
            from: "tickets@example.com".into(),
        }
    }

    #[test]
    fn the_regional_endpoint_or_the_one_named() {
        let mut m = mailer(None);
        assert_eq!(m.url(), "https://email.eu-central-1.amazonaws.com/v2/email/outbound-emails");
        m.region = "cn-north-1".into();
        assert_eq!(m.url(), "https://email.cn-north-1.amazonaws.com.cn/v2/email/outbound-emails");
        m.endpoint = Some("http://127.0.0.1:5000/".into());
        assert_eq!(m.url(), "http://127.0.0.1:5000/v2/email/outbound-emails");
    }

    #[test]
    fn prepare_makes_the_client_a_send_then_uses() {
        let m = mailer(None);
        assert!(m.http.get().is_none(), "nothing made before it is asked for");
        m.prepare();
        let made = m.http.get().expect("the client is made ahead") as *const reqwest::Client;
        assert_eq!(m.http() as *const reqwest::Client, made, "a send uses the one made ahead");
    }

    #[test]
    fn the_body_carries_the_raw_message_in_base64() {
        let body = send_email_body("from@example.com", "to@example.com", b"Subject: hi\r\n\r\nbody");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["FromEmailAddress"], "from@example.com");
        assert_eq!(v["Destination"]["ToAddresses"], serde_json::json!(["to@example.com"]));
        let data = v["Content"]["Raw"]["Data"].as_str().unwrap();
        let raw = base64::engine::general_purpose::STANDARD.decode(data).unwrap();
        assert_eq!(raw, b"Subject: hi\r\n\r\nbody");
        assert_eq!(error_type("MessageRejected:http://internal.amazon.com/coral/"), "MessageRejected");
    }

    /// What the peer does with one request.
    #[derive(Clone, Copy)]
    enum Reply {
        Status(u16),
        /// Reads the request and closes the connection without an answer.
        Hang,
    }

    /// A request as the peer read it.
    struct Seen {
        head: String,
        body: Vec<u8>,
    }

    /// An SES stand-in on a loopback port answering each request with the next reply (the
    /// last one again when they run out), one connection per request.
    async fn peer(replies: Vec<Reply>) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let mut n = 0;
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                let reply = replies[n.min(replies.len() - 1)];
                n += 1;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let k = sock.read(&mut chunk).await.unwrap_or(0);
                    if k == 0 {
                        break (String::new(), Vec::new());
                    }
                    buf.extend_from_slice(&chunk[..k]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break (head, buf[end + 4..end + 4 + len].to_vec());
                    }
                };
                log.lock().unwrap().push(Seen { head, body });
                let answer = match reply {
                    Reply::Hang => continue,
                    Reply::Status(200) => {
                        let body = r#"{"MessageId":"m-1"}"#;
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                    Reply::Status(code) => {
                        let body = r#"{"message":"Email address is not verified."}"#;
                        format!(
                            "HTTP/1.1 {code} Refused\r\nx-amzn-ErrorType: MessageRejected:http://internal.amazon.com/coral/\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                };
                let _ = sock.write_all(answer.as_bytes()).await;
            }
        });
        (url, seen)
    }

    fn email() -> Email {
        Email {
            id: "n-1".into(),
            to: "buyer@example.com".into(),
            subject: "Your tickets".into(),
            text: "text".into(),
            html: "<p>html</p>".into(),
            inline: Vec::new(),
        }
    }

    fn header<'a>(seen: &'a Seen, name: &str) -> &'a str {
        seen.head
            .lines()
            .find_map(|l| {
                l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
            })
            .unwrap_or_else(|| panic!("no {name} header in {}", seen.head))
    }

    /// The request is Signature Version 4 as AWS documents it, checked here from the spec with
    /// HMAC-SHA256 (not with the signer that made it): the canonical request, the string to
    /// sign, the derived key.
    fn assert_signed(seen: &Seen, port_host: &str) {
        use hmac::{Hmac, Mac};
        use sha2::{Digest, Sha256};
        let hmac = |key: &[u8], data: &str| {
            let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
            m.update(data.as_bytes());
            m.finalize().into_bytes().to_vec()
        };
        let auth = header(seen, "authorization");
        let date = header(seen, "x-amz-date");
        let day = &date[..8];
        let scope = format!("{day}/eu-central-1/ses/aws4_request");
        let signed = "content-type;host;x-amz-date;x-amz-security-token";
        assert!(
            auth.starts_with(&format!(
                "AWS4-HMAC-SHA256 Credential=AKIDPEER/{scope}, SignedHeaders={signed}, Signature="
            )),
            "{auth}"
        );
        assert_eq!(header(seen, "x-amz-security-token"), "peer-token");
        let canonical = format!(
            "POST\n/v2/email/outbound-emails\n\ncontent-type:application/json\nhost:{port_host}\nx-amz-date:{date}\nx-amz-security-token:peer-token\n\n{signed}\n{}",
            hex::encode(Sha256::digest(&seen.body))
        );
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let mut key = hmac(b"AWS4peer-secret", day);
        for part in ["eu-central-1", "ses", "aws4_request"] {
            key = hmac(&key, part);
        }
        let expected = hex::encode(hmac(&key, &to_sign));
        assert_eq!(auth.rsplit("Signature=").next(), Some(expected.as_str()));
    }

    #[tokio::test]
    async fn a_send_is_one_signed_request_with_the_message() {
        let (url, seen) = peer(vec![Reply::Status(200)]).await;
        let m = mailer(Some(url.clone()));
        m.send(&email()).await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(seen[0].head.starts_with("POST /v2/email/outbound-emails HTTP/1.1"), "{}", seen[0].head);
        assert_signed(&seen[0], url.trim_start_matches("http://"));
        let v: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
        assert_eq!(v["FromEmailAddress"], "tickets@example.com");
        assert_eq!(v["Destination"]["ToAddresses"], serde_json::json!(["buyer@example.com"]));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v["Content"]["Raw"]["Data"].as_str().unwrap())
            .unwrap();
        let raw = String::from_utf8(raw).unwrap();
        assert!(raw.contains("Subject: Your tickets"), "{raw}");
        assert!(raw.contains("To: <buyer@example.com>") || raw.contains("To: buyer@example.com"), "{raw}");
    }

    #[tokio::test]
    async fn a_refusal_is_not_sent_and_not_tried_again() {
        let (url, seen) = peer(vec![Reply::Status(400)]).await;
        let err = mailer(Some(url)).send(&email()).await.unwrap_err();
        assert!(
            matches!(&err, SendError::NotSent(why) if why.contains("MessageRejected") && why.contains("not verified")),
            "{err:?}"
        );
        assert_eq!(seen.lock().unwrap().len(), 1, "a refusal is final");
    }

    #[tokio::test]
    async fn throttling_and_server_errors_are_tried_again() {
        let (url, seen) = peer(vec![Reply::Status(429), Reply::Status(503), Reply::Status(200)]).await;
        mailer(Some(url.clone())).send(&email()).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 3);
        // Three attempts in all: a service failing on every one is not sent.
        let (url, seen) = peer(vec![Reply::Status(500)]).await;
        let err = mailer(Some(url)).send(&email()).await.unwrap_err();
        assert!(matches!(err, SendError::NotSent(_)), "{err:?}");
        assert_eq!(seen.lock().unwrap().len(), ATTEMPTS as usize);
    }

    #[tokio::test]
    async fn a_request_without_an_answer_may_have_been_sent_and_is_not_repeated() {
        let (url, seen) = peer(vec![Reply::Hang, Reply::Status(200)]).await;
        let err = mailer(Some(url)).send(&email()).await.unwrap_err();
        assert!(matches!(err, SendError::Unknown(_)), "{err:?}");
        assert_eq!(seen.lock().unwrap().len(), 1, "never sent twice");
    }

    #[tokio::test]
    async fn no_peer_listening_is_not_sent() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let err = mailer(Some(url)).send(&email()).await.unwrap_err();
        assert!(matches!(err, SendError::NotSent(ref why) if why.contains("unreachable")), "{err:?}");
    }
}
