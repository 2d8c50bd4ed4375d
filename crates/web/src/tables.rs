//! Uploaded tables (xlsx or CSV: card imports, 批量发货) read under limits
//! that are checked while reading, so a hostile file costs a few tens of
//! MB at most and is refused with a clear message:
//!
//! - an xlsx's parts are decompressed once, bounded, before anything parses
//!   them (the upload limit only bounds the compressed size: a 1 MB file
//!   can hold a 1,000 MB string);
//! - cells are read one by one as the sheet lists them; the sheet's declared
//!   range is never trusted, so two cells at A1 and XFD1048576 cost two
//!   cells, not a grid of seventeen billion;
//! - rows, columns, each cell's length and all the text kept are bounded;
//! - a number cell that Excel cannot hold exactly (a card number, a
//!   tracking number longer than 15 digits) is refused with the advice to
//!   format the column as text, never silently rounded.

use crate::error::{ApiError, ApiResult};
use kaquan_core::batch::usecases::{ImportRow, RowError};
use std::io::Read;

/// Most lines a table may have, its header included.
pub const TABLE_ROWS_MAX: usize = kaquan_core::batch::usecases::IMPORT_ROWS_MAX + 1;
/// Most columns a table may use (the 订单导出 file has fewer than 30).
pub const TABLE_COLUMNS_MAX: usize = 64;
/// Longest cell, in characters.
pub const CELL_CHARS_MAX: usize = 1024;
/// Most text kept from one table, in bytes.
pub const TABLE_TEXT_BYTES_MAX: usize = 32 * 1024 * 1024;
/// Most bytes an xlsx's parts may decompress to, all together.
pub const XLSX_UNCOMPRESSED_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// The largest whole number an xlsx number cell holds exactly as typed:
/// Excel keeps 15 significant digits.
const EXACT_NUMBER_MAX: f64 = 1e15;

/// A table's non-blank rows: the file's line number and at least
/// `n_columns` cells (missing ones empty).
pub type Rows = Vec<(usize, Vec<String>)>;

/// How much of a table is read: lines (the header included) and the text
/// kept. Uploads take [`TableLimits::UPLOAD`]; the command line reads
/// larger files.
#[derive(Debug, Clone, Copy)]
pub struct TableLimits {
    pub rows_max: usize,
    pub text_bytes_max: usize,
}

impl TableLimits {
    pub const UPLOAD: Self = Self {
        rows_max: TABLE_ROWS_MAX,
        text_bytes_max: TABLE_TEXT_BYTES_MAX,
    };
}

/// Collects rows under the limits while a reader feeds it cells.
struct Collector {
    n_columns: usize,
    limits: TableLimits,
    rows: Rows,
    kept_bytes: usize,
    /// Number cells that were refused, by line.
    inexact: Vec<RowError>,
}

impl Collector {
    fn new(n_columns: usize, limits: TableLimits) -> Self {
        Self {
            n_columns,
            limits,
            rows: Vec::new(),
            kept_bytes: 0,
            inexact: Vec::new(),
        }
    }

    /// Adds a cell at 1-based `line`, 0-based `column`.
    fn cell(&mut self, line: usize, column: usize, text: String) -> ApiResult<()> {
        if text.trim().is_empty() {
            return Ok(());
        }
        if line > self.limits.rows_max {
            return Err(ApiError::invalid(format!(
                "文件超过 {} 行（含表头），请分成几个文件导入",
                self.limits.rows_max
            )));
        }
        if column >= TABLE_COLUMNS_MAX {
            return Err(ApiError::invalid(format!(
                "第 {line} 行用到了第 {} 列，表格最多 {TABLE_COLUMNS_MAX} 列",
                column + 1
            )));
        }
        if kaquan_core::text::is_too_long(&text, CELL_CHARS_MAX) {
            return Err(ApiError::invalid(format!(
                "第 {line} 行第 {} 列超过 {CELL_CHARS_MAX} 个字",
                column + 1
            )));
        }
        crate::extract::check_text(&format!("第 {line} 行第 {} 列", column + 1), &text)?;
        self.kept_bytes += text.len();
        if self.kept_bytes > self.limits.text_bytes_max {
            return Err(ApiError::invalid("文件内容过多，请分成几个文件导入"));
        }
        let row_idx = match self.rows.binary_search_by_key(&line, |(l, _)| *l) {
            Ok(idx) => idx,
            Err(idx) => {
                self.rows.insert(idx, (line, Vec::new()));
                idx
            }
        };
        let cells = &mut self.rows[row_idx].1;
        if cells.len() <= column {
            cells.resize(column + 1, String::new());
        }
        cells[column] = text;
        Ok(())
    }

    fn finish(mut self) -> ApiResult<Rows> {
        if !self.inexact.is_empty() {
            return Err(ApiError::ImportRows(self.inexact));
        }
        for (_, cells) in &mut self.rows {
            if cells.len() < self.n_columns {
                cells.resize(self.n_columns, String::new());
            }
        }
        Ok(self.rows)
    }
}

/// Reads the rows of an uploaded table (xlsx or CSV, by name or content):
/// every non-blank row, the header (line 1) included, comes back with its
/// line number and at least `n_columns` cells (missing ones empty).
pub fn parse_rows(file_name: &str, bytes: &[u8], n_columns: usize) -> ApiResult<Rows> {
    parse_rows_within(file_name, bytes, n_columns, TableLimits::UPLOAD)
}

/// [`parse_rows`] under other limits.
pub fn parse_rows_within(
    file_name: &str,
    bytes: &[u8],
    n_columns: usize,
    limits: TableLimits,
) -> ApiResult<Rows> {
    let is_xlsx =
        file_name.to_ascii_lowercase().ends_with(".xlsx") || bytes.starts_with(b"PK\x03\x04");
    let mut collector = Collector::new(n_columns, limits);
    if is_xlsx {
        read_xlsx(bytes, &mut collector)?;
    } else {
        read_csv(bytes, &mut collector)?;
    }
    collector.finish()
}

/// Decompresses every part of the zip once, bounded, so that nothing that
/// parses it afterwards can be made to inflate more than the limit.
fn check_xlsx_size(bytes: &[u8]) -> ApiResult<()> {
    let unreadable = || ApiError::invalid("无法读取 xlsx 文件");
    let too_large = || {
        ApiError::invalid(format!(
            "xlsx 文件解压后超过 {} MB，请分成几个文件导入",
            XLSX_UNCOMPRESSED_BYTES_MAX / 1024 / 1024
        ))
    };
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|_| unreadable())?;
    let mut budget = XLSX_UNCOMPRESSED_BYTES_MAX;
    for idx in 0..archive.len() {
        let part = archive.by_index(idx).map_err(|_| unreadable())?;
        if part.size() > budget {
            return Err(too_large());
        }
        let n = std::io::copy(&mut part.take(budget + 1), &mut std::io::sink())
            .map_err(|_| unreadable())?;
        if n > budget {
            return Err(too_large());
        }
        budget -= n;
    }
    Ok(())
}

fn read_xlsx(bytes: &[u8], collector: &mut Collector) -> ApiResult<()> {
    use calamine::{DataRef, Reader};
    check_xlsx_size(bytes)?;
    let mut workbook: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes))
            .map_err(|_| ApiError::invalid("无法读取 xlsx 文件"))?;
    let first_sheet = workbook
        .sheet_names()
        .first()
        .cloned()
        .ok_or_else(|| ApiError::invalid("xlsx 文件中没有工作表"))?;
    let mut cells = workbook
        .worksheet_cells_reader(&first_sheet)
        .map_err(|_| ApiError::invalid("无法读取 xlsx 工作表"))?;
    loop {
        let cell = match cells.next_cell() {
            Ok(Some(cell)) => cell,
            Ok(None) => break,
            Err(_) => return Err(ApiError::invalid("无法读取 xlsx 工作表")),
        };
        let (row, column) = cell.get_position();
        let (line, column) = (row as usize + 1, column as usize);
        let text = match cell.get_value() {
            DataRef::Empty => continue,
            DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
            DataRef::SharedString(s) => (*s).to_owned(),
            DataRef::Int(i) => i.to_string(),
            DataRef::Float(f) if f.fract() == 0.0 && f.abs() < EXACT_NUMBER_MAX => {
                format!("{}", *f as i64)
            }
            DataRef::Float(_) => {
                collector.inexact.push(RowError {
                    line,
                    message: format!(
                        "第 {} 列是数字格式：超过 15 位或带小数的数字在 Excel 中会失真，请把该列设为“文本”格式后重新填写",
                        column + 1
                    ),
                });
                continue;
            }
            DataRef::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
            DataRef::DateTime(d) => d.as_f64().to_string(),
            DataRef::Error(e) => format!("#{e:?}"),
        };
        collector.cell(line, column, text)?;
    }
    Ok(())
}

fn read_csv(bytes: &[u8], collector: &mut Collector) -> ApiResult<()> {
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
        .map_err(|_| ApiError::invalid("CSV 文件须为 UTF-8 编码"))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    // The line a record starts on, as an editor shows it: blank lines and
    // quoted cells that span lines are counted. The reader's position is
    // where it stopped, before any blank lines it then skips.
    let (mut offset, mut line) = (0usize, 1usize);
    loop {
        let start = reader.position().byte() as usize;
        line += text.as_bytes()[offset..start]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        offset = start;
        let rest = &text.as_bytes()[start..];
        let blank = rest
            .iter()
            .take_while(|b| matches!(b, b'\n' | b'\r'))
            .filter(|b| **b == b'\n')
            .count();
        let record_line = line + blank;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(_) => {
                return Err(ApiError::invalid(format!(
                    "CSV 第 {record_line} 行无法解析"
                )))
            }
        }
        for (column, cell) in record.iter().enumerate() {
            collector.cell(record_line, column, cell.to_owned())?;
        }
    }
    Ok(())
}

/// Reads the rows of an import file: 卡号 and 密码 in the first two columns.
pub fn parse_import_file(file_name: &str, bytes: &[u8]) -> ApiResult<Vec<ImportRow>> {
    Ok(parse_rows(file_name, bytes, 2)?
        .into_iter()
        .skip(1) // the header
        .map(|(line, mut cells)| ImportRow {
            line,
            password: std::mem::take(&mut cells[1]),
            number: std::mem::take(&mut cells[0]),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xlsx(write: impl FnOnce(&mut rust_xlsxwriter::Worksheet)) -> Vec<u8> {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        write(workbook.add_worksheet());
        workbook.save_to_buffer().unwrap()
    }

    #[test]
    fn a_far_cell_costs_one_cell_and_is_refused() {
        let bytes = xlsx(|sheet| {
            sheet.write_string(0, 0, "卡号").unwrap();
            sheet.write_string(1_048_575, 16_383, "x").unwrap();
        });
        let error = parse_rows("a.xlsx", &bytes, 2).unwrap_err();
        assert!(
            error.public_message().contains("行"),
            "{}",
            error.public_message()
        );
    }

    #[test]
    fn a_far_column_is_refused() {
        let bytes = xlsx(|sheet| {
            sheet.write_string(0, 0, "卡号").unwrap();
            sheet.write_string(1, 16_383, "x").unwrap();
        });
        let error = parse_rows("a.xlsx", &bytes, 2).unwrap_err();
        assert!(
            error.public_message().contains("列"),
            "{}",
            error.public_message()
        );
    }

    #[test]
    fn a_part_that_inflates_past_the_limit_is_refused() {
        let huge = "A".repeat(XLSX_UNCOMPRESSED_BYTES_MAX as usize / 2 + 1);
        let mut buffer = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("xl/sharedStrings.xml", options).unwrap();
        std::io::Write::write_all(&mut zip, huge.as_bytes()).unwrap();
        zip.start_file("xl/other.xml", options).unwrap();
        std::io::Write::write_all(&mut zip, huge.as_bytes()).unwrap();
        zip.finish().unwrap();
        let bytes = buffer.into_inner();
        assert!(
            bytes.len() < 1024 * 1024,
            "small compressed: {}",
            bytes.len()
        );
        let error = parse_rows("a.xlsx", &bytes, 2).unwrap_err();
        assert!(
            error.public_message().contains("解压后超过"),
            "{}",
            error.public_message()
        );
    }

    #[test]
    fn long_number_cells_are_refused_not_rounded() {
        let bytes = xlsx(|sheet| {
            sheet.write_string(0, 0, "卡号").unwrap();
            sheet.write_number(1, 0, 6228480012345678901.0).unwrap();
            sheet.write_number(2, 0, 123456789012345.0).unwrap();
            sheet.write_string(3, 0, "6228480012345678901").unwrap();
        });
        match parse_rows("a.xlsx", &bytes, 2).unwrap_err() {
            ApiError::ImportRows(rows) => {
                assert_eq!(rows.len(), 1);
                assert_eq!(rows[0].line, 2);
                assert!(rows[0].message.contains("文本"));
            }
            other => panic!("{other:?}"),
        }
        let bytes = xlsx(|sheet| {
            sheet.write_number(0, 0, 123456789012345.0).unwrap();
            sheet.write_string(1, 0, "6228480012345678901").unwrap();
        });
        let rows = parse_rows("a.xlsx", &bytes, 2).unwrap();
        assert_eq!(rows[0].1[0], "123456789012345");
        assert_eq!(rows[1].1[0], "6228480012345678901");
    }

    #[test]
    fn csv_rows_carry_the_line_an_editor_shows() {
        let text = "卡号,密码\n\nA1,\"two\nlines\"\nA2,p2\n";
        let rows = parse_rows("a.csv", text.as_bytes(), 2).unwrap();
        let lines: Vec<usize> = rows.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [1, 3, 5]);
        assert_eq!(rows[1].1, ["A1", "two\nlines"]);
    }

    #[test]
    fn csv_limits_hold_while_reading() {
        let long = format!("卡号\n{}\n", "x".repeat(CELL_CHARS_MAX + 1));
        assert!(parse_rows("a.csv", long.as_bytes(), 2).is_err());
        let mut many = String::from("卡号\n");
        for idx in 0..=TABLE_ROWS_MAX {
            many.push_str(&format!("{idx}\n"));
        }
        let error = parse_rows("a.csv", many.as_bytes(), 2).unwrap_err();
        assert!(error.public_message().contains("行"));
        let wide = format!("{}x\n", ",".repeat(TABLE_COLUMNS_MAX));
        assert!(parse_rows("a.csv", wide.as_bytes(), 2).is_err());
    }
}
