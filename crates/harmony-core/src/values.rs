//! Values parsed once at the edge and trusted inside: each constructor is the only way to get one,
//! so a `Username` or a `MessageContent` in hand is always within the limits of the public contract.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an input was refused: the field it came from and a sentence a person can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    pub field: &'static str,
    pub reason: &'static str,
}

impl ValidationError {
    pub const fn new(field: &'static str, reason: &'static str) -> Self {
        Self { field, reason }
    }
}

/// 3..32 characters of `[a-z0-9_.-]`. Input is lower-cased first, so names are case-insensitive.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let name = raw.trim().to_ascii_lowercase();
        let len = name.chars().count();
        if !(3..=32).contains(&len) {
            return Err(ValidationError::new(
                "username",
                "must be 3 to 32 characters",
            ));
        }
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c);
        if !name.chars().all(allowed) {
            return Err(ValidationError::new(
                "username",
                "may only contain a-z, 0-9, '_', '.' and '-'",
            ));
        }
        Ok(Self(name))
    }

    /// A name read back from a store that only ever held parsed names.
    pub fn from_trusted(name: String) -> Self {
        Self(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 8..128 characters. Never printed: `Debug` shows a placeholder.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let len = raw.chars().count();
        if !(8..=128).contains(&len) {
            return Err(ValidationError::new(
                "password",
                "must be 8 to 128 characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

fn bounded_text(
    field: &'static str,
    raw: &str,
    max: usize,
    reason: &'static str,
) -> Result<String, ValidationError> {
    let text = raw.trim();
    let len = text.chars().count();
    if len == 0 || len > max {
        return Err(ValidationError::new(field, reason));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(text.to_owned())
}

/// Characters that reorder or hide text: Unicode Bidi controls, and invisible format and filler
/// characters. In a name they let one user pass for another ("ann" reversed, or padded with
/// nothing visible). The zero-width joiner and non-joiner stay allowed: scripts such as Persian
/// and emoji sequences need them.
fn hides_or_reorders(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
    )
}

/// A name is one line of visible text.
fn name_text(
    field: &'static str,
    raw: &str,
    max: usize,
    reason: &'static str,
) -> Result<String, ValidationError> {
    let text = bounded_text(field, raw, max, reason)?;
    if text.chars().any(|c| c == '\n' || c == '\t') {
        return Err(ValidationError::new(field, "must be one line"));
    }
    if text.chars().any(hides_or_reorders) {
        return Err(ValidationError::new(
            field,
            "must not contain characters that reorder or hide text",
        ));
    }
    if text
        .chars()
        .all(|c| c.is_whitespace() || c == '\u{200C}' || c == '\u{200D}')
    {
        return Err(ValidationError::new(field, reason));
    }
    Ok(text)
}

macro_rules! text_value {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal, $reason:literal, $check:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The maximum length in characters, after trimming.
            pub const MAX_CHARS: usize = $max;

            pub fn parse(raw: &str) -> Result<Self, ValidationError> {
                $check($field, raw, $max, $reason).map(Self)
            }

            /// A value read back from a store that only ever held parsed values.
            pub fn from_trusted(value: String) -> Self {
                Self(value)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_value!(
    /// A message body: 1..4000 characters after trimming; newlines and tabs allowed.
    MessageContent, "content", 4000, "must be 1 to 4000 characters after trimming", bounded_text
);
text_value!(
    /// How a user is shown: 1..64 characters after trimming, one line, nothing that reorders or
    /// hides text.
    DisplayName, "display_name", 64, "must be 1 to 64 characters after trimming", name_text
);
text_value!(
    /// A group chat's name: 1..100 characters after trimming, one line, nothing that reorders
    /// or hides text.
    ChatName, "name", 100, "must be 1 to 100 characters after trimming", name_text
);

/// The sender's idempotency key for a message: 1..64 visible ASCII characters (a UUID fits).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let ok_len = (1..=64).contains(&raw.len());
        if !ok_len || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ValidationError::new(
                "client_msg_id",
                "must be 1 to 64 visible ASCII characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn usernames_are_lowercased_and_bounded() {
        assert_eq!(
            Username::parse(" Alice_1 ").map(|u| u.0).ok(),
            Some("alice_1".into())
        );
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("alïce").is_err());
    }

    #[test]
    fn passwords_count_characters_and_hide_in_debug() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"é".repeat(128)).is_ok());
        assert!(Password::parse(&"é".repeat(129)).is_err());
        let shown = format!("{:?}", Password::parse("secret-password").ok());
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn content_is_trimmed_and_bounded() {
        assert_eq!(
            MessageContent::parse("  hi \n").map(|c| c.0).ok(),
            Some("hi".into())
        );
        assert!(MessageContent::parse("   ").is_err());
        assert!(MessageContent::parse(&"x".repeat(4000)).is_ok());
        assert!(MessageContent::parse(&"x".repeat(4001)).is_err());
        assert!(MessageContent::parse("a\u{0}b").is_err());
        assert!(MessageContent::parse("line one\nline two\tend").is_ok());
    }

    #[test]
    fn names_refuse_what_reorders_or_hides_text() {
        for bad in [
            "ann\u{202E}gro",
            "a\u{200B}nn",
            "\u{2066}ann\u{2069}",
            "ann\u{FEFF}",
            "two\nlines",
            "\u{3164}",
            "\u{200D}\u{200C}",
        ] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?}");
            assert!(ChatName::parse(bad).is_err(), "{bad:?}");
        }
        // Joiners that scripts and emoji need stay allowed.
        assert!(DisplayName::parse("می\u{200C}خواهم").is_ok());
        assert!(DisplayName::parse("👨\u{200D}👩\u{200D}👧 family").is_ok());
        assert!(ChatName::parse("Équipe ❤\u{FE0F}").is_ok());
        // Message content keeps its lines.
        assert!(MessageContent::parse("one\ntwo").is_ok());
    }

    #[test]
    fn client_msg_ids_are_visible_ascii() {
        assert!(ClientMsgId::parse("7b1c-42").is_ok());
        assert!(ClientMsgId::parse("").is_err());
        assert!(ClientMsgId::parse("a b").is_err());
        assert!(ClientMsgId::parse(&"a".repeat(65)).is_err());
    }

    proptest! {
        #[test]
        fn parsed_usernames_always_reparse_to_themselves(raw in "\\PC{0,40}") {
            if let Ok(name) = Username::parse(&raw) {
                prop_assert_eq!(Username::parse(name.as_str()).ok(), Some(name.clone()));
                prop_assert!((3..=32).contains(&name.as_str().len()));
            }
        }

        #[test]
        fn parsed_content_is_never_empty_or_too_long(raw in "\\PC{0,4100}") {
            if let Ok(content) = MessageContent::parse(&raw) {
                let n = content.as_str().chars().count();
                prop_assert!((1..=4000).contains(&n));
                prop_assert_eq!(content.as_str().trim(), content.as_str());
            }
        }
    }
}
