//! The customer's 会员卡 pages (H5, phone-sized), signed in as in the
//! exchange centre (the mall's login link, or phone + password): 开卡 from
//! the program's link or QR code (a form with the phone and the fields
//! the merchant chose, or at once for a customer the mall signed in when
//! the program auto-activates), and the card: the member number as QR
//! code and barcode for the cashier, tier and discount, points and
//! balance with their statements, the custom fields and links, and the
//! member's coupons.

use crate::error::{ApiError, ApiResult};
use crate::exchange::CustomerAuthed;
use crate::extract::{Form, Path, Query};
use crate::member_programs::{discount_label, open_path};
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::Router;
use kaquan_core::audit::Actor;
use kaquan_core::clock::format_datetime;
use kaquan_core::coupon::usage::WalletTab;
use kaquan_core::customer::{check_mobile, Customer};
use kaquan_core::ledger::{ApiCall, CustomerRef, LedgerTransaction};
use kaquan_core::member::operation::{ActivateMember, MemberAction, MemberOp};
use kaquan_core::member::{
    check_birthday, ActivationField, FieldKind, Gender, Member, MemberProgram, ProgramState,
};
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/m/{merchant_id}/member-cards/{program_id}",
            get(open_page).post(open_form),
        )
        .route(
            "/m/{merchant_id}/member-cards/{program_id}/card",
            get(card_page),
        )
}

fn card_path(merchant_id: i64, program_id: i64) -> String {
    format!("{}/card", open_path(merchant_id, program_id))
}

async fn program_of(
    state: &AppState,
    merchant_id: i64,
    program_id: i64,
) -> ApiResult<MemberProgram> {
    state
        .store
        .get_member_program(merchant_id, program_id)
        .await
        .map_err(|_| ApiError::NotFound)
}

async fn member_of(
    state: &AppState,
    customer: &Customer,
    program_id: i64,
) -> ApiResult<Option<Member>> {
    Ok(state
        .store
        .find_customer_members(customer.merchant_id, customer.id)
        .await?
        .into_iter()
        .find(|m| m.program_id == program_id))
}

#[derive(Serialize)]
struct FaceView {
    title: String,
    brand_name: String,
    color: String,
    background_pic_url: String,
    logo_url: String,
    prerogative: String,
    discount_label: String,
}

fn face(p: &MemberProgram) -> FaceView {
    FaceView {
        title: p.fields.title.clone(),
        brand_name: p.fields.brand_name.clone(),
        color: p.fields.color.clone(),
        background_pic_url: p.fields.background_pic_url.clone(),
        logo_url: p.fields.logo_url.clone(),
        prerogative: p.fields.prerogative.clone(),
        discount_label: discount_label(p.fields.discount_percent_off),
    }
}

#[derive(Serialize)]
struct OpenView {
    merchant_id: i64,
    face: FaceView,
    action: String,
    csrf: String,
    phone: String,
    asks: Vec<&'static str>,
    error: Option<String>,
    init_points: i64,
}

fn open_view(
    merchant_id: i64,
    program: &MemberProgram,
    csrf: &str,
    customer: &Customer,
    error: Option<String>,
) -> OpenView {
    OpenView {
        merchant_id,
        face: face(program),
        action: open_path(merchant_id, program.id),
        csrf: csrf.to_owned(),
        phone: customer.phone.clone().unwrap_or_default(),
        asks: program
            .fields
            .activation_fields
            .iter()
            .map(|f| f.code())
            .collect(),
        error,
        init_points: program.fields.points.map_or(0, |r| r.init_increase_bonus),
    }
}

async fn activate(
    state: &AppState,
    customer: &Customer,
    program: &MemberProgram,
    phone: String,
    name: String,
    birthday: Option<String>,
    gender: Option<Gender>,
) -> ApiResult<()> {
    let called = state
        .store
        .post_member_op(
            &ApiCall::default(),
            &MemberOp {
                merchant_id: customer.merchant_id,
                action: MemberAction::Activate(ActivateMember {
                    merchant_id: customer.merchant_id,
                    program_id: program.id,
                    customer: CustomerRef::Id(customer.id),
                    phone,
                    name,
                    birthday,
                    gender,
                }),
                actor: Actor {
                    staff_id: None,
                    label: format!("customer:{}", customer.id),
                },
                now: crate::now(),
            },
        )
        .await?;
    called.result?;
    Ok(())
}

/// 开卡: signed out, sign in first; a member goes to their card; the mall's
/// customer of an auto-activating program gets the card at once; else the form.
async fn open_page(
    State(state): State<AppState>,
    Path((merchant_id, program_id)): Path<(i64, i64)>,
    authed: CustomerAuthed,
) -> PageResult {
    let program = program_of(&state, merchant_id, program_id).await?;
    let here = open_path(merchant_id, program_id);
    let Some((session, customer)) = authed.0 else {
        return Ok(crate::wallet::sign_in_first(merchant_id, &here));
    };
    if member_of(&state, &customer, program_id).await?.is_some() {
        return Ok(Redirect::to(&card_path(merchant_id, program_id)).into_response());
    }
    if program.state != ProgramState::Active {
        return Err(ApiError::MemberRefused(
            kaquan_core::member::operation::MemberRefusal::ProgramDisabled,
        )
        .into());
    }
    if program.fields.auto_activate && customer.external_id.is_some() {
        let phone = customer.phone.clone().unwrap_or_default();
        activate(
            &state,
            &customer,
            &program,
            phone,
            String::new(),
            None,
            None,
        )
        .await?;
        return Ok(Redirect::to(&card_path(merchant_id, program_id)).into_response());
    }
    let view = open_view(merchant_id, &program, &session.csrf_token, &customer, None);
    Ok(render(
        &state,
        "member_open.html",
        &Page::anonymous(&format!("开通{}", program.fields.title)),
        view,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenForm {
    csrf: String,
    phone: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    birthday: String,
    #[serde(default)]
    gender: String,
}

impl OpenForm {
    /// The form's answers checked against what the program asks.
    fn checked(
        &self,
        program: &MemberProgram,
    ) -> Result<(String, String, Option<String>, Option<Gender>), String> {
        let asks = |f: ActivationField| program.fields.activation_fields.contains(&f);
        let phone = check_mobile(&self.phone).map_err(str::to_owned)?;
        let name = self.name.trim();
        if asks(ActivationField::Name) && name.is_empty() {
            return Err("请填写姓名".into());
        }
        kaquan_core::text::check_field("姓名", name, 32)?;
        let birthday = match self.birthday.trim() {
            "" if asks(ActivationField::Birthday) => return Err("请填写生日".into()),
            "" => None,
            text => Some(check_birthday(text)?),
        };
        let gender = match self.gender.as_str() {
            "" if asks(ActivationField::Gender) => return Err("请选择性别".into()),
            "" => None,
            code => Some(Gender::parse(code).ok_or("性别不正确")?),
        };
        Ok((phone, name.to_owned(), birthday, gender))
    }
}

async fn open_form(
    State(state): State<AppState>,
    Path((merchant_id, program_id)): Path<(i64, i64)>,
    authed: CustomerAuthed,
    Form(form): Form<OpenForm>,
) -> PageResult {
    let program = program_of(&state, merchant_id, program_id).await?;
    let (session, customer) = authed.0.ok_or(ApiError::Unauthenticated)?;
    if !crate::auth::constant_time_eq(form.csrf.as_bytes(), session.csrf_token.as_bytes()) {
        return Err(ApiError::Forbidden("页面已过期，请刷新后重试").into());
    }
    match form.checked(&program) {
        Err(message) => {
            let view = open_view(
                merchant_id,
                &program,
                &session.csrf_token,
                &customer,
                Some(message),
            );
            let mut response = render(
                &state,
                "member_open.html",
                &Page::anonymous(&format!("开通{}", program.fields.title)),
                view,
            );
            *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        Ok((phone, name, birthday, gender)) => {
            activate(&state, &customer, &program, phone, name, birthday, gender).await?;
            Ok(
                Redirect::to(&format!("{}?opened=1", card_path(merchant_id, program_id)))
                    .into_response(),
            )
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CardQuery {
    opened: Option<String>,
}

#[derive(Serialize)]
struct LineView {
    label: &'static str,
    amount: String,
    after: String,
    at: String,
}

fn line(t: &LedgerTransaction, money: bool) -> LineView {
    let (amount, after) = if money {
        let sign = if t.amount_fen > 0 { "+" } else { "" };
        (
            format!("{sign}¥{}", kaquan_core::money::format_yuan(t.amount_fen)),
            format!("¥{}", kaquan_core::money::format_yuan(t.balance_after_fen)),
        )
    } else {
        (
            format!("{:+}", t.amount_fen),
            t.balance_after_fen.to_string(),
        )
    };
    LineView {
        label: t.kind.label_zh(),
        amount,
        after,
        at: format_datetime(t.created_at),
    }
}

#[derive(Serialize)]
struct CardView {
    merchant_id: i64,
    face: FaceView,
    number: String,
    qr_svg: String,
    barcode_svg: String,
    tier_name: String,
    discount_label: String,
    points_on: bool,
    stored_value: bool,
    points: i64,
    balance_yuan: String,
    fields: Vec<(String, String)>,
    links: Vec<(String, String)>,
    points_lines: Vec<LineView>,
    balance_lines: Vec<LineView>,
    n_coupons: i64,
    opened: bool,
}

async fn card_page(
    State(state): State<AppState>,
    Path((merchant_id, program_id)): Path<(i64, i64)>,
    authed: CustomerAuthed,
    Query(query): Query<CardQuery>,
) -> PageResult {
    let program = program_of(&state, merchant_id, program_id).await?;
    let Some((_, customer)) = authed.0 else {
        return Ok(crate::wallet::sign_in_first(
            merchant_id,
            &card_path(merchant_id, program_id),
        ));
    };
    let Some(member) = member_of(&state, &customer, program_id).await? else {
        return Ok(Redirect::to(&open_path(merchant_id, program_id)).into_response());
    };
    let f = &program.fields;
    let number = f.member_number(member.id);
    let recent = ListPage::new(Some(1), Some(10));
    let (points, _) = state
        .store
        .list_points_statement(merchant_id, customer.id, recent)
        .await?;
    let (balance, _) = state
        .store
        .list_statement(merchant_id, customer.id, recent)
        .await?;
    let (_, n_coupons) = state
        .store
        .list_customer_coupons(
            merchant_id,
            customer.id,
            Some(WalletTab::Usable),
            crate::now(),
            ListPage::new(Some(1), Some(1)),
        )
        .await?;
    let discount = discount_label(f.discount_for(member.tier));
    let fields = f
        .custom_fields
        .iter()
        .map(|c| {
            let value = match c.kind {
                FieldKind::Tier => f.tier_name(member.tier).to_owned(),
                FieldKind::Coupons => format!("{n_coupons} 张"),
                FieldKind::Discount => discount.clone(),
                FieldKind::Spend => {
                    format!("¥{}", kaquan_core::money::format_yuan(member.spend_fen))
                }
            };
            (c.name.clone(), value)
        })
        .collect();
    let qr = qrcode::QrCode::new(number.as_bytes())
        .map_err(|e| ApiError::Internal(format!("a member number does not fit a QR code: {e}")))?;
    let view = CardView {
        merchant_id,
        face: face(&program),
        qr_svg: crate::exports::qr_svg(&qr),
        barcode_svg: crate::wallet::barcode_svg(&number),
        number,
        tier_name: f.tier_name(member.tier).to_owned(),
        discount_label: discount,
        points_on: f.points.is_some(),
        stored_value: f.stored_value,
        points: member.points,
        balance_yuan: kaquan_core::money::format_yuan(member.balance_fen),
        fields,
        links: f
            .custom_links
            .iter()
            .map(|l| (l.name.clone(), l.url.clone()))
            .collect(),
        points_lines: points.iter().map(|t| line(t, false)).collect(),
        balance_lines: balance.iter().map(|t| line(t, true)).collect(),
        n_coupons,
        opened: query.opened.is_some(),
    };
    Ok(render(
        &state,
        "member_card.html",
        &Page::anonymous(&f.title),
        view,
    ))
}
