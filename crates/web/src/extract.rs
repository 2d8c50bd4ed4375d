//! The edge: every request's JSON body, query string, form body and path
//! parameters are parsed here, and nowhere else, so that one set of rules
//! holds for every route:
//!
//! - a field the wire type does not name is refused with a 422 naming it
//!   (every wire type carries `#[serde(deny_unknown_fields)]`, which the
//!   `every_wire_type_refuses_unknown_fields` test keeps true), so a
//!   misspelled filter can never widen a bulk operation to every card;
//! - NUL and other control characters are refused in every string (tab,
//!   carriage return and line feed excepted: text areas send them), so both
//!   databases see the same input and PostgreSQL never answers 500;
//! - malformed input answers the JSON envelope on `/api` and `/open`, and
//!   an error page in the console's or the customer page's style elsewhere,
//!   never the framework's own text.
//!
//! The handlers import `Json`, `Query`, `Form` and `Path` from here instead
//! of from axum.

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest JSON body of the staff API (uploads travel as multipart).
pub const JSON_BODY_BYTES_MAX: usize = 1024 * 1024;
/// Largest urlencoded form body.
pub const FORM_BODY_BYTES_MAX: usize = 1024 * 1024;

/// Who reads an answer, by the route's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// `/api`, `/open`: programs, which get the JSON envelope.
    Program,
    /// `/m/…`: customers on their phones, who get the customer page.
    Customer,
    /// Everything else: staff in the console.
    Staff,
}

impl Audience {
    pub fn of(path: &str) -> Self {
        if path.starts_with("/api/") || path.starts_with("/open/") || path == "/metrics" {
            Self::Program
        } else if path.starts_with("/m/") {
            Self::Customer
        } else {
            Self::Staff
        }
    }
}

/// A refused request, answered in the shape its audience reads.
#[derive(Debug)]
pub struct Rejection {
    pub audience: Audience,
    pub error: ApiError,
}

impl Rejection {
    fn new(uri: &Uri, error: ApiError) -> Self {
        Self {
            audience: Audience::of(uri.path()),
            error,
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match self.audience {
            Audience::Program => self.error.into_response(),
            Audience::Customer => crate::pages::error_page_for(&self.error, true),
            Audience::Staff => crate::pages::error_page_for(&self.error, false),
        }
    }
}

/// The answer to a route nobody serves, in its audience's shape.
pub async fn unknown_route(uri: Uri) -> Rejection {
    Rejection::new(&uri, ApiError::NotFound)
}

/// The answer to a method a route does not take.
pub async fn unknown_method(uri: Uri) -> Rejection {
    Rejection::new(
        &uri,
        ApiError::malformed(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "该地址不支持此请求方法",
        ),
    )
}

/// A character no field may hold: NUL and the other control characters,
/// except tab, carriage return and line feed.
pub fn is_forbidden_char(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\r' | '\n')
}

fn forbidden_char_error(field: &str) -> ApiError {
    let field = if field.is_empty() { "请求" } else { field };
    ApiError::malformed(
        StatusCode::UNPROCESSABLE_ENTITY,
        "control_character",
        format!("字段 {field} 含有不允许的控制字符（如 NUL）"),
    )
}

/// The longest string any field takes, whatever its own limit: the
/// longest free text (a goods description). Fields have tighter limits of
/// their own; this one bounds what no rule names yet.
pub const FIELD_CHARS_MAX: usize = kaquan_core::goods::GOODS_DESCRIPTION_LENGTH_MAX;

/// Refuses a string holding a forbidden character, or longer than any field
/// takes, naming its field.
pub fn check_text(field: &str, text: &str) -> Result<(), ApiError> {
    if text.chars().any(is_forbidden_char) {
        return Err(forbidden_char_error(field));
    }
    if kaquan_core::text::is_too_long(text, FIELD_CHARS_MAX) {
        return Err(too_long(field, FIELD_CHARS_MAX));
    }
    Ok(())
}

fn too_long(field: &str, chars_max: usize) -> ApiError {
    ApiError::malformed(
        StatusCode::UNPROCESSABLE_ENTITY,
        "too_long",
        format!("{field} 最多 {chars_max} 个字"),
    )
}

/// Refuses a text longer than its field's named limit.
pub fn check_chars(field: &str, text: &str, chars_max: usize) -> Result<(), ApiError> {
    check_text(field, text)?;
    if kaquan_core::text::is_too_long(text, chars_max) {
        return Err(too_long(field, chars_max));
    }
    Ok(())
}

fn check_json_strings(path: &mut String, value: &serde_json::Value) -> Result<(), ApiError> {
    match value {
        serde_json::Value::String(text) => check_text(path, text),
        serde_json::Value::Array(items) => {
            for (idx, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{idx}]"));
                check_json_strings(path, item)?;
                path.truncate(len);
            }
            Ok(())
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                check_text(path, key)?;
                check_json_strings(path, item)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The 422 for a body or query that does not fit its wire type, naming the
/// field (`filter.batchId`) and saying what is wrong with it in Chinese.
fn shape_error(path: &str, error: &str) -> ApiError {
    let quoted = |prefix: &str| {
        error
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    // The path of an unknown field already ends with it; a missing field's
    // path is its parent's.
    let join = |name: &str| {
        if path.is_empty() || path == "." {
            name.to_owned()
        } else if path == name || path.ends_with(&format!(".{name}")) {
            path.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    let (code, message) = if let Some(name) = quoted("unknown field `") {
        ("unknown_field", format!("未知字段：{}", join(&name)))
    } else if let Some(name) = quoted("missing field `") {
        ("missing_field", format!("缺少字段：{}", join(&name)))
    } else if let Some(name) = quoted("duplicate field `") {
        ("duplicate_field", format!("字段重复：{}", join(&name)))
    } else if path.is_empty() || path == "." {
        ("invalid", "请求内容的格式不对".to_owned())
    } else {
        ("invalid_field", format!("字段 {path} 的值不对"))
    };
    ApiError::Malformed {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code,
        message,
        details: vec![error.to_owned()],
    }
}

fn malformed_json(error: &serde_json::Error) -> ApiError {
    ApiError::Malformed {
        status: StatusCode::BAD_REQUEST,
        code: "malformed_json",
        message: "请求体不是有效的 JSON".into(),
        details: vec![error.to_string()],
    }
}

/// Whether a JSON text may hold a forbidden character in a string: JSON
/// refuses raw C0 controls, so one can only come as a `\u` escape, a raw
/// DEL, or a raw C1 control (UTF-8 `C2 80`–`C2 9F`).
fn may_hold_forbidden_char(bytes: &[u8]) -> bool {
    bytes
        .windows(2)
        .any(|pair| matches!(pair, [b'\\', b'u'] | [0xC2, 0x80..=0x9F]) || pair[0] == 0x7F)
        || bytes.last() == Some(&0x7F)
}

/// Parses a JSON body into its wire type under the edge's rules. A body
/// that cannot hold a forbidden character or an over-long string (nearly
/// all: an open-API redemption is some 60 bytes) is parsed once,
/// straight into its type; only the others go through a `Value` whose
/// strings are checked first.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // A body no longer than the longest field cannot hold a string over it.
    if bytes.len() <= FIELD_CHARS_MAX && !may_hold_forbidden_char(bytes) {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            if e.inner().is_data() {
                shape_error(&e.path().to_string(), &e.inner().to_string())
            } else {
                malformed_json(e.inner())
            }
        })?;
        deserializer.end().map_err(|e| malformed_json(&e))?;
        return Ok(value);
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| malformed_json(&e))?;
    check_json_strings(&mut String::new(), &value)?;
    serde_path_to_error::deserialize(value)
        .map_err(|e| shape_error(&e.path().to_string(), &e.inner().to_string()))
}

/// Parses a query string or urlencoded form body into its wire type under
/// the edge's rules.
pub fn parse_urlencoded<T: DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    for (key, value) in form_urlencoded::parse(text.as_bytes()) {
        check_text(&key, &key)?;
        check_text(&key, &value)?;
    }
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(text.as_bytes()));
    serde_path_to_error::deserialize(deserializer)
        .map_err(|e| shape_error(&e.path().to_string(), &e.inner().to_string()))
}

fn body_error(status: StatusCode) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::malformed(status, "body_too_large", "请求体过大")
    } else {
        ApiError::malformed(StatusCode::BAD_REQUEST, "unreadable_body", "请求体无法读取")
    }
}

async fn read_body(
    request: Request,
    limit: usize,
) -> Result<(Parts, axum::body::Bytes), Rejection> {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok((parts, bytes)),
        Err(e) => {
            // The limit shows as a length-limit error somewhere in the chain.
            let mut cause: Option<&dyn std::error::Error> = Some(&e);
            let mut too_large = false;
            while let Some(c) = cause {
                too_large |= c.to_string().contains("length limit");
                cause = c.source();
            }
            let status = if too_large {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            Err(Rejection::new(&parts.uri, body_error(status)))
        }
    }
}

fn content_type_is(parts: &Parts, wanted: &str) -> bool {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == wanted || (wanted == "application/json" && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

fn unsupported_media_type(wanted: &str) -> ApiError {
    ApiError::malformed(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("请求头 Content-Type 应为 {wanted}"),
    )
}

/// A JSON body (and, as an answer, a JSON response).
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Rejection;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, bytes) = read_body(request, JSON_BODY_BYTES_MAX).await?;
        if !content_type_is(&parts, "application/json") {
            return Err(Rejection::new(
                &parts.uri,
                unsupported_media_type("application/json"),
            ));
        }
        parse_json(&bytes)
            .map(Json)
            .map_err(|e| Rejection::new(&parts.uri, e))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A urlencoded form body.
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = Rejection;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, bytes) = read_body(request, FORM_BODY_BYTES_MAX).await?;
        if !content_type_is(&parts, "application/x-www-form-urlencoded") {
            return Err(Rejection::new(
                &parts.uri,
                unsupported_media_type("application/x-www-form-urlencoded"),
            ));
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Rejection::new(
                &parts.uri,
                ApiError::malformed(StatusCode::BAD_REQUEST, "unreadable_body", "表单不是 UTF-8"),
            )
        })?;
        parse_urlencoded(text)
            .map(Form)
            .map_err(|e| Rejection::new(&parts.uri, e))
    }
}

/// A urlencoded form body as text, for forms whose checkbox groups repeat
/// a key (`FormPairs`); read under the same limit and character rules.
pub struct FormText(pub String);

impl<S: Send + Sync> FromRequest<S> for FormText {
    type Rejection = Rejection;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, bytes) = read_body(request, FORM_BODY_BYTES_MAX).await?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
            Rejection::new(
                &parts.uri,
                ApiError::malformed(StatusCode::BAD_REQUEST, "unreadable_body", "表单不是 UTF-8"),
            )
        })?;
        for (key, value) in form_urlencoded::parse(text.as_bytes()) {
            check_text(&key, &value).map_err(|e| Rejection::new(&parts.uri, e))?;
        }
        Ok(Self(text))
    }
}

/// The 422 for a field a request does not take (multipart and paired forms,
/// which serde does not read).
pub fn unknown_field(name: &str) -> ApiError {
    ApiError::malformed(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_field",
        format!("未知字段：{name}"),
    )
}

/// A multipart upload (import files, pictures); a malformed one (a missing
/// or wrong boundary, another content type) answers as every rejection does.
pub struct Multipart(axum::extract::Multipart);

impl Multipart {
    /// The next field of the upload (see `axum::extract::Multipart`).
    pub async fn next_field(
        &mut self,
    ) -> Result<Option<axum::extract::multipart::Field<'_>>, axum::extract::multipart::MultipartError>
    {
        self.0.next_field().await
    }
}

impl<S: Send + Sync> FromRequest<S> for Multipart {
    type Rejection = Rejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let uri = request.uri().clone();
        axum::extract::Multipart::from_request(request, state)
            .await
            .map(Multipart)
            .map_err(|rejection| {
                let error = if rejection.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                    unsupported_media_type("multipart/form-data")
                } else {
                    ApiError::malformed(
                        StatusCode::BAD_REQUEST,
                        "malformed_multipart",
                        "上传的表单无法解析（multipart/form-data 的 boundary 不对）",
                    )
                };
                Rejection::new(&uri, error)
            })
    }
}

/// A query string.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_urlencoded(parts.uri.query().unwrap_or(""))
            .map(Query)
            .map_err(|e| Rejection::new(&parts.uri, e))
    }
}

/// A path with its `%XX` escapes decoded (what the path parameters hold).
fn percent_decoded(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        let hex = bytes
            .get(idx + 1..idx + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[idx], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                idx += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                idx += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Path parameters: a malformed one (a letter where an id goes) is a 404,
/// since no such thing exists, with the envelope or page.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => {
                check_text("path", &percent_decoded(parts.uri.path()))
                    .map_err(|e| Rejection::new(&parts.uri, e))?;
                Ok(Path(value))
            }
            Err(_) => Err(Rejection::new(&parts.uri, ApiError::NotFound)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Filter {
        batch_id: Option<i64>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Body {
        filter: Filter,
        #[serde(default)]
        remark: String,
    }

    fn code_and_message(error: ApiError) -> (&'static str, String) {
        (error.code(), error.public_message())
    }

    #[test]
    fn an_unknown_field_is_refused_by_its_path() {
        let error = parse_json::<Body>(br#"{"filter":{"batchId":1}}"#).unwrap_err();
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            code_and_message(error),
            ("unknown_field", "未知字段：filter.batchId".to_owned())
        );
        let error = parse_urlencoded::<Filter>("batchid=3").unwrap_err();
        assert_eq!(
            code_and_message(error),
            ("unknown_field", "未知字段：batchid".to_owned())
        );
    }

    #[test]
    fn missing_and_mistyped_fields_are_named() {
        let error = parse_json::<Body>(br#"{}"#).unwrap_err();
        assert_eq!(
            code_and_message(error),
            ("missing_field", "缺少字段：filter".to_owned())
        );
        let error = parse_json::<Body>(br#"{"filter":{"batch_id":"x"}}"#).unwrap_err();
        assert_eq!(
            code_and_message(error),
            ("invalid_field", "字段 filter.batch_id 的值不对".to_owned())
        );
        let error = parse_urlencoded::<Filter>("batch_id=x").unwrap_err();
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn control_characters_are_refused_but_newlines_pass() {
        let error = parse_json::<Body>(b"{\"filter\":{},\"remark\":\"a\\u0000b\"}").unwrap_err();
        assert_eq!(error.code(), "control_character");
        assert!(error.public_message().contains("remark"));
        let error = parse_json::<Body>(b"{\"filter\":{},\"remark\":\"\\u001b[31m\"}").unwrap_err();
        assert_eq!(error.code(), "control_character");
        let error = parse_urlencoded::<Filter>("batch_id=%00").unwrap_err();
        assert_eq!(error.code(), "control_character");
        let ok = parse_json::<Body>(b"{\"filter\":{},\"remark\":\"line\\r\\nline\\tx\"}").unwrap();
        assert_eq!(ok.remark, "line\r\nline\tx");
        assert_eq!(ok.filter.batch_id, None);
    }

    #[test]
    fn only_a_body_that_could_hold_a_control_character_is_walked() {
        assert!(!may_hold_forbidden_char(
            br#"{"code":"ABCD-EFGH","name":"\"q\" \n"}"#
        ));
        assert!(may_hold_forbidden_char(br#"{"a":"\u0000"}"#));
        assert!(may_hold_forbidden_char("{\"a\":\"\u{7f}\"}".as_bytes()));
        assert!(may_hold_forbidden_char("{\"a\":\"\u{85}\"}".as_bytes()));
        assert!(!may_hold_forbidden_char("{\"a\":\"卡券\"}".as_bytes()));
        // The fast path answers malformed and mistyped bodies as the slow one.
        assert_eq!(
            parse_json::<Body>(br#"{"filter":{}} x"#)
                .unwrap_err()
                .code(),
            "malformed_json"
        );
        assert_eq!(
            parse_json::<Body>(br#"{"filter":{"batch_id":"x"}}"#)
                .unwrap_err()
                .code(),
            "invalid_field"
        );
    }

    #[test]
    fn invalid_json_is_a_400() {
        let error = parse_json::<Body>(b"{").unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error.code(), "malformed_json");
    }

    #[test]
    fn a_path_is_checked_as_decoded() {
        assert_eq!(percent_decoded("/a%20b/%E5%8D%A1%00"), "/a b/卡\0");
        assert_eq!(percent_decoded("/bad%zz%4"), "/bad%zz%4");
        assert!(check_text("path", &percent_decoded("/x/%00")).is_err());
        assert!(check_text("path", &percent_decoded("/x/%C2%85")).is_err());
    }

    /// The tidy rule this module relies on: every struct that derives
    /// `Deserialize` refuses unknown fields (and so uses no `flatten`,
    /// which cannot), unless its doc says why it is "Lenient on purpose"
    /// (customers' landing pages). A new wire type without it fails here.
    #[test]
    fn every_wire_type_refuses_unknown_fields() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut lax = Vec::new();
        let mut paths: Vec<std::path::PathBuf> = Vec::new();
        let mut dirs = vec![dir];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    paths.push(path);
                }
            }
        }
        for path in paths {
            let source = std::fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = source.lines().collect();
            for (idx, line) in lines.iter().enumerate() {
                let derives_deserialize =
                    line.trim_start().starts_with("#[derive(") && line.contains("Deserialize");
                if !derives_deserialize {
                    continue;
                }
                let attributes = lines[idx + 1..].iter().take_while(|l| {
                    l.trim_start().starts_with("#[") || l.trim_start().starts_with("///")
                });
                let strict = attributes
                    .clone()
                    .any(|l| l.contains("deny_unknown_fields"))
                    || lines[..idx]
                        .iter()
                        .rev()
                        .take_while(|l| l.trim_start().starts_with("///"))
                        .any(|l| l.contains("Lenient on purpose"));
                let is_struct = lines[idx + 1..]
                    .iter()
                    .find(|l| {
                        !l.trim_start().starts_with("#[") && !l.trim_start().starts_with("///")
                    })
                    .is_some_and(|l| l.contains("struct "));
                if is_struct && !strict {
                    lax.push(format!("{}:{}", path.display(), idx + 1));
                }
            }
        }
        assert!(
            lax.is_empty(),
            "wire types that accept unknown fields: {lax:?}"
        );
    }

    #[test]
    fn the_audience_follows_the_path() {
        assert_eq!(Audience::of("/api/v1/cards"), Audience::Program);
        assert_eq!(Audience::of("/open/v1/orders"), Audience::Program);
        assert_eq!(Audience::of("/m/1/redeem"), Audience::Customer);
        assert_eq!(Audience::of("/cards"), Audience::Staff);
        assert_eq!(Audience::of("/apix"), Audience::Staff);
    }
}
