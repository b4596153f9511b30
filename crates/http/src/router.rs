//! The routes of the management API: one table that builds both the Router and the OpenAPI
//! document, so every route is documented and every documented route is served.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::routing::{MethodFilter, MethodRouter, on};
use keyward_api::groups::{CreateGroupRequest, Group};
use keyward_api::keys::{ApiKey, CreateKeyRequest, EditedKey, KeyWithSecret, UpdateKeyRequest};
use keyward_api::listing::{AuditListing, GroupListing, KeyListing};
use keyward_api::presets::{Preset, PresetListing, PresetRequest};
use keyward_api::problem::Problem;
use keyward_api::usage::{AccountUsage, KeyUsage};
use keyward_api::verify::{VerifyRequest, VerifyResult};
use keyward_service::App;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::problem::{HttpError, respond};
use crate::{audit, groups, keys, openapi, presets, verify};

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
    /// The success status and its body (`None`: no body).
    pub success: (u16, Option<SchemaFn>),
    /// Other statuses this endpoint answers, beyond the ones every endpoint may.
    pub also: &'static [u16],
    /// Query parameters.
    pub query: &'static [Param],
    /// Request headers it reads.
    pub headers: &'static [(&'static str, &'static str)],
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

/// A query parameter: name, description and schema.
pub type Param = (&'static str, &'static str, ParamSchema);

/// The JSON Schema of a parameter.
#[derive(Debug, Clone, Copy)]
pub enum ParamSchema {
    /// Written out, as JSON.
    Json(&'static str),
    /// The core's id rule.
    Id,
}

const CURSOR: Param = (
    "cursor",
    "Where the previous page ended (its next_cursor).",
    ParamSchema::Json(r#"{"type": "string", "pattern": "^([0-9a-f]{2})+$"}"#),
);
const LIMIT: Param = (
    "limit",
    "Items per page (default 50).",
    ParamSchema::Json(r#"{"type": "integer", "minimum": 1, "maximum": 200}"#),
);
const PAGE: &[Param] = &[CURSOR, LIMIT];
const KEY_LIST: &[Param] = &[
    (
        "status",
        "Which keys by status (default active).",
        ParamSchema::Json(
            r#"{"type": "string", "enum": ["active", "inactive", "expired", "revoked", "all"]}"#,
        ),
    ),
    (
        "workspace",
        "Only keys associated with this workspace.",
        ParamSchema::Id,
    ),
    ("group", "Only keys in this sharing group.", ParamSchema::Id),
    (
        "q",
        "Only keys whose name contains this, in any case.",
        ParamSchema::Json(r#"{"type": "string"}"#),
    ),
    CURSOR,
    LIMIT,
];
const DAYS: &[Param] = &[
    (
        "from",
        "First day (default: 29 days before `to`); a range covers at most 400 days.",
        ParamSchema::Json(r#"{"type": "string", "format": "date"}"#),
    ),
    (
        "to",
        "Last day (default: today, UTC).",
        ParamSchema::Json(r#"{"type": "string", "format": "date"}"#),
    ),
];

fn doc(id: &'static str, summary: &'static str) -> Doc {
    Doc {
        id,
        summary,
        auth: Auth::Admin,
        request: None,
        success: (200, None),
        also: &[],
        query: &[],
        headers: &[],
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
                )],
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
                headers: &[("If-Match", "The ETag last read; a stale one answers 412.")],
                ..doc(
                    "updateKey",
                    "Edit a key: name, description, scopes, ranges, rate limit, expiry, active, metadata",
                )
            },
        ),
        route(
            "delete",
            "/v1/keys/{id}",
            keys::delete,
            Doc {
                success: (204, None),
                also: &[404, 409],
                ..doc("deleteKey", "Delete a key; its secret stops working")
            },
        ),
        route(
            "post",
            "/v1/keys/{id}/revoke",
            keys::revoke,
            Doc {
                success: (200, Some(schema::<ApiKey>)),
                also: &[404, 409],
                ..doc("revokeKey", "Revoke a key for good")
            },
        ),
        route(
            "post",
            "/v1/keys/{id}/regenerate",
            keys::regenerate,
            Doc {
                success: (200, Some(schema::<KeyWithSecret>)),
                also: &[404, 409],
                ..doc(
                    "regenerateKey",
                    "Issue a new secret for the key; the old one stops at once",
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
