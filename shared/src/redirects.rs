//! Where a buyer's browser may be sent back to: return and cancel URLs a client names.
//!
//! A URL must be http(s) with a host, at most 2000 characters. When `RETURN_URL_HOSTS` is set
//! (and always on a deployed stack) its host must also be the API's own (`PUBLIC_URL`) or one
//! on that list: `shop.example` names one host, `*.shop.example` its subdomains. Otherwise the
//! API's own domain would be an open redirect for anyone who opens a payment.

use crate::Config;

/// Why a return URL is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not an http(s) URL with a host (or too long).
    NotHttp,
    /// A host not on `RETURN_URL_HOSTS`.
    Host(String),
}

impl Refused {
    /// The message for `field`.
    pub fn message(&self, field: &str) -> String {
        match self {
            Refused::NotHttp => format!("{field} must be an http(s) URL"),
            Refused::Host(h) => {
                format!("{field}: {h} is not a host this service returns buyers to (RETURN_URL_HOSTS)")
            }
        }
    }
}

/// Checks a return or cancel URL against the configuration. A shop sends the same return and
/// cancel URLs with every session, and their two parses were 6% of a zoo session create: the
/// URLs accepted lately are kept (see [`Accepted`]) and found again without a parse.
pub fn check(config: &Config, raw: &str) -> Result<(), Refused> {
    // As sent on, the URL is a `Location` header: visible ASCII only. A URL parser would drop
    // a tab or line break, or encode a space or a non-ASCII letter, and accept the rest; the
    // text as given then could not be a header (and a redirect to it would fail).
    if !raw.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(Refused::NotHttp);
    }
    if raw.len() > Accepted::LONGEST {
        return check_parsed(config, raw);
    }
    if ACCEPTED.lock().unwrap_or_else(|p| p.into_inner()).has(config, raw) {
        return Ok(());
    }
    let verdict = check_parsed(config, raw);
    if verdict.is_ok() {
        ACCEPTED.lock().unwrap_or_else(|p| p.into_inner()).add(config, raw);
    }
    verdict
}

/// URLs [`check_parsed`] accepted under one configuration (its return hosts and its own URL):
/// a URL is found here only under that same configuration, and a check under another one
/// starts the set anew. Bounded: at most [`Accepted::MOST`] URLs of at most
/// [`Accepted::LONGEST`] bytes, emptied when full.
#[derive(Default)]
struct Accepted {
    hosts: Option<Vec<String>>,
    public_url: String,
    urls: std::collections::HashSet<String, foldhash::fast::RandomState>,
}

static ACCEPTED: std::sync::LazyLock<std::sync::Mutex<Accepted>> = std::sync::LazyLock::new(Default::default);

impl Accepted {
    const MOST: usize = 1024;
    const LONGEST: usize = 512;

    fn made_under(&self, config: &Config) -> bool {
        self.public_url == config.public_url && self.hosts == config.return_url_hosts
    }

    fn has(&self, config: &Config, raw: &str) -> bool {
        self.made_under(config) && self.urls.contains(raw)
    }

    fn add(&mut self, config: &Config, raw: &str) {
        if !self.made_under(config) {
            self.hosts.clone_from(&config.return_url_hosts);
            self.public_url.clone_from(&config.public_url);
            self.urls.clear();
        }
        if self.urls.len() >= Self::MOST {
            self.urls.clear();
        }
        self.urls.insert(raw.to_owned());
    }
}

/// [`check`] by parsing the URL.
fn check_parsed(config: &Config, raw: &str) -> Result<(), Refused> {
    if raw.len() > 2000 {
        return Err(Refused::NotHttp);
    }
    let url = url::Url::parse(raw).map_err(|_| Refused::NotHttp)?;
    let host = match (url.scheme(), url.host_str()) {
        ("http" | "https", Some(h)) if !h.is_empty() => h.to_ascii_lowercase(),
        _ => return Err(Refused::NotHttp),
    };
    let Some(allowed) = &config.return_url_hosts else { return Ok(()) };
    let listed = allowed.iter().any(|a| match a.strip_prefix("*.") {
        Some(parent) => host.strip_suffix(parent).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        None => *a == host,
    });
    // The API's own host, read only for a host not on the list (a URL parse costs as much as
    // the check's own).
    let own =
        || url::Url::parse(&config.public_url).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    match listed || own().as_deref() == Some(host.as_str()) {
        true => Ok(()),
        false => Err(Refused::Host(host)),
    }
}

/// Whether the browser may be sent to `raw` now (a URL stored before the list changed is not
/// followed).
pub fn allowed(config: &Config, raw: &str) -> bool {
    check(config, raw).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(hosts: Option<&[&str]>) -> Config {
        Config {
            public_url: "https://api.tickets.example".into(),
            return_url_hosts: hosts.map(|h| h.iter().map(|s| s.to_string()).collect()),
            ..Config::for_tests()
        }
    }

    /// An accepted URL is kept for the configuration that accepted it only: under another
    /// one (its host not listed, or the list changed) it is checked again and refused.
    #[test]
    fn an_accepted_url_is_kept_for_its_configuration_only() {
        let open = config(None);
        let listed = config(Some(&["shop.example"]));
        let mut moved = config(Some(&["shop.example"]));
        moved.public_url = "https://other.example".into();
        for _ in 0..3 {
            assert_eq!(check(&open, "https://evil.example/x"), Ok(()));
            assert_eq!(check(&listed, "https://evil.example/x"), Err(Refused::Host("evil.example".into())));
            assert_eq!(check(&listed, "https://api.tickets.example/x"), Ok(()));
            assert_eq!(
                check(&moved, "https://api.tickets.example/x"),
                Err(Refused::Host("api.tickets.example".into()))
            );
        }
        // Many URLs: the set stays bounded, and every answer stays right.
        for i in 0..(2 * Accepted::MOST) {
            assert_eq!(check(&open, &format!("https://a{i}.example/")), Ok(()));
        }
        assert!(ACCEPTED.lock().unwrap().urls.len() <= Accepted::MOST);
        assert_eq!(check(&listed, "https://a1.example/"), Err(Refused::Host("a1.example".into())));
    }

    #[test]
    fn any_host_when_unset_only_listed_ones_when_set() {
        let open = config(None);
        assert_eq!(check(&open, "https://evil.example/x"), Ok(()));
        assert_eq!(check(&open, "javascript:alert(1)"), Err(Refused::NotHttp));
        assert_eq!(check(&open, "/relative"), Err(Refused::NotHttp));
        let c = config(Some(&["shop.example", "*.partner.example"]));
        for ok in [
            "https://shop.example/done?x=1",
            "http://SHOP.example:8080/",
            "https://api.tickets.example/api/v1/ticket_orders/1",
            "https://a.partner.example/",
            "https://a.b.partner.example/",
        ] {
            assert_eq!(check(&c, ok), Ok(()), "{ok}");
        }
        for bad in [
            "https://evil.example/",
            "https://shop.example.evil.example/",
            "https://shop.example@evil.example/",
            "https://evilshop.example/",
            "https://partner.example/",
            "https://xpartner.example/",
            "https://evil.example\\@shop.example/",
        ] {
            assert!(matches!(check(&c, bad), Err(Refused::Host(_))), "{bad}");
        }
        // The deployed default: the API's own host only.
        let own = config(Some(&[]));
        assert!(check(&own, "https://api.tickets.example/x").is_ok());
        assert!(check(&own, "https://shop.example/").is_err());
    }

    /// What a `Location` header cannot carry as given is refused: control characters, spaces,
    /// non-ASCII letters (sent percent-encoded, or the host in punycode, they pass).
    #[test]
    fn only_what_a_location_header_carries() {
        let open = config(None);
        for bad in [
            "https://shop.example/ok\n",
            "https://shop.example/ok\r\n",
            "https://shop.example/\tok",
            "https://shop.example/o k",
            " https://shop.example/ok",
            "https://магазин.рф/ok",
            "https://shop.example/заказ",
            "https://shop.example/\u{7f}",
        ] {
            assert_eq!(check(&open, bad), Err(Refused::NotHttp), "{bad:?}");
        }
        assert_eq!(check(&open, "https://xn--80aj2abdcii.xn--p1ai/%D0%B7"), Ok(()));
    }
}
