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

/// Test support for the adapters: an in-process HTTP peer that plays a gateway, and payments
/// in an in-memory store.
#[cfg(test)]
pub(crate) mod test_support {
    use std::time::Duration;

    use rust_decimal::Decimal;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use crate::App;
    use crate::payments::gateway::{Fields, parse_form};
    use crate::payments::{GatewayKind, OwnerRef, Payment};

    /// A request the peer received.
    pub struct Request {
        /// The request line and headers.
        pub head: String,
        pub body: String,
    }

    impl Request {
        /// The request line's method and target, e.g. `GET /x?y=1`.
        pub fn line(&self) -> &str {
            let line = self.head.lines().next().unwrap_or("");
            line.rsplit_once(' ').map_or(line, |(l, _)| l)
        }

        /// The query of the request target.
        pub fn query(&self) -> Fields {
            let target = self.line().split(' ').nth(1).unwrap_or("");
            parse_form(target.split_once('?').map_or("", |(_, q)| q).as_bytes())
        }

        /// The body as a form.
        pub fn form(&self) -> Fields {
            parse_form(self.body.as_bytes())
        }
    }

    /// A peer answering one connection per answer, in turn (`200`, `Connection: close`).
    pub struct Peer {
        pub url: String,
        task: tokio::task::JoinHandle<Vec<Request>>,
    }

    impl Peer {
        pub async fn start(answers: &[&str]) -> Peer {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a local port");
            let url = format!("http://{}", listener.local_addr().expect("local address"));
            let answers: Vec<String> = answers.iter().map(|a| a.to_string()).collect();
            let task = tokio::spawn(async move {
                let mut seen = Vec::new();
                for answer in answers {
                    let (mut sock, _) = listener.accept().await.expect("accept");
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let mut wanted = None;
                    while wanted.is_none_or(|n| buf.len() < n) {
                        let n = sock.read(&mut chunk).await.expect("read the request");
                        assert!(n > 0, "the client closed the connection mid-request");
                        buf.extend_from_slice(&chunk[..n]);
                        if wanted.is_none()
                            && let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n")
                        {
                            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .map_or(0, |v| v.trim().parse::<usize>().expect("content-length"));
                            wanted = Some(end + 4 + len);
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0);
                    seen.push(Request {
                        head: String::from_utf8_lossy(&buf[..end]).into_owned(),
                        body: String::from_utf8_lossy(&buf[end + 4..]).into_owned(),
                    });
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    sock.write_all(reply.as_bytes()).await.expect("write the answer");
                    let _ = sock.shutdown().await;
                }
                seen
            });
            Peer { url, task }
        }

        /// The requests received, once every answer was given.
        pub async fn requests(self) -> Vec<Request> {
            tokio::time::timeout(Duration::from_secs(10), self.task)
                .await
                .expect("the adapter made fewer requests than expected")
                .expect("the peer failed")
        }
    }

    /// An in-memory app with the test configuration.
    pub fn app() -> App {
        App::in_memory(crate::config::Config::for_tests())
    }

    /// A pending payment, stored (with its invoice-number lookup).
    pub async fn stored_payment(
        app: &App,
        id: &str,
        inv_id: i64,
        gateway: GatewayKind,
        amount: Decimal,
    ) -> Payment {
        let p = Payment::new(
            app,
            id.into(),
            inv_id,
            "1".into(),
            OwnerRef::new("test", 1),
            gateway,
            amount,
            "Test".into(),
        );
        app.store.transact(crate::payments::create_ops(&p).expect("payment item")).await.expect("store");
        p
    }
}
