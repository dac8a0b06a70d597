//! The promises of `HistoryStore`: idempotent upserts, a position held by one message, pages and
//! cursors in both directions, reads after a seq, activity and unread counts, and purges.

use anyhow::ensure;
use harmony_core::model::{Message, User};
use harmony_core::ports::PageCursor;
use harmony_core::values::MessageContent;
use harmony_core::{ChatId, MessageId};

use super::Stores;

fn message(chat: ChatId, author: &User, seq: i64, key: Option<&str>) -> anyhow::Result<Message> {
    Ok(Message {
        id: MessageId::new(),
        chat_id: chat,
        seq,
        author: author.into(),
        content: MessageContent::parse(&format!("message {seq}"))?,
        client_msg_id: key
            .map(harmony_core::values::ClientMsgId::parse)
            .transpose()?,
        created_at: harmony_core::now(),
        change: None,
        reply_to: None,
        mentions: Default::default(),
        state: Default::default(),
        notice: None,
    })
}

pub(super) async fn history(
    s: &Stores,
    ann: &User,
    bob: &User,
    chat: ChatId,
) -> anyhow::Result<()> {
    let all: Vec<Message> = (1..=25)
        .map(|seq| {
            message(
                chat,
                if seq % 5 == 0 { bob } else { ann },
                seq,
                (seq == 1).then_some("k1"),
            )
        })
        .collect::<anyhow::Result<_>>()?;
    ensure!(s.history.upsert_messages(&all[..10]).await?.is_empty());
    ensure!(s.history.upsert_messages(&all[5..]).await?.is_empty());
    ensure!(
        s.history.upsert_messages(&all[..3]).await?.is_empty(),
        "a replay is no refusal"
    );
    // Another message at a stored position is refused, and the stored one stays.
    let intruder = message(chat, bob, 7, None)?;
    let refused = s
        .history
        .upsert_messages(&[intruder.clone(), all[7].clone()])
        .await?;
    ensure!(
        refused == [intruder.id],
        "a taken position is refused: {refused:?}"
    );
    let latest = s
        .history
        .page(chat, PageCursor::Latest, 10)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no page"))?;
    let seqs: Vec<i64> = latest.messages.iter().map(|m| m.seq).collect();
    ensure!(
        seqs == (16..=25).collect::<Vec<_>>() && latest.has_more,
        "newest page, ascending: {seqs:?}"
    );
    ensure!(
        latest.messages[9] == all[24],
        "messages round-trip with their authors"
    );
    let before = s
        .history
        .page(chat, PageCursor::Before(all[15].id), 10)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no page"))?;
    ensure!(before.messages.first().map(|m| m.seq) == Some(6) && before.has_more);
    let first = s
        .history
        .page(chat, PageCursor::Before(all[5].id), 10)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no page"))?;
    ensure!(
        first.messages.len() == 5 && !first.has_more,
        "the first page has nothing before it"
    );
    let after = s
        .history
        .page(chat, PageCursor::After(all[19].id), 10)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no page"))?;
    ensure!(
        after.messages.iter().map(|m| m.seq).collect::<Vec<_>>() == [21, 22, 23, 24, 25]
            && !after.has_more
    );
    ensure!(
        s.history
            .page(chat, PageCursor::Before(MessageId::new()), 10)
            .await?
            .is_none(),
        "unknown cursors are refused"
    );
    ensure!(
        s.history
            .page(ChatId::new(), PageCursor::Before(all[3].id), 10)
            .await?
            .is_none(),
        "a cursor of another chat is refused"
    );
    let resumed: Vec<i64> = s
        .history
        .messages_after_seq(chat, 22, 10)
        .await?
        .iter()
        .map(|m| m.seq)
        .collect();
    ensure!(resumed == [23, 24, 25]);

    let activity = s
        .history
        .activity(bob.id, &[(chat, 20), (ChatId::new(), 0)])
        .await?;
    ensure!(activity.len() == 2);
    ensure!(activity[0].last_message.as_ref().map(|m| m.seq) == Some(25));
    ensure!(
        activity[0].unread_count == 4,
        "unread counts others' messages after the marker: {}",
        activity[0].unread_count
    );
    ensure!(activity[1].last_message.is_none() && activity[1].unread_count == 0);

    let event = uuid::Uuid::new_v4();
    let mut purged = 0;
    loop {
        let n = s.history.purge_chat(chat, 10, event).await?;
        if n == 0 {
            break;
        }
        ensure!(n <= 10, "purge honours its batch");
        purged += n;
    }
    ensure!(
        purged == 25 && s.history.messages_after_seq(chat, 0, 100).await?.is_empty(),
        "purge removes every message"
    );
    // A replayed event does nothing, even if messages of the chat came back meanwhile.
    s.history.upsert_messages(&all[..2]).await?;
    ensure!(
        s.history.purge_chat(chat, 10, event).await? == 0,
        "the ledger makes a replayed purge a no-op"
    );
    ensure!(
        s.history.purge_chat(chat, 10, uuid::Uuid::new_v4()).await? == 2,
        "another event purges"
    );
    Ok(())
}

/// A change entry at `seq` (decision record 0004).
fn change(
    chat: ChatId,
    author: &User,
    seq: i64,
    change: harmony_core::changes::Change,
    content: &str,
) -> anyhow::Result<Message> {
    Ok(Message {
        content: harmony_core::values::MessageContent::from_trusted(content.to_owned()),
        change: Some(change),
        ..message(chat, author, seq, None)?
    })
}

/// Changes are entries applied once, in order, to their target: history shows messages only,
/// in their current state (edits, reactions as sets, a delete's tombstone, a reply's quote as
/// the original reads now); resume reads every entry; a replay changes nothing; unread and
/// mention counts count messages.
pub(super) async fn changes(s: &Stores, ann: &User, bob: &User) -> anyhow::Result<()> {
    use harmony_core::changes::{Change, Emoji};
    let chat = ChatId::new();
    let first = message(chat, ann, 1, None)?;
    let target = first.id;
    let mut reply = message(chat, bob, 2, None)?;
    reply.reply_to = Some(harmony_core::model::Quote::of(&first));
    reply.mentions.users = vec![ann.id];
    let thumbs = Emoji::parse("👍")?;
    let react = |by: &User, seq: i64, add: bool| {
        let emoji = thumbs.clone();
        let c = if add {
            Change::React { target, emoji }
        } else {
            Change::Unreact { target, emoji }
        };
        change(chat, by, seq, c, "")
    };
    let entries = vec![
        first.clone(),
        reply.clone(),
        change(chat, ann, 3, Change::Edit { target }, "message 1, edited")?,
        react(bob, 4, true)?,
        react(ann, 5, true)?,
        react(bob, 6, false)?,
    ];
    ensure!(s.history.upsert_messages(&entries).await?.is_empty());
    ensure!(
        s.history.upsert_messages(&entries).await?.is_empty(),
        "a replay is no refusal"
    );
    let page = s
        .history
        .page(chat, PageCursor::Latest, 10)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no page"))?;
    ensure!(
        page.messages.len() == 2,
        "messages only: {:?}",
        page.messages
    );
    let shown = &page.messages[0];
    ensure!(
        shown.content.as_str() == "message 1, edited" && shown.state.edited_at.is_some(),
        "the edit is applied: {shown:?}"
    );
    let who: Vec<Vec<_>> = shown
        .state
        .reactions
        .iter()
        .map(|r| r.users.clone())
        .collect();
    ensure!(
        who == [vec![ann.id]],
        "reactions are a set, applied once: {who:?}"
    );
    let quote = page.messages[1].reply_to.clone();
    ensure!(
        quote.as_ref().map(|q| q.excerpt.as_str()) == Some("message 1, edited")
            && page.messages[1].mentions.users == [ann.id],
        "the quote reads the original as it is now: {quote:?}"
    );
    let all = s.history.messages_after_seq(chat, 0, 10).await?;
    ensure!(all.len() == 6, "resume reads every entry: {all:?}");
    let activity = s.history.activity(ann.id, &[(chat, 0)]).await?;
    ensure!(
        activity.first().map(|a| (a.unread_count, a.mention_count)) == Some((1, 1))
            && activity[0].last_message.as_ref().map(|m| m.id) == Some(reply.id),
        "counts and the last message are messages': {activity:?}"
    );

    let delete = change(chat, bob, 7, Change::Delete { target }, "")?;
    ensure!(s.history.upsert_messages(&[delete]).await?.is_empty());
    let gone = s
        .history
        .message(chat, target)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the tombstone is missing"))?;
    ensure!(
        gone.content.as_str().is_empty()
            && gone.state.deleted_at.is_some()
            && gone.state.reactions.is_empty(),
        "a tombstone: {gone:?}"
    );
    let after = s.history.messages_after_seq(chat, 2, 1).await?;
    ensure!(
        after.first().map(|e| e.content.as_str()) == Some(""),
        "the edit's words are gone too: {after:?}"
    );
    let quote = s
        .history
        .message(chat, reply.id)
        .await?
        .and_then(|m| m.reply_to);
    ensure!(
        quote
            .as_ref()
            .is_some_and(|q| q.deleted && q.excerpt.is_empty()),
        "the quote shows the deletion: {quote:?}"
    );
    Ok(())
}
