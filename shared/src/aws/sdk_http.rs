//! The AWS SDK's HTTP client, on reqwest: the one HTTP client of every function (the gateway
//! client, webhooks and SES already use it), instead of the SDK's own hyper client, which
//! brings HTTP/2 (`h2`), a second connection pool and a second rustls integration into every
//! binary for calls that speak HTTP/1.1 (measured: 0.9 MB of every x86 function binary, 1.2 MB
//! of `deals`).
//!
//! It does what the SDK's client does for DynamoDB, SQS and Parameter Store: the connect
//! timeout of the configuration (and a read timeout when one is set), one connection pool per
//! process, and errors classified as the SDK's retry strategy expects them: a timeout as a
//! timeout, a connection refused or dropped as an I/O error (both retried by the standard
//! strategy, as the SDK's own client has them), anything else as not retryable.

use std::error::Error as StdError;
use std::sync::Mutex;
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use axum::http;

use super::Trust;

/// The SDK's [`HttpClient`]: one reqwest client per connector setting (the configuration has
/// one), made when the SDK first asks for it.
#[derive(Debug)]
pub struct ReqwestHttpClient {
    trust: Trust,
    /// The connectors made so far, by their (connect, read) timeouts.
    made: Mutex<Vec<(Timeouts, SharedHttpConnector)>>,
}

type Timeouts = (Option<Duration>, Option<Duration>);

impl ReqwestHttpClient {
    pub fn new(trust: Trust) -> Self {
        ReqwestHttpClient { trust, made: Mutex::new(Vec::new()) }
    }
}

impl HttpClient for ReqwestHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, c)) = made.iter().find(|(k, _)| *k == key) {
            return c.clone();
        }
        let connector = SharedHttpConnector::new(ReqwestConnector { http: client(self.trust, key.0, key.1) });
        made.push((key, connector.clone()));
        connector
    }
}

/// The SDK's reqwest client for one connector setting.
fn client(trust: Trust, connect: Option<Duration>, read: Option<Duration>) -> reqwest::Client {
    let mut b = trusting(trust);
    if let Some(t) = connect {
        b = b.connect_timeout(t);
    }
    if let Some(t) = read {
        b = b.read_timeout(t);
    }
    b.build().unwrap_or_else(|_| reqwest::Client::new())
}

/// A reqwest client for AWS APIs: trusting `trust`'s roots (AWS's five built-in ones, or the
/// system's for a peer named by hand), and following no redirect (AWS's APIs answer none).
pub fn trusting(trust: Trust) -> reqwest::ClientBuilder {
    let mut b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if trust == Trust::Amazon {
        b = b.tls_built_in_root_certs(false);
        for cert in reqwest::Certificate::from_pem_bundle(super::AMAZON_ROOTS).unwrap_or_default() {
            b = b.add_root_certificate(cert);
        }
    }
    b
}

#[derive(Debug)]
struct ReqwestConnector {
    /// One pool, shared by the connector's clones.
    http: reqwest::Client,
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let http = self.http.clone();
        HttpConnectorFuture::new(async move { send(&http, request).await })
    }
}

async fn send(http: &reqwest::Client, request: HttpRequest) -> Result<HttpResponse, ConnectorError> {
    let request = request.try_into_http1x().map_err(|e| ConnectorError::user(e.into()))?;
    let (parts, body) = request.into_parts();
    // Read through the body's stream (not its bytes at once), as hyper reads it: the SDK's
    // stalled-stream protection wraps it and takes a body never read for a stalled upload,
    // failing a call whose answer takes more than a few seconds.
    let body = http_body_util::BodyExt::collect(body).await.map_err(ConnectorError::user)?.to_bytes();
    let req = reqwest::Request::try_from(http::Request::from_parts(parts, body))
        .map_err(|e| ConnectorError::user(e.into()))?;
    let res = http.execute(req).await.map_err(classify)?;
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.map_err(classify)?;
    let mut answer = http::Response::new(SdkBody::from(bytes));
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    HttpResponse::try_from(answer).map_err(|e| ConnectorError::other(e.into(), None))
}

/// As the SDK's own client classifies hyper's errors: timeouts, then what never connected or
/// lost its connection (I/O), then an answer cut short (transient); anything else is not
/// retried.
fn classify(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        return ConnectorError::timeout(e.into());
    }
    if e.is_connect() || source::<std::io::Error>(&e).is_some() {
        return ConnectorError::io(e.into());
    }
    if let Some(h) = source::<hyper::Error>(&e) {
        if h.is_closed() || h.is_canceled() {
            return ConnectorError::io(e.into());
        }
        if h.is_incomplete_message() {
            return ConnectorError::other(e.into(), Some(ErrorKind::TransientError));
        }
    }
    ConnectorError::other(e.into(), None)
}

fn source<'a, E: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    let mut at = Some(e);
    while let Some(err) = at {
        if let Some(found) = err.downcast_ref::<E>() {
            return Some(found);
        }
        at = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_dynamodb::error::SdkError;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use std::sync::Arc;

    use super::*;

    /// What the peer does with each request it reads.
    #[derive(Clone, Copy)]
    enum Then {
        Answer,
        /// Answers after this long.
        Slow(Duration),
        Hang,
        Close,
    }

    /// A loopback peer: reads each request whole (head and `content-length` body), keeps it,
    /// and answers DynamoDB's `ListTables`, never answers, or closes the connection.
    async fn peer(then: Then) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (s, c, conns) = (seen.clone(), count.clone(), connections.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                conns.fetch_add(1, Ordering::SeqCst);
                let (s, c) = (s.clone(), c.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        let Some(end) = text.find("\r\n\r\n") else { continue };
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_owned)
                            })
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() < end + 4 + len {
                            continue;
                        }
                        s.lock().unwrap().push(text);
                        c.fetch_add(1, Ordering::SeqCst);
                        buf.clear();
                        if let Then::Slow(wait) = then {
                            tokio::time::sleep(wait).await;
                        }
                        match then {
                            Then::Answer | Then::Slow(_) => {
                                let body = r#"{"TableNames":["deals"]}"#;
                                let head = format!(
                                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n",
                                    body.len()
                                );
                                let _ = sock.write_all(format!("{head}{body}").as_bytes()).await;
                            }
                            Then::Hang => tokio::time::sleep(Duration::from_secs(30)).await,
                            Then::Close => return,
                        }
                    }
                });
            }
        });
        Peer { url, seen, count, connections }
    }

    struct Peer {
        url: String,
        /// Each request as read (head and body).
        seen: Arc<Mutex<Vec<String>>>,
        /// Requests read whole.
        count: Arc<AtomicUsize>,
        /// Connections accepted.
        connections: Arc<AtomicUsize>,
    }

    /// A DynamoDB client on this adapter with the standard retries (three attempts), and a
    /// read timeout of 300 ms.
    fn dynamo(url: &str) -> aws_sdk_dynamodb::Client {
        dynamo_reading(url, Some(Duration::from_millis(300)))
    }

    /// The same with this read timeout, or none.
    fn dynamo_reading(url: &str, read: Option<Duration>) -> aws_sdk_dynamodb::Client {
        let mut timeouts = aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_millis(500));
        timeouts.set_read_timeout(read);
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-central-1"))
            .http_client(crate::aws::https_trusting(Trust::Amazon))
            .endpoint_url(url)
            .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::standard())
            .timeout_config(timeouts.build())
            .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    #[tokio::test]
    async fn a_request_arrives_signed_whole_and_its_answer_is_read() {
        let Peer { url, seen, count, .. } = peer(Then::Answer).await;
        let tables = dynamo(&url).list_tables().limit(7).send().await.expect("an answer");
        assert_eq!(tables.table_names(), ["deals"]);
        assert_eq!(count.load(Ordering::SeqCst), 1);
        let req = seen.lock().unwrap()[0].clone();
        let lower = req.to_ascii_lowercase();
        assert!(req.starts_with("POST / HTTP/1.1\r\n"), "{req}");
        assert!(lower.contains("x-amz-target: dynamodb_20120810.listtables\r\n"), "{req}");
        assert!(lower.contains("authorization: aws4-hmac-sha256 credential=akid/"), "{req}");
        assert!(req.ends_with("\r\n\r\n{\"Limit\":7}"), "the JSON body as the SDK wrote it: {req}");
        assert_signed(&req, "secret", "eu-central-1", "dynamodb");
    }

    /// The Signature Version 4 that AWS will check holds over the request as it arrived
    /// (recomputed from the spec with HMAC-SHA256, over the headers it names as received and
    /// the body as received): nothing the SDK signed was changed or dropped on the way.
    fn assert_signed(raw: &str, secret: &str, region: &str, service: &str) {
        use hmac::{Hmac, Mac};
        use sha2::{Digest, Sha256};
        let hmac = |key: &[u8], data: &str| {
            let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
            m.update(data.as_bytes());
            m.finalize().into_bytes().to_vec()
        };
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let mut lines = head.split("\r\n");
        let mut start = lines.next().unwrap().split(' ');
        let (method, target) = (start.next().unwrap(), start.next().unwrap());
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let headers: Vec<(String, String)> = lines
            .map(|l| l.split_once(':').unwrap())
            .map(|(n, v)| (n.to_ascii_lowercase(), v.split_whitespace().collect::<Vec<_>>().join(" ")))
            .collect();
        let value = |name: &str| {
            let found: Vec<&str> =
                headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect();
            assert!(!found.is_empty(), "no {name} header in {head}");
            found.join(",")
        };
        let auth = value("authorization");
        let (cred, rest) =
            auth.strip_prefix("AWS4-HMAC-SHA256 Credential=").unwrap().split_once(", ").unwrap();
        let (signed, sig) = rest.strip_prefix("SignedHeaders=").unwrap().split_once(", Signature=").unwrap();
        let date = value("x-amz-date");
        let day = &date[..8];
        let scope = format!("{day}/{region}/{service}/aws4_request");
        assert_eq!(cred, format!("AKID/{scope}"));
        for must in ["host", "x-amz-date", "x-amz-target", "content-type"] {
            assert!(signed.split(';').any(|h| h == must), "{must} is signed: {signed}");
        }
        let canonical_headers: String = signed.split(';').map(|h| format!("{h}:{}\n", value(h))).collect();
        let canonical = format!(
            "{method}\n{path}\n{query}\n{canonical_headers}\n{signed}\n{}",
            hex::encode(Sha256::digest(body.as_bytes()))
        );
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let mut key = hmac(format!("AWS4{secret}").as_bytes(), day);
        for part in [region, service, "aws4_request"] {
            key = hmac(&key, part);
        }
        assert_eq!(sig, hex::encode(hmac(&key, &to_sign)), "the signature over what arrived: {raw}");
    }

    #[tokio::test]
    async fn an_answer_that_never_comes_is_a_timeout_and_is_tried_again() {
        let Peer { url, count, .. } = peer(Then::Hang).await;
        let err = dynamo(&url).list_tables().send().await.expect_err("no answer");
        let SdkError::DispatchFailure(f) = &err else { panic!("{err:?}") };
        assert!(f.is_timeout(), "{err:?}");
        assert_eq!(count.load(Ordering::SeqCst), 3, "the standard strategy's three attempts");
    }

    #[tokio::test]
    async fn a_dropped_connection_is_io_and_is_tried_again() {
        let Peer { url, count, .. } = peer(Then::Close).await;
        let err = dynamo(&url).list_tables().send().await.expect_err("no answer");
        let SdkError::DispatchFailure(f) = &err else { panic!("{err:?}") };
        assert!(f.is_io() || f.as_other() == Some(ErrorKind::TransientError), "{err:?}");
        assert_eq!(count.load(Ordering::SeqCst), 3, "the standard strategy's three attempts");
    }

    #[tokio::test]
    async fn a_refused_connection_is_io() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let err = dynamo(&url).list_tables().send().await.expect_err("nobody listens");
        let SdkError::DispatchFailure(f) = &err else { panic!("{err:?}") };
        assert!(f.is_io(), "{err:?}");
    }

    /// The SDK's stalled-stream protection watches the request body being read: a connector
    /// that never reads it through the body's stream would have a slow answer (a busy service)
    /// taken for a stalled upload and the call failed as a timeout, and retried.
    #[tokio::test]
    async fn a_slow_answer_is_waited_for() {
        let Peer { url, count, .. } = peer(Then::Slow(Duration::from_secs(SLOW))).await;
        let tables = dynamo_reading(&url, None).list_tables().limit(1).send().await.expect("the slow answer");
        assert_eq!(tables.table_names(), ["deals"]);
        assert_eq!(count.load(Ordering::SeqCst), 1, "sent once");
    }
    const SLOW: u64 = 7;

    #[tokio::test]
    async fn calls_share_one_connection() {
        let Peer { url, count, connections, .. } = peer(Then::Answer).await;
        let client = dynamo(&url);
        client.list_tables().send().await.expect("an answer");
        client.list_tables().send().await.expect("an answer");
        assert_eq!(count.load(Ordering::SeqCst), 2);
        assert_eq!(connections.load(Ordering::SeqCst), 1, "the second call on the first one's connection");
    }

    /// A certificate for 127.0.0.1 from no public authority (self-signed, for this test only).
    const PEER_CERT: &str = r"
-----BEGIN CERTIFICATE-----
MIIBrjCCAVSgAwIBAgIUFCArJuD4Ef9CtxP9gNJFcw+qF78wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwNjExMTQ1M1oYDzIxMjYxMTEy
MTExNDUzWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQ8vBV0GxgtrfDwT/Yo2bDBfbWq/lD0ZV9N1O2Wx9gkZgVEqgRWbIn+
c2i/4B88sC+aF6g4Obzec8kEHNZuvadDo4GBMH8wHQYDVR0OBBYEFBYScfRN1cl9
VQ8TyK9Jala+lACfMB8GA1UdIwQYMBaAFBYScfRN1cl9VQ8TyK9Jala+lACfMBoG
A1UdEQQTMBGHBH8AAAGCCWxvY2FsaG9zdDAMBgNVHRMBAf8EAjAAMBMGA1UdJQQM
MAoGCCsGAQUFBwMBMAoGCCqGSM49BAMCA0gAMEUCIQCSUvhlP6Y0JbcIhlJcVpU4
V/CNH/+LL7PFg/sFe1ajJAIgNKXJE7HaXWNQtVfpWM1xUsQ5QHkN7VFWm5Ox+ljU
j08=
-----END CERTIFICATE-----
";
    const PEER_KEY: &str = r"
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgG9bkGP96dlhLfc91
sxnJHrF7LaUtbx7/jtoK96SDCPehRANCAAQ8vBV0GxgtrfDwT/Yo2bDBfbWq/lD0
ZV9N1O2Wx9gkZgVEqgRWbIn+c2i/4B88sC+aF6g4Obzec8kEHNZuvadD
-----END PRIVATE KEY-----
";

    /// An HTTPS peer with [`PEER_CERT`]: counts finished handshakes and answers `ListTables`.
    async fn tls_peer() -> (String, Arc<AtomicUsize>) {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let cert = CertificateDer::from_pem_slice(PEER_CERT.as_bytes()).unwrap();
        let key = PrivateKeyDer::from_pem_slice(PEER_KEY.as_bytes()).unwrap();
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let handshakes = Arc::new(AtomicUsize::new(0));
        let done = handshakes.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (acceptor, done) = (acceptor.clone(), done.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(sock).await else { return };
                    done.fetch_add(1, Ordering::SeqCst);
                    let mut chunk = [0u8; 4096];
                    let _ = tls.read(&mut chunk).await;
                    let body = r#"{"TableNames":["deals"]}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        (url, handshakes)
    }

    /// An AWS API is trusted on Amazon's roots only: a peer whose certificate chains to none of
    /// them is refused in the handshake, before any request is sent. The same peer is
    /// accepted by a client that trusts its certificate (it is the trust that refuses, not a
    /// broken peer).
    #[tokio::test]
    async fn an_aws_api_with_a_certificate_from_another_authority_is_refused() {
        let (url, handshakes) = tls_peer().await;
        let trusting_it = trusting(Trust::Amazon)
            .add_root_certificate(reqwest::Certificate::from_pem(PEER_CERT.as_bytes()).unwrap())
            .build()
            .unwrap();
        let answer =
            trusting_it.post(&url).body("{}").send().await.expect("a client that trusts it connects");
        assert_eq!(answer.status(), 200);
        assert_eq!(handshakes.load(Ordering::SeqCst), 1);

        let err = dynamo(&url).list_tables().send().await.expect_err("refused");
        let SdkError::DispatchFailure(f) = &err else { panic!("{err:?}") };
        let text = format!("{:?}", aws_smithy_types::error::display::DisplayErrorContext(&err));
        assert!(f.is_io() || f.is_other(), "{text}");
        assert!(
            text.contains("UnknownIssuer") || text.contains("certificate"),
            "a certificate error: {text}"
        );
        assert_eq!(handshakes.load(Ordering::SeqCst), 1, "no handshake finished with the SDK's client");
    }
}
