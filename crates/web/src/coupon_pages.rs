//! 优惠券 in the console: the program list (by state, with stock and
//! counts), 制券 and its edit, a program's 投放 page (claim link and QR
//! code, 定向发放 by list or upload, 库存, state), 门店 and 核销员, 核销记录
//! and 数据与对账. Every page calls the same functions as the staff API.

use crate::auth::Authed;
use crate::coupon_issues::{claim_qr, issue_to};
use crate::coupon_records::{
    export_stats, export_verifications, stats, verification_page, VerificationQuery,
};
use crate::coupons::{
    change_program_stock, create_program, edit_program, move_program, program_page,
    CouponProgramDto, CouponProgramRequest, CouponProgramUpdate, ProgramQuery, SharedCouponDto,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Form, FormText, Multipart, Path, Query};
use crate::forms::{redirect_with, FormPairs};
use crate::locations::{
    add_location, bind_staff, change_location, save_settings, LocationDto, LocationRequest,
};
use crate::pages::{render, Page, PageResult};
use kaquan_core::coupon::targeted::Recipient;

use crate::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::coupon::{CodeType, CouponKind, ProgramState, COLORS};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/coupons", get(programs_page))
        .route("/coupons/new", get(new_page).post(create_form))
        .route(
            "/coupons/locations",
            get(locations_page).post(location_form),
        )
        .route("/coupons/locations/{location_id}", post(location_edit_form))
        .route("/coupons/verifiers/{staff_id}", post(verifier_form))
        .route("/coupons/settings", post(settings_form))
        .route("/coupons/verifications", get(records_page))
        .route("/coupons/verifications/export", get(records_export))
        .route("/coupons/reconciliation", get(reconciliation_page))
        .route("/coupons/reconciliation/export", get(reconciliation_export))
        .route("/coupons/{program_id}", get(program_page_one))
        .route("/coupons/{program_id}/edit", get(edit_page).post(edit_form))
        .route("/coupons/{program_id}/state", post(state_form))
        .route("/coupons/{program_id}/stock", post(stock_form))
        .route("/coupons/{program_id}/logo", post(logo_form))
        .route("/coupons/{program_id}/issues", post(issue_form))
        .route("/coupons/{program_id}/issues/upload", post(issue_upload))
        .route(
            "/coupons/{program_id}/issues/jobs/{job_id}",
            get(issue_job_page),
        )
        .route("/coupons/{program_id}/qr", get(qr_download))
}

#[derive(Serialize)]
struct ProgramsView {
    list: crate::lists::ListDto<CouponProgramDto>,
    state: String,
    states: Vec<(&'static str, &'static str)>,
    pages: i64,
}

async fn programs_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<ProgramQuery>,
) -> PageResult {
    let list = program_page(&state, &authed, &query).await?;
    let pages = (list.total + list.page_size - 1) / list.page_size;
    let view = ProgramsView {
        list,
        state: query.state.clone().unwrap_or_default(),
        states: ProgramState::ALL
            .iter()
            .map(|s| (s.code(), s.label_zh()))
            .collect(),
        pages,
    };
    Ok(render(
        &state,
        "coupons.html",
        &Page::new("优惠券", &authed).with_message(query.msg),
        view,
    ))
}

/// What the program form offers and what it was filled with.
#[derive(Serialize)]
struct FormView {
    program: Option<CouponProgramDto>,
    kinds: Vec<(&'static str, &'static str)>,
    code_types: Vec<(&'static str, &'static str)>,
    colors: &'static [(&'static str, &'static str)],
    locations: Vec<LocationDto>,
    goods: Vec<(i64, String)>,
    /// Programs 核销后返券 may give (this one included once it exists).
    programs: Vec<(i64, String)>,
    action: String,
}

async fn form_view(
    state: &AppState,
    authed: &Authed,
    program: Option<CouponProgramDto>,
) -> ApiResult<FormView> {
    authed.require(Permission::CouponsManage)?;
    let m = authed.merchant_id();
    let action = match &program {
        Some(p) => format!("/coupons/{}/edit", p.id),
        None => "/coupons/new".into(),
    };
    Ok(FormView {
        program,
        kinds: CouponKind::ALL
            .iter()
            .map(|k| (k.code(), k.label_zh()))
            .collect(),
        code_types: CodeType::ALL
            .iter()
            .map(|c| (c.code(), c.label_zh()))
            .collect(),
        colors: &COLORS,
        locations: state
            .store
            .list_locations(m)
            .await?
            .iter()
            .map(LocationDto::new)
            .collect(),
        goods: state
            .store
            .list_goods(m, false)
            .await?
            .into_iter()
            .map(|g| (g.id, g.name))
            .collect(),
        programs: state
            .store
            .list_coupon_programs(
                m,
                &kaquan_core::coupon::usage::ProgramFilter::default(),
                kaquan_core::store::Page::new(Some(1), Some(200)),
            )
            .await?
            .0
            .into_iter()
            .filter(|p| p.state != ProgramState::Ended)
            .map(|p| (p.id, p.fields.title))
            .collect(),
        action,
    })
}

async fn new_page(State(state): State<AppState>, authed: Authed) -> PageResult {
    let view = form_view(&state, &authed, None).await?;
    Ok(render(
        &state,
        "coupon_form.html",
        &Page::new("新建优惠券", &authed),
        view,
    ))
}

const PROGRAM_FORM_KEYS: &[&str] = &[
    "csrf",
    "shared",
    "cover_url",
    "abstract_text",
    "detail_text",
    "give_program_id",
    "version",
    "kind",
    "percent_off",
    "discount",
    "cap",
    "least_cost",
    "reduce_cost",
    "goods_id",
    "gift",
    "deal_detail",
    "price",
    "default_detail",
    "title",
    "sub_title",
    "brand_name",
    "color",
    "notice",
    "description",
    "service_phone",
    "quantity",
    "get_limit",
    "use_limit",
    "validity_type",
    "begin_date",
    "end_date",
    "term_days",
    "begin_after_days",
    "hard_end_date",
    "weekdays",
    "time_begin",
    "time_end",
    "use_all_locations",
    "location_ids",
    "code_type",
    "rotating_code",
    "can_give_friend",
    "can_use_with_other_discount",
];

/// The program form read into the API's request (yuan into fen, 折 into percent off).
fn program_request(form: &FormPairs) -> ApiResult<CouponProgramRequest> {
    let text = |key: &str| Some(form.value(key).trim().to_owned()).filter(|v| !v.is_empty());
    let int = |key: &str, what: &str| -> ApiResult<Option<i64>> {
        text(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::invalid(format!("{what}应为整数")))
            })
            .transpose()
    };
    let yuan = |key: &str, what: &str| -> ApiResult<Option<i64>> {
        text(key)
            .map(|v| {
                kaquan_core::money::parse_yuan(&v)
                    .ok_or_else(|| ApiError::invalid(format!("{what}应为金额，如 20 或 9.90")))
            })
            .transpose()
    };
    // 折扣 is typed as 折 (8.5): percent off is 100 − 10 × 折.
    let percent_off = match text("discount") {
        None => None,
        Some(zhe) => {
            let tenths = kaquan_core::money::parse_yuan(&zhe)
                .filter(|fen| fen % 10 == 0)
                .map(|fen| fen / 10)
                .ok_or_else(|| ApiError::invalid("折扣应为 0.1–9.9 之间、至多一位小数，如 8.5"))?;
            Some(100 - tenths)
        }
    };
    let checked = |key: &str| form.value(key) == "on" || form.value(key) == "true";
    Ok(CouponProgramRequest {
        kind: form.value("kind"),
        percent_off,
        cap_fen: yuan("cap", "最高优惠")?,
        least_cost_fen: yuan("least_cost", "起用金额")?,
        reduce_cost_fen: yuan("reduce_cost", "减免金额")?,
        goods_id: int("goods_id", "提货商品")?,
        gift: text("gift"),
        deal_detail: text("deal_detail"),
        price_fen: yuan("price", "团购价")?,
        default_detail: text("default_detail"),
        title: form.value("title"),
        sub_title: text("sub_title"),
        brand_name: text("brand_name"),
        logo_url: None,
        color: text("color"),
        notice: text("notice"),
        description: Some(form.value("description")),
        service_phone: text("service_phone"),
        // A 朋友的券's stock is bought with 券点 once it exists.
        quantity: if checked("shared") {
            Some(0)
        } else {
            int("quantity", "库存")?
        },
        get_limit: int("get_limit", "每人可领")?,
        use_limit: int("use_limit", "每人可用")?,
        validity_type: form.value("validity_type"),
        begin_date: text("begin_date"),
        end_date: text("end_date"),
        term_days: int("term_days", "有效天数")?,
        begin_after_days: int("begin_after_days", "生效天数")?,
        hard_end_date: text("hard_end_date"),
        weekdays: Some(
            form.all("weekdays")
                .iter()
                .map(|d| d.parse().map_err(|_| ApiError::invalid("可用日期不正确")))
                .collect::<ApiResult<_>>()?,
        ),
        time_begin: text("time_begin"),
        time_end: text("time_end"),
        use_all_locations: form.value("use_all_locations") == "all",
        location_ids: form.ids("location_ids")?,
        code_type: text("code_type"),
        rotating_code: checked("rotating_code"),
        can_give_friend: Some(checked("can_give_friend")),
        can_use_with_other_discount: checked("can_use_with_other_discount"),
        shared: checked("shared").then(|| SharedCouponDto {
            cover_url: form.value("cover_url"),
            abstract_text: form.value("abstract_text"),
            detail_text: form.value("detail_text"),
        }),
        give_program_id: int("give_program_id", "核销后返券")?,
    })
}

async fn create_form(
    State(state): State<AppState>,
    authed: Authed,
    FormText(body): FormText,
) -> PageResult {
    let form = FormPairs::parse(&body, PROGRAM_FORM_KEYS)?;
    authed.check_form_csrf(&form.value("csrf"))?;
    let program = create_program(&state, &authed, &program_request(&form)?).await?;
    Ok(redirect_with(
        &format!("/coupons/{}", program.id),
        &format!(
            "已创建「{}」（草稿），确认无误后点“开始投放”",
            program.fields.title
        ),
    ))
}

async fn dto(state: &AppState, authed: &Authed, program_id: i64) -> ApiResult<CouponProgramDto> {
    authed.require(Permission::CouponsManage)?;
    let m = authed.merchant_id();
    let program = state.store.get_coupon_program(m, program_id).await?;
    Ok(CouponProgramDto::new(
        &program,
        &state.public_url_for(m).await?,
    ))
}

async fn edit_page(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
) -> PageResult {
    let program = dto(&state, &authed, program_id).await?;
    let view = form_view(&state, &authed, Some(program)).await?;
    Ok(render(
        &state,
        "coupon_form.html",
        &Page::new("编辑优惠券", &authed),
        view,
    ))
}

async fn edit_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    FormText(body): FormText,
) -> PageResult {
    let form = FormPairs::parse(&body, PROGRAM_FORM_KEYS)?;
    authed.check_form_csrf(&form.value("csrf"))?;
    let version = form
        .value("version")
        .parse()
        .map_err(|_| ApiError::invalid("请刷新页面后再保存"))?;
    // The form has no logo field: the uploaded one (or the API's URL) stays.
    let current = state
        .store
        .get_coupon_program(authed.merchant_id(), program_id)
        .await?;
    let mut program = program_request(&form)?;
    program.logo_url = Some(current.fields.logo_url);
    let update = CouponProgramUpdate { version, program };
    let program = edit_program(&state, &authed, program_id, &update).await?;
    Ok(redirect_with(
        &format!("/coupons/{program_id}"),
        &format!("已保存「{}」", program.fields.title),
    ))
}

async fn logo_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    multipart: crate::extract::Multipart,
) -> PageResult {
    let (bytes, csrf) = crate::images::read_image_upload(multipart).await?;
    authed.check_form_csrf(&csrf)?;
    let picture = kaquan_core::coupon::usage::CouponPicture::Logo;
    crate::coupons::upload_program_picture(&state, &authed, program_id, bytes, picture).await?;
    Ok(redirect_with(
        &format!("/coupons/{program_id}"),
        "Logo 已更新",
    ))
}

#[derive(Serialize)]
struct ProgramPageView {
    program: CouponProgramDto,
    moves: Vec<(&'static str, &'static str)>,
    /// A 朋友的券's 券点账户 and the stock it bought.
    credits: Option<crate::credits::CreditAccountDto>,
    stock_purchases: Vec<crate::credits::StockPurchaseDto>,
    /// 核销后返券: the title of the program it gives.
    give_title: Option<String>,
}

async fn program_page_one(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    Query(query): Query<crate::forms::MsgQuery>,
) -> PageResult {
    let program = dto(&state, &authed, program_id).await?;
    let current = ProgramState::parse(program.state).unwrap_or(ProgramState::Draft);
    let moves = [
        ProgramState::Active,
        ProgramState::Paused,
        ProgramState::Ended,
    ]
    .into_iter()
    .filter(|to| ProgramState::sources_of(*to).contains(&current))
    .map(|to| (to.code(), ProgramState::verb_zh(to)))
    .collect();
    let title = program.title.clone();
    let m = authed.merchant_id();
    let (credits, stock_purchases) = if program.shared.is_some() {
        let account = state.store.get_credit_balance(m).await?;
        let bought = state.store.list_stock_purchases(m, program_id).await?;
        (
            Some(crate::credits::CreditAccountDto::new(&account)),
            bought
                .iter()
                .map(crate::credits::StockPurchaseDto::new)
                .collect(),
        )
    } else {
        (None, Vec::new())
    };
    let give_title = match program.give_program_id {
        Some(id) => Some(state.store.get_coupon_program(m, id).await?.fields.title),
        None => None,
    };
    let view = ProgramPageView {
        program,
        moves,
        credits,
        stock_purchases,
        give_title,
    };
    Ok(render(
        &state,
        "coupon.html",
        &Page::new(&title, &authed).with_message(query.msg),
        view,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateForm {
    csrf: String,
    state: String,
}

async fn state_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    Form(form): Form<StateForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let program = move_program(&state, &authed, program_id, &form.state).await?;
    Ok(redirect_with(
        &format!("/coupons/{program_id}"),
        &format!("「{}」{}", program.fields.title, program.state.label_zh()),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StockForm {
    csrf: String,
    delta: String,
}

async fn stock_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    Form(form): Form<StockForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let delta = form
        .delta
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid("调整数量应为整数（减少填负数）"))?;
    let program = change_program_stock(&state, &authed, program_id, delta).await?;
    Ok(redirect_with(
        &format!("/coupons/{program_id}"),
        &format!(
            "库存已调整为 {}，剩余 {}",
            program.quantity,
            program.stock_left()
        ),
    ))
}

/// One recipient per line: an 11-digit mobile number, else the mall's customer id.
fn recipients_of_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<Recipient> {
    lines
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(Recipient::of_cell)
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueForm {
    csrf: String,
    recipients: String,
}

async fn issue_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    Form(form): Form<IssueForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let recipients = recipients_of_lines(form.recipients.lines());
    let issued = issue_to(&state, &authed, program_id, &recipients).await?;
    Ok(redirect_with(
        &format!("/coupons/{program_id}"),
        &format!(
            "已发放 {} 张，剩余库存 {}",
            issued.n_issued, issued.stock_left
        ),
    ))
}

/// 定向发放 from an xlsx or CSV whose first column is a phone or the mall's
/// customer id (line 1 is the header).
async fn issue_upload(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    multipart: Multipart,
) -> PageResult {
    let (name, bytes, csrf) = crate::orders::read_file(multipart).await?;
    authed.check_form_csrf(&csrf)?;
    let rows = crate::off_runtime(move || crate::tables::parse_rows(&name, &bytes, 1)).await??;
    // Each recipient's line in the file, so a bad row is named as the file numbers it.
    let (lines, cells): (Vec<usize>, Vec<&str>) = rows
        .iter()
        .skip(1)
        .filter(|(_, cells)| !cells[0].trim().is_empty())
        .map(|(line, cells)| (*line, cells[0].as_str()))
        .unzip();
    let recipients = recipients_of_lines(cells.into_iter());
    if recipients.len() > crate::coupon_issues::ISSUE_IN_BACKGROUND_ROWS {
        let job =
            crate::coupon_issues::start_issue_job(&state, &authed, program_id, recipients, lines)?;
        return Ok(axum::response::Redirect::to(&format!(
            "/coupons/{program_id}/issues/jobs/{}",
            job.id
        ))
        .into_response());
    }
    let issued = issue_to(&state, &authed, program_id, &recipients)
        .await
        .map_err(|e| crate::coupon_issues::on_file_lines(e, &lines))?;
    Ok(redirect_with(
        &format!("/coupons/{program_id}"),
        &format!(
            "已按名单发放 {} 张，剩余库存 {}",
            issued.n_issued, issued.stock_left
        ),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QrPageQuery {
    format: Option<String>,
}

async fn qr_download(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    Query(query): Query<QrPageQuery>,
) -> ApiResult<Response> {
    claim_qr(&state, &authed, program_id, query.format.as_deref()).await
}

// ---- 门店 and 核销员 ----------------------------------------------------------

#[derive(Serialize)]
struct VerifierView {
    id: i64,
    username: String,
    name: String,
    location_ids: Vec<i64>,
}

#[derive(Serialize)]
struct LocationsView {
    locations: Vec<LocationDto>,
    verifiers: Vec<VerifierView>,
    undo_window_minutes: i64,
}

async fn locations_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<crate::forms::MsgQuery>,
) -> PageResult {
    authed.require(Permission::CouponsManage)?;
    let m = authed.merchant_id();
    let roles = state.store.list_roles(m).await?;
    let verify_roles: Vec<i64> = roles
        .iter()
        .filter(|r| r.permissions.contains(&Permission::CouponsVerify))
        .map(|r| r.id)
        .collect();
    let mut verifiers = Vec::new();
    for s in state.store.list_staff(m).await? {
        if verify_roles.contains(&s.role_id) && !s.disabled {
            verifiers.push(VerifierView {
                id: s.id,
                location_ids: state.store.staff_locations(m, s.id).await?,
                username: s.username,
                name: s.name,
            });
        }
    }
    let view = LocationsView {
        locations: state
            .store
            .list_locations(m)
            .await?
            .iter()
            .map(LocationDto::new)
            .collect(),
        verifiers,
        undo_window_minutes: state
            .store
            .get_coupon_settings(m)
            .await?
            .undo_window_minutes,
    };
    Ok(render(
        &state,
        "coupon_locations.html",
        &Page::new("门店与核销员", &authed).with_message(query.msg),
        view,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LocationForm {
    csrf: String,
    name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    hours: String,
    #[serde(default)]
    enabled: Option<String>,
}

impl LocationForm {
    fn request(&self, default_enabled: bool) -> LocationRequest {
        LocationRequest {
            name: self.name.clone(),
            address: self.address.clone(),
            phone: self.phone.clone(),
            hours: self.hours.clone(),
            enabled: Some(
                self.enabled
                    .as_deref()
                    .map_or(default_enabled, |v| v == "on" || v == "true"),
            ),
        }
    }
}

async fn location_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<LocationForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let location = add_location(&state, &authed, &form.request(true)).await?;
    Ok(redirect_with(
        "/coupons/locations",
        &format!("已添加门店「{}」", location.fields.name),
    ))
}

async fn location_edit_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(location_id): Path<i64>,
    Form(form): Form<LocationForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let location = change_location(&state, &authed, location_id, &form.request(false)).await?;
    Ok(redirect_with(
        "/coupons/locations",
        &format!("已保存门店「{}」", location.fields.name),
    ))
}

async fn verifier_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(staff_id): Path<i64>,
    FormText(body): FormText,
) -> PageResult {
    let form = FormPairs::parse(&body, &["csrf", "location_ids"])?;
    authed.check_form_csrf(&form.value("csrf"))?;
    bind_staff(&state, &authed, staff_id, &form.ids("location_ids")?).await?;
    Ok(redirect_with("/coupons/locations", "已保存核销员的门店"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsForm {
    csrf: String,
    undo_window_minutes: String,
}

async fn settings_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<SettingsForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let minutes = form
        .undo_window_minutes
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid("可撤销时限应为分钟数"))?;
    save_settings(&state, &authed, minutes).await?;
    Ok(redirect_with("/coupons/locations", "已保存"))
}

// ---- 核销记录 and 数据与对账 -----------------------------------------------------

#[derive(Serialize)]
struct RecordsView {
    list: crate::lists::ListDto<crate::coupon_records::CouponVerificationView>,
    stats: Option<crate::coupon_records::VerificationStatsDto>,
    query: VerificationQuery,
    query_string: String,
    locations: Vec<LocationDto>,
    pages: i64,
}

async fn records_view(
    state: &AppState,
    authed: &Authed,
    query: VerificationQuery,
    with_stats: bool,
) -> ApiResult<RecordsView> {
    let list = verification_page(state, authed, &query).await?;
    let stats = if with_stats {
        Some(stats(state, authed, &query).await?)
    } else {
        None
    };
    let mut plain = query.clone();
    plain.page = None;
    let pages = (list.total + list.page_size - 1) / list.page_size;
    Ok(RecordsView {
        list,
        stats,
        query_string: serde_urlencoded::to_string(&plain).unwrap_or_default(),
        query,
        locations: state
            .store
            .list_locations(authed.merchant_id())
            .await?
            .iter()
            .map(LocationDto::new)
            .collect(),
        pages,
    })
}

/// 核销记录 (`with_stats` false) or 数据与对账 (true), on one template.
async fn records_or_stats(
    state: &AppState,
    authed: &Authed,
    query: VerificationQuery,
    with_stats: bool,
) -> PageResult {
    let title = if with_stats {
        "数据与对账"
    } else {
        "核销记录"
    };
    let view = records_view(state, authed, query, with_stats).await?;
    Ok(render(
        state,
        "coupon_records.html",
        &Page::new(title, authed),
        view,
    ))
}

async fn records_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<VerificationQuery>,
) -> PageResult {
    records_or_stats(&state, &authed, query, false).await
}

async fn records_export(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<VerificationQuery>,
) -> ApiResult<Response> {
    export_verifications(&state, &authed, &query).await
}

async fn reconciliation_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<VerificationQuery>,
) -> PageResult {
    records_or_stats(&state, &authed, query, true).await
}

async fn reconciliation_export(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<VerificationQuery>,
) -> ApiResult<Response> {
    export_stats(&state, &authed, &query).await
}

#[derive(Serialize)]
struct IssueJobView {
    program_id: i64,
    n_total: i64,
    n_done: i64,
    running: bool,
    issued: Option<crate::coupon_issues::CouponIssueDto>,
    error: Option<String>,
    rows: Vec<(usize, String)>,
}

/// The progress of a long 定向发放, refreshed every second until it ends.
async fn issue_job_page(
    State(state): State<AppState>,
    authed: Authed,
    Path((program_id, job_id)): Path<(i64, String)>,
) -> PageResult {
    let job = state
        .issue_jobs
        .get(&authed, &job_id)
        .filter(|j| j.program_id == program_id)
        .ok_or(ApiError::NotFound)?;
    let outcome = job
        .outcome
        .lock()
        .expect("a job's outcome is never poisoned")
        .clone();
    let (issued, error, rows) = match outcome {
        None => (None, None, Vec::new()),
        Some(Ok(issued)) => (Some(issued), None, Vec::new()),
        Some(Err((message, rows))) => (None, Some(message), rows),
    };
    let view = IssueJobView {
        program_id,
        n_total: job.n_total,
        n_done: job.n_done.load(std::sync::atomic::Ordering::Relaxed),
        running: issued.is_none() && error.is_none(),
        issued,
        error,
        rows,
    };
    Ok(render(
        &state,
        "coupon_issue_job.html",
        &Page::new("定向发放", &authed),
        view,
    ))
}
