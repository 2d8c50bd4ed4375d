//! 双人复核: the policy, the requests and their guarded decisions, and
//! activations counted per staff member and day (`kaquan_core::approval`).

use crate::cards::{card_filter_sql, state_list};
use crate::events::insert_event;
use crate::sql::{exec, filtered_page, insert_audit, map_err, one, opt, parse_or, refs, Params};
use crate::PgStore;
use kaquan_core::approval::{
    ActivationTally, ApprovalKind, ApprovalPolicy, ApprovalRequest, ApprovalState, DailyCap,
    Decider, Decision, NewApproval, Reach,
};
use kaquan_core::audit::AuditEntry;
use kaquan_core::card::{CardFilter, CardOp};
use kaquan_core::event::NewEvent;
use kaquan_core::store::Page;
use kaquan_core::{Conflict, StoreError, StoreResult};
use tokio_postgres::Row;

const POLICY_COLUMNS: &str = "activate_count_over, activate_value_over_fen, export_secrets, \
    delete_cards, adjust_over_fen, daily_max_cards, daily_max_value_fen, expiry_hours, credentials";

const REQUEST_COLUMNS: &str = "id, merchant_id, kind, target, detail, n_cards, value_fen, reason, \
    requested_by, requested_by_name, requested_at, expires_at, state, decided_by, \
    decided_by_name, decided_at, n_done, outcome, payload, secret_sealed, key_version";

fn policy_from_row(row: &Row) -> ApprovalPolicy {
    ApprovalPolicy {
        activate_count_over: row.get(0),
        activate_value_over_fen: row.get(1),
        export_secrets: row.get(2),
        delete_cards: row.get(3),
        adjust_over_fen: row.get(4),
        daily_cap: DailyCap {
            max_cards: row.get(5),
            max_value_fen: row.get(6),
        },
        expiry_hours: row.get(7),
        credentials: row.get(8),
    }
}

fn request_from_row(row: &Row) -> StoreResult<ApprovalRequest> {
    Ok(ApprovalRequest {
        id: row.get(0),
        request: NewApproval {
            merchant_id: row.get(1),
            kind: parse_or(ApprovalKind::parse(row.get(2)), "approval kind")?,
            target: row.get(3),
            detail: row.get(4),
            payload: row.get(18),
            secret_sealed: row.get(19),
            key_version: row.get(20),
            reach: Reach {
                n_cards: row.get(5),
                value_fen: row.get(6),
            },
            reason: row.get(7),
            requested_by: row.get(8),
            requested_by_name: row.get(9),
            requested_at: row.get(10),
            expires_at: row.get(11),
        },
        state: parse_or(ApprovalState::parse(row.get(12)), "approval state")?,
        decided_by: row.get(13),
        decided_by_name: row.get(14),
        decided_at: row.get(15),
        n_done: row.get(16),
        outcome: row.get(17),
    })
}

fn reach_from_row(row: &Row) -> Reach {
    Reach {
        n_cards: row.get(0),
        value_fen: row.get(1),
    }
}

#[async_trait::async_trait]
impl kaquan_core::approval::ApprovalStore for PgStore {
    async fn approval_policy(&self, merchant_id: i64) -> StoreResult<ApprovalPolicy> {
        let client = self.client().await?;
        let sql = format!("SELECT {POLICY_COLUMNS} FROM approval_policies WHERE merchant_id = $1");
        let row = opt(&client, &sql, &[&merchant_id]).await?;
        Ok(row.as_ref().map(policy_from_row).unwrap_or_default())
    }

    async fn set_approval_policy(
        &self,
        merchant_id: i64,
        policy: &ApprovalPolicy,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let sql = format!(
            "INSERT INTO approval_policies (merchant_id, {POLICY_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (merchant_id) DO UPDATE SET \
             activate_count_over = excluded.activate_count_over, \
             activate_value_over_fen = excluded.activate_value_over_fen, \
             export_secrets = excluded.export_secrets, delete_cards = excluded.delete_cards, \
             adjust_over_fen = excluded.adjust_over_fen, daily_max_cards = excluded.daily_max_cards, \
             daily_max_value_fen = excluded.daily_max_value_fen, expiry_hours = excluded.expiry_hours, \
             credentials = excluded.credentials"
        );
        exec(
            &tx,
            &sql,
            &[
                &merchant_id,
                &policy.activate_count_over,
                &policy.activate_value_over_fen,
                &policy.export_secrets,
                &policy.delete_cards,
                &policy.adjust_over_fen,
                &policy.daily_cap.max_cards,
                &policy.daily_cap.max_value_fen,
                &policy.expiry_hours,
                &policy.credentials,
            ],
        )
        .await?;
        insert_audit(&tx, audit, 0).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn create_approval(
        &self,
        request: &NewApproval,
        audit: &AuditEntry,
    ) -> StoreResult<ApprovalRequest> {
        let r = request;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let sql = format!(
            "INSERT INTO approval_requests (merchant_id, kind, target, detail, n_cards, value_fen, \
             reason, requested_by, requested_by_name, requested_at, expires_at, payload, secret_sealed, key_version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING {REQUEST_COLUMNS}"
        );
        let row = one(
            &tx,
            &sql,
            &[
                &r.merchant_id,
                &r.kind.code(),
                &r.target,
                &r.detail,
                &r.reach.n_cards,
                &r.reach.value_fen,
                &r.reason,
                &r.requested_by,
                &r.requested_by_name,
                &r.requested_at,
                &r.expires_at,
                &r.payload,
                &r.secret_sealed,
                &r.key_version,
            ],
        )
        .await?;
        let created = request_from_row(&row)?;
        let mut audit = audit.clone();
        audit.target = format!("approval={} {}", created.id, audit.target);
        insert_audit(&tx, &audit, r.reach.n_cards).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(created)
    }

    async fn approval(&self, merchant_id: i64, id: i64) -> StoreResult<Option<ApprovalRequest>> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM approval_requests WHERE merchant_id = $1 AND id = $2"
        );
        opt(&client, &sql, &[&merchant_id, &id])
            .await?
            .as_ref()
            .map(request_from_row)
            .transpose()
    }

    async fn list_approvals(
        &self,
        merchant_id: i64,
        state: Option<ApprovalState>,
        now: i64,
        page: Page,
    ) -> StoreResult<(Vec<ApprovalRequest>, i64)> {
        let client = self.client().await?;
        let mut params: Params = vec![Box::new(merchant_id)];
        let condition = match state {
            None => "merchant_id = $1",
            Some(ApprovalState::Pending) => {
                params.push(Box::new(now));
                "merchant_id = $1 AND state = 'pending' AND expires_at > $2"
            }
            Some(ApprovalState::Expired) => {
                params.push(Box::new(now));
                "merchant_id = $1 AND state = 'pending' AND expires_at <= $2"
            }
            Some(other) => {
                params.push(Box::new(other.code()));
                "merchant_id = $1 AND state = $2"
            }
        };
        let (rows, total) = filtered_page(
            &client,
            ("approval_requests", REQUEST_COLUMNS, "id DESC"),
            condition,
            params,
            page,
        )
        .await?;
        let requests = rows
            .iter()
            .map(request_from_row)
            .collect::<StoreResult<_>>()?;
        Ok((requests, total))
    }

    async fn decide_approval(
        &self,
        merchant_id: i64,
        id: i64,
        decision: Decision,
        by: &Decider,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let n = exec(
            &tx,
            "UPDATE approval_requests SET state = $1, decided_by = $2, decided_by_name = $3, \
             decided_at = $4 WHERE merchant_id = $5 AND id = $6 AND state = 'pending' \
             AND expires_at > $4 AND requested_by <> $2",
            &[
                &decision.state().code(),
                &by.staff_id,
                &by.name,
                &by.now,
                &merchant_id,
                &id,
            ],
        )
        .await?;
        if n == 1 {
            insert_audit(&tx, audit, 0).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(n == 1)
    }

    async fn finish_approval(
        &self,
        merchant_id: i64,
        id: i64,
        outcome: Result<i64, String>,
    ) -> StoreResult<bool> {
        let client = self.client().await?;
        let (state, n_done, text) = match outcome {
            Ok(n) => (ApprovalState::Done, Some(n), String::new()),
            Err(message) => (ApprovalState::Failed, None, message),
        };
        let n = exec(
            &client,
            "UPDATE approval_requests SET state = $1, n_done = $2, outcome = $3 \
             WHERE merchant_id = $4 AND id = $5 AND state = 'approved'",
            &[&state.code(), &n_done, &text, &merchant_id, &id],
        )
        .await?;
        Ok(n == 1)
    }

    async fn card_op_reach(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        op: CardOp,
    ) -> StoreResult<Reach> {
        let client = self.client().await?;
        let mut params: Params = Vec::new();
        let condition = card_filter_sql(merchant_id, filter, &mut params);
        let sql = format!(
            "SELECT count(*), coalesce(sum(face_value_fen), 0)::BIGINT FROM cards WHERE {condition} \
             AND cards.state IN ({})",
            state_list(op.from_states())
        );
        let row = client
            .query_one(&sql, &refs(&params))
            .await
            .map_err(map_err)?;
        Ok(reach_from_row(&row))
    }

    async fn activate_cards_counted(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        audit: &AuditEntry,
        tally: &ActivationTally,
    ) -> StoreResult<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let mut params: Params = vec![Box::new(audit.created_at)];
        let condition = card_filter_sql(merchant_id, filter, &mut params);
        // One statement: the cards it moved are the cards it sums.
        let sql = format!(
            "WITH moved AS (UPDATE cards SET state = 'active', activated_at = $1 WHERE {condition} \
             AND cards.state IN ({}) RETURNING face_value_fen) \
             SELECT count(*), coalesce(sum(face_value_fen), 0)::BIGINT FROM moved",
            state_list(CardOp::Activate.from_states())
        );
        let moved = reach_from_row(&tx.query_one(&sql, &refs(&params)).await.map_err(map_err)?);
        let day = reach_from_row(
            &one(
                &tx,
                "INSERT INTO staff_activation_days (merchant_id, staff_id, day, n_cards, value_fen) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (merchant_id, staff_id, day) DO UPDATE SET \
                 n_cards = staff_activation_days.n_cards + excluded.n_cards, \
                 value_fen = staff_activation_days.value_fen + excluded.value_fen \
                 RETURNING n_cards, value_fen",
                &[
                    &merchant_id,
                    &tally.staff_id,
                    &tally.day,
                    &moved.n_cards,
                    &moved.value_fen,
                ],
            )
            .await?,
        );
        if tally.cap.is_some_and(|cap| !cap.allows(day)) {
            return Err(StoreError::Conflict(Conflict::DailyCapReached));
        }
        insert_audit(&tx, audit, moved.n_cards).await?;
        if let Some(event) = NewEvent::cards(CardOp::Activate, audit, moved.n_cards) {
            insert_event(&tx, &event).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(moved.n_cards)
    }

    async fn activated_in_day(
        &self,
        merchant_id: i64,
        staff_id: i64,
        day: i64,
    ) -> StoreResult<Reach> {
        let client = self.client().await?;
        let row = opt(
            &client,
            "SELECT n_cards, value_fen FROM staff_activation_days \
             WHERE merchant_id = $1 AND staff_id = $2 AND day = $3",
            &[&merchant_id, &staff_id, &day],
        )
        .await?;
        Ok(row.as_ref().map(reach_from_row).unwrap_or_default())
    }
}
