//! Listings: one page of items and where the next starts.

use keyward_core::audit::AuditEntry;
use keyward_core::group::Group;
use keyward_core::key::ApiKey;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One page of a listing and where the next starts (`null` on the last page).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "{T}Listing")]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

pub type KeyListing = Listing<ApiKey>;
pub type GroupListing = Listing<Group>;
pub type AuditListing = Listing<AuditEntry>;
