use super::*;

fn catalogue_of(text: &str) -> Catalogue {
    Catalogue::parse(text).unwrap()
}

const SAMPLE: &str = "
# a comment
概况 => Overview
批次号 => batch number
{}应为整数 => {} must be a whole number
{} 张已兑换的卡不能作废 => {} used cards cannot be voided
查码：{} => Look up: {}
已选 {} 张，共 {} 张 => {} of {} selected
";

#[test]
fn the_shipped_catalogue_parses_and_every_entry_is_english() {
    let catalogue = catalogue();
    assert!(!catalogue.is_empty());
    for (zh, en) in &catalogue.exact {
        assert!(!has_cjk(en), "{zh} = {en}");
    }
    for pattern in &catalogue.patterns {
        assert!(!has_cjk(&pattern.english), "{}", pattern.english);
    }
}

#[test]
fn exact_entries_and_patterns_translate_with_their_captures() {
    let c = catalogue_of(SAMPLE);
    assert_eq!(c.translate("概况").as_deref(), Some("Overview"));
    assert_eq!(c.translate("  概况\n ").as_deref(), Some("Overview"));
    assert_eq!(
        c.translate("批次号应为整数").as_deref(),
        Some("batch number must be a whole number"),
        "a capture in the catalogue is translated in turn"
    );
    assert_eq!(
        c.translate("2 张已兑换的卡不能作废").as_deref(),
        Some("2 used cards cannot be voided")
    );
    assert_eq!(
        c.translate("查码：双十一 100 元").as_deref(),
        Some("Look up: 双十一 100 元"),
        "a merchant's own words pass through"
    );
    assert_eq!(
        c.translate("已选 3 张，共 10 张").as_deref(),
        Some("3 of 10 selected")
    );
    assert_eq!(c.translate("没有的话"), None);
    assert_eq!(c.translate("应为整数"), None, "a capture is never empty");
    assert_eq!(c.translate("plain English"), None);
}

#[test]
fn a_broken_catalogue_is_refused_with_its_line() {
    for (text, why) in [
        ("概况 Overview", "line 1: no ` => `"),
        ("概况 => a\n概况 => b", "line 2: 概况 twice"),
        ("{}个 => some", "line 1: the two sides differ in their {}"),
    ] {
        assert_eq!(Catalogue::parse(text).err().as_deref(), Some(why));
    }
}

#[test]
fn a_page_is_translated_in_its_text_attributes_and_scripts_only() {
    let c = catalogue_of(
        "概况 => Overview\n搜索 => Search\n确定删除？ => Delete?\n已复制 => Copied\n保存 => Save\n门店 => Store",
    );
    let page = r#"<!doctype html><html lang="zh-CN"><head><style>.a:after{content:"概况"}</style></head>
<body><h1> 概况 </h1><input name="q" placeholder="搜索" value="概况" aria-label="搜索">
<form onsubmit="return confirm('确定删除？')"><button type="submit" value="保存">保存</button></form>
<textarea name="t">概况</textarea><a href="/概况" title="门店">门店 1</a>
<script>var a = '已复制', b = "x < y", c = '概况'.length;</script></body></html>"#;
    let english = translate_html(page, &c);
    assert_eq!(
        english,
        r#"<!doctype html><html lang="en"><head><style>.a:after{content:"概况"}</style></head>
<body><h1> Overview </h1><input name="q" placeholder="Search" value="概况" aria-label="Search">
<form onsubmit="return confirm('Delete?')"><button type="submit" value="Save">Save</button></form>
<textarea name="t">概况</textarea><a href="/概况" title="Store">门店 1</a>
<script>var a = 'Copied', b = "x < y", c = 'Overview'.length;</script></body></html>"#
    );
}

#[test]
fn a_date_alone_in_a_text_node_is_written_the_english_way() {
    use super::html::english_date;
    for (iso, english) in [
        ("2026-12-07", Some("Dec 7, 2026")),
        ("2026-01-31 09:05", Some("Jan 31, 2026 09:05")),
        ("2026-10-01 23:59:59", Some("Oct 1, 2026 23:59:59")),
        ("2026-13-01", None),
        ("2026-00-01", None),
        ("2026-12-32", None),
        ("2026-12-00", None),
        ("2026-12-7", None),
        ("26-12-07", None),
        ("2026-12-07-01", None),
        ("2026-12-07 9:05", None),
        ("2026-12-07 09", None),
        ("2026-12-07 09:05:00:00", None),
        ("2026-1a-07", None),
        ("13800001234", None),
    ] {
        assert_eq!(english_date(iso).as_deref(), english, "{iso}");
    }
    let c = catalogue_of("有效期至 {} => Valid until {}");
    let page = "<td> 2026-12-07 10:30 </td><td>订单 2026-12-07</td><textarea>2026-12-07</textarea>";
    assert_eq!(
        translate_html(page, &c),
        "<td> Dec 7, 2026 10:30 </td><td>订单 2026-12-07</td><textarea>2026-12-07</textarea>",
        "only a whole node is a date; what was typed is kept"
    );
}

#[test]
fn a_quote_in_the_english_of_a_script_literal_is_escaped() {
    let c = catalogue_of("不能撤销 => can't be undone");
    let english = translate_html("<script>alert('不能撤销');</script>", &c);
    assert_eq!(english, r"<script>alert('can\'t be undone');</script>");
}

#[test]
fn accept_language_prefers_the_highest_weight_and_chinese_by_default() {
    for (header, lang) in [
        ("en-US,en;q=0.9", Lang::En),
        ("zh-CN,zh;q=0.9,en;q=0.8", Lang::ZhCn),
        ("en;q=0.5,zh;q=0.9", Lang::ZhCn),
        ("fr-FR,en;q=0.7", Lang::En),
        ("fr-FR", Lang::ZhCn),
        ("", Lang::ZhCn),
        ("en,zh", Lang::En),
        ("*", Lang::ZhCn),
    ] {
        assert_eq!(Lang::from_accept_language(header), lang, "{header}");
    }
    assert_eq!(Lang::parse("EN"), Some(Lang::En));
    assert_eq!(Lang::parse("zh-cn"), Some(Lang::ZhCn));
    assert_eq!(Lang::parse("fr"), None);
}

/// Every Chinese string literal of the web crate and of core (messages,
/// labels, refusals), its `{…}` placeholders as `{}`, reads wholly in
/// English through the catalogue: what the code can say, the catalogue
/// can translate. English sentences that name a Chinese term (the API
/// reference's summaries) and the API's sample data are not UI.
#[test]
fn every_chinese_literal_of_the_code_has_its_english() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut missing = Vec::new();
    for dir in [root.join("src"), root.join("../core/src")] {
        for path in rust_files(&dir) {
            let source = std::fs::read_to_string(&path).unwrap();
            // Unit tests at the end of a file say what they test in Chinese.
            let source = source.split("#[cfg(test)]").next().unwrap_or("");
            for literal in chinese_literals(source) {
                let english = catalogue().translate(&literal);
                if english.as_deref().is_none_or(has_cjk) {
                    missing.push(format!("{}: {literal}", path.display()));
                }
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "{} without English:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs")
            && !path.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n == "tests.rs" || n.ends_with("_tests.rs")
            })
            // The API reference is English for engineers, naming our terms.
            && !path.to_string_lossy().contains("openapi")
        {
            files.push(path);
        }
    }
    files
}

/// Sample data, not words of the UI: the values of the test text sent to
/// the merchant's own SMS templates (which are Chinese) and the request
/// examples of the API reference.
const SAMPLES: &[&str] = &[
    "张三",
    "测试商品",
    "文三路 100 号 2 幢 301",
    "杭州市",
    "浙江省",
    "西湖区",
    "年货提货中心",
    "春节期间暂停提货",
    "请在 12 月 31 日前提货",
];

/// The string literals holding Chinese outside comments, attributes
/// (`#[schema(example = …)]`) and doc text, placeholders as `{}`.
fn chinese_literals(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in source.lines() {
        let code = line.trim_start();
        if code.starts_with("//")
            || code.starts_with("#[")
            || code.starts_with('(') && code.contains("\"/")
        {
            continue;
        }
        let mut rest = code;
        while let Some(start) = rest.find('"') {
            let after = &rest[start + 1..];
            let mut end = None;
            let mut escaped = false;
            for (i, c) in after.char_indices() {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let Some(end) = end else { break };
            let literal = &after[..end];
            rest = &after[end + 1..];
            let english_sentence = literal
                .split_whitespace()
                .filter(|w| w.chars().all(|c| c.is_ascii_lowercase()))
                .count()
                >= 3;
            if literal.chars().any(is_ideograph) && !english_sentence && !SAMPLES.contains(&literal)
            {
                found.push(placeholders_as_braces(&literal.replace("\\n", "\n")));
            }
        }
    }
    found
}

/// `{field}`, `{NAME_MAX}`, `{:+}` → `{}`; `{{`/`}}` → `{`/`}`.
fn placeholders_as_braces(literal: &str) -> String {
    let mut out = String::new();
    let mut chars = literal.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                for d in chars.by_ref() {
                    if d == '}' {
                        break;
                    }
                }
                out.push_str("{}");
            }
            c => out.push(c),
        }
    }
    out
}
