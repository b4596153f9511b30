//! `/v1/keys`: create, list, read, edit, revoke, regenerate, delete, and workspaces.

use keyward_api::keys::{
    ApiKey, CreateKeyRequest, EditedKey, KeyWithSecret, RegenerateRequest, RegeneratedKey,
    UpdateKeyRequest,
};
use keyward_api::listing::KeyListing;

use crate::client::{Client, Method, Request};
use crate::endpoint::segment;
use crate::error::ClientError;
use crate::filter::KeyFilter;

impl Client {
    /// `POST /v1/keys`: a new key and its secret, shown this once. With an `idempotency_key`
    /// (1 to 255 visible ASCII characters), a retry of the same request within 24 h answers
    /// the first key with `secret: None` and a warning instead of making another.
    pub fn create_key(
        &self,
        request: &CreateKeyRequest,
        idempotency_key: Option<&str>,
    ) -> Result<KeyWithSecret, ClientError> {
        let mut call = Request::new(Method::Post, "/v1/keys".to_owned()).json(request)?;
        if let Some(key) = idempotency_key {
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ClientError::InvalidRequest(
                    "an Idempotency-Key is 1 to 255 visible ASCII characters".to_owned(),
                ));
            }
            call = call.header("Idempotency-Key", key.to_owned());
        }
        self.json(call)
    }

    /// `GET /v1/keys`: one page of keys by name.
    pub fn list_keys(&self, filter: &KeyFilter) -> Result<KeyListing, ClientError> {
        self.json(Request::get("/v1/keys".to_owned()).query(filter.query()))
    }

    /// Every key `filter` selects, following `next_cursor` from `filter.cursor` (its `limit`
    /// is the page size).
    pub fn all_keys(&self, filter: &KeyFilter) -> Result<Vec<ApiKey>, ClientError> {
        self.every_page(filter.cursor.clone(), |cursor| {
            self.list_keys(&KeyFilter {
                cursor,
                ..filter.clone()
            })
        })
    }

    /// `GET /v1/keys/{id}`.
    pub fn get_key(&self, id: &str) -> Result<ApiKey, ClientError> {
        self.json(Request::get(key_path(id)))
    }

    /// `PATCH /v1/keys/{id}`: fields left `None` stay as they are; `expires_at: Some(None)`
    /// and `secrets_manager_secret_id: Some(None)` clear them. With `if_match`, only if the
    /// key is still at that version (412 otherwise: read it again).
    pub fn update_key(
        &self,
        id: &str,
        if_match: Option<u64>,
        request: &UpdateKeyRequest,
    ) -> Result<EditedKey, ClientError> {
        let call = Request::new(Method::Patch, key_path(id))
            .if_match(if_match)
            .json(request)?;
        self.json(call)
    }

    /// `POST /v1/keys/{id}/revoke`: for good; the secret stops at once. With `if_match`, only
    /// if the key is still at that version.
    pub fn revoke_key(&self, id: &str, if_match: Option<u64>) -> Result<ApiKey, ClientError> {
        let call =
            Request::new(Method::Post, format!("{}/revoke", key_path(id))).if_match(if_match);
        self.json(call)
    }

    /// `POST /v1/keys/{id}/regenerate`: a new secret for the same key, shown this once; the
    /// old one stops at once or after `grace_period_seconds`. With `if_match`, only if the key
    /// is still at that version.
    pub fn regenerate_key(
        &self,
        id: &str,
        if_match: Option<u64>,
        request: &RegenerateRequest,
    ) -> Result<RegeneratedKey, ClientError> {
        let call = Request::new(Method::Post, format!("{}/regenerate", key_path(id)))
            .if_match(if_match)
            .json(request)?;
        self.json(call)
    }

    /// `DELETE /v1/keys/{id}`: the key, its secret and its name are gone. With `if_match`,
    /// only if the key is still at that version.
    pub fn delete_key(&self, id: &str, if_match: Option<u64>) -> Result<(), ClientError> {
        self.empty(Request::new(Method::Delete, key_path(id)).if_match(if_match))
    }

    /// `PUT /v1/keys/{id}/workspaces/{workspace}`: associate (idempotent).
    pub fn add_workspace(&self, id: &str, workspace: &str) -> Result<ApiKey, ClientError> {
        self.json(Request::new(Method::Put, workspace_path(id, workspace)))
    }

    /// `DELETE /v1/keys/{id}/workspaces/{workspace}`: dissociate (idempotent).
    pub fn remove_workspace(&self, id: &str, workspace: &str) -> Result<ApiKey, ClientError> {
        self.json(Request::new(Method::Delete, workspace_path(id, workspace)))
    }
}

pub(crate) fn key_path(id: &str) -> String {
    format!("/v1/keys/{}", segment(id))
}

fn workspace_path(id: &str, workspace: &str) -> String {
    format!("{}/workspaces/{}", key_path(id), segment(workspace))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed check panics

    use super::*;

    #[test]
    fn ids_stay_inside_their_segment() {
        assert_eq!(key_path("key_1"), "/v1/keys/key_1");
        assert_eq!(key_path("../audit"), "/v1/keys/%2E%2E%2Faudit");
        assert_eq!(
            workspace_path("key_1", "ws 1"),
            "/v1/keys/key_1/workspaces/ws%201"
        );
    }
}
