//! Sharing groups: when a key creates a resource, each of its groups gets `owner` on it. The
//! authorizer passes a key's group ids to the backend, which applies that rule.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::id::new_id;
use crate::key::{MAX_DESCRIPTION_LEN, NameText, validate_description};
use crate::name::validate_name;
use crate::token::TokenError;
use crate::validation::{FieldError, ValidationErrors};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Group {
    pub id: String,
    pub account: String,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// The body of `POST /v1/groups`, with the name and description rules of a key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroupRequest {
    /// Required. 1 to 128 characters, stored in NFC and unique in the account after NFKC case
    /// folding (`Ops` and `OPS` are one name); no control, bidirectional or invisible
    /// characters; letters of one script (Unicode UTS #39: single-script or highly restrictive).
    #[schemars(required, with = "NameText")]
    pub name: Option<String>,
    #[schemars(length(max = MAX_DESCRIPTION_LEN))]
    pub description: Option<String>,
}

impl CreateGroupRequest {
    pub fn into_group(
        self,
        account: &str,
        created_by: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<Group, ValidationErrors>, TokenError> {
        let mut errors: Vec<FieldError> = Vec::new();
        let name = validate_name(self.name.as_deref()).map_err(|e| errors.extend(e));
        let description =
            validate_description(self.description.as_deref()).map_err(|e| errors.extend(e));
        let (Ok(name), Ok(description)) = (name, description) else {
            return Ok(Err(ValidationErrors(errors)));
        };
        Ok(Ok(Group {
            id: new_id("grp")?,
            account: account.to_owned(),
            name,
            description,
            created_at: now,
            created_by: created_by.to_owned(),
        }))
    }
}

/// How a key's sharing groups read for people (plans, imports, the console, Terraform): each
/// id as the name of its group in `groups`, an id `groups` does not hold as itself.
pub fn names_of<'a>(ids: &'a [String], groups: &'a [Group]) -> Vec<&'a str> {
    ids.iter()
        .map(|id| {
            groups
                .iter()
                .find(|g| &g.id == id)
                .map_or(id.as_str(), |g| g.name.as_str())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_need_a_name() {
        let ok = CreateGroupRequest {
            name: Some(" platform ".into()),
            description: None,
        };
        let g = ok.into_group("acc", "key_1", Utc::now()).unwrap().unwrap();
        assert!(g.id.starts_with("grp_") && g.name == "platform");
        let bad = CreateGroupRequest::default()
            .into_group("acc", "k", Utc::now())
            .unwrap();
        assert_eq!(bad.unwrap_err().0[0].field, "name");
    }
}
