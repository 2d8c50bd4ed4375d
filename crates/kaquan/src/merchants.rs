//! `kaquan merchant`: create and list merchants.

use crate::print_json;
use crate::MerchantCommand;
use anyhow::bail;
use kaquan_core::clock::format_datetime;
use kaquan_core::store::Store;
use serde_json::json;
use std::process::ExitCode;

pub(crate) async fn merchant_command(
    store: &dyn Store,
    merchant: Option<i64>,
    command: MerchantCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        MerchantCommand::Create { name, json } => {
            if name.trim().is_empty() {
                bail!("--name must not be empty");
            }
            let merchant = store
                .create_merchant(name.trim(), kaquan_web::now())
                .await?;
            if json {
                print_json(json!({ "merchant_id": merchant.id, "name": merchant.name }));
            } else {
                println!("已创建商户 {}：{}", merchant.id, merchant.name);
            }
        }
        MerchantCommand::List { json } => {
            let merchants = store.list_merchants().await?;
            if json {
                print_json(
                    json!({ "merchants": merchants.iter().map(|m| json!({"merchant_id": m.id, "name": m.name, "created_at": m.created_at})).collect::<Vec<_>>() }),
                );
            } else {
                for m in merchants {
                    println!("{}\t{}\t{}", m.id, m.name, format_datetime(m.created_at));
                }
            }
        }
        MerchantCommand::PrepaidPolicy { set, json } => {
            let merchant_id = crate::resolve_merchant(store, merchant).await?;
            if let Some(set) = set {
                let on = set == "on";
                let audit = crate::cli_audit(
                    merchant_id,
                    "set_prepaid_policy",
                    String::new(),
                    set.clone(),
                );
                store.set_prepaid_policy(merchant_id, on, &audit).await?;
            }
            let enabled = store.get_merchant(merchant_id).await?.prepaid_policy;
            if json {
                print_json(json!({
                    "merchant_id": merchant_id,
                    "enabled": enabled,
                    "rules": kaquan_core::prepaid::RULES_ZH,
                }));
            } else {
                println!("预付卡政策：{}", if enabled { "已开启" } else { "未开启" });
                for rule in kaquan_core::prepaid::RULES_ZH {
                    println!("- {rule}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
