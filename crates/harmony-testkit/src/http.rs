//! A thin HTTP client for tests: JSON in, status and JSON out.

use anyhow::Context;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::TestApp;

/// An answer: status, headers and the body as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The problem+json `code`, if the body is a problem.
    pub fn code(&self) -> Option<&str> {
        self.body.get("code").and_then(Value::as_str)
    }

    pub fn str(&self, pointer: &str) -> String {
        self.body
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }
}

/// A registered user with its tokens.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub username: String,
    pub access: String,
    pub refresh: String,
}

impl TestUser {
    /// The login session (`sid`) its access token names, read without checking the signature.
    pub fn session(&self) -> String {
        use base64::Engine as _;
        let claims = self
            .access
            .split('.')
            .nth(1)
            .and_then(|c| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
            })
            .and_then(|c| serde_json::from_slice::<Value>(&c).ok());
        claims
            .and_then(|c| c["sid"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

impl TestApp {
    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<Reply> {
        let mut request = self.client.request(method.clone(), self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// The node's `/metrics` text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self
            .client
            .get(self.url("/metrics"))
            .send()
            .await?
            .text()
            .await?)
    }

    /// The sum of a metric's samples (every label set), 0 when it has none.
    pub async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let text = self.metrics().await?;
        Ok(text
            .lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    pub async fn get(&self, path: &str, token: &str) -> anyhow::Result<Reply> {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> anyhow::Result<Reply> {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> anyhow::Result<Reply> {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Registers `username` (password `password-<username>`) and returns it with its tokens.
    pub async fn register(&self, username: &str) -> anyhow::Result<TestUser> {
        let body = json!({"username": username, "password": format!("password-{username}")});
        let reply = self
            .call(Method::POST, "/api/v1/auth/register", None, Some(body))
            .await?;
        anyhow::ensure!(
            reply.status == StatusCode::CREATED,
            "register {username}: {reply:?}"
        );
        Ok(TestUser {
            id: reply.str("/user/id"),
            username: username.to_owned(),
            access: reply.str("/access_token"),
            refresh: reply.str("/refresh_token"),
        })
    }

    /// Makes `a` and `b` friends: `a` asks, `b` accepts.
    pub async fn befriend(&self, a: &TestUser, b: &TestUser) -> anyhow::Result<()> {
        let sent = self
            .post(
                "/api/v1/friends/requests",
                &a.access,
                json!({"username": b.username}),
            )
            .await?;
        anyhow::ensure!(sent.status == StatusCode::CREATED, "request: {sent:?}");
        let id = sent.str("/id");
        let accepted = self
            .post(
                &format!("/api/v1/friends/requests/{id}/accept"),
                &b.access,
                json!({}),
            )
            .await?;
        anyhow::ensure!(accepted.status.is_success(), "accept: {accepted:?}");
        Ok(())
    }

    /// What `asker` is answered about `user` by `GET /presence?user_ids=`.
    pub async fn presence_seen_by(
        &self,
        asker: &TestUser,
        user: &TestUser,
    ) -> anyhow::Result<Value> {
        let reply = self
            .get(
                &format!("/api/v1/presence?user_ids={}", user.id),
                &asker.access,
            )
            .await?;
        anyhow::ensure!(reply.status == StatusCode::OK, "presence: {reply:?}");
        Ok(reply.body["presence"][0].clone())
    }

    /// Creates a group owned by `owner` with `members`; returns its id.
    pub async fn group(
        &self,
        owner: &TestUser,
        name: &str,
        members: &[&TestUser],
    ) -> anyhow::Result<String> {
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        let reply = self
            .post(
                "/api/v1/chats",
                &owner.access,
                json!({"kind": "group", "name": name, "member_ids": ids}),
            )
            .await?;
        anyhow::ensure!(
            reply.status == StatusCode::CREATED,
            "create group: {reply:?}"
        );
        Ok(reply.str("/id"))
    }

    /// Sends a message and returns the committed message.
    pub async fn send(&self, user: &TestUser, chat: &str, content: &str) -> anyhow::Result<Value> {
        let reply = self
            .post(
                &format!("/api/v1/chats/{chat}/messages"),
                &user.access,
                json!({"content": content}),
            )
            .await?;
        anyhow::ensure!(reply.status == StatusCode::CREATED, "send: {reply:?}");
        Ok(reply.body)
    }

    /// Every message of a chat from history, oldest first, paging with `after`.
    pub async fn all_history(&self, user: &TestUser, chat: &str) -> anyhow::Result<Vec<Value>> {
        let first = self
            .get(
                &format!("/api/v1/chats/{chat}/messages?limit=100"),
                &user.access,
            )
            .await?;
        anyhow::ensure!(first.status == StatusCode::OK, "history: {first:?}");
        // The newest page first; walk backwards to the start, then return ascending.
        let mut pages = vec![first.body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()];
        let mut has_more = first.body["has_more"].as_bool().unwrap_or(false);
        while has_more {
            let oldest = pages
                .last()
                .and_then(|p| p.first())
                .map(|m| m["id"].as_str().unwrap_or_default().to_owned());
            let Some(oldest) = oldest else { break };
            let page = self
                .get(
                    &format!("/api/v1/chats/{chat}/messages?limit=100&before={oldest}"),
                    &user.access,
                )
                .await?;
            anyhow::ensure!(page.status == StatusCode::OK, "history page: {page:?}");
            has_more = page.body["has_more"].as_bool().unwrap_or(false);
            pages.push(
                page.body["messages"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
        }
        Ok(pages.into_iter().rev().flatten().collect())
    }
}
