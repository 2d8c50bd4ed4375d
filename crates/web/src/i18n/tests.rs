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
