//! Cache-safe answers: one key's rights over every route of a route policy, written as the
//! resource patterns of an API Gateway policy, so that a policy API Gateway keeps in its
//! authorizer cache (keyed by the token) answers every later request of that key right.
//!
//! # The construction
//!
//! Each route is tried with every value that can change its decision: the names the key's
//! scopes and workspaces spell out and the literal segments of the routes, plus one *fresh*
//! name that stands for every other value (no pattern tells two fresh names apart, so one
//! decides for all). A `{rest+}` parameter is tried with every path of those names up to one
//! segment longer than the key's longest scope pattern (a pattern that matches a longer path
//! matches one of these too), and such a route must be decided alike in every case: a pattern
//! cannot bound the depth of what it allows. Each case is decided by the one decision function
//! ([`crate::route::RoutePolicy::access`] and [`crate::decision::decide`]), first matching
//! route and all; a `{rest+}` route's cases by that route alone (its deeper paths may pass the
//! routes before it), the overlap checks below settling what it shares with them. An
//! any-method route is tried with each method the policy names and with one it does not.
//!
//! A route decided the same way in every case becomes one statement on its pattern
//! (`GET/agents/*`); otherwise each case becomes its own (`GET/agents/ag_1`). Denials are
//! explicit (API Gateway lets a Deny overrule any Allow), except where a Deny's pattern would
//! also cover a request that is allowed: that case is left to the implicit deny, and then no
//! Allow may cover it either.
//!
//! # What is proven, and what is not
//!
//! API Gateway's `*` matches any text, `/` included, so patterns of different routes overlap.
//! [`grants`] checks every Deny against every allowed case and every Allow against every
//! implicitly denied case by intersecting the pattern with the case's language (a small
//! automaton product, [`overlaps`]); a key whose rights cannot be written exactly is
//! [`Inexact`], and the authorizer then answers as without the setting (the ARN decided only).
//! So a cached policy never allows a request of a route the key may not call. Two things it
//! cannot see are the deployment's to keep: every method and resource the authorizer guards is
//! a route of the policy (a path no route matches is denied by keyward, but an Allow pattern
//! may cover it), and the identity sources hold everything else a decision reads (the source
//! address, for keys limited to some).
//!
//! Paths no case has, which keyward refuses or reads otherwise, are denied outright whenever
//! anything is allowed ([`ODD_PATHS`]: empty segments, a trailing `/`, dot segments, `%`
//! escapes and `;`). A path parameter with another character no name has (`@`, `~`, ...) is
//! refused by keyward's own decision but covered by a `*` of a route the key may call for
//! every name: the backend then sees a value that names nothing it holds.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::decision::{Code, decide};
use crate::key::ApiKey;
use crate::route::{RoutePolicy, RouteRequest, Seg, WorkspaceSource};
use crate::validation::{FieldError, ValidationErrors};

/// The largest policy document API Gateway takes from a Lambda authorizer ("Lambda authorizer
/// result size", a fixed quota of 8 KB).
pub const MAX_POLICY_BYTES: usize = 8 * 1024;

/// The longest ARN prefix (`arn:aws:execute-api:<region>:<account>:<api id>/<stage>/`) the
/// start-up check allows for; stage names are at most 128 characters, most far shorter.
pub const ARN_PREFIX_ALLOWANCE: usize = 96;

/// The most cases one route is tried with; a key that needs more is [`Inexact`].
pub const MAX_CASES_PER_ROUTE: usize = 256;

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Effect {
    Allow,
    Deny,
}

impl Effect {
    /// The effect of a decision that allows, or not.
    pub const fn of(allowed: bool) -> Self {
        if allowed { Self::Allow } else { Self::Deny }
    }
}

/// One statement: an effect on a pattern of `<METHOD>/<path>` (after the stage's ARN prefix),
/// where `*` matches any text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Statement {
    pub effect: Effect,
    pub pattern: String,
}

/// Why a key's rights cannot be written as one exact policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Inexact {
    #[error("route {0} needs more than {MAX_CASES_PER_ROUTE} cases for this key")]
    TooManyCases(String),
    #[error("route {0} allows some of its paths and not others")]
    PartialPath(String),
    #[error("{route}: the pattern {pattern} of another route would decide some of its requests")]
    Overlap { route: String, pattern: String },
}

/// One case of a route: its method (`None`: any other method) and segments.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Case {
    route: usize,
    /// `None`: any method but `other_than`.
    method: Option<String>,
    other_than: Vec<String>,
    segs: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    /// Any one name but those listed (they are cases of their own).
    Fresh(Vec<String>),
    /// Any path of one or more names (a `{rest+}` route decided alike for all).
    Path,
}

impl Case {
    /// The pattern covering every request of the case.
    fn pattern(&self) -> String {
        let mut out = self.method.clone().unwrap_or_else(|| "*".to_owned());
        out.push('/');
        let parts: Vec<String> = self
            .segs
            .iter()
            .map(|p| match p {
                Part::Lit(l) => l.clone(),
                Part::Fresh(_) | Part::Path => "*".to_owned(),
            })
            .collect();
        out.push_str(&parts.join("/"));
        out
    }

    /// One concrete request of the case, with fresh names that no pattern names (and, for any
    /// other method, `other_method`).
    fn example(&self, fresh: &str, other_method: &str) -> (String, String) {
        let method = self
            .method
            .clone()
            .unwrap_or_else(|| other_method.to_owned());
        let mut k = 0;
        let mut next = || {
            k += 1;
            format!("{fresh}{k}")
        };
        let parts: Vec<String> = self
            .segs
            .iter()
            .map(|p| match p {
                Part::Lit(l) => l.clone(),
                Part::Fresh(_) | Part::Path => next(),
            })
            .collect();
        (method, format!("/{}", parts.join("/")))
    }

    /// The case's requests as segments of `<METHOD>/<path>` (the root path: one empty one).
    fn text(&self) -> Vec<TextSeg> {
        let mut t = vec![match &self.method {
            Some(m) => TextSeg::Lit(m.clone()),
            None => TextSeg::Name(self.other_than.clone()),
        }];
        if self.segs.is_empty() {
            t.push(TextSeg::Lit(String::new()));
        }
        t.extend(self.segs.iter().map(|p| match p {
            Part::Lit(l) => TextSeg::Lit(l.clone()),
            Part::Fresh(but) => TextSeg::Name(but.clone()),
            Part::Path => TextSeg::Path,
        }));
        t
    }
}

/// Checks, at start-up, that a route policy can be answered cache-safely: no route takes its
/// workspace from a header or the query string (a cached answer would serve another
/// workspace), and a policy allowing every route fits
/// [`MAX_POLICY_BYTES`].
pub fn check(policy: &RoutePolicy) -> Result<(), ValidationErrors> {
    let mut errors = Vec::new();
    let mut bytes = POLICY_OVERHEAD
        + ODD_PATHS
            .iter()
            .map(|p| statement_bytes(p) + ARN_PREFIX_ALLOWANCE)
            .sum::<usize>();
    for (i, route) in policy.routes().iter().enumerate() {
        if matches!(
            route.workspace,
            Some(WorkspaceSource::Header(_) | WorkspaceSource::Query(_))
        ) {
            errors.push(FieldError::new(
                format!("routes[{i}].workspace"),
                "cache-safe answers need the workspace in the path: a cached answer would \
                 serve a request naming another workspace in a header or the query",
            ));
        }
        bytes += statement_bytes(&whole_route(route).pattern()) + ARN_PREFIX_ALLOWANCE;
    }
    if bytes > MAX_POLICY_BYTES {
        errors.push(FieldError::new(
            "routes",
            format!(
                "a policy allowing every route would take about {bytes} bytes, over API \
                 Gateway's {MAX_POLICY_BYTES}: cache-safe answers need fewer routes (or \
                 routes merged with parameters)"
            ),
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(errors))
    }
}

/// The JSON of a policy document around its statements.
const POLICY_OVERHEAD: usize = 64;

/// About what one statement takes in the policy document, besides its ARN prefix.
pub fn statement_bytes(pattern: &str) -> usize {
    pattern.len() + 70
}

/// A route with every parameter fresh.
fn whole_route(route: &crate::route::Route) -> Case {
    Case {
        route: 0,
        method: route.method.clone(),
        other_than: Vec::new(),
        segs: route
            .path
            .iter()
            .map(|s| match s {
                Seg::Lit(l) => Part::Lit(l.clone()),
                Seg::Param(_) => Part::Fresh(Vec::new()),
                Seg::Rest(_) => Part::Path,
            })
            .collect(),
    }
}

/// The statements that allow exactly the requests of `policy`'s routes that `key` may make
/// from `source_ip` at `now`, and deny the rest. The policy must have passed [`check`]; the
/// key itself must be usable (active, not expired, the address allowed): the authorizer
/// denies every route of a key that is not.
pub fn grants(
    policy: &RoutePolicy,
    key: &ApiKey,
    source_ip: Option<IpAddr>,
    now: DateTime<Utc>,
) -> Result<Vec<Statement>, Inexact> {
    let routes = policy.routes();
    // The names that can change a decision: those the key's scopes and workspaces spell, and
    // the literal segments routes have at each position of a path.
    let mut names: BTreeSet<&str> = key.workspaces.iter().map(String::as_str).collect();
    let mut longest = 0;
    for scope in &key.scopes {
        for perm in &scope.permissions {
            names.extend(perm.resource.literals());
            longest = longest.max(perm.resource.segment_count());
        }
    }
    let mut at: Vec<BTreeSet<&str>> = Vec::new();
    for route in routes {
        for (i, seg) in route.path.iter().enumerate() {
            if let Seg::Lit(l) = seg {
                at.resize_with(at.len().max(i + 1), BTreeSet::new);
                at[i].insert(l);
            }
        }
    }
    let fresh = fresh_prefix(names.iter().chain(at.iter().flatten()).copied());
    let named_methods: BTreeSet<&str> = routes.iter().filter_map(|r| r.method.as_deref()).collect();
    // A method no route names stands for every other one (API Gateway may pass methods
    // beyond the usual seven to an any-method route).
    let other_method = METHODS
        .iter()
        .find(|m| !named_methods.contains(**m))
        .copied()
        .unwrap_or("PROPFIND");

    let mut cases: Vec<(Case, bool)> = Vec::new();
    let mut statements: Vec<(Statement, Vec<usize>)> = Vec::new();
    for (i, route) in routes.iter().enumerate() {
        let mut grid: Vec<Case> = vec![Case {
            route: i,
            method: route.method.clone(),
            other_than: Vec::new(),
            segs: Vec::new(),
        }];
        if route.method.is_none() {
            // An any-method route: each method another route names, and the others.
            grid = named_methods
                .iter()
                .map(|m| Some((*m).to_owned()))
                .chain([None])
                .map(|method| Case {
                    route: i,
                    method,
                    other_than: named_methods.iter().map(|m| (*m).to_owned()).collect(),
                    segs: Vec::new(),
                })
                .collect();
        }
        let too_many = || Inexact::TooManyCases(route.template.clone());
        for (pos, seg) in route.path.iter().enumerate() {
            let one_of = |pos: usize| -> Vec<Part> {
                let here = at.get(pos).into_iter().flatten();
                let candidates: Vec<String> = names
                    .iter()
                    .chain(here)
                    .copied()
                    .collect::<BTreeSet<&str>>()
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                candidates
                    .iter()
                    .map(|n| Part::Lit(n.clone()))
                    .chain([Part::Fresh(candidates.clone())])
                    .collect()
            };
            let options: Vec<Vec<Part>> = match seg {
                Seg::Lit(l) => vec![vec![Part::Lit(l.clone())]],
                Seg::Param(_) => one_of(pos).into_iter().map(|p| vec![p]).collect(),
                Seg::Rest(_) => {
                    // Every path of 1 to longest + 1 segments.
                    let mut paths: Vec<Vec<Part>> = vec![Vec::new()];
                    let mut all = Vec::new();
                    for depth in 0..=longest {
                        let parts = one_of(pos + depth);
                        if paths.len() * parts.len() + all.len() > MAX_CASES_PER_ROUTE {
                            return Err(too_many());
                        }
                        paths = paths
                            .iter()
                            .flat_map(|p| {
                                parts.iter().map(move |x| {
                                    let mut p = p.clone();
                                    p.push(x.clone());
                                    p
                                })
                            })
                            .collect();
                        all.extend(paths.iter().cloned());
                    }
                    all
                }
            };
            if grid.len() * options.len() > MAX_CASES_PER_ROUTE {
                return Err(too_many());
            }
            grid = grid
                .into_iter()
                .flat_map(|c| {
                    options.iter().map(move |o| {
                        let mut c = c.clone();
                        c.segs.extend(o.iter().cloned());
                        c
                    })
                })
                .collect();
        }
        let first = cases.len();
        // A `{rest+}` route's paths are tried up to a depth; deeper ones may pass the routes
        // before it and reach it. So its cases are decided by it alone, and the checks below
        // settle what it shares with other routes.
        let deep = route.path.iter().any(|s| matches!(s, Seg::Rest(_)));
        let only = deep.then(|| policy.only(i));
        let judge = only.as_ref().unwrap_or(policy);
        for case in grid {
            let (method, path) = case.example(&fresh, other_method);
            let allowed = judge
                .access(&RouteRequest {
                    method: &method,
                    path: &path,
                    headers: &[],
                    query: &[],
                    source_ip,
                })
                .is_ok_and(|(access, _)| decide(Some(key), &access, now) == Code::Valid);
            cases.push((case, allowed));
        }
        let mine = first..cases.len();
        let all_alike = cases[mine.clone()]
            .iter()
            .all(|(_, a)| *a == cases[first].1);
        if deep {
            if !all_alike {
                return Err(Inexact::PartialPath(route.template.clone()));
            }
            // One case stands for them all in the overlap checks: any path, as the pattern.
            let allowed = cases[first].1;
            cases.truncate(first);
            cases.push((
                Case {
                    route: i,
                    ..whole_route(route)
                },
                allowed,
            ));
        }
        let mine = first..cases.len();
        if all_alike {
            statements.push((
                Statement {
                    effect: Effect::of(cases[first].1),
                    pattern: whole_route(route).pattern(),
                },
                mine.collect(),
            ));
        } else {
            for c in mine {
                statements.push((
                    Statement {
                        effect: Effect::of(cases[c].1),
                        pattern: cases[c].0.pattern(),
                    },
                    vec![c],
                ));
            }
        }
    }

    // A Deny that would overrule an allowed case is dropped: its cases are left to the
    // implicit deny. A pattern without `*` is one request, decided as its case was.
    let texts: Vec<Vec<TextSeg>> = cases.iter().map(|(c, _)| c.text()).collect();
    let mut implicit: HashSet<usize> = HashSet::new();
    statements.retain(|(s, covered)| {
        let keep = s.effect == Effect::Allow
            || !s.pattern.contains('*')
            || !cases
                .iter()
                .enumerate()
                .any(|(c, (_, allowed))| *allowed && overlaps(&s.pattern, &texts[c]));
        if !keep {
            implicit.extend(covered.iter().copied());
        }
        keep
    });
    // No Allow may cover a case left to the implicit deny.
    for &c in &implicit {
        if let Some((s, _)) = statements.iter().find(|(s, _)| {
            s.effect == Effect::Allow && s.pattern.contains('*') && overlaps(&s.pattern, &texts[c])
        }) {
            return Err(Inexact::Overlap {
                route: routes[cases[c].0.route].template.clone(),
                pattern: s.pattern.clone(),
            });
        }
    }
    let mut out: Vec<Statement> = statements.into_iter().map(|(s, _)| s).collect();
    if out.iter().any(|s| s.effect == Effect::Allow) {
        // Spellings no case has, which keyward refuses or reads otherwise: an empty segment or
        // a trailing `/` (keyward drops them), dot segments, escapes and parameters.
        out.extend(ODD_PATHS.iter().map(|p| Statement {
            effect: Effect::Deny,
            pattern: (*p).to_owned(),
        }));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Denied whenever anything is allowed: paths spelled so that `*` would cover them although
/// no case of a route has them (see [`grants`]).
pub const ODD_PATHS: [&str; 8] = [
    "*//*", "*/*/", "*/.", "*/./*", "*/..", "*/../*", "*%*", "*;*",
];

/// A prefix that, numbered, spells none of `names`.
fn fresh_prefix<'a>(names: impl Iterator<Item = &'a str> + Clone) -> String {
    let mut fresh = "fresh".to_owned();
    while names.clone().any(|n| n.starts_with(&fresh)) {
        fresh.push('_');
    }
    fresh
}

/// Whether the statements admit `target` (`<METHOD>/<path>`): some Allow matches it and no
/// Deny does, as API Gateway evaluates a policy.
pub fn admits(statements: &[Statement], target: &str) -> bool {
    let matching = |e: Effect| {
        statements
            .iter()
            .any(|s| s.effect == e && glob_match(&s.pattern, target))
    };
    matching(Effect::Allow) && !matching(Effect::Deny)
}

/// Whether `pattern`, where `*` matches any text (`/` too), matches all of `text`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && p[i] == b'*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && p[i] == t[j] {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&b| b == b'*')
}

/// A segment of a case's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TextSeg {
    /// This text.
    Lit(String),
    /// Any one name but those listed.
    Name(Vec<String>),
    /// One or more names.
    Path,
}

fn is_name_text(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Whether `pattern` matches some request of a case (its segments `text`).
///
/// A pattern's `*` is always a whole segment (`GET/agents/*`), so where it matches text it
/// takes one or more whole segments (`/` included), and a literal segment takes exactly one:
/// a search over (pattern segment, text segment) pairs, with two flags: within a `{rest+}`
/// path (some of it taken), and within a `*` (some taken).
fn overlaps(pattern: &str, text: &[TextSeg]) -> bool {
    #[derive(Clone, Copy, PartialEq, Eq, Hash)]
    struct At {
        p: usize,
        t: usize,
        in_path: bool,
        in_star: bool,
    }
    let pat: Vec<&str> = pattern.split('/').collect();
    // Taking one segment of text at `t`: where the text goes on from, and whether it is a
    // path with more to take.
    let take = |t: usize, seg: Option<&str>| -> Option<(usize, bool)> {
        let fits = |s: &str| seg.is_none_or(|want| want == s);
        match text.get(t)? {
            TextSeg::Lit(l) => fits(l).then_some((t + 1, false)),
            TextSeg::Name(but) => match seg {
                None => Some((t + 1, false)),
                Some(want) => {
                    (is_name_text(want) && !but.iter().any(|b| b == want)).then_some((t + 1, false))
                }
            },
            TextSeg::Path => seg.is_none_or(is_name_text).then_some((t, true)),
        }
    };
    let mut seen = HashSet::new();
    let mut todo = vec![At {
        p: 0,
        t: 0,
        in_path: false,
        in_star: false,
    }];
    while let Some(at) = todo.pop() {
        if !seen.insert(at) {
            continue;
        }
        if at.in_path {
            // The path may end here.
            todo.push(At {
                t: at.t + 1,
                in_path: false,
                ..at
            });
        }
        if at.in_star {
            // The `*` may end here.
            todo.push(At {
                p: at.p + 1,
                in_star: false,
                ..at
            });
        }
        if at.p == pat.len() && at.t == text.len() && !at.in_star {
            return true;
        }
        let Some(seg) = pat.get(at.p) else {
            continue;
        };
        let star = *seg == "*";
        if let Some((t, in_path)) = take(at.t, (!star).then_some(*seg)) {
            todo.push(if star {
                At {
                    t,
                    in_path,
                    in_star: true,
                    ..at
                }
            } else {
                At {
                    p: at.p + 1,
                    t,
                    in_path,
                    in_star: false,
                }
            });
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::test_key;
    use crate::route::RoutePolicySpec;
    use proptest::prelude::*;
    use serde_json::json;

    fn policy(routes: serde_json::Value) -> RoutePolicy {
        let spec: RoutePolicySpec = serde_json::from_value(json!({ "routes": routes })).unwrap();
        RoutePolicy::compile(&spec).unwrap()
    }

    fn key(scopes: &[&str], workspaces: &[&str]) -> ApiKey {
        test_key(json!({"name": "k", "scopes": scopes, "workspaces": workspaces}))
    }

    fn allowed(p: &RoutePolicy, k: &ApiKey, method: &str, path: &str) -> bool {
        p.access(&RouteRequest {
            method,
            path,
            headers: &[],
            query: &[],
            source_ip: None,
        })
        .is_ok_and(|(a, _)| decide(Some(k), &a, Utc::now()) == Code::Valid)
    }

    fn target(method: &str, path: &str) -> String {
        format!("{method}/{}", path.trim_start_matches('/'))
    }

    /// The statements but the odd-path denials every allowing policy has.
    fn patterns(s: &[Statement]) -> Vec<String> {
        s.iter()
            .filter(|s| !ODD_PATHS.contains(&s.pattern.as_str()))
            .map(|s| format!("{:?} {}", s.effect, s.pattern))
            .collect()
    }

    #[test]
    fn a_deep_path_behind_shorter_routes_is_decided_by_its_own_route() {
        // Routes 0 and 1 take the rest route's paths of depth 1 and 2, which a reader may call;
        // from depth 3 on, the rest route needs admin.
        let p = policy(json!([
            {"method": "GET", "path": "/a/{x}", "action": "read", "resource": "a/{x}"},
            {"method": "GET", "path": "/a/{x}/{y}", "action": "read", "resource": "a/{x}/{y}"},
            {"method": "GET", "path": "/a/{rest+}", "action": "admin", "resource": "a/{rest}"},
        ]));
        let k = key(&["read"], &[]);
        match grants(&p, &k, None, Utc::now()) {
            Err(_) => {}
            Ok(s) => {
                assert!(!admits(&s, "GET/a/p/q/r"), "{s:?}");
                assert!(admits(&s, "GET/a/p"), "{s:?}");
            }
        }
    }

    #[test]
    fn odd_spellings_of_a_path_are_denied() {
        let p = policy(json!([
            {"method": "GET", "path": "/agents/{id}", "action": "read", "resource": "agents/{id}"},
            {"method": "GET", "path": "/agents/{id}/secrets", "action": "admin", "resource": "agents/{id}/secrets"},
            {"method": "GET", "path": "/files/{rest+}", "action": "read", "resource": "files/{rest}"},
        ]));
        let s = grants(&p, &key(&["agent:viewer", "read"], &[]), None, Utc::now()).unwrap();
        assert!(admits(&s, "GET/agents/x") && admits(&s, "GET/files/a/b.txt"));
        for odd in [
            "GET/agents/x/secrets/",
            "GET/agents//x",
            "GET/agents/..",
            "GET/files/../admin/keys",
            "GET/files/./a",
            "GET/agents/a%2Fsecrets",
            "GET/agents/x;secrets",
        ] {
            assert!(!admits(&s, odd), "{odd}");
        }
    }

    #[test]
    fn methods_beyond_the_named_ones_are_cases_of_an_any_method_route() {
        let mut routes: Vec<_> = METHODS
            .iter()
            .map(|m| json!({"method": m, "path": "/a", "action": "read", "resource": "a"}))
            .collect();
        routes.push(json!({"method": "*", "path": "/a", "action": "admin", "resource": "a"}));
        let s = grants(
            &policy(json!(routes)),
            &key(&["read"], &[]),
            None,
            Utc::now(),
        )
        .unwrap();
        assert!(admits(&s, "GET/a"));
        assert!(!admits(&s, "PROPFIND/a"), "{s:?}");
    }

    #[test]
    fn globs_match_as_api_gateway_reads_them() {
        assert!(glob_match("GET/agents/*", "GET/agents/a"));
        assert!(glob_match("GET/agents/*", "GET/agents/a/b"), "* crosses /");
        assert!(glob_match("*/", "DELETE/"));
        assert!(!glob_match("GET/agents/*", "GET/agents"));
        assert!(!glob_match("GET/a", "GET/ab"));
        assert!(glob_match("*/a/*/c", "PUT/a/x/y/c"));
    }

    #[test]
    fn overlap_is_decided_on_the_language_of_a_case() {
        let case = |segs: Vec<Part>| Case {
            route: 0,
            method: Some("GET".into()),
            other_than: Vec::new(),
            segs,
        };
        let runs = case(vec![
            Part::Lit("agents".into()),
            Part::Fresh(Vec::new()),
            Part::Lit("runs".into()),
        ]);
        assert!(overlaps("GET/agents/*", &runs.text()));
        assert!(overlaps("GET/*/runs", &runs.text()));
        assert!(!overlaps("GET/agents/*/secrets", &runs.text()));
        assert!(!overlaps("POST/*", &runs.text()));
        let one = case(vec![Part::Lit("agents".into()), Part::Fresh(Vec::new())]);
        assert!(
            !overlaps("GET/agents/*/runs", &one.text()),
            "one name has no /"
        );
        assert!(overlaps("GET/agents/ag_1", &one.text()));
        let but = case(vec![
            Part::Lit("agents".into()),
            Part::Fresh(vec!["ag_1".into(), "ag".into()]),
        ]);
        assert!(
            !overlaps("GET/agents/ag_1", &but.text()),
            "a listed name is not fresh"
        );
        assert!(!overlaps("GET/agents/ag", &but.text()));
        assert!(overlaps("GET/agents/ag_12", &but.text()));
        let root = case(vec![]);
        assert!(overlaps("GET/", &root.text()) && overlaps("*", &root.text()));
    }

    #[test]
    fn a_reader_is_allowed_the_reads_and_denied_the_rest() {
        let p = policy(json!([
            {"method": "GET", "path": "/agents", "action": "discover", "resource": "agents"},
            {"method": "GET", "path": "/agents/{id}", "action": "read", "resource": "agents/{id}"},
            {"method": "GET", "path": "/agents/{id}/secrets", "action": "admin", "resource": "agents/{id}/secrets"},
            {"method": "POST", "path": "/agents/{id}/runs", "action": "execute", "resource": "agents/{id}/runs"},
        ]));
        let k = key(&["agent:viewer"], &[]);
        let s = grants(&p, &k, None, Utc::now()).unwrap();
        assert_eq!(
            patterns(&s),
            [
                "Allow GET/agents",
                "Allow GET/agents/*",
                "Deny GET/agents/*/secrets",
                "Deny POST/agents/*/runs",
            ]
        );
        assert!(admits(&s, "GET/agents/ag_9"));
        assert!(!admits(&s, "GET/agents/ag_9/secrets"), "the Deny overrules");
        assert!(!admits(&s, "POST/agents/ag_9/runs"));
    }

    #[test]
    fn rights_on_one_resource_name_it() {
        let p = policy(json!([
            {"method": "GET", "path": "/agents/{id}", "action": "read", "resource": "agents/{id}"},
            {"method": "POST", "path": "/workspaces/{ws}/agents/{id}", "action": "read", "resource": "agents/{id}", "workspace": {"path": "ws"}},
        ]));
        let k = key(&["agent/ag_1:viewer"], &["ws_1"]);
        let s = grants(&p, &k, None, Utc::now()).unwrap();
        assert!(admits(&s, "GET/agents/ag_1"));
        assert!(!admits(&s, "GET/agents/ag_2"));
        assert!(admits(&s, "POST/workspaces/ws_1/agents/ag_1"));
        assert!(!admits(&s, "POST/workspaces/ws_2/agents/ag_1"));
        assert!(!admits(&s, "POST/workspaces/ws_1/agents/ag_2"));
        assert!(
            s.iter()
                .all(|st| st.effect == Effect::Deny || !st.pattern.contains('*')),
            "no wildcard allow: {s:?}"
        );
    }

    #[test]
    fn an_earlier_route_decides_its_requests() {
        let p = policy(json!([
            {"method": "GET", "path": "/agents/admin", "action": "admin", "resource": "agents"},
            {"method": "GET", "path": "/agents/{id}", "action": "read", "resource": "agents/{id}"},
        ]));
        let k = key(&["agent:viewer"], &[]);
        let s = grants(&p, &k, None, Utc::now()).unwrap();
        assert!(!admits(&s, "GET/agents/admin"));
        assert!(admits(&s, "GET/agents/other"));
    }

    #[test]
    fn a_path_route_is_allowed_whole_or_not_at_all() {
        let p = policy(json!([
            {"method": "GET", "path": "/agents/{rest+}", "action": "read", "resource": "agents/{rest}"},
        ]));
        let s = grants(&p, &key(&["read"], &[]), None, Utc::now()).unwrap();
        assert_eq!(patterns(&s), ["Allow GET/agents/*"]);
        assert!(admits(&s, "GET/agents/a/b/c"));
        let s = grants(&p, &key(&["project:viewer"], &[]), None, Utc::now()).unwrap();
        assert_eq!(patterns(&s), ["Deny GET/agents/*"]);
        assert_eq!(
            grants(&p, &key(&["agent/ag_1:viewer"], &[]), None, Utc::now()),
            Err(Inexact::PartialPath("GET /agents/{rest+}".into()))
        );
    }

    #[test]
    fn header_workspaces_and_huge_policies_are_refused_at_start_up() {
        let p = policy(json!([
            {"method": "GET", "path": "/w/{x}", "action": "read", "workspace": {"header": "X-Workspace"}},
        ]));
        let e = check(&p).unwrap_err();
        assert_eq!(e.0[0].field, "routes[0].workspace");

        let many: Vec<_> = (0..60)
            .map(|i| json!({"method": "GET", "path": format!("/collection{i}/{{id}}"), "action": "read"}))
            .collect();
        let e = check(&policy(json!(many))).unwrap_err();
        assert_eq!(e.0[0].field, "routes");
        assert!(check(&policy(json!(many[..20].to_vec()))).is_ok());
    }

    // The property: for random route policies, keys and requests, a policy from `grants`
    // never admits a request the decision refuses, and admits every one it allows.
    const COLLECTIONS: [&str; 3] = ["agents", "runs", "secrets"];
    const NAMES: [&str; 4] = ["ag_1", "ag_2", "runs", "x9"];

    fn route_strategy() -> impl Strategy<Value = serde_json::Value> {
        let seg = prop_oneof![
            prop::sample::select(&COLLECTIONS[..]).prop_map(|s| s.to_owned()),
            Just("{p}".to_owned()),
        ];
        (
            prop::sample::select(vec!["GET", "POST", "*"]),
            prop::collection::vec(seg, 0..4),
            any::<bool>(),
            prop::sample::select(vec!["read", "write", "execute", "admin"]),
        )
            .prop_map(|(method, segs, rest, action)| {
                // Parameters are numbered so that each name is used once.
                let mut n = 0;
                let mut path: Vec<String> = segs
                    .into_iter()
                    .map(|s| {
                        if s == "{p}" {
                            n += 1;
                            format!("{{p{n}}}")
                        } else {
                            s
                        }
                    })
                    .collect();
                if rest {
                    path.push("{tail+}".to_owned());
                }
                let resource = path.join("/").replace('+', "");
                json!({"method": method, "path": format!("/{}", path.join("/")),
                       "action": action, "resource": resource})
            })
    }

    fn scope_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "read",
                "agent:viewer",
                "agent:editor",
                "agent/ag_1:owner",
                "agent/ag_2:viewer",
                "project:viewer",
                "agent:executor",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn request_strategy() -> impl Strategy<Value = (String, String)> {
        (
            prop::sample::select(vec!["GET", "POST", "DELETE"]),
            prop::collection::vec(
                prop_oneof![
                    prop::sample::select(&COLLECTIONS[..]).prop_map(str::to_owned),
                    prop::sample::select(&NAMES[..]).prop_map(str::to_owned),
                ],
                0..6,
            ),
        )
            .prop_map(|(m, segs)| (m.to_owned(), format!("/{}", segs.join("/"))))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn a_cached_policy_never_allows_a_request_the_key_may_not_make(
            routes in prop::collection::vec(route_strategy(), 1..6),
            scopes in prop::collection::vec(scope_strategy(), 1..3),
            requests in prop::collection::vec(request_strategy(), 40),
        ) {
            let spec: RoutePolicySpec = serde_json::from_value(json!({"routes": routes})).unwrap();
            let p = RoutePolicy::compile(&spec).unwrap();
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let k = key(&scopes, &[]);
            let Ok(s) = grants(&p, &k, None, Utc::now()) else {
                return Ok(()); // the authorizer answers the request's ARN only
            };
            for (method, path) in &requests {
                // Only requests a route matches reach the authorizer (see the module doc).
                let routed = p.access(&RouteRequest {
                    method, path, headers: &[], query: &[], source_ip: None,
                });
                if routed.is_err() && !matches!(routed, Err(crate::route::RouteDenied::BadParameter(_))) {
                    continue;
                }
                let want = allowed(&p, &k, method, path);
                let got = admits(&s, &target(method, path));
                prop_assert!(!got || want, "{method} {path} admitted by {s:?}");
                prop_assert_eq!(got, want, "{} {} under {:?}", method, path, s);
            }
        }
    }

    #[test]
    fn most_keys_are_answered_exactly() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let strategy = (
            prop::collection::vec(route_strategy(), 1..6),
            prop::collection::vec(scope_strategy(), 1..3),
        );
        let (mut exact, mut total) = (0, 0);
        for _ in 0..800 {
            let (routes, scopes) = strategy.new_tree(&mut runner).unwrap().current();
            let spec: RoutePolicySpec = serde_json::from_value(json!({"routes": routes})).unwrap();
            let p = RoutePolicy::compile(&spec).unwrap();
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let g = grants(&p, &key(&scopes, &[]), None, Utc::now());
            if spec.routes.iter().any(|r| r.path.contains("+}")) {
                // A `{rest+}` route a key may call only in part is inexact by design.
                continue;
            }
            total += 1;
            exact += usize::from(g.is_ok());
        }
        assert!(
            total > 100 && exact * 100 >= total * 95,
            "{exact} of {total} exact"
        );
    }
}
