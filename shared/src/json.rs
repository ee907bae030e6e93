//! A JSON object written straight into its answer's bytes, for the few answers that are made
//! many times a second and have a fixed shape (calc_commission's). serde_json writes every key
//! through its escaping loop and every struct through its map machinery, and axum's `Json`
//! grows a 128-byte buffer: for a small answer of ten money fields that was a fifth of the
//! call's own work. Keys are the program's own literals (letters, digits, `_`), written as
//! they are; strings are escaped by serde_json; money is written as [`crate::money`] writes it.

use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;

/// An object being written: `{` and the members so far.
pub struct Object(Vec<u8>);

impl Object {
    /// An empty object with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Object {
        let mut out = Vec::with_capacity(capacity);
        out.push(b'{');
        Object(out)
    }

    fn key(&mut self, key: &'static str) {
        debug_assert!(
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "a key written as it is: {key:?}"
        );
        // The first member of an object (or of an object within it) follows its `{`.
        if self.0.last() != Some(&b'{') {
            self.0.push(b',');
        }
        self.0.push(b'"');
        self.0.extend_from_slice(key.as_bytes());
        self.0.extend_from_slice(b"\":");
    }

    /// Money as a JSON number with two decimals (`money::number`).
    pub fn money(mut self, key: &'static str, v: Decimal) -> Object {
        self.key(key);
        crate::money::write_kopecks(v, &mut self.0);
        self
    }

    /// A decimal as a JSON number as written, normalized (`money::plain`).
    pub fn plain(mut self, key: &'static str, v: Decimal) -> Object {
        self.key(key);
        crate::money::write_plain(v, &mut self.0);
        self
    }

    /// A percent as text, normalized with its sign: `"4%"`, `"2.5%"` (as
    /// `deals::commission::describe` writes it). Digits and a point need no escaping.
    pub fn percent(mut self, key: &'static str, v: Decimal) -> Object {
        self.key(key);
        self.0.push(b'"');
        crate::money::write_plain(v, &mut self.0);
        self.0.extend_from_slice(b"%\"");
        self
    }

    /// A string, escaped.
    pub fn str(mut self, key: &'static str, v: &str) -> Object {
        self.key(key);
        // Writing into a `Vec` cannot fail, and a `str` is always a JSON string.
        let _ = serde_json::to_writer(&mut self.0, v);
        self
    }

    /// An object as a member, its members written by `members` in place (no buffer of its own
    /// to copy from).
    pub fn object(mut self, key: &'static str, members: impl FnOnce(Object) -> Object) -> Object {
        self.key(key);
        self.0.push(b'{');
        let mut out = members(self);
        out.0.push(b'}');
        out
    }

    /// The object's bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.0.push(b'}');
        self.0
    }
}

impl IntoResponse for Object {
    /// A 200 with the object, as axum's `Json` answers it.
    fn into_response(self) -> Response {
        let body = crate::http::fitted(self.finish());
        ([(CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    /// What the writer writes is what serde_json writes for the same members, escaping and
    /// money's text included.
    #[test]
    fn writes_what_serde_json_writes() {
        #[derive(serde::Serialize)]
        struct Inner {
            #[serde(with = "crate::money::number")]
            a: Decimal,
            b: Empty,
            #[serde(with = "crate::money::plain")]
            c: Decimal,
        }
        #[derive(serde::Serialize)]
        struct Empty {}
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
        for (cost, text, percent) in [
            (dec!(1000), "4%", dec!(2.40)),
            (dec!(-0.005), "quote \" back\\slash \n\u{1}\u{7f} é ✓", dec!(0)),
            (Decimal::MAX, "", dec!(-12.5000)),
        ] {
            let want = serde_json::to_vec(&Outer {
                cost,
                text: text.into(),
                percent,
                inner: Inner { a: cost, b: Empty {}, c: percent },
                last: dec!(0.1),
            })
            .unwrap();
            let got = Object::with_capacity(8)
                .money("cost", cost)
                .str("text", text)
                .plain("percent", percent)
                .object("inner", |o| o.money("a", cost).object("b", |o| o).plain("c", percent))
                .money("last", dec!(0.1))
                .finish();
            assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(want).unwrap());
        }
        assert_eq!(Object::with_capacity(0).finish(), b"{}");
        for p in [dec!(4), dec!(2.50), dec!(0.000), dec!(-1.25), dec!(100)] {
            let want = serde_json::to_vec(&serde_json::json!({ "d": crate::deals::commission::describe(p) }));
            assert_eq!(Object::with_capacity(0).percent("d", p).finish(), want.unwrap());
        }
    }
}
