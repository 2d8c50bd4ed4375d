//! `kaquan codes`: generate offline codes and export them.

use crate::cli_audit;
use crate::config::Config;
use crate::parse_cli_date;
use crate::print_json;
use crate::CodesCommand;
use anyhow::{anyhow, Context};
use kaquan_core::audit::Actor;
use kaquan_core::secrets::MasterKey;
use kaquan_core::store::Store;
use serde_json::json;
use std::process::ExitCode;

pub(crate) async fn codes_command(
    config: &Config,
    store: &dyn Store,
    master: &MasterKey,
    merchant_id: i64,
    command: CodesCommand,
) -> anyhow::Result<ExitCode> {
    use kaquan_core::code::{CodeKind, CodeTemplateFields};
    match command {
        CodesCommand::Generate {
            name,
            face_value,
            quantity,
            valid_from,
            valid_until,
            json,
        } => {
            let fields = CodeTemplateFields {
                name: name.trim().to_owned(),
                face_value_fen: kaquan_core::money::parse_yuan(&face_value).ok_or_else(|| {
                    anyhow!("--face-value must be an amount in yuan, e.g. 100 or 99.50")
                })?,
                valid_from: parse_cli_date(valid_from.as_deref(), false)?,
                valid_until: parse_cli_date(valid_until.as_deref(), true)?,
            };
            let request = kaquan_core::code::NewCodeTemplate {
                kind: CodeKind::Offline,
                fields,
                quantity,
            };
            let template = kaquan_core::code::create_code_template(
                store,
                master,
                merchant_id,
                &request,
                Actor::cli(),
                kaquan_web::now(),
            )
            .await?;
            if json {
                print_json(json!({ "template_id": template.id, "n_codes": template.n_issued }));
            } else {
                println!(
                    "线下兑换码「{}」：{} 个，模板编号 {}",
                    template.fields.name, template.n_issued, template.id
                );
            }
        }
        CodesCommand::Export { template, output } => {
            let found = store.get_code_template(merchant_id, template).await?;
            let public_url = shop_public_url(config, store, merchant_id).await?;
            let format = if output
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
            {
                kaquan_web::exports::ExportFormat::Csv
            } else {
                kaquan_web::exports::ExportFormat::Xlsx
            };
            let (bytes, n_codes) = kaquan_web::exports::export_codes_file(
                store,
                master,
                &public_url,
                merchant_id,
                template,
                format,
                kaquan_web::i18n::Lang::ZhCn,
            )
            .await
            .map_err(|e| anyhow!("{}", e.public_message()))?;
            std::fs::write(&output, bytes)
                .with_context(|| format!("cannot write {}", output.display()))?;
            store
                .append_audit(&cli_audit(
                    merchant_id,
                    "export_codes",
                    format!("code_template={template}"),
                    format!("n_codes={n_codes} with_codes=true"),
                ))
                .await?;
            eprintln!(
                "「{}」：{n_codes} 个兑换码已导出到 {}",
                found.fields.name,
                output.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the shop's customers reach it, for QR codes and links: the 公网地址
/// of its 提货设置, else `server.public_url`, else `http://LISTEN`.
pub(crate) async fn shop_public_url(
    config: &Config,
    store: &dyn Store,
    merchant_id: i64,
) -> anyhow::Result<String> {
    let settings = store.get_pickup_settings(merchant_id).await?;
    Ok(settings.public_url.unwrap_or_else(|| {
        config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.listen))
    }))
}
