//! The shapes every list shares: the page a client asks for, the list
//! envelope `{items, total, page, page_size}`, the query of the
//! stored-value lists and pages, the count a bulk change reports, and the
//! optional dates of a filter.

use crate::error::{ApiError, ApiResult};
use kaquan_core::clock::{end_of_day, parse_date, start_of_day};
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1-based; 1 when absent.
    #[param(minimum = 1, example = 1)]
    pub page: Option<i64>,
    /// 50 when absent, at most 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub page_size: Option<i64>,
}

#[derive(Serialize)]
pub struct ListDto<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: i64,
    pub page_size: i64,
}

impl<T> ListDto<T> {
    pub fn new(items: Vec<T>, total: i64, page: ListPage) -> Self {
        Self {
            items,
            total,
            page: page.page,
            page_size: page.page_size,
        }
    }
}

/// The query of every gift-card list, page and export.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `online` or `offline` (code templates).
    #[param(pattern = "^(|online|offline)$", example = "online")]
    pub kind: Option<String>,
    /// Part of a mall id, phone or nickname (customers).
    #[param(max_length = 64, example = "1380")]
    pub search: Option<String>,
    /// 1-based; 1 when absent.
    #[param(minimum = 1, example = 1)]
    pub page: Option<i64>,
    /// 50 when absent, at most 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub page_size: Option<i64>,
    /// A notice the console's own redirects carry; programs leave it out.
    #[param(max_length = 200)]
    pub msg: Option<String>,
    /// `unused`, `used` or `voided` (a template's codes).
    #[param(pattern = "^(|unused|used|voided)$", example = "unused")]
    pub state: Option<String>,
}

impl ListQuery {
    /// The search text, bounded like every search.
    pub fn search(&self) -> ApiResult<String> {
        let search = self.search.clone().unwrap_or_default();
        crate::extract::check_chars("search", &search, kaquan_core::text::SEARCH_CHARS_MAX)?;
        Ok(search)
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"n_cards": 500}))]
pub struct ChangedDto {
    pub n_cards: i64,
}

pub fn parse_optional_date(text: Option<&str>, field: &str, end: bool) -> ApiResult<Option<i64>> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => {
            let date = parse_date(t).ok_or_else(|| {
                ApiError::invalid(format!(
                    "{field}应为 {}",
                    kaquan_core::clock::DATE_FORMAT_HINT
                ))
            })?;
            Ok(Some(if end {
                end_of_day(date)
            } else {
                start_of_day(date)
            }))
        }
    }
}
