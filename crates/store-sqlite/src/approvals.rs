//! 双人复核: the policy, the requests and their guarded decisions, and
//! activations counted per staff member and day (`kaquan_core::approval`).

use crate::cards::{card_filter_sql, state_list};
use crate::events::insert_event;
use crate::sql::{decode, filtered_page, insert_audit, map_err};
use crate::SqliteStore;
use kaquan_core::approval::{
    ActivationTally, ApprovalKind, ApprovalPolicy, ApprovalRequest, ApprovalState, DailyCap,
    Decider, Decision, NewApproval, Reach,
};
use kaquan_core::audit::AuditEntry;
use kaquan_core::card::{CardFilter, CardOp};
use kaquan_core::event::NewEvent;
use kaquan_core::store::Page;
use kaquan_core::{Conflict, StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, Row};

const POLICY_COLUMNS: &str = "activate_count_over, activate_value_over_fen, export_secrets, \
    delete_cards, adjust_over_fen, daily_max_cards, daily_max_value_fen, expiry_hours, credentials";

const REQUEST_COLUMNS: &str = "id, merchant_id, kind, target, detail, n_cards, value_fen, reason, \
    requested_by, requested_by_name, requested_at, expires_at, state, decided_by, \
    decided_by_name, decided_at, n_done, outcome, payload, secret_sealed, key_version";

fn policy_from_row(row: &Row) -> rusqlite::Result<ApprovalPolicy> {
    Ok(ApprovalPolicy {
        activate_count_over: row.get(0)?,
        activate_value_over_fen: row.get(1)?,
        export_secrets: row.get(2)?,
        delete_cards: row.get(3)?,
        adjust_over_fen: row.get(4)?,
        daily_cap: DailyCap {
            max_cards: row.get(5)?,
            max_value_fen: row.get(6)?,
        },
        expiry_hours: row.get(7)?,
        credentials: row.get(8)?,
    })
}

fn request_from_row(row: &Row) -> rusqlite::Result<ApprovalRequest> {
    let kind: String = row.get(2)?;
    let state: String = row.get(12)?;
    Ok(ApprovalRequest {
        id: row.get(0)?,
        request: NewApproval {
            merchant_id: row.get(1)?,
            kind: decode(ApprovalKind::parse(&kind), 2, "approval kind")?,
            target: row.get(3)?,
            detail: row.get(4)?,
            payload: row.get(18)?,
            secret_sealed: row.get(19)?,
            key_version: row.get(20)?,
            reach: Reach {
                n_cards: row.get(5)?,
                value_fen: row.get(6)?,
            },
            reason: row.get(7)?,
            requested_by: row.get(8)?,
            requested_by_name: row.get(9)?,
            requested_at: row.get(10)?,
            expires_at: row.get(11)?,
        },
        state: decode(ApprovalState::parse(&state), 12, "approval state")?,
        decided_by: row.get(13)?,
        decided_by_name: row.get(14)?,
        decided_at: row.get(15)?,
        n_done: row.get(16)?,
        outcome: row.get(17)?,
    })
}

#[async_trait::async_trait]
impl kaquan_core::approval::ApprovalStore for SqliteStore {
    async fn approval_policy(&self, merchant_id: i64) -> StoreResult<ApprovalPolicy> {
        self.read(move |conn| {
            let policy = conn
                .query_row(
                    &format!(
                        "SELECT {POLICY_COLUMNS} FROM approval_policies WHERE merchant_id = ?1"
                    ),
                    [merchant_id],
                    policy_from_row,
                )
                .optional()
                .map_err(map_err)?;
            Ok(policy.unwrap_or_default())
        })
        .await
    }

    async fn set_approval_policy(
        &self,
        merchant_id: i64,
        policy: &ApprovalPolicy,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (policy, audit) = (policy.clone(), audit.clone());
        self.write(move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO approval_policies (merchant_id, {POLICY_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                     ON CONFLICT (merchant_id) DO UPDATE SET \
                     activate_count_over = excluded.activate_count_over, \
                     activate_value_over_fen = excluded.activate_value_over_fen, \
                     export_secrets = excluded.export_secrets, delete_cards = excluded.delete_cards, \
                     adjust_over_fen = excluded.adjust_over_fen, daily_max_cards = excluded.daily_max_cards, \
                     daily_max_value_fen = excluded.daily_max_value_fen, expiry_hours = excluded.expiry_hours, \
                     credentials = excluded.credentials"
                ),
                params![
                    merchant_id,
                    policy.activate_count_over,
                    policy.activate_value_over_fen,
                    policy.export_secrets,
                    policy.delete_cards,
                    policy.adjust_over_fen,
                    policy.daily_cap.max_cards,
                    policy.daily_cap.max_value_fen,
                    policy.expiry_hours,
                    policy.credentials
                ],
            )
            .map_err(map_err)?;
            insert_audit(conn, &audit, 0).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn create_approval(
        &self,
        request: &NewApproval,
        audit: &AuditEntry,
    ) -> StoreResult<ApprovalRequest> {
        let (r, mut audit) = (request.clone(), audit.clone());
        self.write(move |conn| {
            let created = conn
                .query_row(
                    &format!(
                        "INSERT INTO approval_requests (merchant_id, kind, target, detail, n_cards, value_fen, \
                         reason, requested_by, requested_by_name, requested_at, expires_at, payload, secret_sealed, key_version) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) RETURNING {REQUEST_COLUMNS}"
                    ),
                    params![
                        r.merchant_id,
                        r.kind.code(),
                        r.target,
                        r.detail,
                        r.reach.n_cards,
                        r.reach.value_fen,
                        r.reason,
                        r.requested_by,
                        r.requested_by_name,
                        r.requested_at,
                        r.expires_at,
                    r.payload,
                    r.secret_sealed,
                    r.key_version
                    ],
                    request_from_row,
                )
                .map_err(map_err)?;
            audit.target = format!("approval={} {}", created.id, audit.target);
            insert_audit(conn, &audit, r.reach.n_cards).map_err(map_err)?;
            Ok(created)
        })
        .await
    }

    async fn approval(&self, merchant_id: i64, id: i64) -> StoreResult<Option<ApprovalRequest>> {
        self.read(move |conn| {
            conn.query_row(
                &format!(
                    "SELECT {REQUEST_COLUMNS} FROM approval_requests WHERE merchant_id = ?1 AND id = ?2"
                ),
                [merchant_id, id],
                request_from_row,
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn list_approvals(
        &self,
        merchant_id: i64,
        state: Option<ApprovalState>,
        now: i64,
        page: Page,
    ) -> StoreResult<(Vec<ApprovalRequest>, i64)> {
        self.read(move |conn| {
            let mut values = vec![Value::Integer(merchant_id)];
            let condition = match state {
                None => "merchant_id = ?",
                Some(ApprovalState::Pending) => {
                    "merchant_id = ? AND state = 'pending' AND expires_at > ?"
                }
                Some(ApprovalState::Expired) => {
                    "merchant_id = ? AND state = 'pending' AND expires_at <= ?"
                }
                Some(_) => "merchant_id = ? AND state = ?",
            };
            match state {
                Some(ApprovalState::Pending | ApprovalState::Expired) => {
                    values.push(Value::Integer(now));
                }
                Some(other) => values.push(Value::Text(other.code().into())),
                None => {}
            }
            filtered_page(
                conn,
                ("approval_requests", REQUEST_COLUMNS, "id DESC"),
                condition,
                values,
                page,
                request_from_row,
            )
        })
        .await
    }

    async fn decide_approval(
        &self,
        merchant_id: i64,
        id: i64,
        decision: Decision,
        by: &Decider,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        let (by, audit) = (by.clone(), audit.clone());
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE approval_requests SET state = ?1, decided_by = ?2, decided_by_name = ?3, \
                     decided_at = ?4 WHERE merchant_id = ?5 AND id = ?6 AND state = 'pending' \
                     AND expires_at > ?4 AND requested_by <> ?2",
                    params![decision.state().code(), by.staff_id, by.name, by.now, merchant_id, id],
                )
                .map_err(map_err)?;
            if n == 1 {
                insert_audit(conn, &audit, 0).map_err(map_err)?;
            }
            Ok(n == 1)
        })
        .await
    }

    async fn finish_approval(
        &self,
        merchant_id: i64,
        id: i64,
        outcome: Result<i64, String>,
    ) -> StoreResult<bool> {
        let (state, n_done, text) = match outcome {
            Ok(n) => (ApprovalState::Done, Some(n), String::new()),
            Err(message) => (ApprovalState::Failed, None, message),
        };
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE approval_requests SET state = ?1, n_done = ?2, outcome = ?3 \
                     WHERE merchant_id = ?4 AND id = ?5 AND state = 'approved'",
                    params![state.code(), n_done, text, merchant_id, id],
                )
                .map_err(map_err)?;
            Ok(n == 1)
        })
        .await
    }

    async fn card_op_reach(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        op: CardOp,
    ) -> StoreResult<Reach> {
        let (condition, values) = card_filter_sql(merchant_id, filter);
        let sql = format!(
            "SELECT count(*), coalesce(sum(face_value_fen), 0) FROM cards WHERE {condition} \
             AND cards.state IN ({})",
            state_list(op.from_states())
        );
        self.read(move |conn| {
            conn.query_row(&sql, params_from_iter(values), |r| {
                Ok(Reach {
                    n_cards: r.get(0)?,
                    value_fen: r.get(1)?,
                })
            })
            .map_err(map_err)
        })
        .await
    }

    async fn activate_cards_counted(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        audit: &AuditEntry,
        tally: &ActivationTally,
    ) -> StoreResult<i64> {
        let (condition, values) = card_filter_sql(merchant_id, filter);
        let guard = format!(
            "{condition} AND cards.state IN ({})",
            state_list(CardOp::Activate.from_states())
        );
        let (audit, tally) = (audit.clone(), *tally);
        self.write(move |conn| {
            // The one writer: nothing moves these cards between the two statements.
            let value_fen: i64 = conn
                .query_row(
                    &format!("SELECT coalesce(sum(face_value_fen), 0) FROM cards WHERE {guard}"),
                    params_from_iter(values.iter()),
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            let bound = std::iter::once(Value::Integer(audit.created_at)).chain(values.iter().cloned());
            let n = conn
                .execute(
                    &format!("UPDATE cards SET state = 'active', activated_at = ? WHERE {guard}"),
                    params_from_iter(bound),
                )
                .map_err(map_err)? as i64;
            let day = conn
                .query_row(
                    "INSERT INTO staff_activation_days (merchant_id, staff_id, day, n_cards, value_fen) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (merchant_id, staff_id, day) DO UPDATE SET \
                     n_cards = n_cards + excluded.n_cards, value_fen = value_fen + excluded.value_fen \
                     RETURNING n_cards, value_fen",
                    params![merchant_id, tally.staff_id, tally.day, n, value_fen],
                    |r| Ok(Reach { n_cards: r.get(0)?, value_fen: r.get(1)? }),
                )
                .map_err(map_err)?;
            if tally.cap.is_some_and(|cap| !cap.allows(day)) {
                return Err(StoreError::Conflict(Conflict::DailyCapReached));
            }
            insert_audit(conn, &audit, n).map_err(map_err)?;
            if let Some(event) = NewEvent::cards(CardOp::Activate, &audit, n) {
                insert_event(conn, &event)?;
            }
            Ok(n)
        })
        .await
    }

    async fn activated_in_day(
        &self,
        merchant_id: i64,
        staff_id: i64,
        day: i64,
    ) -> StoreResult<Reach> {
        self.read(move |conn| {
            let reach = conn
                .query_row(
                    "SELECT n_cards, value_fen FROM staff_activation_days \
                     WHERE merchant_id = ?1 AND staff_id = ?2 AND day = ?3",
                    [merchant_id, staff_id, day],
                    |r| {
                        Ok(Reach {
                            n_cards: r.get(0)?,
                            value_fen: r.get(1)?,
                        })
                    },
                )
                .optional()
                .map_err(map_err)?;
            Ok(reach.unwrap_or_default())
        })
        .await
    }
}
