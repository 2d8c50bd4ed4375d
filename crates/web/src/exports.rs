//! Card exports for the print shop and the merchant's other systems: xlsx
//! and CSV (passwords only with the export-secrets permission), and QR code
//! images (a zip of SVG or PNG, one per card, named by card number).
//!
//! Exports page through the cards by serial and write each page as it comes,
//! so a million cards take constant memory. Every user-entered text is
//! written as a string and formula triggers are escaped (ASVS 5.0 1.2.10).

use crate::error::{ApiError, ApiResult};
use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use kaquan_core::card::CardFilter;
use kaquan_core::card::CardWithSecret;
use kaquan_core::clock::{format_date, format_datetime};
use kaquan_core::money::format_yuan;
use kaquan_core::secrets::{MasterKey, MerchantKeys};
use kaquan_core::store::Store;
use std::io::Write;
use std::path::Path;

pub const XLSX_CONTENT_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
/// Cards fetched per page while exporting.
pub const EXPORT_PAGE_ROWS: i64 = 5000;
/// Pages the reader may run ahead of the xlsx writer.
const EXPORT_PAGES_AHEAD: usize = 2;
/// xlsx worksheets hold at most this many rows (header included).
const XLSX_ROWS_MAX: i64 = 1_048_576;

/// Exports one merchant may have running at once: each keeps a core busy,
/// and the machine's other merchants and customers need the rest.
pub const EXPORTS_PER_MERCHANT_MAX: usize = 2;

/// The exports running now, by merchant.
#[derive(Default)]
pub struct ExportSlots(std::sync::Mutex<std::collections::HashMap<i64, usize>>);

/// One running export; its slot frees when this drops.
pub struct ExportSlot {
    slots: std::sync::Arc<ExportSlots>,
    merchant_id: i64,
}

impl ExportSlots {
    /// Takes a slot for the merchant, or refuses when it has
    /// [`EXPORTS_PER_MERCHANT_MAX`] exports running.
    pub fn take(self: &std::sync::Arc<Self>, merchant_id: i64) -> ApiResult<ExportSlot> {
        let mut running = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = running.entry(merchant_id).or_insert(0);
        if *n >= EXPORTS_PER_MERCHANT_MAX {
            return Err(ApiError::malformed(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "exports_busy",
                format!("已有 {EXPORTS_PER_MERCHANT_MAX} 个导出正在进行，请等它们完成后再试"),
            ));
        }
        *n += 1;
        Ok(ExportSlot {
            slots: std::sync::Arc::clone(self),
            merchant_id,
        })
    }
}

impl Drop for ExportSlot {
    fn drop(&mut self) {
        let mut running = self.slots.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = running.get_mut(&self.merchant_id) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.merchant_id);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Xlsx,
    Csv,
}

impl ExportFormat {
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "xlsx" => Some(Self::Xlsx),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrImageFormat {
    Svg,
    Png,
}

impl QrImageFormat {
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "svg" => Some(Self::Svg),
            "png" => Some(Self::Png),
            _ => None,
        }
    }
}

/// Neutralises spreadsheet formula triggers in user-entered text.
pub fn escape_formula(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

/// What a card's QR code holds: its pickup/redeem page with the number filled in.
/// Why QR codes made with this public address would not open on a
/// customer's phone: a loopback or private address, or none that is an
/// address at all. `None` for a public IP or a domain name.
pub fn public_url_problem(public_url: &str) -> Option<&'static str> {
    let Ok(url) = url::Url::parse(public_url) else {
        return Some("公网地址不是有效的网址");
    };
    match url.host() {
        None => Some("公网地址不是有效的网址"),
        Some(url::Host::Domain(name)) => {
            let name = name.to_ascii_lowercase();
            (name == "localhost" || name.ends_with(".localhost") || !name.contains('.'))
                .then_some("公网地址是本机或内网的名字，顾客的手机打不开")
        }
        Some(url::Host::Ipv4(ip)) => (!kaquan_core::webhook::is_public_address(ip.into()))
            .then_some("公网地址是本机或内网地址，顾客的手机打不开"),
        Some(url::Host::Ipv6(ip)) => (!kaquan_core::webhook::is_public_address(ip.into()))
            .then_some("公网地址是本机或内网地址，顾客的手机打不开"),
    }
}

pub fn qr_content(public_url: &str, merchant_id: i64, number: &str) -> String {
    format!("{public_url}/m/{merchant_id}/redeem?number={number}")
}

/// Everything an export needs.
pub struct ExportRequest<'a> {
    pub store: &'a dyn Store,
    pub master: &'a MasterKey,
    pub merchant_id: i64,
    pub filter: &'a CardFilter,
    pub with_secrets: bool,
    pub public_url: &'a str,
    /// Counts the cards written so far, for a background export's progress.
    pub progress: Option<&'a std::sync::atomic::AtomicI64>,
    /// The language of the header row (zh-CN unless the person chose).
    pub lang: crate::i18n::Lang,
}

fn headers(with_secrets: bool, lang: crate::i18n::Lang) -> Vec<String> {
    let mut headers = vec!["卡序号", "卡号"];
    if with_secrets {
        headers.push("密码");
    }
    headers.extend([
        "二维码内容",
        "卡券面值(元)",
        "有效期开始",
        "有效期结束",
        "状态",
        "券商",
        "批次号",
        "卡券备注",
    ]);
    lang.headers(&headers)
}

/// Turns card rows into cells, deriving each key version's keys once per
/// export rather than once per card. It owns what it needs, so that it can
/// work on the blocking pool.
struct CellWriter {
    master: MasterKey,
    merchant_id: i64,
    with_secrets: bool,
    public_url: String,
    lang: crate::i18n::Lang,
    keys: std::collections::HashMap<i32, MerchantKeys>,
}

impl CellWriter {
    fn new(request: &ExportRequest<'_>) -> Self {
        Self {
            master: request.master.clone(),
            merchant_id: request.merchant_id,
            with_secrets: request.with_secrets,
            public_url: request.public_url.to_owned(),
            lang: request.lang,
            keys: std::collections::HashMap::new(),
        }
    }

    fn cells(&mut self, row: &CardWithSecret) -> ApiResult<Vec<String>> {
        let (master, merchant_id) = (&self.master, self.merchant_id);
        let keys = self
            .keys
            .entry(row.key_version)
            .or_insert_with(|| master.merchant_keys(merchant_id, row.key_version));
        let card = &row.card;
        let mut cells = vec![card.serial.to_string(), card.number.clone()];
        if self.with_secrets {
            let password = match &row.secret_sealed {
                Some(sealed) => keys.open(&card.number, sealed).ok_or_else(|| {
                    ApiError::Internal(format!("sealed password of card {} does not open", card.id))
                })?,
                None => "（已清除）".to_owned(),
            };
            cells.push(password);
        }
        cells.extend([
            qr_content(&self.public_url, self.merchant_id, &card.number),
            card.face_value_fen.map(format_yuan).unwrap_or_default(),
            card.valid_from.map(format_date).unwrap_or_default(),
            card.valid_until.map(format_date).unwrap_or_default(),
            self.lang.text(card.state.label_zh()),
            escape_formula(card.distributor_name.as_deref().unwrap_or("")),
            card.batch_id.to_string(),
            escape_formula(&card.remark),
        ]);
        Ok(cells)
    }
}

/// Pages through the cards and hands each page to `write` with the export's
/// state. The runtime's thread only reads pages: decrypting, encoding and
/// writing run on the blocking pool, so an export of a million cards or of
/// thousands of QR images never holds up the server's other requests.
async fn for_each_page<S: Send + 'static>(
    request: &ExportRequest<'_>,
    mut state: S,
    write: fn(&mut S, &[CardWithSecret]) -> ApiResult<()>,
) -> ApiResult<(i64, S)> {
    let (mut after, mut n_cards) = (0i64, 0i64);
    loop {
        let page = request
            .store
            .cards_after(request.merchant_id, request.filter, after, EXPORT_PAGE_ROWS)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.card.serial;
        n_cards += page.len() as i64;
        let n_page = page.len() as i64;
        state = crate::off_runtime(move || write(&mut state, &page).map(|()| state)).await??;
        if let Some(progress) = request.progress {
            progress.fetch_add(n_page, std::sync::atomic::Ordering::Relaxed);
        }
    }
    Ok((n_cards, state))
}

fn xlsx_err(error: rust_xlsxwriter::XlsxError) -> ApiError {
    ApiError::Internal(format!("xlsx: {error}"))
}

/// Writes the card rows `receiver` hands over to an xlsx file at `path`,
/// with 卡序号, 面值 and 批次号 as number cells so Excel sums and sorts them.
fn write_xlsx(
    headers: &[String],
    receiver: std::sync::mpsc::Receiver<Vec<Vec<String>>>,
    path: &Path,
) -> ApiResult<()> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook
        .add_worksheet_with_constant_memory()
        .map_err(xlsx_err)?;
    sheet.set_name("卡券").map_err(xlsx_err)?;
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string(0, c as u16, h).map_err(xlsx_err)?;
    }
    // 卡序号, 面值 and 批次号 are numbers, so Excel sums and sorts them.
    let money = rust_xlsxwriter::Format::new().set_num_format("0.00");
    let plain = rust_xlsxwriter::Format::new();
    let numeric: Vec<Option<&rust_xlsxwriter::Format>> = headers
        .iter()
        .map(|h| {
            // The header in either language names its column.
            let is = |zh: &str| *h == zh || *h == crate::i18n::Lang::En.text(zh);
            if is("卡券面值(元)") {
                Some(&money)
            } else if is("卡序号") || is("批次号") {
                Some(&plain)
            } else {
                None
            }
        })
        .collect();
    let mut next_row = 1u32;
    for page in receiver {
        for cells in page {
            for (c, cell) in cells.iter().enumerate() {
                let number = numeric[c].and_then(|f| Some((cell.parse::<f64>().ok()?, f)));
                match number {
                    Some((n, format)) => sheet
                        .write_number_with_format(next_row, c as u16, n, format)
                        .map(|_| ()),
                    None => sheet.write_string(next_row, c as u16, cell).map(|_| ()),
                }
                .map_err(xlsx_err)?;
            }
            next_row += 1;
        }
    }
    workbook.save(path).map_err(xlsx_err)
}

/// Writes the cards to `path`; returns how many were written.
pub async fn export_cards(
    request: &ExportRequest<'_>,
    format: ExportFormat,
    path: &Path,
) -> ApiResult<i64> {
    match format {
        ExportFormat::Xlsx => {
            let total = request
                .store
                .count_cards(request.merchant_id, request.filter)
                .await?;
            if total >= XLSX_ROWS_MAX {
                return Err(ApiError::invalid(format!(
                    "xlsx 一个表最多 {} 行：请缩小筛选范围或导出 CSV",
                    XLSX_ROWS_MAX - 1
                )));
            }
            // The workbook is written on its own thread while this task reads
            // and decrypts the next page, so both cores share the export.
            let (sender, receiver) =
                std::sync::mpsc::sync_channel::<Vec<Vec<String>>>(EXPORT_PAGES_AHEAD);
            let headers = headers(request.with_secrets, request.lang);
            let path = path.to_owned();
            let writer = tokio::task::spawn_blocking(move || write_xlsx(&headers, receiver, &path));
            let n = for_each_page(
                request,
                (CellWriter::new(request), sender),
                |(cell_writer, sender), page| {
                    let rows = page
                        .iter()
                        .map(|row| cell_writer.cells(row))
                        .collect::<ApiResult<Vec<_>>>()?;
                    sender
                        .send(rows)
                        .map_err(|_| ApiError::Internal("xlsx writer stopped".into()))
                },
            )
            .await
            .map(|(n, state)| {
                drop(state);
                n
            });
            let written = writer
                .await
                .map_err(|e| ApiError::Internal(format!("xlsx writer failed: {e}")))?;
            // A writer error explains a failed send, so it goes first.
            written?;
            n
        }
        ExportFormat::Csv => {
            let file = std::fs::File::create(path)
                .map_err(|e| ApiError::Internal(format!("create export file: {e}")))?;
            let mut out = std::io::BufWriter::new(file);
            out.write_all(b"\xEF\xBB\xBF")
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let mut writer = csv::Writer::from_writer(out);
            writer
                .write_record(headers(request.with_secrets, request.lang))
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let (n, (mut writer, _)) = for_each_page(
                request,
                (writer, CellWriter::new(request)),
                |(writer, cell_writer), page| {
                    for row in page {
                        writer
                            .write_record(cell_writer.cells(row)?)
                            .map_err(|e| ApiError::Internal(e.to_string()))?;
                    }
                    Ok(())
                },
            )
            .await?;
            crate::off_runtime(move || writer.flush())
                .await?
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok(n)
        }
    }
}

/// Writes a zip of QR images, one per card, named by card number.
pub async fn export_qr_codes(
    request: &ExportRequest<'_>,
    image: QrImageFormat,
    path: &Path,
) -> ApiResult<i64> {
    let file = std::fs::File::create(path)
        .map_err(|e| ApiError::Internal(format!("create export file: {e}")))?;
    let zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    /// What each page of a QR export needs.
    struct QrZip {
        zip: zip::ZipWriter<std::io::BufWriter<std::fs::File>>,
        image: QrImageFormat,
        public_url: String,
        merchant_id: i64,
    }
    let state = QrZip {
        zip,
        image,
        public_url: request.public_url.to_owned(),
        merchant_id: request.merchant_id,
    };
    let (n, state) = for_each_page(request, state, |state, page| {
        let options = zip::write::SimpleFileOptions::default();
        for row in page {
            let content = qr_content(&state.public_url, state.merchant_id, &row.card.number);
            let code = qrcode::QrCode::new(content.as_bytes())
                .map_err(|e| ApiError::Internal(format!("qr: {e}")))?;
            let (name, bytes) = match state.image {
                QrImageFormat::Svg => (
                    format!("{}.svg", row.card.number),
                    qr_svg(&code).into_bytes(),
                ),
                QrImageFormat::Png => (format!("{}.png", row.card.number), qr_png(&code, 8)),
            };
            state.zip.start_file(name, options).map_err(zip_err)?;
            state
                .zip
                .write_all(&bytes)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        Ok(())
    })
    .await?;
    crate::off_runtime(move || state.zip.finish().map(drop))
        .await?
        .map_err(zip_err)?;
    Ok(n)
}

fn zip_err(error: zip::result::ZipError) -> ApiError {
    ApiError::Internal(format!("zip: {error}"))
}

/// A template's codes in plaintext as xlsx or CSV, for the print shop, with
/// each code's QR content (the exchange centre with the code after `#`).
/// Returns the file and how many codes it holds. Callers check the
/// permission and write the audit record. The headers and states are in
/// `lang`; the CLI writes Chinese.
#[allow(clippy::too_many_arguments)]
pub async fn export_codes_file(
    store: &dyn kaquan_core::store::Store,
    master: &kaquan_core::secrets::MasterKey,
    public_url: &str,
    merchant_id: i64,
    template_id: i64,
    format: ExportFormat,
    lang: crate::i18n::Lang,
) -> ApiResult<(Vec<u8>, i64)> {
    const HEADERS: [&str; 8] = [
        "兑换码",
        "面额",
        "状态",
        "使用人",
        "兑换时间",
        "订单号",
        "有效期至",
        "二维码内容",
    ];
    let headers = lang.headers(&HEADERS);
    // The runtime's thread only reads the codes; opening them and writing
    // the file run on the blocking pool (100,000 codes take a while).
    let mut codes = Vec::new();
    let mut after = 0i64;
    while (codes.len() as i64) < kaquan_core::code::OFFLINE_CODES_MAX {
        let page = store
            .codes_after(merchant_id, template_id, after, 1000)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        codes.extend(page);
    }
    codes.truncate(kaquan_core::code::OFFLINE_CODES_MAX as usize);
    let (master, public_url) = (master.clone(), public_url.to_owned());
    crate::off_runtime(move || -> ApiResult<(Vec<u8>, i64)> {
        let master = &master;
        let mut rows: Vec<[String; 8]> = Vec::with_capacity(codes.len());
        for c in &codes {
            let plain = c.plaintext(master, merchant_id);
            let qr = if plain.is_empty() {
                String::new()
            } else {
                format!(
                    "{public_url}{}#code={plain}",
                    crate::exchange::centre_path(merchant_id)
                )
            };
            rows.push(
                [
                    plain,
                    format_yuan(c.face_value_fen),
                    lang.text(c.state.label_zh()),
                    c.customer_label.clone().unwrap_or_default(),
                    c.redeemed_at.map(format_datetime).unwrap_or_default(),
                    c.order_id.clone().unwrap_or_default(),
                    c.valid_until.map(format_date).unwrap_or_default(),
                    qr,
                ]
                .map(|cell| escape_formula(&cell)),
            );
        }
        let bytes = match format {
            ExportFormat::Xlsx => {
                let mut workbook = rust_xlsxwriter::Workbook::new();
                let sheet = workbook.add_worksheet();
                let xlsx = |e: rust_xlsxwriter::XlsxError| ApiError::Internal(format!("xlsx: {e}"));
                let all = std::iter::once(headers.as_slice()).chain(rows.iter().map(|r| &r[..]));
                for (row, cells) in all.enumerate() {
                    for (col, text) in cells.iter().enumerate() {
                        sheet
                            .write_string(row as u32, col as u16, text)
                            .map_err(xlsx)?;
                    }
                }
                workbook.save_to_buffer().map_err(xlsx)?
            }
            ExportFormat::Csv => {
                let csv_err = |e: csv::Error| ApiError::Internal(format!("csv: {e}"));
                let mut writer = csv::Writer::from_writer(Vec::new());
                writer.write_record(&headers).map_err(csv_err)?;
                for cells in &rows {
                    writer.write_record(cells).map_err(csv_err)?;
                }
                writer
                    .into_inner()
                    .map_err(|e| ApiError::Internal(format!("csv: {e}")))?
            }
        };
        Ok((bytes, rows.len() as i64))
    })
    .await?
}

#[cfg(test)]
mod slot_tests {
    use super::*;

    #[test]
    fn a_merchant_runs_at_most_two_exports_at_once() {
        let slots = std::sync::Arc::new(ExportSlots::default());
        let first = slots.take(1).unwrap();
        let _second = slots.take(1).unwrap();
        let refused = slots.take(1).err().unwrap();
        assert_eq!(refused.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.code(), "exports_busy");
        let _other_merchant = slots.take(2).unwrap();
        drop(first);
        assert!(slots.take(1).is_ok(), "a finished export frees its slot");
    }
}

/// Modules of quiet zone around a QR code.
const QR_QUIET_MODULES: usize = 4;

fn dark_modules(code: &qrcode::QrCode) -> (usize, Vec<bool>) {
    let width = code.width();
    let colors = code.to_colors();
    (
        width,
        colors.iter().map(|c| *c == qrcode::Color::Dark).collect(),
    )
}

pub fn qr_svg(code: &qrcode::QrCode) -> String {
    let (width, dark) = dark_modules(code);
    let size = width + 2 * QR_QUIET_MODULES;
    let mut path = String::new();
    for (idx, _) in dark.iter().enumerate().filter(|(_, d)| **d) {
        let (x, y) = (
            idx % width + QR_QUIET_MODULES,
            idx / width + QR_QUIET_MODULES,
        );
        path.push_str(&format!("M{x} {y}h1v1h-1z"));
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" width=\"{}\" height=\"{}\" shape-rendering=\"crispEdges\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>",
        size * 8,
        size * 8
    )
}

/// A greyscale PNG, `scale` pixels per module.
pub fn qr_png(code: &qrcode::QrCode, scale: usize) -> Vec<u8> {
    let (width, dark) = dark_modules(code);
    let side = (width + 2 * QR_QUIET_MODULES) * scale;
    let mut raw = Vec::with_capacity(side * (side + 1));
    for py in 0..side {
        raw.push(0); // filter: none
        for px in 0..side {
            let (mx, my) = (px / scale, py / scale);
            let inside = (QR_QUIET_MODULES..QR_QUIET_MODULES + width).contains(&mx)
                && (QR_QUIET_MODULES..QR_QUIET_MODULES + width).contains(&my);
            let is_dark = inside && dark[(my - QR_QUIET_MODULES) * width + (mx - QR_QUIET_MODULES)];
            raw.push(if is_dark { 0 } else { 255 });
        }
    }
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(&raw)
        .expect("writing to memory cannot fail");
    let compressed = encoder.finish().expect("writing to memory cannot fail");
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&(side as u32).to_be_bytes());
    header.extend_from_slice(&(side as u32).to_be_bytes());
    header.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale, deflate, no filter, no interlace
    for (kind, data) in [
        (b"IHDR", header.as_slice()),
        (b"IDAT", compressed.as_slice()),
        (b"IEND", &[][..]),
    ] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        png.extend_from_slice(&crc.finalize().to_be_bytes());
    }
    png
}

/// A file download response from bytes in memory.
pub fn download(bytes: Vec<u8>, file_name: &str, content_type: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, attachment(file_name)),
        ],
        bytes,
    )
        .into_response()
}

/// Streams a finished export file to the client. The file is unlinked
/// first: the open handle keeps it readable and nothing is left behind.
pub async fn stream_file(path: &Path, file_name: &str, content_type: &str) -> ApiResult<Response> {
    let response = stream_kept_file(path, file_name, content_type).await?;
    let _ = tokio::fs::remove_file(path).await;
    Ok(response)
}

/// Streams a file that stays where it is (a background export, which may
/// be downloaded again until it expires).
pub async fn stream_kept_file(
    path: &Path,
    file_name: &str,
    content_type: &str,
) -> ApiResult<Response> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| ApiError::Internal(format!("open export: {e}")))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, attachment(file_name)),
        ],
        body,
    )
        .into_response())
}

/// `Content-Disposition` for a download with a UTF-8 file name.
pub fn attachment(file_name: &str) -> String {
    let encoded: String = file_name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let ascii: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// A path for a temporary export file.
pub fn temp_export_path(extension: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "kaquan-export-{}.{extension}",
        kaquan_core::secrets::random_token_hex(8)
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_public_address_makes_qr_codes_that_open_on_a_phone() {
        use super::public_url_problem;
        for ok in [
            "https://card.example.com",
            "http://36.110.1.2:8080",
            "https://卡券.中国",
        ] {
            assert_eq!(public_url_problem(ok), None, "{ok}");
        }
        for dead in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://192.168.1.5",
            "http://10.0.0.2",
            "http://[::1]:8080",
            "http://shop-server",
            "not a url",
        ] {
            assert!(public_url_problem(dead).is_some(), "{dead}");
        }
    }

    use super::*;

    #[test]
    fn formula_triggers_are_escaped_and_plain_text_is_not() {
        for (input, expected) in [
            ("=1+2", "'=1+2"),
            ("+86", "'+86"),
            ("-5", "'-5"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("中秋礼盒", "中秋礼盒"),
            ("", ""),
        ] {
            assert_eq!(escape_formula(input), expected);
        }
    }

    #[test]
    fn download_names_keep_chinese_characters_encoded() {
        assert_eq!(
            attachment("卡.csv"),
            "attachment; filename=\"_.csv\"; filename*=UTF-8''%E5%8D%A1.csv"
        );
    }
}

/// One kind of export: the cards as a table, or their QR codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    Cards(ExportFormat),
    QrCodes(QrImageFormat),
}

impl ExportKind {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Cards(ExportFormat::Xlsx) => "xlsx",
            Self::Cards(ExportFormat::Csv) => "csv",
            Self::QrCodes(_) => "zip",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Cards(ExportFormat::Xlsx) => XLSX_CONTENT_TYPE,
            Self::Cards(ExportFormat::Csv) => "text/csv; charset=utf-8",
            Self::QrCodes(_) => "application/zip",
        }
    }

    /// The file's name says what it holds: `卡号密码-588卡-批次3-20261201.xlsx`,
    /// `卡券数据-…`, `二维码-….zip` (the batch's name and id when the
    /// export is of one batch; the day it was made).
    pub fn file_name(self, with_secrets: bool, batch: Option<(i64, &str)>, now: i64) -> String {
        let what = match self {
            Self::Cards(_) if with_secrets => "卡号密码",
            Self::Cards(_) => "卡券数据",
            Self::QrCodes(_) => "二维码",
        };
        let mut name = what.to_owned();
        if let Some((id, batch_name)) = batch {
            let safe: String = batch_name
                .chars()
                .filter(|c| !c.is_control() && !r#"/\:*?"<>|"#.contains(*c))
                .map(|c| if c.is_whitespace() { '_' } else { c })
                .take(40)
                .collect();
            if !safe.is_empty() {
                name.push('-');
                name.push_str(&safe);
            }
            name.push_str(&format!("-批次{id}"));
        }
        let day = format_date(now).replace('-', "");
        format!("{name}-{day}.{}", self.extension())
    }

    /// The audit log's name for this export.
    pub fn action(self) -> &'static str {
        match self {
            Self::Cards(_) => "export_cards",
            Self::QrCodes(_) => "export_qr_codes",
        }
    }

    /// Writes the export to `path` and returns how many cards it holds; a
    /// failed export leaves no file behind.
    pub async fn write(self, request: &ExportRequest<'_>, path: &Path) -> ApiResult<i64> {
        let result = match self {
            Self::Cards(format) => export_cards(request, format, path).await,
            Self::QrCodes(image) => export_qr_codes(request, image, path).await,
        };
        if result.is_err() {
            let _ = std::fs::remove_file(path);
        }
        result
    }

    /// What the audit log records beside the filter.
    pub fn audit_detail(self, with_secrets: bool) -> String {
        format!("format={} with_secrets={with_secrets}", self.extension())
    }
}

/// Seals the file `plain` to a print shop's age key into `output`.
pub fn seal_file(
    plain: &Path,
    recipient: &kaquan_core::age::Recipient,
    output: &Path,
) -> std::io::Result<()> {
    let mut input = std::io::BufReader::new(std::fs::File::open(plain)?);
    let mut sealed = std::io::BufWriter::new(std::fs::File::create(output)?);
    kaquan_core::age::encrypt(recipient, &mut input, &mut sealed)?;
    std::io::Write::flush(&mut sealed)
}
