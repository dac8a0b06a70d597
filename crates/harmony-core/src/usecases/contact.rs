//! Consent: whom a user may put into a chat with themselves. By default a direct chat or a
//! group may be started with, and a member added who is, a friend of the caller or someone who
//! already shares a chat with them; a stranger must first accept a friend request. An operator
//! may loosen that to anyone or tighten it to friends only (`Contact`).

use std::collections::HashSet;

use super::chats::ChatError;
use super::Ports;
use crate::UserId;

/// Who may bring a user into a chat with them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Contact {
    /// Anyone with an account.
    Anyone,
    /// Friends, and people who already share a chat with the user.
    #[default]
    FriendsAndChatMembers,
    /// Friends only.
    Friends,
}

impl std::str::FromStr for Contact {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        match raw {
            "anyone" => Ok(Self::Anyone),
            "friends_and_chat_members" => Ok(Self::FriendsAndChatMembers),
            "friends" => Ok(Self::Friends),
            other => Err(format!(
                "{other:?}: use anyone, friends_and_chat_members or friends"
            )),
        }
    }
}

/// Refuses, naming the first of `targets` that `actor` may not bring into a chat. Two reads
/// for the caller (friends, chats), then one per target that is not a friend.
pub(super) async fn check(
    ports: &Ports,
    rule: Contact,
    actor: UserId,
    targets: &[UserId],
) -> Result<(), ChatError> {
    let targets: Vec<UserId> = targets.iter().copied().filter(|t| *t != actor).collect();
    if rule == Contact::Anyone || targets.is_empty() {
        return Ok(());
    }
    let friends: HashSet<UserId> = ports
        .friends
        .friends(actor)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect();
    let mut own_chats = None;
    for target in targets {
        if friends.contains(&target) {
            continue;
        }
        if rule == Contact::FriendsAndChatMembers {
            if own_chats.is_none() {
                let ids: HashSet<_> = ports.chats.chat_ids(actor).await?.into_iter().collect();
                own_chats = Some(ids);
            }
            let mine = own_chats.as_ref();
            let theirs = ports.chats.chat_ids(target).await?;
            if theirs.iter().any(|c| mine.is_some_and(|m| m.contains(c))) {
                continue;
            }
        }
        return Err(ChatError::ContactNotAllowed(target));
    }
    Ok(())
}
