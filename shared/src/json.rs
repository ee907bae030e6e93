//! JSON written straight into its answer's bytes, for the few answers that are made many times
//! a second and have a fixed shape (calc_commission's): the answer is its literal text (keys,
//! braces, commas, as the program spells them) with the numbers written in between. serde_json
//! writes every key through its escaping loop and every struct through its map machinery, and
//! axum's `Json` grows a 128-byte buffer: for a small answer of ten money fields that was a
//! fifth of the call's own work. Money is written as [`crate::money`] writes it; a test checks
//! the text against serde_json's for the same members.

use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;

/// JSON text being written.
pub struct Text(Vec<u8>);

impl Text {
    /// Empty, with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Text {
        Text(Vec::with_capacity(capacity))
    }

    /// JSON text as it is: a literal of the program (`{"cost":`, `,"commission":`), never a
    /// value from outside, which would need escaping.
    #[inline]
    pub fn raw(mut self, text: &'static str) -> Text {
        self.0.extend_from_slice(text.as_bytes());
        self
    }

    /// Money as a JSON number with two decimals (`money::number`).
    #[inline]
    pub fn money(mut self, v: Decimal) -> Text {
        crate::money::write_kopecks(v, &mut self.0);
        self
    }

    /// A decimal as written, normalized (`money::plain`): `2.9`, `4`.
    #[inline]
    pub fn plain(mut self, v: Decimal) -> Text {
        crate::money::write_plain(v, &mut self.0);
        self
    }

    /// The text's bytes.
    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

impl IntoResponse for Text {
    /// A 200 with the text as JSON, as axum's `Json` answers it.
    fn into_response(self) -> Response {
        let body = crate::http::fitted(self.finish());
        ([(CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(serde::Serialize)]
    struct Inner {
        #[serde(with = "crate::money::number")]
        a: Decimal,
        #[serde(with = "crate::money::plain")]
        b: Decimal,
    }

    #[derive(serde::Serialize)]
    struct Outer {
        #[serde(with = "crate::money::number")]
        cost: Decimal,
        text: String,
        #[serde(with = "crate::money::plain")]
        percent: Decimal,
        inner: Inner,
        #[serde(with = "crate::money::number")]
        last: Decimal,
    }

    /// The text is serde_json's for the same members: money and plain decimals of every sign,
    /// size and scale, a percent as text, nested objects.
    #[test]
    fn writes_what_serde_json_writes() {
        let decimal = prop_oneof![
            (any::<i64>(), 0u32..=28).prop_map(|(m, s)| Decimal::new(m, s)),
            (any::<u32>(), any::<u32>(), any::<u32>(), any::<bool>(), 0u32..=28)
                .prop_map(|(lo, mid, hi, neg, s)| Decimal::from_parts(lo, mid, hi, neg, s)),
        ];
        proptest!(ProptestConfig::with_cases(5_000), |(cost in decimal.clone(), percent in decimal.clone(), a in decimal.clone(), b in decimal)| {
            let want = serde_json::to_vec(&Outer {
                cost,
                text: crate::deals::commission::describe(percent),
                percent,
                inner: Inner { a, b },
                last: cost,
            })
            .unwrap();
            let got = Text::with_capacity(8)
                .raw(r#"{"cost":"#)
                .money(cost)
                .raw(r#","text":""#)
                .plain(percent)
                .raw(r#"%","percent":"#)
                .plain(percent)
                .raw(r#","inner":{"a":"#)
                .money(a)
                .raw(r#","b":"#)
                .plain(b)
                .raw(r#"},"last":"#)
                .money(cost)
                .raw("}")
                .finish();
            prop_assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(want).unwrap());
        });
    }
}
