//! Languages: zh-CN first, English complete. The pages and messages are
//! written once, in Chinese; the message catalogue (`i18n/en.txt`) maps
//! each Chinese text to its English, and the [`layer`] translates what a
//! request is answered with at the edge, when its language is English:
//!
//! - HTML: text between tags, the attributes people read (placeholder,
//!   aria-label, title, alt, confirmations…) and string literals in
//!   scripts; what is inside `<textarea>` and `<style>` is left alone;
//! - JSON errors: the envelope's `message` (its `code` never changes);
//! - exports, by their writers, through [`Lang::text`].
//!
//! A catalogue entry is exact (`概况 => Overview`) or a pattern whose `{}`
//! stands for any text (`{} 张已兑换的卡不能作废 => {} used cards cannot
//! be voided`); what a pattern captures is translated in its turn, so a
//! merchant's own words (a goods name) pass through unchanged while a
//! field's name inside a message is translated.
//!
//! The language comes from `?lang=en` or `?lang=zh-CN` on any page (which
//! also sets the `kaquan_lang` cookie and, for a signed-in staff member,
//! their saved preference, restored at every sign-in), else the cookie,
//! else, for the customers' pages and the API, `Accept-Language`; else
//! zh-CN (the console does not follow the browser: a staff member chooses).
//! `lang` is taken out of the query before any handler reads it.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The cookie holding the chosen language.
pub const LANG_COOKIE: &str = "kaquan_lang";
/// How long the choice is kept: a year.
pub(crate) const LANG_COOKIE_SECONDS: i64 = 365 * 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    ZhCn,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Self::ZhCn => "zh-CN",
            Self::En => "en",
        }
    }

    /// `en`, `zh-CN` (or `zh`), case aside.
    pub fn parse(code: &str) -> Option<Self> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" | "en-us" | "en-gb" => Some(Self::En),
            "zh" | "zh-cn" | "zh-hans" => Some(Self::ZhCn),
            _ => None,
        }
    }

    /// The language an `Accept-Language` header prefers among ours: the
    /// highest weighted of English and Chinese, Chinese on a tie or none.
    pub fn from_accept_language(header: &str) -> Self {
        let mut best = (Self::ZhCn, 0.0_f32);
        for (i, part) in header.split(',').enumerate() {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let weight = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0)
                // The first of equals wins.
                - i as f32 * 1e-4;
            let lang = if tag == "en" || tag.starts_with("en-") {
                Self::En
            } else if tag == "zh" || tag.starts_with("zh-") {
                Self::ZhCn
            } else {
                continue;
            };
            if weight > best.1 {
                best = (lang, weight);
            }
        }
        best.0
    }

    /// An export's header row in this language.
    pub fn headers(self, zh: &[&str]) -> Vec<String> {
        zh.iter().map(|h| self.text(h)).collect()
    }

    /// `zh` in this language: itself in Chinese, the catalogue's English
    /// (or `zh` unchanged when the catalogue lacks it).
    pub fn text(self, zh: &str) -> String {
        match self {
            Self::ZhCn => zh.to_owned(),
            Self::En => catalogue().translate(zh).unwrap_or_else(|| zh.to_owned()),
        }
    }
}

/// Whether `text` holds a CJK character: what needs translating.
pub fn has_cjk(text: &str) -> bool {
    text.chars().any(is_cjk)
}

/// A Chinese character (not punctuation).
fn is_ideograph(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4dbf}' | '\u{4e00}'..='\u{9fff}' | '\u{f900}'..='\u{faff}')
}

fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3000}'..='\u{303f}' // CJK punctuation
        | '\u{3400}'..='\u{4dbf}'
        | '\u{4e00}'..='\u{9fff}'
        | '\u{f900}'..='\u{faff}'
        | '\u{ff00}'..='\u{ffef}' // full-width forms
    )
}

/// A pattern entry: its literal pieces around the `{}`s, and its English
/// with as many `{}`s.
struct Pattern {
    pieces: Vec<String>,
    english: String,
}

/// The English catalogue.
pub struct Catalogue {
    exact: HashMap<String, String>,
    /// Longest literal text first, so the most specific pattern wins.
    patterns: Vec<Pattern>,
}

/// Collapses every run of whitespace to one space: a template's line
/// breaks are not part of its words.
fn normalize(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Catalogue {
    /// Reads `zh => en` lines; `#` starts a comment line. Refuses a line
    /// without ` = `, a key twice, and a pattern whose two sides differ in
    /// their number of `{}`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut exact = HashMap::new();
        let mut patterns = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (zh, en) = line
                .split_once(" => ")
                .ok_or_else(|| format!("line {}: no ` => `", i + 1))?;
            let (zh, en) = (normalize(zh), en.trim().to_owned());
            if !seen.insert(zh.clone()) {
                return Err(format!("line {}: {zh} twice", i + 1));
            }
            if zh.matches("{}").count() != en.matches("{}").count() {
                return Err(format!(
                    "line {}: the two sides differ in their {{}}",
                    i + 1
                ));
            }
            if zh.contains("{}") {
                patterns.push(Pattern {
                    pieces: zh.split("{}").map(str::to_owned).collect(),
                    english: en,
                });
            } else {
                exact.insert(zh, en);
            }
        }
        // Patterns with words first, the longest first; those of bare
        // separators (`{}：{}`, `{} · {}`) last, so they only split what
        // nothing more specific explains.
        patterns.sort_by_key(|p| {
            let words = p.pieces.iter().any(|piece| piece.chars().any(is_ideograph));
            let literal: usize = p.pieces.iter().map(String::len).sum();
            (!words, std::cmp::Reverse(literal))
        });
        Ok(Self { exact, patterns })
    }

    pub fn len(&self) -> usize {
        self.exact.len() + self.patterns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The English of `zh`, its whitespace aside: an exact entry, else
    /// the first pattern that matches, its captures translated in turn
    /// (or kept, when they are not in the catalogue: a merchant's words).
    pub fn translate(&self, zh: &str) -> Option<String> {
        self.translate_depth(&normalize(zh), 0)
    }

    fn translate_depth(&self, zh: &str, depth: u8) -> Option<String> {
        if let Some(en) = self.exact.get(zh) {
            return Some(en.clone());
        }
        if depth > 8 || !has_cjk(zh) {
            return None;
        }
        for pattern in &self.patterns {
            if let Some(captures) = captures(&pattern.pieces, zh) {
                let mut english = String::new();
                let mut rest = pattern.english.as_str();
                for capture in captures {
                    let (before, after) = rest.split_once("{}").expect("counted at parse");
                    english.push_str(before);
                    match self.translate_depth(capture.trim(), depth + 1) {
                        Some(en) => english.push_str(&en),
                        None => english.push_str(capture.trim()),
                    }
                    rest = after;
                }
                english.push_str(rest);
                return Some(english);
            }
        }
        None
    }
}

/// What each `{}` of a pattern stands for in `text`, if the pattern
/// matches it whole; every capture holds something.
fn captures<'t>(pieces: &[String], text: &'t str) -> Option<Vec<&'t str>> {
    let (first, rest) = pieces.split_first()?;
    let mut text = text.strip_prefix(first.as_str())?;
    let mut found = Vec::with_capacity(rest.len());
    for (i, piece) in rest.iter().enumerate() {
        let last = i + 1 == rest.len();
        let at = if last {
            if !text.ends_with(piece.as_str()) {
                return None;
            }
            text.len() - piece.len()
        } else {
            // Skip at least one character so the capture is not empty.
            let skip = text.chars().next()?.len_utf8();
            text[skip..].find(piece.as_str())? + skip
        };
        if at == 0 {
            return None;
        }
        found.push(&text[..at]);
        text = &text[at + piece.len()..];
    }
    Some(found)
}

/// The English catalogue, read once.
pub fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        Catalogue::parse(include_str!("i18n/en.txt"))
            .expect("the catalogue parses (a test keeps it so)")
    })
}

mod html;
mod layer;

pub use html::translate_html;
pub use layer::{lang_cookie, layer, ExportLang, RequestLang};

#[cfg(test)]
mod tests;
