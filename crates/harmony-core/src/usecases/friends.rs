//! Friends: requests by username, accepted or declined by the addressee, and removal.

use super::Ports;
use crate::events::{GatewayEvent, UserNotice};
use crate::model::{FriendRequest, FriendRequestStatus, User};
use crate::ports::StoreError;
use crate::values::Username;
use crate::{FriendRequestId, UserId};

#[derive(Debug, thiserror::Error)]
pub enum FriendError {
    #[error("user not found")]
    UserNotFound,
    #[error("you cannot befriend yourself")]
    SelfRequest,
    #[error("already friends")]
    AlreadyFriends,
    #[error("a request between you is already pending")]
    RequestPending,
    #[error("friend request not found")]
    RequestNotFound,
    #[error("friend request is no longer pending")]
    RequestNotPending,
    #[error("not friends")]
    NotFriends,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct Friends {
    ports: Ports,
}

impl Friends {
    pub(super) fn new(ports: Ports) -> Self {
        Self { ports }
    }

    pub async fn request(
        &self,
        actor: UserId,
        username: Username,
    ) -> Result<FriendRequest, FriendError> {
        let target = self
            .ports
            .users
            .account_by_username(&username)
            .await?
            .ok_or(FriendError::UserNotFound)?
            .user;
        if target.id == actor {
            return Err(FriendError::SelfRequest);
        }
        if self.ports.friends.are_friends(actor, target.id).await? {
            return Err(FriendError::AlreadyFriends);
        }
        let from = self
            .ports
            .users
            .user(actor)
            .await?
            .ok_or(FriendError::UserNotFound)?;
        let request = FriendRequest {
            id: FriendRequestId::new(),
            from,
            to: target,
            status: FriendRequestStatus::Pending,
            created_at: crate::now(),
        };
        match self.ports.friends.create_friend_request(&request).await {
            Ok(()) => {
                self.tell_both(&request).await;
                Ok(request)
            }
            Err(StoreError::Conflict(_)) => Err(FriendError::RequestPending),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn pending(
        &self,
        actor: UserId,
    ) -> Result<(Vec<FriendRequest>, Vec<FriendRequest>), FriendError> {
        Ok(self.ports.friends.pending_requests(actor).await?)
    }

    /// Accepts or declines a request addressed to the caller. Anyone else is told it does not
    /// exist.
    pub async fn respond(
        &self,
        actor: UserId,
        id: FriendRequestId,
        accept: bool,
    ) -> Result<FriendRequest, FriendError> {
        let mut request = self
            .ports
            .friends
            .friend_request(id)
            .await?
            .filter(|r| r.to.id == actor)
            .ok_or(FriendError::RequestNotFound)?;
        let status = if accept {
            FriendRequestStatus::Accepted
        } else {
            FriendRequestStatus::Declined
        };
        if !self
            .ports
            .friends
            .resolve_friend_request(id, status)
            .await?
        {
            return Err(FriendError::RequestNotPending);
        }
        request.status = status;
        self.tell_both(&request).await;
        Ok(request)
    }

    /// Both sides of a request see it live: the recipient's incoming list, the sender's
    /// outgoing one, on every session.
    async fn tell_both(&self, request: &FriendRequest) {
        let notice = |user_id| GatewayEvent::ForUser {
            user_id,
            notice: UserNotice::FriendRequest {
                request: request.clone(),
            },
        };
        self.ports
            .notify(&[notice(request.to.id), notice(request.from.id)])
            .await;
    }

    pub async fn list(&self, actor: UserId) -> Result<Vec<User>, FriendError> {
        Ok(self.ports.friends.friends(actor).await?)
    }

    pub async fn remove(&self, actor: UserId, other: UserId) -> Result<(), FriendError> {
        if self.ports.friends.remove_friendship(actor, other).await? {
            let notice = |user_id, other| GatewayEvent::ForUser {
                user_id,
                notice: UserNotice::FriendRemoved { user_id: other },
            };
            self.ports
                .notify(&[notice(actor, other), notice(other, actor)])
                .await;
            Ok(())
        } else {
            Err(FriendError::NotFriends)
        }
    }
}
