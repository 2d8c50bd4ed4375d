//! The re-sealer beside every server: after `kaquan keys rotate`, it moves
//! each merchant's sealed card passwords and 兑换码 to the new key version
//! a step at a time (`kaquan_core::keys::reseal_step`), so a rotation
//! finishes even when the command was stopped. Several nodes may run it at
//! once: each row is replaced only while it has the version it was read
//! with.

use crate::AppState;
use kaquan_core::keys::{reseal_step, Resealable};
use std::collections::HashMap;
use std::time::Duration;

const EVERY: Duration = Duration::from_secs(2);
const STEP: i64 = 500;

/// Where a merchant's re-seal of one kind stands: the version it works
/// towards, and the row it reached (`None`: done for that version).
type Cursors = HashMap<(i64, u8), (i32, Option<i64>)>;

pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cursors = Cursors::new();
        loop {
            every.tick().await;
            if let Err(error) = tick(&state, &mut cursors).await {
                tracing::warn!(%error, "re-sealing after a key rotation failed; will retry");
            }
        }
    })
}

async fn tick(state: &AppState, cursors: &mut Cursors) -> kaquan_core::StoreResult<()> {
    for merchant in state.store.list_merchants().await? {
        let version = merchant.key_version;
        if version <= 1 {
            continue;
        }
        for (i, kind) in Resealable::ALL.into_iter().enumerate() {
            let entry = cursors
                .entry((merchant.id, i as u8))
                .or_insert((version, Some(0)));
            if entry.0 != version {
                *entry = (version, Some(0));
            }
            let Some(after) = entry.1 else { continue };
            let step = reseal_step(
                state.store.as_ref(),
                &state.master,
                merchant.id,
                kind,
                (after, STEP),
            )
            .await?;
            if step.resealed > 0 {
                tracing::info!(
                    merchant.id = merchant.id,
                    n = step.resealed,
                    "sealed copies moved to the new key version"
                );
            }
            entry.1 = step.cursor;
        }
    }
    Ok(())
}
