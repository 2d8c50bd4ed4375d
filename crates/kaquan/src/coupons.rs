//! `kaquan coupons`: the merchant's 优惠券 programs with their counts, and
//! 定向发放 from a list file, as the console's upload does it.

use crate::print_json;
use crate::CouponsCommand;
use anyhow::{anyhow, bail};
use kaquan_core::audit::Actor;
use kaquan_core::coupon::targeted::{
    issue_to_list, on_file_lines, ListIssue, ListRefusal, Recipient,
};
use kaquan_core::coupon::usage::ProgramFilter;
use kaquan_core::secrets::MasterKey;
use kaquan_core::store::{Page, Store};
use serde_json::json;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

pub(crate) async fn coupons_command(
    store: &dyn Store,
    master: &MasterKey,
    merchant_id: i64,
    command: CouponsCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        CouponsCommand::List { json } => list(store, merchant_id, json).await?,
        CouponsCommand::Issue {
            program,
            file,
            json,
        } => {
            match store.get_coupon_program(merchant_id, program).await {
                Err(kaquan_core::StoreError::NotFound) => {
                    bail!("优惠券 {program} 不存在（见 kaquan coupons list）")
                }
                other => other?,
            };
            let (file_name, bytes) = crate::read_input_file(&file)?;
            let rows = kaquan_web::tables::parse_rows(&file_name, &bytes, 1)
                .map_err(|e| anyhow!(e.public_message()))?;
            // Line 1 is the header; each recipient keeps its line in the file.
            let (lines, recipients): (Vec<usize>, Vec<Recipient>) = rows
                .iter()
                .skip(1)
                .filter(|(_, cells)| !cells[0].trim().is_empty())
                .map(|(line, cells)| (*line, Recipient::of_cell(&cells[0])))
                .unzip();
            let list = ListIssue {
                merchant_id,
                program_id: program,
                recipients: &recipients,
                actor: &Actor::cli(),
                now: kaquan_web::now(),
            };
            let progress = Arc::new(AtomicI64::new(0));
            let reporter = spawn_progress_lines(Arc::clone(&progress), recipients.len());
            let issued = issue_to_list(store, master, &list, Some(&progress)).await;
            reporter.abort();
            match issued? {
                Ok(issued) if json => print_json(json!({
                    "issued": true, "program_id": issued.program_id,
                    "n_issued": issued.n_issued, "stock_left": issued.stock_left
                })),
                Ok(issued) => println!(
                    "已按名单发放 {} 张，剩余库存 {}",
                    issued.n_issued, issued.stock_left
                ),
                Err(refusal) => {
                    let rows: Vec<(usize, String)> = match &refusal {
                        ListRefusal::Rows(rows) => on_file_lines(rows.clone(), &lines)
                            .into_iter()
                            .map(|r| (r.line, r.message))
                            .collect(),
                        _ => Vec::new(),
                    };
                    if json {
                        print_json(json!({
                            "issued": false, "message": refusal.message(),
                            "errors": rows.iter().map(|(line, message)| json!({"line": line, "message": message})).collect::<Vec<_>>()
                        }));
                    } else {
                        for (line, message) in &rows {
                            eprintln!("第 {line} 行：{message}");
                        }
                    }
                    bail!("{}", refusal.message());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(store: &dyn Store, merchant_id: i64, json: bool) -> anyhow::Result<()> {
    let page = Page::new(Some(1), Some(kaquan_core::store::PAGE_SIZE_MAX));
    let (programs, _) = store
        .list_coupon_programs(merchant_id, &ProgramFilter::default(), page)
        .await?;
    if json {
        let items: Vec<_> = programs
            .iter()
            .map(|p| {
                json!({
                    "program_id": p.id, "kind": p.fields.benefit.kind().code(), "title": p.fields.title,
                    "state": p.state.code(), "quantity": p.quantity, "stock_left": p.stock_left(),
                    "n_claimed": p.n_claimed, "n_verified": p.n_verified, "n_expired": p.n_expired,
                })
            })
            .collect();
        print_json(json!({ "programs": items }));
    } else {
        println!("编号\t类型\t标题\t状态\t库存\t已领取\t已核销\t已过期");
        for p in programs {
            println!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                p.id,
                p.fields.benefit.kind().label_zh(),
                p.fields.title,
                p.state.label_zh(),
                p.stock_left(),
                p.n_claimed,
                p.n_verified,
                p.n_expired
            );
        }
    }
    Ok(())
}

/// A line on stderr each time another tenth of the list is resolved.
fn spawn_progress_lines(progress: Arc<AtomicI64>, total: usize) -> tokio::task::JoinHandle<()> {
    let total = total as i64;
    tokio::spawn(async move {
        let mut reported = 0;
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let tenths = progress.load(Ordering::Relaxed) * 10 / total.max(1);
            if tenths > reported {
                reported = tenths;
                eprintln!("核对名单 {}%", tenths * 10);
            }
        }
    })
}
