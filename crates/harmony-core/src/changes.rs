//! Changes to messages: edits, deletes and reactions are entries of the chat's log with their
//! own seq (decision record 0004). This module holds the values they carry and the one rule for
//! applying a change to the message it targets, which every store follows, so a chat ends in
//! the same state on one node, in each cluster store and in each client.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{MessageId, UserId};
use crate::values::ValidationError;

/// The most distinct emoji one message may carry.
pub const MAX_REACTIONS: usize = 20;

/// A reaction: one emoji (a flag, a family or a skin tone are one), validated by [`Emoji::parse`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Emoji(String);

/// Characters that start an emoji: the emoji blocks, and the older symbols that are emoji.
fn starts_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0x2190..=0x21FF
        | 0x2300..=0x23FF | 0x25A0..=0x25FF | 0x2900..=0x297F | 0x3030 | 0x303D | 0x3297
        | 0x3299 | 0xA9 | 0xAE | 0x203C | 0x2049 | 0x2122 | 0x2139 | 0x24C2)
        // A keycap starts with a digit, `#` or `*`, and must continue with U+FE0F U+20E3.
        || matches!(c, '0'..='9' | '#' | '*')
}

/// Characters that may follow inside one emoji: more emoji (joined), joiners, variation
/// selectors, skin tones, the keycap, tags.
fn continues_emoji(c: char) -> bool {
    starts_emoji(c)
        || matches!(
            c as u32,
            0x200D | 0xFE0E | 0xFE0F | 0x20E3 | 0xE0020..=0xE007F
        )
}

impl Emoji {
    /// 1 to 10 Unicode scalar values: an emoji character first, then only characters that
    /// continue an emoji. A keycap (`1️⃣`) must end with U+20E3; a plain digit is not an emoji.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let bad = || ValidationError::new("emoji", "must be one emoji");
        let mut chars = raw.chars();
        let first = chars.next().ok_or_else(bad)?;
        let count = raw.chars().count();
        if count > 10 || !starts_emoji(first) || !chars.all(continues_emoji) {
            return Err(bad());
        }
        let keycap_base = matches!(first, '0'..='9' | '#' | '*');
        if keycap_base && !raw.ends_with('\u{20E3}') {
            return Err(bad());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Emoji {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Emoji> for String {
    fn from(e: Emoji) -> Self {
        e.0
    }
}

impl fmt::Display for Emoji {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a change entry does to its target, an earlier message of the same chat. An edit's new
/// content is the entry's `content`; the other kinds have none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Edit { target: MessageId },
    Delete { target: MessageId },
    React { target: MessageId, emoji: Emoji },
    Unreact { target: MessageId, emoji: Emoji },
}

impl Change {
    pub fn target(&self) -> MessageId {
        match self {
            Self::Edit { target }
            | Self::Delete { target }
            | Self::React { target, .. }
            | Self::Unreact { target, .. } => *target,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Edit { .. } => "edit",
            Self::Delete { .. } => "delete",
            Self::React { .. } => "react",
            Self::Unreact { .. } => "unreact",
        }
    }

    pub fn emoji(&self) -> Option<&Emoji> {
        match self {
            Self::React { emoji, .. } | Self::Unreact { emoji, .. } => Some(emoji),
            _ => None,
        }
    }
}

/// The users who reacted to a message with one emoji, in the order they did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub emoji: Emoji,
    pub users: Vec<UserId>,
}

/// A message's state after the changes applied to it so far (history's view of it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageState {
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub edited_at: Option<OffsetDateTime>,
    /// Set once deleted: the content is then empty everywhere it was stored.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
    /// In the order each emoji was first used.
    #[serde(default)]
    pub reactions: Vec<Reaction>,
}

/// Why a change is not placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No message with that id in this chat (or it is itself a change).
    NotFound,
    /// Only the author edits a message.
    NotAuthor,
    /// The target is deleted: nothing changes it any more.
    Deleted,
    /// The message carries [`MAX_REACTIONS`] distinct emoji already.
    TooManyReactions,
    /// The change would change nothing (a second identical reaction, removing a reaction one
    /// does not have, deleting a deleted message): nothing is placed, and the caller is told it
    /// is done.
    Unchanged,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::NotAuthor => "not_author",
            Self::Deleted => "deleted",
            Self::TooManyReactions => "too_many_reactions",
            Self::Unchanged => "unchanged",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::NotFound,
            Self::NotAuthor,
            Self::Deleted,
            Self::TooManyReactions,
            Self::Unchanged,
        ]
        .into_iter()
        .find(|r| r.as_str() == raw)
    }
}

/// What a store knows of a change's target when it applies the change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub author: UserId,
    pub state: MessageState,
}

/// What applying a change does to its target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The content becomes the change entry's; `edited_at` is set.
    Edit { at: OffsetDateTime },
    /// The content (and that of every edit entry of the target) becomes empty; `deleted_at`.
    Delete { at: OffsetDateTime },
    /// The reactions become these.
    Reactions(Vec<Reaction>),
}

/// The one rule for applying `change`, made by `by` at `at`, to `target`. Permission beyond
/// authorship (an admin deleting another's message) is the use case's; this decides what the
/// order alone decides: a change after a delete is refused, reactions are a set.
pub fn apply(
    change: &Change,
    by: UserId,
    at: OffsetDateTime,
    target: &Target,
) -> Result<Effect, Refusal> {
    if target.state.deleted_at.is_some() {
        return Err(match change {
            Change::Delete { .. } | Change::Unreact { .. } => Refusal::Unchanged,
            _ => Refusal::Deleted,
        });
    }
    match change {
        Change::Edit { .. } if target.author != by => Err(Refusal::NotAuthor),
        Change::Edit { .. } => Ok(Effect::Edit { at }),
        Change::Delete { .. } => Ok(Effect::Delete { at }),
        Change::React { emoji, .. } => {
            let mut reactions = target.state.reactions.clone();
            let known = reactions.len();
            match reactions.iter_mut().find(|r| &r.emoji == emoji) {
                Some(r) if r.users.contains(&by) => return Err(Refusal::Unchanged),
                Some(r) => r.users.push(by),
                None if known >= MAX_REACTIONS => return Err(Refusal::TooManyReactions),
                None => reactions.push(Reaction {
                    emoji: emoji.clone(),
                    users: vec![by],
                }),
            }
            Ok(Effect::Reactions(reactions))
        }
        Change::Unreact { emoji, .. } => {
            let mut reactions = target.state.reactions.clone();
            let Some(r) = reactions.iter_mut().find(|r| &r.emoji == emoji) else {
                return Err(Refusal::Unchanged);
            };
            let before = r.users.len();
            r.users.retain(|u| *u != by);
            if r.users.len() == before {
                return Err(Refusal::Unchanged);
            }
            reactions.retain(|r| !r.users.is_empty());
            Ok(Effect::Reactions(reactions))
        }
    }
}

impl MessageState {
    /// The state after `effect`.
    pub fn after(mut self, effect: &Effect) -> Self {
        match effect {
            Effect::Edit { at } => self.edited_at = Some(*at),
            Effect::Delete { at } => {
                self.deleted_at = Some(*at);
                self.reactions.clear();
            }
            Effect::Reactions(reactions) => self.reactions = reactions.clone(),
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emoji(raw: &str) -> Emoji {
        Emoji::parse(raw).expect("an emoji")
    }

    #[test]
    fn emoji_are_one_emoji_and_nothing_else() {
        for ok in ["👍", "❤️", "🇫🇷", "👨‍👩‍👧", "👋🏽", "1️⃣", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "✅"]
        {
            assert!(Emoji::parse(ok).is_ok(), "{ok} should be an emoji");
        }
        for bad in [
            "",
            "a",
            "1",
            "ab",
            "👍a",
            " 👍",
            "<script>",
            "👍👍👍👍👍👍👍👍👍👍👍",
        ] {
            assert!(Emoji::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn the_order_decides_what_a_change_does() {
        let (ann, bob) = (UserId::new(), UserId::new());
        let at = crate::now();
        let target = MessageId::new();
        let mut state = Target {
            author: ann,
            state: MessageState::default(),
        };
        let edit = Change::Edit { target };
        assert_eq!(apply(&edit, bob, at, &state), Err(Refusal::NotAuthor));
        assert_eq!(apply(&edit, ann, at, &state), Ok(Effect::Edit { at }));

        let react = Change::React {
            target,
            emoji: emoji("👍"),
        };
        let Ok(effect) = apply(&react, bob, at, &state) else {
            panic!("a first reaction applies")
        };
        state.state = state.state.clone().after(&effect);
        assert_eq!(state.state.reactions[0].users, vec![bob]);
        assert_eq!(apply(&react, bob, at, &state), Err(Refusal::Unchanged));
        let unreact = Change::Unreact {
            target,
            emoji: emoji("👍"),
        };
        assert_eq!(apply(&unreact, ann, at, &state), Err(Refusal::Unchanged));
        let Ok(effect) = apply(&unreact, bob, at, &state) else {
            panic!("removing one's reaction applies")
        };
        assert!(state.state.clone().after(&effect).reactions.is_empty());

        let delete = Change::Delete { target };
        let Ok(effect) = apply(&delete, bob, at, &state) else {
            panic!("a delete applies")
        };
        state.state = state.state.clone().after(&effect);
        assert_eq!(apply(&edit, ann, at, &state), Err(Refusal::Deleted));
        assert_eq!(apply(&react, ann, at, &state), Err(Refusal::Deleted));
        assert_eq!(apply(&delete, ann, at, &state), Err(Refusal::Unchanged));
    }

    #[test]
    fn a_message_takes_at_most_so_many_emoji() {
        let ann = UserId::new();
        let target = MessageId::new();
        let faces: Vec<Emoji> = (0x1F600u32..0x1F600 + MAX_REACTIONS as u32)
            .filter_map(char::from_u32)
            .map(|c| emoji(&c.to_string()))
            .collect();
        let state = Target {
            author: ann,
            state: MessageState {
                reactions: faces
                    .iter()
                    .map(|e| Reaction {
                        emoji: e.clone(),
                        users: vec![ann],
                    })
                    .collect(),
                ..MessageState::default()
            },
        };
        let one_more = Change::React {
            target,
            emoji: emoji("🚀"),
        };
        assert_eq!(
            apply(&one_more, ann, crate::now(), &state),
            Err(Refusal::TooManyReactions)
        );
        let same = Change::React {
            target,
            emoji: faces[0].clone(),
        };
        assert!(apply(&same, UserId::new(), crate::now(), &state).is_ok());
    }
}
