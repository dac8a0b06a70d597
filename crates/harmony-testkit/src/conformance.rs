//! One conformance suite for every state and history store: the SQLite adapter and the
//! PostgreSQL adapter run exactly these checks, so the two cannot drift. Each check states a
//! promise of a port in `harmony_core::ports`.

use std::sync::Arc;

use anyhow::ensure;
use harmony_core::model::{
    Account, Chat, ChatKind, FriendRequest, FriendRequestStatus, Role, User,
};
use harmony_core::ports::{
    ChatStore, FriendStore, HistoryStore, RefreshRecord, SessionStore, StoreError, UserStore,
};
use harmony_core::values::{ChatName, DisplayName, Username};
use harmony_core::{ChatId, FriendRequestId, UserId};

mod history;
mod peers;

/// The stores under test; each may be the same object.
pub struct Stores {
    pub users: Arc<dyn UserStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub friends: Arc<dyn FriendStore>,
    pub chats: Arc<dyn ChatStore>,
    pub history: Arc<dyn HistoryStore>,
}

/// Runs every check, in order, on empty stores.
pub async fn run_all(s: &Stores) -> anyhow::Result<()> {
    let [ann, bob, cat] = accounts(s).await?;
    sessions(s, &ann).await?;
    friends(s, &ann, &bob, &cat).await?;
    let chat = chats(s, &ann, &bob, &cat).await?;
    history::history(s, &ann, &bob, chat).await?;
    history::changes(s, &ann, &bob).await?;
    peers::peers(s).await?;
    Ok(())
}

async fn user(s: &Stores, name: &str) -> anyhow::Result<User> {
    let user = User {
        id: UserId::new(),
        username: Username::parse(name)?,
        display_name: DisplayName::parse(&name.to_uppercase())?,
        created_at: harmony_core::now(),
    };
    s.users
        .create_account(&Account {
            user: user.clone(),
            password_hash: format!("hash-{name}"),
        })
        .await?;
    Ok(user)
}

async fn accounts(s: &Stores) -> anyhow::Result<[User; 3]> {
    let ann = user(s, "ann").await?;
    let bob = user(s, "bob").await?;
    let cat = user(s, "ann_cat").await?;
    let dup = s
        .users
        .create_account(&Account {
            user: User {
                id: UserId::new(),
                ..ann.clone()
            },
            password_hash: "x".into(),
        })
        .await;
    ensure!(
        matches!(dup, Err(StoreError::Conflict("username"))),
        "a taken username must conflict: {dup:?}"
    );
    let found = s
        .users
        .account_by_username(&Username::parse("ann")?)
        .await?;
    ensure!(
        found.as_ref().map(|a| (&a.user, a.password_hash.as_str())) == Some((&ann, "hash-ann")),
        "account by name: {found:?}"
    );
    ensure!(
        s.users.user(bob.id).await? == Some(bob.clone()),
        "user by id round-trips"
    );
    ensure!(s.users.user(UserId::new()).await?.is_none());
    let names: Vec<String> = s
        .users
        .search_users("ann", 10)
        .await?
        .iter()
        .map(|u| u.username.to_string())
        .collect();
    ensure!(
        names == ["ann", "ann_cat"],
        "prefix search, by name: {names:?}"
    );
    ensure!(
        s.users.search_users("ann_", 10).await?.len() == 1,
        "'_' is not a wildcard"
    );
    ensure!(
        s.users.search_users("a", 1).await?.len() == 1,
        "search honours its limit"
    );
    ensure!(s.users.set_password_hash(cat.id, "hash-new").await?);
    let changed = s
        .users
        .account_by_username(&Username::parse("ann_cat")?)
        .await?
        .map(|a| a.password_hash);
    ensure!(changed.as_deref() == Some("hash-new"), "{changed:?}");
    ensure!(
        !s.users.set_password_hash(UserId::new(), "x").await?,
        "no such user"
    );
    Ok([ann, bob, cat])
}

async fn sessions(s: &Stores, ann: &User) -> anyhow::Result<()> {
    let now = harmony_core::now();
    let family = uuid::Uuid::new_v4();
    let record = |hash: u8| RefreshRecord {
        hash: [hash; 32],
        family,
        user_id: ann.id,
        created_at: now,
        expires_at: now + time::Duration::days(30),
        rotated_at: None,
        revoked: false,
    };
    ensure!(s.sessions.insert_refresh(&record(1)).await?);
    ensure!(
        s.sessions.refresh_by_hash(&[1; 32]).await? == Some(record(1)),
        "refresh record round-trips"
    );
    ensure!(
        s.sessions.mark_rotated(&[1; 32], now).await?,
        "first rotation wins"
    );
    ensure!(
        !s.sessions.mark_rotated(&[1; 32], now).await?,
        "second rotation loses"
    );
    ensure!(
        s.sessions
            .refresh_by_hash(&[1; 32])
            .await?
            .and_then(|r| r.rotated_at)
            == Some(now)
    );
    ensure!(s.sessions.insert_refresh(&record(2)).await?);
    let later = RefreshRecord {
        hash: [7; 32],
        family: uuid::Uuid::new_v4(),
        created_at: now + time::Duration::seconds(1),
        ..record(7)
    };
    ensure!(s.sessions.insert_refresh(&later).await?);
    let expired = RefreshRecord {
        hash: [8; 32],
        family: uuid::Uuid::new_v4(),
        expires_at: now - time::Duration::seconds(1),
        ..record(8)
    };
    ensure!(s.sessions.insert_refresh(&expired).await?);
    ensure!(
        s.sessions.live_families(ann.id, now).await? == vec![family, later.family],
        "live sessions, the oldest first, without expired ones"
    );
    let before = harmony_core::now() - time::Duration::minutes(1);
    s.sessions.revoke_family(family).await?;
    ensure!(
        s.sessions.live_families(ann.id, now).await? == vec![later.family],
        "a revoked session is not live"
    );
    let seen = s.sessions.revocations_since(before).await?;
    ensure!(
        seen.iter().any(|r| r.family == family),
        "the revocation is readable by every node: {seen:?}"
    );
    s.sessions.revoke_family(family).await?;
    ensure!(
        s.sessions.revocations_since(before).await?.len() == seen.len(),
        "revoking twice records it once"
    );
    let future = harmony_core::now() + time::Duration::minutes(5);
    ensure!(s.sessions.revocations_since(future).await?.is_empty());
    ensure!(
        s.sessions.prune_revocations(before).await? == 0,
        "nothing that old"
    );
    ensure!(s.sessions.prune_revocations(future).await? >= 1);
    ensure!(
        s.sessions.revocations_since(before).await?.is_empty(),
        "pruned"
    );
    s.sessions.revoke_family(family).await?;
    ensure!(
        s.sessions
            .refresh_by_hash(&[2; 32])
            .await?
            .is_some_and(|r| r.revoked),
        "revocation covers the family"
    );
    ensure!(
        !s.sessions.insert_refresh(&record(3)).await?,
        "no successor joins a revoked family"
    );
    ensure!(s.sessions.refresh_by_hash(&[9; 32]).await?.is_none());
    Ok(())
}

async fn friends(s: &Stores, ann: &User, bob: &User, cat: &User) -> anyhow::Result<()> {
    let request = |from: &User, to: &User| FriendRequest {
        id: FriendRequestId::new(),
        from: from.clone(),
        to: to.clone(),
        status: FriendRequestStatus::Pending,
        created_at: harmony_core::now(),
    };
    let first = request(ann, bob);
    s.friends.create_friend_request(&first).await?;
    let reverse = s.friends.create_friend_request(&request(bob, ann)).await;
    ensure!(
        matches!(reverse, Err(StoreError::Conflict(_))),
        "one pending request per pair, either way"
    );
    ensure!(s.friends.friend_request(first.id).await? == Some(first.clone()));
    let (incoming, outgoing) = s.friends.pending_requests(bob.id).await?;
    ensure!(
        incoming == [first.clone()] && outgoing.is_empty(),
        "pending lists: {incoming:?} {outgoing:?}"
    );
    ensure!(
        s.friends
            .resolve_friend_request(first.id, FriendRequestStatus::Accepted)
            .await?
    );
    ensure!(
        !s.friends
            .resolve_friend_request(first.id, FriendRequestStatus::Declined)
            .await?,
        "only pending requests resolve"
    );
    ensure!(
        s.friends.are_friends(bob.id, ann.id).await?,
        "accepting makes friends"
    );
    ensure!(s.friends.friends(ann.id).await? == std::slice::from_ref(bob));
    let to_cat = request(ann, cat);
    s.friends.create_friend_request(&to_cat).await?;
    ensure!(
        s.friends
            .resolve_friend_request(to_cat.id, FriendRequestStatus::Declined)
            .await?
    );
    ensure!(
        !s.friends.are_friends(ann.id, cat.id).await?,
        "declining makes no friends"
    );
    s.friends.create_friend_request(&request(cat, ann)).await?;
    ensure!(s.friends.remove_friendship(bob.id, ann.id).await?);
    ensure!(
        !s.friends.remove_friendship(ann.id, bob.id).await?,
        "removing twice finds nothing"
    );
    ensure!(s.friends.friends(bob.id).await?.is_empty());
    Ok(())
}

async fn chats(s: &Stores, ann: &User, bob: &User, cat: &User) -> anyhow::Result<ChatId> {
    let chat = Chat {
        id: ChatId::new(),
        kind: ChatKind::Group,
        name: Some(ChatName::parse("team")?),
        owner_id: ann.id,
        created_at: harmony_core::now(),
        member_count: 2,
    };
    s.chats
        .create_chat(
            &chat,
            &[(ann.clone(), Role::Owner), (bob.clone(), Role::Member)],
            None,
        )
        .await?;
    ensure!(
        s.chats.chat(chat.id).await? == Some(chat.clone()),
        "chat round-trips with its member count"
    );
    ensure!(s.chats.role_of(chat.id, ann.id).await? == Some(Role::Owner));
    ensure!(s.chats.role_of(chat.id, cat.id).await?.is_none());

    let direct = Chat {
        id: ChatId::new(),
        kind: ChatKind::Direct,
        name: None,
        owner_id: ann.id,
        ..chat.clone()
    };
    s.chats
        .create_chat(
            &direct,
            &[(ann.clone(), Role::Owner), (cat.clone(), Role::Member)],
            Some("k:ann:cat"),
        )
        .await?;
    let again = Chat {
        id: ChatId::new(),
        ..direct.clone()
    };
    let dup = s
        .chats
        .create_chat(&again, &[(ann.clone(), Role::Owner)], Some("k:ann:cat"))
        .await;
    ensure!(
        matches!(dup, Err(StoreError::Conflict("direct_chat"))),
        "one direct chat per key: {dup:?}"
    );
    ensure!(
        s.chats.chat(again.id).await?.is_none(),
        "a refused create writes nothing"
    );
    ensure!(s.chats.chat_by_direct_key("k:ann:cat").await?.map(|c| c.id) == Some(direct.id));

    let mine: Vec<ChatId> = s
        .chats
        .memberships(ann.id)
        .await?
        .iter()
        .map(|m| m.chat.id)
        .collect();
    ensure!(
        mine.len() == 2 && mine.contains(&chat.id) && mine.contains(&direct.id),
        "memberships: {mine:?}"
    );
    let mut ids = s.chats.chat_ids(ann.id).await?;
    ids.sort();
    let mut expected = vec![chat.id, direct.id];
    expected.sort();
    ensure!(ids == expected, "chat ids: {ids:?}");
    ensure!(
        s.chats.chat_ids(cat.id).await? == [direct.id],
        "only the user's own chats"
    );

    let member = s.chats.add_member(chat.id, cat, Role::Member).await?;
    ensure!(member.user == *cat && member.role == Role::Member);
    ensure!(matches!(
        s.chats.add_member(chat.id, cat, Role::Member).await,
        Err(StoreError::Conflict("member"))
    ));
    let names: Vec<String> = s
        .chats
        .members(chat.id)
        .await?
        .iter()
        .map(|m| m.user.username.to_string())
        .collect();
    ensure!(
        names == ["ann", "bob", "ann_cat"],
        "members in joining order: {names:?}"
    );
    ensure!(
        s.chats.chat_ids(cat.id).await?.contains(&chat.id),
        "a new member's chat ids"
    );
    ensure!(s.chats.remove_member(chat.id, cat.id).await?);
    ensure!(!s.chats.remove_member(chat.id, cat.id).await?);
    ensure!(
        s.chats.chat_ids(cat.id).await? == [direct.id],
        "a removed member's chat ids"
    );

    let renamed = s
        .chats
        .rename_chat(chat.id, &ChatName::parse("crew")?)
        .await?;
    ensure!(
        renamed
            .as_ref()
            .and_then(|c| c.name.as_ref())
            .map(ChatName::as_str)
            == Some("crew")
    );
    ensure!(s
        .chats
        .rename_chat(ChatId::new(), &ChatName::parse("x")?)
        .await?
        .is_none());

    s.chats.set_read_marker(chat.id, bob.id, 5).await?;
    s.chats.set_read_marker(chat.id, bob.id, 3).await?;
    let marker = s
        .chats
        .memberships(bob.id)
        .await?
        .into_iter()
        .find(|m| m.chat.id == chat.id)
        .map(|m| m.last_read_seq);
    ensure!(
        marker == Some(5),
        "read markers never move back: {marker:?}"
    );

    ensure!(s.chats.delete_chat(direct.id).await?);
    ensure!(!s.chats.delete_chat(direct.id).await?);
    ensure!(
        s.chats.chat(direct.id).await?.is_none()
            && s.chats.role_of(direct.id, ann.id).await?.is_none()
    );
    Ok(chat.id)
}
