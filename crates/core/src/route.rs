//! Route policies: which permission (and workspace) each method and path of a protected API
//! needs. A `RoutePolicy` spec file is JSON (or YAML) validated against
//! `schemas/route-policy.schema.json`; [`RoutePolicy::compile`] checks it once, and
//! [`RoutePolicy::access`] turns a request into the [`AccessRequest`] the decision needs.
//! A request no route matches is denied.
//!
//! ```json
//! {"routes": [
//!   {"method": "GET",  "path": "/agents/{agent_id}", "action": "read", "resource": "agents/{agent_id}"},
//!   {"method": "POST", "path": "/workspaces/{ws}/runs", "action": "execute",
//!    "resource": "workspaces/{ws}/runs", "workspace": {"path": "ws"}}
//! ]}
//! ```

use std::borrow::Cow;
use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::decision::{AccessRequest, Needs};
use crate::permission::{Action, is_name};
use crate::validation::{FieldError, ValidationErrors};

/// Most routes in one policy.
pub const MAX_ROUTES: usize = 1000;

/// A route policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutePolicySpec {
    /// Tried in order; the first route whose method and path match decides.
    pub routes: Vec<RouteSpec>,
}

/// One route: a method and path template, and what it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// An HTTP method, or `*` / `ANY` for every method.
    pub method: String,
    /// A path template: `/`-separated literals and `{param}`s; a last `{param+}` takes the rest.
    pub path: String,
    /// The action the route needs.
    pub action: Action,
    /// The resource it needs the action on, with `{param}`s from the path (empty: the root).
    #[serde(default)]
    pub resource: String,
    /// Where the workspace of the request comes from, if the route is workspace-scoped.
    #[serde(default)]
    pub workspace: Option<WorkspaceSource>,
}

/// Where a request names its workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum WorkspaceSource {
    /// A path parameter of the route.
    Path(String),
    /// A request header (case-insensitive).
    Header(String),
    /// A query-string parameter.
    Query(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Lit(String),
    Param(String),
    Rest(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) method: Option<String>,
    pub(crate) path: Vec<Seg>,
    action: Action,
    resource: Vec<Seg>,
    pub(crate) workspace: Option<WorkspaceSource>,
    pub(crate) template: String,
}

/// A checked route policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoutePolicy {
    routes: Vec<Route>,
}

/// What a request looks like to the policy.
#[derive(Debug, Clone, Copy)]
pub struct RouteRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub query: &'a [(&'a str, &'a str)],
    pub source_ip: Option<IpAddr>,
}

/// Why the policy refused a request before any key was looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteDenied {
    #[error("no route of the policy matches {0}")]
    NoRoute(String),
    #[error("the route {0} names its workspace where the request has none")]
    NoWorkspace(String),
    #[error("a path parameter of {0} is not a valid resource name")]
    BadParameter(String),
}

fn parse_template(
    field: &str,
    t: &str,
    params_from: Option<&[String]>,
) -> Result<Vec<Seg>, FieldError> {
    let bad = |m: &str| FieldError::new(field, m.to_owned());
    let trimmed = t.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = trimmed.split('/').collect();
    let mut out = Vec::with_capacity(parts.len());
    for (i, seg) in parts.iter().enumerate() {
        let param = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
        out.push(match param {
            Some(p) if p.ends_with('+') => {
                if i + 1 != parts.len() || params_from.is_some() {
                    return Err(bad("a {param+} may only end a path"));
                }
                Seg::Rest(p.trim_end_matches('+').to_owned())
            }
            Some(p) => Seg::Param(p.to_owned()),
            None if is_name(seg) && !seg.contains(['{', '}']) => Seg::Lit((*seg).to_owned()),
            None => return Err(bad("segments are names or {param}s")),
        });
        if let Some(Seg::Param(p) | Seg::Rest(p)) = out.last() {
            let valid = !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(bad("a parameter name is letters, digits and '_'"));
            }
            if let Some(known) = params_from
                && !known.contains(p)
            {
                return Err(bad(&format!("{{{p}}} is not a parameter of the path")));
            }
        }
    }
    Ok(out)
}

fn param_names(segs: &[Seg]) -> Vec<String> {
    segs.iter()
        .filter_map(|s| match s {
            Seg::Param(p) | Seg::Rest(p) => Some(p.clone()),
            Seg::Lit(_) => None,
        })
        .collect()
}

impl RoutePolicy {
    /// Checks every route, reporting every problem by its place in the file.
    pub fn compile(spec: &RoutePolicySpec) -> Result<Self, ValidationErrors> {
        let mut errors = Vec::new();
        if spec.routes.len() > MAX_ROUTES {
            errors.push(FieldError::new(
                "routes",
                format!("at most {MAX_ROUTES} routes"),
            ));
        }
        let mut routes = Vec::new();
        for (i, r) in spec.routes.iter().enumerate() {
            let at = |f: &str| format!("routes[{i}].{f}");
            let method = match r.method.to_ascii_uppercase().as_str() {
                "*" | "ANY" => None,
                m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => {
                    Some(m.to_owned())
                }
                _ => {
                    errors.push(FieldError::new(
                        at("method"),
                        "an HTTP method, or * for any",
                    ));
                    continue;
                }
            };
            let path = match parse_template(&at("path"), &r.path, None) {
                Ok(p) => p,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let names = param_names(&path);
            let resource = match parse_template(&at("resource"), &r.resource, Some(&names)) {
                Ok(p) => p,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            if let Some(WorkspaceSource::Path(p)) = &r.workspace
                && !names.contains(p)
            {
                errors.push(FieldError::new(
                    at("workspace"),
                    format!("{{{p}}} is not a parameter of the path"),
                ));
                continue;
            }
            routes.push(Route {
                method,
                path,
                action: r.action,
                resource,
                workspace: r.workspace.clone(),
                template: format!("{} {}", r.method.to_ascii_uppercase(), r.path),
            });
        }
        if errors.is_empty() {
            Ok(Self { routes })
        } else {
            Err(ValidationErrors(errors))
        }
    }

    pub(crate) fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// A policy of the `i`th route alone.
    pub(crate) fn only(&self, i: usize) -> Self {
        Self {
            routes: self.routes.get(i).cloned().into_iter().collect(),
        }
    }

    /// What `request` needs from its key, by the first matching route.
    pub fn access(&self, request: &RouteRequest<'_>) -> Result<(AccessRequest, &str), RouteDenied> {
        let segs: Vec<&str> = request.path.split('/').filter(|s| !s.is_empty()).collect();
        for route in &self.routes {
            if route
                .method
                .as_deref()
                .is_some_and(|m| !m.eq_ignore_ascii_case(request.method))
            {
                continue;
            }
            let Some(params) = match_path(&route.path, &segs) else {
                continue;
            };
            let mut resource = String::new();
            for (i, seg) in route.resource.iter().enumerate() {
                let value = match seg {
                    Seg::Lit(l) => l.as_str(),
                    Seg::Param(p) | Seg::Rest(p) => params.get(p).unwrap_or_default(),
                };
                // A parameter becomes part of a resource path: it must be a plain name.
                if !value.split('/').all(is_name) {
                    return Err(RouteDenied::BadParameter(route.template.clone()));
                }
                if i > 0 {
                    resource.push('/');
                }
                resource.push_str(value);
            }
            let workspace = match &route.workspace {
                None => None,
                Some(WorkspaceSource::Path(p)) => params.get(p).map(str::to_owned),
                Some(WorkspaceSource::Header(h)) => request
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(h))
                    .map(|(_, v)| (*v).to_owned()),
                Some(WorkspaceSource::Query(q)) => request
                    .query
                    .iter()
                    .find(|(k, _)| k == q)
                    .map(|(_, v)| (*v).to_owned()),
            };
            if route.workspace.is_some() && workspace.as_deref().is_none_or(|w| !is_name(w)) {
                return Err(RouteDenied::NoWorkspace(route.template.clone()));
            }
            let access = AccessRequest {
                needs: Needs::Permission(route.action, resource),
                workspace,
                source_ip: request.source_ip,
            };
            return Ok((access, &route.template));
        }
        Err(RouteDenied::NoRoute(format!(
            "{} {}",
            request.method, request.path
        )))
    }
}

/// A matched route's path parameters: names from its template, values from the request's path
/// (a `{rest+}` value is its segments joined by `/`).
struct Params<'t, 's>(Vec<(&'t str, Cow<'s, str>)>);

impl Params<'_, '_> {
    /// A parameter's value; a name the template repeats has its last value.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| &**v)
    }
}

/// The path parameters of `segs` under `template`, if it matches. A last `{param+}` takes the
/// rest of the path (at least one segment).
fn match_path<'t, 's>(template: &'t [Seg], segs: &[&'s str]) -> Option<Params<'t, 's>> {
    let mut params = Vec::new();
    for (i, seg) in template.iter().enumerate() {
        match seg {
            Seg::Lit(l) => {
                if segs.get(i) != Some(&l.as_str()) {
                    return None;
                }
            }
            Seg::Param(p) => params.push((p.as_str(), Cow::Borrowed(*segs.get(i)?))),
            Seg::Rest(p) => {
                let rest = segs.get(i..).filter(|r| !r.is_empty())?;
                params.push((p.as_str(), Cow::Owned(rest.join("/"))));
                return Some(Params(params));
            }
        }
    }
    (template.len() == segs.len()).then_some(Params(params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(routes: serde_json::Value) -> RoutePolicy {
        let spec: RoutePolicySpec = serde_json::from_value(json!({ "routes": routes })).unwrap();
        RoutePolicy::compile(&spec).unwrap()
    }

    fn req<'a>(
        method: &'a str,
        path: &'a str,
        headers: &'a [(&'a str, &'a str)],
    ) -> RouteRequest<'a> {
        RouteRequest {
            method,
            path,
            headers,
            query: &[],
            source_ip: None,
        }
    }

    #[test]
    fn routes_map_requests_to_permissions_and_workspaces() {
        let p = policy(json!([
            {"method": "GET", "path": "/agents/{agent_id}", "action": "read", "resource": "agents/{agent_id}"},
            {"method": "POST", "path": "/workspaces/{ws}/runs", "action": "execute", "resource": "workspaces/{ws}/runs", "workspace": {"path": "ws"}},
            {"method": "*", "path": "/files/{key+}", "action": "read", "resource": "files/{key}", "workspace": {"header": "X-Workspace"}},
        ]));
        let (a, route) = p.access(&req("get", "/agents/ag_1", &[])).unwrap();
        assert_eq!(route, "GET /agents/{agent_id}");
        assert_eq!(
            a.needs,
            Needs::Permission(Action::Read, "agents/ag_1".into())
        );
        assert_eq!(a.workspace, None);
        let (a, _) = p
            .access(&req("POST", "/workspaces/ws_2/runs/", &[]))
            .unwrap();
        assert_eq!(
            (a.needs, a.workspace),
            (
                Needs::Permission(Action::Execute, "workspaces/ws_2/runs".into()),
                Some("ws_2".into())
            )
        );
        let (a, _) = p
            .access(&req("PUT", "/files/a/b/c.txt", &[("x-workspace", "ws_9")]))
            .unwrap();
        assert_eq!(
            (a.needs, a.workspace),
            (
                Needs::Permission(Action::Read, "files/a/b/c.txt".into()),
                Some("ws_9".into())
            )
        );
    }

    #[test]
    fn a_parameter_named_twice_takes_its_last_value() {
        let p = policy(json!([
            {"method": "GET", "path": "/{ws}/docs/{ws}", "action": "read", "resource": "docs/{ws}", "workspace": {"path": "ws"}},
        ]));
        let (a, _) = p.access(&req("GET", "/ws_1/docs/ws_2", &[])).unwrap();
        assert_eq!(
            (a.needs, a.workspace),
            (
                Needs::Permission(Action::Read, "docs/ws_2".into()),
                Some("ws_2".into())
            )
        );
    }

    #[test]
    fn anything_else_is_denied() {
        let p = policy(json!([
            {"method": "GET", "path": "/agents/{id}", "action": "read", "resource": "agents/{id}"},
            {"method": "GET", "path": "/w/{x}", "action": "read", "workspace": {"header": "X-Workspace"}},
        ]));
        assert!(matches!(
            p.access(&req("DELETE", "/agents/a", &[])),
            Err(RouteDenied::NoRoute(_))
        ));
        assert!(matches!(
            p.access(&req("GET", "/agents", &[])),
            Err(RouteDenied::NoRoute(_))
        ));
        assert!(matches!(
            p.access(&req("GET", "/agents/a/b", &[])),
            Err(RouteDenied::NoRoute(_))
        ));
        assert!(matches!(
            p.access(&req("GET", "/agents/..", &[])),
            Err(RouteDenied::BadParameter(_))
        ));
        assert!(matches!(
            p.access(&req("GET", "/w/1", &[])),
            Err(RouteDenied::NoWorkspace(_))
        ));
        assert!(
            RoutePolicy::default()
                .access(&req("GET", "/", &[]))
                .is_err(),
            "an empty policy denies all"
        );
    }

    #[test]
    fn bad_policies_are_refused_by_place() {
        let spec: RoutePolicySpec = serde_json::from_value(json!({"routes": [
            {"method": "FETCH", "path": "/a", "action": "read"},
            {"method": "GET", "path": "/a/{b c}", "action": "read"},
            {"method": "GET", "path": "/a/{id}", "action": "read", "resource": "a/{other}"},
            {"method": "GET", "path": "/a/{rest+}/b", "action": "read"},
            {"method": "GET", "path": "/a/{id}", "action": "read", "workspace": {"path": "ws"}},
        ]}))
        .unwrap();
        let fields: Vec<_> = RoutePolicy::compile(&spec)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "routes[0].method",
                "routes[1].path",
                "routes[2].resource",
                "routes[3].path",
                "routes[4].workspace"
            ]
        );
        assert!(
            serde_json::from_value::<RoutePolicySpec>(
                json!({"routes": [{"method": "GET", "path": "/", "action": "fly"}]})
            )
            .is_err()
        );
        assert!(
            serde_json::from_value::<RoutePolicySpec>(json!({"routes": [], "extra": 1})).is_err()
        );
    }
}
