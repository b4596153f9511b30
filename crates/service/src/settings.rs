//! Deployment settings, validated once when the process starts.

use keyward_core::key::KeyRules;
use keyward_core::preset::Presets;
use keyward_core::token::Prefix;

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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            prefix: Prefix::live(),
            account: "default".to_owned(),
            rules: KeyRules::default(),
            presets: Presets::builtin(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}
