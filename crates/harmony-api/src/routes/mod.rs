//! REST handlers of contract v1, one module per resource. Handlers parse, call one use case and
//! shape the answer; they hold no business rules.

pub mod auth;
pub mod changes;
pub mod chats;
pub mod friends;
pub mod messages;
pub mod presence;
pub mod system;
pub mod users;
pub mod web;
pub mod ws;

use harmony_core::ValidationError;

use crate::error::ApiError;

/// Collects the field errors of several parses, so a form shows every bad field at once.
#[derive(Default)]
pub(crate) struct Fields {
    errors: Vec<ValidationError>,
}

impl Fields {
    pub(crate) fn take<T>(&mut self, parsed: Result<T, ValidationError>) -> Option<T> {
        parsed.map_err(|e| self.errors.push(e)).ok()
    }

    pub(crate) fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }
}

/// Parses a path id; a malformed one names nothing that exists.
pub(crate) fn path_id<T: std::str::FromStr>(
    raw: &str,
    not_found: fn() -> ApiError,
) -> Result<T, ApiError> {
    raw.parse().map_err(|_| not_found())
}

/// Parses an id sent in a body; a malformed one is a validation error on that field.
pub(crate) fn body_id<T: std::str::FromStr>(
    raw: &str,
    field: &'static str,
) -> Result<T, ValidationError> {
    raw.parse()
        .map_err(|_| ValidationError::new(field, "must be an id"))
}
