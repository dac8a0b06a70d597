//! Error bodies: RFC 9457 problem details with a stable snake_case `code` that clients switch on.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error code the API can answer with. Codes are part of contract v1: never renamed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    ValidationFailed,
    MalformedRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unauthorized,
    InvalidToken,
    InvalidCredentials,
    InvalidRefreshToken,
    RefreshTokenReused,
    CsrfFailed,
    Forbidden,
    NotAMember,
    NotFound,
    ChatNotFound,
    UserNotFound,
    MemberNotFound,
    FriendRequestNotFound,
    UsernameTaken,
    AlreadyMember,
    AlreadyFriends,
    NotFriends,
    FriendRequestPending,
    FriendRequestNotPending,
    SelfFriendRequest,
    OwnerCannotLeave,
    DirectChatFixed,
    ContactNotAllowed,
    InvalidCursor,
    MessageNotFound,
    NotAuthor,
    MessageDeleted,
    TooManyReactions,
    IdempotencyKeyReused,
    RateLimited,
    Unavailable,
    Internal,
    /// WebSocket only: a frame that is not JSON or not a known frame.
    BadFrame,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationFailed => "validation_failed",
            Self::MalformedRequest => "malformed_request",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Unauthorized => "unauthorized",
            Self::InvalidToken => "invalid_token",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::CsrfFailed => "csrf_failed",
            Self::Forbidden => "forbidden",
            Self::NotAMember => "not_a_member",
            Self::NotFound => "not_found",
            Self::ChatNotFound => "chat_not_found",
            Self::UserNotFound => "user_not_found",
            Self::MemberNotFound => "member_not_found",
            Self::FriendRequestNotFound => "friend_request_not_found",
            Self::UsernameTaken => "username_taken",
            Self::AlreadyMember => "already_member",
            Self::AlreadyFriends => "already_friends",
            Self::NotFriends => "not_friends",
            Self::FriendRequestPending => "friend_request_pending",
            Self::FriendRequestNotPending => "friend_request_not_pending",
            Self::SelfFriendRequest => "self_friend_request",
            Self::OwnerCannotLeave => "owner_cannot_leave",
            Self::DirectChatFixed => "direct_chat_fixed",
            Self::ContactNotAllowed => "contact_not_allowed",
            Self::InvalidCursor => "invalid_cursor",
            Self::MessageNotFound => "message_not_found",
            Self::NotAuthor => "not_author",
            Self::MessageDeleted => "message_deleted",
            Self::TooManyReactions => "too_many_reactions",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::BadFrame => "bad_frame",
        }
    }
}

/// One invalid field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// `application/problem+json` (RFC 9457).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:harmony:problem:<code>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub code: ErrorCode,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl Problem {
    pub fn new(status: u16, code: ErrorCode, title: impl Into<String>) -> Self {
        Self {
            type_uri: format!("urn:harmony:problem:{}", code.as_str()),
            title: title.into(),
            status,
            detail: None,
            code,
            errors: Vec::new(),
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_names() {
        for code in [
            ErrorCode::NotAMember,
            ErrorCode::RefreshTokenReused,
            ErrorCode::BadFrame,
        ] {
            let json = serde_json::to_value(code).ok();
            assert_eq!(json, Some(serde_json::Value::from(code.as_str())));
        }
    }

    #[test]
    fn problems_round_trip() {
        let p = Problem::new(400, ErrorCode::ValidationFailed, "Invalid input")
            .with_field("username", "too short");
        let json = serde_json::to_string(&p).unwrap_or_default();
        assert!(json.contains("\"type\":\"urn:harmony:problem:validation_failed\""));
        assert_eq!(serde_json::from_str::<Problem>(&json).ok(), Some(p));
    }
}
