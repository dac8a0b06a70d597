//! The OpenAPI document, generated from the handlers' annotations and the protocol types. The
//! WebSocket frames are included as schemas, so clients generate them from the same source.

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;
use harmony_protocol::{dto, errors, ws};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Harmony", version = "1", description = "Harmony's public contract v1: REST under /api/v1 and the WebSocket gateway at /api/v1/ws."),
    modifiers(&BearerAuth),
    paths(
        routes::auth::register, routes::auth::login, routes::auth::refresh, routes::auth::logout,
        routes::users::me, routes::users::get, routes::users::search,
        routes::friends::send_request, routes::friends::list_requests, routes::friends::accept,
        routes::friends::decline, routes::friends::list, routes::friends::remove,
        routes::chats::create, routes::chats::list, routes::chats::get, routes::chats::rename,
        routes::chats::delete, routes::chats::members, routes::chats::add_member, routes::chats::remove_member,
        routes::messages::send, routes::messages::history, routes::messages::mark_read,
        routes::ws::upgrade,
    ),
    components(schemas(
        errors::Problem, errors::FieldError, errors::ErrorCode,
        dto::UserDto, dto::AuthResponse, dto::MessageDto, dto::AuthorDto, dto::ChatDto, dto::ChatListItem,
        ws::ServerFrame, ws::ClientFrame, ws::ChatPositionDto,
    ))
)]
pub struct ApiDoc;

/// The document as JSON, rendered once.
pub fn document_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_pretty_json().unwrap_or_default())
}
