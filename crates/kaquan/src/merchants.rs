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
    }
    Ok(ExitCode::SUCCESS)
}
