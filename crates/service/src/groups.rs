//! Sharing groups and their members. A key's groups travel with it (the authorizer passes them
//! to the backend), so membership is a field of the key, changed through
//! `App::change_key` like any other edit.

use keyward_core::group::{CreateGroupRequest, Group};
use keyward_core::key::ApiKey;
use keyward_core::lifecycle::{self, KeyOp};
use keyward_store::{KeyQuery, Page, StoreError};
use serde_json::json;

use crate::app::{Actor, App};
use crate::error::ServiceError;
use crate::issuance::{Change, check_id};

fn group_error(e: StoreError) -> ServiceError {
    match e {
        StoreError::NotFound => ServiceError::NotFound("group"),
        StoreError::NameTaken(name) => ServiceError::NameTaken("group", name),
        other => other.into(),
    }
}

impl App {
    pub async fn create_group(
        &self,
        actor: &Actor,
        request: CreateGroupRequest,
    ) -> Result<Group, ServiceError> {
        let group = request.into_group(&actor.account, &actor.id, self.now())??;
        let audit = self.audit_entry(
            actor,
            "group.created",
            &group.id,
            json!({"name": group.name}),
        )?;
        self.store
            .insert_group(&group, &audit)
            .await
            .map_err(group_error)?;
        Ok(group)
    }

    pub async fn get_group(&self, actor: &Actor, id: &str) -> Result<Group, ServiceError> {
        self.store
            .get_group(&actor.account, id)
            .await?
            .ok_or(ServiceError::NotFound("group"))
    }

    pub async fn list_groups(
        &self,
        actor: &Actor,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Group>, ServiceError> {
        Ok(self
            .store
            .list_groups(&actor.account, cursor, limit)
            .await?)
    }

    /// The keys that are members of the group, every status, by name.
    pub async fn group_members(
        &self,
        actor: &Actor,
        id: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<Page<ApiKey>, ServiceError> {
        self.get_group(actor, id).await?;
        let query = KeyQuery {
            group: Some(id.to_owned()),
            cursor,
            limit,
            ..KeyQuery::all(self.now())
        };
        Ok(self.store.list_keys(&actor.account, &query).await?)
    }

    pub async fn add_member(
        &self,
        actor: &Actor,
        group: &str,
        key_id: &str,
    ) -> Result<ApiKey, ServiceError> {
        check_id("group", group)?;
        self.get_group(actor, group).await?;
        self.change_key(actor, key_id, KeyOp::JoinGroup, None, |current| {
            Ok(lifecycle::join_group(current, group)?
                .map(|next| Change::to(next, json!({"group": group}))))
        })
        .await
    }

    pub async fn remove_member(
        &self,
        actor: &Actor,
        group: &str,
        key_id: &str,
    ) -> Result<ApiKey, ServiceError> {
        check_id("group", group)?;
        self.change_key(actor, key_id, KeyOp::LeaveGroup, None, |current| {
            Ok(lifecycle::leave_group(current, group)
                .map(|next| Change::to(next, json!({"group": group}))))
        })
        .await
    }

    /// Deletes the group after removing it from every member, so no key keeps a dangling id.
    pub async fn delete_group(&self, actor: &Actor, id: &str) -> Result<(), ServiceError> {
        let group = self.get_group(actor, id).await?;
        loop {
            let page = self.group_members(actor, id, None, 100).await?;
            if page.items.is_empty() {
                break;
            }
            for key in page.items {
                self.remove_member(actor, id, &key.id).await?;
            }
        }
        let audit = self.audit_entry(actor, "group.deleted", id, json!({"name": group.name}))?;
        self.store
            .delete_group(&actor.account, id, &audit)
            .await
            .map_err(group_error)
    }
}
