//! What a listing or a usage report asks for, as the API's query parameters.

use chrono::{Duration, NaiveDate, Utc};
use keyward_api::keys::KeyStatus;

/// Which keys a listing holds by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Only(KeyStatus),
    /// Every status, revoked keys included.
    All,
}

impl StatusFilter {
    /// The spelling of the `status` parameter.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Only(status) => status.as_str(),
            Self::All => "all",
        }
    }

    /// `active`, `inactive`, `expired`, `revoked` or `all`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "all" => Some(Self::All),
            other => KeyStatus::parse(other).map(Self::Only),
        }
    }
}

/// `GET /v1/keys`: which keys, and which page of them. Every field left `None` is the API's
/// default: active keys, any workspace and group, the first page of 50.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFilter {
    /// `None`: active keys only.
    pub status: Option<StatusFilter>,
    /// Only keys associated with this workspace.
    pub workspace: Option<String>,
    /// Only keys in this sharing group.
    pub group: Option<String>,
    /// Only keys whose name contains this, compared as names are (after NFKC case folding).
    pub q: Option<String>,
    /// Keys per page (1 to 200).
    pub limit: Option<u32>,
    /// Where the previous page ended (its `next_cursor`).
    pub cursor: Option<String>,
}

impl KeyFilter {
    pub(crate) fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(status) = self.status {
            query.push(("status", status.as_str().to_owned()));
        }
        push(&mut query, "workspace", self.workspace.as_deref());
        push(&mut query, "group", self.group.as_deref());
        push(&mut query, "q", self.q.as_deref());
        query.extend(PageRequest::page_query(self.cursor.as_deref(), self.limit));
        query
    }
}

/// One page of a plain listing (groups, audit): where it starts and how long it is; `None` is
/// the first page, of the API's default size (50).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

impl PageRequest {
    pub(crate) fn query(&self) -> Vec<(&'static str, String)> {
        Self::page_query(self.cursor.as_deref(), self.limit)
    }

    fn page_query(cursor: Option<&str>, limit: Option<u32>) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        push(&mut query, "cursor", cursor);
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        query
    }
}

/// The days a usage report covers, both included. `None` is the API's default: `to` today
/// (UTC, by the server's clock), `from` 29 days before `to`. A range covers at most 400 days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayRange {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl DayRange {
    /// The last `days` days up to today (UTC, by this machine's clock), today included; `0`
    /// is taken as `1`.
    pub fn last_days(days: u32) -> Self {
        Self::last_days_to(days, Utc::now().date_naive())
    }

    /// The `days` days that end with `to`, `to` included; `0` is taken as `1`.
    pub fn last_days_to(days: u32, to: NaiveDate) -> Self {
        let back = Duration::days(i64::from(days.max(1)) - 1);
        Self {
            from: Some(to.checked_sub_signed(back).unwrap_or(NaiveDate::MIN)),
            to: Some(to),
        }
    }

    pub(crate) fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(from) = self.from {
            query.push(("from", from.format("%Y-%m-%d").to_string()));
        }
        if let Some(to) = self.to {
            query.push(("to", to.format("%Y-%m-%d").to_string()));
        }
        query
    }
}

fn push(query: &mut Vec<(&'static str, String)>, name: &'static str, value: Option<&str>) {
    if let Some(value) = value {
        query.push((name, value.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed check panics

    use super::*;

    #[test]
    fn a_key_filter_sends_only_what_it_sets() {
        assert!(KeyFilter::default().query().is_empty());
        let filter = KeyFilter {
            status: Some(StatusFilter::All),
            workspace: Some("ws_1".into()),
            q: Some("ci".into()),
            limit: Some(10),
            cursor: Some("ab".into()),
            ..KeyFilter::default()
        };
        assert_eq!(
            filter.query(),
            vec![
                ("status", "all".to_owned()),
                ("workspace", "ws_1".to_owned()),
                ("q", "ci".to_owned()),
                ("cursor", "ab".to_owned()),
                ("limit", "10".to_owned()),
            ]
        );
    }

    #[test]
    fn statuses_are_spelled_as_the_api_spells_them() {
        for text in ["active", "inactive", "expired", "revoked", "all"] {
            assert_eq!(StatusFilter::parse(text).unwrap().as_str(), text);
        }
        assert_eq!(StatusFilter::parse("Active"), None);
    }

    #[test]
    fn the_last_days_include_today() {
        let to = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        let range = DayRange::last_days_to(7, to);
        assert_eq!(
            range.query(),
            vec![
                ("from", "2024-02-24".to_owned()),
                ("to", "2024-03-01".to_owned())
            ]
        );
        assert_eq!(DayRange::last_days_to(0, to).from, Some(to));
        assert_eq!(DayRange::last_days_to(1, to).from, Some(to));
    }
}
