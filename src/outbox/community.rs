//! Changes to members, groups, comments and highlights: written with their events, like
//! content changes (see [`Outbox::commit`]).

use super::{Outbox, Result};
use crate::domain::comments::{Comment, CommentChange, Highlight, HighlightChange};
use crate::domain::content::User;
use crate::domain::groups::{Group, GroupChange};
use crate::domain::members::MemberChange;
use crate::store::Actor;

impl Outbox {
    /// Makes a change to the channel's members; returns the users it concerns, after it.
    pub async fn change_members(&self, actor: Actor, change: MemberChange) -> Result<Vec<User>> {
        self.commit(actor, move |store, actor, terms| async move {
            store.change_members(&actor, &terms, &change).await
        })
        .await
    }

    /// Makes a change to a group; returns it after the change (for a deletion, as it was).
    pub async fn change_group(&self, actor: Actor, change: GroupChange) -> Result<Group> {
        self.commit(actor, move |store, actor, terms| async move {
            store.change_group(&actor, &terms, &change).await
        })
        .await
    }

    /// Adds or removes a comment; returns it (for a removal, as it was).
    pub async fn change_comment(&self, actor: Actor, change: CommentChange) -> Result<Comment> {
        self.commit(actor, move |store, actor, terms| async move {
            store.change_comment(&actor, &terms, &change).await
        })
        .await
    }

    /// Adds or removes a highlight; returns it (for a removal, as it was).
    pub async fn change_highlight(
        &self,
        actor: Actor,
        change: HighlightChange,
    ) -> Result<Highlight> {
        self.commit(actor, move |store, actor, terms| async move {
            store.change_highlight(&actor, &terms, &change).await
        })
        .await
    }
}
