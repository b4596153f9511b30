//! Where a request carries its key: `X-API-Key`, else `Authorization: Bearer` (header names in
//! any case, values trimmed). The authorizer, the local gateway and the management API all
//! find the key with [`from_headers`], so they can never disagree on it.

/// Where a presented key came from, for explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeySource {
    /// The `X-API-Key` header.
    ApiKeyHeader,
    /// An `Authorization: Bearer` header.
    BearerHeader,
    /// A REST `TOKEN` authorizer event's `authorizationToken`.
    AuthorizationToken,
    /// The `key` field of a `POST /v1/verify` body.
    Body,
    /// No key was presented.
    #[default]
    Nowhere,
}

impl KeySource {
    pub const fn describe(self) -> &'static str {
        match self {
            Self::ApiKeyHeader => "X-API-Key header",
            Self::BearerHeader => "Authorization: Bearer header",
            Self::AuthorizationToken => "authorizationToken",
            Self::Body => "the request body",
            Self::Nowhere => "no X-API-Key or Authorization: Bearer header",
        }
    }
}

/// The token of an `Authorization` value when its scheme is `Bearer` (in any case).
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The key a request presents in its headers, and where it was found.
pub fn from_headers<'a, I>(headers: I) -> (Option<&'a str>, KeySource)
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut authorization = None;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("x-api-key") {
            return (Some(value.trim()), KeySource::ApiKeyHeader);
        }
        if authorization.is_none() && name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value);
        }
    }
    match authorization.and_then(bearer) {
        Some(token) => (Some(token), KeySource::BearerHeader),
        None => (None, KeySource::Nowhere),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(pairs: &'a [(&'a str, &'a str)]) -> (Option<&'a str>, KeySource) {
        from_headers(pairs.iter().copied())
    }

    #[test]
    fn the_key_comes_from_either_header_in_any_case() {
        assert_eq!(
            find(&[("X-Api-Key", " t1 ")]),
            (Some("t1"), KeySource::ApiKeyHeader)
        );
        assert_eq!(
            find(&[("authorization", "BEARER t2")]),
            (Some("t2"), KeySource::BearerHeader)
        );
        assert_eq!(find(&[("authorization", "Basic t3")]).0, None);
        assert_eq!(find(&[]), (None, KeySource::Nowhere));
        assert_eq!(
            find(&[("authorization", "Bearer b"), ("x-api-key", "k")]).0,
            Some("k"),
            "X-API-Key wins wherever it is"
        );
    }
}
