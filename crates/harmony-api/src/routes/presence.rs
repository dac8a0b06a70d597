//! `/presence`: who is online, for clients without a socket and for a socket's first look (the
//! `presence` frames keep it up to date after that).

use axum::extract::State;
use axum::Json;
use harmony_core::usecases::PRESENCE_ASK_MAX;
use harmony_core::values::ValidationError;
use harmony_core::UserId;
use harmony_protocol::dto::{PresenceDto, PresenceListDto};
use serde::Deserialize;

use crate::auth::AuthUser;
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PresenceQuery {
    /// Up to 100 user ids, separated by commas. Without it: everyone the caller is shown live
    /// (friends, and members of the chats of at most 100 members they share).
    user_ids: Option<String>,
}

#[utoipa::path(operation_id = "get_presence", get, path = "/api/v1/presence", tag = "presence", params(PresenceQuery),
    description = "Presence of the caller's friends and small-chat co-members, or of the users named. \
                   A user the caller may not see (not a friend, no chat in common) is answered as offline \
                   and never seen, whatever their presence.",
    responses((status = 200, body = PresenceListDto)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiQuery(query): ApiQuery<PresenceQuery>,
) -> ApiResult<Json<PresenceListDto>> {
    let presence = match query.user_ids.as_deref() {
        None => state.use_cases.presence.of_peers(caller.id).await?,
        Some(raw) => {
            let ids = parse_ids(raw)?;
            state.use_cases.presence.of_users(caller.id, &ids).await?
        }
    };
    Ok(Json(PresenceListDto {
        presence: presence.iter().map(PresenceDto::from).collect(),
    }))
}

fn parse_ids(raw: &str) -> Result<Vec<UserId>, ValidationError> {
    let bad = || ValidationError::new("user_ids", "must be 1 to 100 user ids separated by commas");
    let ids = raw
        .split(',')
        .map(|id| id.trim().parse::<UserId>().map_err(|_| bad()))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() || ids.len() > PRESENCE_ASK_MAX {
        return Err(bad());
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_a_bounded_comma_separated_list() {
        let a = UserId::new();
        let b = UserId::new();
        assert_eq!(parse_ids(&format!("{a}, {b}")).ok(), Some(vec![a, b]));
        assert!(parse_ids("").is_err());
        assert!(parse_ids("nope").is_err());
        let many = (0..=PRESENCE_ASK_MAX)
            .map(|_| UserId::new().to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert!(parse_ids(&many).is_err());
    }
}
