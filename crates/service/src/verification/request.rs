//! `POST /v1/verify`: the body's own fields checked and turned into the [`Presented`] request
//! the decision takes.

use std::borrow::Cow;
use std::net::IpAddr;

use keyward_api::verify::VerifyRequest;
use keyward_core::credential::KeySource;
use keyward_core::decision::Needs;
use keyward_core::id::check_id;
use keyward_core::permission::{Action, ResourcePattern, is_name};
use keyward_core::validation::{FieldError, ValidationErrors};

use super::{Presented, Target};

/// Checks a verify body's fields, reporting every bad one, and answers the request it states.
pub fn presented(body: VerifyRequest) -> Result<Presented<'static>, ValidationErrors> {
    let mut errors = Vec::new();
    let action = match body.action.as_deref().map(str::parse::<Action>) {
        Some(Ok(a)) => Some(a),
        Some(Err(e)) => {
            errors.push(FieldError::new("action", e.to_string()));
            None
        }
        None => None,
    };
    let resource = body.resource.clone().unwrap_or_default();
    let concrete = resource.split('/').filter(|s| !s.is_empty()).all(is_name);
    if !concrete || ResourcePattern::parse(&resource).is_err() {
        errors.push(FieldError::new(
            "resource",
            "a resource is a '/'-separated path of names, such as agents/ag_1",
        ));
    }
    if body.resource.is_some() && action.is_none() && body.action.is_none() {
        errors.push(FieldError::new(
            "action",
            "give an action to check the resource against",
        ));
    }
    if let Some(ws) = &body.workspace
        && let Err(e) = check_id("workspace", ws)
    {
        errors.push(e);
    }
    let source_ip = match body.source_ip.as_deref().map(str::parse::<IpAddr>) {
        Some(Ok(ip)) => Some(ip),
        Some(Err(_)) => {
            errors.push(FieldError::new("source_ip", "not an IPv4 or IPv6 address"));
            None
        }
        None => None,
    };
    if !errors.is_empty() {
        return Err(ValidationErrors(errors));
    }
    Ok(Presented {
        token: body.key.map(Cow::Owned),
        source: KeySource::Body,
        source_ip,
        target: Target::Stated {
            needs: action.map_or(Needs::KeyOnly, |a| Needs::Permission(a, resource)),
            workspace: body.workspace,
        },
    })
}
