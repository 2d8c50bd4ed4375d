//! Translating a page: a small scanner over the HTML kaquan's own
//! templates write (well-formed, attributes quoted), not a general parser.
//! Text between tags is translated as a whole, its surrounding whitespace
//! kept; in a tag, every attribute people read; in a script, each string
//! literal that holds Chinese.

use super::{has_cjk, Catalogue};

/// Attributes never translated: addresses, names, ids and what a form
/// sends back.
const KEPT_ATTRIBUTES: &[&str] = &[
    "href", "src", "action", "name", "id", "class", "for", "type", "method", "style", "value",
];

/// The page in English, as far as the catalogue reaches.
pub fn translate_html(html: &str, catalogue: &Catalogue) -> String {
    let mut out = String::with_capacity(html.len() + html.len() / 4);
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&translate_text(&rest[..open], catalogue));
        rest = &rest[open..];
        let close = tag_end(rest).unwrap_or(rest.len() - 1);
        let tag = &rest[..=close];
        out.push_str(&translate_tag(tag, catalogue));
        rest = &rest[close + 1..];
        // What a script, a style or a text area holds runs to its closing
        // tag: a `<` inside is not a tag.
        let name = tag_name(tag);
        if matches!(name.as_str(), "script" | "style" | "textarea") {
            let end = find_closing(rest, &name);
            let body = &rest[..end];
            match name.as_str() {
                "script" => out.push_str(&translate_script(body, catalogue)),
                // A style is code; a text area holds what was typed.
                _ => out.push_str(body),
            }
            rest = &rest[end..];
        }
    }
    out.push_str(&translate_text(rest, catalogue));
    out
}

/// Where `</name` starts in `text`, case aside; its end when absent.
fn find_closing(text: &str, name: &str) -> usize {
    let closing = format!("</{name}");
    text.as_bytes()
        .windows(closing.len())
        .position(|w| w.eq_ignore_ascii_case(closing.as_bytes()))
        .unwrap_or(text.len())
}

/// The index of the `>` that ends the tag `tag` starts with, quotes
/// respected.
fn tag_end(tag: &str) -> Option<usize> {
    let mut quote: Option<u8> = None;
    for (i, b) in tag.bytes().enumerate().skip(1) {
        match (quote, b) {
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'>') => return Some(i),
            (None, _) => {}
        }
    }
    None
}

/// An opening tag's name, lower case (`div` of `<div class="a">`);
/// empty for a closing tag, a comment or a doctype.
fn tag_name(tag: &str) -> String {
    tag[1..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// A text node: translated whole when it holds Chinese, its leading and
/// trailing whitespace kept; a node that is a date (`2026-12-07`, with a
/// time or not) is written the English way (`Dec 7, 2026 10:30`).
fn translate_text(text: &str, catalogue: &Catalogue) -> String {
    let core = text.trim();
    let start = text.len() - text.trim_start().len();
    let end = start + core.len();
    let english = if has_cjk(core) {
        translate_escaped(core, catalogue)
    } else {
        english_date(core)
    };
    match english {
        Some(english) => format!("{}{english}{}", &text[..start], &text[end..]),
        None => text.to_owned(),
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `YYYY-MM-DD`, optionally followed by ` HH:MM` or ` HH:MM:SS`, as
/// English writes it: `Dec 7, 2026`, the time kept as it is. Anything else
/// is none.
pub(crate) fn english_date(text: &str) -> Option<String> {
    let (day, time) = match text.split_once(' ') {
        Some((day, time)) => (day, Some(time)),
        None => (text, None),
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let mut parts = day.split('-');
    let (year, month, date) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !digits(year, 4) || !digits(month, 2) || !digits(date, 2) {
        return None;
    }
    let month_name = MONTHS.get(month.parse::<usize>().ok()?.checked_sub(1)?)?;
    let date: u32 = date.parse().ok()?;
    if !(1..=31).contains(&date) {
        return None;
    }
    let english = format!("{month_name} {date}, {year}");
    match time {
        None => Some(english),
        Some(time) => {
            let fields: Vec<&str> = time.split(':').collect();
            let clock = (2..=3).contains(&fields.len()) && fields.iter().all(|f| digits(f, 2));
            clock.then(|| format!("{english} {time}"))
        }
    }
}

/// The English of text as it stands in HTML: its entities read before
/// the look-up (a label rendered into the page has its `/` as `&#x2f;`),
/// the English escaped again.
fn translate_escaped(html_text: &str, catalogue: &Catalogue) -> Option<String> {
    const ENTITIES: [(&str, &str); 7] = [
        ("&#x2f;", "/"),
        ("&quot;", "\""),
        ("&#x27;", "'"),
        ("&#39;", "'"),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&amp;", "&"),
    ];
    let mut plain = html_text.to_owned();
    for (entity, c) in ENTITIES {
        plain = plain.replace(entity, c);
    }
    let english = catalogue.translate(&plain)?;
    Some(
        english
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;"),
    )
}

/// A tag with each readable attribute's Chinese value translated; a
/// submit button's `value` too, and `<html lang>`.
fn translate_tag(tag: &str, catalogue: &Catalogue) -> String {
    if tag.starts_with("<html") {
        return tag.replace("lang=\"zh-CN\"", "lang=\"en\"");
    }
    if !has_cjk(tag) {
        return tag.to_owned();
    }
    let is_button = tag.contains("type=\"submit\"") || tag.contains("type=\"button\"");
    let mut out = String::with_capacity(tag.len() + 32);
    let mut rest = tag;
    while let Some(eq) = rest.find("=\"") {
        let before = &rest[..eq];
        let attribute = before
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let value_start = eq + 2;
        let Some(len) = rest[value_start..].find('"') else {
            break;
        };
        let value = &rest[value_start..value_start + len];
        out.push_str(&rest[..value_start]);
        let readable =
            !KEPT_ATTRIBUTES.contains(&attribute.as_str()) || (attribute == "value" && is_button);
        if !readable || !has_cjk(value) {
            out.push_str(value);
        } else if attribute.starts_with("on") {
            out.push_str(&translate_script(value, catalogue));
        } else {
            out.push_str(&translate_escaped(value, catalogue).unwrap_or_else(|| value.to_owned()));
        }
        out.push('"');
        rest = &rest[value_start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// A script with each string literal that holds Chinese translated.
fn translate_script(script: &str, catalogue: &Catalogue) -> String {
    if !has_cjk(script) {
        return script.to_owned();
    }
    let mut out = String::with_capacity(script.len() + 64);
    let mut chars = script.char_indices().peekable();
    let mut copied = 0;
    while let Some((i, c)) = chars.next() {
        if !matches!(c, '\'' | '"' | '`') {
            continue;
        }
        // The literal runs to the next unescaped same quote.
        let mut end = None;
        let mut escaped = false;
        for (j, d) in chars.by_ref() {
            match (escaped, d) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, d) if d == c => {
                    end = Some(j);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        let literal = &script[i + 1..end];
        if has_cjk(literal) && !literal.contains("${") {
            if let Some(english) = catalogue.translate(literal) {
                out.push_str(&script[copied..=i]);
                let lead = &literal[..literal.len() - literal.trim_start().len()];
                let trail = &literal[literal.trim_end().len()..];
                out.push_str(lead);
                out.push_str(&english.replace(c, &format!("\\{c}")));
                out.push_str(trail);
                copied = end;
            }
        }
    }
    out.push_str(&script[copied..]);
    out
}
