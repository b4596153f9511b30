//! What was used and what was done: `/v1/keys/{id}/usage`, `/v1/usage` and `/v1/audit`.

use keyward_api::listing::AuditListing;
use keyward_api::usage::{AccountUsage, KeyUsage};

use crate::client::{Client, Request};
use crate::error::ClientError;
use crate::filter::{DayRange, PageRequest};
use crate::keys::key_path;

impl Client {
    /// `GET /v1/keys/{id}/usage`: the key's lifetime figures and its requests per day in
    /// `days`.
    pub fn key_usage(&self, id: &str, days: &DayRange) -> Result<KeyUsage, ClientError> {
        self.json(Request::get(format!("{}/usage", key_path(id))).query(days.query()))
    }

    /// `GET /v1/usage`: the account's requests per day in `days`.
    pub fn account_usage(&self, days: &DayRange) -> Result<AccountUsage, ClientError> {
        self.json(Request::get("/v1/usage".to_owned()).query(days.query()))
    }

    /// `GET /v1/audit`: one page of the audit log, newest first.
    pub fn audit(&self, page: &PageRequest) -> Result<AuditListing, ClientError> {
        self.json(Request::get("/v1/audit".to_owned()).query(page.query()))
    }
}
