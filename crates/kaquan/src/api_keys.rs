//! `kaquan api-key`: create, list and revoke open-API keys.

use crate::cli_audit;
use crate::print_json;
use crate::ApiKeyCommand;
use anyhow::anyhow;
use kaquan_core::secrets::MasterKey;
use kaquan_core::store::Store;
use serde_json::json;
use std::process::ExitCode;

pub(crate) async fn api_key_command(
    store: &dyn Store,
    master: &MasterKey,
    merchant_id: i64,
    command: ApiKeyCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        ApiKeyCommand::Create { label, json } => {
            let audit = cli_audit(merchant_id, "create_api_key", String::new(), String::new());
            let (key, secret) =
                kaquan_core::signing::create_api_key(store, master, merchant_id, &label, &audit)
                    .await
                    .map_err(|e| match e {
                        kaquan_core::StoreError::Conflict(_) => anyhow!(
                            "two API keys are already active: revoke one with `kaquan api-key revoke KEY_ID`"
                        ),
                        other => anyhow!("{other}"),
                    })?;
            if json {
                print_json(
                    json!({ "merchant_id": merchant_id, "key_id": key.key_id, "secret": secret }),
                );
            } else {
                println!("key_id: {}\nsecret: {secret}\n（secret 只显示这一次，请保存到商城系统的配置中）", key.key_id);
            }
        }
        ApiKeyCommand::List { json } => {
            let keys = store.list_api_keys(merchant_id).await?;
            if json {
                print_json(json!(keys
                    .iter()
                    .map(|k| json!({"key_id": k.key_id, "label": k.label, "active": k.active, "created_at": k.created_at}))
                    .collect::<Vec<_>>()));
            } else {
                for k in keys {
                    println!(
                        "{}\t{}\t{}",
                        k.key_id,
                        if k.active { "启用" } else { "已停用" },
                        k.label
                    );
                }
            }
        }
        ApiKeyCommand::Revoke { key_id } => {
            let key = store
                .list_api_keys(merchant_id)
                .await?
                .into_iter()
                .find(|k| k.key_id == key_id && k.active)
                .ok_or_else(|| anyhow!("no active key {key_id} for merchant {merchant_id}"))?;
            let audit = cli_audit(
                merchant_id,
                "revoke_api_key",
                format!("api_key={key_id}"),
                String::new(),
            );
            store.revoke_api_key(merchant_id, key.id, &audit).await?;
            eprintln!("已停用 {key_id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
