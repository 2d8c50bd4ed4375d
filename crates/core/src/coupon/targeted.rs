//! 定向发放: one coupon for each listed customer, named by a mobile
//! number or by the mall's customer id, all or none. The console (typed or
//! uploaded list), the staff API and `kaquan coupons issue` share it.

use super::usage::{CouponRefusal, CouponSource};
use super::usecases::{issue_coupons, Recipients, ISSUE_COUPONS_MAX};
use crate::audit::Actor;
use crate::batch::usecases::RowError;
use crate::ledger::ApiCall;
use crate::secrets::MasterKey;
use crate::store::Store;
use crate::{StoreError, StoreResult};
use std::sync::atomic::{AtomicI64, Ordering};

/// One entry of a list: a mobile number or the mall's customer id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recipient {
    pub phone: Option<String>,
    pub customer_id: Option<String>,
}

impl Recipient {
    /// A list's cell: 11 digits starting with 1 are a mobile number,
    /// anything else the mall's customer id.
    pub fn of_cell(cell: &str) -> Self {
        let cell = cell.trim();
        if cell.len() == 11 && cell.starts_with('1') && cell.bytes().all(|b| b.is_ascii_digit()) {
            Self {
                phone: Some(cell.to_owned()),
                customer_id: None,
            }
        } else {
            Self {
                phone: None,
                customer_id: Some(cell.to_owned()),
            }
        }
    }
}

/// Why a list issued nothing.
#[derive(Debug, PartialEq)]
pub enum ListRefusal {
    /// Empty, or longer than [`ISSUE_COUPONS_MAX`].
    Size,
    /// Each bad entry with its 1-based position in the list.
    Rows(Vec<RowError>),
    /// The program refused (stock, state, a customer's claim limit).
    Refused(CouponRefusal),
}

impl ListRefusal {
    pub fn message(&self) -> String {
        match self {
            ListRefusal::Size => format!("每次发放 1–{ISSUE_COUPONS_MAX} 张"),
            ListRefusal::Rows(rows) => format!("名单有 {} 行有误，未发放", rows.len()),
            ListRefusal::Refused(refusal) => refusal.message_zh(),
        }
    }
}

/// Names each bad row by its line in the file the list was read from
/// (`lines[i]` is the line of the list's entry `i + 1`).
pub fn on_file_lines(rows: Vec<RowError>, lines: &[usize]) -> Vec<RowError> {
    rows.into_iter()
        .map(|mut r| {
            r.line = lines.get(r.line.wrapping_sub(1)).copied().unwrap_or(r.line);
            r
        })
        .collect()
}

/// What a list issued.
#[derive(Debug, Clone, PartialEq)]
pub struct ListIssued {
    pub program_id: i64,
    pub n_issued: i64,
    pub stock_left: i64,
}

/// Finds or makes the customer each entry names; every bad entry is
/// reported, and then nothing is issued. `progress` counts entries done.
pub async fn resolve_recipients(
    store: &dyn Store,
    merchant_id: i64,
    recipients: &[Recipient],
    progress: Option<&AtomicI64>,
    now: i64,
) -> StoreResult<Result<Vec<i64>, ListRefusal>> {
    if recipients.is_empty() || recipients.len() as i64 > ISSUE_COUPONS_MAX {
        return Ok(Err(ListRefusal::Size));
    }
    let mut rows = Vec::new();
    let mut ids = Vec::with_capacity(recipients.len());
    for (idx, r) in recipients.iter().enumerate() {
        let bad = |message: &str| RowError {
            line: idx + 1,
            message: message.to_owned(),
        };
        let phone = r.phone.as_deref().map(str::trim).filter(|p| !p.is_empty());
        let external = r
            .customer_id
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty());
        match (phone, external) {
            (Some(phone), None) => match crate::pickup::mobile_number(phone) {
                Some(phone) => ids.push(phone_customer(store, merchant_id, &phone, now).await?),
                None => rows.push(bad("手机号应为 11 位手机号码")),
            },
            (None, Some(id)) => match crate::ledger::check_reference("customer_id", id) {
                Ok(id) => ids.push(store.ensure_customer(merchant_id, &id, now).await?.id),
                Err(e) => rows.push(bad(&e)),
            },
            _ => rows.push(bad("须填写手机号或商城顾客编号之一")),
        }
        if let Some(progress) = progress {
            progress.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(if rows.is_empty() {
        Ok(ids)
    } else {
        Err(ListRefusal::Rows(rows))
    })
}

/// The customer with this phone, made (without a password) when new.
async fn phone_customer(
    store: &dyn Store,
    merchant_id: i64,
    phone: &str,
    now: i64,
) -> StoreResult<i64> {
    if let Some((customer, _)) = store.find_phone_customer(merchant_id, phone).await? {
        return Ok(customer.id);
    }
    match store
        .create_phone_customer(merchant_id, phone, "", now)
        .await
    {
        Ok(customer) => Ok(customer.id),
        // Made by a request racing this one.
        Err(StoreError::Conflict(_)) => Ok(store
            .find_phone_customer(merchant_id, phone)
            .await?
            .ok_or(StoreError::NotFound)?
            .0
            .id),
        Err(e) => Err(e),
    }
}

/// A 定向发放 as staff or an operator asks for it.
pub struct ListIssue<'a> {
    pub merchant_id: i64,
    pub program_id: i64,
    pub recipients: &'a [Recipient],
    pub actor: &'a Actor,
    pub now: i64,
}

/// 定向发放: one coupon per entry (a customer listed twice gets two), all
/// or none; `progress` counts the entries resolved.
pub async fn issue_to_list(
    store: &dyn Store,
    master: &MasterKey,
    list: &ListIssue<'_>,
    progress: Option<&AtomicI64>,
) -> StoreResult<Result<ListIssued, ListRefusal>> {
    let ListIssue {
        merchant_id,
        program_id,
        recipients,
        actor,
        now,
    } = *list;
    let program = store.get_coupon_program(merchant_id, program_id).await?;
    let customer_ids =
        match resolve_recipients(store, merchant_id, recipients, progress, now).await? {
            Ok(ids) => ids,
            Err(refusal) => return Ok(Err(refusal)),
        };
    let n_issued = customer_ids.len() as i64;
    let called = issue_coupons(
        store,
        master,
        &ApiCall::default(),
        &program,
        Recipients {
            source: CouponSource::Targeted,
            customer_ids,
            order: None,
            shared_by: None,
        },
        actor,
        now,
    )
    .await?;
    if let Err(refusal) = called.result {
        return Ok(Err(ListRefusal::Refused(refusal)));
    }
    let program = store.get_coupon_program(merchant_id, program_id).await?;
    Ok(Ok(ListIssued {
        program_id,
        n_issued,
        stock_left: program.stock_left(),
    }))
}

#[cfg(test)]
mod tests {
    use super::{ListRefusal, Recipient};
    use crate::batch::usecases::RowError;
    use crate::coupon::usage::CouponRefusal;

    #[test]
    fn a_refused_list_says_why_in_chinese() {
        assert_eq!(ListRefusal::Size.message(), "每次发放 1–10000 张");
        let row = |line| RowError {
            line,
            message: String::new(),
        };
        assert_eq!(
            ListRefusal::Rows(vec![row(2), row(5)]).message(),
            "名单有 2 行有误，未发放"
        );
        assert_eq!(
            ListRefusal::Refused(CouponRefusal::OutOfStock).message(),
            "优惠券已领完"
        );
    }

    #[test]
    fn a_cell_is_a_mobile_number_only_when_it_looks_like_one() {
        let phone = |p: &str| Recipient {
            phone: Some(p.into()),
            customer_id: None,
        };
        let id = |c: &str| Recipient {
            phone: None,
            customer_id: Some(c.into()),
        };
        assert_eq!(Recipient::of_cell(" 13800001234 "), phone("13800001234"));
        assert_eq!(Recipient::of_cell("23800001234"), id("23800001234"));
        assert_eq!(Recipient::of_cell("1380000123"), id("1380000123"));
        assert_eq!(Recipient::of_cell("138000012345"), id("138000012345"));
        assert_eq!(Recipient::of_cell("1380000123x"), id("1380000123x"));
        assert_eq!(Recipient::of_cell("u-1001"), id("u-1001"));
    }
}
