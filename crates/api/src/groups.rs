//! Sharing groups on the wire.

pub use keyward_core::group::{CreateGroupRequest, Group};
