//! `kaquan members`: the 会员卡 programs with their member counts, the
//! members as xlsx, 积分调整 with a reason, and one run of the 积分有效期
//! sweep (the servers run it by themselves; this is for a script or cron).

use crate::print_json;
use crate::MembersCommand;
use anyhow::{anyhow, bail};
use kaquan_core::audit::Actor;
use kaquan_core::ledger::ApiCall;
use kaquan_core::member::operation::{AdjustPoints, MemberAction, MemberOp};
use kaquan_core::member::MemberFilter;
use kaquan_core::store::{Page, Store, PAGE_SIZE_MAX};
use kaquan_web::members::MemberView;
use serde_json::json;
use std::process::ExitCode;

pub(crate) async fn members_command(
    store: &dyn Store,
    merchant_id: i64,
    command: MembersCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        MembersCommand::Programs { json } => programs(store, merchant_id, json).await?,
        MembersCommand::Export { program, output } => {
            let n = export(store, merchant_id, program, &output).await?;
            eprintln!("已导出 {n} 位会员到 {}", output.display());
        }
        MembersCommand::AdjustPoints {
            member,
            points,
            reason,
            json,
        } => {
            kaquan_core::member::check_points_delta(points).map_err(|e| anyhow!(e))?;
            if reason.trim().is_empty() {
                bail!("请给出调整原因 --reason");
            }
            let op = MemberOp {
                merchant_id,
                action: MemberAction::AdjustPoints(AdjustPoints {
                    member_id: member,
                    delta: points,
                    reason: reason.trim().to_owned(),
                }),
                actor: Actor::cli(),
                now: kaquan_web::now(),
            };
            let done = store
                .post_member_op(&ApiCall::default(), &op)
                .await?
                .result
                .map_err(|refusal| anyhow!(refusal.message_zh()))?;
            if json {
                print_json(json!({"operation_id": done.id, "points_after": done.points_after}));
            } else {
                println!("已调整积分 {points:+}，当前积分 {}", done.points_after);
            }
        }
        MembersCommand::ExpirePoints { json } => {
            let (mut expired, mut noticed) = (0, 0);
            loop {
                let sweep = store
                    .expire_points(kaquan_web::now(), kaquan_web::members::POINTS_SWEEP_MAX)
                    .await?;
                expired += sweep.expired;
                noticed += sweep.noticed;
                if sweep.looked_at < kaquan_web::members::POINTS_SWEEP_MAX {
                    break;
                }
            }
            if json {
                print_json(json!({"expired": expired, "noticed": noticed}));
            } else {
                println!("积分过期 {expired} 位会员，即将过期提醒 {noticed} 位");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn programs(store: &dyn Store, merchant_id: i64, json: bool) -> anyhow::Result<()> {
    let programs = store.list_member_programs(merchant_id).await?;
    if json {
        let items: Vec<_> = programs
            .iter()
            .map(|p| {
                json!({
                    "program_id": p.id, "title": p.fields.title, "state": p.state.code(),
                    "discount_percent_off": p.fields.discount_percent_off,
                    "points": p.fields.points.is_some(), "stored_value": p.fields.stored_value,
                    "n_tiers": p.fields.tiers.len(), "n_members": p.n_members,
                })
            })
            .collect();
        print_json(json!({ "programs": items }));
    } else {
        println!("编号\t会员卡\t状态\t会员数");
        for p in programs {
            println!(
                "{}\t{}\t{}\t{}",
                p.id,
                p.fields.title,
                p.state.label_zh(),
                p.n_members
            );
        }
    }
    Ok(())
}

async fn export(
    store: &dyn Store,
    merchant_id: i64,
    program_id: Option<i64>,
    output: &std::path::Path,
) -> anyhow::Result<usize> {
    let programs = store.list_member_programs(merchant_id).await?;
    let filter = MemberFilter {
        program_id,
        ..MemberFilter::default()
    };
    let mut rows = Vec::new();
    for number in 1.. {
        let page = Page::new(Some(number), Some(PAGE_SIZE_MAX));
        let (members, _) = store.list_members(merchant_id, &filter, page).await?;
        let n = members.len() as i64;
        rows.extend(
            members
                .iter()
                .map(|m| MemberView::new(m, programs.iter().find(|p| p.id == m.program_id), true)),
        );
        if n < page.page_size {
            break;
        }
    }
    kaquan_web::members::write_members(&rows, output, kaquan_web::i18n::Lang::ZhCn)
        .map_err(|e| anyhow!(e.public_message()))?;
    Ok(rows.len())
}
