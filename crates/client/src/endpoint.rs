//! Where the API is: a base URL checked once, and the URLs of its routes.

use std::fmt;

use ureq::http::Uri;

use crate::error::ClientError;

/// The base URL of a deployment's management API: `http://` or `https://`, a host, and
/// optionally a path prefix (an API Gateway stage such as `https://abc.execute-api.eu-west-1.amazonaws.com/prod`).
/// No query, fragment or user info: the key travels in a header, never in the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Without a trailing `/`: routes (`/v1/keys`) are appended to it.
    base: String,
}

impl Endpoint {
    /// Checks `text` as a base URL. The error quotes the text unless it may hold a password
    /// (user info before an `@`).
    pub fn parse(text: &str) -> Result<Self, ClientError> {
        let text = text.trim();
        let shown = if text.contains('@') {
            "the endpoint".to_owned()
        } else {
            format!("'{text}'")
        };
        let invalid = |why: &str| ClientError::InvalidEndpoint(format!("{shown} {why}"));
        if text.is_empty() {
            return Err(ClientError::InvalidEndpoint(
                "the endpoint is empty; give a URL such as http://127.0.0.1:8080".to_owned(),
            ));
        }
        if text.contains('#') {
            return Err(invalid("has a fragment (#); give the API's base URL only"));
        }
        let uri: Uri = text
            .parse()
            .map_err(|_| invalid("is not a URL; give one such as http://127.0.0.1:8080"))?;
        match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("http" | "https") => {}
            Some(_) => return Err(invalid("must start with http:// or https://")),
            None => return Err(invalid("has no scheme; start it with http:// or https://")),
        }
        let Some(authority) = uri.authority() else {
            return Err(invalid("has no host"));
        };
        if authority.as_str().contains('@') {
            return Err(invalid(
                "holds user info (user:password@); the API key is sent in a header, never in the URL",
            ));
        }
        if authority.host().is_empty() {
            return Err(invalid("has no host"));
        }
        if uri.query().is_some() {
            return Err(invalid("has a query (?...); give the API's base URL only"));
        }
        Ok(Self {
            base: text.trim_end_matches('/').to_owned(),
        })
    }

    /// The base URL, as given (without a trailing `/`).
    pub fn as_str(&self) -> &str {
        &self.base
    }

    /// The URL of `path`, which starts with `/` and has its variable segments already encoded
    /// with [`segment`].
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base)
    }
}

/// One path segment (an id, a name), percent-encoded so that no input can leave its segment:
/// only unreserved characters other than `.` pass as they are, so `..` or `a/b` cannot reach
/// another route.
pub(crate) fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed check panics

    use super::*;

    #[test]
    fn a_base_url_keeps_its_path_prefix_without_the_trailing_slash() {
        let e = Endpoint::parse(" https://api.example.com/prod/ ").unwrap();
        assert_eq!(e.as_str(), "https://api.example.com/prod");
        assert_eq!(
            e.url("/v1/keys"),
            "https://api.example.com/prod/v1/keys".to_owned()
        );
        let e = Endpoint::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(e.url("/v1/keys"), "http://127.0.0.1:8080/v1/keys");
    }

    #[test]
    fn only_plain_http_and_https_base_urls_are_accepted() {
        for (text, why) in [
            ("", "empty"),
            ("ftp://example.com", "http:// or https://"),
            ("127.0.0.1:8080", "http:// or https://"),
            ("localhost", "no scheme"),
            ("http://example.com/?x=1", "query"),
            ("http://example.com/#top", "fragment"),
            ("http://not a url", "not a URL"),
        ] {
            let e = Endpoint::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn user_info_is_refused_without_quoting_the_password() {
        let e = Endpoint::parse("https://admin:hunter2@example.com")
            .unwrap_err()
            .to_string();
        assert!(e.contains("user info"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn path_segments_cannot_escape() {
        assert_eq!(segment("key_01AbC-x~"), "key_01AbC-x~");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("a/b?c#d"), "a%2Fb%3Fc%23d");
        assert_eq!(segment("é"), "%C3%A9");
        assert_eq!(segment("a b"), "a%20b");
    }
}
