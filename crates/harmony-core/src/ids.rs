//! Identifiers. Users, chats and friend requests are UUIDs (v4); messages are ULIDs, so that they
//! sort by creation time within one node. Their order across nodes comes from `seq`, never the ULID.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A fresh random identifier.
            pub fn new() -> Self {
                Self(uuid::Uuid::new_v4())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            /// Only the hyphenated form (as ids are written out): the braced, URN and simple
            /// forms are refused, so one id has one spelling (`patterns::UUID`).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                if s.len() != 36 {
                    // The parser's own error for a string of the wrong length.
                    return uuid::Uuid::parse_str("").map(Self);
                }
                uuid::Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A user account.
    UserId
);
uuid_id!(
    /// A direct or group chat.
    ChatId
);
uuid_id!(
    /// A friend request.
    FriendRequestId
);

/// A message: a ULID minted by the api node that accepted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub ulid::Ulid);

impl MessageId {
    /// A fresh identifier for the current instant.
    pub fn new() -> Self {
        Self(ulid::Ulid::new())
    }
}

impl Default for MessageId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for MessageId {
    type Err = ulid::DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ulid::Ulid::from_string(s).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_strings() {
        let user = UserId::new();
        assert_eq!(user.to_string().parse::<UserId>().ok(), Some(user));
        let message = MessageId::new();
        assert_eq!(message.to_string().parse::<MessageId>().ok(), Some(message));
        assert!("not-a-uuid".parse::<ChatId>().is_err());
        let simple = user.0.simple().to_string();
        let braced = user.0.braced().to_string();
        let urn = user.0.urn().to_string();
        for other_spelling in [simple, braced, urn] {
            assert!(
                other_spelling.parse::<UserId>().is_err(),
                "{other_spelling}"
            );
        }
        assert!(user
            .to_string()
            .to_uppercase()
            .parse::<UserId>()
            .is_ok_and(|u| u == user));
        assert!("not-a-ulid".parse::<MessageId>().is_err());
    }
}
