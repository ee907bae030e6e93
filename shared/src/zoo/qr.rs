//! QR codes for zoo tickets: PNG images (grayscale, 4 px per module, a 4-module quiet
//! zone) from the `qrcode` encoder, returned as `data:image/png;base64,...` URLs.
//!
//! Payload: `ZOOTICKET;<ticket_id>;<payment_id>;<visit_date>;<visit_time>;<ticket_type>;<kid>;<sig>`,
//! signed with the deployment's Ed25519 ticket key (see [`crate::ticket_keys`]): a gate holding
//! only the public key can tell a genuine ticket offline.

use base64::Engine;
use qrcode::{Color, QrCode};

use crate::error::{ApiError, ApiResult};

const SCALE: usize = 4;
const QUIET: usize = 4;

pub fn payload(key: &crate::ticket_keys::TicketKey, parts: &[&str]) -> String {
    let mut fields = vec![ZOO_TICKET];
    fields.extend_from_slice(parts);
    key.sign(&fields)
}

/// The first field of a zoo ticket's payload.
pub const ZOO_TICKET: &str = "ZOOTICKET";

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
