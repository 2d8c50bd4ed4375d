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
    pub fn parse(body: &str) -> ApiResult<Self> {
        serde_urlencoded::from_str(body)
            .map(Self)
            .map_err(|_| ApiError::invalid("表单无法解析"))
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
pub struct CsrfForm {
    pub csrf: String,
}

/// The flash message a redirect left in the query string.
#[derive(Deserialize)]
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
