//! Permissions: an action on a resource pattern, and every accepted spelling of a scope.
//!
//! A resource pattern is a `/`-separated path of plural collection names and ids: `*` matches
//! one segment, `**` any number (including none), and an empty pattern means everything. Every
//! spelling a client may send (`read`, `agent:editor`, `agent/ag_1:viewer`, `agents`,
//! `{"action", "resource"}`) is normalised here, once, into a [`Scope`] that carries the
//! permissions it grants; matching then only ever looks at [`Permission`]s.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::pattern;

/// Longest accepted resource pattern, in bytes.
pub const MAX_PATTERN_LEN: usize = 256;
/// Most segments in a resource pattern.
pub const MAX_PATTERN_SEGMENTS: usize = 16;
/// Longest name or id segment of a resource path.
pub const MAX_SEGMENT_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PermissionError {
    #[error("unknown action '{0}'; valid actions: discover, read, write, execute, admin, *")]
    UnknownAction(String),
    #[error(
        "invalid resource pattern '{0}': use '/'-separated names of letters, digits, '_', '-', '.', or the wildcards '*' and '**'"
    )]
    BadPattern(String),
    #[error("unknown resource type '{0}'; valid types: org, namespace, project, agent")]
    UnknownType(String),
    #[error("'{role}' is not a valid role for '{kind}'; valid roles: {valid}")]
    InvalidRole {
        kind: String,
        role: String,
        valid: String,
    },
    #[error("org roles apply to the whole account; write 'org:{0}' without an id")]
    OrgWithId(String),
    #[error("invalid id '{0}' in scope")]
    BadId(String),
    #[error(
        "unrecognised scope '{0}'; use an action (read), a role (agent:editor, agent/ag_1:viewer), a resource type (agents) or {{\"action\", \"resource\"}}"
    )]
    Unrecognised(String),
}

/// What a permission lets its holder do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Discover,
    Read,
    Write,
    Execute,
    Admin,
    #[serde(rename = "*")]
    All,
}

impl Action {
    /// Every action, in the order they are documented.
    pub const ALL: [Action; 6] = [
        Self::Discover,
        Self::Read,
        Self::Write,
        Self::Execute,
        Self::Admin,
        Self::All,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Discover => "discover",
            Self::Read => "read",
            Self::Write => "write",
            Self::Execute => "execute",
            Self::Admin => "admin",
            Self::All => "*",
        }
    }

    /// `*` grants every action; any other action grants only itself.
    pub fn grants(self, wanted: Action) -> bool {
        self == Self::All || self == wanted
    }
}

impl FromStr for Action {
    type Err = PermissionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "discover" => Self::Discover,
            "read" => Self::Read,
            "write" => Self::Write,
            "execute" => Self::Execute,
            "admin" => Self::Admin,
            "*" => Self::All,
            other => return Err(PermissionError::UnknownAction(other.to_owned())),
        })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    Literal(String),
    One,
    Any,
}

/// A validated resource pattern such as `workspaces/ws_1/projects/**`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourcePattern {
    segments: Vec<Segment>,
}

impl ResourcePattern {
    /// `**`: every resource.
    pub fn everything() -> Self {
        Self {
            segments: vec![Segment::Any],
        }
    }

    /// `<collection>/**` or `<collection>/<id>/**`.
    fn under(collection: &str, id: Option<&str>) -> Self {
        let mut segments = vec![Segment::Literal(collection.to_owned())];
        if let Some(id) = id {
            segments.push(Segment::Literal(id.to_owned()));
        }
        segments.push(Segment::Any);
        Self { segments }
    }

    /// Parses a pattern as a client writes it: [`resource_glob_pattern`] states the same rule.
    pub fn parse(s: &str) -> Result<Self, PermissionError> {
        let bad = || PermissionError::BadPattern(truncate(s));
        if s.len() > MAX_PATTERN_LEN {
            return Err(bad());
        }
        let trimmed = s.trim_matches('/');
        if trimmed.is_empty() {
            return Ok(Self::everything());
        }
        let segments = trimmed
            .split('/')
            .map(|seg| match seg {
                "*" => Ok(Segment::One),
                "**" => Ok(Segment::Any),
                lit if is_name(lit) => Ok(Segment::Literal(lit.to_owned())),
                _ => Err(bad()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if segments.len() > MAX_PATTERN_SEGMENTS {
            return Err(bad());
        }
        Ok(Self { segments })
    }

    /// The literal segments of the pattern (the names it spells out).
    pub fn literals(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Literal(l) => Some(l.as_str()),
            Segment::One | Segment::Any => None,
        })
    }

    /// How many segments the pattern has (`**` counts as one).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Whether this pattern covers the concrete resource path `resource` (empty = the root).
    ///
    /// Glob matching over segments with backtracking to the last `**`: O(n·m), never exponential.
    pub fn matches(&self, resource: &str) -> bool {
        let path: Vec<&str> = resource.split('/').filter(|s| !s.is_empty()).collect();
        let pat = &self.segments;
        let (mut p, mut r) = (0usize, 0usize);
        let mut backtrack: Option<(usize, usize)> = None;
        while r < path.len() {
            match pat.get(p) {
                Some(Segment::Any) => {
                    backtrack = Some((p, r));
                    p += 1;
                }
                Some(Segment::One) => {
                    p += 1;
                    r += 1;
                }
                Some(Segment::Literal(lit)) if lit == path[r] => {
                    p += 1;
                    r += 1;
                }
                _ => match backtrack {
                    Some((bp, br)) => {
                        p = bp + 1;
                        r = br + 1;
                        backtrack = Some((bp, br + 1));
                    }
                    None => return false,
                },
            }
        }
        pat[p..].iter().all(|s| *s == Segment::Any)
    }
}

impl fmt::Display for ResourcePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(match seg {
                Segment::Literal(s) => s,
                Segment::One => "*",
                Segment::Any => "**",
            })?;
        }
        Ok(())
    }
}

impl Serialize for ResourcePattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for ResourcePattern {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ResourcePattern".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "maxLength": MAX_PATTERN_LEN,
            "description": "A '/'-separated path of collection names and ids; '*' matches one segment, '**' any number, empty means everything.",
            "examples": ["agents/*", "workspaces/ws_1/projects/**"]
        })
    }
}

impl<'de> Deserialize<'de> for ResourcePattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One action on one resource pattern: the unit every check is made of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Permission {
    pub action: Action,
    pub resource: ResourcePattern,
}

impl Permission {
    pub fn new(action: Action, resource: ResourcePattern) -> Self {
        Self { action, resource }
    }

    pub fn allows(&self, action: Action, resource: &str) -> bool {
        self.action.grants(action) && self.resource.matches(resource)
    }
}

/// A role on a resource type, as spelled in `agent:editor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Discoverer,
    Viewer,
    Editor,
    Owner,
    Executor,
    Member,
    Admin,
}

impl Role {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "discoverer" => Self::Discoverer,
            "viewer" => Self::Viewer,
            "editor" => Self::Editor,
            "owner" => Self::Owner,
            "executor" => Self::Executor,
            "member" => Self::Member,
            "admin" => Self::Admin,
            _ => return None,
        })
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Discoverer => "discoverer",
            Self::Viewer => "viewer",
            Self::Editor => "editor",
            Self::Owner => "owner",
            Self::Executor => "executor",
            Self::Member => "member",
            Self::Admin => "admin",
        }
    }

    /// The role a scope is shown as: `executor` is legacy and shows as `viewer`.
    pub const fn shown_as(self) -> Self {
        match self {
            Self::Executor => Self::Viewer,
            other => other,
        }
    }

    /// The actions a collection role grants (org and namespace roles are handled by kind).
    fn actions(self) -> &'static [Action] {
        use Action::*;
        match self {
            Self::Discoverer => &[Discover],
            Self::Viewer | Self::Member => &[Discover, Read],
            Self::Editor => &[Discover, Read, Write],
            Self::Owner => &[Discover, Read, Write, Admin],
            Self::Executor => &[Discover, Read, Execute],
            Self::Admin => &[All],
        }
    }
}

/// The resource types a role may be given on, with their collection and valid roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Org,
    Namespace,
    Project,
    Agent,
}

impl Kind {
    const ALL: [Kind; 4] = [Self::Org, Self::Namespace, Self::Project, Self::Agent];

    fn parse(s: &str) -> Result<Self, PermissionError> {
        Ok(match s {
            "org" => Self::Org,
            "namespace" => Self::Namespace,
            "project" => Self::Project,
            "agent" => Self::Agent,
            other => return Err(PermissionError::UnknownType(truncate(other))),
        })
    }

    const fn name(self) -> &'static str {
        match self {
            Self::Org => "org",
            Self::Namespace => "namespace",
            Self::Project => "project",
            Self::Agent => "agent",
        }
    }

    const fn collection(self) -> &'static str {
        match self {
            Self::Org => "",
            Self::Namespace => "namespaces",
            Self::Project => "projects",
            Self::Agent => "agents",
        }
    }

    fn valid_roles(self) -> &'static [Role] {
        use Role::*;
        match self {
            Self::Org => &[Admin, Member],
            Self::Namespace => &[Admin],
            Self::Project => &[Discoverer, Viewer, Editor, Owner],
            Self::Agent => &[Discoverer, Viewer, Editor, Owner, Executor],
        }
    }
}

/// Collections that may be toggled whole by name (`agents` grants `*` on `agents/**`).
pub const TOGGLE_COLLECTIONS: &[&str] = &[
    "agents",
    "workflows",
    "projects",
    "namespaces",
    "runs",
    "keys",
    "groups",
];

/// A scope as a client may spell it: a string or `{"action", "resource"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ScopeInput {
    /// An action (`read`), a resource type toggle (`agents`), or a role on a resource type or
    /// on one resource (`agent:editor`, `agent/ag_1:viewer`); whitespace around is ignored.
    Text(#[schemars(regex(pattern = text_scope_pattern()))] String),
    Explicit {
        #[schemars(with = "Action")]
        action: String,
        /// A resource pattern: `/`-separated names and ids, `*` for one segment, `**` for
        /// any number; empty or absent means everything.
        #[serde(default)]
        #[schemars(regex(pattern = resource_glob_pattern()), length(max = MAX_PATTERN_LEN))]
        resource: Option<String>,
    },
}

/// The text spellings of a scope that [`Scope::parse`] accepts, as a pattern built from the same
/// tables (actions, toggles, and each resource type's roles).
pub fn text_scope_pattern() -> String {
    let mut spellings: Vec<String> = Action::ALL
        .iter()
        .map(|a| pattern::escape(a.as_str()))
        .collect();
    spellings.extend(TOGGLE_COLLECTIONS.iter().map(|c| pattern::escape(c)));
    let id = pattern::segment(MAX_SEGMENT_LEN);
    for kind in Kind::ALL {
        let roles: Vec<&str> = kind.valid_roles().iter().map(|r| r.as_str()).collect();
        let one = if kind == Kind::Org {
            String::new()
        } else {
            format!("(?:/{id})?")
        };
        spellings.push(format!("{}{one}:(?:{})", kind.name(), roles.join("|")));
    }
    let w = pattern::WHITESPACE;
    format!("^[{w}]*(?:{})[{w}]*$", spellings.join("|"))
}

/// What [`ResourcePattern::parse`] accepts (with [`MAX_PATTERN_LEN`] as a separate length
/// rule): segments that are names or the wildcards `*` and `**`, slashes around ignored.
pub fn resource_glob_pattern() -> String {
    segments(&format!(r"(?:\*\*?|{})", pattern::segment(MAX_SEGMENT_LEN)))
}

/// A concrete resource path (no wildcards), as `POST /v1/verify` takes one.
pub fn resource_path_pattern() -> String {
    segments(&pattern::segment(MAX_SEGMENT_LEN))
}

fn segments(segment: &str) -> String {
    let more = MAX_PATTERN_SEGMENTS - 1;
    format!("^/*(?:{segment}(?:/{segment}){{0,{more}}})?/*$")
}

impl From<&str> for ScopeInput {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

/// A normalised scope: its canonical spelling, the role it is shown as (if a role), and the
/// permissions it grants. Permissions are the truth; `scope` and `role` are for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Scope {
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    pub permissions: Vec<Permission>,
}

impl ScopeInput {
    /// A scope written as one string, where a list must hold strings only (a Terraform
    /// `set(string)`): a text spelling, or an explicit scope as its record shows it,
    /// `action:resource` (`read:projects/*`), which is not a text spelling. [`Scope::scope`]
    /// is this spelling of every scope.
    pub fn from_flat(text: &str) -> Self {
        let as_text = Self::Text(text.to_owned());
        if Scope::parse(&as_text).is_ok() {
            return as_text;
        }
        match text.trim().split_once(':') {
            Some((action, resource)) if action.parse::<Action>().is_ok() => Self::Explicit {
                action: action.to_owned(),
                resource: (!resource.is_empty()).then(|| resource.to_owned()),
            },
            // The text rule's error names what is wrong.
            _ => as_text,
        }
    }
}

impl Scope {
    /// The spelling that parses back to this scope: its text, or for an explicit scope
    /// (`read:projects/*`, which is not a text spelling) `{action, resource}`.
    pub fn input(&self) -> ScopeInput {
        let text = ScopeInput::Text(self.scope.clone());
        if Self::parse(&text).as_ref() == Ok(self) {
            return text;
        }
        match self.scope.split_once(':') {
            Some((action, resource)) => ScopeInput::Explicit {
                action: action.to_owned(),
                resource: (!resource.is_empty()).then(|| resource.to_owned()),
            },
            None => text,
        }
    }

    pub fn parse(input: &ScopeInput) -> Result<Self, PermissionError> {
        match input {
            ScopeInput::Explicit { action, resource } => {
                let action: Action = action.parse()?;
                let resource = ResourcePattern::parse(resource.as_deref().unwrap_or(""))?;
                Ok(Self {
                    scope: format!("{action}:{resource}"),
                    role: None,
                    permissions: vec![Permission::new(action, resource)],
                })
            }
            ScopeInput::Text(text) => Self::parse_text(text.trim()),
        }
    }

    fn parse_text(text: &str) -> Result<Self, PermissionError> {
        if let Ok(action) = text.parse::<Action>() {
            return Ok(Self {
                scope: text.to_owned(),
                role: None,
                permissions: vec![Permission::new(action, ResourcePattern::everything())],
            });
        }
        if TOGGLE_COLLECTIONS.contains(&text) {
            return Ok(Self {
                scope: text.to_owned(),
                role: None,
                permissions: vec![Permission::new(
                    Action::All,
                    ResourcePattern::under(text, None),
                )],
            });
        }
        let Some((target, role)) = text.split_once(':') else {
            return Err(PermissionError::Unrecognised(truncate(text)));
        };
        let (kind, id) = match target.split_once('/') {
            Some((kind, id)) => (Kind::parse(kind)?, Some(id)),
            None => (Kind::parse(target)?, None),
        };
        if let Some(id) = id {
            if kind == Kind::Org {
                return Err(PermissionError::OrgWithId(truncate(role)));
            }
            if !is_name(id) {
                return Err(PermissionError::BadId(truncate(id)));
            }
        }
        let valid = kind.valid_roles();
        let role = Role::parse(role)
            .filter(|r| valid.contains(r))
            .ok_or_else(|| PermissionError::InvalidRole {
                kind: kind.name().to_owned(),
                role: truncate(role),
                valid: valid
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let resource = match kind {
            Kind::Org => ResourcePattern::everything(),
            _ => ResourcePattern::under(kind.collection(), id),
        };
        let permissions = role
            .actions()
            .iter()
            .map(|a| Permission::new(*a, resource.clone()))
            .collect();
        Ok(Self {
            scope: text.to_owned(),
            role: Some(role.shown_as()),
            permissions,
        })
    }

    pub fn allows(&self, action: Action, resource: &str) -> bool {
        self.permissions.iter().any(|p| p.allows(action, resource))
    }
}

/// Whether any of `scopes` allows `action` on `resource`.
pub fn scopes_allow(scopes: &[Scope], action: Action, resource: &str) -> bool {
    scopes.iter().any(|s| s.allows(action, resource))
}

/// A name or id segment: 1 to [`MAX_SEGMENT_LEN`] of letters, digits, `_`, `-`, `.` (not `.`
/// or `..`).
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SEGMENT_LEN
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Keeps echoed input short in error messages.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scope(s: &str) -> Scope {
        Scope::parse(&ScopeInput::from(s)).unwrap()
    }

    fn perms(s: &Scope) -> Vec<(Action, String)> {
        s.permissions
            .iter()
            .map(|p| (p.action, p.resource.to_string()))
            .collect()
    }

    #[test]
    fn a_flat_string_reads_as_text_or_as_the_explicit_scope_its_record_shows() {
        for text in ["read", "agents", "agent:editor", "agent/ag_1:viewer"] {
            assert_eq!(ScopeInput::from_flat(text), ScopeInput::from(text));
        }
        let explicit = ScopeInput::from_flat("read:projects/*");
        assert_eq!(
            explicit,
            ScopeInput::Explicit {
                action: "read".into(),
                resource: Some("projects/*".into())
            }
        );
        // Every record's `scope` reads back as the same scope.
        let parsed = Scope::parse(&explicit).unwrap();
        assert_eq!(
            Scope::parse(&ScopeInput::from_flat(&parsed.scope)).unwrap(),
            parsed
        );
        // What is neither stays text, so the text rule names the error.
        assert_eq!(ScopeInput::from_flat("nope:x"), ScopeInput::from("nope:x"));
        assert!(Scope::parse(&ScopeInput::from_flat("nope:x")).is_err());
    }

    #[test]
    fn every_documented_spelling_normalises() {
        use Action::*;
        let a = |x: Action, r: &str| (x, r.to_owned());
        assert_eq!(perms(&scope("read")), vec![a(Read, "**")]);
        assert_eq!(perms(&scope("*")), vec![a(All, "**")]);
        assert_eq!(perms(&scope("admin")), vec![a(Admin, "**")]);
        let explicit = Scope::parse(&ScopeInput::Explicit {
            action: "write".into(),
            resource: Some("agents/*".into()),
        })
        .unwrap();
        assert_eq!(perms(&explicit), vec![a(Write, "agents/*")]);
        assert_eq!(
            perms(&scope("agent:editor")),
            vec![
                a(Discover, "agents/**"),
                a(Read, "agents/**"),
                a(Write, "agents/**")
            ]
        );
        assert_eq!(
            perms(&scope("agent/ag_1:viewer")),
            vec![a(Discover, "agents/ag_1/**"), a(Read, "agents/ag_1/**")]
        );
        let exec = scope("agent:executor");
        assert_eq!(exec.role, Some(Role::Viewer));
        assert_eq!(
            perms(&exec),
            vec![
                a(Discover, "agents/**"),
                a(Read, "agents/**"),
                a(Execute, "agents/**")
            ]
        );
        assert_eq!(perms(&scope("agents")), vec![a(All, "agents/**")]);
        assert_eq!(perms(&scope("workflows")), vec![a(All, "workflows/**")]);
        assert_eq!(perms(&scope("org:admin")), vec![a(All, "**")]);
        assert_eq!(
            perms(&scope("org:member")),
            vec![a(Discover, "**"), a(Read, "**")]
        );
        assert_eq!(
            perms(&scope("namespace/ns_1:admin")),
            vec![a(All, "namespaces/ns_1/**")]
        );
        assert_eq!(
            perms(&scope("project:owner")),
            vec![
                a(Discover, "projects/**"),
                a(Read, "projects/**"),
                a(Write, "projects/**"),
                a(Admin, "projects/**")
            ]
        );
        assert_eq!(
            perms(&scope("project:discoverer")),
            vec![a(Discover, "projects/**")]
        );
    }

    #[test]
    fn invalid_pairings_name_the_valid_roles() {
        let err = Scope::parse(&ScopeInput::from("namespace:viewer")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'viewer' is not a valid role for 'namespace'; valid roles: admin"
        );
        let err = Scope::parse(&ScopeInput::from("project:executor")).unwrap_err();
        assert!(
            err.to_string()
                .contains("discoverer, viewer, editor, owner")
        );
        let err = Scope::parse(&ScopeInput::from("org:viewer")).unwrap_err();
        assert!(err.to_string().contains("admin, member"));
        for bad in [
            "widget:viewer",
            "org/o1:admin",
            "agent/:viewer",
            "agent/a b:viewer",
            "reed",
            "",
            ":",
        ] {
            assert!(Scope::parse(&ScopeInput::from(bad)).is_err(), "{bad}");
        }
        let bad_action = ScopeInput::Explicit {
            action: "delete".into(),
            resource: None,
        };
        assert!(matches!(
            Scope::parse(&bad_action),
            Err(PermissionError::UnknownAction(_))
        ));
        let bad_pattern = ScopeInput::Explicit {
            action: "read".into(),
            resource: Some("agents//x".into()),
        };
        assert!(matches!(
            Scope::parse(&bad_pattern),
            Err(PermissionError::BadPattern(_))
        ));
    }

    #[test]
    fn wildcards_match_as_documented() {
        let p = |s: &str| ResourcePattern::parse(s).unwrap();
        assert!(p("agents/*").matches("agents/ag_1"));
        assert!(!p("agents/*").matches("agents"));
        assert!(!p("agents/*").matches("agents/ag_1/runs"));
        assert!(p("agents/**").matches("agents"));
        assert!(p("agents/**").matches("agents/ag_1/runs/r_9"));
        assert!(!p("agents/**").matches("projects/p1"));
        assert!(p("").matches("anything/at/all"));
        assert!(p("**").matches(""));
        assert!(p("workspaces/ws_1/projects/**").matches("workspaces/ws_1/projects/p/files"));
        assert!(!p("workspaces/ws_1/projects/**").matches("workspaces/ws_2/projects/p"));
        assert!(p("**/runs/*").matches("agents/a/runs/r"));
        assert!(!p("**/runs/*").matches("agents/a/runs"));
        assert!(p("*/x/**/y").matches("a/x/b/c/y"));
        assert!(!p("*/x/**/y").matches("a/x/b/c/z"));
    }

    #[test]
    fn star_action_grants_everything_and_others_only_themselves() {
        assert!(scope("*").allows(Action::Execute, "agents/a"));
        assert!(scope("read").allows(Action::Read, "x"));
        assert!(!scope("read").allows(Action::Write, "x"));
        assert!(scope("agent:executor").allows(Action::Execute, "agents/a"));
        assert!(!scope("agent:viewer").allows(Action::Execute, "agents/a"));
        assert!(!scope("agent:viewer").allows(Action::Read, "projects/p"));
    }

    #[test]
    fn patterns_reject_bad_input() {
        for bad in [
            "a//b",
            "a/*x",
            "a/b c",
            "a/../b",
            &"a/".repeat(17),
            &"a".repeat(300),
        ] {
            assert!(ResourcePattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_forms() {
        let s: Vec<ScopeInput> =
            serde_json::from_str(r#"["read", {"action": "write", "resource": "agents/*"}]"#)
                .unwrap();
        assert_eq!(Scope::parse(&s[1]).unwrap().scope, "write:agents/*");
        let json = serde_json::to_value(scope("agent:executor")).unwrap();
        assert_eq!(json["role"], "viewer");
        assert_eq!(json["permissions"][2]["action"], "execute");
        let back: Scope = serde_json::from_value(json).unwrap();
        assert_eq!(back, scope("agent:executor"));
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof!["[a-c]", Just("*".to_owned()), Just("**".to_owned())]
    }

    /// Reference matcher: plain recursion, exponential but obviously right on small inputs.
    fn reference(pat: &[String], path: &[String]) -> bool {
        match pat.split_first() {
            None => path.is_empty(),
            Some((h, rest)) if h == "**" => (0..=path.len()).any(|i| reference(rest, &path[i..])),
            Some((h, rest)) => match path.split_first() {
                Some((p, prest)) => (h == "*" || h == p) && reference(rest, prest),
                None => false,
            },
        }
    }

    #[test]
    fn every_documented_spelling_matches_the_patterns() {
        let text = crate::pattern::tests::compile(&text_scope_pattern());
        for ok in [
            "read",
            " * ",
            "agents",
            "org:member",
            "namespace/ns_1:admin",
            "agent:executor",
            "project/p.1:owner",
        ] {
            assert!(text.is_match(ok), "{ok}");
        }
        for bad in [
            "org/o1:admin",
            "agent:admin",
            "agent/:viewer",
            "agent/..:viewer",
            "reed",
        ] {
            assert!(!text.is_match(bad), "{bad}");
        }
        let glob = crate::pattern::tests::compile(&resource_glob_pattern());
        for ok in ["", "/", "**", "agents/*", "/workspaces/ws_1/projects/**/"] {
            assert!(glob.is_match(ok), "{ok}");
        }
        let path = crate::pattern::tests::compile(&resource_path_pattern());
        assert!(path.is_match("agents/ag_1") && !path.is_match("agents/*"));
    }

    proptest! {
        #[test]
        fn the_text_scope_pattern_states_what_parses(
            s in "[ \t]?(read|admin|\\*|\\*\\*|agents|keys|org|agent|project|namespace|widget)(/[a-z.]{0,3})?(:(viewer|admin|member|owner|executor|discoverer|editor|x|)){0,2}[ \t]?|\\PC{0,12}"
        ) {
            let pattern = crate::pattern::tests::compile(&text_scope_pattern());
            let parsed = Scope::parse(&ScopeInput::Text(s.clone()));
            prop_assert_eq!(pattern.is_match(&s), parsed.is_ok(), "{:?}", s);
        }

        #[test]
        fn the_resource_patterns_state_what_parses(
            s in "/{0,2}(([a-z.]{1,3}|\\*{1,3}|)/{1,2}){0,17}[a-z*.]{0,2}/{0,2}|[a-z]{120,130}(/[a-z]{120,130})?|/{250,260}"
        ) {
            let glob = crate::pattern::tests::compile(&resource_glob_pattern());
            let parsed = ResourcePattern::parse(&s).is_ok();
            prop_assert_eq!(glob.is_match(&s) && s.len() <= MAX_PATTERN_LEN, parsed, "{:?}", s);
            // `POST /v1/verify` takes a concrete path: a pattern whose segments are all names.
            let path = crate::pattern::tests::compile(&resource_path_pattern());
            let concrete = s.split('/').filter(|x| !x.is_empty()).all(is_name);
            prop_assert_eq!(path.is_match(&s) && s.len() <= MAX_PATTERN_LEN, parsed && concrete, "{:?}", s);
        }

        #[test]
        fn matcher_agrees_with_reference(
            pat in proptest::collection::vec(segment(), 1..6),
            path in proptest::collection::vec("[a-c]", 0..7),
        ) {
            let pattern = ResourcePattern::parse(&pat.join("/")).unwrap();
            prop_assert_eq!(pattern.matches(&path.join("/")), reference(&pat, &path));
        }

        #[test]
        fn display_round_trips(pat in proptest::collection::vec(segment(), 1..6)) {
            let pattern = ResourcePattern::parse(&pat.join("/")).unwrap();
            prop_assert_eq!(ResourcePattern::parse(&pattern.to_string()).unwrap(), pattern);
        }

        #[test]
        fn any_text_scope_parses_or_errors_without_panic(s in "\\PC{0,40}") {
            let _ = Scope::parse(&ScopeInput::Text(s));
        }

        #[test]
        fn double_star_under_a_collection_covers_every_descendant(
            coll in "[a-z]{1,8}", rest in proptest::collection::vec("[a-z0-9_]{1,6}", 0..5)
        ) {
            let pattern = ResourcePattern::parse(&format!("{coll}/**")).unwrap();
            let mut path = vec![coll.clone()];
            path.extend(rest);
            prop_assert!(pattern.matches(&path.join("/")));
        }
    }
}
