//! `kaquan credits` and `kaquan operator`: a merchant's 券点 (balance,
//! statement, grants, purchases, 增加库存) and the installation's operators,
//! through the use cases the console and the API call. The command line
//! acts as the operator: whoever runs it holds the database.

use crate::staff::read_password;
use crate::{cli_audit, print_json, CreditsCommand, OperatorCommand};
use anyhow::anyhow;
use kaquan_core::audit::Actor;
use kaquan_core::auth::{check_staff_password, check_username, hash_staff_password, login_name};
use kaquan_core::credit::{
    self, format_credits, BuyStock, GrantCredits, PurchaseFilter, PurchaseState,
};
use kaquan_core::staff::NewStaff;
use kaquan_core::store::{Page, Store};
use serde_json::json;
use std::process::ExitCode;

pub(crate) async fn credits_command(
    store: &dyn Store,
    merchant_id: i64,
    command: CreditsCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        CreditsCommand::Balance { json } => balance(store, merchant_id, json).await?,
        CreditsCommand::Statement { page, json } => {
            statement(store, merchant_id, page, json).await?
        }
        CreditsCommand::Grant {
            credits,
            reason,
            json,
        } => grant(store, merchant_id, &credits, &reason, json).await?,
        CreditsCommand::Purchases { state, json } => {
            purchases(store, merchant_id, state.as_deref(), json).await?
        }
        CreditsCommand::Confirm { purchase, json } => {
            let p = store
                .decide_credit_purchase(
                    merchant_id,
                    purchase,
                    true,
                    &Actor::cli(),
                    kaquan_web::now(),
                )
                .await?
                .ok_or_else(|| anyhow!("购买申请 #{purchase} 不存在，或已确认、已取消"))?;
            if json {
                print_json(
                    json!({"purchase_id": p.id, "credits": p.credits, "state": p.state.code()}),
                );
            } else {
                println!("已确认收款：{} 付费券点已到账", p.credits);
            }
        }
        CreditsCommand::BuyStock {
            program,
            units,
            json,
        } => buy_stock(store, merchant_id, program, units, json).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn balance(store: &dyn Store, merchant_id: i64, json: bool) -> anyhow::Result<()> {
    let b = store.get_credit_balance(merchant_id).await?;
    if json {
        print_json(json!({"free_tenths": b.free_tenths, "paid_tenths": b.paid_tenths}));
    } else {
        println!(
            "券点 {}（免费 {}，付费 {}）",
            format_credits(b.total_tenths()),
            format_credits(b.free_tenths),
            format_credits(b.paid_tenths)
        );
    }
    Ok(())
}

async fn statement(
    store: &dyn Store,
    merchant_id: i64,
    page: i64,
    json: bool,
) -> anyhow::Result<()> {
    let page = Page::new(Some(page), Some(50));
    let (lines, total) = store.list_credit_transactions(merchant_id, page).await?;
    if json {
        print_json(json!({"total": total, "items": lines.iter().map(|t| json!({
            "id": t.id, "kind": t.kind.code(), "holder": t.holder.code(),
            "amount_tenths": t.amount_tenths, "balance_after_tenths": t.balance_after_tenths,
            "program_id": t.program_id, "purchase_id": t.purchase_id, "reason": t.reason,
            "created_at": t.created_at})).collect::<Vec<_>>()}));
        return Ok(());
    }
    for t in lines {
        println!(
            "{}\t{}\t{}\t{}\t余额 {}\t{}",
            kaquan_core::clock::format_datetime(t.created_at),
            t.kind.label_zh(),
            t.holder.label_zh(),
            format_credits(t.amount_tenths),
            format_credits(t.balance_after_tenths),
            t.reason
        );
    }
    Ok(())
}

async fn grant(
    store: &dyn Store,
    merchant_id: i64,
    credits: &str,
    reason: &str,
    json: bool,
) -> anyhow::Result<()> {
    let tenths = kaquan_web::credit_pages::parse_credits(credits)
        .ok_or_else(|| anyhow!("--credits 应为券点，至多一位小数，如 100 或 0.5"))?;
    let grant = GrantCredits {
        merchant_id,
        tenths,
        reason: reason.trim().to_owned(),
        expected_free_tenths: None,
        actor: Actor::cli(),
        now: kaquan_web::now(),
    };
    let t = credit::grant_credits(store, &grant)
        .await
        .map_err(|e| anyhow!(e.to_string()))?;
    if json {
        print_json(json!({"transaction_id": t.id, "free_tenths": t.balance_after_tenths}));
    } else {
        println!(
            "已赠送 {} 免费券点，免费券点余额 {}",
            format_credits(t.amount_tenths),
            format_credits(t.balance_after_tenths)
        );
    }
    Ok(())
}

async fn purchases(
    store: &dyn Store,
    merchant_id: i64,
    state: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let state = match state {
        None => None,
        Some(code) => Some(
            PurchaseState::parse(code)
                .ok_or_else(|| anyhow!("--state 应为 requested、confirmed 或 cancelled"))?,
        ),
    };
    let filter = PurchaseFilter {
        merchant_id: Some(merchant_id),
        state,
    };
    let (items, _) = store
        .list_credit_purchases(&filter, Page::new(Some(1), Some(200)))
        .await?;
    if json {
        print_json(json!({"items": items.iter().map(|p| json!({
            "id": p.id, "credits": p.credits, "amount_fen": p.amount_fen,
            "state": p.state.code(), "requested_at": p.requested_at})).collect::<Vec<_>>()}));
        return Ok(());
    }
    for p in items {
        println!(
            "#{}\t{} 券点\t¥{}\t{}\t{}",
            p.id,
            p.credits,
            p.credits,
            p.state.label_zh(),
            kaquan_core::clock::format_datetime(p.requested_at)
        );
    }
    Ok(())
}

async fn buy_stock(
    store: &dyn Store,
    merchant_id: i64,
    program_id: i64,
    units: i64,
    json: bool,
) -> anyhow::Result<()> {
    let buy = BuyStock {
        merchant_id,
        program_id,
        units,
        expected_quantity: None,
        actor: Actor::cli(),
        now: kaquan_web::now(),
    };
    let b = credit::buy_stock(store, &buy)
        .await
        .map_err(|e| anyhow!(e.to_string()))?;
    if json {
        print_json(json!({"stock_purchase_id": b.id, "units": b.units,
            "free_tenths": b.free_tenths, "paid_tenths": b.paid_tenths}));
    } else {
        println!(
            "已增加库存 {} 张，消耗免费券点 {}、付费券点 {}",
            b.units,
            format_credits(b.free_tenths),
            format_credits(b.paid_tenths)
        );
    }
    Ok(())
}

pub(crate) async fn operator_command(
    store: &dyn Store,
    merchant_id: i64,
    command: OperatorCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        OperatorCommand::Create {
            username,
            password_stdin,
            json,
        } => {
            let staff = match store.find_staff_by_username(username.trim()).await? {
                Some(staff) => staff,
                None => create_owner(store, merchant_id, &username, password_stdin).await?,
            };
            let audit = cli_audit(
                staff.merchant_id,
                "set_operator",
                staff.username.clone(),
                "operator=true".into(),
            );
            store.set_operator(staff.id, true, &audit).await?;
            if json {
                print_json(json!({"staff_id": staff.id, "username": staff.username}));
            } else {
                println!(
                    "{} 现在是平台运营，可在控制台“平台运营”赠送券点、确认购买",
                    staff.username
                );
            }
        }
        OperatorCommand::List { json } => {
            let mut names = Vec::new();
            for id in store.list_operators().await? {
                let staff = store.get_staff(id).await?;
                names.push((id, staff.username, staff.merchant_id));
            }
            if json {
                print_json(json!({"operators": names.iter().map(|(id, name, m)| json!({
                    "staff_id": id, "username": name, "merchant_id": m})).collect::<Vec<_>>()}));
            } else {
                for (id, name, m) in names {
                    println!("{id}\t{name}\t商户 #{m}");
                }
            }
        }
        OperatorCommand::Remove { username } => {
            let staff = store
                .find_staff_by_username(username.trim())
                .await?
                .ok_or_else(|| anyhow!("no staff account signs in as {username:?}"))?;
            let audit = cli_audit(
                staff.merchant_id,
                "set_operator",
                staff.username.clone(),
                "operator=false".into(),
            );
            store.set_operator(staff.id, false, &audit).await?;
            println!("{} 不再是平台运营", staff.username);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A new owner account of `merchant_id` to be the operator.
async fn create_owner(
    store: &dyn Store,
    merchant_id: i64,
    username: &str,
    password_stdin: bool,
) -> anyhow::Result<kaquan_core::staff::Staff> {
    check_username(username).map_err(|e| anyhow!(e))?;
    let role = store
        .list_roles(merchant_id)
        .await?
        .into_iter()
        .find(|r| r.name == "owner")
        .ok_or_else(|| anyhow!("merchant {merchant_id} has no owner role"))?;
    let password = read_password(password_stdin)?;
    check_staff_password(&password).map_err(|e| anyhow!(e))?;
    let username = login_name(merchant_id, username);
    let staff = NewStaff {
        merchant_id,
        username: username.clone(),
        name: username.clone(),
        phone: String::new(),
        role_id: role.id,
        password_hash: hash_staff_password(&password),
        must_change_password: false,
    };
    let staff = store.create_staff(&staff, kaquan_web::now()).await?;
    store
        .append_audit(&cli_audit(
            merchant_id,
            "create_staff",
            staff.username.clone(),
            "role=owner".into(),
        ))
        .await?;
    Ok(staff)
}
