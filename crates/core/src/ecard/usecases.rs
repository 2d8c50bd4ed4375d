//! 电子卡密's use cases: sealing secrets on their way into stock, the
//! delivery link's token, kaquan's own verification codes, the import with
//! its per-row report, and the paid event.

use super::store::{
    EcardOrder, EcardStore, NewStock, OrderRefusal, OwnCode, PaidOrder, PaidOutcome, SealedStock,
};
use super::{dedupe_import, DeliveryForm, Marketplace};
use crate::audit::Actor;
use crate::secrets::{MasterKey, MerchantKeys};
use rand::Rng;

/// Most secrets one import or generation adds.
pub const IMPORT_ROWS_MAX: usize = 1_000_000;
/// Longest card number.
pub const NUMBER_CHARS_MAX: usize = 64;
/// Longest secret (a password, a code or a link).
pub const SECRET_CHARS_MAX: usize = 512;
/// Most cards one order line may take.
pub const LINE_QUANTITY_MAX: i64 = 100;
/// Most lines one order may have.
pub const ORDER_LINES_MAX: usize = 50;
/// Length of kaquan's own verification code, in digits.
pub const OWN_CODE_DIGITS: usize = 16;
/// Length of a generated stock code.
pub const GENERATED_CODE_CHARS: usize = 16;
/// Bytes of a delivery token (192 bits).
const TOKEN_BYTES: usize = 24;

/// The associated data every sealed stock copy is bound to.
const STOCK_AAD: &str = "ecard-stock";
const CODE_AAD: &str = "ecard-code";

/// The delivery link's token of an order: recomputed, never stored (its
/// hash is), so a repeated paid event answers the same link.
pub fn delivery_token(
    master: &MasterKey,
    merchant_id: i64,
    marketplace: Marketplace,
    order_id: &str,
) -> String {
    let message = format!("{merchant_id}:{}:{order_id}", marketplace.code());
    let tag = master.installation_hmac("ecard-delivery", message.as_bytes());
    crate::secrets::to_hex(&tag[..TOKEN_BYTES])
}

/// The digest that identifies a secret in stock: its number when it has
/// one, else the secret itself.
pub fn stock_digest(keys: &MerchantKeys, number: &str, secret: &str) -> Vec<u8> {
    let identity = if number.is_empty() { secret } else { number };
    keys.secret_digest(STOCK_AAD, identity).to_vec()
}

fn tail_of(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

/// Seals one number and secret for stock.
pub fn seal_stock(keys: &MerchantKeys, number: &str, secret: &str) -> SealedStock {
    SealedStock {
        digest: stock_digest(keys, number, secret),
        sealed: keys.seal(STOCK_AAD, &format!("{number}\n{secret}")),
        tail: tail_of(if number.is_empty() { secret } else { number }),
    }
}

/// Opens a sealed stock copy into its number and secret.
pub fn open_stock(keys: &MerchantKeys, sealed: &[u8]) -> Option<(String, String)> {
    let plain = keys.open(STOCK_AAD, sealed)?;
    let (number, secret) = plain.split_once('\n')?;
    Some((number.to_owned(), secret.to_owned()))
}

/// A new own verification code: the code to show once and its stored form.
pub fn new_own_code(keys: &MerchantKeys) -> (String, OwnCode) {
    let mut rng = rand::rngs::OsRng;
    let code: String = (0..OWN_CODE_DIGITS)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect();
    let stored = OwnCode {
        digest: own_code_digest(keys, &code),
        sealed: keys.seal(CODE_AAD, &code),
    };
    (code, stored)
}

/// The digest a typed or scanned own code is looked up by.
pub fn own_code_digest(keys: &MerchantKeys, code: &str) -> Vec<u8> {
    keys.secret_digest(CODE_AAD, code).to_vec()
}

pub fn open_own_code(keys: &MerchantKeys, sealed: &[u8]) -> Option<String> {
    keys.open(CODE_AAD, sealed)
}

/// `n` codes kaquan makes for stock it verifies itself: uppercase letters
/// and digits without the ones people confuse (0/O, 1/I).
pub fn generate_stock_codes(n: usize) -> Vec<String> {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut rng = rand::rngs::OsRng;
    (0..n)
        .map(|_| {
            (0..GENERATED_CODE_CHARS)
                .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
                .collect()
        })
        .collect()
}

/// The problem with one row of an import, if any: a number is needed for
/// 卡号+密码, the secret always; a link must be http(s).
pub fn check_stock_row(form: DeliveryForm, number: &str, secret: &str) -> Result<(), String> {
    if form == DeliveryForm::NumberAndPassword && number.is_empty() {
        return Err("缺少卡号".into());
    }
    if secret.is_empty() {
        return Err(match form {
            DeliveryForm::NumberAndPassword => "缺少密码",
            DeliveryForm::Link => "缺少兑换链接",
            DeliveryForm::Code | DeliveryForm::QrImage => "缺少兑换码",
        }
        .into());
    }
    if number.chars().any(char::is_control) || secret.chars().any(char::is_control) {
        return Err("含有控制字符".into());
    }
    if crate::text::is_too_long(number, NUMBER_CHARS_MAX) {
        return Err(format!("卡号最多 {NUMBER_CHARS_MAX} 个字符"));
    }
    if crate::text::is_too_long(secret, SECRET_CHARS_MAX) {
        return Err(format!("卡密最多 {SECRET_CHARS_MAX} 个字符"));
    }
    if form == DeliveryForm::Link
        && !(secret.starts_with("https://") || secret.starts_with("http://"))
    {
        return Err("兑换链接须以 http:// 或 https:// 开头".into());
    }
    Ok(())
}

/// An import has at least one row and at most [`IMPORT_ROWS_MAX`]; the
/// refusal names no row (0).
pub fn check_row_count(n: usize) -> Result<(), RowReport> {
    let message = if n == 0 {
        "文件中没有卡密".to_owned()
    } else if n > IMPORT_ROWS_MAX {
        format!("一次最多导入 {IMPORT_ROWS_MAX} 条")
    } else {
        return Ok(());
    };
    Err(RowReport { row: 0, message })
}

/// One row's fate in an import's report (rows count from 1, as a
/// spreadsheet shows them after its header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowReport {
    pub row: usize,
    pub message: String,
}

/// An import's outcome: what was stored and the rows left out as
/// duplicates; or, when any row is wrong, nothing stored and every wrong row.
#[derive(Debug)]
pub enum ImportOutcome {
    Stored {
        import: super::store::StockImport,
        skipped: Vec<RowReport>,
    },
    Refused(Vec<RowReport>),
}

/// What an import brings: the product, the file's facts and its rows.
pub struct ImportRequest<'a> {
    pub merchant_id: i64,
    pub key_version: i32,
    pub product_id: i64,
    pub file_name: String,
    pub file_digest: String,
    /// (number, secret) per row, trimmed.
    pub rows: Vec<(String, String)>,
    pub actor: &'a Actor,
    pub now: i64,
    /// Counts rows sealed, for a progress bar.
    pub progress: Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>,
}

/// Seals rows on every core: each thread a contiguous share, in order.
fn seal_all(
    keys: &MerchantKeys,
    rows: &[(String, String)],
    progress: Option<&std::sync::atomic::AtomicUsize>,
) -> Vec<SealedStock> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let share = rows.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .chunks(share)
            .map(|chunk| {
                scope.spawn(move || {
                    let mut sealed = Vec::with_capacity(chunk.len());
                    for (i, (n, s)) in chunk.iter().enumerate() {
                        sealed.push(seal_stock(keys, n, s));
                        if let Some(progress) = progress.filter(|_| i % 1024 == 1023) {
                            progress.fetch_add(1024, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    if let Some(progress) = progress {
                        progress
                            .fetch_add(chunk.len() % 1024, std::sync::atomic::Ordering::Relaxed);
                    }
                    sealed
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("sealing does not panic"))
            .collect()
    })
}

/// Imports secrets into a product's stock: every row checked first (one
/// wrong row refuses the file, listing each), duplicates within the file
/// and against all the merchant's stock left out and reported, the rest
/// sealed and stored all or nothing.
pub async fn import_stock(
    store: &dyn EcardStore,
    master: &MasterKey,
    mut request: ImportRequest<'_>,
) -> crate::StoreResult<ImportOutcome> {
    let product = store
        .get_ecard_product(request.merchant_id, request.product_id)
        .await?;
    if let Err(why) = check_row_count(request.rows.len()) {
        return Ok(ImportOutcome::Refused(vec![why]));
    }
    let form = product.fields.delivery_form;
    let wrong: Vec<RowReport> = request
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, (number, secret))| {
            check_stock_row(form, number, secret)
                .err()
                .map(|message| RowReport {
                    row: i + 1,
                    message,
                })
        })
        .collect();
    if !wrong.is_empty() {
        return Ok(ImportOutcome::Refused(wrong));
    }
    let keys = master.merchant_keys(request.merchant_id, request.key_version);
    let rows = std::mem::take(&mut request.rows);
    let progress = request.progress.clone();
    let sealed: Vec<SealedStock> =
        crate::off_thread(move || seal_all(&keys, &rows, progress.as_deref())).await?;
    let digests: Vec<Vec<u8>> = sealed.iter().map(|s| s.digest.clone()).collect();
    let known: std::collections::HashSet<Vec<u8>> = store
        .known_ecard_digests(request.merchant_id, &digests)
        .await?
        .into_iter()
        .collect();
    let (kept, dropped) = dedupe_import(&digests, |d| known.contains(d));
    let skipped = dropped
        .into_iter()
        .map(|(i, why)| RowReport {
            row: i + 1,
            message: why.into(),
        })
        .collect();
    let n_rows = sealed.len() as i64;
    let mut sealed: Vec<Option<SealedStock>> = sealed.into_iter().map(Some).collect();
    let items = kept.iter().filter_map(|&i| sealed[i].take()).collect();
    let stock = NewStock {
        merchant_id: request.merchant_id,
        product_id: product.id,
        key_version: request.key_version,
        file_name: request.file_name,
        file_digest: request.file_digest,
        n_rows,
        items,
        actor: request.actor.clone(),
        now: request.now,
    };
    let import = store.add_ecard_stock(&stock).await?;
    Ok(ImportOutcome::Stored { import, skipped })
}

/// A paid event as the marketplace sent it.
pub struct PaidEvent<'a> {
    pub merchant_id: i64,
    pub key_version: i32,
    pub marketplace: Marketplace,
    pub order_id: String,
    pub buyer_phone: String,
    pub lines: Vec<super::store::PaidLine>,
    pub actor: &'a Actor,
    pub now: i64,
}

/// Records a paid event and delivers it; answers the outcome and the
/// delivery token (the link's bearer, the same on every repeat).
pub async fn record_paid_order(
    store: &dyn EcardStore,
    master: &MasterKey,
    event: PaidEvent<'_>,
) -> crate::StoreResult<Result<(PaidOutcome, String), OrderRefusal>> {
    let token = delivery_token(
        master,
        event.merchant_id,
        event.marketplace,
        &event.order_id,
    );
    let keys = master.merchant_keys(event.merchant_id, event.key_version);
    let codes = event
        .lines
        .iter()
        .map(|l| (0..l.quantity).map(|_| new_own_code(&keys).1).collect())
        .collect();
    let paid = PaidOrder {
        merchant_id: event.merchant_id,
        marketplace: event.marketplace,
        order_id: event.order_id,
        buyer_phone: event.buyer_phone,
        lines: event.lines,
        token_hash: crate::secrets::token_hash_hex(&token),
        key_version: event.key_version,
        codes,
        actor: event.actor.clone(),
        now: event.now,
    };
    Ok(store
        .record_paid_order(&paid)
        .await?
        .map(|outcome| (outcome, token)))
}

/// 证据保留: an order with every step taken on it (allocation, delivery,
/// each reveal with time, IP and user agent, each verification and its
/// way, refunds), oldest first, and the imports its secrets came in with.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub order: EcardOrder,
    pub steps: Vec<crate::audit::AuditRecord>,
    pub imports: Vec<super::store::StockImport>,
}

/// Gathers an order's evidence from the audit log and the imports.
pub async fn evidence(
    store: &dyn crate::store::Store,
    merchant_id: i64,
    order_ref: i64,
) -> crate::StoreResult<Evidence> {
    let order = store.get_ecard_order(merchant_id, order_ref).await?;
    let target = super::audit::order_target(order_ref);
    // The text narrows the search (an index's work); the exact target
    // keeps order 1's steps apart from order 12's.
    let filter = crate::audit::AuditFilter {
        text: Some(target.clone()),
        ..Default::default()
    };
    let mut steps = Vec::new();
    for page in 1.. {
        let page = crate::store::Page::new(Some(page), Some(crate::store::PAGE_SIZE_MAX));
        let (records, _) = store.search_audit(merchant_id, &filter, page).await?;
        if records.is_empty() {
            break;
        }
        steps.extend(records.into_iter().filter(|r| r.entry.target == target));
    }
    steps.reverse();
    let mut imports = Vec::new();
    let products: std::collections::BTreeSet<i64> =
        order.lines.iter().filter_map(|l| l.product_id).collect();
    let wanted: std::collections::BTreeSet<i64> = order.cards().map(|c| c.import_id).collect();
    for product_id in products {
        let all = store.list_stock_imports(merchant_id, product_id).await?;
        imports.extend(all.into_iter().filter(|i| wanted.contains(&i.id)));
    }
    Ok(Evidence {
        order,
        steps,
        imports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> MerchantKeys {
        MasterKey::from_bytes([7; 32]).merchant_keys(1, 1)
    }

    #[test]
    fn a_sealed_secret_opens_to_its_number_and_secret_only_with_its_keys() {
        let sealed = seal_stock(&keys(), "8800123456", "pw-9981");
        assert_eq!(sealed.tail, "3456");
        assert_eq!(
            open_stock(&keys(), &sealed.sealed),
            Some(("8800123456".into(), "pw-9981".into()))
        );
        let other = MasterKey::from_bytes([8; 32]).merchant_keys(1, 1);
        assert_eq!(open_stock(&other, &sealed.sealed), None);
        assert!(!String::from_utf8_lossy(&sealed.sealed).contains("pw-9981"));
    }

    #[test]
    fn a_secret_is_identified_by_its_number_else_by_itself() {
        let k = keys();
        assert_eq!(stock_digest(&k, "A1", "x"), stock_digest(&k, "A1", "y"));
        assert_ne!(stock_digest(&k, "", "x"), stock_digest(&k, "", "y"));
        assert_eq!(seal_stock(&k, "", "CODE-77").tail, "E-77");
    }

    #[test]
    fn the_delivery_token_is_192_bits_and_the_same_for_the_same_order() {
        let master = MasterKey::from_bytes([1; 32]);
        let a = delivery_token(&master, 1, Marketplace::Pinduoduo, "O-1");
        assert_eq!(a.len(), 48);
        assert_eq!(a, delivery_token(&master, 1, Marketplace::Pinduoduo, "O-1"));
        assert_ne!(a, delivery_token(&master, 1, Marketplace::Taobao, "O-1"));
        assert_ne!(a, delivery_token(&master, 2, Marketplace::Pinduoduo, "O-1"));
        assert_ne!(a, delivery_token(&master, 1, Marketplace::Pinduoduo, "O-2"));
    }

    #[test]
    fn an_own_code_is_sixteen_digits_found_by_its_digest() {
        let k = keys();
        let (code, stored) = new_own_code(&k);
        assert_eq!(code.len(), OWN_CODE_DIGITS);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(stored.digest, own_code_digest(&k, &code));
        assert_eq!(open_own_code(&k, &stored.sealed), Some(code));
    }

    #[test]
    fn generated_codes_avoid_look_alike_characters() {
        let codes = generate_stock_codes(50);
        assert_eq!(codes.len(), 50);
        for c in &codes {
            assert_eq!(c.len(), GENERATED_CODE_CHARS);
            assert!(!c.contains(['0', 'O', '1', 'I']), "{c}");
        }
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), 50);
    }

    #[test]
    fn an_import_has_one_to_a_million_rows() {
        assert_eq!(check_row_count(1), Ok(()));
        assert_eq!(check_row_count(IMPORT_ROWS_MAX), Ok(()));
        assert_eq!(check_row_count(0).unwrap_err().message, "文件中没有卡密");
        let over = check_row_count(IMPORT_ROWS_MAX + 1).unwrap_err();
        assert_eq!((over.row, over.message.contains("1000000")), (0, true));
    }

    #[test]
    fn own_codes_have_digests_of_their_own_and_debug_shows_no_secret() {
        let k = keys();
        let a = own_code_digest(&k, "1111222233334444");
        assert_eq!(a.len(), 32);
        assert_ne!(a, own_code_digest(&k, "1111222233334445"));
        let (code, stored) = new_own_code(&k);
        assert!(!format!("{stored:?}").contains(&code));
        assert_eq!(format!("{stored:?}"), "OwnCode(<sealed>)");
        let sealed = seal_stock(&k, "8800123456", "pw-secret");
        assert_eq!(format!("{sealed:?}"), "SealedStock(…3456)");
    }

    #[test]
    fn rows_are_sealed_in_order_on_every_core() {
        let rows: Vec<(String, String)> = (0..3000)
            .map(|i| (format!("N{i}"), format!("S{i}")))
            .collect();
        let counter = std::sync::atomic::AtomicUsize::new(0);
        let sealed = seal_all(&keys(), &rows, Some(&counter));
        assert_eq!(sealed.len(), 3000);
        for (i, s) in sealed.iter().enumerate().step_by(499) {
            assert_eq!(
                open_stock(&keys(), &s.sealed),
                Some((format!("N{i}"), format!("S{i}")))
            );
        }
        assert_eq!(counter.load(std::sync::atomic::Ordering::Relaxed), 3000);
        assert!(seal_all(&keys(), &[], None).is_empty());
    }

    #[test]
    fn a_row_needs_what_its_form_delivers() {
        use DeliveryForm::*;
        assert_eq!(
            check_stock_row(NumberAndPassword, "", "p"),
            Err("缺少卡号".into())
        );
        assert_eq!(
            check_stock_row(NumberAndPassword, "n", ""),
            Err("缺少密码".into())
        );
        assert_eq!(check_stock_row(Code, "", ""), Err("缺少兑换码".into()));
        assert_eq!(check_stock_row(QrImage, "", ""), Err("缺少兑换码".into()));
        assert_eq!(check_stock_row(Link, "", ""), Err("缺少兑换链接".into()));
        assert!(check_stock_row(Link, "", "ftp://x").is_err());
        assert_eq!(check_stock_row(Link, "", "https://x.cn/r?c=1"), Ok(()));
        assert_eq!(
            check_stock_row(Code, "", "C\u{0}D"),
            Err("含有控制字符".into())
        );
        assert_eq!(
            check_stock_row(Code, "", &"x".repeat(SECRET_CHARS_MAX)),
            Ok(())
        );
        assert!(check_stock_row(Code, "", &"x".repeat(SECRET_CHARS_MAX + 1)).is_err());
        assert!(check_stock_row(Code, &"n".repeat(NUMBER_CHARS_MAX + 1), "x").is_err());
        assert_eq!(
            check_stock_row(Code, &"n".repeat(NUMBER_CHARS_MAX), "x"),
            Ok(())
        );
    }
}
