//! `kaquan backup` and `kaquan restore` of a SQLite database. The backup is
//! one file (SQLite's online backup API, taken while `serve` runs) and a
//! manifest beside it (`FILE.manifest.json`: its SHA-256, the schema version
//! and the master key's fingerprint). A restore only ever creates a new
//! database: it checks the file against its manifest and the key in use
//! against the fingerprint, copies it into place and runs `kaquan verify`.
//! PostgreSQL is backed up with pg_dump and restored with pg_restore (see
//! the README).

use crate::{load_master_key, verify_command, Config};
use anyhow::{anyhow, bail, Context};
use kaquan_core::secrets::file_sha256_hex;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const FORMAT: &str = "kaquan-backup-v1";

fn sqlite_path(config: &Config, what: &str) -> anyhow::Result<PathBuf> {
    match config.database_url.0.strip_prefix("sqlite://") {
        Some(path) => Ok(PathBuf::from(path)),
        None => bail!(
            "kaquan {what} works on SQLite; back PostgreSQL up with pg_dump and restore it with pg_restore (see the README), then run kaquan verify"
        ),
    }
}

fn manifest_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".manifest.json");
    PathBuf::from(name)
}

/// `kaquan backup --output FILE`.
pub(crate) async fn backup_command(config: &Config, output: &Path) -> anyhow::Result<ExitCode> {
    let source = sqlite_path(config, "backup")?;
    let manifest = manifest_path(output);
    for path in [output, manifest.as_path()] {
        if path.exists() {
            bail!("{} exists; choose a new file", path.display());
        }
    }
    let key = load_master_key(config, false)?;
    let partial = output.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let (from, to) = (source.clone(), partial.clone());
    let info = tokio::task::spawn_blocking(move || kaquan_store_sqlite::backup(&from, &to))
        .await?
        .map_err(|e| anyhow!("{e}"))?;
    std::fs::File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    let sha256 = file_sha256_hex(output)?;
    let bytes = std::fs::metadata(output)?.len();
    let document = json!({
        "format": FORMAT,
        "backend": "sqlite",
        "created_at": kaquan_web::now(),
        "kaquan_version": env!("CARGO_PKG_VERSION"),
        "schema_version": info.schema_version,
        "pages": info.pages,
        "bytes": bytes,
        "sha256": sha256,
        "key_fingerprint": key.fingerprint(),
        "source": source.display().to_string(),
    });
    std::fs::write(&manifest, serde_json::to_string_pretty(&document)? + "\n")
        .with_context(|| format!("cannot write {}", manifest.display()))?;
    eprintln!(
        "backup: {} ({bytes} bytes, schema {}), manifest {}",
        output.display(),
        info.schema_version,
        manifest.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `kaquan restore --input FILE`.
pub(crate) async fn restore_command(config: &Config, input: &Path) -> anyhow::Result<ExitCode> {
    let target = sqlite_path(config, "restore")?;
    let mut wal = target.as_os_str().to_owned();
    wal.push("-wal");
    if target.exists() || Path::new(&wal).exists() {
        bail!(
            "{} exists: restore never overwrites a database; stop kaquan and move it aside, or restore to a new --database-url",
            target.display()
        );
    }
    let manifest_file = manifest_path(input);
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(&manifest_file)
            .with_context(|| format!("cannot read the manifest {}", manifest_file.display()))?,
    )
    .with_context(|| format!("{} is not a manifest", manifest_file.display()))?;
    if manifest["format"] != FORMAT {
        bail!(
            "{} is not a kaquan backup manifest",
            manifest_file.display()
        );
    }
    if file_sha256_hex(input)? != manifest["sha256"].as_str().unwrap_or_default() {
        bail!(
            "{} does not match its manifest's SHA-256: the copy is damaged",
            input.display()
        );
    }
    let key = load_master_key(config, false)?;
    if manifest["key_fingerprint"].as_str() != Some(key.fingerprint().as_str()) {
        bail!(
            "the backup was taken under another master key (fingerprint {}): give the key file it was taken with (--key-file)",
            manifest["key_fingerprint"]
        );
    }
    let partial = target.with_extension("restoring");
    std::fs::copy(input, &partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, &target)?;
    eprintln!(
        "restore: {} from {}; verifying",
        target.display(),
        input.display()
    );
    verify_command(config).await
}
