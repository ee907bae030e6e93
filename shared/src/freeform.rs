//! Limits on free-form client JSON (`client_data`, billing, shipping and payment details) that
//! is stored as native DynamoDB attributes, so such input is a 422 naming the field rather than
//! a write the table refuses (a 5xx) or an item that cannot be read back.
//!
//! DynamoDB numbers are 0 or between 1e-130 and 1e126 in magnitude; map keys must not be empty;
//! attributes nest at most 32 levels (the item itself is one); an item is at most 400 KB. A
//! free-form value here: numbers in that range, non-empty keys, at most [`MAX_DEPTH`] levels of
//! nesting and at most [`MAX_BYTES`] of JSON.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// Largest free-form value, bytes of compact JSON.
pub const MAX_BYTES: usize = 16 * 1024;
/// Deepest nesting of objects and arrays.
pub const MAX_DEPTH: usize = 16;

/// Checks one free-form value; `field` names it in the error.
pub fn check(field: &str, value: &Value) -> ApiResult<()> {
    let size = serde_json::to_vec(value).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_BYTES {
        return Err(ApiError::invalid(field, format!("at most {MAX_BYTES} bytes of JSON")));
    }
    walk(field, value, 0)
}

fn walk(field: &str, value: &Value, depth: usize) -> ApiResult<()> {
    if depth >= MAX_DEPTH && (value.is_array() || value.is_object()) {
        return Err(ApiError::invalid(field, format!("at most {MAX_DEPTH} levels of nesting")));
    }
    match value {
        Value::Number(n) => {
            let magnitude = n.as_f64().map(f64::abs).unwrap_or(f64::INFINITY);
            if magnitude != 0.0 && !(1e-130..1e126).contains(&magnitude) {
                return Err(ApiError::invalid(
                    field,
                    "numbers must be 0 or between 1e-130 and 1e126 in magnitude",
                ));
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|v| walk(field, v, depth + 1)),
        Value::Object(map) => {
            if map.keys().any(String::is_empty) {
                return Err(ApiError::invalid(field, "keys must not be empty"));
            }
            map.values().try_for_each(|v| walk(field, v, depth + 1))
        }
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_ordinary_details_and_rejects_what_the_table_cannot_hold() {
        assert!(
            check("f", &json!({"inn": "7707083893", "bik": 44525225, "rate": 0.5, "tags": [1, null, true]}))
                .is_ok()
        );
        assert!(check("f", &json!({"zero": 0, "small": 1e-129, "big": -9.9e125})).is_ok());
        for bad in [json!({"a": 1e300}), json!({"a": [2.2e-200]}), json!({"": 1}), json!({"a": {"": null}})] {
            let e = check("order.shipping_info", &bad).unwrap_err();
            assert_eq!((e.status().as_u16(), e.field()), (422, Some("order.shipping_info")), "{bad}");
        }
        let mut deep = json!(1);
        for _ in 0..MAX_DEPTH {
            deep = json!([deep]);
        }
        assert!(check("f", &deep).is_ok());
        assert!(check("f", &json!([deep])).is_err());
        assert!(check("f", &json!({"a": "x".repeat(MAX_BYTES)})).is_err());
    }
}
