//! The promises of `ChatStore::presence_peers` and `ChatStore::acquainted`: who is shown whose
//! presence.

use std::collections::BTreeSet;

use anyhow::ensure;
use harmony_core::model::{Chat, ChatKind, FriendRequest, FriendRequestStatus, Role, User};
use harmony_core::values::ChatName;
use harmony_core::{ChatId, FriendRequestId, UserId};

use super::{user, Stores};

async fn group(s: &Stores, members: &[&User]) -> anyhow::Result<()> {
    let chat = Chat {
        id: ChatId::new(),
        kind: ChatKind::Group,
        name: Some(ChatName::parse("circle")?),
        owner_id: members[0].id,
        created_at: harmony_core::now(),
        member_count: members.len() as u32,
    };
    let with_roles: Vec<(User, Role)> = members
        .iter()
        .enumerate()
        .map(|(i, u)| {
            (
                (*u).clone(),
                if i == 0 { Role::Owner } else { Role::Member },
            )
        })
        .collect();
    s.chats.create_chat(&chat, &with_roles, None).await?;
    Ok(())
}

fn set(ids: impl IntoIterator<Item = UserId>) -> BTreeSet<String> {
    ids.into_iter().map(|id| id.to_string()).collect()
}

pub(super) async fn peers(s: &Stores) -> anyhow::Result<()> {
    let [dan, eve, fay, gus, hal] = [
        user(s, "dan").await?,
        user(s, "eve").await?,
        user(s, "fay").await?,
        user(s, "gus").await?,
        user(s, "hal").await?,
    ];
    let request = FriendRequest {
        id: FriendRequestId::new(),
        from: eve.clone(),
        to: dan.clone(),
        status: FriendRequestStatus::Pending,
        created_at: harmony_core::now(),
    };
    s.friends.create_friend_request(&request).await?;
    ensure!(
        s.chats.presence_peers(dan.id, 100).await?.is_empty(),
        "a pending request shows nothing"
    );
    s.friends
        .resolve_friend_request(request.id, FriendRequestStatus::Accepted)
        .await?;
    group(s, &[&dan, &fay]).await?;
    group(s, &[&gus, &dan, &eve]).await?;

    let small = s.chats.presence_peers(dan.id, 2).await?;
    ensure!(small.len() == 2, "each peer once: {small:?}");
    ensure!(
        set(small) == set([eve.id, fay.id]),
        "friends and small-chat members, not a bigger chat's"
    );
    let all = s.chats.presence_peers(dan.id, 3).await?;
    ensure!(set(all) == set([eve.id, fay.id, gus.id]));
    ensure!(
        set(s.chats.presence_peers(gus.id, 2).await?).is_empty(),
        "gus shares only a big chat"
    );
    ensure!(set(s.chats.presence_peers(eve.id, 2).await?) == set([dan.id]));
    ensure!(s.chats.presence_peers(hal.id, 100).await?.is_empty());

    let asked = [eve.id, fay.id, gus.id, hal.id, UserId::new(), eve.id];
    let known = s.chats.acquainted(dan.id, &asked).await?;
    ensure!(
        set(known) == set([eve.id, fay.id, gus.id]),
        "friends and members of any shared chat"
    );
    ensure!(s.chats.acquainted(hal.id, &asked).await?.is_empty());
    ensure!(s.chats.acquainted(dan.id, &[]).await?.is_empty());
    Ok(())
}
