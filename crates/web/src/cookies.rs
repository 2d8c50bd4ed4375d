//! Cookies, built and read with the `cookie` crate: the staff session and
//! sign-in form token (SameSite=Strict) and the customer's H5 session
//! (SameSite=Lax: the customer arrives by following the mall's link). All
//! are HttpOnly; `Secure` when the server is told it is behind HTTPS.

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use cookie::{Cookie, SameSite};

/// The value of the cookie called `name`, if the request carries it.
pub fn value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A `Set-Cookie` value: HttpOnly, for `path`, kept `max_age_seconds`
/// (0 clears it).
pub fn set(
    name: &str,
    value: &str,
    path: &str,
    same_site: SameSite,
    max_age_seconds: i64,
    secure: bool,
) -> HeaderValue {
    let cookie = Cookie::build((name, value))
        .path(path)
        .http_only(true)
        .same_site(same_site)
        .max_age(cookie::time::Duration::seconds(max_age_seconds))
        .secure(secure)
        .build();
    HeaderValue::from_str(&cookie.to_string()).expect("names, tokens and paths are visible ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_read_back_and_carry_their_attributes() {
        let set = set("kaquan_session", "abc123", "/", SameSite::Strict, 60, true);
        let text = set.to_str().unwrap();
        for part in [
            "kaquan_session=abc123",
            "Path=/",
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=60",
            "Secure",
        ] {
            assert!(text.contains(part), "{text}");
        }
        let cleared = super::set("kaquan_session", "", "/", SameSite::Strict, 0, false);
        assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
        assert!(!cleared.to_str().unwrap().contains("Secure"));
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; kaquan_session=tok; b=2"),
        );
        headers.append(COOKIE, HeaderValue::from_static("kaquan_form=f"));
        assert_eq!(value(&headers, "kaquan_session").as_deref(), Some("tok"));
        assert_eq!(value(&headers, "kaquan_form").as_deref(), Some("f"));
        assert_eq!(value(&headers, "missing"), None);
        headers.insert(
            COOKIE,
            HeaderValue::from_static("garbage; kaquan_session=t2"),
        );
        assert_eq!(value(&headers, "kaquan_session").as_deref(), Some("t2"));
    }
}
