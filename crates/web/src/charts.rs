//! Charts as SVG written on the server from the same numbers the page
//! prints beside them: no script, no CDN, readable with JavaScript off and
//! by a screen reader (each chart has a title and each bar its value).
//! Every bar carries `data-label` and `data-value`, so a test reads the
//! numbers back out of the markup.

use std::fmt::Write;

/// Escapes text for an XML attribute or element: labels may be a
/// merchant's own words (a 门店's name).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 refuses most control characters even escaped.
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// One bar: what it stands for and its value.
pub struct Bar {
    pub label: String,
    pub value: i64,
}

/// A small column chart of a daily series: one column per day, the
/// tallest filling the height, a zero day a hairline. `title` names it for
/// screen readers.
pub fn columns(title: &str, bars: &[Bar], width: u32, height: u32) -> String {
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let n = u32::try_from(bars.len()).unwrap_or(u32::MAX).max(1);
    let slot = f64::from(width) / f64::from(n);
    let gap = (slot * 0.2).min(4.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart columns" viewBox="0 0 {width} {height}" width="100%" height="{height}" preserveAspectRatio="none" role="img" aria-label="{title}"><title>{title}</title>"#,
        title = escape(title)
    );
    for (i, bar) in bars.iter().enumerate() {
        let h = (bar.value.max(0) as f64 / max as f64 * f64::from(height - 1)).max(1.0);
        let x = slot * i as f64 + gap / 2.0;
        let _ = write!(
            svg,
            r#"<rect class="bar" data-label="{label}" data-value="{value}" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}"><title>{label}: {value}</title></rect>"#,
            label = escape(&bar.label),
            value = bar.value,
            y = f64::from(height) - h,
            w = slot - gap,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A horizontal bar chart with a label and its value on each row (the
/// coupons verified per 门店).
pub fn rows(title: &str, bars: &[Bar], width: u32) -> String {
    const ROW: u32 = 28;
    const LABEL: u32 = 120;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let n = u32::try_from(bars.len()).unwrap_or(u32::MAX);
    let height = (n * ROW).max(ROW);
    let room = f64::from(width - LABEL - 60);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart rows" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{title}"><title>{title}</title>"#,
        title = escape(title)
    );
    for (i, bar) in bars.iter().enumerate() {
        let top = ROW * u32::try_from(i).unwrap_or(u32::MAX);
        let w = (bar.value.max(0) as f64 / max as f64 * room).max(1.0);
        let label = escape(&bar.label);
        let _ = write!(
            svg,
            r#"<text x="0" y="{ty}" font-size="13">{label}</text><rect class="bar" data-label="{label}" data-value="{value}" x="{LABEL}" y="{y}" width="{w:.1}" height="18"><title>{label}: {value}</title></rect><text x="{vx:.1}" y="{ty}" font-size="13">{value}</text>"#,
            ty = top + 18,
            y = top + 5,
            value = bar.value,
            vx = f64::from(LABEL) + w + 6.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(values: &[i64]) -> Vec<Bar> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Bar {
                label: format!("d{i}"),
                value: *v,
            })
            .collect()
    }

    fn heights(svg: &str) -> Vec<f64> {
        svg.split(" height=\"")
            .skip(2)
            .map(|s| s.split('"').next().unwrap().parse().unwrap())
            .collect()
    }

    #[test]
    fn the_tallest_column_fills_the_chart_and_others_scale_to_it() {
        let svg = columns("近 7 天", &bars(&[0, 5, 10]), 140, 41);
        assert_eq!(heights(&svg), [1.0, 20.0, 40.0]);
        assert!(svg.contains(r#"data-label="d2" data-value="10""#));
        assert_eq!(heights(&columns("空", &bars(&[0, 0]), 140, 41)), [1.0, 1.0]);
    }

    #[test]
    fn labels_are_escaped_so_a_hostile_name_stays_text() {
        let hostile = vec![Bar {
            label: "<script>&\"'\u{0}".into(),
            value: 3,
        }];
        let svg = rows("门店", &hostile, 400);
        assert!(svg.contains("&lt;script&gt;&amp;&quot;&#39; "));
        assert!(!svg.contains("<script"));
        assert!(!svg.contains('\u{0}'));
    }
}
