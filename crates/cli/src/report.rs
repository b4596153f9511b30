//! `keyward usage` and `keyward audit`: how much keys were used, and who did what to them.

use clap::Args;
use keyward_client::api::usage::DayUsage;
use keyward_client::{DayRange, PageRequest};

use crate::connect::Connection;
use crate::error::CliError;
use crate::output::{clean, note, print, print_json, table, when, when_exact};

#[derive(Debug, Args)]
pub struct UsageArgs {
    #[command(flatten)]
    connection: Connection,
    /// One key's use (with its lifetime count and last use) instead of the whole account's.
    #[arg(long, value_name = "ID")]
    key: Option<String>,
    /// The last N days, today (UTC) included: 1 to 400.
    #[arg(long, value_name = "N", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=400))]
    days: u32,
    /// Print the API's answer as JSON (for scripts) instead of text for people.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    connection: Connection,
    /// Entries per page, newest first: 1 to 200 (default 50). Where the next page starts is
    /// printed on standard error (and is `next_cursor` with --json).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=200))]
    limit: Option<u32>,
    /// Start at the page a previous `keyward audit` pointed to.
    #[arg(long, value_name = "CURSOR")]
    cursor: Option<String>,
    /// Print the API's answer as JSON (for scripts) instead of text for people.
    #[arg(long)]
    json: bool,
}

pub fn usage(args: UsageArgs) -> Result<(), CliError> {
    let client = args.connection.client()?;
    let range = DayRange::last_days(args.days);
    match &args.key {
        Some(id) => {
            let usage = client.key_usage(id, &range)?;
            if args.json {
                return print_json(&usage);
            }
            let last = match (usage.last_used_at, usage.last_used_ip) {
                (None, _) => "never used".to_owned(),
                (Some(at), None) => format!("last used {}", when_exact(at)),
                (Some(at), Some(ip)) => format!("last used {} from {ip}", when_exact(at)),
            };
            print(&format!(
                "Key {}: {} requests in all, {last}.",
                clean(&usage.key_id),
                usage.request_count
            ))?;
            print(&days_report(usage.from, usage.to, &usage.days))
        }
        None => {
            let usage = client.account_usage(&range)?;
            if args.json {
                return print_json(&usage);
            }
            print(&format!("Account {}:", clean(&usage.account)))?;
            print(&days_report(usage.from, usage.to, &usage.days))
        }
    }
}

pub fn audit(args: AuditArgs) -> Result<(), CliError> {
    let client = args.connection.client()?;
    let page = client.audit(&PageRequest {
        cursor: args.cursor,
        limit: args.limit,
    })?;
    if args.json {
        return print_json(&page);
    }
    if page.items.is_empty() {
        print("No audit entries.")?;
    } else {
        let rows = page
            .items
            .iter()
            .map(|e| {
                vec![
                    when(e.at),
                    clean(&e.actor),
                    clean(&e.action),
                    e.target.as_deref().map_or_else(|| "-".to_owned(), clean),
                    e.source_ip
                        .map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
                    details(&e.details),
                ]
            })
            .collect();
        print(&table(
            &["AT (UTC)", "ACTOR", "ACTION", "TARGET", "FROM", "DETAILS"],
            rows,
        ))?;
    }
    if let Some(cursor) = &page.next_cursor {
        note(&format!("Older entries: add --cursor {cursor}"));
    }
    Ok(())
}

/// The days with requests in a table, with their sum; or a line saying there were none.
fn days_report(from: chrono::NaiveDate, to: chrono::NaiveDate, days: &[DayUsage]) -> String {
    if days.is_empty() {
        return format!("No requests from {from} to {to} (UTC).");
    }
    let mut rows: Vec<Vec<String>> = days
        .iter()
        .map(|d| {
            vec![
                d.date.to_string(),
                d.valid.to_string(),
                d.rate_limited.to_string(),
                d.denied.to_string(),
                d.total.to_string(),
            ]
        })
        .collect();
    let sum = |f: fn(&DayUsage) -> u64| days.iter().map(f).sum::<u64>().to_string();
    rows.push(vec![
        "all".to_owned(),
        sum(|d| d.valid),
        sum(|d| d.rate_limited),
        sum(|d| d.denied),
        sum(|d| d.total),
    ]);
    format!(
        "From {from} to {to} (UTC), days with requests:\n{}",
        table(&["DAY", "VALID", "RATE LIMITED", "DENIED", "TOTAL"], rows)
    )
}

/// An entry's details as compact JSON, cut to a table cell's width.
fn details(value: &serde_json::Value) -> String {
    const WIDTH: usize = 60;
    if value.is_null() || value.as_object().is_some_and(serde_json::Map::is_empty) {
        return "-".to_owned();
    }
    let text = clean(&value.to_string());
    if text.chars().count() > WIDTH {
        let cut: String = text.chars().take(WIDTH - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}
