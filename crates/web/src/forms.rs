//! Small pieces every console form handler shares: repeated-key form bodies
//! (checkbox groups), the CSRF-only form, the flash message query, and the
//! redirect that carries a flash message.

use crate::error::{ApiError, ApiResult};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

/// A urlencoded form body read as pairs, because checkbox groups repeat a
/// key and a struct cannot hold that.
pub struct FormPairs(Vec<(String, String)>);

impl FormPairs {
    /// Reads a form whose keys are checked by a struct read from the rest
    /// (see `without`).
    pub fn parse_any(body: &str) -> ApiResult<Self> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(body).map_err(|_| ApiError::invalid("表单无法解析"))?;
        for (key, value) in &pairs {
            crate::extract::check_text(key, value)?;
        }
        Ok(Self(pairs))
    }

    /// Reads a form whose keys must all be among `known` (a misspelled
    /// key is refused, never ignored).
    pub fn parse(body: &str, known: &[&str]) -> ApiResult<Self> {
        let form = Self::parse_any(body)?;
        for (key, _) in &form.0 {
            if !known.contains(&key.as_str()) {
                return Err(crate::extract::unknown_field(key));
            }
        }
        Ok(form)
    }

    /// The pairs except those of `key`, as a form body again (for a struct
    /// that cannot hold a repeated key).
    pub fn without(&self, key: &str) -> String {
        serde_urlencoded::to_string(self.0.iter().filter(|(k, _)| k != key).collect::<Vec<_>>())
            .unwrap_or_default()
    }

    /// Every key, in order (repeated keys repeated).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// The first value of `key`, or empty.
    pub fn value(&self, key: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Every value of `key` as an id.
    pub fn ids(&self, key: &str) -> ApiResult<Vec<i64>> {
        self.all(key)
            .iter()
            .map(|v| v.parse().map_err(|_| ApiError::invalid("编号应为整数")))
            .collect()
    }
}

/// A form that carries nothing but its CSRF token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsrfForm {
    pub csrf: String,
}

/// The flash message a redirect left in the query string.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsgQuery {
    pub msg: Option<String>,
    pub page: Option<i64>,
}

/// Redirects to `path` with a flash message.
pub fn redirect_with(path: &str, message: &str) -> Response {
    let separator = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!(
        "{path}{separator}{}",
        serde_urlencoded::to_string([("msg", message)]).unwrap_or_default()
    ))
    .into_response()
}
