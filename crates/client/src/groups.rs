//! `/v1/groups`: sharing groups and their members.

use keyward_api::groups::{CreateGroupRequest, Group};
use keyward_api::keys::ApiKey;
use keyward_api::listing::{GroupListing, KeyListing};

use crate::client::{Client, Method, Request};
use crate::endpoint::segment;
use crate::error::ClientError;
use crate::filter::PageRequest;

impl Client {
    /// `POST /v1/groups`.
    pub fn create_group(&self, request: &CreateGroupRequest) -> Result<Group, ClientError> {
        self.json(Request::new(Method::Post, "/v1/groups".to_owned()).json(request)?)
    }

    /// Every sharing group, following `GET /v1/groups` page after page.
    pub fn list_groups(&self) -> Result<Vec<Group>, ClientError> {
        self.every_page(None, |cursor| {
            let page = PageRequest {
                cursor,
                limit: None,
            };
            self.json::<GroupListing>(Request::get("/v1/groups".to_owned()).query(page.query()))
        })
    }

    /// `GET /v1/groups/{id}`.
    pub fn get_group(&self, id: &str) -> Result<Group, ClientError> {
        self.json(Request::get(group_path(id)))
    }

    /// `DELETE /v1/groups/{id}`: also removes it from its members.
    pub fn delete_group(&self, id: &str) -> Result<(), ClientError> {
        self.empty(Request::new(Method::Delete, group_path(id)))
    }

    /// Every key in the group (any status), following `GET /v1/groups/{id}/members`.
    pub fn group_members(&self, id: &str) -> Result<Vec<ApiKey>, ClientError> {
        self.every_page(None, |cursor| {
            let page = PageRequest {
                cursor,
                limit: None,
            };
            let path = format!("{}/members", group_path(id));
            self.json::<KeyListing>(Request::get(path).query(page.query()))
        })
    }

    /// `PUT /v1/groups/{id}/members/{key_id}`: answers the key (idempotent).
    pub fn add_member(&self, group_id: &str, key_id: &str) -> Result<ApiKey, ClientError> {
        self.json(Request::new(Method::Put, member_path(group_id, key_id)))
    }

    /// `DELETE /v1/groups/{id}/members/{key_id}`: answers the key (idempotent).
    pub fn remove_member(&self, group_id: &str, key_id: &str) -> Result<ApiKey, ClientError> {
        self.json(Request::new(Method::Delete, member_path(group_id, key_id)))
    }
}

fn group_path(id: &str) -> String {
    format!("/v1/groups/{}", segment(id))
}

fn member_path(group_id: &str, key_id: &str) -> String {
    format!("{}/members/{}", group_path(group_id), segment(key_id))
}
