//! 电子面单: 全局设置 → 电子面单设置 (the sender, the channels' accounts,
//! each carrier's channel), 电子面单发货 from the order list or the API, and
//! the printable label. For each order the waybill is claimed in the store
//! before the carrier is called, the carrier is given the same order id on
//! every try (`KQ` + the order id), and the order is shipped with the
//! waybill number under the same rules as shipping by hand (SMS C and the
//! events included). A failure on one order is reported for that order and
//! leaves the others shipped.

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult, RowErrorDto};
use crate::extract::{FormText, Json, Path};
use crate::forms::{redirect_with, FormPairs};
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use kaquan_core::auth::Permission;
use kaquan_core::pickup::order::{PickupOrder, Shipment};
use kaquan_core::pickup::OrderStatus;
use kaquan_core::waybill::{
    channel_order_id, check_settings, kuaidi100_sign, open_secrets, seal_kuaidi100, seal_sf,
    sf_msg_digest, CarrierChannel, WaybillChannel, WaybillClaim, WaybillSender, WaybillSettings,
    WaybillSettingsFields,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Where the channels' APIs are (an operator may point them at a sandbox:
/// `[waybill] sf_endpoint`, `kuaidi100_endpoint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaybillEndpoints {
    pub sf: String,
    pub kuaidi100: String,
}

impl Default for WaybillEndpoints {
    fn default() -> Self {
        Self {
            sf: "https://sfapi.sf-express.com/std/service".into(),
            kuaidi100: "https://api.kuaidi100.com/label/order".into(),
        }
    }
}

/// Rows of the settings form (one per carrier of 物流配置).
const CARRIER_ROWS_MAX: usize = 100;

/// Most orders one 电子面单发货 takes.
pub const WAYBILL_ORDERS_MAX: usize = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/waybill", get(settings_page).post(save_form))
        .route("/orders/waybills", post(waybills_form))
        .route("/orders/{order_id}/waybill", get(label_page))
        .route(
            "/api/v1/waybill-settings",
            get(get_waybill_settings).put(update_waybill_settings),
        )
        .route("/api/v1/orders/waybills", post(create_waybills))
}

// ---- calling the channels -------------------------------------------------------

/// Reads at most 256 KiB of a carrier's answer as JSON.
async fn answer_json(mut response: reqwest::Response) -> Result<Value, String> {
    const ANSWER_BYTES_MAX: usize = 256 * 1024;
    let status = response.status().as_u16();
    let mut kept = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| "快递公司的回复读取失败".to_owned())?
    {
        if kept.len() + chunk.len() > ANSWER_BYTES_MAX {
            return Err("快递公司的回复过大".into());
        }
        kept.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&kept).map_err(|_| format!("快递公司的回复无法解析（HTTP {status}）"))
}

/// POSTs a form to a carrier and reads its JSON answer.
async fn post_form(
    client: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<Value, String> {
    let response = client
        .post(url)
        .header(
            "content-type",
            "application/x-www-form-urlencoded;charset=UTF-8",
        )
        .body(serde_urlencoded::to_string(form).unwrap_or_default())
        .send()
        .await
        .map_err(|e| sent_error(&e))?;
    answer_json(response).await
}

fn sent_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "快递公司超时未回复，可以稍后重试（不会重复下单）".into()
    } else {
        "无法连接快递公司".into()
    }
}

/// One SF open-platform call: its business answer (`apiResultData`).
async fn sf_call(
    state: &AppState,
    client: &reqwest::Client,
    settings: &WaybillSettings,
    check_word: &str,
    service: &str,
    msg_data: &str,
) -> Result<Value, String> {
    let timestamp = (crate::now() * 1000).to_string();
    let digest = sf_msg_digest(msg_data, &timestamp, check_word);
    let request_id = kaquan_core::secrets::random_token_hex(16);
    let form = [
        ("partnerID", settings.fields.sf_partner_id.as_str()),
        ("requestID", request_id.as_str()),
        ("serviceCode", service),
        ("timestamp", timestamp.as_str()),
        ("msgData", msg_data),
        ("msgDigest", digest.as_str()),
    ];
    let outer = post_form(client, &state.waybill_endpoints.sf, &form).await?;
    if outer["apiResultCode"] != "A1000" {
        return Err(format!(
            "顺丰：{} {}",
            outer["apiResultCode"].as_str().unwrap_or(""),
            outer["apiErrorMsg"].as_str().unwrap_or("")
        ));
    }
    serde_json::from_str(outer["apiResultData"].as_str().unwrap_or("{}"))
        .map_err(|_| "顺丰的 apiResultData 无法解析".into())
}

fn sf_waybill_no(data: &Value) -> Option<String> {
    let list = data["msgData"]["waybillNoInfoList"].as_array()?;
    list.iter()
        .find(|w| w["waybillType"] == 1)
        .or(list.first())
        .and_then(|w| w["waybillNo"].as_str())
        .map(str::to_owned)
}

/// `EXP_RECE_CREATE_ORDER`; an order id SF has seen (`8016` 重复下单) is
/// looked up with `EXP_RECE_SEARCH_ORDER_RESP`, so a retry gets the first waybill.
async fn sf_create(
    state: &AppState,
    client: &reqwest::Client,
    settings: &WaybillSettings,
    check_word: &str,
    channel: &CarrierChannel,
    order: &PickupOrder,
) -> Result<String, String> {
    let s = &settings.fields.sender;
    let c = &order.consignee;
    let order_id = channel_order_id(order.id);
    let express_type: Value = channel
        .product_type
        .parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(channel.product_type.clone()));
    let msg_data = json!({
        "language": "zh-CN",
        "orderId": order_id,
        "cargoDetails": [{"name": order.goods_name, "count": 1}],
        "contactInfoList": [
            {"contactType": 1, "contact": s.name, "tel": s.phone, "country": "CN", "province": s.province, "city": s.city, "county": s.district, "address": s.address},
            {"contactType": 2, "contact": c.name, "mobile": c.phone, "country": "CN", "province": c.province, "city": c.city, "county": c.district, "address": c.address}
        ],
        "monthlyCard": channel.monthly_account,
        "expressTypeId": express_type,
        "payMethod": 1,
        "parcelQty": 1,
        "isReturnRoutelabel": 1,
    })
    .to_string();
    let data = sf_call(
        state,
        client,
        settings,
        check_word,
        "EXP_RECE_CREATE_ORDER",
        &msg_data,
    )
    .await?;
    if data["success"] == true {
        return sf_waybill_no(&data).ok_or_else(|| "顺丰没有返回运单号".into());
    }
    if data["errorCode"] == "8016" {
        let search = json!({"orderId": order_id, "language": "zh-CN"}).to_string();
        let found = sf_call(
            state,
            client,
            settings,
            check_word,
            "EXP_RECE_SEARCH_ORDER_RESP",
            &search,
        )
        .await?;
        if found["success"] == true {
            return sf_waybill_no(&found).ok_or_else(|| "顺丰没有返回运单号".into());
        }
    }
    Err(format!(
        "顺丰：{} {}",
        data["errorCode"].as_str().unwrap_or(""),
        data["errorMsg"].as_str().unwrap_or("")
    ))
}

/// 快递100 `label/order` with `reorder=false`: the same order id within
/// 48 hours answers the first waybill.
async fn kuaidi100_create(
    state: &AppState,
    client: &reqwest::Client,
    settings: &WaybillSettings,
    secret: &str,
    channel: &CarrierChannel,
    order: &PickupOrder,
) -> Result<String, String> {
    let s = &settings.fields.sender;
    let c = &order.consignee;
    let param = json!({
        "kuaidicom": channel.carrier_code,
        "recMan": {"name": c.name, "mobile": c.phone, "province": c.province, "city": c.city, "district": c.district, "addr": c.address},
        "sendMan": {"name": s.name, "tel": s.phone, "province": s.province, "city": s.city, "district": s.district, "addr": s.address},
        "cargo": order.goods_name,
        "count": 1,
        "payType": "MONTHLY",
        "expType": channel.product_type,
        "partnerId": channel.monthly_account,
        "orderId": channel_order_id(order.id),
        "reorder": false,
        "printType": "NON",
    })
    .to_string();
    let t = (crate::now() * 1000).to_string();
    let key = settings.fields.kuaidi100_key.as_str();
    let sign = kuaidi100_sign(&param, &t, key, secret);
    let form = [
        ("key", key),
        ("method", "order"),
        ("t", t.as_str()),
        ("param", param.as_str()),
        ("sign", sign.as_str()),
    ];
    let answer = post_form(client, &state.waybill_endpoints.kuaidi100, &form).await?;
    if answer["code"] == 200 {
        if let Some(no) = answer["data"]["kuaidinum"].as_str() {
            return Ok(no.to_owned());
        }
    }
    Err(format!(
        "快递100：{} {}",
        answer["code"],
        answer["message"].as_str().unwrap_or("")
    ))
}

/// What 电子面单发货 did with one order.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"order_id": 88, "carrier": "顺丰速运", "waybill_no": "SF7444407670710", "shipped": true, "error": null}))]
pub struct WaybillResultDto {
    pub order_id: i64,
    pub carrier: String,
    pub waybill_no: Option<String>,
    /// Whether the order is shipped now (with this waybill).
    pub shipped: bool,
    pub error: Option<String>,
}

/// Makes one order's waybill (or finds it) and ships the order with it.
async fn waybill_for(
    state: &AppState,
    authed: &Authed,
    client: &reqwest::Client,
    settings: &WaybillSettings,
    channel: &CarrierChannel,
    order_id: i64,
) -> Result<String, String> {
    let m = authed.merchant_id();
    let order = match state.store.get_order(m, order_id).await {
        Ok(order) => order,
        Err(kaquan_core::StoreError::NotFound) => return Err("找不到该订单".into()),
        Err(error) => return Err(format!("读取订单失败：{error}")),
    };
    if order.status != OrderStatus::Pending {
        return Err("订单不是待发状态".into());
    }
    if order.consignee.name.is_empty() {
        return Err("到店提货的订单不需要发货".into());
    }
    let claim = state
        .store
        .claim_waybill(m, order_id, &channel.carrier, crate::now())
        .await
        .map_err(|e| format!("电子面单记录失败：{e}"))?;
    let waybill_no = match claim {
        WaybillClaim::Busy => return Err("正在生成电子面单，请稍后再试".into()),
        WaybillClaim::Done(no) => no,
        WaybillClaim::Call => {
            let (check_word, secret) = open_secrets(&state.master, settings);
            let made = match channel.channel {
                WaybillChannel::SfExpress => match check_word {
                    Some(cw) => sf_create(state, client, settings, &cw, channel, &order).await,
                    None => Err("顺丰校验码无法解密，请重新填写".into()),
                },
                WaybillChannel::Kuaidi100 => match secret {
                    Some(s) => kuaidi100_create(state, client, settings, &s, channel, &order).await,
                    None => Err("快递100 secret 无法解密，请重新填写".into()),
                },
            };
            let recorded = made.as_deref().map_err(String::as_str);
            state
                .store
                .record_waybill(m, order_id, recorded, crate::now())
                .await
                .map_err(|e| format!("电子面单记录失败：{e}"))?;
            made?
        }
    };
    let tracking = kaquan_core::pickup::check_tracking_number(&waybill_no)?;
    let shipment = Shipment {
        order_id,
        carrier: channel.carrier.clone(),
        tracking_number: tracking,
    };
    state
        .store
        .ship_orders(
            m,
            &[shipment],
            crate::now(),
            &authed.audit(
                "ship_orders",
                format!("order={order_id}"),
                format!("电子面单 {waybill_no}"),
            ),
        )
        .await
        .map_err(|e| format!("发货失败：{e}"))?;
    Ok(waybill_no)
}

/// 电子面单发货 of the orders, four carriers' calls at a time.
async fn make_waybills(
    state: &AppState,
    authed: &Authed,
    order_ids: Vec<i64>,
    carrier: &str,
) -> ApiResult<Vec<WaybillResultDto>> {
    authed.require(Permission::OrdersManage)?;
    if order_ids.is_empty() || order_ids.len() > WAYBILL_ORDERS_MAX {
        return Err(ApiError::invalid(format!(
            "请选择 1–{WAYBILL_ORDERS_MAX} 个订单"
        )));
    }
    let settings = state
        .store
        .get_waybill_settings(authed.merchant_id())
        .await?
        .ok_or_else(|| ApiError::invalid("请先在全局设置中完成电子面单设置"))?;
    let channel = settings
        .fields
        .carriers
        .iter()
        .find(|c| c.carrier == carrier)
        .cloned()
        .ok_or_else(|| ApiError::invalid(format!("物流公司「{carrier}」没有配置电子面单")))?;
    let client = crate::sms::http_client();
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
    let mut calls = tokio::task::JoinSet::new();
    let mut ids = order_ids;
    ids.dedup();
    for (index, order_id) in ids.into_iter().enumerate() {
        let (state, authed, client, settings, channel, slots) = (
            state.clone(),
            authed.clone(),
            client.clone(),
            settings.clone(),
            channel.clone(),
            std::sync::Arc::clone(&slots),
        );
        calls.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let made = waybill_for(&state, &authed, &client, &settings, &channel, order_id).await;
            (index, order_id, made)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = calls.join_next().await {
        let (index, order_id, made) =
            joined.map_err(|e| ApiError::Internal(format!("a waybill task failed: {e}")))?;
        results.push((
            index,
            WaybillResultDto {
                order_id,
                carrier: carrier.to_owned(),
                shipped: made.is_ok(),
                waybill_no: made.as_ref().ok().cloned(),
                error: made.err(),
            },
        ));
    }
    results.sort_by_key(|(index, _)| *index);
    Ok(results.into_iter().map(|(_, r)| r).collect())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"order_ids": [88, 89], "carrier": "顺丰速运"}))]
pub struct WaybillsRequest {
    #[schema(min_items = 1, max_items = 200)]
    pub order_ids: Vec<i64>,
    /// A carrier of 物流配置 with an e-waybill channel.
    #[schema(min_length = 1, max_length = 32)]
    pub carrier: String,
}

/// The outcome of 电子面单发货, order by order.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"n_shipped": 1, "results": [{"order_id": 88, "carrier": "顺丰速运", "waybill_no": "SF7444407670710", "shipped": true, "error": null}]}))]
pub struct WaybillsDto {
    pub n_shipped: usize,
    pub results: Vec<WaybillResultDto>,
}

async fn create_waybills(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<WaybillsRequest>,
) -> ApiResult<Json<WaybillsDto>> {
    let results = make_waybills(&state, &authed, request.order_ids, request.carrier.trim()).await?;
    Ok(Json(WaybillsDto {
        n_shipped: results.iter().filter(|r| r.shipped).count(),
        results,
    }))
}

async fn waybills_form(
    State(state): State<AppState>,
    authed: Authed,
    FormText(body): FormText,
) -> PageResult {
    let form = FormPairs::parse(&body, &["csrf", "order_id", "carrier"])?;
    authed.check_form_csrf(&form.value("csrf"))?;
    let ids: Result<Vec<i64>, _> = form.all("order_id").iter().map(|id| id.parse()).collect();
    let ids = ids.map_err(|_| ApiError::invalid("订单号无效"))?;
    let results = match make_waybills(&state, &authed, ids, form.value("carrier").trim()).await {
        Ok(results) => results,
        Err(ApiError::Invalid(message, _)) => {
            return Ok(crate::order_pages::pending_orders_page(
                &state,
                &authed,
                Vec::new(),
                Some(message),
            )
            .await?)
        }
        Err(other) => return Err(other.into()),
    };
    let shipped = results.iter().filter(|r| r.shipped).count();
    let failed: Vec<RowErrorDto> = results
        .iter()
        .filter_map(|r| {
            r.error.as_ref().map(|e| RowErrorDto {
                line: r.order_id as usize,
                message: e.clone(),
            })
        })
        .collect();
    if failed.is_empty() {
        return Ok(redirect_with(
            "/orders?status=shipped",
            &format!("电子面单发货完成：{shipped} 个订单已发货，可在订单详情中打印面单"),
        ));
    }
    let message = format!(
        "电子面单发货：{shipped} 个订单已发货，{} 个订单失败（下表，订单号与原因）",
        failed.len()
    );
    Ok(crate::order_pages::pending_orders_page(&state, &authed, failed, Some(message)).await?)
}

/// The label to print: sender, receiver, goods, carrier and waybill number
/// with its QR code, sized for a 100 × 150 mm thermal label.
async fn label_page(
    State(state): State<AppState>,
    authed: Authed,
    Path(order_id): Path<i64>,
) -> PageResult {
    authed.require(Permission::OrdersManage)?;
    let m = authed.merchant_id();
    let order = state.store.get_order(m, order_id).await?;
    let (Some(carrier), Some(number)) = (order.carrier.clone(), order.tracking_number.clone())
    else {
        return Err(ApiError::NotFound.into());
    };
    let sender = state
        .store
        .get_waybill_settings(m)
        .await?
        .map(|s| s.fields.sender)
        .unwrap_or_default();
    let qr = qrcode::QrCode::new(number.as_bytes())
        .map(|code| crate::exports::qr_svg(&code))
        .unwrap_or_default();
    let c = &order.consignee;
    Ok(render(
        &state,
        "waybill_label.html",
        &Page::new("打印面单", &authed),
        minijinja::context! {
            order_id => order.id,
            carrier => carrier,
            number => number,
            qr => minijinja::Value::from_safe_string(qr),
            sender => json!({"name": sender.name, "phone": sender.phone, "address": format!("{}{}{}{}", sender.province, sender.city, sender.district, sender.address)}),
            receiver => json!({"name": c.name, "phone": c.phone, "address": format!("{}{}{}{}", c.province, c.city, c.district, c.address)}),
            goods => order.goods_name,
        },
    ))
}

// ---- settings --------------------------------------------------------------------

/// One carrier's e-waybill channel.
#[derive(Serialize, Deserialize, Clone, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"carrier": "省外顺丰", "channel": "sf", "monthly_account": "7551234567", "product_type": "2", "carrier_code": ""}))]
pub struct CarrierChannelDto {
    /// A carrier of 物流配置 (a common one or the merchant's own, such as 省外顺丰).
    #[schema(min_length = 1, max_length = 32)]
    pub carrier: String,
    /// `sf` (顺丰开放平台) or `kuaidi100`.
    #[schema(pattern = "^(sf|kuaidi100)$")]
    pub channel: String,
    /// 月结代码.
    #[schema(max_length = 64)]
    pub monthly_account: String,
    /// 产品类型 (SF expressTypeId such as 1 标快, 2 特快; 快递100 expType such as 标准快递).
    #[schema(max_length = 64)]
    pub product_type: String,
    /// 快递100's carrier code (kuaidicom), such as `zhongtong`; empty for SF.
    #[serde(default)]
    #[schema(max_length = 64)]
    pub carrier_code: String,
}

/// 电子面单设置 as shown: the SF 校验码 and the 快递100 secret never,
/// only whether one is saved.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"sender_name": "果园仓", "sender_phone": "0571-88880000", "sender_province": "浙江省", "sender_city": "杭州市", "sender_district": "西湖区", "sender_address": "文三路 1 号", "sf_partner_id": "KQ_SF", "has_sf_check_word": true, "kuaidi100_key": "", "has_kuaidi100_secret": false, "carriers": [{"carrier": "顺丰速运", "channel": "sf", "monthly_account": "7551234567", "product_type": "1", "carrier_code": ""}]}))]
pub struct WaybillSettingsDto {
    pub sender_name: String,
    pub sender_phone: String,
    pub sender_province: String,
    pub sender_city: String,
    pub sender_district: String,
    pub sender_address: String,
    /// SF 顾客编码 (partnerID).
    pub sf_partner_id: String,
    pub has_sf_check_word: bool,
    pub kuaidi100_key: String,
    pub has_kuaidi100_secret: bool,
    pub carriers: Vec<CarrierChannelDto>,
}

impl WaybillSettingsDto {
    fn new(settings: Option<&WaybillSettings>) -> Self {
        let default = WaybillSettings::default();
        let s = settings.unwrap_or(&default);
        let f = &s.fields;
        Self {
            sender_name: f.sender.name.clone(),
            sender_phone: f.sender.phone.clone(),
            sender_province: f.sender.province.clone(),
            sender_city: f.sender.city.clone(),
            sender_district: f.sender.district.clone(),
            sender_address: f.sender.address.clone(),
            sf_partner_id: f.sf_partner_id.clone(),
            has_sf_check_word: s.sf_check_word_sealed.is_some(),
            kuaidi100_key: f.kuaidi100_key.clone(),
            has_kuaidi100_secret: s.kuaidi100_secret_sealed.is_some(),
            carriers: f
                .carriers
                .iter()
                .map(|c| CarrierChannelDto {
                    carrier: c.carrier.clone(),
                    channel: c.channel.code().into(),
                    monthly_account: c.monthly_account.clone(),
                    product_type: c.product_type.clone(),
                    carrier_code: c.carrier_code.clone(),
                })
                .collect(),
        }
    }
}

/// 电子面单设置 to save; leave `sf_check_word` / `kuaidi100_secret` out to keep the saved ones.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"sender_name": "果园仓", "sender_phone": "0571-88880000", "sender_province": "浙江省", "sender_city": "杭州市", "sender_district": "西湖区", "sender_address": "文三路 1 号", "sf_partner_id": "KQ_SF", "sf_check_word": "example-check-word", "carriers": [{"carrier": "顺丰速运", "channel": "sf", "monthly_account": "7551234567", "product_type": "1"}]}))]
pub struct WaybillSettingsRequest {
    #[schema(max_length = 64)]
    pub sender_name: String,
    #[schema(max_length = 20)]
    pub sender_phone: String,
    #[schema(max_length = 32)]
    pub sender_province: String,
    #[schema(max_length = 32)]
    pub sender_city: String,
    #[schema(max_length = 32)]
    pub sender_district: String,
    #[schema(max_length = 100)]
    pub sender_address: String,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub sf_partner_id: String,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub sf_check_word: String,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub kuaidi100_key: String,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub kuaidi100_secret: String,
    #[serde(default)]
    #[schema(max_items = 30)]
    pub carriers: Vec<CarrierChannelDto>,
}

async fn save(
    state: &AppState,
    authed: &Authed,
    r: WaybillSettingsRequest,
) -> ApiResult<WaybillSettings> {
    authed.require(Permission::OrdersManage)?;
    let m = authed.merchant_id();
    let carriers = r
        .carriers
        .iter()
        .map(|c| {
            Ok(CarrierChannel {
                carrier: c.carrier.trim().to_owned(),
                channel: WaybillChannel::parse(&c.channel)
                    .ok_or_else(|| ApiError::invalid("channel 须为 sf 或 kuaidi100"))?,
                monthly_account: c.monthly_account.trim().to_owned(),
                product_type: c.product_type.trim().to_owned(),
                carrier_code: c.carrier_code.trim().to_owned(),
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let fields = WaybillSettingsFields {
        sender: WaybillSender {
            name: r.sender_name.trim().to_owned(),
            phone: r.sender_phone.trim().to_owned(),
            province: r.sender_province.trim().to_owned(),
            city: r.sender_city.trim().to_owned(),
            district: r.sender_district.trim().to_owned(),
            address: r.sender_address.trim().to_owned(),
        },
        sf_partner_id: r.sf_partner_id.trim().to_owned(),
        sf_check_word: r.sf_check_word.trim().to_owned(),
        kuaidi100_key: r.kuaidi100_key.trim().to_owned(),
        kuaidi100_secret: r.kuaidi100_secret.trim().to_owned(),
        carriers,
    };
    let saved = state.store.get_waybill_settings(m).await?;
    let known = crate::orders::all_carriers(state, m).await?;
    check_settings(&fields, saved.as_ref(), &known).map_err(ApiError::invalid)?;
    let merchant = state.store.get_merchant(m).await?;
    let kv = merchant.key_version;
    // A secret kept across a key rotation is sealed again with the new key.
    let (old_sf, old_kd) = saved
        .as_ref()
        .map(|s| open_secrets(&state.master, s))
        .unwrap_or_default();
    let sf = Some(fields.sf_check_word.clone())
        .filter(|s| !s.is_empty())
        .or(old_sf);
    let kd = Some(fields.kuaidi100_secret.clone())
        .filter(|s| !s.is_empty())
        .or(old_kd);
    let settings = WaybillSettings {
        merchant_id: m,
        fields: WaybillSettingsFields {
            sf_check_word: String::new(),
            kuaidi100_secret: String::new(),
            ..fields
        },
        sf_check_word_sealed: sf.map(|s| seal_sf(&state.master, m, kv, &s)),
        kuaidi100_secret_sealed: kd.map(|s| seal_kuaidi100(&state.master, m, kv, &s)),
        key_version: kv,
        updated_at: crate::now(),
    };
    let detail = format!("{} 家物流", settings.fields.carriers.len());
    state
        .store
        .save_waybill_settings(
            &settings,
            &authed.audit("save_waybill_settings", String::new(), detail),
        )
        .await?;
    Ok(settings)
}

async fn get_waybill_settings(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<WaybillSettingsDto>> {
    authed.require(Permission::OrdersManage)?;
    let settings = state
        .store
        .get_waybill_settings(authed.merchant_id())
        .await?;
    Ok(Json(WaybillSettingsDto::new(settings.as_ref())))
}

async fn update_waybill_settings(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<WaybillSettingsRequest>,
) -> ApiResult<Json<WaybillSettingsDto>> {
    let saved = save(&state, &authed, request).await?;
    Ok(Json(WaybillSettingsDto::new(Some(&saved))))
}

async fn settings_view(
    state: &AppState,
    authed: &Authed,
    message: Option<String>,
) -> ApiResult<Response> {
    let m = authed.merchant_id();
    let settings = state.store.get_waybill_settings(m).await?;
    let dto = WaybillSettingsDto::new(settings.as_ref());
    let carriers: Vec<Value> = crate::orders::all_carriers(state, m)
        .await?
        .into_iter()
        .map(|name| {
            let set = dto.carriers.iter().find(|c| c.carrier == name);
            json!({"name": name, "channel": set.map(|c| c.channel.clone()).unwrap_or_default(),
                   "monthly_account": set.map(|c| c.monthly_account.clone()).unwrap_or_default(),
                   "product_type": set.map(|c| c.product_type.clone()).unwrap_or_default(),
                   "carrier_code": set.map(|c| c.carrier_code.clone()).unwrap_or_default()})
        })
        .collect();
    Ok(render(
        state,
        "waybill_settings.html",
        &Page::settings("物流配置", authed).with_message(message),
        minijinja::context! { settings => dto, carriers => carriers },
    ))
}

async fn settings_page(
    State(state): State<AppState>,
    authed: Authed,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> PageResult {
    authed.require(Permission::OrdersManage)?;
    let message = query.get("msg").cloned();
    Ok(settings_view(&state, &authed, message).await?)
}

/// The console's form: one row per carrier of 物流配置, `channel_N` empty
/// for a carrier without e-waybills.
async fn save_form(
    State(state): State<AppState>,
    authed: Authed,
    FormText(body): FormText,
) -> PageResult {
    let form = FormPairs::parse_any(&body)?;
    authed.check_form_csrf(&form.value("csrf"))?;
    let known = [
        "csrf",
        "sender_name",
        "sender_phone",
        "sender_province",
        "sender_city",
        "sender_district",
        "sender_address",
        "sf_partner_id",
        "sf_check_word",
        "kuaidi100_key",
        "kuaidi100_secret",
    ];
    let row_fields = [
        "carrier_",
        "channel_",
        "monthly_account_",
        "product_type_",
        "carrier_code_",
    ];
    // A misspelled key is refused, never ignored; rows are `name_N`.
    for key in form.keys() {
        let in_row = row_fields.iter().any(|prefix| {
            key.strip_prefix(prefix)
                .is_some_and(|n| n.parse::<usize>().is_ok_and(|n| n < CARRIER_ROWS_MAX))
        });
        if !known.contains(&key) && !in_row {
            return Err(crate::extract::unknown_field(key).into());
        }
    }
    let mut carriers = Vec::new();
    for index in 0..CARRIER_ROWS_MAX {
        let field = |name: &str| form.value(&format!("{name}{index}"));
        let channel = field("channel_");
        if !channel.is_empty() {
            carriers.push(CarrierChannelDto {
                carrier: field("carrier_"),
                channel,
                monthly_account: field("monthly_account_"),
                product_type: field("product_type_"),
                carrier_code: field("carrier_code_"),
            });
        }
    }
    let request = WaybillSettingsRequest {
        sender_name: form.value("sender_name"),
        sender_phone: form.value("sender_phone"),
        sender_province: form.value("sender_province"),
        sender_city: form.value("sender_city"),
        sender_district: form.value("sender_district"),
        sender_address: form.value("sender_address"),
        sf_partner_id: form.value("sf_partner_id"),
        sf_check_word: form.value("sf_check_word"),
        kuaidi100_key: form.value("kuaidi100_key"),
        kuaidi100_secret: form.value("kuaidi100_secret"),
        carriers,
    };
    match save(&state, &authed, request).await {
        Ok(_) => Ok(redirect_with("/settings/waybill", "电子面单设置已保存")),
        Err(ApiError::Invalid(message, _)) => {
            Ok(settings_view(&state, &authed, Some(message)).await?)
        }
        Err(other) => Err(other.into()),
    }
}
