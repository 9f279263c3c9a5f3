//! The audit trail: a record for every security event (with the actor, the client and the
//! outcome), none for a change that did not happen, the admin and activity APIs, the webhook
//! outbox against a receiver that is down and then up, and `latchkey audit tail`.

mod events;
mod tail;
mod webhook;

use reqwest::StatusCode;
use serde_json::Value;

use crate::kit::{TestApp, json_body};

impl TestApp {
    /// Every record of `user` (all, when `None`), oldest first, read over the admin API with
    /// `admin_token`, page by page (two at a time, to go through the cursor).
    pub async fn audit_of(&self, admin_token: &str, user: Option<&str>) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = "/admin/audit?limit=2".to_owned();
            if let Some(user) = user {
                url.push_str(&format!("&user={user}"));
            }
            if let Some(after) = &after {
                url.push_str(&format!("&after={after}"));
            }
            let body = json_body(self.get_authed(&url, admin_token).await, StatusCode::OK).await;
            all.extend(body["events"].as_array().unwrap().iter().cloned());
            match body["next"].as_str() {
                Some(next) => after = Some(next.to_owned()),
                None => break,
            }
        }
        all.reverse();
        all
    }
}

/// The names of `records`' events, in order.
pub fn names(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            let outcome = r["outcome"].as_str().unwrap();
            let event = r["event"].as_str().unwrap();
            if outcome == "success" {
                event.to_owned()
            } else {
                format!(
                    "{event}:{}",
                    r["details"]["reason"].as_str().unwrap_or(outcome)
                )
            }
        })
        .collect()
}
