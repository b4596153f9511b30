//! The routes of the management API: one table that builds both the Router and the OpenAPI
//! document, so every route is documented and every documented route is served.
//!
//! Parameters and headers carry their schemas here, built from the rule that checks them (the
//! core's id pattern, the store's page size, the `If-Match` parser's pattern), so the document
//! changes when a rule does. Body schemas come from the wire types' own attributes.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::routing::{MethodFilter, MethodRouter, on};
use keyward_api::groups::{CreateGroupRequest, Group};
use keyward_api::keys::{
    ApiKey, CreateKeyRequest, EditedKey, KeyWithSecret, RegenerateRequest, RegeneratedKey,
    UpdateKeyRequest,
};
use keyward_api::listing::{AuditListing, GroupListing, KeyListing};
use keyward_api::presets::{Preset, PresetListing, PresetRequest};
use keyward_api::problem::Problem;
use keyward_api::usage::{AccountUsage, KeyUsage};
use keyward_api::verify::{VerifyRequest, VerifyResult};
use keyward_core::id::id_pattern;
use keyward_core::idempotency::idempotency_key_pattern;
use keyward_core::key::KeyStatus;
use keyward_service::App;
use keyward_service::usage::{DEFAULT_USAGE_DAYS, MAX_USAGE_DAYS};
use keyward_store::port::MAX_PAGE_SIZE;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Value, json};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::extract::{DEFAULT_PAGE_SIZE, IF_MATCH_PATTERN};
use crate::keys::ETAG_PATTERN;
use crate::problem::{HttpError, respond};
use crate::{audit, console, groups, keys, openapi, presets, verify};

/// A schema for `T`, as a reference into the document's components.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// How an endpoint is documented.
#[derive(Debug, Clone, Copy)]
pub struct Doc {
    pub id: &'static str,
    pub summary: &'static str,
    /// The key a caller presents in its headers.
    pub auth: Auth,
    pub request: Option<SchemaFn>,
    /// Whether the request body may be left out (`regenerate`: no body is no grace).
    pub body_optional: bool,
    /// The success status and its body (`None`: no body).
    pub success: (u16, Option<SchemaFn>),
    /// Other statuses this endpoint answers, beyond the ones every endpoint may.
    pub also: &'static [u16],
    /// Query parameters.
    pub query: &'static [Param],
    /// Request headers it reads.
    pub headers: &'static [Param],
    /// Headers every success answer carries.
    pub response_headers: &'static [Param],
    /// Operations a success answer leads to (OpenAPI `links`).
    pub links: &'static [Link],
}

/// One route: method, path, handler and documentation.
#[derive(Debug)]
pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub handler: MethodRouter<App>,
    pub doc: Doc,
}

/// What an endpoint asks of its caller's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// An admin key (`admin` on `keys/**`).
    Admin,
    /// A verifier key (`read` or `admin` on `keys/**`) if the caller wants more, or when the
    /// deployment requires it.
    Optional,
    /// None.
    None,
}

/// A parameter or header: name, description and schema.
pub type Param = (&'static str, &'static str, ParamSchema);

/// The JSON Schema of a parameter or header.
#[derive(Debug, Clone, Copy)]
pub enum ParamSchema {
    /// Written out, as JSON.
    Json(&'static str),
    /// Built from the rule that checks the value.
    Rule(fn() -> Value),
}

impl ParamSchema {
    pub fn to_value(self) -> Value {
        match self {
            Self::Json(text) => {
                serde_json::from_str(text).unwrap_or_else(|_| json!({"type": "string"}))
            }
            Self::Rule(schema) => schema(),
        }
    }
}

/// A link: the operation a success answer leads to, and that operation's parameters as runtime
/// expressions (`$response.body#/id`, `$request.path.id`, `$response.header.ETag`); a parameter
/// named `header.X` is the header `X`.
pub type Link = (&'static str, &'static [(&'static str, &'static str)]);

/// The core's id rule: every path parameter, and the id filters.
pub fn id_schema() -> Value {
    json!({"type": "string", "pattern": id_pattern()})
}

/// A cursor as the store writes one (`crates/store/src/cursor.rs`): the last item's sort
/// fields, hex-encoded, at most 4096 characters. Only one a previous page of the same listing
/// answered is accepted.
fn cursor_schema() -> Value {
    json!({"type": "string", "pattern": "^(?:[0-9A-Fa-f]{2}){1,2048}$"})
}

fn limit_schema() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE})
}

fn key_status_schema() -> Value {
    let mut statuses: Vec<&str> = KeyStatus::ALL.iter().map(|s| s.as_str()).collect();
    statuses.push("all");
    json!({"type": "string", "enum": statuses, "default": "active"})
}

/// A day of a usage range; what the range as a whole must be is said on `from`.
fn from_day_schema() -> Value {
    json!({
        "type": "string",
        "format": "date",
        "description": format!(
            "Default: {} days before `to`. Not after `to`; a range covers at most {MAX_USAGE_DAYS} days.",
            DEFAULT_USAGE_DAYS - 1
        ),
    })
}

fn to_day_schema() -> Value {
    json!({"type": "string", "format": "date", "description": "Default: today (UTC)."})
}

fn if_match_schema() -> Value {
    json!({"type": "string", "pattern": IF_MATCH_PATTERN})
}

fn etag_schema() -> Value {
    json!({"type": "string", "pattern": ETAG_PATTERN})
}

fn idempotency_key_schema() -> Value {
    json!({"type": "string", "pattern": idempotency_key_pattern()})
}

const CURSOR: Param = (
    "cursor",
    "Where the previous page ended (its next_cursor).",
    ParamSchema::Rule(cursor_schema),
);
const LIMIT: Param = ("limit", "Items per page.", ParamSchema::Rule(limit_schema));
const PAGE: &[Param] = &[CURSOR, LIMIT];
const KEY_LIST: &[Param] = &[
    (
        "status",
        "Which keys by status.",
        ParamSchema::Rule(key_status_schema),
    ),
    (
        "workspace",
        "Only keys associated with this workspace.",
        ParamSchema::Rule(id_schema),
    ),
    (
        "group",
        "Only keys in this sharing group.",
        ParamSchema::Rule(id_schema),
    ),
    (
        "q",
        "Only keys whose name contains this, compared as names are (after NFKC case folding: `ci` finds `CI-Bot`, `strasse` finds `Straße`).",
        ParamSchema::Json(r#"{"type": "string"}"#),
    ),
    CURSOR,
    LIMIT,
];
const DAYS: &[Param] = &[
    ("from", "First day.", ParamSchema::Rule(from_day_schema)),
    ("to", "Last day.", ParamSchema::Rule(to_day_schema)),
];

/// The version of the key answered, for `If-Match`.
const ETAG: Param = (
    "ETag",
    "The key's version, for If-Match.",
    ParamSchema::Rule(etag_schema),
);
const KEY_RECORD: &[Param] = &[ETAG];
/// A change conditional on the version the caller read.
const IF_MATCH: &[Param] = &[(
    "If-Match",
    "The ETag last read; a stale one answers 412.",
    ParamSchema::Rule(if_match_schema),
)];

/// Where a new key's id is in a create answer, and where it is in a request for the key.
const NEW_KEY: &[(&str, &str)] = &[("id", "$response.body#/key/id")];
const SAME_KEY: &[(&str, &str)] = &[("id", "$request.path.id")];
const NEW_GROUP: &[(&str, &str)] = &[("id", "$response.body#/id")];
const KEY_CREATED: &[Link] = &[
    ("getKey", NEW_KEY),
    ("updateKey", NEW_KEY),
    ("deleteKey", NEW_KEY),
    ("revokeKey", NEW_KEY),
    ("regenerateKey", NEW_KEY),
    ("addKeyWorkspace", NEW_KEY),
    ("removeKeyWorkspace", NEW_KEY),
    ("getKeyUsage", NEW_KEY),
    ("addGroupMember", &[("key_id", "$response.body#/key/id")]),
    ("removeGroupMember", &[("key_id", "$response.body#/key/id")]),
];
const KEY_READ: &[Link] = &[(
    "updateKey",
    &[
        ("id", "$request.path.id"),
        ("header.If-Match", "$response.header.ETag"),
    ],
)];
const KEY_EDITED: &[Link] = &[("getKey", SAME_KEY), ("revokeKey", SAME_KEY)];
const GROUP_CREATED: &[Link] = &[
    ("getGroup", NEW_GROUP),
    ("deleteGroup", NEW_GROUP),
    ("listGroupMembers", NEW_GROUP),
    ("addGroupMember", NEW_GROUP),
    ("removeGroupMember", NEW_GROUP),
];
const PRESET_PUT: &[Link] = &[("deletePreset", &[("name", "$response.body#/name")])];

fn doc(id: &'static str, summary: &'static str) -> Doc {
    Doc {
        id,
        summary,
        auth: Auth::Admin,
        request: None,
        body_optional: false,
        success: (200, None),
        also: &[],
        query: &[],
        headers: &[],
        response_headers: &[],
        links: &[],
    }
}

fn route<H, T>(method: &'static str, path: &'static str, handler: H, doc: Doc) -> Endpoint
where
    H: axum::handler::Handler<T, App>,
    T: 'static,
{
    let filter = match method {
        "get" => MethodFilter::GET,
        "post" => MethodFilter::POST,
        "put" => MethodFilter::PUT,
        "patch" => MethodFilter::PATCH,
        _ => MethodFilter::DELETE,
    };
    Endpoint {
        method,
        path,
        handler: on(filter, handler),
        doc,
    }
}

/// Every endpoint of the API.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        route(
            "post",
            "/v1/keys",
            keys::create,
            Doc {
                request: Some(schema::<CreateKeyRequest>),
                success: (201, Some(schema::<KeyWithSecret>)),
                also: &[200, 409, 422],
                headers: &[(
                    "Idempotency-Key",
                    "Makes a retried create answer the first key instead of making another.",
                    ParamSchema::Rule(idempotency_key_schema),
                )],
                response_headers: &[
                    ETAG,
                    (
                        "Location",
                        "Where the new key is.",
                        ParamSchema::Json(r#"{"type": "string", "format": "uri-reference"}"#),
                    ),
                ],
                links: KEY_CREATED,
                ..doc(
                    "createKey",
                    "Create a key; the secret is in this response only",
                )
            },
        ),
        route(
            "get",
            "/v1/keys",
            keys::list,
            Doc {
                success: (200, Some(schema::<KeyListing>)),
                query: KEY_LIST,
                ..doc("listKeys", "List keys by name, filtered and paged")
            },
        ),
        route(
            "get",
            "/v1/keys/{id}",
            keys::get,
            Doc {
                success: (200, Some(schema::<ApiKey>)),
                also: &[404],
                response_headers: KEY_RECORD,
                links: KEY_READ,
                ..doc("getKey", "Read a key (with an ETag of its version)")
            },
        ),
        route(
            "patch",
            "/v1/keys/{id}",
            keys::update,
            Doc {
                request: Some(schema::<UpdateKeyRequest>),
                success: (200, Some(schema::<EditedKey>)),
                also: &[404, 409, 412],
                headers: IF_MATCH,
                response_headers: KEY_RECORD,
                links: KEY_EDITED,
                ..doc(
                    "updateKey",
                    "Edit a key: name, description, scopes, workspaces, groups, ranges, rate limit, expiry, active, metadata, manager",
                )
            },
        ),
        route(
            "delete",
            "/v1/keys/{id}",
            keys::delete,
            Doc {
                success: (204, None),
                also: &[404, 409, 412],
                headers: IF_MATCH,
                ..doc("deleteKey", "Delete a key; its secret stops working")
            },
        ),
        route(
            "post",
            "/v1/keys/{id}/revoke",
            keys::revoke,
            Doc {
                success: (200, Some(schema::<ApiKey>)),
                also: &[404, 409, 412],
                headers: IF_MATCH,
                response_headers: KEY_RECORD,
                ..doc("revokeKey", "Revoke a key for good")
            },
        ),
        route(
            "post",
            "/v1/keys/{id}/regenerate",
            keys::regenerate,
            Doc {
                request: Some(schema::<RegenerateRequest>),
                body_optional: true,
                success: (200, Some(schema::<RegeneratedKey>)),
                also: &[404, 409, 412],
                headers: IF_MATCH,
                response_headers: KEY_RECORD,
                links: KEY_EDITED,
                ..doc(
                    "regenerateKey",
                    "Issue a new secret for the key; the old one stops at once, or after a grace period",
                )
            },
        ),
        route(
            "put",
            "/v1/keys/{id}/workspaces/{workspace}",
            keys::add_workspace,
            Doc {
                success: (200, Some(schema::<ApiKey>)),
                also: &[404, 409],
                response_headers: KEY_RECORD,
                ..doc("addKeyWorkspace", "Associate the key with a workspace")
            },
        ),
        route(
            "delete",
            "/v1/keys/{id}/workspaces/{workspace}",
            keys::remove_workspace,
            Doc {
                success: (200, Some(schema::<ApiKey>)),
                also: &[404, 409],
                response_headers: KEY_RECORD,
                ..doc(
                    "removeKeyWorkspace",
                    "End the key's association with a workspace",
                )
            },
        ),
        route(
            "get",
            "/v1/keys/{id}/usage",
            keys::usage,
            Doc {
                success: (200, Some(schema::<KeyUsage>)),
                also: &[404],
                query: DAYS,
                ..doc("getKeyUsage", "A key's lifetime use and requests per day")
            },
        ),
        route(
            "get",
            "/v1/usage",
            audit::usage,
            Doc {
                success: (200, Some(schema::<AccountUsage>)),
                query: DAYS,
                ..doc("getUsage", "The account's requests per day")
            },
        ),
        route(
            "post",
            "/v1/groups",
            groups::create,
            Doc {
                request: Some(schema::<CreateGroupRequest>),
                success: (201, Some(schema::<Group>)),
                also: &[409],
                links: GROUP_CREATED,
                ..doc("createGroup", "Create a sharing group")
            },
        ),
        route(
            "get",
            "/v1/groups",
            groups::list,
            Doc {
                success: (200, Some(schema::<GroupListing>)),
                query: PAGE,
                ..doc("listGroups", "List sharing groups")
            },
        ),
        route(
            "get",
            "/v1/groups/{id}",
            groups::get,
            Doc {
                success: (200, Some(schema::<Group>)),
                also: &[404],
                ..doc("getGroup", "Read a sharing group")
            },
        ),
        route(
            "delete",
            "/v1/groups/{id}",
            groups::delete,
            Doc {
                success: (204, None),
                also: &[404],
                ..doc(
                    "deleteGroup",
                    "Delete a sharing group, removing it from its members",
                )
            },
        ),
        route(
            "get",
            "/v1/groups/{id}/members",
            groups::members,
            Doc {
                success: (200, Some(schema::<KeyListing>)),
                also: &[404],
                query: PAGE,
                ..doc("listGroupMembers", "List the keys in a sharing group")
            },
        ),
        route(
            "put",
            "/v1/groups/{id}/members/{key_id}",
            groups::add_member,
            Doc {
                success: (200, Some(schema::<ApiKey>)),
                also: &[404, 409],
                ..doc("addGroupMember", "Add a key to a sharing group")
            },
        ),
        route(
            "delete",
            "/v1/groups/{id}/members/{key_id}",
            groups::remove_member,
            Doc {
                success: (200, Some(schema::<ApiKey>)),
                also: &[404],
                ..doc("removeGroupMember", "Remove a key from a sharing group")
            },
        ),
        route(
            "get",
            "/v1/presets",
            presets::list,
            Doc {
                success: (200, Some(schema::<PresetListing>)),
                ..doc("listPresets", "List built-in and defined presets")
            },
        ),
        route(
            "put",
            "/v1/presets/{name}",
            presets::put,
            Doc {
                request: Some(schema::<PresetRequest>),
                success: (200, Some(schema::<Preset>)),
                also: &[409],
                links: PRESET_PUT,
                ..doc("putPreset", "Define or replace a preset")
            },
        ),
        route(
            "delete",
            "/v1/presets/{name}",
            presets::delete,
            Doc {
                success: (204, None),
                also: &[404, 409],
                ..doc("deletePreset", "Delete a defined preset")
            },
        ),
        route(
            "get",
            "/v1/audit",
            audit::list,
            Doc {
                success: (200, Some(schema::<AuditListing>)),
                query: PAGE,
                ..doc("listAudit", "The audit log, newest first")
            },
        ),
        route(
            "post",
            "/v1/verify",
            verify::verify,
            Doc {
                auth: Auth::Optional,
                request: Some(schema::<VerifyRequest>),
                success: (200, Some(schema::<VerifyResult>)),
                also: &[401, 403, 429],
                ..doc(
                    "verifyKey",
                    "Verify a key (the key in the body; no admin key needed)",
                )
            },
        ),
        route(
            "get",
            "/v1/openapi.json",
            openapi::serve,
            Doc {
                auth: Auth::None,
                ..doc("openapi", "This document")
            },
        ),
        route(
            "get",
            "/healthz",
            health,
            Doc {
                auth: Auth::None,
                ..doc("health", "Liveness: answers ok while the process serves")
            },
        ),
        route(
            "get",
            "/readyz",
            ready,
            Doc {
                auth: Auth::None,
                also: &[503],
                ..doc(
                    "ready",
                    "Readiness: answers ready while the store answers, 503 otherwise",
                )
            },
        ),
    ]
}

async fn health() -> &'static str {
    "ok"
}

async fn ready(State(app): State<App>) -> Result<&'static str, HttpError> {
    app.ready().await?;
    Ok("ready")
}

/// The whole management API. Request and response bodies are never logged: they carry
/// secrets (a created key, a key to verify).
pub fn router(app: App) -> Router {
    let limit = app.settings().max_body_bytes;
    endpoints()
        .into_iter()
        .fold(Router::new(), |r, e| r.route(e.path, e.handler))
        .merge(console::routes())
        .fallback(|| async { respond(Problem::not_found_route()) })
        .method_not_allowed_fallback(|| async { respond(Problem::method_not_allowed()) })
        .layer(DefaultBodyLimit::max(limit))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}
