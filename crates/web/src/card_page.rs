//! 卡券详情: one card with its state, batch, 券商, 对应商品, orders and the
//! operations that changed it (操作记录), read back from the audit log.

use crate::auth::Authed;
use crate::cards::CardDto;
use crate::error::{ApiError, ApiResult};
use crate::extract::Path;
use crate::pages::{render, Page, PageResult};
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use kaquan_core::audit::{AuditFilter, AuditRecord};
use kaquan_core::auth::Permission;
use kaquan_core::card::{Card, CardFilter};
use kaquan_core::clock::format_datetime;
use kaquan_core::pickup::order::PickupOrderFilter;
use kaquan_core::store::Page as ListPage;
use serde::Serialize;

/// The bulk operations a card's history looks through: the newest this many.
pub const CARD_HISTORY_SCAN: i64 = 200;

/// The audit actions whose target is a card filter.
const FILTER_ACTIONS: &[&str] = &[
    "activate_cards",
    "deactivate_cards",
    "void_cards",
    "restore_cards",
    "edit_cards",
    "link_goods",
    "purge_card_secrets",
    "export_cards",
    "export_qr_codes",
];

pub fn router() -> Router<AppState> {
    Router::new().route("/cards/{number}", get(card_page))
}

#[derive(Serialize)]
struct HistoryEntry {
    at: String,
    actor: String,
    action: String,
    detail: String,
    /// The operation had a state condition: it may have passed this card over.
    conditional: bool,
    n_affected: i64,
    sort_key: (i64, i64),
}

impl HistoryEntry {
    fn new(record: AuditRecord, conditional: bool) -> Self {
        let text = record.entry.text_zh();
        Self {
            at: format_datetime(record.entry.created_at),
            actor: record.entry.actor.label,
            action: text.action,
            detail: [text.channel.unwrap_or(""), &text.detail]
                .into_iter()
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
            conditional,
            n_affected: record.entry.n_affected,
            sort_key: (record.entry.created_at, record.id),
        }
    }
}

#[derive(Serialize)]
struct OrderLine {
    id: i64,
    status: &'static str,
    channel: &'static str,
    goods: String,
    created_at: String,
    tracking: String,
}

#[derive(Serialize)]
struct CardView {
    card: CardDto,
    batch_name: String,
    goods: Vec<String>,
    orders: Vec<OrderLine>,
    history: Vec<HistoryEntry>,
    scanned: i64,
}

/// The operations that changed `card`: the bulk ones whose filter chose it
/// (among the newest [`CARD_HISTORY_SCAN`]) and those that name its number.
async fn history(state: &AppState, merchant_id: i64, card: &Card) -> ApiResult<Vec<HistoryEntry>> {
    let bulk = AuditFilter {
        actions: FILTER_ACTIONS.iter().map(|a| (*a).to_owned()).collect(),
        ..Default::default()
    };
    let scan = ListPage::new(Some(1), Some(CARD_HISTORY_SCAN));
    let (records, _) = state.store.search_audit(merchant_id, &bulk, scan).await?;
    let mut entries: Vec<HistoryEntry> = records
        .into_iter()
        .filter_map(|r| {
            let conditional = CardFilter::from_description(&r.entry.target)?.covered(card)?;
            Some(HistoryEntry::new(r, conditional))
        })
        .collect();
    let named = AuditFilter {
        text: Some(card.number.clone()),
        ..Default::default()
    };
    let (records, _) = state.store.search_audit(merchant_id, &named, scan).await?;
    for record in records {
        if !FILTER_ACTIONS.contains(&record.entry.action.as_str()) {
            entries.push(HistoryEntry::new(record, false));
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.sort_key));
    Ok(entries)
}

async fn card_page(
    State(state): State<AppState>,
    authed: Authed,
    Path(number): Path<String>,
) -> PageResult {
    authed.require(Permission::CardsView)?;
    let m = authed.merchant_id();
    let card = state
        .store
        .get_card_by_number(m, &number)
        .await?
        .ok_or(ApiError::NotFound)?;
    let batch = state.store.get_batch(m, card.batch_id).await?;
    let goods = state.store.goods_of_card(m, card.id).await?;
    let by_card = PickupOrderFilter {
        card_number: Some(card.number.clone()),
        ..Default::default()
    };
    let (orders, _) = state
        .store
        .list_orders(m, &by_card, ListPage::default())
        .await?;
    let mut history = history(&state, m, &card).await?;
    history.push(HistoryEntry {
        at: format_datetime(card.created_at),
        actor: batch.created_by.clone(),
        action: "创建卡券".into(),
        detail: if card.activated_at == Some(card.created_at) {
            format!("批次 {}，生成后立即激活", batch.id)
        } else {
            format!("批次 {}", batch.id)
        },
        conditional: false,
        n_affected: batch.quantity,
        sort_key: (card.created_at, 0),
    });
    let view = CardView {
        card: CardDto::new(&card, crate::now()),
        batch_name: batch.name,
        goods: goods.into_iter().map(|g| g.name).collect(),
        orders: orders
            .iter()
            .map(|o| OrderLine {
                id: o.id,
                status: o.status.label_zh(),
                channel: o.channel.label_zh(),
                goods: o.goods_name.clone(),
                created_at: format_datetime(o.created_at),
                tracking: [o.carrier.as_deref(), o.tracking_number.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" "),
            })
            .collect(),
        history,
        scanned: CARD_HISTORY_SCAN,
    };
    Ok(render(
        &state,
        "card.html",
        &Page::new(&format!("卡 {}", view.card.number), &authed),
        view,
    ))
}
