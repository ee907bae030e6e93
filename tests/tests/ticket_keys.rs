//! Tickets' QR payloads are signed with the ticket key (Ed25519) and verified offline with the
//! public key alone: by a script outside the Rust code (Python `cryptography`), as a gate
//! scanner would.

use api_tests::emails::zoo_tickets;
use api_tests::{TestServer, decode_qr_data_url, venv_python};
use serde_json::Value;

/// Runs `scripts/verify-ticket.py` on the payloads with the key set `jwks`: its exit code and
/// one parsed line per payload.
fn verify_offline(jwks: &Value, payloads: &[String]) -> Option<(i32, Vec<Value>)> {
    let python = venv_python()?;
    let dir = std::env::temp_dir().join(format!("ticket-keys-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("ticket-keys.json");
    std::fs::write(&keys, jwks.to_string()).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/verify-ticket.py");
    let out = std::process::Command::new(python).arg(script).arg(&keys).args(payloads).output().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let lines =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    Some((out.status.code().unwrap(), lines))
}

#[tokio::test]
async fn zoo_qr_payloads_verify_offline_with_the_public_key_alone() {
    let srv = TestServer::memory().await;
    let (_, session) = zoo_tickets(&srv).await;
    let res = srv.http.get(srv.url(shared::ticket_keys::WELL_KNOWN_PATH)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "public, max-age=3600");
    let jwks: Value = res.json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str(), key["alg"].as_str()),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    // The public key only: nothing of the secret (or of the JWT secret) is served.
    assert_eq!(key.as_object().unwrap().len(), 6, "{key}");
    assert!(key.get("d").is_none());

    let tickets = session["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 3);
    // What a scanner reads: the QR images' text.
    let payloads: Vec<String> =
        tickets.iter().map(|t| decode_qr_data_url(t["qr_code"].as_str().unwrap())).collect();
    let Some((code, lines)) = verify_offline(&jwks, &payloads) else { return };
    assert_eq!(code, 0, "{lines:?}");
    let id = session["payment_id"].as_str().unwrap();
    assert_eq!(lines[0]["fields"][0], "ZOOTICKET");
    assert_eq!(lines[0]["fields"][1], format!("{id}-1"));
    assert_eq!(lines[0]["fields"][2], id);
    assert_eq!(lines[2]["fields"][5], "child");

    // A forger who changes a field (an adult's ticket for a child's), signs with another key,
    // or cuts the signature is refused; the genuine one next to them still passes.
    let swapped = payloads[2].replace(";child;", ";adult;");
    let other = shared::ticket_keys::TicketKey::from_secret("a forger's own key, strong as you like.....")
        .sign(&["ZOOTICKET", &format!("{id}-9"), id, "2030-01-01", "10:00", "adult"]);
    let cut = payloads[0][..payloads[0].len() - 4].to_owned();
    let (code, lines) = verify_offline(&jwks, &[swapped, other, cut, payloads[0].clone()]).unwrap();
    assert_eq!(code, 1);
    let valid: Vec<bool> = lines.iter().map(|l| l["valid"].as_bool().unwrap()).collect();
    assert_eq!(valid, [false, false, false, true]);
}
