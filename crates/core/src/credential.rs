//! Where a request carries its key: `X-API-Key`, else `Authorization: Bearer` (header names in
//! any case, values trimmed). Either header given twice takes no key at all: which of two
//! values was meant is not for the edge to guess. The authorizer, the local gateway and the management API all
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
    /// `X-API-Key` or `Authorization` was given twice, so no key is taken.
    Repeated,
}

impl KeySource {
    pub const fn describe(self) -> &'static str {
        match self {
            Self::ApiKeyHeader => "X-API-Key header",
            Self::BearerHeader => "Authorization: Bearer header",
            Self::AuthorizationToken => "authorizationToken",
            Self::Body => "the request body",
            Self::Nowhere => "no X-API-Key or Authorization: Bearer header",
            Self::Repeated => "X-API-Key or Authorization given twice (no key is taken)",
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
    let (mut api_key, mut authorization) = (None, None);
    for (name, value) in headers {
        let slot = if name.eq_ignore_ascii_case("x-api-key") {
            &mut api_key
        } else if name.eq_ignore_ascii_case("authorization") {
            &mut authorization
        } else {
            continue;
        };
        if slot.replace(value).is_some() {
            return (None, KeySource::Repeated);
        }
    }
    match (api_key, authorization.and_then(bearer)) {
        (Some(key), _) => (Some(key.trim()), KeySource::ApiKeyHeader),
        (None, Some(token)) => (Some(token), KeySource::BearerHeader),
        (None, None) => (None, KeySource::Nowhere),
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

    #[test]
    fn a_key_header_given_twice_takes_no_key() {
        for twice in [
            &[("x-api-key", "a"), ("X-API-Key", "b")][..],
            &[("x-api-key", "a"), ("x-api-key", "a")],
            &[("Authorization", "Bearer a"), ("authorization", "Basic b")],
            &[
                ("x-api-key", "k"),
                ("authorization", "Bearer a"),
                ("authorization", "Bearer b"),
            ],
        ] {
            assert_eq!(find(twice), (None, KeySource::Repeated), "{twice:?}");
        }
        assert_eq!(
            find(&[
                ("x-api-key", "k"),
                ("authorization", "Bearer a"),
                ("x-other", "1")
            ]),
            (Some("k"), KeySource::ApiKeyHeader),
            "one of each is no repetition"
        );
    }
}
