//! `kaquan export`: cards to xlsx, CSV, QR images or a zip.

use crate::cli_audit;
use crate::config::Config;
use crate::ExportCommand;
use crate::FormatArg;
use crate::ImageArg;
use anyhow::anyhow;
use kaquan_core::card::CardFilter;
use kaquan_core::secrets::MasterKey;
use kaquan_core::store::Store;
use std::process::ExitCode;

pub(crate) async fn export_command(
    config: &Config,
    store: &dyn Store,
    master: &MasterKey,
    merchant_id: i64,
    command: ExportCommand,
) -> anyhow::Result<ExitCode> {
    use kaquan_web::exports::{ExportFormat, ExportKind, QrImageFormat};
    let (batch, kind, output, with_secrets, public_url, seal_to) = match command {
        ExportCommand::Cards {
            batch,
            format,
            output,
            with_secrets,
            public_url,
            seal_to,
        } => {
            let format = match format {
                FormatArg::Xlsx => ExportFormat::Xlsx,
                FormatArg::Csv => ExportFormat::Csv,
            };
            (
                batch,
                ExportKind::Cards(format),
                output,
                with_secrets,
                public_url,
                seal_to,
            )
        }
        ExportCommand::QrCodes {
            batch,
            image,
            output,
            public_url,
        } => {
            let image = match image {
                ImageArg::Png => QrImageFormat::Png,
                ImageArg::Svg => QrImageFormat::Svg,
            };
            (
                batch,
                ExportKind::QrCodes(image),
                output,
                false,
                public_url,
                None,
            )
        }
    };
    let recipient = seal_to
        .as_deref()
        .map(kaquan_core::age::Recipient::parse)
        .transpose()
        .map_err(|e| anyhow!(e))?;
    let filter = CardFilter {
        batch_id: batch,
        ..Default::default()
    };
    let public_url = match public_url {
        Some(url) => url,
        None => crate::codes::shop_public_url(config, store, merchant_id).await?,
    };
    let request = kaquan_web::exports::ExportRequest {
        store,
        master,
        merchant_id,
        filter: &filter,
        with_secrets,
        public_url: public_url.trim_end_matches('/'),
        progress: None,
        // Files for other systems keep their Chinese headers.
        lang: kaquan_web::i18n::Lang::ZhCn,
    };
    let n = write(kind, &request, &output, recipient.as_ref()).await?;
    let mut detail = format!(
        "{} output={}",
        kind.audit_detail(with_secrets),
        output.display()
    );
    if let Some(recipient) = &recipient {
        detail.push_str(&format!(" sealed_to={}", recipient.encode()));
    }
    let mut audit = cli_audit(merchant_id, kind.action(), filter.describe(), detail);
    audit.n_affected = n;
    store.append_audit(&audit).await?;
    eprintln!("已导出 {n} 张卡到 {}", output.display());
    Ok(ExitCode::SUCCESS)
}

/// Writes the export to `output`, sealed to `recipient` when given: the
/// plain file is written beside it, sealed, and removed.
async fn write(
    kind: kaquan_web::exports::ExportKind,
    request: &kaquan_web::exports::ExportRequest<'_>,
    output: &std::path::Path,
    recipient: Option<&kaquan_core::age::Recipient>,
) -> anyhow::Result<i64> {
    let written = match recipient {
        Some(_) => output.with_extension("kaquan-plain"),
        None => output.to_path_buf(),
    };
    let n = kind
        .write(request, &written)
        .await
        .map_err(|e| anyhow!(e.public_message()))?;
    if let Some(recipient) = recipient {
        let sealed = kaquan_web::exports::seal_file(&written, recipient, output);
        std::fs::remove_file(&written)?;
        sealed?;
    }
    Ok(n)
}
