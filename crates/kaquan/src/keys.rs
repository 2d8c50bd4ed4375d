//! `kaquan keys`: key rotation per merchant with the re-seal of its sealed
//! copies, and `rewrap`, which replaces the key file through the key ring
//! (`kaquan_core::keys`).

use crate::{cli_audit, load_master_key, print_json, Config, KeysCommand};
use anyhow::{anyhow, bail};
use kaquan_core::keys::{open_ring, reseal_step, wrap_root, Resealable};
use kaquan_core::secrets::MasterKey;
use kaquan_core::store::Store;
use serde_json::json;
use std::io::Write;
use std::process::ExitCode;

/// Rows re-sealed per step.
pub const RESEAL_STEP: i64 = 1_000;

/// The root every key is derived from: the key file's key, or what it
/// opens of the key ring once a rewrap stored one.
pub async fn load_root_key(
    config: &Config,
    store: &dyn Store,
    create: bool,
) -> anyhow::Result<MasterKey> {
    let file_key = load_master_key(config, create)?;
    let ring = store.key_ring().await?;
    open_ring(ring.as_deref(), &file_key).map_err(|e| anyhow!(e))
}

pub(crate) async fn keys_command(
    config: &Config,
    store: &dyn Store,
    merchant_id: i64,
    command: KeysCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Status { json } => status(store, json).await,
        KeysCommand::Rotate { json } => {
            let root = load_root_key(config, store, false).await?;
            let audit = cli_audit(merchant_id, "rotate_key", String::new(), String::new());
            let version = store.rotate_key(merchant_id, &audit).await?;
            eprintln!(
                "商户 {merchant_id} 的密钥版本已升至 v{version}；新的密码和兑换码用新版本加密。"
            );
            reseal_all(store, &root, merchant_id, json).await
        }
        KeysCommand::Reseal { json } => {
            let root = load_root_key(config, store, false).await?;
            reseal_all(store, &root, merchant_id, json).await
        }
        KeysCommand::Rewrap { new_key_file } => rewrap(config, store, &new_key_file).await,
    }
}

async fn status(store: &dyn Store, json: bool) -> anyhow::Result<ExitCode> {
    let mut merchants = Vec::new();
    for m in store.list_merchants().await? {
        let version = m.key_version;
        let mut pending = serde_json::Map::new();
        for kind in Resealable::ALL {
            let n = store.count_copies_below(m.id, kind, version).await?;
            pending.insert(kind.code().into(), n.into());
        }
        merchants.push(json!({"merchant_id": m.id, "name": m.name, "key_version": version, "pending": pending}));
    }
    let ring = store.key_ring().await?.is_some();
    if json {
        print_json(json!({"key_ring": ring, "merchants": merchants}));
    } else {
        println!(
            "密钥环：{}",
            if ring {
                "已启用（kaquan keys rewrap）"
            } else {
                "未启用（密钥文件即根密钥）"
            }
        );
        for m in &merchants {
            println!(
                "商户 {} {}：密钥版本 v{}，待重新加密 卡密码 {}、兑换码 {}",
                m["merchant_id"],
                m["name"],
                m["key_version"],
                m["pending"]["cards"],
                m["pending"]["codes"]
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Re-seals every copy below the merchant's version, printing progress.
async fn reseal_all(
    store: &dyn Store,
    root: &MasterKey,
    merchant_id: i64,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let version = store.get_merchant(merchant_id).await?.key_version;
    let mut report = serde_json::Map::new();
    for kind in Resealable::ALL {
        let total = store.count_copies_below(merchant_id, kind, version).await?;
        let (mut done, mut unreadable, mut after) = (0, 0, 0);
        while let Some(cursor) = {
            let step = reseal_step(store, root, merchant_id, kind, (after, RESEAL_STEP)).await?;
            done += step.resealed;
            unreadable += step.unreadable;
            step.cursor
        } {
            after = cursor;
            eprint!("\r重新加密{}：{done} / {total}", kind.label_zh());
            let _ = std::io::stderr().flush();
        }
        eprintln!("\r重新加密{}：{done} / {total}，完成", kind.label_zh());
        report.insert(
            kind.code().into(),
            json!({"resealed": done, "unreadable": unreadable}),
        );
        if unreadable > 0 {
            eprintln!(
                "{unreadable} 份{}副本无法用其密钥版本打开，保持原样（kaquan verify 会报告）",
                kind.label_zh()
            );
        }
    }
    if json {
        print_json(json!({"merchant_id": merchant_id, "key_version": version, "resealed": report}));
    }
    Ok(ExitCode::SUCCESS)
}

/// Stores the root sealed under the new key file's key (made when absent).
async fn rewrap(
    config: &Config,
    store: &dyn Store,
    new_key_file: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let root = load_root_key(config, store, false).await?;
    let new_key = match std::fs::read_to_string(new_key_file) {
        Ok(text) => MasterKey::from_hex(&text)
            .ok_or_else(|| anyhow!("{} is not 64 hex digits", new_key_file.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = MasterKey::generate();
            crate::write_private_file(new_key_file, &format!("{}\n", key.to_hex()))?;
            key
        }
        Err(e) => bail!("cannot read {}: {e}", new_key_file.display()),
    };
    let previous = store.key_ring().await?;
    let ring = wrap_root(&root, &new_key);
    if !store.set_key_ring(&ring, previous.as_deref()).await? {
        bail!("another rewrap changed the key ring first; run it again");
    }
    let fingerprint = new_key.fingerprint();
    let mut audit = cli_audit(
        0,
        "rewrap_keys",
        String::new(),
        format!("fingerprint={fingerprint}"),
    );
    for m in store.list_merchants().await? {
        audit.merchant_id = m.id;
        store.append_audit(&audit).await?;
    }
    eprintln!(
        "密钥环已用新密钥文件 {} 重新封装（指纹 {fingerprint}）。从现在起只有它能打开本数据库：请把配置的 key_file 指向它（或替换旧文件），重启服务，并安全销毁旧密钥文件。",
        new_key_file.display()
    );
    Ok(ExitCode::SUCCESS)
}
