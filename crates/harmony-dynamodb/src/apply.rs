//! Changes and replies taking effect on the items they name, with conditional updates so a
//! replayed batch changes nothing (decision record 0004, 0005). A target remembers the seq of
//! the last change it took (`ap`): a change at or below it is there already. The sink stores a
//! chat's entries in order, so a change meets its target as the order left it.

use aws_sdk_dynamodb::types::AttributeValue;
use harmony_core::changes::{apply as rule, Effect, Target};
use harmony_core::model::{excerpt, Message, Quote};
use harmony_core::ports::StoreResult;
use time::OffsetDateTime;

use crate::item::{self, get_n, get_s, ms, n, s, to_json, Item};
use crate::{unavailable, DynamoHistory};

fn seqs(item: &Item, name: &str) -> Vec<i64> {
    item.get(name)
        .and_then(|v| v.as_ns().ok())
        .map(|ns| ns.iter().filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_default()
}

/// One update of the item at `key`; `condition` failing means the effect is there already.
async fn update(
    store: &DynamoHistory,
    key: Item,
    expression: &str,
    condition: Option<&str>,
    values: Vec<(&str, AttributeValue)>,
) -> StoreResult<()> {
    let mut call = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(key))
        .update_expression(expression)
        .set_condition_expression(condition.map(str::to_owned));
    for name in ["t", "ed", "dl", "rx", "ap", "es", "rs", "rp"] {
        if expression.contains(&format!("#{name}"))
            || condition.is_some_and(|c| c.contains(&format!("#{name}")))
        {
            call = call.expression_attribute_names(format!("#{name}"), name);
        }
    }
    for (name, value) in values {
        call = call.expression_attribute_values(name, value);
    }
    match call.send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(unavailable(e)),
    }
}

/// The message item `id` of the entry's chat, with its key.
async fn message_item(
    store: &DynamoHistory,
    m: &Message,
    id: harmony_core::MessageId,
) -> StoreResult<Option<(Item, Item)>> {
    let Some(seq) = store.message_seq(m.chat_id, id).await? else {
        return Ok(None);
    };
    let key = item::key(&item::partition(m.chat_id, false), seq);
    Ok(store.get(key.clone()).await?.map(|it| (key, it)))
}

/// A reply takes its quote from the original as it is now and registers with it, so the
/// original's edits and delete reach the quote.
pub(crate) async fn link_reply(store: &DynamoHistory, m: &Message) -> StoreResult<()> {
    let (Some(quote), None) = (&m.reply_to, &m.change) else {
        return Ok(());
    };
    let Some((original_key, original)) = message_item(store, m, quote.id).await? else {
        return Ok(());
    };
    let fresh = Quote {
        excerpt: excerpt(get_s(&original, "t").unwrap_or_default()),
        deleted: original.contains_key("dl"),
        ..quote.clone()
    };
    let reply_key = item::key(&item::partition(m.chat_id, false), m.seq);
    update(
        store,
        reply_key,
        "SET #rp = :q",
        None,
        vec![(":q", to_json(&fresh))],
    )
    .await?;
    let me = AttributeValue::Ns(vec![m.seq.to_string()]);
    update(store, original_key, "ADD #rs :r", None, vec![(":r", me)]).await
}

/// Applies a change entry to its target, once.
pub(crate) async fn apply(store: &DynamoHistory, m: &Message) -> StoreResult<()> {
    let Some(change) = &m.change else {
        return Ok(());
    };
    let Some((key, target)) = message_item(store, m, change.target()).await? else {
        tracing::warn!(entry = %m.id, "a change's target is not stored; nothing to change");
        return Ok(());
    };
    if get_n(&target, "ap").is_some_and(|applied| applied >= m.seq) {
        return Ok(());
    }
    let (current, author) = item::decode(&target)?;
    let effect = match rule(
        change,
        m.author.id,
        m.created_at,
        &Target {
            author,
            state: current.state,
        },
    ) {
        Ok(effect) => effect,
        Err(refusal) => {
            tracing::debug!(entry = %m.id, ?refusal, "a stored change changes nothing");
            return Ok(());
        }
    };
    let once = Some("attribute_not_exists(#ap) OR #ap < :ap");
    let ap = (":ap", n(m.seq));
    match effect {
        Effect::Edit { at } => {
            let values = vec![
                (":t", s(m.content.as_str())),
                (":ed", n(ms(at))),
                ap,
                (":es", AttributeValue::Ns(vec![m.seq.to_string()])),
            ];
            let expression = "SET #t = :t, #ed = :ed, #ap = :ap ADD #es :es";
            update(store, key, expression, once, values).await?;
            requote(store, m, &target, m.content.as_str(), false).await
        }
        Effect::Reactions(reactions) if reactions.is_empty() => {
            update(store, key, "SET #ap = :ap REMOVE #rx", once, vec![ap]).await
        }
        Effect::Reactions(reactions) => {
            let values = vec![(":rx", to_json(&reactions)), ap];
            update(store, key, "SET #rx = :rx, #ap = :ap", once, values).await
        }
        Effect::Delete { at } => {
            let values = vec![(":t", s("")), (":dl", n(ms(at))), ap];
            let expression = "SET #t = :t, #dl = :dl, #ap = :ap REMOVE #rx";
            update(store, key, expression, once, values).await?;
            scrub_edits(store, m, &target, at).await?;
            requote(store, m, &target, "", true).await
        }
    }
}

/// Empties the content of the deleted message's edits.
async fn scrub_edits(
    store: &DynamoHistory,
    m: &Message,
    target: &Item,
    at: OffsetDateTime,
) -> StoreResult<()> {
    let changes = item::partition(m.chat_id, true);
    for seq in seqs(target, "es") {
        let values = vec![(":t", s("")), (":dl", n(ms(at)))];
        let key = item::key(&changes, seq);
        update(store, key, "SET #t = :t, #dl = :dl", None, values).await?;
    }
    Ok(())
}

/// The quotes of the target's replies, as the target now reads.
async fn requote(
    store: &DynamoHistory,
    m: &Message,
    target: &Item,
    content: &str,
    deleted: bool,
) -> StoreResult<()> {
    let messages = item::partition(m.chat_id, false);
    for seq in seqs(target, "rs") {
        let key = item::key(&messages, seq);
        let Some(reply) = store.get(key.clone()).await? else {
            continue;
        };
        let Some(quote) = item::json::<Quote>(&reply, "rp")? else {
            continue;
        };
        let fresh = Quote {
            excerpt: excerpt(content),
            deleted,
            ..quote
        };
        update(
            store,
            key,
            "SET #rp = :q",
            None,
            vec![(":q", to_json(&fresh))],
        )
        .await?;
    }
    Ok(())
}
