//! One error type for every handler, one JSON envelope for every API error:
//! `{"error": {"code": "...", "message": "...", "details": [...]}}`.
//! 4xx carry a safe message; 5xx are opaque to the client and logged once.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kaquan_core::batch::usecases::{ImportError, RowError};
use kaquan_core::ledger::Refusal;
use kaquan_core::StoreError;
use serde::Serialize;

#[derive(Debug)]
pub enum ApiError {
    Unauthenticated,
    Forbidden(&'static str),
    NotFound,
    /// Bad input: the message and any per-field or per-row details.
    Invalid(String, Vec<String>),
    ImportRows(Vec<RowError>),
    Conflict(String),
    /// A store conflict no handler answered itself: its own stable code.
    StoreConflict(kaquan_core::Conflict),
    TooManyAttempts {
        retry_after_seconds: i64,
    },
    /// A signed open-API request that does not check out (401).
    BadSignature(&'static str),
    /// A ledger or code call that changed nothing, with its machine code.
    Refused(Refusal),
    /// A coupon call that changed nothing, with its precise reason.
    CouponRefused(kaquan_core::coupon::usage::CouponRefusal),
    /// A call on a member that changed nothing.
    MemberRefused(kaquan_core::member::operation::MemberRefusal),
    /// A 支付后赠会员卡 rule that could not be saved.
    RuleRefused(kaquan_core::member::pay_gift::RuleRefusal),
    /// 增加库存 with 券点 that changed nothing.
    StockRefused(kaquan_core::credit::StockRefusal),
    /// A paid event that recorded nothing.
    OrderRefused(kaquan_core::ecard::OrderRefusal),
    /// A 核销 of an e-card that marked nothing.
    EcardRefused(kaquan_core::ecard::EcardRefusal),
    /// The request itself does not fit: not JSON, the wrong content type,
    /// too large, an unknown route or method, an unknown, missing or
    /// mistyped field, a control character. `code` is stable for programs.
    Malformed {
        status: StatusCode,
        code: &'static str,
        message: String,
        details: Vec<String>,
    },
    Internal(String),
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    details: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rows: Vec<RowErrorDto>,
}

#[derive(Serialize)]
pub struct RowErrorDto {
    pub line: usize,
    pub message: String,
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into(), Vec::new())
    }

    pub fn malformed(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::Malformed {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Malformed { status, .. } => *status,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Invalid(..) | Self::ImportRows(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) | Self::StoreConflict(_) => StatusCode::CONFLICT,
            Self::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BadSignature(_) => StatusCode::UNAUTHORIZED,
            Self::Refused(refusal) => match refusal {
                Refusal::CodeRefused
                | Refusal::InsufficientBalance
                | Refusal::RefundExceedsSpend => StatusCode::UNPROCESSABLE_ENTITY,
                Refusal::SpendNotFound
                | Refusal::CustomerNotFound
                | Refusal::ProductUnavailable
                | Refusal::BatchNotFound
                | Refusal::SaleNotFound => StatusCode::NOT_FOUND,
                Refusal::OrderMismatch
                | Refusal::IdempotencyMismatch
                | Refusal::CardsOutOfStock => StatusCode::CONFLICT,
                Refusal::Locked { .. } => StatusCode::TOO_MANY_REQUESTS,
                Refusal::NonceReused => StatusCode::UNAUTHORIZED,
            },
            Self::CouponRefused(refusal) => coupon_status(*refusal),
            Self::MemberRefused(refusal) => member_status(*refusal),
            Self::RuleRefused(kaquan_core::member::pay_gift::RuleRefusal::ProgramNotFound) => {
                StatusCode::NOT_FOUND
            }
            Self::RuleRefused(_) => StatusCode::CONFLICT,
            Self::StockRefused(refusal) => {
                use kaquan_core::credit::StockRefusal as S;
                match refusal {
                    S::ProgramNotFound => StatusCode::NOT_FOUND,
                    S::BadUnits => StatusCode::UNPROCESSABLE_ENTITY,
                    S::NotShared | S::ProgramClosed | S::QuantityChanged | S::Insufficient(_) => {
                        StatusCode::CONFLICT
                    }
                }
            }
            Self::OrderRefused(kaquan_core::ecard::OrderRefusal::UnknownListing { .. }) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::OrderRefused(_) => StatusCode::CONFLICT,
            Self::EcardRefused(kaquan_core::ecard::EcardRefusal::UnknownCard) => {
                StatusCode::NOT_FOUND
            }
            Self::EcardRefused(_) => StatusCode::CONFLICT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message a person may see (never internal details).
    pub fn public_message(&self) -> String {
        match self {
            Self::Unauthenticated => "请先登录".into(),
            Self::Forbidden(what) => format!("没有权限：{what}"),
            Self::NotFound => "找不到该记录".into(),
            Self::Invalid(message, _) | Self::Malformed { message, .. } => message.clone(),
            Self::ImportRows(rows) => format!("文件有 {} 行错误，没有导入任何一行", rows.len()),
            Self::Conflict(message) => message.clone(),
            Self::StoreConflict(conflict) => conflict_answer(conflict).1,
            Self::TooManyAttempts {
                retry_after_seconds,
            } if *retry_after_seconds >= 60 => {
                format!(
                    "尝试次数过多，请 {} 分钟后再试",
                    (retry_after_seconds + 59) / 60
                )
            }
            Self::TooManyAttempts {
                retry_after_seconds,
            } => {
                format!("尝试次数过多，请 {retry_after_seconds} 秒后再试")
            }
            Self::BadSignature(why) => format!("签名校验失败：{why}"),
            Self::Refused(refusal) => refusal.message_zh(),
            Self::CouponRefused(refusal) => refusal.message_zh(),
            Self::MemberRefused(refusal) => refusal.message_zh().into(),
            Self::RuleRefused(refusal) => refusal.message_zh(),
            Self::StockRefused(refusal) => refusal.message_zh(),
            Self::OrderRefused(refusal) => refusal.message_zh(),
            Self::EcardRefused(refusal) => refusal.message_zh().into(),
            Self::Internal(_) => "服务器内部错误".into(),
        }
    }

    /// The stable machine code of the envelope.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed { code, .. } => code,
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound => "not_found",
            Self::Invalid(..) => "invalid",
            Self::ImportRows(_) => "import_rows_invalid",
            Self::Conflict(_) => "conflict",
            Self::StoreConflict(conflict) => conflict_answer(conflict).0,
            Self::TooManyAttempts { .. } => "too_many_attempts",
            Self::BadSignature(_) => "bad_signature",
            Self::Refused(refusal) => refusal.code(),
            Self::CouponRefused(refusal) => refusal.code(),
            Self::MemberRefused(refusal) => refusal.code(),
            Self::RuleRefused(refusal) => refusal.code(),
            Self::StockRefused(refusal) => refusal.code(),
            Self::OrderRefused(refusal) => refusal.code(),
            Self::EcardRefused(refusal) => refusal.code(),
            Self::Internal(_) => "internal",
        }
    }
}

/// The status of a coupon refusal: 404 for nothing by that name, 429 for
/// a locked verifier, 401 for a reused nonce, 409 for what the coupon's or
/// program's state refuses, 422 for what the request asks wrongly.
fn coupon_status(refusal: kaquan_core::coupon::usage::CouponRefusal) -> StatusCode {
    use kaquan_core::coupon::usage::CouponRefusal as R;
    match refusal {
        r if r.is_not_found() => StatusCode::NOT_FOUND,
        R::Locked { .. } => StatusCode::TOO_MANY_REQUESTS,
        R::NonceReused => StatusCode::UNAUTHORIZED,
        R::BelowThreshold { .. }
        | R::LocationRequired
        | R::RotatingCodeRequired
        | R::NotAnExchange
        | R::OwnGift => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::CONFLICT,
    }
}

/// The status of a refused call on a member: 404 for nothing by that
/// name, 401 for a reused nonce, 409 for what state or an earlier call
/// refuses, 422 for what the request asks beyond the rules or the funds.
fn member_status(refusal: kaquan_core::member::operation::MemberRefusal) -> StatusCode {
    use kaquan_core::member::operation::MemberRefusal as R;
    match refusal {
        R::ProgramNotFound | R::NotAMember | R::PaymentNotFound => StatusCode::NOT_FOUND,
        R::NonceReused => StatusCode::UNAUTHORIZED,
        R::ProgramDisabled | R::PaymentExists | R::IdempotencyMismatch => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// The stable error code (the API's contract) and the message of each store conflict.
fn conflict_answer(conflict: &kaquan_core::Conflict) -> (&'static str, String) {
    use kaquan_core::Conflict as C;
    match conflict {
        C::Duplicate => ("conflict", "与已有记录冲突（名称或卡号重复）".into()),
        C::CardNotUsable => (
            "card_not_usable",
            "卡不可用（未激活、已使用、已作废或不在有效期内）".into(),
        ),
        C::OrderNotPending { order_id } => (
            "order_not_pending",
            format!("订单 {order_id} 不是待发货订单"),
        ),
        C::CardNotUsed => ("card_not_used", "订单的卡已不是已使用状态".into()),
        C::CodesChanged => (
            "codes_changed",
            "未使用的兑换码数量已变化，请刷新后再确认".into(),
        ),
        C::ApiKeysFull => ("api_keys_full", "最多同时启用两个密钥，请先停用一个".into()),
        C::NonceUsed => ("nonce_reused", "请求的 nonce 已使用过".into()),
        C::DeliveryLeaseLost => ("conflict", "推送正在由另一进程处理".into()),
        C::ProgramChanged => (
            "coupon_program_changed",
            "该优惠券刚被修改过，请刷新后再保存".into(),
        ),
        // Handled by the use case (`verify_code`), never answered.
        C::LookUpFirst => ("conflict", "请重试".into()),
        C::CreditsChanged => (
            "credits_changed",
            "该商户的券点余额已变化，请刷新后确认是否还需赠送".into(),
        ),
        C::DailyCapReached => (
            "daily_cap_reached",
            "超过每人每日激活上限，请提交审批".into(),
        ),
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

impl From<kaquan_core::member::operation::MemberRefusal> for ApiError {
    fn from(refusal: kaquan_core::member::operation::MemberRefusal) -> Self {
        Self::MemberRefused(refusal)
    }
}

impl From<kaquan_core::coupon::usage::CouponRefusal> for ApiError {
    fn from(refusal: kaquan_core::coupon::usage::CouponRefusal) -> Self {
        Self::CouponRefused(refusal)
    }
}

impl From<kaquan_core::credit::CreditError> for ApiError {
    fn from(error: kaquan_core::credit::CreditError) -> Self {
        use kaquan_core::credit::CreditError as E;
        match error {
            E::Invalid(message) => Self::invalid(message),
            E::Stock(refusal) => Self::StockRefused(refusal),
            E::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(conflict) => Self::StoreConflict(conflict),
            StoreError::Invalid(_) => Self::invalid("数据不符合规则"),
            StoreError::Backend(message) => Self::Internal(message),
        }
    }
}

impl From<kaquan_core::code::CodeTemplateError> for ApiError {
    fn from(error: kaquan_core::code::CodeTemplateError) -> Self {
        match error {
            kaquan_core::code::CodeTemplateError::Invalid(errors) => {
                Self::Invalid(errors.join("；"), errors)
            }
            kaquan_core::code::CodeTemplateError::Store(e) => e.into(),
        }
    }
}

impl From<ImportError> for ApiError {
    fn from(error: ImportError) -> Self {
        match error {
            ImportError::Rows(rows) => Self::ImportRows(rows),
            ImportError::Invalid(message) => Self::invalid(message),
            ImportError::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(error = %cause, "request failed");
        }
        let status = self.status();
        let (details, rows) = match &self {
            Self::Invalid(_, details) | Self::Malformed { details, .. } => {
                (details.clone(), Vec::new())
            }
            Self::ImportRows(rows) => (
                Vec::new(),
                rows.iter()
                    .map(|r| RowErrorDto {
                        line: r.line,
                        message: r.message.clone(),
                    })
                    .collect(),
            ),
            _ => (Vec::new(), Vec::new()),
        };
        let body = Envelope {
            error: Body {
                code: self.code(),
                message: self.public_message(),
                details,
                rows,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        let retry_after = match self {
            Self::TooManyAttempts {
                retry_after_seconds,
            }
            | Self::Refused(Refusal::Locked {
                retry_after_seconds,
            })
            | Self::CouponRefused(kaquan_core::coupon::usage::CouponRefusal::Locked {
                retry_after_seconds,
            }) => Some(retry_after_seconds),
            _ => None,
        };
        if let Some(retry_after_seconds) = retry_after {
            if let Ok(value) = retry_after_seconds.to_string().parse() {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, value);
            }
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
