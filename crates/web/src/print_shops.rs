//! 印刷厂 (全局设置 → 印刷厂, `/api/v1/print-shops`): the print shops a
//! merchant sends passwords to, each with its age public key; exports with
//! passwords sealed to one (`print_shop_id` on the card list's export, the
//! background export and the batch page); and the batches that still hold
//! kaquan's own sealed copies, to purge once the shop has printed.

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Form, Json, Path};
use crate::forms::redirect_with;
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::Router;
use kaquan_core::age::Recipient;
use kaquan_core::auth::Permission;
use kaquan_core::clock::format_datetime;
use kaquan_core::print_shop::{check_new, PrintShop};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/print-shops", get(page).post(create_form))
        .route("/settings/print-shops/{id}/delete", post(delete_form))
        .route(
            "/api/v1/print-shops",
            get(list_print_shops).post(create_print_shop),
        )
        .route(
            "/api/v1/print-shops/{print_shop_id}",
            delete(delete_print_shop),
        )
}

/// How many batches the page lists that still hold copies.
const BATCHES_LISTED: i64 = 200;

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 3, "name": "城南印刷厂", "recipient": "age1hsl95zkclltetgmdcrf09vf306l6xnwp62xjmnvkwlpldyjtnuksud0k8g", "created_at": "2026-12-07 10:00"}))]
pub struct PrintShopDto {
    pub id: i64,
    pub name: String,
    /// The shop's age X25519 public key.
    pub recipient: String,
    pub created_at: String,
}

impl From<&PrintShop> for PrintShopDto {
    fn from(s: &PrintShop) -> Self {
        PrintShopDto {
            id: s.id,
            name: s.name.clone(),
            recipient: s.recipient.clone(),
            created_at: format_datetime(s.created_at),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "城南印刷厂", "recipient": "age1hsl95zkclltetgmdcrf09vf306l6xnwp62xjmnvkwlpldyjtnuksud0k8g"}))]
pub struct PrintShopRequest {
    #[schema(min_length = 1, max_length = 40)]
    pub name: String,
    /// What `age-keygen` printed as the public key (`age1…`).
    pub recipient: String,
}

async fn create(
    state: &AppState,
    authed: &Authed,
    request: &PrintShopRequest,
) -> ApiResult<PrintShop> {
    authed.require(Permission::CardsExportSecrets)?;
    let (name, recipient) =
        check_new(&request.name, &request.recipient).map_err(ApiError::invalid)?;
    let audit = authed.audit(
        "create_print_shop",
        name.clone(),
        format!("recipient={}", recipient.encode()),
    );
    Ok(state
        .store
        .create_print_shop(authed.merchant_id(), &name, &recipient, &audit)
        .await?)
}

async fn remove(state: &AppState, authed: &Authed, id: i64) -> ApiResult<()> {
    authed.require(Permission::CardsExportSecrets)?;
    let shop = state.store.get_print_shop(authed.merchant_id(), id).await?;
    let audit = authed.audit("delete_print_shop", shop.name, String::new());
    Ok(state
        .store
        .delete_print_shop(authed.merchant_id(), id, &audit)
        .await?)
}

async fn list_print_shops(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Vec<PrintShopDto>>> {
    authed.require(Permission::CardsExportSecrets)?;
    let shops = state.store.list_print_shops(authed.merchant_id()).await?;
    Ok(Json(shops.iter().map(PrintShopDto::from).collect()))
}

async fn create_print_shop(
    State(state): State<AppState>,
    authed: Authed,
    Json(request): Json<PrintShopRequest>,
) -> ApiResult<(StatusCode, Json<PrintShopDto>)> {
    let shop = create(&state, &authed, &request).await?;
    Ok((StatusCode::CREATED, Json(PrintShopDto::from(&shop))))
}

async fn delete_print_shop(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    remove(&state, &authed, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The shop an export is sealed to: `None` when none was asked for.
pub async fn chosen(
    state: &AppState,
    authed: &Authed,
    print_shop_id: Option<i64>,
) -> ApiResult<Option<PrintShop>> {
    let Some(id) = print_shop_id else {
        return Ok(None);
    };
    let shop = match state.store.get_print_shop(authed.merchant_id(), id).await {
        Err(kaquan_core::StoreError::NotFound) => {
            return Err(ApiError::invalid("找不到该印刷厂"));
        }
        found => found?,
    };
    Ok(Some(shop))
}

/// A `print_shop_id` as a query or form gives it: empty is none.
pub fn id_field(text: Option<&str>) -> ApiResult<Option<i64>> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid("print_shop_id 须为印刷厂编号")),
    }
}

/// Where the export written to `plain` is once sealed: `….xlsx.age`.
pub fn sealed_path(plain: &std::path::Path) -> PathBuf {
    let extension = plain.extension().and_then(|e| e.to_str()).unwrap_or("bin");
    plain.with_extension(format!("{extension}.age"))
}

/// Seals the export at `plain` to `shop`'s key: the sealed file replaces
/// it (the plaintext is removed) and is returned.
pub async fn seal(plain: PathBuf, shop: &PrintShop) -> ApiResult<PathBuf> {
    let recipient: Recipient = shop.recipient().map_err(ApiError::Internal)?;
    crate::off_runtime(move || {
        let sealed = sealed_path(&plain);
        let result = crate::exports::seal_file(&plain, &recipient, &sealed);
        let _ = std::fs::remove_file(&plain);
        match result {
            Ok(()) => Ok(sealed),
            Err(e) => {
                let _ = std::fs::remove_file(&sealed);
                Err(ApiError::Internal(format!("sealing an export: {e}")))
            }
        }
    })
    .await?
}

/// Writes the export of `request` to `plain`, then seals it to `shop` when
/// one is given; the file to send and how many cards it holds. Nothing is
/// left behind when it fails.
pub async fn write_sealed(
    kind: crate::exports::ExportKind,
    request: &crate::exports::ExportRequest<'_>,
    plain: PathBuf,
    shop: Option<&PrintShop>,
) -> ApiResult<(PathBuf, i64)> {
    let n = match kind.write(request, &plain).await {
        Ok(n) => n,
        Err(error) => {
            let _ = std::fs::remove_file(&plain);
            return Err(error);
        }
    };
    match shop {
        Some(shop) => Ok((seal(plain, shop).await?, n)),
        None => Ok((plain, n)),
    }
}

/// What a sealed download is.
pub const SEALED_CONTENT_TYPE: &str = "application/octet-stream";

#[derive(Serialize)]
struct ShopsView {
    shops: Vec<PrintShopDto>,
    /// Batches whose cards still hold sealed password copies.
    batches: Vec<(i64, String, i64)>,
}

async fn page(State(state): State<AppState>, authed: Authed) -> PageResult {
    authed.require(Permission::CardsExportSecrets)?;
    let m = authed.merchant_id();
    let shops = state.store.list_print_shops(m).await?;
    let batches = state.store.batches_with_copies(m, BATCHES_LISTED).await?;
    let view = ShopsView {
        shops: shops.iter().map(PrintShopDto::from).collect(),
        batches: batches
            .into_iter()
            .map(|b| (b.id, b.name, b.n_copies))
            .collect(),
    };
    Ok(render(
        &state,
        "print_shops.html",
        &Page::settings("印刷厂", &authed),
        view,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShopForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    recipient: String,
}

async fn create_form(
    State(state): State<AppState>,
    authed: Authed,
    Form(form): Form<ShopForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    let request = PrintShopRequest {
        name: form.name,
        recipient: form.recipient,
    };
    let shop = create(&state, &authed, &request).await?;
    Ok(redirect_with(
        "/settings/print-shops",
        &format!("已添加印刷厂 {}", shop.name),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsrfForm {
    csrf: String,
}

async fn delete_form(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    authed.check_form_csrf(&form.csrf)?;
    remove(&state, &authed, id).await?;
    Ok(redirect_with("/settings/print-shops", "已删除印刷厂"))
}
