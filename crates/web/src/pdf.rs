//! A text-only PDF (A4, one column) for documents a merchant hands to a
//! marketplace, such as an order's evidence. Chinese is set in Adobe's
//! standard CJK font STSong-Light (Adobe-GB1, UCS-2 encoding): every PDF
//! reader carries or substitutes it, so nothing is embedded and the file
//! stays small. Lines wrap by width; pages break by height.

/// Page size in points (A4) and the layout.
const PAGE_WIDTH: f64 = 595.0;
const PAGE_HEIGHT: f64 = 842.0;
const MARGIN: f64 = 48.0;
const FONT_SIZE: f64 = 10.0;
const TITLE_SIZE: f64 = 15.0;
const LEADING: f64 = 15.0;

/// How wide a character is, in ems: CJK full width, ASCII half.
fn width_em(c: char) -> f64 {
    if c.is_ascii() {
        0.5
    } else {
        1.0
    }
}

/// Splits `line` into pieces that fit the text width.
fn wrap(line: &str) -> Vec<String> {
    let max_em = (PAGE_WIDTH - 2.0 * MARGIN) / FONT_SIZE;
    let mut pieces = Vec::new();
    let (mut piece, mut width) = (String::new(), 0.0);
    for c in line.chars() {
        let w = width_em(c);
        if width + w > max_em && !piece.is_empty() {
            pieces.push(std::mem::take(&mut piece));
            width = 0.0;
        }
        piece.push(c);
        width += w;
    }
    pieces.push(piece);
    pieces
}

/// A string as the font's UCS-2 codes, hex: characters beyond the basic
/// plane and control characters become `?`.
fn ucs2_hex(text: &str) -> String {
    let mut hex = String::with_capacity(text.len() * 4);
    for c in text.chars() {
        let code = match u32::from(c) {
            code if !(0x20..=0xFFFF).contains(&code) => u32::from('?'),
            code => code,
        };
        hex.push_str(&format!("{code:04X}"));
    }
    hex
}

/// A PDF of a title and lines of text.
pub fn text_pdf(title: &str, lines: &[String]) -> Vec<u8> {
    let per_page = ((PAGE_HEIGHT - 2.0 * MARGIN - 2.0 * LEADING) / LEADING) as usize;
    let wrapped: Vec<String> = lines.iter().flat_map(|l| wrap(l)).collect();
    let pages: Vec<&[String]> = if wrapped.is_empty() {
        vec![&[]]
    } else {
        wrapped.chunks(per_page).collect()
    };
    let n_pages = pages.len();
    let mut objects: Vec<String> = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".into(),
        {
            let kids: Vec<String> = (0..n_pages).map(|i| format!("{} 0 R", 6 + 2 * i)).collect();
            format!("<< /Type /Pages /Kids [{}] /Count {n_pages} >>", kids.join(" "))
        },
        "<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H /DescendantFonts [4 0 R] >>".into(),
        "<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light \
         /CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 2 >> \
         /FontDescriptor 5 0 R /DW 1000 /W [1 95 500] >>"
            .into(),
        "<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880] \
         /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>"
            .into(),
    ];
    for (i, page) in pages.iter().enumerate() {
        let mut content = String::from("BT\n");
        let mut y = PAGE_HEIGHT - MARGIN - TITLE_SIZE;
        if i == 0 {
            content.push_str(&format!(
                "/F1 {TITLE_SIZE} Tf 1 0 0 1 {MARGIN} {y} Tm <{}> Tj\n",
                ucs2_hex(title)
            ));
        }
        y -= 2.0 * LEADING;
        for line in page.iter() {
            content.push_str(&format!(
                "/F1 {FONT_SIZE} Tf 1 0 0 1 {MARGIN} {y} Tm <{}> Tj\n",
                ucs2_hex(line)
            ));
            y -= LEADING;
        }
        content.push_str(&format!(
            "/F1 8 Tf 1 0 0 1 {MARGIN} {} Tm <{}> Tj\nET",
            MARGIN / 2.0,
            ucs2_hex(&format!("{title}  {}/{n_pages}", i + 1))
        ));
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] \
             /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            7 + 2 * i
        ));
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len() + 1
        ));
    }
    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_set_as_ucs2_codes() {
        assert_eq!(ucs2_hex("A卡"), "00415361");
        assert_eq!(ucs2_hex("\u{1F600}\n"), "003F003F");
    }

    #[test]
    fn long_lines_wrap_within_the_text_width() {
        let pieces = wrap(&"卡".repeat(120));
        assert!(pieces.len() == 3, "{}", pieces.len());
        assert!(pieces.iter().all(|p| p.chars().count() <= 49));
        assert_eq!(wrap(""), vec![String::new()]);
        assert_eq!(wrap(&"a".repeat(98)).len(), 1);
        assert_eq!(wrap(&"a".repeat(100)).len(), 2);
    }

    #[test]
    fn the_cross_reference_table_points_at_each_object() {
        let lines: Vec<String> = (0..120).map(|i| format!("第 {i} 行")).collect();
        let mut pdf = text_pdf("证据", &lines);
        pdf[10..14].copy_from_slice(b"xxxx");
        let text = String::from_utf8(pdf).unwrap();
        assert!(text.starts_with("%PDF-1.4"));
        assert!(text.contains("/Count 3"), "120 lines take three pages");
        let xref_at: usize = text
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(text[xref_at..].starts_with("xref"));
        let table: Vec<usize> = text[xref_at..]
            .lines()
            .skip(3)
            .take_while(|l| l.ends_with(" n "))
            .map(|l| l[..10].parse().unwrap())
            .collect();
        assert_eq!(table.len(), 5 + 2 * 3);
        for (i, offset) in table.iter().enumerate() {
            assert!(
                text[*offset..].starts_with(&format!("{} 0 obj", i + 1)),
                "object {}",
                i + 1
            );
        }
    }
}
