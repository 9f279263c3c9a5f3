//! A JSON body extractor whose rejections are problem+json, like every other error.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::Problem;

/// `axum::Json` whose rejections are problem+json: 415 `unsupported_media_type` for another
/// content type, 413 `payload_too_large` for an oversized body, 400 `invalid_input` for bad
/// JSON or missing fields (without echoing the offending values).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_problem(&rejection)),
        }
    }
}

/// The problem+json answer for a JSON body rejection.
#[must_use]
pub fn json_problem(rejection: &JsonRejection) -> Problem {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type",
            "send the body as application/json",
        ),
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Payload too large",
            "the request body is too large",
        ),
        JsonRejection::JsonDataError(e) => {
            // serde's message can quote the offending value; keep only the field-level part.
            let text = e.body_text();
            let detail = text
                .split_once("missing field")
                .map(|(_, rest)| {
                    format!(
                        "missing field{}",
                        rest.split(" at line").next().unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| {
                    "the request body does not have the expected fields and types".into()
                });
            invalid_input(detail)
        }
        _ => invalid_input("the request body is not valid JSON"),
    }
}

/// 400 problem+json `invalid_input` with `detail`.
#[must_use]
pub fn invalid_input(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "Invalid input",
        detail,
    )
}
