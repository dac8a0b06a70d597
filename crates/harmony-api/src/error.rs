//! Errors are responses: every failure leaves the API as `application/problem+json` with a
//! stable `code`. Use-case errors are mapped here, each in one exhaustive `match`, so a new
//! variant cannot reach a client unmapped. Internal causes are logged here, once, and never sent.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use harmony_core::ports::StoreError;
use harmony_core::usecases::{AuthError, ChatError, FriendError};
use harmony_core::ValidationError;
use harmony_protocol::errors::{ErrorCode, Problem};

#[derive(Debug)]
pub struct ApiError {
    problem: Problem,
    retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, title: impl Into<String>) -> Self {
        Self {
            problem: Problem::new(status.as_u16(), code, title),
            retry_after: None,
        }
    }

    /// Adds `Retry-After` to the answer.
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.problem = self.problem.with_detail(detail);
        self
    }

    pub fn validation(errors: Vec<ValidationError>) -> Self {
        let mut problem = Problem::new(400, ErrorCode::ValidationFailed, "Invalid input");
        for e in errors {
            problem = problem.with_field(e.field, e.reason);
        }
        Self {
            problem,
            retry_after: None,
        }
    }

    pub fn rate_limited(retry_after: Duration) -> Self {
        Self {
            problem: Problem::new(429, ErrorCode::RateLimited, "Too many requests"),
            retry_after: Some(retry_after),
        }
    }

    pub fn unauthorized(code: ErrorCode, title: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, title)
    }

    pub fn not_found(code: ErrorCode, title: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, title)
    }

    pub fn code(&self) -> ErrorCode {
        self.problem.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up: a client waiting this long will be let through.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(value) = HeaderValue::from_str(&secs.max(1).to_string()) {
                headers.insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        Self::validation(vec![e])
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => {
                tracing::error!(%cause, "store unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    "Temporarily unavailable; retry later",
                )
            }
            StoreError::Busy(retry_after) => {
                tracing::warn!(?retry_after, "work shed: too much queued");
                let mut busy = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    "Busy; retry later",
                );
                busy.retry_after = Some(retry_after);
                busy
            }
            StoreError::Conflict(what) => {
                tracing::error!(what, "unexpected conflict");
                Self::internal()
            }
            StoreError::Corrupt(cause) => {
                tracing::error!(%cause, "corrupt data");
                Self::internal()
            }
        }
    }
}

impl ApiError {
    /// A 500, logged with where it was answered (a bug: every expected failure has its code).
    #[track_caller]
    pub fn internal() -> Self {
        tracing::error!(at = %std::panic::Location::caller(), "answering 500: internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "Internal error",
        )
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::UsernameTaken => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::UsernameTaken,
                "That username is taken",
            ),
            AuthError::InvalidCredentials => {
                Self::unauthorized(ErrorCode::InvalidCredentials, "Wrong username or password")
            }
            AuthError::InvalidRefreshToken => Self::unauthorized(
                ErrorCode::InvalidRefreshToken,
                "The refresh token is invalid or expired",
            ),
            AuthError::RefreshTokenReused => {
                tracing::warn!("refresh token reused after rotation; its session was revoked");
                Self::unauthorized(
                    ErrorCode::RefreshTokenReused,
                    "This refresh token was already used; the session was ended",
                )
            }
            AuthError::RateLimited(wait) => Self::rate_limited(wait),
            AuthError::Store(e) => e.into(),
        }
    }
}

impl From<ChatError> for ApiError {
    fn from(e: ChatError) -> Self {
        use StatusCode as S;
        match e {
            ChatError::ChatNotFound => Self::not_found(ErrorCode::ChatNotFound, "Chat not found"),
            ChatError::Forbidden => Self::new(
                S::FORBIDDEN,
                ErrorCode::Forbidden,
                "Your role in this chat does not allow this",
            ),
            ChatError::UserNotFound => Self::not_found(ErrorCode::UserNotFound, "User not found"),
            ChatError::MemberNotFound => {
                Self::not_found(ErrorCode::MemberNotFound, "Not a member of this chat")
            }
            ChatError::AlreadyMember => Self::new(
                S::CONFLICT,
                ErrorCode::AlreadyMember,
                "Already a member of this chat",
            ),
            ChatError::OwnerCannotLeave => Self::new(
                S::CONFLICT,
                ErrorCode::OwnerCannotLeave,
                "The owner cannot leave; delete the chat instead",
            ),
            ChatError::DirectChatFixed => Self::new(
                S::CONFLICT,
                ErrorCode::DirectChatFixed,
                "A direct chat's name and members cannot change",
            ),
            ChatError::InvalidCursor => Self::new(
                S::BAD_REQUEST,
                ErrorCode::InvalidCursor,
                "The cursor is not a message of this chat",
            ),
            ChatError::MessageNotFound => {
                Self::not_found(ErrorCode::MessageNotFound, "Message not found")
            }
            ChatError::NotAuthor => Self::new(
                S::FORBIDDEN,
                ErrorCode::NotAuthor,
                "Only the author can edit a message",
            ),
            ChatError::MessageDeleted => Self::new(
                S::CONFLICT,
                ErrorCode::MessageDeleted,
                "The message was deleted",
            ),
            ChatError::TooManyReactions => Self::new(
                S::CONFLICT,
                ErrorCode::TooManyReactions,
                "This message has as many different reactions as it can take",
            )
            .with_detail(format!(
                "a message takes at most {} different emoji; react with one already there",
                harmony_core::changes::MAX_REACTIONS
            )),
            ChatError::KeyReused => Self::new(
                S::CONFLICT,
                ErrorCode::IdempotencyKeyReused,
                "This client_msg_id was already used for something else",
            )
            .with_detail("use a new client_msg_id for each message and each edit"),
            ChatError::RateLimited(wait) => Self::rate_limited(wait),
            ChatError::ContactNotAllowed(user) => Self::new(
                S::FORBIDDEN,
                ErrorCode::ContactNotAllowed,
                "This user accepts chats only from friends and people who share a chat with them",
            )
            .with_detail(format!(
                "send {user} a friend request first; they can add you once they accept"
            )),
            ChatError::Invalid(e) => e.into(),
            ChatError::Store(e) => e.into(),
        }
    }
}

impl From<FriendError> for ApiError {
    fn from(e: FriendError) -> Self {
        use StatusCode as S;
        match e {
            FriendError::UserNotFound => Self::not_found(ErrorCode::UserNotFound, "User not found"),
            // A well-formed request that conflicts with who the caller is: 409, like the other
            // friendship conflicts (the body was fine).
            FriendError::SelfRequest => Self::new(
                S::CONFLICT,
                ErrorCode::SelfFriendRequest,
                "You cannot befriend yourself",
            ),
            FriendError::AlreadyFriends => {
                Self::new(S::CONFLICT, ErrorCode::AlreadyFriends, "Already friends")
            }
            FriendError::RequestPending => Self::new(
                S::CONFLICT,
                ErrorCode::FriendRequestPending,
                "A friend request between you is already pending",
            ),
            FriendError::RequestNotFound => {
                Self::not_found(ErrorCode::FriendRequestNotFound, "Friend request not found")
            }
            FriendError::RequestNotPending => Self::new(
                S::CONFLICT,
                ErrorCode::FriendRequestNotPending,
                "The friend request was already answered",
            ),
            FriendError::NotFriends => Self::not_found(ErrorCode::NotFriends, "Not friends"),
            FriendError::Store(e) => e.into(),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
