//! QR codes for zoo tickets: PNG images (grayscale, 4 px per module, a 4-module quiet
//! zone) from the `qrcode` encoder, returned as `data:image/png;base64,...` URLs.
//!
//! Payload: `ZOOTICKET;<ticket_id>;<payment_id>;<visit_date>;<visit_time>;<ticket_type>;<sig>`
//! where `sig` is the first 16 hex digits of HMAC-SHA256 over everything before it, keyed
//! by `JWT_SECRET`, so a gate scanner holding the key can tell a genuine ticket.

use base64::Engine;
use hmac::{Hmac, Mac};
use qrcode::{Color, QrCode};
use sha2::Sha256;

use crate::error::{ApiError, ApiResult};

const SCALE: usize = 4;
const QUIET: usize = 4;

pub fn payload(secret: &str, parts: &[&str]) -> String {
    let body = format!("ZOOTICKET;{}", parts.join(";"));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body.as_bytes());
    let sig = hex::encode(mac.finalize().into_bytes());
    format!("{body};{}", &sig[..16])
}

/// A PNG with the QR code of `data`.
pub fn png(data: &str) -> ApiResult<Vec<u8>> {
    let code = QrCode::new(data.as_bytes()).map_err(|e| ApiError::Internal(format!("qr: {e}")))?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == Color::Dark {
            let (mx, my) = (i % modules + QUIET, i / modules + QUIET);
            for dy in 0..SCALE {
                let row = (my * SCALE + dy) * side;
                pixels[row + mx * SCALE..row + mx * SCALE + SCALE].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, side as u32, side as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().map_err(|e| ApiError::Internal(format!("png: {e}")))?;
    w.write_image_data(&pixels).map_err(|e| ApiError::Internal(format!("png: {e}")))?;
    w.finish().map_err(|e| ApiError::Internal(format!("png: {e}")))?;
    Ok(out)
}

pub fn data_url(png: &[u8]) -> String {
    format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png))
}
