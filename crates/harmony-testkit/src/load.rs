//! Checks shared by the cluster tests that send under faults: what history must hold afterwards.

use std::collections::HashSet;

use serde_json::Value;

use crate::{eventually, TestApp, TestUser};

/// The ids of messages (JSON objects with an `id`), in order.
pub fn ids(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect()
}

/// Waits until history holds every acknowledged message, then checks: each message once, seqs
/// strictly ascending. Returns the whole history.
pub async fn history_holds(
    app: &TestApp,
    user: &TestUser,
    chat: &str,
    acked: &[Value],
) -> anyhow::Result<Vec<Value>> {
    let wanted: HashSet<String> = ids(acked).into_iter().collect();
    let history = eventually("history to hold every acknowledged message", || async {
        let all = app.all_history(user, chat).await?;
        let have: HashSet<String> = ids(&all).into_iter().collect();
        Ok(wanted.is_subset(&have).then_some(all))
    })
    .await?;
    let all_ids = ids(&history);
    anyhow::ensure!(
        all_ids.len() == all_ids.iter().collect::<HashSet<_>>().len(),
        "a message is stored twice"
    );
    let seqs: Vec<i64> = history.iter().filter_map(|m| m["seq"].as_i64()).collect();
    anyhow::ensure!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "history out of seq order: {seqs:?}"
    );
    Ok(history)
}
