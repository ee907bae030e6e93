//! The Robokassa payment link of `GET /orders/:id/payment_info` (seed 003):
//! `MrchLogin, OutSum, InvId, SignatureValue, shp*` with
//! `SignatureValue = hash(MrchLogin:OutSum:InvId:Password1[:shpKey=value, sorted by key])`.
//! The hash is md5 unless the shop is set to sha256 or sha512 (`ROBOKASSA_HASH`).

use md5::Digest;
use rust_decimal::Decimal;

use crate::money;

pub fn hash(algorithm: &str, text: &str) -> String {
    match algorithm {
        "sha256" => hex::encode(sha2::Sha256::digest(text.as_bytes())),
        "sha512" => hex::encode(sha2::Sha512::digest(text.as_bytes())),
        _ => hex::encode(md5::Md5::digest(text.as_bytes())),
    }
}

/// `login:OutSum:InvId:password[:shp...]` with the custom parameters sorted by name.
pub fn signature(
    algorithm: &str,
    login: &str,
    out_sum: Decimal,
    inv_id: i64,
    password: &str,
    shp: &[(&str, &str)],
) -> String {
    let mut shp = shp.to_vec();
    shp.sort_by_key(|(k, _)| k.to_ascii_lowercase());
    let mut text = format!("{login}:{}:{inv_id}:{password}", money::format(out_sum));
    for (k, v) in shp {
        text.push_str(&format!(":{k}={v}"));
    }
    hash(algorithm, &text)
}

pub struct LinkParams<'a> {
    pub base_url: &'a str,
    pub login: &'a str,
    pub password1: &'a str,
    pub algorithm: &'a str,
    pub out_sum: Decimal,
    pub inv_id: i64,
    pub description: &'a str,
    pub shp: Vec<(&'a str, String)>,
}

/// The signed payment page URL.
pub fn url(p: &LinkParams) -> String {
    let shp: Vec<(&str, &str)> = p.shp.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let sig = signature(p.algorithm, p.login, p.out_sum, p.inv_id, p.password1, &shp);
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("MrchLogin", p.login)
        .append_pair("OutSum", &money::format(p.out_sum))
        .append_pair("InvId", &p.inv_id.to_string())
        .append_pair("Desc", p.description)
        .append_pair("SignatureValue", &sig);
    for (k, v) in &shp {
        query.append_pair(k, v);
    }
    format!("{}?{}", p.base_url, query.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn signs_with_sorted_shp_parameters() {
        let expected =
            hash("md5", "safecrow-test:24.61:1858:pass1:shporder_id=1858:shpredirect_to=http://ruby.org");
        let sig = signature(
            "md5",
            "safecrow-test",
            dec!(24.61),
            1858,
            "pass1",
            &[("shpredirect_to", "http://ruby.org"), ("shporder_id", "1858")],
        );
        assert_eq!(sig, expected);
        assert_eq!(hash("md5", "abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(hash("sha256", "abc").len(), 64);
    }
}
