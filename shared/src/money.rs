//! Money: `rust_decimal::Decimal` in roubles, two decimals, rounded half-up to kopecks.

pub use rust_decimal::Decimal;
use rust_decimal::RoundingStrategy;
use serde::{Deserialize, Deserializer, Serializer};

/// Rounds to kopecks, half away from zero (half-up for the positive amounts we handle).
pub fn round(v: Decimal) -> Decimal {
    if v.scale() == 2 {
        // Already in kopecks (every amount this code computed): nothing to round.
        return v;
    }
    if v.scale() < 2 {
        // Whole roubles or tens of kopecks (a cost as a client sends it): only the scale to set.
        let mut r = v;
        r.rescale(2);
        return r;
    }
    let mut r = v.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(2);
    r
}

/// `value × percent / 100`, rounded to kopecks.
pub fn percent_of(value: Decimal, percent: Decimal) -> Decimal {
    round(shifted(value * percent, 2))
}

/// Half of `v`, as `v / 2` computes it: five times `v` with the point one place left (exact
/// while five times the digits fit, as every amount's do), else the division.
pub fn half(v: Decimal) -> Decimal {
    if u64::try_from(v.mantissa().unsigned_abs()).is_ok() {
        return shifted(v * Decimal::from(5), 1);
    }
    v / Decimal::TWO
}

/// `v / 10^places`, exactly: the same digits with the point `places` further left, which is
/// what the division computes, at a tenth of its cost (every commission takes three). A
/// decimal already at the largest scale is divided.
fn shifted(v: Decimal, places: u32) -> Decimal {
    let mut r = v;
    match r.set_scale(v.scale() + places) {
        Ok(()) => r,
        Err(_) => v / Decimal::from(10u64.pow(places)),
    }
}

/// Formats with exactly two decimals: `2500.00`.
pub fn format(v: Decimal) -> String {
    in_kopecks(v, str::to_owned)
}

/// The amount rounded to kopecks, as [`number`] writes it, appended to `out`.
pub fn write_kopecks(v: Decimal, out: &mut Vec<u8>) {
    let r = round(v);
    if r.scale() != 2 {
        return in_kopecks(r, |text| out.extend_from_slice(text.as_bytes()));
    }
    // Straight into `out`: no buffer of its own to copy from.
    write_digits(r, |bytes| out.extend_from_slice(bytes))
}

/// The decimal normalized, as [`plain`] writes it, appended to `out`.
pub fn write_plain(v: Decimal, out: &mut Vec<u8>) {
    // Not negative and within 64 bits (a percent, an amount): its trailing zeros dropped with
    // machine divisions, where `normalize` divides 96 bits by ten for each of them.
    let normalized = match u64::try_from(v.mantissa()) {
        Ok(mut digits) => {
            let mut scale = v.scale();
            while scale > 0 && digits % 10 == 0 {
                digits /= 10;
                scale -= 1;
            }
            Decimal::from_i128_with_scale(i128::from(digits), scale)
        }
        Err(_) => v.normalize(),
    };
    write_digits(normalized, |bytes| out.extend_from_slice(bytes))
}

/// The amount rounded to kopecks as its text, handed to `f` from the stack.
fn in_kopecks<R>(v: Decimal, f: impl FnOnce(&str) -> R) -> R {
    let r = round(v);
    if r.scale() != 2 {
        // Beyond what 96 bits hold with two decimals: never an amount of ours.
        return f(&format!("{r:.2}"));
    }
    f(Digits::of(r).as_str())
}

/// A decimal as its digits with the point at its scale, as `Display` writes it (`-0.05`,
/// `2.9`, `100`), followed by `suffix`, without the formatting machinery: answers write
/// several amounts each, and `format!` through `Display` was most of a money field's cost.
pub(crate) fn written(v: Decimal, suffix: &str) -> String {
    [Digits::of(v).as_str(), suffix].concat()
}

/// A decimal's digits with the point at its scale, as `Display` writes it, handed to `push`
/// piece by piece.
fn write_digits(v: Decimal, mut push: impl FnMut(&[u8])) {
    let mut ints = itoa::Buffer::new();
    let abs = v.mantissa().unsigned_abs();
    // Every amount fits 64 bits, whose digits cost a fraction of 128 bits'.
    let digits = match u64::try_from(abs) {
        Ok(small) => ints.format(small),
        Err(_) => ints.format(abs),
    }
    .as_bytes();
    let scale = v.scale() as usize;
    if v.is_sign_negative() {
        push(b"-");
    }
    if scale == 0 {
        push(digits);
    } else if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        push(int);
        push(b".");
        push(frac);
    } else {
        push(b"0.");
        for _ in digits.len()..scale {
            push(b"0");
        }
        push(digits);
    }
}

/// A decimal's text on the stack: at most a sign, 29 digits, a point and the zeros after it
/// (`-0.000…1` with 28 decimals is 31 bytes).
struct Digits {
    buf: [u8; 40],
    len: usize,
}

impl Digits {
    fn of(v: Decimal) -> Digits {
        let mut out = Digits { buf: [0; 40], len: 0 };
        write_digits(v, |bytes| out.push(bytes));
        out
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits, `-` and `.` are pushed.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// JSON text written as it is into the answer: how `serde_json` writes its own `RawValue`
/// (a struct and a field under its marker name), without `RawValue::from_string`'s allocation
/// and its parse of text that is a number by construction. A serializer other than
/// `serde_json`'s sees exactly what it sees for a `RawValue`. A test checks that `serde_json`
/// still writes it as raw text.
struct RawNumber<'a>(&'a str);

const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

impl serde::Serialize for RawNumber<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut raw = s.serialize_struct(RAW_VALUE_TOKEN, 1)?;
        raw.serialize_field(RAW_VALUE_TOKEN, self.0)?;
        raw.end()
    }
}

/// Parses a strict money string: digits, a dot and exactly two decimals (`"2500.00"`).
pub fn parse_strict(s: &str) -> Option<Decimal> {
    let (int, frac) = s.split_once('.')?;
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.len() != 2 || !digits(frac) || int.len() > 15 {
        return None;
    }
    s.parse().ok()
}

/// Serializes money as a JSON number with two decimals (`23.00`), never via a float.
pub mod number {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        in_kopecks(*v, |text| serde::Serialize::serialize(&RawNumber(text), s))
    }

    /// Accepts a JSON number or a numeric string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        <Decimal as Deserialize>::deserialize(d)
    }
}

/// A decimal as a JSON number as written, normalized (`2.9`), for percents.
pub mod plain {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&RawNumber(Digits::of(v.normalize()).as_str()), s)
    }
}

/// Optional money as a JSON number with two decimals, or `null`.
pub mod number_opt {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => number::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        Option::<Decimal>::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    /// The digits written by hand are the ones `Display` writes, for every sign, scale and
    /// size a `Decimal` has, and for the values that round to a negative zero.
    #[test]
    fn written_digits_match_display() {
        let mut values = vec![
            Decimal::ZERO,
            -Decimal::ZERO,
            dec!(-0.001),
            dec!(0.005),
            dec!(-0.005),
            dec!(0.05),
            dec!(2.9),
            dec!(100),
            dec!(-100.10),
            dec!(1e-28),
            Decimal::MAX,
            Decimal::MIN,
            Decimal::new(7, 28),
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let hi = (x >> 32) as u32 % 0x1000;
            let mantissa = (i128::from(hi) << 64 | i128::from(x)) >> (x % 77);
            let scale = (x % 29) as u32;
            let v =
                Decimal::from_i128_with_scale(if x.is_multiple_of(3) { -mantissa } else { mantissa }, scale);
            values.push(v);
        }
        for v in values {
            assert_eq!(written(v, ""), v.to_string(), "{v:?}");
            assert_eq!(written(v.normalize(), "%"), format!("{}%", v.normalize()), "{v:?}");
            let r = round(v);
            if r.scale() == 2 {
                assert_eq!(format(v), format!("{r:.2}"), "{v:?}");
            }
        }
    }

    #[test]
    fn amounts_are_json_numbers_as_written() {
        #[derive(serde::Serialize)]
        struct Amounts {
            #[serde(with = "number")]
            money: Decimal,
            #[serde(with = "number_opt")]
            none: Option<Decimal>,
            #[serde(with = "plain")]
            percent: Decimal,
        }
        let json = |money, percent| serde_json::to_string(&Amounts { money, none: None, percent }).unwrap();
        assert_eq!(json(dec!(2500), dec!(2.90)), r#"{"money":2500.00,"none":null,"percent":2.9}"#);
        assert_eq!(json(dec!(10341450), dec!(3.5)), r#"{"money":10341450.00,"none":null,"percent":3.5}"#);
        assert_eq!(json(dec!(-0.005), dec!(0)), r#"{"money":-0.01,"none":null,"percent":0}"#);
        // Every digit of a long amount, as no float could carry it; rounded to kopecks.
        let big = dec!(-12345678901234567890123456.789);
        assert_eq!(json(big, big), format!(r#"{{"money":{},"none":null,"percent":{big}}}"#, format(big)));
        assert_eq!(format(big), "-12345678901234567890123456.79");
    }

    /// `RawNumber` is written by every serializer as `serde_json`'s own `RawValue` is: as raw
    /// text into JSON, as the number it reads as into a `serde_json::Value`. Were the marker
    /// name ever to change, the text would come out as an object instead.
    #[test]
    fn raw_numbers_are_written_as_raw_values_are() {
        for text in ["0.00", "-0.01", "2.9", "10341450.00", "-12345678901234567890123456.79"] {
            let ours = RawNumber(text);
            let theirs = serde_json::value::RawValue::from_string(text.to_owned()).unwrap();
            assert_eq!(serde_json::to_string(&ours).unwrap(), text);
            assert_eq!(serde_json::to_string(&ours).unwrap(), serde_json::to_string(&theirs).unwrap());
            assert_eq!(serde_json::to_value(&ours).unwrap(), serde_json::to_value(&theirs).unwrap());
            assert!(serde_json::to_value(&ours).unwrap().is_number(), "{text}");
        }
    }

    #[test]
    fn rounds_half_up_to_kopecks() {
        assert_eq!(round(dec!(1.005)), dec!(1.01));
        assert_eq!(round(dec!(1.004)), dec!(1.00));
        assert_eq!(round(dec!(2.5)).to_string(), "2.50");
        assert_eq!(percent_of(dec!(10050000), dec!(2.9)), dec!(291450.00));
    }

    #[test]
    fn strict_parse_needs_two_decimals() {
        assert_eq!(parse_strict("2500.00"), Some(dec!(2500.00)));
        for bad in ["2500", "2500.0", "2500.000", "-1.00", "1e3.00", ".50", "12.5a", ""] {
            assert_eq!(parse_strict(bad), None, "{bad}");
        }
    }

    /// The point moved left is the division it replaces, digit for digit, for amounts and
    /// percents of every size and scale (the largest scale included, where it divides); a
    /// rounding's shortcuts are the rounding.
    #[test]
    fn shifting_the_point_is_dividing() {
        use proptest::prelude::*;
        let decimal = (any::<i64>(), 0u32..=28).prop_map(|(m, s)| Decimal::new(m, s));
        let small = (0i64..100_000, 0u32..=3).prop_map(|(m, s)| Decimal::new(m, s));
        proptest!(|(v in decimal, p in small)| {
            prop_assert_eq!(percent_of(v, p), round(v * p / Decimal::ONE_HUNDRED));
            prop_assert_eq!(half(v), v / Decimal::TWO);
            prop_assert_eq!(round(half(v)), round(v / Decimal::TWO));
            let mut rounded = v.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
            rounded.rescale(2);
            prop_assert_eq!(format!("{:?}", round(v)), format!("{rounded:?}"));
            let mut written = Vec::new();
            write_kopecks(v, &mut written);
            prop_assert_eq!(String::from_utf8(written).unwrap(), format(v));
            let mut written = Vec::new();
            write_plain(v, &mut written);
            prop_assert_eq!(String::from_utf8(written).unwrap(), v.normalize().to_string());
            let shifted_once = shifted(v, 2);
            prop_assert_eq!(shifted_once, v / Decimal::ONE_HUNDRED);
        });
        let max_scale = Decimal::new(12345, 28);
        assert_eq!(shifted(max_scale, 2), max_scale / Decimal::ONE_HUNDRED);
        for v in
            [dec!(0), dec!(0.99), dec!(0.995), dec!(1), dec!(1.00), dec!(-1.00), dec!(10.5), dec!(99.999)]
        {
            let mut written = Vec::new();
            write_kopecks(v, &mut written);
            assert_eq!(String::from_utf8(written).unwrap(), format(v));
        }
        for v in [
            dec!(0),
            dec!(0.000),
            dec!(-0.0),
            dec!(2.90),
            dec!(100),
            dec!(100.00),
            dec!(0.0012300),
            dec!(-2.50),
        ] {
            let mut written = Vec::new();
            write_plain(v, &mut written);
            assert_eq!(String::from_utf8(written).unwrap(), v.normalize().to_string(), "{v:?}");
        }
        for big in [Decimal::MAX, Decimal::MIN, Decimal::new(i64::MAX, 28), Decimal::new(-7, 28)] {
            assert_eq!(half(big), big / Decimal::TWO);
        }
    }
}
