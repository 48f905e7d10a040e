//! User groups of a channel: named sets of users, which collections may name as admins or
//! members.

use super::ids::ChannelId;

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: i64,
    pub channel_id: ChannelId,
    pub name: String,
    pub description: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// In the order given.
    pub member_ids: Vec<i64>,
}

#[derive(Debug, Clone)]
pub struct NewGroup {
    pub name: String,
    pub description: Option<String>,
    pub member_ids: Vec<i64>,
}

/// `None` leaves a field as it is; `Some(None)` clears the description.
#[derive(Debug, Clone, Default)]
pub struct GroupPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub member_ids: Option<Vec<i64>>,
}

impl GroupPatch {
    pub fn apply(&self, g: &Group) -> Group {
        let mut out = g.clone();
        if let Some(n) = &self.name {
            out.name.clone_from(n);
        }
        if let Some(d) = &self.description {
            out.description.clone_from(d);
        }
        if let Some(m) = &self.member_ids {
            out.member_ids.clone_from(m);
        }
        out
    }
}

/// A change to a group (`group.created`, `group.updated`, `group.deleted`).
#[derive(Debug, Clone)]
pub enum GroupChange {
    Create(NewGroup),
    Update(i64, GroupPatch),
    Delete(i64),
}
