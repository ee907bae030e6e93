//! Instants as RFC 3339 text, written and read without `chrono`'s formatting machinery.
//!
//! Every stored item and every answer carries its instants as text
//! (`2026-12-04T23:10:45.123Z`), and `chrono`'s own serde goes through `core::fmt` for each one:
//! under load that was about 6% of a seat hold's time and 4% of a deal read's. The fields use
//! `#[serde(with = "crate::time::utc")]` (`utc_opt` for an `Option`, with `default`), which
//! write exactly what `chrono` writes (the shortest of 0, 3, 6 or 9 fraction digits, and `Z`)
//! and read that form directly; anything else (an offset, a leap second, a year past 9999) goes
//! to `chrono` as before, so what is accepted and what an error says do not change.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

/// The longest form written here: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
const MAX_LEN: usize = 30;

/// Writes `t` as `chrono` serializes a `DateTime<Utc>` into `buf`, returning the length; `None`
/// for what this does not write (a year outside 0-9999, a leap second).
fn write(t: &DateTime<Utc>, buf: &mut [u8; MAX_LEN]) -> Option<usize> {
    use chrono::{Datelike, Timelike};
    let (year, nanos) = (t.year(), t.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return None;
    }
    let put = |buf: &mut [u8; MAX_LEN], at: usize, value: u32, digits: usize| {
        let mut v = value;
        for i in (0..digits).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(buf, 0, year as u32, 4);
    buf[4] = b'-';
    put(buf, 5, t.month(), 2);
    buf[7] = b'-';
    put(buf, 8, t.day(), 2);
    buf[10] = b'T';
    put(buf, 11, t.hour(), 2);
    buf[13] = b':';
    put(buf, 14, t.minute(), 2);
    buf[16] = b':';
    put(buf, 17, t.second(), 2);
    let mut len = 19;
    let (value, digits) = if nanos == 0 {
        (0, 0)
    } else if nanos % 1_000_000 == 0 {
        (nanos / 1_000_000, 3)
    } else if nanos % 1_000 == 0 {
        (nanos / 1_000, 6)
    } else {
        (nanos, 9)
    };
    if digits > 0 {
        buf[len] = b'.';
        put(buf, len + 1, value, digits);
        len += 1 + digits;
    }
    buf[len] = b'Z';
    Some(len + 1)
}

/// `t` to the second, as `chrono`'s `to_rfc3339_opts(SecondsFormat::Secs, true)` writes it
/// (`2026-12-05T06:20:21Z`), without its formatting machinery.
pub fn seconds(t: DateTime<Utc>) -> String {
    use chrono::Timelike;
    let whole = t.with_nanosecond(0).unwrap_or(t);
    let mut buf = [0u8; MAX_LEN];
    match write(&whole, &mut buf).and_then(|len| std::str::from_utf8(&buf[..len]).ok()) {
        Some(text) if whole.nanosecond() == 0 => text.to_owned(),
        _ => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`, the form [`write`] writes; `None` for anything else.
fn read(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > MAX_LEN || b[b.len() - 1] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if seps.iter().any(|&(i, c)| b[i] != c) {
        return None;
    }
    let nanos = match b.len() {
        20 => 0,
        n if n >= 22 && b[19] == b'.' => num(20, n - 1)? * 10u32.pow(9 - (n - 21) as u32),
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 7)?, num(8, 10)?)?;
    // A second of 60 (a leap second) is refused here and read by chrono.
    let time = NaiveTime::from_hms_nano_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?, nanos)?;
    Some(date.and_time(time).and_utc())
}

/// `chrono`'s reading of an instant: RFC 3339 with any offset, taken to UTC.
fn read_any<E: de::Error>(s: &str) -> Result<DateTime<Utc>, E> {
    match read(s) {
        Some(t) => Ok(t),
        None => s.parse::<DateTime<FixedOffset>>().map(|t| t.with_timezone(&Utc)).map_err(E::custom),
    }
}

struct InstantVisitor;

impl Visitor<'_> for InstantVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an RFC 3339 formatted date and time string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        read_any(s)
    }
}

/// A `DateTime<Utc>` field.
pub mod utc {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; MAX_LEN];
        match write(t, &mut buf) {
            Some(n) => s.serialize_str(std::str::from_utf8(&buf[..n]).map_err(serde::ser::Error::custom)?),
            None => t.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        d.deserialize_str(InstantVisitor)
    }
}

/// An `Option<DateTime<Utc>>` field (`null` for none); give the field `default` as well, so
/// that a missing field is `None`, as it is without `with`.
pub mod utc_opt {
    use super::*;

    struct Instant<'a>(&'a DateTime<Utc>);

    impl Serialize for Instant<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            utc::serialize(self.0, s)
        }
    }

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&Instant(t)),
            None => s.serialize_none(),
        }
    }

    struct OptVisitor;

    impl<'de> Visitor<'de> for OptVisitor {
        type Value = Option<DateTime<Utc>>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an RFC 3339 formatted date and time string or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            utc::deserialize(d).map(Some)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        d.deserialize_option(OptVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Fast {
        #[serde(with = "utc")]
        at: DateTime<Utc>,
        #[serde(default, with = "utc_opt")]
        maybe: Option<DateTime<Utc>>,
    }

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Chrono {
        at: DateTime<Utc>,
        maybe: Option<DateTime<Utc>>,
    }

    fn instant(secs: i64, nanos: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, nanos).expect("in range")
    }

    proptest! {
        /// Byte for byte what chrono writes, and read back to the same instant, for every
        /// fraction width (whole seconds, milli, micro, nano).
        #[test]
        fn writes_and_reads_as_chrono_does(
            secs in -62_135_596_800i64..253_402_300_799,
            nanos in prop_oneof![Just(0u32), (0u32..1000).prop_map(|m| m * 1_000_000),
                                 (0u32..1_000_000).prop_map(|u| u * 1_000),
                                 (0u32..10_000_000).prop_map(|h| h * 100), 0u32..1_000_000_000],
            some in any::<bool>(),
        ) {
            let t = instant(secs, nanos);
            let maybe = some.then_some(t);
            prop_assert_eq!(seconds(t), t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            let fast = serde_json::to_string(&Fast { at: t, maybe }).unwrap();
            prop_assert_eq!(&fast, &serde_json::to_string(&Chrono { at: t, maybe }).unwrap());
            prop_assert_eq!(serde_json::from_str::<Fast>(&fast).unwrap(), Fast { at: t, maybe });
            // Through a JSON map too, as stored items are read.
            let value = serde_json::to_value(Fast { at: t, maybe }).unwrap();
            prop_assert_eq!(serde_json::from_value::<Fast>(value).unwrap(), Fast { at: t, maybe });
        }
    }

    #[test]
    fn each_fraction_width_as_chrono_writes_it() {
        for nanos in [
            0,
            1,
            10,
            100,
            1_000,
            10_000,
            100_000,
            1_000_000,
            10_000_000,
            100_000_000,
            120_000_000,
            123_400_000,
            123_450_000,
            123_456_000,
            123_456_700,
            123_456_780,
            999_999_999,
        ] {
            let t = instant(1_733_353_845, nanos);
            let fast = serde_json::to_string(&Fast { at: t, maybe: Some(t) }).unwrap();
            assert_eq!(fast, serde_json::to_string(&Chrono { at: t, maybe: Some(t) }).unwrap(), "{nanos}");
        }
    }

    #[test]
    fn other_forms_are_read_as_chrono_reads_them() {
        let read = |s: &str| serde_json::from_str::<Fast>(&format!(r#"{{"at":"{s}"}}"#));
        let chrono = |s: &str| serde_json::from_str::<Chrono>(&format!(r#"{{"at":"{s}","maybe":null}}"#));
        for s in [
            "2026-12-04T23:10:45+03:00",
            "2026-12-04 23:10:45Z",
            "2026-12-04T23:10:45.5Z",
            "2026-12-04T23:10:45.1234567891Z",
            "2026-12-04t23:10:45z",
            "2016-12-31T23:59:60Z",
            "+12026-12-04T23:10:45Z",
        ] {
            assert_eq!(read(s).ok().map(|f| f.at), chrono(s).ok().map(|c| c.at), "{s}");
        }
        for bad in [
            "2026-02-30T10:00:00Z",
            "2026-12-04T24:00:00Z",
            "2026-12-04T23:10:45",
            "tomorrow",
            "2026-1x-04T23:10:45Z",
        ] {
            let (fast, slow) = (read(bad).unwrap_err().to_string(), chrono(bad).unwrap_err().to_string());
            assert_eq!(fast, slow, "{bad}");
        }
        // Missing and null optional instants are `None`; a number is refused.
        assert_eq!(serde_json::from_str::<Fast>(r#"{"at":"2026-12-04T23:10:45Z"}"#).unwrap().maybe, None);
        assert_eq!(
            serde_json::from_str::<Fast>(r#"{"at":"2026-12-04T23:10:45Z","maybe":null}"#).unwrap().maybe,
            None
        );
        assert!(serde_json::from_str::<Fast>(r#"{"at":1733353845}"#).is_err());
        // Outside what the fast path writes, chrono writes it.
        let far = NaiveDate::from_ymd_opt(12026, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
        let json = serde_json::to_string(&Fast { at: far, maybe: None }).unwrap();
        assert_eq!(json, serde_json::to_string(&Chrono { at: far, maybe: None }).unwrap());
    }
}
