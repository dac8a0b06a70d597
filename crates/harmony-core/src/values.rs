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
    // A joiner first would make a name of joiners alone look like nothing at all.
    if text.starts_with(['\u{200C}', '\u{200D}']) {
        return Err(ValidationError::new(
            field,
            "must start with a visible character",
        ));
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

/// The rules of the values above as regular expressions, for the OpenAPI document: a client
/// (or a fuzzer) can tell from them exactly which inputs are accepted. The syntax is the common
/// subset of ECMA-262, Python's `re` and Rust's `regex`; a test checks each against its parser.
/// Lone surrogates, which JSON text may spell (`"\ud800"`) but no string holds, are refused as
/// malformed JSON before any of these rules.
pub mod patterns {
    /// Whitespace that trimming removes (Unicode `White_Space`).
    macro_rules! ws {
        () => {
            r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
        };
    }
    /// Characters that reorder or hide text (see `hides_or_reorders`).
    macro_rules! hidden {
        () => {
            r"\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u3164\ufeff\uffa0"
        };
    }
    /// A username as sent: 3..32 of `[a-z0-9_.-]` (capitals are lowered), whitespace around.
    pub const USERNAME: &str = concat!("^[", ws!(), "]*[A-Za-z0-9_.-]{3,32}[", ws!(), "]*$");

    /// A password: 8..128 characters.
    pub const PASSWORD: &str = r"^[\s\S]{8,128}$";

    /// Message content: 1..4000 characters after trimming, no control character but newline
    /// and tab.
    pub const CONTENT: &str = concat!(
        "^[",
        ws!(),
        "]*",
        r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000",
        "]",
        r"(?:[^\x00-\x08\x0b-\x1f\x7f-\x9f",
        "]{0,3998}",
        r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000",
        "])?",
        "[",
        ws!(),
        "]*$"
    );

    /// A name of at most `max` characters after trimming: one line, nothing that reorders or
    /// hides text, starting with a visible character (not a zero-width joiner).
    macro_rules! name {
        ($middle:literal) => {
            concat!(
                "^[",
                ws!(),
                "]*",
                r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200f\u2028\u2029\u202a-\u202f\u205f\u3000",
                hidden!(),
                "]",
                r"(?:[^\x00-\x1f\x7f-\x9f",
                hidden!(),
                "]{0,",
                $middle,
                "}",
                r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200b\u2028\u2029\u202a-\u202f\u205f\u3000",
                hidden!(),
                "])?",
                "[",
                ws!(),
                "]*$"
            )
        };
    }
    /// A display name: 1..64 characters after trimming.
    pub const DISPLAY_NAME: &str = name!("62");
    /// A group chat's name: 1..100 characters after trimming.
    pub const CHAT_NAME: &str = name!("98");

    /// A client's idempotency key: 1..64 visible ASCII characters.
    pub const CLIENT_MSG_ID: &str = r"^[\x21-\x7e]{1,64}$";

    /// A user, chat or friend request id: a hyphenated UUID.
    pub const UUID: &str =
        "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

    /// A message id: a ULID (Crockford base32, 26 characters).
    pub const ULID: &str = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$";
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

    /// Characters where the rules have edges: whitespace that is trimmed or not, controls,
    /// joiners, characters that hide or reorder text, and ordinary ones.
    const EDGES: &[char] = &[
        'a', 'Z', '0', '_', '.', '-', 'é', '😀', ' ', '\t', '\n', '\r', '\u{0b}', '\u{0c}',
        '\u{1c}', '\u{1}', '\u{7f}', '\u{85}', '\u{a0}', '\u{ad}', '\u{1680}', '\u{2000}',
        '\u{200b}', '\u{200c}', '\u{200d}', '\u{200e}', '\u{2028}', '\u{202e}', '\u{202f}',
        '\u{2066}', '\u{3000}', '\u{3164}', '\u{feff}', '!', '~',
    ];

    /// Strings of `EDGES`, mostly short, some long (the bounds are 32, 64, 100 and 4,000).
    fn edgy() -> impl Strategy<Value = String> {
        let short = prop::collection::vec(prop::sample::select(EDGES), 0..12);
        let long = (
            prop::collection::vec(prop::sample::select(EDGES), 0..4),
            prop::sample::select(
                &[
                    30usize, 31, 32, 33, 61, 62, 63, 64, 65, 98, 99, 100, 101, 3998, 3999, 4000,
                    4001,
                ][..],
            ),
            prop::collection::vec(prop::sample::select(EDGES), 0..4),
        )
            .prop_map(|(head, n, tail)| {
                let mut v = head;
                v.extend(std::iter::repeat_n('x', n));
                v.extend(tail);
                v
            });
        prop_oneof![3 => short, 1 => long].prop_map(|v| v.into_iter().collect())
    }

    fn regex(pattern: &str) -> regex::Regex {
        regex::Regex::new(pattern).expect("a valid pattern")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The patterns the OpenAPI document publishes accept exactly what the parsers accept.
        #[test]
        fn published_patterns_agree_with_the_parsers(raw in edgy()) {
            use patterns as p;
            static COMPILED: std::sync::LazyLock<Vec<regex::Regex>> = std::sync::LazyLock::new(|| {
                [p::USERNAME, p::PASSWORD, p::CONTENT, p::DISPLAY_NAME, p::CHAT_NAME, p::CLIENT_MSG_ID]
                    .into_iter()
                    .map(regex)
                    .collect()
            });
            let parsed = [
                Username::parse(&raw).is_ok(),
                Password::parse(&raw).is_ok(),
                MessageContent::parse(&raw).is_ok(),
                DisplayName::parse(&raw).is_ok(),
                ChatName::parse(&raw).is_ok(),
                ClientMsgId::parse(&raw).is_ok(),
            ];
            for (re, parsed) in COMPILED.iter().zip(parsed) {
                prop_assert_eq!(re.is_match(&raw), parsed, "{:?} against {}", raw, re.as_str());
            }
        }

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
