//! Ticket bar codes (EAN-13) and their QR images (SVG).

use qrcode::{Color, QrCode};
use rand::Rng;

/// The EAN-13 check digit of 12 digits.
pub fn check_digit(digits: &[u8; 12]) -> u8 {
    let sum: u32 =
        digits.iter().enumerate().map(|(i, d)| u32::from(*d) * if i % 2 == 0 { 1 } else { 3 }).sum();
    ((10 - sum % 10) % 10) as u8
}

/// A new random bar code: `2` (the in-store range), 11 random digits and the check digit.
pub fn new_bar_code() -> String {
    let mut rng = rand::rng();
    let mut digits = [0u8; 12];
    digits[0] = 2;
    for d in digits.iter_mut().skip(1) {
        *d = rng.random_range(0..10);
    }
    let check = check_digit(&digits);
    digits.iter().chain(std::iter::once(&check)).map(|d| char::from(b'0' + d)).collect()
}

/// 13 digits with a correct check digit.
pub fn is_valid(code: &str) -> bool {
    let bytes = code.as_bytes();
    if bytes.len() != 13 || !bytes.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut digits = [0u8; 12];
    for (d, b) in digits.iter_mut().zip(bytes) {
        *d = b - b'0';
    }
    check_digit(&digits) == bytes[12] - b'0'
}

/// Quiet zone around the code, in modules.
const QUIET: usize = 4;

/// The QR code of `data` as an SVG image: one path, one `M{x} {y}h1v1h-1z` square per
/// dark module, in module units with a quiet zone of 4.
pub fn qr_svg(data: &str) -> String {
    // A bar code (13 digits) always fits; an encoding error can only come from data far
    // larger than any ticket carries.
    let code = match QrCode::new(data.as_bytes()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "qr encoding failed");
            return String::new();
        }
    };
    let width = code.width();
    let size = width + 2 * QUIET;
    let mut path = String::new();
    for (i, color) in code.to_colors().into_iter().enumerate() {
        if color == Color::Dark {
            path.push_str(&format!("M{} {}h1v1h-1z", i % width + QUIET, i / width + QUIET));
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" width=\"{px}\" height=\"{px}\" \
         shape-rendering=\"crispEdges\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/>\
         <path fill=\"#000\" d=\"{path}\"/></svg>",
        px = size * 8
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_codes_are_valid_ean13() {
        assert_eq!(check_digit(&[4, 0, 0, 6, 3, 8, 1, 3, 3, 3, 9, 3]), 1);
        assert!(is_valid("4006381333931"));
        assert!(!is_valid("4006381333932"));
        assert!(!is_valid("400638133393"));
        for _ in 0..100 {
            let code = new_bar_code();
            assert!(is_valid(&code), "{code}");
            assert!(code.starts_with('2'));
        }
    }
}
