//! keyward's pure domain: every rule, no I/O.
//!
//! # Layout
//!
//! - [`token`]: the public token format `<prefix>_<random><checksum>`; generation from the OS
//!   CSPRNG and parsing that rejects bad shape or checksum before anything else runs.
//! - [`hash`]: the pepper and the HMAC-SHA256 lookup hash, the only form of a secret stored.
//! - [`permission`]: actions, resource patterns (`*`, `**`), roles per resource type, and the
//!   normalisation of every scope spelling into permissions.
//! - [`preset`]: named default scope sets (`deploy`, `read-only`, `agent-runner`, `custom`).
//! - [`route`]: route policies: which permission and workspace each API route needs.
//! - [`cache_safe`]: one key's rights over every route of a policy as the ARN patterns of an
//!   API Gateway policy that stays right when API Gateway answers from its cache.
//! - [`cidr`]: per-key source allowlists, IPv4 and IPv6 matched independently.
//! - [`id`]: the one id rule (keys, groups, workspaces, accounts, presets) and new ids.
//! - [`key`]: the key record, status derivation, every validation rule of a create request,
//!   and the input limits (sizes, depths, counts) that keep both stores alike.
//! - [`name`]: the name rule of keys and groups: NFC, no invisible or reordering characters,
//!   no mixed-script spoofs (UTS #39), and the folded key two names collide by.
//! - [`lifecycle`]: what may happen to an existing key and who may do it: revoked is final,
//!   no lock-out, the workspace and group caps.
//! - [`managed`]: what the server keeps for keys as code (`managed_by`, `generation`,
//!   `applied_version`) and the rules of drift and generations.
//! - [`edit`]: what a `PATCH` may change, with the same validators as create, and its warnings.
//! - [`credential`]: where a request carries its key (`X-API-Key`, `Authorization: Bearer`).
//! - [`decision`]: the authorization decision and its outcome table (code to HTTP status).
//! - [`context`]: what the protected backend learns of an allowed (or denied) request.
//! - [`group`]: sharing groups.
//! - [`idempotency`]: `Idempotency-Key` records (never holding a secret).
//! - [`rate`]: rate-limit windows (UTC minutes), budgets by purpose and the sizing of the
//!   leases engines take from them.
//! - [`usage`]: outcomes, the usage records engines flush and the aggregator applies once,
//!   per-day figures read back, and the key changes verifiers follow to keep their caches
//!   correct.
//! - [`spec`]: keys as code: the spec documents (`ApiKey`, `SharingGroup`, `Preset`,
//!   `RoutePolicy`), their offline rules (the API's own validators), names and references.
//! - [`plan`]: the plan diff of keys as code: specs against the live records (creates,
//!   in-place updates, regenerations, revocations, drift) and when a saved plan is stale.
//! - [`audit`]: audit entries and accounts.
//! - [`validation`]: per-field errors and warnings, the one shape every rule reports in.
//! - [`pattern`]: what the rules' regular expressions share; each rule's own pattern (for the
//!   OpenAPI document) lives beside its validator, built from the same constants.
//!
//! # Why the hot path looks like this
//!
//! Verification is parse (no allocation beyond the token), one keyed hash with a pre-keyed MAC
//! state, one map or store lookup, and [`decision::decide`], which only walks the key's own
//! scopes. Everything a request could do wrong is refused before the lookup when it can be.

pub mod audit;
pub mod cache_safe;
pub mod cidr;
pub mod context;
pub mod credential;
pub mod decision;
pub mod edit;
pub mod group;
pub mod hash;
pub mod id;
pub mod idempotency;
pub mod key;
pub mod lifecycle;
pub mod managed;
pub mod name;
pub mod pattern;
pub mod permission;
pub mod plan;
pub mod preset;
pub mod rate;
pub mod route;
pub mod session;
pub mod spec;
pub mod token;
pub mod usage;
pub mod validation;
