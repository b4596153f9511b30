//! Deployment settings, validated once when the process starts.

use keyward_core::key::KeyRules;
use keyward_core::preset::Presets;
use keyward_core::token::Prefix;

/// Management calls each admin key may make per UTC minute, by default (DESIGN.md).
pub const DEFAULT_MANAGEMENT_RATE_LIMIT: u32 = 6_000;
/// The highest management limit a deployment may set.
pub const MAX_MANAGEMENT_RATE_LIMIT: u32 = 1_000_000;

/// Largest request body the API reads, by default.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct Settings {
    /// The prefix of every token this deployment issues and accepts.
    pub prefix: Prefix,
    /// The account keys are issued in.
    pub account: String,
    /// Bounds for rate limits.
    pub rules: KeyRules,
    /// The presets offered on create.
    pub presets: Presets,
    /// Requests with a larger body get 413.
    pub max_body_bytes: usize,
    /// Who may call `POST /v1/verify`.
    pub verify_access: VerifyAccess,
    /// Management calls each key may make per UTC minute (its own budget: never spent from the
    /// key's `rate_limit_per_minute`).
    pub management_rate_limit: u32,
}

/// Who may call `POST /v1/verify`. Either way, a caller that presents a verifier key (`read` or
/// `admin` on `keys/**`) in its headers sees the key's id and account with every answer; others
/// see them only with `VALID`, so an unauthenticated caller learns nothing about a key it
/// cannot use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerifyAccess {
    /// Anyone: the key in the body is what is verified.
    #[default]
    Open,
    /// Only callers that present a verifier key.
    VerifierKey,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            prefix: Prefix::live(),
            account: "default".to_owned(),
            rules: KeyRules::default(),
            presets: Presets::builtin(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            verify_access: VerifyAccess::Open,
            management_rate_limit: DEFAULT_MANAGEMENT_RATE_LIMIT,
        }
    }
}
