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
        routes::users::me, routes::users::change_password, routes::users::get, routes::users::search,
        routes::friends::send_request, routes::friends::list_requests, routes::friends::accept,
        routes::friends::decline, routes::friends::list, routes::friends::remove,
        routes::chats::create, routes::chats::list, routes::chats::get, routes::chats::rename,
        routes::chats::delete, routes::chats::members, routes::chats::add_member, routes::chats::remove_member,
        routes::messages::send, routes::messages::history, routes::messages::mark_read,
        routes::changes::edit, routes::changes::delete, routes::changes::react, routes::changes::unreact,
        routes::presence::get,
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
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        errors_everywhere(&mut doc);
        constrain(&mut doc);
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    })
}

/// Operations a rate limit guards (they may answer 429 with Retry-After).
const RATE_LIMITED: &[(&str, &str)] = &[
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/users/me/password"),
    ("post", "/api/v1/chats"),
    ("post", "/api/v1/chats/{id}/members"),
    ("post", "/api/v1/chats/{id}/messages"),
    ("patch", "/api/v1/chats/{id}/messages/{message_id}"),
    ("delete", "/api/v1/chats/{id}/messages/{message_id}"),
    (
        "put",
        "/api/v1/chats/{id}/messages/{message_id}/reactions/{emoji}",
    ),
    (
        "delete",
        "/api/v1/chats/{id}/messages/{message_id}/reactions/{emoji}",
    ),
    ("get", "/api/v1/ws"),
];

/// Operations whose request can conflict with the current state (409: already a member, the
/// owner leaving, a direct chat's fixed members, a friendship or request that exists or is no
/// longer pending, befriending oneself).
const CONFLICTING: &[(&str, &str)] = &[
    ("patch", "/api/v1/chats/{id}"),
    ("post", "/api/v1/chats/{id}/members"),
    ("delete", "/api/v1/chats/{id}/members/{user_id}"),
    ("post", "/api/v1/friends/requests"),
    ("post", "/api/v1/friends/requests/{id}/accept"),
    ("post", "/api/v1/friends/requests/{id}/decline"),
    ("post", "/api/v1/chats/{id}/messages"),
    ("patch", "/api/v1/chats/{id}/messages/{message_id}"),
    (
        "put",
        "/api/v1/chats/{id}/messages/{message_id}/reactions/{emoji}",
    ),
];

/// Documents every error an operation can answer, each as `application/problem+json`. The
/// annotations name the errors particular to an operation; the ones that follow from its shape
/// are added here, so none is forgotten: a body can be malformed (400), too large (413) or of the
/// wrong type (415); a path names something that may not exist (404); a query can be invalid
/// (400); a secured operation needs a valid session (401) and, for a cookie session's unsafe
/// request, the CSRF header (403); anything may time out or find a store down (503), and an
/// internal error is 500.
fn errors_everywhere(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            let params = op.get("parameters").and_then(|p| p.as_array());
            let has = |place: &str| params.is_some_and(|ps| ps.iter().any(|p| p["in"] == place));
            let (in_path, in_query) = (has("path"), has("query"));
            let has_body = op.contains_key("requestBody");
            let secured = op.contains_key("security");
            let unsafe_method = method != "get";
            let mut add = vec![
                ("500", "Internal error"),
                (
                    "503",
                    "Temporarily unavailable: a store is down, the work was shed, or the request \
                     took too long; retry (see Retry-After)",
                ),
            ];
            if has_body || in_query {
                add.push(("400", "Malformed request or invalid fields"));
            }
            if has_body {
                add.push(("413", "The body is too large"));
                add.push(("415", "The body is not application/json"));
            }
            if in_path {
                add.push(("404", "Not found, or not visible to the caller"));
            }
            if secured {
                add.push(("401", "No valid session: sign in or refresh"));
            }
            if secured && unsafe_method {
                add.push((
                    "403",
                    "Not allowed (for a cookie session: the CSRF header is missing)",
                ));
            }
            if path.starts_with("/api/v1/auth/") && path != "/api/v1/auth/register" {
                add.push((
                    "401",
                    "Wrong credentials, or an invalid or reused refresh token",
                ));
            }
            if (method.as_str(), path.as_str()) == ("post", "/api/v1/chats")
                || (method.as_str(), path.as_str()) == ("post", "/api/v1/friends/requests")
            {
                add.push(("404", "A user named in the body does not exist"));
            }
            if path == "/api/v1/ws" {
                add.push(("400", "Not a WebSocket upgrade"));
            }
            if CONFLICTING.contains(&(method.as_str(), path.as_str())) {
                add.push(("409", "Conflicts with the current state (see `code`)"));
            }
            if RATE_LIMITED.contains(&(method.as_str(), path.as_str())) {
                add.push(("429", "Too many requests; retry after Retry-After seconds"));
            }
            let responses = op
                .entry("responses")
                .or_insert_with(|| serde_json::json!({}));
            let Some(responses) = responses.as_object_mut() else {
                continue;
            };
            for (status, description) in add {
                responses
                    .entry(status)
                    .or_insert_with(|| serde_json::json!({ "description": description }));
            }
            for (status, response) in responses.iter_mut() {
                if status.starts_with('4') || status.starts_with('5') {
                    problem_body(response, status);
                }
            }
        }
    }
}

/// An error answer's body: `application/problem+json`, a `Problem`; 429 and 503 may carry
/// `Retry-After`.
fn problem_body(response: &mut serde_json::Value, status: &str) {
    let Some(response) = response.as_object_mut() else {
        return;
    };
    response.insert(
        "content".into(),
        serde_json::json!({
            "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } }
        }),
    );
    if status == "429" || status == "503" {
        response.insert(
            "headers".into(),
            serde_json::json!({
                "retry-after": {
                    "description": "Seconds to wait before retrying",
                    "schema": { "type": "integer", "minimum": 0 }
                }
            }),
        );
    }
}

/// Every request field's rules, as the parsers check them (`harmony_core::values::patterns`,
/// which a test holds to the parsers): a client, or a fuzzer, can tell from the document alone
/// which input is accepted.
fn constrain(doc: &mut serde_json::Value) {
    use harmony_core::values::patterns as p;
    use serde_json::json;
    let nullable = |schema: serde_json::Value| json!({ "oneOf": [schema, { "type": "null" }] });
    let text = |pattern: &str| json!({ "type": "string", "pattern": pattern });
    let id = json!({ "type": "string", "format": "uuid", "pattern": p::UUID });
    let fields: [(&str, &str, serde_json::Value); 16] = [
        ("ChangePasswordRequest", "new_password", text(p::PASSWORD)),
        ("RegisterRequest", "username", text(p::USERNAME)),
        ("RegisterRequest", "password", text(p::PASSWORD)),
        (
            "RegisterRequest",
            "display_name",
            nullable(text(p::DISPLAY_NAME)),
        ),
        ("SendFriendRequest", "username", text(p::USERNAME)),
        ("CreateChatRequest", "name", nullable(text(p::CHAT_NAME))),
        ("RenameChatRequest", "name", text(p::CHAT_NAME)),
        ("AddMemberRequest", "user_id", id.clone()),
        ("SendMessageRequest", "content", text(p::CONTENT)),
        (
            "SendMessageRequest",
            "client_msg_id",
            nullable(text(p::CLIENT_MSG_ID)),
        ),
        ("SendMessageRequest", "reply_to", nullable(text(p::ULID))),
        ("EditMessageRequest", "content", text(p::CONTENT)),
        (
            "EditMessageRequest",
            "client_msg_id",
            nullable(text(p::CLIENT_MSG_ID)),
        ),
        (
            "ReadMarkerRequest",
            "seq",
            json!({ "type": "integer", "format": "int64", "minimum": 0 }),
        ),
        (
            "CreateChatRequest",
            "member_ids",
            json!({ "type": "array", "items": id, "maxItems": crate::routes::chats::MAX_MEMBER_IDS }),
        ),
        (
            "CreateChatRequest",
            "kind",
            json!({ "type": "string", "enum": ["group", "direct"] }),
        ),
    ];
    let schemas = &mut doc["components"]["schemas"];
    for (schema, field, rule) in fields {
        let property = &mut schemas[schema]["properties"][field];
        let description = property.get("description").cloned();
        *property = rule;
        if let Some(description) = description {
            property["description"] = description;
        }
    }
    // A direct chat names exactly one other member.
    schemas["CreateChatRequest"]["oneOf"] = json!([
        { "properties": { "kind": { "const": "group" } } },
        { "properties": { "kind": { "const": "direct" }, "member_ids": { "minItems": 1, "maxItems": 1 } },
          "required": ["member_ids"] }
    ]);
    let query: [(&str, &str, serde_json::Value); 2] = [
        ("/api/v1/chats/{id}/messages", "before", text(p::ULID)),
        ("/api/v1/chats/{id}/messages", "after", text(p::ULID)),
    ];
    for (path, name, rule) in query {
        let Some(params) = doc["paths"][path]["get"]["parameters"].as_array_mut() else {
            continue;
        };
        for param in params.iter_mut().filter(|q| q["name"] == name) {
            param["schema"] = rule.clone();
        }
    }
}
