//! `kaquan ecards`: 电子卡密 from the command line — the products with
//! their stock counts, a large stock file imported with a progress bar
//! (all or nothing, duplicates skipped and listed), and 补发缺货.

use crate::{print_json, EcardsCommand};
use anyhow::{anyhow, bail};
use kaquan_core::audit::Actor;
use kaquan_core::ecard::usecases::{self, ImportOutcome, ImportRequest, IMPORT_ROWS_MAX};
use kaquan_core::secrets::MasterKey;
use kaquan_core::store::Store;
use kaquan_web::tables::TableLimits;
use serde_json::json;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub(crate) async fn ecards_command(
    store: &dyn Store,
    master: &MasterKey,
    merchant_id: i64,
    command: EcardsCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        EcardsCommand::Products { json } => products(store, merchant_id, json).await?,
        EcardsCommand::Import {
            product,
            file,
            json,
        } => return import(store, master, merchant_id, product, &file, json).await,
        EcardsCommand::DeliverWaiting { json } => {
            let n = store
                .deliver_waiting(merchant_id, &Actor::cli(), kaquan_web::now())
                .await?;
            if json {
                print_json(json!({"delivered_lines": n}));
            } else {
                println!("已补发 {n} 个缺货订单行");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn products(store: &dyn Store, merchant_id: i64, json: bool) -> anyhow::Result<()> {
    let now = kaquan_web::now();
    let mut products = Vec::new();
    for p in store.list_ecard_products(merchant_id).await? {
        let counts = store.ecard_stock_counts(merchant_id, p.id, now).await?;
        products.push((p, counts));
    }
    if json {
        let items: Vec<_> = products
            .iter()
            .map(|(p, c)| {
                json!({"id": p.id, "name": p.fields.name, "delivery_form": p.fields.delivery_form.code(),
                       "available": c.available, "delivered": c.delivered, "used": c.used,
                       "expired": c.expired, "voided": c.voided})
            })
            .collect();
        print_json(json!(items));
        return Ok(());
    }
    println!("编号\t商品\t发货形式\t可用\t已发货\t已核销\t已过期\t已作废");
    for (p, c) in &products {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            p.id,
            p.fields.name,
            p.fields.delivery_form.label_zh(),
            c.available,
            c.delivered,
            c.used,
            c.expired,
            c.voided
        );
    }
    Ok(())
}

/// Shows how many rows are sealed: a bar on a terminal, a line every 10%
/// elsewhere; `usize::MAX` in `done` stops it silently.
fn spawn_progress(done: Arc<AtomicUsize>, total: usize) -> tokio::task::JoinHandle<()> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "加密 [{bar:25}] {percent:>3}% {human_pos}/{human_len} 剩余 {eta}",
            )
            .expect("a valid progress template")
            .progress_chars("#>-"),
        );
        bar
    });
    tokio::spawn(async move {
        let mut reported = usize::MAX;
        loop {
            let raw = done.load(Ordering::Relaxed);
            if raw == usize::MAX {
                if let Some(bar) = &bar {
                    bar.abandon();
                }
                break;
            }
            let n = raw.min(total);
            match &bar {
                Some(bar) => bar.set_position(n as u64),
                None => {
                    let tenth = n * 10 / total.max(1);
                    if tenth != reported {
                        eprintln!("加密 {}% {n}/{total}", tenth * 10);
                        reported = tenth;
                    }
                }
            }
            if n >= total {
                if let Some(bar) = &bar {
                    bar.finish();
                }
                eprintln!("入库中…");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
}

async fn import(
    store: &dyn Store,
    master: &MasterKey,
    merchant_id: i64,
    product_id: i64,
    file: &std::path::Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).map_err(|e| anyhow!("无法读取 {}：{e}", file.display()))?;
    let file_name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let digest = kaquan_core::signing::body_hash_hex(&bytes);
    let limits = TableLimits {
        rows_max: IMPORT_ROWS_MAX + 1,
        text_bytes_max: 1 << 30,
    };
    let rows = kaquan_web::ecards::stock_rows(&file_name, &bytes, limits)
        .map_err(|e| anyhow!("{}", e.public_message()))?;
    drop(bytes);
    let lines: Vec<usize> = rows.iter().map(|(line, _, _)| *line).collect();
    let key_version = store.get_merchant(merchant_id).await?.key_version;
    let done = Arc::new(AtomicUsize::new(0));
    let progress = spawn_progress(Arc::clone(&done), rows.len());
    let actor = Actor::cli();
    let request = ImportRequest {
        merchant_id,
        key_version,
        product_id,
        file_name,
        file_digest: digest,
        rows: rows.into_iter().map(|(_, n, s)| (n, s)).collect(),
        actor: &actor,
        now: kaquan_web::now(),
        progress: Some(Arc::clone(&done)),
    };
    let total = request.rows.len();
    let outcome = usecases::import_stock(store, master, request).await;
    let stored = matches!(outcome, Ok(ImportOutcome::Stored { .. }));
    done.store(if stored { total } else { usize::MAX }, Ordering::Relaxed);
    let _ = progress.await;
    let line_of = |row: usize| {
        row.checked_sub(1)
            .and_then(|i| lines.get(i))
            .copied()
            .unwrap_or(0)
    };
    match outcome? {
        ImportOutcome::Stored { import, skipped } => {
            if json {
                let skipped: Vec<_> = skipped
                    .iter()
                    .map(|r| json!({"line": line_of(r.row), "message": r.message}))
                    .collect();
                print_json(
                    json!({"import_id": import.id, "n_rows": import.n_rows, "n_imported": import.n_imported, "skipped": skipped}),
                );
            } else {
                println!(
                    "已导入 {} 条卡密（文件 {} 行，入库批次 #{}）",
                    import.n_imported, import.n_rows, import.id
                );
                for r in skipped.iter().take(50) {
                    println!("跳过第 {} 行：{}", line_of(r.row), r.message);
                }
                if skipped.len() > 50 {
                    println!("……共跳过 {} 行", skipped.len());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ImportOutcome::Refused(wrong) => {
            for r in wrong.iter().take(50) {
                eprintln!("第 {} 行：{}", line_of(r.row), r.message);
            }
            bail!("文件有 {} 行错误，没有导入任何一行", wrong.len())
        }
    }
}
