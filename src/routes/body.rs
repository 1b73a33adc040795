//! JSON request bodies, strictly: `Content-Type: application/json`, at most
//! the configured size, one JSON object, fields of the right type. Every
//! failure is an [`AuthError`] with its status (`415`, `413`, `400`), never a
//! panic or a `500`.

use axum::body::Body;
use axum::extract::FromRequest;
use http::{Request, header};
use serde_json::{Map, Value};

use crate::auth::Auth;
use crate::error::{AuthError, FieldErrors};
use crate::token::claims::ExtraClaims;

/// A request body that is a JSON object.
pub(crate) struct JsonObject(Map<String, Value>);

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.rsplit_once('+').is_some_and(|(t, suffix)| {
            t.starts_with("application/") && suffix.eq_ignore_ascii_case("json")
        })
}

impl<E: ExtraClaims> FromRequest<Auth<E>> for JsonObject {
    type Rejection = AuthError;

    async fn from_request(req: Request<Body>, auth: &Auth<E>) -> Result<Self, AuthError> {
        JsonObject::read(req, auth.settings().max_body_bytes()).await
    }
}

impl JsonObject {
    /// Reads a JSON object of at most `limit` bytes (the extractor without
    /// the `Auth` it takes its limit from; the fuzz target calls this).
    pub(crate) async fn read(req: Request<Body>, limit: usize) -> Result<Self, AuthError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if !content_type.is_some_and(is_json) {
            return Err(AuthError::UnsupportedMediaType);
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(AuthError::PayloadTooLarge);
        }
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|e| {
                let too_large = std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
                if too_large {
                    AuthError::PayloadTooLarge
                } else {
                    AuthError::bad_request("The request body could not be read.")
                }
            })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            Ok(_) => Err(AuthError::bad_request(
                "The request body must be a JSON object.",
            )),
            Err(_) => Err(AuthError::bad_request(
                "The request body is not valid JSON.",
            )),
        }
    }

    /// The object as parsed.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// Starts reading fields.
    pub(crate) fn fields(self) -> Fields {
        Fields {
            map: self.0,
            errors: FieldErrors::new(),
        }
    }
}

/// Field-by-field reading that collects every error before answering.
pub(crate) struct Fields {
    map: Map<String, Value>,
    errors: FieldErrors,
}

impl Fields {
    /// A required string field.
    pub(crate) fn string(&mut self, name: &'static str) -> String {
        match self.map.remove(name) {
            Some(Value::String(s)) => s,
            None | Some(Value::Null) => {
                self.error(name, "This field is required.");
                String::new()
            }
            Some(_) => {
                self.error(name, "Must be a string.");
                String::new()
            }
        }
    }

    /// An optional string field ("" when absent or null).
    pub(crate) fn optional_string(&mut self, name: &'static str) -> String {
        match self.map.remove(name) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s,
            Some(_) => {
                self.error(name, "Must be a string.");
                String::new()
            }
        }
    }

    fn error(&mut self, name: &'static str, message: impl Into<String>) {
        self.errors.entry(name).or_default().push(message.into());
    }

    /// A required one-time code: six digits after trimming.
    pub(crate) fn code(&mut self, name: &'static str) -> String {
        let code = self.string(name).trim().to_owned();
        if !self.errors.contains_key(name) && !crate::codes::is_well_formed(&code) {
            self.error(name, "Enter the 6-digit code.");
        }
        code
    }

    /// `Ok` when no field had an error.
    pub(crate) fn finish(self) -> Result<(), AuthError> {
        if self.errors.is_empty() {
            return Ok(());
        }
        Err(AuthError::invalid(self.errors))
    }
}
