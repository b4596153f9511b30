//! `keyward keys`: list, show, create, edit, revoke, regenerate and delete keys through a
//! deployment's management API (any deployment: `keyward serve` or the issuer in AWS).

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};
use keyward_client::api::keys::{
    ApiKey, CreateKeyRequest, KeyWithSecret, RegenerateRequest, UpdateKeyRequest,
};
use keyward_client::api::listing::KeyListing;
use keyward_client::{KeyFilter, StatusFilter};
use keyward_core::permission::ScopeInput;

use crate::connect::Connection;
use crate::error::CliError;
use crate::output::{clean, fields, note, print, print_json, table, warn, when, when_exact};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List keys by name in a table: active keys unless --status says otherwise, every page
    /// unless --limit or --cursor asks for one.
    List(ListArgs),
    /// Show one key.
    Get(GetArgs),
    /// Create a key and print its secret, once.
    ///
    /// Without --json, standard output gets the secret alone on one line (so
    /// `SECRET=$(keyward keys create ...)` captures just it) and standard error the key's id
    /// and any warnings. With --json, standard output gets the API's answer, secret included.
    /// The secret is shown this once and never again: store it now.
    Create(CreateArgs),
    /// Edit a key: only what a flag names changes. --scope, --workspace, --group and
    /// --allowed-cidr replace the whole list.
    Update(UpdateArgs),
    /// Revoke a key for good: its secret stops verifying at once, and the key can never be
    /// used or edited again (its name is freed). Needs --yes.
    Revoke(RevokeArgs),
    /// Issue a new secret for a key (same id, settings and usage) and print it, once, as
    /// `create` does. The old secret stops at once, or after --grace-period-seconds.
    Regenerate(RegenerateArgs),
    /// Delete a key: the key, its secret and its name are gone. Needs --yes.
    Delete(DeleteArgs),
}

/// What every `keys` command takes.
#[derive(Debug, Args)]
pub struct Common {
    #[command(flatten)]
    connection: Connection,
    /// Print the API's answer as JSON (for scripts) instead of text for people.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    common: Common,
    /// Which keys by status: active (the default), inactive, expired, revoked or all.
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    status: Option<StatusFilter>,
    /// Only keys associated with this workspace.
    #[arg(long, value_name = "ID")]
    workspace: Option<String>,
    /// Only keys in this sharing group.
    #[arg(long, value_name = "ID")]
    group: Option<String>,
    /// Only keys whose name contains TEXT, compared as names are (any case: `ci` finds
    /// `CI-Bot`).
    #[arg(long, value_name = "TEXT")]
    search: Option<String>,
    /// One page of at most N keys (1 to 200) instead of every key; where the next page starts
    /// is printed on standard error (and is `next_cursor` with --json).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=200))]
    limit: Option<u32>,
    /// Start at the page a previous `--limit` listing pointed to.
    #[arg(long, value_name = "CURSOR")]
    cursor: Option<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    common: Common,
    /// The key's id (key_...).
    id: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    common: Common,
    /// The key's name, unique in the account (any case).
    #[arg(long)]
    name: String,
    /// A scope, such as `read`, `agent:editor`, `agent/ag_1:viewer` or `agents`; repeat for
    /// more. At least one, unless --preset grants some.
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// A preset whose scopes the key starts with (built in: deploy, read-only, agent-runner,
    /// custom; or one the account defined).
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
    /// A workspace to associate the key with; repeat for more.
    #[arg(long = "workspace", value_name = "ID")]
    workspaces: Vec<String>,
    /// A sharing group to put the key in; repeat for more.
    #[arg(long = "group", value_name = "ID")]
    groups: Vec<String>,
    /// An address range the key may be used from (a bare address is one host); repeat for
    /// more. None: any address.
    #[arg(long = "allowed-cidr", value_name = "CIDR")]
    allowed_cidrs: Vec<String>,
    /// Requests per minute (the deployment's bounds apply; default 60).
    #[arg(long, value_name = "N")]
    rate_limit: Option<i64>,
    /// When the key stops working: an RFC 3339 instant (2030-01-31T12:00:00Z) or a day
    /// (2030-01-31, at 00:00 UTC). Must be in the future.
    #[arg(long, value_name = "WHEN", value_parser = parse_instant)]
    expires_at: Option<DateTime<Utc>>,
    /// What the key is for.
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// Makes a retried create answer the key the first attempt made instead of making another
    /// (within 24 h; the secret is shown only by the first).
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    common: Common,
    /// The key's id (key_...).
    id: String,
    /// A new name.
    #[arg(long)]
    name: Option<String>,
    /// A new description.
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// The key's scopes: replaces them all; repeat for more.
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// The key's workspaces: replaces them all; repeat for more.
    #[arg(
        long = "workspace",
        value_name = "ID",
        conflicts_with = "no_workspaces"
    )]
    workspaces: Vec<String>,
    /// Dissociate the key from every workspace.
    #[arg(long)]
    no_workspaces: bool,
    /// The key's sharing groups: replaces them all; repeat for more.
    #[arg(long = "group", value_name = "ID", conflicts_with = "no_groups")]
    groups: Vec<String>,
    /// Take the key out of every sharing group.
    #[arg(long)]
    no_groups: bool,
    /// The key's address ranges: replaces them all; repeat for more.
    #[arg(
        long = "allowed-cidr",
        value_name = "CIDR",
        conflicts_with = "any_address"
    )]
    allowed_cidrs: Vec<String>,
    /// Remove every address range: the key may be used from any address.
    #[arg(long)]
    any_address: bool,
    /// Requests per minute.
    #[arg(long, value_name = "N")]
    rate_limit: Option<i64>,
    /// A new expiry: an RFC 3339 instant or a day (at 00:00 UTC), in the future.
    #[arg(long, value_name = "WHEN", value_parser = parse_instant, conflicts_with = "no_expiry")]
    expires_at: Option<DateTime<Utc>>,
    /// Remove the expiry.
    #[arg(long)]
    no_expiry: bool,
    /// `false` deactivates the key (it stops verifying until reactivated), `true` reactivates
    /// it (an expired key needs a new --expires-at too).
    #[arg(long, value_name = "true|false", action = clap::ArgAction::Set)]
    active: Option<bool>,
    /// Change the key only if it is still at this version (`version` in `keys get`);
    /// otherwise nothing changes and the command fails.
    #[arg(long, value_name = "VERSION")]
    if_match: Option<u64>,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    common: Common,
    /// The key's id (key_...).
    id: String,
    /// Confirm: revoking cannot be undone.
    #[arg(long)]
    yes: bool,
    /// Revoke only if the key is still at this version.
    #[arg(long, value_name = "VERSION")]
    if_match: Option<u64>,
}

#[derive(Debug, Args)]
pub struct RegenerateArgs {
    #[command(flatten)]
    common: Common,
    /// The key's id (key_...).
    id: String,
    /// How long the old secret keeps verifying, in seconds (at most 7 days, never past the
    /// key's expiry); 0, the default, stops it at once.
    #[arg(long, value_name = "N")]
    grace_period_seconds: Option<i64>,
    /// Regenerate only if the key is still at this version.
    #[arg(long, value_name = "VERSION")]
    if_match: Option<u64>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    common: Common,
    /// The key's id (key_...).
    id: String,
    /// Confirm: deleting cannot be undone.
    #[arg(long)]
    yes: bool,
    /// Delete only if the key is still at this version.
    #[arg(long, value_name = "VERSION")]
    if_match: Option<u64>,
}

pub fn run(command: KeysCommand) -> Result<(), CliError> {
    match command {
        KeysCommand::List(args) => list(args),
        KeysCommand::Get(args) => get(args),
        KeysCommand::Create(args) => create(args),
        KeysCommand::Update(args) => update(args),
        KeysCommand::Revoke(args) => revoke(args),
        KeysCommand::Regenerate(args) => regenerate(args),
        KeysCommand::Delete(args) => delete(args),
    }
}

fn list(args: ListArgs) -> Result<(), CliError> {
    let client = args.common.connection.client()?;
    let filter = KeyFilter {
        status: args.status,
        workspace: args.workspace,
        group: args.group,
        q: args.search,
        limit: args.limit,
        cursor: args.cursor,
    };
    let listing = if filter.limit.is_some() || filter.cursor.is_some() {
        client.list_keys(&filter)?
    } else {
        KeyListing {
            items: client.all_keys(&filter)?,
            next_cursor: None,
        }
    };
    if args.common.json {
        return print_json(&listing);
    }
    if listing.items.is_empty() {
        print("No keys match.")?;
    } else {
        print(&key_table(&listing.items))?;
    }
    if let Some(cursor) = &listing.next_cursor {
        note(&format!("More keys: add --cursor {cursor}"));
    }
    Ok(())
}

fn get(args: GetArgs) -> Result<(), CliError> {
    let key = args.common.connection.client()?.get_key(&args.id)?;
    if args.common.json {
        return print_json(&key);
    }
    print(&key_detail(&key))
}

fn create(args: CreateArgs) -> Result<(), CliError> {
    let client = args.common.connection.client()?;
    let request = CreateKeyRequest {
        name: Some(args.name),
        description: args.description,
        preset: args.preset,
        scopes: non_empty(args.scopes).map(scope_inputs),
        workspaces: non_empty(args.workspaces),
        groups: non_empty(args.groups),
        allowed_cidrs: non_empty(args.allowed_cidrs),
        rate_limit_per_minute: args.rate_limit,
        expires_at: args.expires_at,
        ..CreateKeyRequest::default()
    };
    let created = client.create_key(&request, args.idempotency_key.as_deref())?;
    if args.common.json {
        return print_json(&created);
    }
    note(&format!(
        "Created key {} ({}), shown as {}.",
        clean(&created.key.id),
        clean(&created.key.name),
        shown_as(&created.key)
    ));
    show_secret(&created, "The secret")
}

fn update(args: UpdateArgs) -> Result<(), CliError> {
    let request = UpdateKeyRequest {
        name: args.name,
        description: args.description,
        scopes: non_empty(args.scopes).map(scope_inputs),
        workspaces: replacement(args.workspaces, args.no_workspaces),
        groups: replacement(args.groups, args.no_groups),
        allowed_cidrs: replacement(args.allowed_cidrs, args.any_address),
        rate_limit_per_minute: args.rate_limit,
        expires_at: if args.no_expiry {
            Some(None)
        } else {
            args.expires_at.map(Some)
        },
        active: args.active,
        ..UpdateKeyRequest::default()
    };
    if request == UpdateKeyRequest::default() {
        return Err(CliError::Input(
            "nothing to change: give at least one of --name, --description, --scope, --workspace, --no-workspaces, --group, --no-groups, --allowed-cidr, --any-address, --rate-limit, --expires-at, --no-expiry, --active".to_owned(),
        ));
    }
    let client = args.common.connection.client()?;
    let edited = client.update_key(&args.id, args.if_match, &request)?;
    if args.common.json {
        return print_json(&edited);
    }
    warn(&edited.warnings);
    print(&key_detail(&edited.key))
}

fn revoke(args: RevokeArgs) -> Result<(), CliError> {
    if !args.yes {
        return Err(CliError::Input(format!(
            "revoking is final: the secret of {} stops verifying at once and the key can never be used again. Add --yes to revoke it",
            args.id
        )));
    }
    let client = args.common.connection.client()?;
    let key = client.revoke_key(&args.id, args.if_match)?;
    if args.common.json {
        return print_json(&key);
    }
    print(&format!(
        "Revoked key {} ({}): its secret no longer verifies.",
        clean(&key.id),
        clean(&key.name)
    ))
}

fn regenerate(args: RegenerateArgs) -> Result<(), CliError> {
    let client = args.common.connection.client()?;
    let request = RegenerateRequest {
        grace_period_seconds: args.grace_period_seconds,
        ..RegenerateRequest::default()
    };
    let regenerated = client.regenerate_key(&args.id, args.if_match, &request)?;
    if args.common.json {
        return print_json(&regenerated);
    }
    let created = &regenerated.created;
    let old = match regenerated.previous_secret_expires_at {
        Some(until) => format!("the old secret keeps verifying until {}", when_exact(until)),
        None => "the old secret stopped verifying".to_owned(),
    };
    note(&format!(
        "Regenerated key {} ({}), now shown as {}; {old}.",
        clean(&created.key.id),
        clean(&created.key.name),
        shown_as(&created.key)
    ));
    show_secret(created, "The new secret")
}

fn delete(args: DeleteArgs) -> Result<(), CliError> {
    if !args.yes {
        return Err(CliError::Input(format!(
            "deleting cannot be undone: {} and its secret would be gone. Add --yes to delete it",
            args.id
        )));
    }
    let client = args.common.connection.client()?;
    client.delete_key(&args.id, args.if_match)?;
    if !args.common.json {
        print(&format!("Deleted key {}.", clean(&args.id)))?;
    }
    Ok(())
}

/// The warnings on standard error, then the secret alone on standard output.
fn show_secret(created: &KeyWithSecret, what: &str) -> Result<(), CliError> {
    warn(&created.warnings);
    match &created.secret {
        Some(secret) => {
            note(&format!(
                "{what} follows, shown this once: store it now, it cannot be shown again."
            ));
            print(secret)
        }
        None => {
            note(
                "No secret in this answer: it was shown only to the first request with this --idempotency-key. If it was lost, regenerate the key.",
            );
            Ok(())
        }
    }
}

/// The keys as a table, one row each.
pub fn key_table(keys: &[ApiKey]) -> String {
    let rows = keys
        .iter()
        .map(|k| {
            vec![
                clean(&k.id),
                clean(&k.name),
                k.status.as_str().to_owned(),
                shown_as(k),
                scopes_summary(k),
                format!("{}/min", k.rate_limit_per_minute),
                k.last_used_at.map_or_else(|| "never".to_owned(), when),
                when(k.created_at),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "NAME",
            "STATUS",
            "KEY",
            "SCOPES",
            "RATE LIMIT",
            "LAST USED (UTC)",
            "CREATED (UTC)",
        ],
        rows,
    )
}

/// One key, field by field.
pub fn key_detail(key: &ApiKey) -> String {
    let list = |items: &[String]| {
        if items.is_empty() {
            "-".to_owned()
        } else {
            clean(&items.join(", "))
        }
    };
    let scopes: Vec<String> = key.scopes.iter().map(|s| s.scope.clone()).collect();
    let cidrs: Vec<String> = key
        .allowed_cidrs
        .ranges()
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut rows = vec![
        ("id", clean(&key.id)),
        ("name", clean(&key.name)),
        ("status", key.status.as_str().to_owned()),
        ("key", shown_as(key)),
        ("scopes", list(&scopes)),
        ("workspaces", list(&key.workspaces)),
        ("groups", list(&key.groups)),
        (
            "allowed from",
            if cidrs.is_empty() {
                "any address".to_owned()
            } else {
                list(&cidrs)
            },
        ),
        (
            "rate limit",
            format!("{} per minute", key.rate_limit_per_minute),
        ),
        (
            "expires",
            key.expires_at
                .map_or_else(|| "never".to_owned(), when_exact),
        ),
    ];
    if !key.description.is_empty() {
        rows.push(("description", clean(&key.description)));
    }
    if let Some(previous) = &key.previous_secret {
        rows.push((
            "previous secret",
            format!(
                "{}…{} verifies until {}",
                clean(&previous.start),
                clean(&previous.last4),
                when_exact(previous.expires_at)
            ),
        ));
    }
    if let Some(secret) = &key.secrets_manager_secret_id {
        rows.push(("rotated in", clean(secret)));
    }
    let last_used = match (key.last_used_at, key.last_used_ip) {
        (None, _) => "never".to_owned(),
        (Some(at), None) => when_exact(at),
        (Some(at), Some(ip)) => format!("{} from {ip}", when_exact(at)),
    };
    rows.extend([
        ("last used", last_used),
        ("requests", key.request_count.to_string()),
        (
            "created",
            format!(
                "{} by {}",
                when_exact(key.created_at),
                clean(&key.created_by)
            ),
        ),
        ("updated", when_exact(key.updated_at)),
        ("version", key.version.to_string()),
    ]);
    fields(rows)
}

/// How a key is shown without its secret: its start and its last four characters.
fn shown_as(key: &ApiKey) -> String {
    format!("{}…{}", clean(&key.start), clean(&key.last4))
}

/// The first scopes, and how many more.
fn scopes_summary(key: &ApiKey) -> String {
    const SHOWN: usize = 3;
    let mut text = key
        .scopes
        .iter()
        .take(SHOWN)
        .map(|s| clean(&s.scope))
        .collect::<Vec<_>>()
        .join(", ");
    if key.scopes.len() > SHOWN {
        text.push_str(&format!(" +{} more", key.scopes.len() - SHOWN));
    }
    text
}

fn non_empty(items: Vec<String>) -> Option<Vec<String>> {
    (!items.is_empty()).then_some(items)
}

/// A whole new list for an edit: the items given, none when `clear`, unchanged otherwise.
fn replacement(items: Vec<String>, clear: bool) -> Option<Vec<String>> {
    if clear {
        Some(Vec::new())
    } else {
        non_empty(items)
    }
}

fn scope_inputs(scopes: Vec<String>) -> Vec<ScopeInput> {
    scopes.into_iter().map(ScopeInput::Text).collect()
}

fn parse_status(text: &str) -> Result<StatusFilter, String> {
    StatusFilter::parse(text)
        .ok_or_else(|| "one of active, inactive, expired, revoked, all".to_owned())
}

/// An RFC 3339 instant, or a day at 00:00 UTC.
fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc())
        .ok_or_else(|| {
            "an RFC 3339 instant such as 2030-01-31T12:00:00Z, or a day such as 2030-01-31"
                .to_owned()
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed check panics

    use super::*;

    #[test]
    fn instants_are_rfc3339_or_a_day_at_midnight_utc() {
        assert_eq!(
            parse_instant("2030-01-31T12:00:00+01:00").unwrap(),
            parse_instant("2030-01-31T11:00:00Z").unwrap()
        );
        assert_eq!(
            parse_instant("2030-01-31").unwrap().to_rfc3339(),
            "2030-01-31T00:00:00+00:00"
        );
        assert!(parse_instant("tomorrow").is_err());
        assert!(parse_instant("2030-02-30").is_err());
    }

    #[test]
    fn statuses_parse_as_the_api_spells_them() {
        assert_eq!(parse_status("all").unwrap(), StatusFilter::All);
        assert!(parse_status("gone").is_err());
    }
}
