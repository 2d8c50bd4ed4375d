//! The middleware that chooses each request's language and translates its
//! answer: pages whole, JSON errors' messages; everything else (JSON data,
//! downloads, pictures) passes untouched.

use super::{catalogue, translate_html, Lang, LANG_COOKIE, LANG_COOKIE_SECONDS};
use crate::extract::Audience;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LANGUAGE, CONTENT_LENGTH, CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The language a request is answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestLang(pub Lang);

/// The language an export's headers are written in: the one a person
/// chose (`?lang=`, the cookie, their account), else zh-CN. A program's
/// `Accept-Language` never changes a file other systems read by its
/// headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportLang(pub Lang);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ExportLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ExportLang>()
            .copied()
            .unwrap_or_default())
    }
}

/// The largest page or error translated; larger answers (none of ours)
/// pass untranslated rather than be held in memory.
const TRANSLATED_BYTES_MAX: usize = 8 * 1024 * 1024;

/// `lang` taken out of a URI's query: its value, and the URI without it.
fn take_lang(uri: &Uri) -> Option<(String, Uri)> {
    let query = uri.query()?;
    let mut lang = None;
    let kept: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .filter_map(|(k, v)| {
            if k == "lang" {
                lang = Some(v.into_owned());
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    let lang = lang?;
    let mut path_and_query = uri.path().to_owned();
    if !kept.is_empty() {
        path_and_query.push('?');
        path_and_query.push_str(
            &form_urlencoded::Serializer::new(String::new())
                .extend_pairs(kept)
                .finish(),
        );
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    Some((lang, Uri::from_parts(parts).ok()?))
}

/// The `Set-Cookie` that keeps a chosen language.
pub fn lang_cookie(state: &AppState, lang: Lang) -> HeaderValue {
    crate::cookies::set(
        LANG_COOKIE,
        lang.code(),
        "/",
        cookie::SameSite::Lax,
        LANG_COOKIE_SECONDS,
        state.secure_cookies,
    )
}

fn accepted(headers: &HeaderMap) -> Lang {
    headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(Lang::from_accept_language)
        .unwrap_or_default()
}

/// Saves a signed-in staff member's choice, so every sign-in restores it.
async fn save_choice(state: &AppState, headers: &HeaderMap, lang: Lang) {
    let Some(token) = crate::auth::session_token(headers) else {
        return;
    };
    let found = state
        .store
        .find_session(&kaquan_core::secrets::token_hash_hex(&token), crate::now())
        .await;
    if let Ok(Some(session)) = found {
        let update = kaquan_core::staff::StaffUpdate {
            language: Some(lang.code().to_owned()),
            ..Default::default()
        };
        if let Err(e) = state
            .store
            .update_staff(session.merchant_id, session.staff_id, &update)
            .await
        {
            // The page is still shown in the chosen language (the cookie).
            tracing::warn!(error = %e, "saving a staff member's language failed");
        }
    }
}

/// Chooses the request's language and translates its answer.
pub async fn layer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let chosen = match take_lang(request.uri()) {
        Some((code, uri)) => {
            *request.uri_mut() = uri;
            Lang::parse(&code)
        }
        None => None,
    };
    let headers = request.headers();
    // The console is zh-CN until its user chooses; a customer's phone and
    // a program say what they read in `Accept-Language`.
    let console = Audience::of(request.uri().path()) == Audience::Staff;
    let kept = chosen
        .or_else(|| crate::cookies::value(headers, LANG_COOKIE).and_then(|c| Lang::parse(&c)));
    let lang = kept.unwrap_or_else(|| {
        if console {
            Lang::ZhCn
        } else {
            accepted(headers)
        }
    });
    if let Some(lang) = chosen {
        save_choice(&state, headers, lang).await;
    }
    request.extensions_mut().insert(RequestLang(lang));
    request
        .extensions_mut()
        .insert(ExportLang(kept.unwrap_or_default()));
    let mut response = next.run(request).await;
    if let Some(lang) = chosen {
        response
            .headers_mut()
            .append(SET_COOKIE, lang_cookie(&state, lang));
    }
    response
        .headers_mut()
        .insert(CONTENT_LANGUAGE, HeaderValue::from_static(lang.code()));
    match lang {
        Lang::ZhCn => response,
        Lang::En => translated(response).await,
    }
}

/// What kind of answer this is, for translating: a page, a JSON error, or
/// something to leave alone.
enum Kind {
    Page,
    JsonError,
    Other,
}

fn kind_of(response: &Response) -> Kind {
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("text/html") {
        Kind::Page
    } else if content_type.starts_with("application/json") && response.status().as_u16() >= 400 {
        Kind::JsonError
    } else {
        Kind::Other
    }
}

async fn translated(response: Response) -> Response {
    let kind = kind_of(&response);
    if matches!(kind, Kind::Other) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, TRANSLATED_BYTES_MAX).await else {
        return crate::error::ApiError::Internal("an answer too large to translate".into())
            .into_response();
    };
    let body = match kind {
        Kind::Page => match std::str::from_utf8(&bytes) {
            Ok(html) => translate_html(html, catalogue()).into_bytes(),
            Err(_) => bytes.to_vec(),
        },
        _ => match serde_json::from_slice::<Value>(&bytes) {
            Ok(mut value) => {
                translate_error(&mut value);
                serde_json::to_vec(&value).unwrap_or_else(|_| bytes.to_vec())
            }
            Err(_) => bytes.to_vec(),
        },
    };
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// The envelope's `message`, its `details` and each row's `message` in
/// English; the `code`s stay as they are.
fn translate_error(value: &mut Value) {
    let english = |text: &str| {
        catalogue()
            .translate(text)
            .unwrap_or_else(|| text.to_owned())
    };
    let Some(error) = value.get_mut("error") else {
        return;
    };
    if let Some(Value::String(message)) = error.get_mut("message") {
        *message = english(message);
    }
    if let Some(Value::Array(details)) = error.get_mut("details") {
        for detail in details {
            if let Value::String(text) = detail {
                *text = english(text);
            }
        }
    }
    if let Some(Value::Array(rows)) = error.get_mut("rows") {
        for row in rows {
            if let Some(Value::String(message)) = row.get_mut("message") {
                *message = english(message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lang_is_taken_out_of_the_query_and_the_rest_kept() {
        let uri: Uri = "/orders?status=pending&lang=en&quick=today"
            .parse()
            .unwrap();
        let (lang, rest) = take_lang(&uri).unwrap();
        assert_eq!(lang, "en");
        assert_eq!(rest.to_string(), "/orders?status=pending&quick=today");
        let (_, bare) = take_lang(&"/?lang=zh-CN".parse().unwrap()).unwrap();
        assert_eq!(bare.to_string(), "/");
        assert!(take_lang(&"/orders?status=pending".parse().unwrap()).is_none());
        assert!(take_lang(&"/orders".parse().unwrap()).is_none());
    }
}
