//! `kaquan batch` and `kaquan cards`: generate, import and list batches,
//! change cards.

use crate::cli_audit;
use crate::config::Config;
use crate::parse_cli_date;
use crate::print_json;
use crate::BatchCommand;
use crate::CharsetArg;
use crate::GenerateArgs;
use crate::NumberingArg;
use anyhow::{anyhow, bail};
use kaquan_core::batch::usecases::{self as usecases, BatchProgress};
use kaquan_core::batch::{BatchFields, BatchSpec, Numbering, PasswordCharset};
use kaquan_core::card::CardFilter;
use kaquan_core::clock::format_datetime;
use kaquan_core::store::{Page, Store};
use serde_json::json;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

/// Shows a batch's generation on stderr until it finishes: on a terminal an
/// `indicatif` bar with the rate and the time left; in a pipe or a log a
/// plain line every 10% (scripts and the kill-and-restart test read them),
/// never an escape code.
pub(crate) fn spawn_progress_bar(
    progress: Arc<BatchProgress>,
    quantity: i64,
) -> tokio::task::JoinHandle<()> {
    let total = u64::try_from(quantity).unwrap_or(0);
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "生成中 [{bar:25}] {percent:>3}% {human_pos}/{human_len} {rate} 剩余 {eta}",
            )
            .expect("a valid progress template")
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} 张/秒", state.per_sec());
                },
            )
            .progress_chars("#>-"),
        );
        Some(bar)
    } else {
        None
    };
    tokio::spawn(async move {
        let mut last_reported = -1i64;
        loop {
            let (done, _) = progress.snapshot();
            match &bar {
                Some(bar) => bar.set_position(u64::try_from(done).unwrap_or(0)),
                None => {
                    let percent = if quantity > 0 {
                        done * 100 / quantity
                    } else {
                        100
                    };
                    if percent / 10 != last_reported / 10 {
                        eprintln!("生成中 {percent}% {done}/{quantity}");
                        last_reported = percent;
                    }
                }
            }
            if done >= quantity {
                if let Some(bar) = &bar {
                    bar.finish();
                    eprintln!();
                }
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
}

/// `kaquan batch generate`: the batch, its cards with a progress bar, and
/// a summary (or one JSON document).
async fn generate_batch(
    config: &Config,
    store: &dyn Store,
    merchant_id: i64,
    args: GenerateArgs,
) -> anyhow::Result<ExitCode> {
    let master = crate::keys::load_root_key(config, store, false).await?;
    let spec = BatchSpec::new(BatchFields {
        name: args.name,
        prefix: args.prefix,
        number_length: args.number_length,
        numbering: args.numbering.map(|n| match n {
            NumberingArg::Random => Numbering::Random,
            NumberingArg::Sequential => Numbering::Sequential,
        }),
        start_number: args.start_number,
        password_length: args.password_length,
        password_charset: args.password_charset.map(|c| match c {
            CharsetArg::Digits => PasswordCharset::Digits,
            CharsetArg::Letters => PasswordCharset::Letters,
            CharsetArg::Mixed => PasswordCharset::Mixed,
            CharsetArg::Unambiguous => PasswordCharset::Unambiguous,
        }),
        quantity: args.quantity,
        face_value_fen: args.face_value_fen,
        valid_from: parse_cli_date(args.valid_from.as_deref(), false)?,
        valid_until: parse_cli_date(args.valid_until.as_deref(), true)?,
        remark: args.remark,
        activate: args.activate,
        goods_ids: args.goods,
    })
    .map_err(|errors| anyhow!(errors.join("; ")))?;
    let strength = spec.strength();
    for warning in &strength.warnings {
        eprintln!("警告：{warning}");
    }
    prepaid_policy(
        store,
        merchant_id,
        spec.face_value_fen,
        spec.valid_from,
        spec.valid_until,
    )
    .await?;
    let started = std::time::Instant::now();
    let batch =
        usecases::start_generated_batch(store, merchant_id, &spec, "cli", kaquan_web::now())
            .await?;
    let progress = Arc::new(BatchProgress::default());
    let bar = spawn_progress_bar(Arc::clone(&progress), spec.quantity);
    let audit = cli_audit(
        merchant_id,
        "generate_batch",
        format!("batch={}", batch.id),
        spec.name.clone(),
    );
    let result = usecases::fill_generated_batch(
        store,
        &master,
        &batch,
        &spec,
        audit,
        Arc::clone(&progress),
        kaquan_web::now(),
    )
    .await;
    if result.is_ok() {
        // Every card counted: the bar draws its last frame and ends its line.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), bar).await;
    } else {
        bar.abort();
    }
    let n_cards =
        result.map_err(|e| anyhow!("batch {} failed and holds no cards: {e}", batch.id))?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        print_json(json!({
            "batch_id": batch.id, "n_cards": n_cards, "serial_first": batch.serial_first,
            "password_bits": (strength.bits * 10.0).round() / 10.0, "warnings": strength.warnings, "seconds": seconds
        }));
    } else {
        println!(
            "批次 {} 已生成 {n_cards} 张卡（卡序号 {}–{}），用时 {seconds:.1} 秒",
            batch.id,
            batch.serial_first,
            batch.serial_first + n_cards - 1
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn batch_command(
    config: &Config,
    store: &dyn Store,
    merchant_id: i64,
    command: BatchCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        BatchCommand::Generate(args) => {
            return generate_batch(config, store, merchant_id, args).await
        }
        BatchCommand::Import {
            file,
            name,
            face_value_fen,
            valid_from,
            valid_until,
            remark,
            json,
        } => {
            let master = crate::keys::load_root_key(config, store, false).await?;
            let (file_name, bytes) = crate::read_input_file(&file)?;
            let rows = kaquan_web::tables::parse_import_file(&file_name, &bytes)
                .map_err(|e| anyhow!(e.public_message()))?;
            let cards = match usecases::validate_import(store, merchant_id, &rows).await {
                Ok(cards) => cards,
                Err(usecases::ImportError::Rows(errors)) => {
                    if json {
                        print_json(
                            json!({ "imported": false, "errors": errors.iter().map(|e| json!({"line": e.line, "message": e.message})).collect::<Vec<_>>() }),
                        );
                    } else {
                        for e in &errors {
                            eprintln!("第 {} 行：{}", e.line, e.message);
                        }
                    }
                    bail!("{} rows have errors; nothing was imported", errors.len());
                }
                Err(other) => return Err(anyhow!("{other}")),
            };
            let fields = usecases::ImportFields {
                name: name.unwrap_or_default(),
                face_value_fen,
                valid_from: parse_cli_date(valid_from.as_deref(), false)?,
                valid_until: parse_cli_date(valid_until.as_deref(), true)?,
                remark: remark.unwrap_or_default(),
            };
            imported_policy(store, merchant_id, &fields).await?;
            let audit = cli_audit(
                merchant_id,
                "import_batch",
                file_name,
                format!("{} rows", cards.len()),
            );
            let batch = usecases::import_batch(
                store,
                &master,
                merchant_id,
                &fields,
                cards,
                audit,
                kaquan_web::now(),
            )
            .await?;
            if json {
                print_json(json!({ "batch_id": batch.id, "n_cards": batch.quantity }));
            } else {
                println!("已导入 {} 张卡，批次号 {}", batch.quantity, batch.id);
            }
        }
        BatchCommand::List { json } => {
            let (batches, _) = store
                .list_batches(
                    merchant_id,
                    Page::new(Some(1), Some(kaquan_core::store::PAGE_SIZE_MAX)),
                )
                .await?;
            if json {
                let mut items = Vec::new();
                for b in &batches {
                    let n_cards = store
                        .count_cards(
                            merchant_id,
                            &CardFilter {
                                batch_id: Some(b.id),
                                ..Default::default()
                            },
                        )
                        .await?;
                    items.push(json!({
                        "batch_id": b.id, "name": b.name, "state": b.state.code(), "quantity": b.quantity,
                        "n_cards": n_cards, "serial_first": b.serial_first, "created_at": b.created_at
                    }));
                }
                print_json(json!({ "batches": items }));
            } else {
                for b in batches {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        b.id,
                        b.name,
                        b.state.label_zh(),
                        b.quantity,
                        format_datetime(b.created_at)
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuses a batch the merchant's 预付卡政策 forbids, naming each rule.
async fn prepaid_policy(
    store: &dyn Store,
    merchant_id: i64,
    face_value_fen: Option<i64>,
    valid_from: Option<i64>,
    valid_until: Option<i64>,
) -> anyhow::Result<()> {
    let broken = kaquan_core::prepaid::check(
        store,
        merchant_id,
        face_value_fen,
        valid_from,
        valid_until,
        kaquan_web::now(),
    )
    .await?;
    if broken.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(broken.join("; ")))
    }
}

/// [`prepaid_policy`] of an import's fields.
async fn imported_policy(
    store: &dyn Store,
    merchant_id: i64,
    fields: &usecases::ImportFields,
) -> anyhow::Result<()> {
    let (face, from, until) = (fields.face_value_fen, fields.valid_from, fields.valid_until);
    prepaid_policy(store, merchant_id, face, from, until).await
}
