//! `kaquan audit`: the merchant's chain head, checked against one written
//! down, and the sealed records of a period as JSON lines for an auditor.

use crate::{print_json, AuditCommand};
use anyhow::{anyhow, bail, Context};
use kaquan_core::audit::chain::{parse_head, seal_all, SealedRecord};
use kaquan_core::clock::{format_datetime, parse_date, start_of_day};
use kaquan_core::secrets::to_hex;
use kaquan_core::store::Store;
use serde_json::json;
use std::io::Write;
use std::process::ExitCode;

/// One record as the export writes it: every field the hash covers.
fn line(s: &SealedRecord) -> serde_json::Value {
    let e = &s.record.entry;
    json!({
        "merchant_id": e.merchant_id,
        "seq": s.seq,
        "id": s.record.id,
        "actor_staff_id": e.actor.staff_id,
        "actor": e.actor.label,
        "action": e.action,
        "target": e.target,
        "detail": e.detail,
        "n_affected": e.n_affected,
        "created_at": e.created_at,
        "prev_hash": to_hex(&s.prev_hash),
        "hash": to_hex(&s.hash),
    })
}

/// The start of the day `text` names.
fn day_start(flag: &str, text: &str) -> anyhow::Result<i64> {
    parse_date(text)
        .map(start_of_day)
        .ok_or_else(|| anyhow!("--{flag} must be a day as YYYY-MM-DD"))
}

pub(crate) async fn audit_command(
    store: &dyn Store,
    merchant_id: i64,
    command: AuditCommand,
) -> anyhow::Result<ExitCode> {
    seal_all(store).await?;
    match command {
        AuditCommand::Head { check, json } => {
            let head = store.audit_heads(Some(merchant_id)).await?.pop();
            if let Some(written) = check {
                let (seq, hash) = parse_head(&written).ok_or_else(|| {
                    anyhow!("--check must be seq:hash as `kaquan audit head` prints it")
                })?;
                return match store.sealed_at(merchant_id, seq).await? {
                    Some(sealed) if sealed.hash == hash => {
                        eprintln!("audit head {seq} is still in the chain with its hash");
                        Ok(ExitCode::SUCCESS)
                    }
                    Some(_) => {
                        println!("violation: audit record #{seq} of the chain no longer has the hash written down");
                        Ok(ExitCode::FAILURE)
                    }
                    None => {
                        println!(
                            "violation: the chain no longer holds record #{seq}: it was cut off"
                        );
                        Ok(ExitCode::FAILURE)
                    }
                };
            }
            match (head, json) {
                (None, true) => print_json(json!({"merchant_id": merchant_id, "head": null})),
                (None, false) => println!("操作日志还没有记录"),
                (Some(h), true) => print_json(json!({
                    "merchant_id": h.merchant_id, "seq": h.seq, "hash": to_hex(&h.hash),
                    "head": h.text(), "created_at": h.created_at,
                })),
                (Some(h), false) => println!(
                    "{}\t（第 {} 条，{}）",
                    h.text(),
                    h.seq,
                    format_datetime(h.created_at)
                ),
            }
        }
        AuditCommand::Export { from, to, output } => {
            let (first, last) = (day_start("from", &from)?, day_start("to", &to)?);
            if last < first {
                bail!("--to must not be before --from");
            }
            let records = store
                .sealed_audit(merchant_id, first, last + 86_400)
                .await?;
            let mut text = String::new();
            for s in &records {
                text.push_str(&line(s).to_string());
                text.push('\n');
            }
            match output {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => std::io::stdout().write_all(text.as_bytes())?,
            }
            eprintln!("exported {} audit records", records.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}
