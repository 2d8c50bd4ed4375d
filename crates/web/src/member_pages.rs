//! 会员卡 in the console: the programs (制卡, edit, the 开卡 link and its
//! QR code, 启用/停用), 会员 (the list with its filters and export), and
//! a member's page (statements, operations, 积分调整). Every page calls the
//! same functions as the staff API in `members.rs`.

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Form, FormText, Path, Query};
use crate::forms::{redirect_with, FormPairs};
use crate::member_programs::{
    create_program, edit_program, move_program, program_dto, program_list, CustomFieldDto,
    CustomLinkDto, MemberProgramDto, MemberProgramRequest, PointsRuleDto, TierDto,
};
use crate::members::{
    adjust_points, member_page, member_view, operations, points_statement, MemberQuery,
    PointsAdjustmentRequest,
};
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::ledger::{IdempotencyClaim, IdempotencyKey};
use kaquan_core::member::{ActivationField, FieldKind, TierBasis, CUSTOM_ITEMS_MAX};
use kaquan_core::store::Page as ListPage;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/member-programs", get(programs_page))
        .route("/member-programs/new", get(new_page).post(create_form))
        .route("/member-programs/{program_id}", get(program_page))
        .route(
            "/member-programs/{program_id}/edit",
            get(edit_page).post(edit_form),
        )
        .route("/member-programs/{program_id}/state", post(state_form))
        .route("/member-programs/{program_id}/qr", get(qr_download))
        .route(
            "/member-programs/{program_id}/pictures/{picture}",
            post(picture_form),
        )
        .route("/members", get(members_page))
        .route("/members/messages", get(messages_page))
        .route("/members/export", get(members_export))
        .route("/members/{member_id}", get(member_detail))
        .route("/members/{member_id}/points", post(adjust_form))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageQuery {
    msg: Option<String>,
}

async fn programs_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<MessageQuery>,
) -> PageResult {
    let programs = program_list(&state, &authed).await?;
    Ok(render(
        &state,
        "member_programs.html",
        &Page::new("会员卡", &authed).with_message(query.msg),
        programs,
    ))
}

/// What the program form offers and what it was filled with.
#[derive(Serialize)]
struct FormView {
    program: Option<MemberProgramDto>,
    action: String,
    field_kinds: Vec<(&'static str, &'static str)>,
    activation_fields: Vec<(&'static str, &'static str)>,
    tier_bases: Vec<(&'static str, &'static str)>,
    slots: Vec<usize>,
    tier_slots: Vec<usize>,
    coupons: Vec<(i64, String)>,
}

async fn form_view(
    state: &AppState,
    authed: &Authed,
    program: Option<MemberProgramDto>,
) -> ApiResult<FormView> {
    authed.require(Permission::MembersManage)?;
    let action = match &program {
        Some(p) => format!("/member-programs/{}/edit", p.id),
        None => "/member-programs/new".into(),
    };
    let (coupons, _) = state
        .store
        .list_coupon_programs(
            authed.merchant_id(),
            &Default::default(),
            ListPage::new(Some(1), Some(kaquan_core::store::PAGE_SIZE_MAX)),
        )
        .await?;
    Ok(FormView {
        program,
        action,
        field_kinds: FieldKind::ALL
            .iter()
            .map(|k| (k.code(), k.label_zh()))
            .collect(),
        activation_fields: ActivationField::ALL
            .iter()
            .map(|f| (f.code(), f.label_zh()))
            .collect(),
        tier_bases: [TierBasis::PointsEarned, TierBasis::Spend]
            .iter()
            .map(|b| (b.code(), b.label_zh()))
            .collect(),
        slots: (0..CUSTOM_ITEMS_MAX).collect(),
        tier_slots: (0..kaquan_core::member::TIERS_MAX).collect(),
        coupons: coupons
            .into_iter()
            .map(|c| (c.id, c.fields.title))
            .collect(),
    })
}

async fn new_page(State(state): State<AppState>, authed: Authed) -> PageResult {
    let view = form_view(&state, &authed, None).await?;
    Ok(render(
        &state,
        "member_program_form.html",
        &Page::new("新建会员卡", &authed),
        view,
    ))
}

const PROGRAM_FORM_KEYS: &[&str] = &[
    "csrf",
    "title",
    "brand_name",
    "color",
    "prerogative",
    "discount",
    "points_enabled",
    "cost_money_unit",
    "increase_bonus",
    "max_increase_bonus",
    "init_increase_bonus",
    "cost_bonus_unit",
    "reduce_money",
    "least_money_to_use_bonus",
    "max_reduce_bonus",
    "stored_value",
    "tier_basis",
    "downgrade_on_refund",
    "tier_name",
    "tier_threshold",
    "tier_discount",
    "field_name",
    "field_kind",
    "link_name",
    "link_url",
    "activation_fields",
    "auto_activate",
    "number_prefix",
    "number_length",
    "expiry",
    "expiry_months",
    "notify",
    "notify_coupon_program_id",
];

/// 9.5 (折) into 5 (percent off); empty is none.
fn percent_off(text: &str, what: &str) -> ApiResult<i64> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    let tenths = kaquan_core::money::parse_yuan(text)
        .filter(|fen| fen % 10 == 0 && (10..=990).contains(fen))
        .map(|fen| fen / 10)
        .ok_or_else(|| ApiError::invalid(format!("{what}应为 0.1–9.9 折、至多一位小数，如 9.5")))?;
    Ok(100 - tenths)
}

/// The tier rows of the program form (empty names skipped); spend
/// thresholds are typed in yuan.
fn tier_rows(form: &FormPairs, basis: &str) -> ApiResult<Vec<TierDto>> {
    let (names, thresholds, discounts) = (
        form.all("tier_name"),
        form.all("tier_threshold"),
        form.all("tier_discount"),
    );
    let mut tiers = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if name.trim().is_empty() {
            continue;
        }
        let threshold = thresholds.get(i).map(|t| t.trim()).unwrap_or("");
        let threshold = if basis == TierBasis::Spend.code() {
            kaquan_core::money::parse_yuan(threshold)
        } else {
            threshold.parse().ok()
        }
        .ok_or_else(|| ApiError::invalid(format!("等级「{}」的门槛不正确", name.trim())))?;
        tiers.push(TierDto {
            name: name.trim().to_owned(),
            threshold,
            discount_percent_off: percent_off(
                discounts.get(i).map_or("", |d| d.as_str()),
                "等级折扣",
            )?,
        });
    }
    Ok(tiers)
}

/// The program form read into the API's request (yuan into fen, 折 into percent off).
fn program_request(form: &FormPairs) -> ApiResult<MemberProgramRequest> {
    let text = |key: &str| form.value(key).trim().to_owned();
    let int = |key: &str, what: &str| -> ApiResult<i64> {
        let v = text(key);
        if v.is_empty() {
            return Ok(0);
        }
        v.parse()
            .map_err(|_| ApiError::invalid(format!("{what}应为整数")))
    };
    let yuan = |key: &str, what: &str| -> ApiResult<i64> {
        let v = text(key);
        if v.is_empty() {
            return Ok(0);
        }
        kaquan_core::money::parse_yuan(&v)
            .ok_or_else(|| ApiError::invalid(format!("{what}应为金额，如 1 或 0.50")))
    };
    let checked = |key: &str| form.value(key) == "on" || form.value(key) == "true";
    let basis = text("tier_basis");
    let tiers = tier_rows(form, &basis)?;
    let pairs = |names: Vec<String>, values: Vec<String>| -> Vec<(String, String)> {
        names
            .into_iter()
            .zip(values)
            .filter(|(n, _)| !n.trim().is_empty())
            .collect()
    };
    let points_rule = checked("points_enabled")
        .then(|| -> ApiResult<PointsRuleDto> {
            Ok(PointsRuleDto {
                cost_money_unit: yuan("cost_money_unit", "每消费金额")?,
                increase_bonus: int("increase_bonus", "赠送积分")?,
                max_increase_bonus: int("max_increase_bonus", "单次最多赠送")?,
                init_increase_bonus: int("init_increase_bonus", "开卡赠送")?,
                cost_bonus_unit: int("cost_bonus_unit", "每使用积分")?,
                reduce_money: yuan("reduce_money", "抵扣金额")?,
                least_money_to_use_bonus: yuan("least_money_to_use_bonus", "订单满")?,
                max_reduce_bonus: int("max_reduce_bonus", "单笔最多使用")?,
            })
        })
        .transpose()?;
    let coupon = text("notify_coupon_program_id");
    Ok(MemberProgramRequest {
        title: text("title"),
        brand_name: text("brand_name"),
        color: Some(text("color")).filter(|c| !c.is_empty()),
        // Uploaded on the card's page: an edit keeps them.
        background_pic_url: None,
        logo_url: None,
        prerogative: form.value("prerogative"),
        discount_percent_off: percent_off(&form.value("discount"), "会员折扣")?,
        points_rule,
        stored_value: Some(checked("stored_value")),
        tier_basis: Some(basis).filter(|b| !b.is_empty()),
        tiers,
        downgrade_on_refund: checked("downgrade_on_refund"),
        custom_fields: pairs(form.all("field_name"), form.all("field_kind"))
            .into_iter()
            .map(|(name, kind)| CustomFieldDto { name, kind })
            .collect(),
        custom_links: pairs(form.all("link_name"), form.all("link_url"))
            .into_iter()
            .map(|(name, url)| CustomLinkDto { name, url })
            .collect(),
        activation_fields: form.all("activation_fields"),
        auto_activate: checked("auto_activate"),
        number_prefix: text("number_prefix"),
        number_length: Some(int("number_length", "会员号位数")?).filter(|n| *n != 0),
        expiry: Some(text("expiry")).filter(|e| !e.is_empty()),
        expiry_months: Some(int("expiry_months", "积分有效月数")?),
        notify: Some(checked("notify")),
        notify_coupon_program_id: if coupon.is_empty() {
            None
        } else {
            Some(
                coupon
                    .parse()
                    .map_err(|_| ApiError::invalid("关联优惠券不正确"))?,
            )
        },
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
        &format!("/member-programs/{}", program.id),
        &format!(
            "已创建「{}」，把开卡链接或二维码发给顾客即可开卡",
            program.fields.title
        ),
    ))
}

async fn dto(state: &AppState, authed: &Authed, program_id: i64) -> ApiResult<MemberProgramDto> {
    authed.require(Permission::MembersView)?;
    let program = state
        .store
        .get_member_program(authed.merchant_id(), program_id)
        .await?;
    program_dto(state, authed, &program).await
}

async fn edit_page(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
) -> PageResult {
    let program = dto(&state, &authed, program_id).await?;
    let title = format!("修改「{}」", program.title);
    let view = form_view(&state, &authed, Some(program)).await?;
    Ok(render(
        &state,
        "member_program_form.html",
        &Page::new(&title, &authed),
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
    let program = edit_program(&state, &authed, program_id, &program_request(&form)?).await?;
    Ok(redirect_with(
        &format!("/member-programs/{program_id}"),
        &format!("已保存「{}」", program.fields.title),
    ))
}

#[derive(Serialize)]
struct ProgramView {
    program: MemberProgramDto,
    qr_svg: String,
    can_manage: bool,
}

async fn program_page(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
    Query(query): Query<MessageQuery>,
) -> PageResult {
    let program = dto(&state, &authed, program_id).await?;
    let code = qrcode::QrCode::new(program.open_url.as_bytes())
        .map_err(|e| ApiError::Internal(format!("an open link does not fit a QR code: {e}")))?;
    let title = program.title.clone();
    let view = ProgramView {
        program,
        qr_svg: crate::exports::qr_svg(&code),
        can_manage: authed.can(Permission::MembersManage),
    };
    Ok(render(
        &state,
        "member_program.html",
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
        &format!("/member-programs/{program_id}"),
        &format!("「{}」{}", program.fields.title, program.state.label_zh()),
    ))
}

async fn picture_form(
    State(state): State<AppState>,
    authed: Authed,
    Path((program_id, picture)): Path<(i64, String)>,
    multipart: crate::extract::Multipart,
) -> PageResult {
    let (bytes, csrf) = crate::images::read_image_upload(multipart).await?;
    authed.check_form_csrf(&csrf)?;
    crate::member_programs::upload_card_picture(&state, &authed, program_id, &picture, bytes)
        .await?;
    Ok(redirect_with(
        &format!("/member-programs/{program_id}"),
        "卡面图片已更新",
    ))
}

async fn qr_download(
    State(state): State<AppState>,
    authed: Authed,
    Path(program_id): Path<i64>,
) -> ApiResult<Response> {
    let program = dto(&state, &authed, program_id).await?;
    let code = qrcode::QrCode::new(program.open_url.as_bytes())
        .map_err(|e| ApiError::Internal(format!("an open link does not fit a QR code: {e}")))?;
    let png = crate::off_runtime(move || crate::exports::qr_png(&code, 12)).await?;
    Ok(crate::exports::download(
        png,
        &format!("开卡二维码-{}.png", program.title),
        "image/png",
    ))
}

#[derive(Serialize)]
struct MembersView {
    list: crate::lists::ListDto<crate::members::MemberView>,
    programs: Vec<MemberProgramDto>,
    query: MemberQueryEcho,
    pages: i64,
    export_query: String,
}

/// The filters as typed, to fill the form back in.
#[derive(Serialize, Default)]
struct MemberQueryEcho {
    program_id: Option<i64>,
    search: String,
    tier: Option<usize>,
    activated_from: String,
    activated_until: String,
    points_at_least: Option<i64>,
    balance_at_least: String,
}

async fn members_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<MemberQuery>,
) -> PageResult {
    let list = member_page(&state, &authed, &query).await?;
    let pages = (list.total + list.page_size - 1) / list.page_size;
    let export_query = serde_urlencoded::to_string(
        [
            ("program_id", query.program_id.map(|p| p.to_string())),
            ("search", query.search.clone()),
            ("tier", query.tier.map(|t| t.to_string())),
            ("activated_from", query.activated_from.clone()),
            ("activated_until", query.activated_until.clone()),
            (
                "points_at_least",
                query.points_at_least.map(|p| p.to_string()),
            ),
            (
                "balance_at_least_fen",
                query.balance_at_least_fen.map(|b| b.to_string()),
            ),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
        .collect::<Vec<_>>(),
    )
    .unwrap_or_default();
    let view = MembersView {
        list,
        programs: program_list(&state, &authed).await?,
        query: MemberQueryEcho {
            program_id: query.program_id,
            search: query.search.clone().unwrap_or_default(),
            tier: query.tier,
            activated_from: query.activated_from.clone().unwrap_or_default(),
            activated_until: query.activated_until.clone().unwrap_or_default(),
            points_at_least: query.points_at_least,
            balance_at_least: query
                .balance_at_least_fen
                .map(kaquan_core::money::format_yuan)
                .unwrap_or_default(),
        },
        pages,
        export_query,
    };
    Ok(render(
        &state,
        "members.html",
        &Page::new("会员", &authed).with_message(query.msg.clone()),
        view,
    ))
}

async fn members_export(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<MemberQuery>,
) -> ApiResult<Response> {
    crate::members::export_member_file(&state, &authed, &query).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DetailQuery {
    msg: Option<String>,
    page: Option<i64>,
}

#[derive(Serialize)]
struct MemberDetailView {
    member: crate::members::MemberView,
    points: crate::lists::ListDto<crate::customers::TransactionView>,
    operations: crate::lists::ListDto<crate::members::MemberOperationView>,
    can_adjust: bool,
    form_key: String,
    pages: i64,
}

async fn member_detail(
    State(state): State<AppState>,
    authed: Authed,
    Path(member_id): Path<i64>,
    Query(query): Query<DetailQuery>,
) -> PageResult {
    let member = member_view(&state, &authed, member_id).await?;
    let page = ListPage::new(query.page, Some(20));
    let points = points_statement(&state, &authed, member_id, page).await?;
    let ops = operations(&state, &authed, member_id, ListPage::new(Some(1), Some(20))).await?;
    let pages = (points.total + points.page_size - 1) / points.page_size;
    let title = format!("会员 {}", member.member_number);
    let view = MemberDetailView {
        member,
        points,
        operations: ops,
        can_adjust: authed.can(Permission::MembersManage),
        form_key: kaquan_core::secrets::random_token_hex(12),
        pages,
    };
    Ok(render(
        &state,
        "member.html",
        &Page::new(&title, &authed).with_message(query.msg),
        view,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdjustForm {
    csrf: String,
    form_key: String,
    direction: String,
    points: String,
    reason: String,
}

/// 积分调整 from the member's page; pressed twice, it adjusts once (the
/// form's key is the idempotency key).
async fn adjust_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(member_id): Path<i64>,
    Form(form): Form<AdjustForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let points: i64 = form
        .points
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ApiError::invalid("调整积分应为正整数"))?;
    let delta = if form.direction == "debit" {
        -points
    } else {
        points
    };
    let request = PointsAdjustmentRequest {
        delta,
        reason: form.reason,
    };
    let idempotency =
        IdempotencyKey::parse(&format!("console-points-{}", form.form_key)).map(|key| {
            IdempotencyClaim {
                key,
                request_hash: kaquan_core::signing::body_hash_hex(
                    format!("points:{member_id}:{delta}:{}", request.reason).as_bytes(),
                ),
            }
        });
    let op = adjust_points(&state, &authed, member_id, &request, idempotency).await?;
    Ok(redirect_with(
        &format!("/members/{member_id}"),
        &format!(
            "已调整积分 {:+}，当前积分 {}",
            op.points_earned, op.points_after
        ),
    )
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageOnly {
    page: Option<i64>,
}

#[derive(Serialize)]
struct MessagesView {
    list: crate::lists::ListDto<crate::members::MemberMessageView>,
    pages: i64,
}

/// 消息记录: what members were told, one line per operation.
async fn messages_page(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<PageOnly>,
) -> PageResult {
    let list =
        crate::members::message_page(&state, &authed, ListPage::new(query.page, Some(50))).await?;
    let pages = (list.total + list.page_size - 1) / list.page_size;
    Ok(render(
        &state,
        "member_messages.html",
        &Page::new("消息记录", &authed),
        MessagesView { list, pages },
    ))
}
