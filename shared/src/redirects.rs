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

/// Checks a return or cancel URL against the configuration.
pub fn check(config: &Config, raw: &str) -> Result<(), Refused> {
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
}
