//! Customers, their H5 sessions and login links.

use crate::sql::map_err;
use crate::sql::merchant_page;
use crate::SqliteStore;
use kaquan_core::customer::Customer;
use kaquan_core::customer::CustomerSession;
use kaquan_core::ledger::CustomerRef;
use kaquan_core::ledger::ASSET_FEN;
use kaquan_core::store::Page;
use kaquan_core::{StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

pub(crate) const CUSTOMER_COLUMNS: &str =
    "u.id, u.merchant_id, u.external_id, u.phone, u.nickname, a.balance, u.created_at";
pub(crate) const CUSTOMER_JOINS: &str =
    "customers u JOIN ledger_accounts a ON a.customer_id = u.id AND a.asset = 'fen'";

pub(crate) fn customer_from_row(row: &Row) -> rusqlite::Result<Customer> {
    Ok(Customer {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        external_id: row.get(2)?,
        phone: row.get(3)?,
        nickname: row.get(4)?,
        balance_fen: row.get(5)?,
        created_at: row.get(6)?,
    })
}

/// Inserts a customer and their balance account.
pub(crate) fn insert_customer(
    conn: &Connection,
    merchant_id: i64,
    external_id: Option<&str>,
    phone: Option<&str>,
    password_hash: Option<&str>,
    now: i64,
) -> StoreResult<i64> {
    let id: i64 = conn
        .query_row(
            "INSERT INTO customers (merchant_id, external_id, phone, password_hash, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            params![merchant_id, external_id, phone, password_hash, now],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    conn.prepare_cached(
        "INSERT INTO ledger_accounts (merchant_id, kind, customer_id, asset, balance) VALUES (?1, 'customer', ?2, ?3, 0)",
    )
    .and_then(|mut s| s.execute(params![merchant_id, id, ASSET_FEN]))
    .map_err(map_err)?;
    Ok(id)
}

/// The customer's id; an external id seen for the first time creates the
/// customer when `create` is set.
pub(crate) fn resolve_customer(
    conn: &Connection,
    merchant_id: i64,
    customer: &CustomerRef,
    now: i64,
    create: bool,
) -> StoreResult<Option<i64>> {
    let found = match customer {
        CustomerRef::Id(id) => conn
            .prepare_cached("SELECT id FROM customers WHERE id = ?1 AND merchant_id = ?2")
            .and_then(|mut s| {
                s.query_row(params![id, merchant_id], |r| r.get(0))
                    .optional()
            }),
        CustomerRef::External(external_id) => conn
            .prepare_cached("SELECT id FROM customers WHERE merchant_id = ?1 AND external_id = ?2")
            .and_then(|mut s| {
                s.query_row(params![merchant_id, external_id], |r| r.get(0))
                    .optional()
            }),
    }
    .map_err(map_err)?;
    match (found, customer) {
        (Some(id), _) => Ok(Some(id)),
        (None, CustomerRef::External(external_id)) if create => Ok(Some(insert_customer(
            conn,
            merchant_id,
            Some(external_id),
            None,
            None,
            now,
        )?)),
        _ => Ok(None),
    }
}

pub(crate) fn get_customer(
    conn: &Connection,
    merchant_id: i64,
    customer_id: i64,
) -> StoreResult<Customer> {
    conn.prepare_cached(&format!(
        "SELECT {CUSTOMER_COLUMNS} FROM {CUSTOMER_JOINS} WHERE u.id = ?1 AND u.merchant_id = ?2"
    ))
    .and_then(|mut s| s.query_row(params![customer_id, merchant_id], customer_from_row))
    .map_err(map_err)
}

#[async_trait::async_trait]
impl kaquan_core::customer::CustomerStore for SqliteStore {
    async fn ensure_customer(
        &self,
        merchant_id: i64,
        external_id: &str,
        now: i64,
    ) -> StoreResult<Customer> {
        let external_id = external_id.to_owned();
        self.write(move |conn| {
            let id = resolve_customer(
                conn,
                merchant_id,
                &CustomerRef::External(external_id.clone()),
                now,
                true,
            )?
            .ok_or(StoreError::NotFound)?;
            get_customer(conn, merchant_id, id)
        })
        .await
    }

    async fn create_phone_customer(
        &self,
        merchant_id: i64,
        phone: &str,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<Customer> {
        let (phone, password_hash) = (phone.to_owned(), password_hash.to_owned());
        self.write(move |conn| {
            let id = insert_customer(
                conn,
                merchant_id,
                None,
                Some(&phone),
                Some(&password_hash),
                now,
            )?;
            get_customer(conn, merchant_id, id)
        })
        .await
    }

    async fn adopt_phone_customer(
        &self,
        merchant_id: i64,
        phone: &str,
        password_hash: &str,
    ) -> StoreResult<Option<Customer>> {
        let (phone, password_hash) = (phone.to_owned(), password_hash.to_owned());
        self.write(move |conn| {
            let id: Option<i64> = conn
                .query_row(
                    "UPDATE customers SET password_hash = ?3 WHERE merchant_id = ?1 AND phone = ?2 AND password_hash = '' RETURNING id",
                    params![merchant_id, phone, password_hash],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_err)?;
            id.map(|id| get_customer(conn, merchant_id, id)).transpose()
        })
        .await
    }

    async fn find_phone_customer(
        &self,
        merchant_id: i64,
        phone: &str,
    ) -> StoreResult<Option<(Customer, String)>> {
        let phone = phone.to_owned();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {CUSTOMER_COLUMNS}, u.password_hash FROM {CUSTOMER_JOINS} WHERE u.merchant_id = ?1 AND u.phone = ?2 AND u.password_hash IS NOT NULL"),
                params![merchant_id, phone],
                |r| Ok((customer_from_row(r)?, r.get(7)?)),
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn get_customer(&self, merchant_id: i64, customer_id: i64) -> StoreResult<Customer> {
        self.read(move |conn| get_customer(conn, merchant_id, customer_id))
            .await
    }

    async fn find_external_customer(
        &self,
        merchant_id: i64,
        external_id: &str,
    ) -> StoreResult<Option<Customer>> {
        let external_id = external_id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {CUSTOMER_COLUMNS} FROM {CUSTOMER_JOINS} WHERE u.merchant_id = ?1 AND u.external_id = ?2"
            ))
            .and_then(|mut s| s.query_row(params![merchant_id, external_id], customer_from_row).optional())
            .map_err(map_err)
        })
        .await
    }

    async fn list_customers(
        &self,
        merchant_id: i64,
        search: &str,
        page: Page,
    ) -> StoreResult<(Vec<Customer>, i64)> {
        let search = search.trim().to_owned();
        self.read(move |conn| {
            if search.is_empty() {
                return merchant_page(
                    conn,
                    &format!("(SELECT {CUSTOMER_COLUMNS} FROM {CUSTOMER_JOINS})"),
                    "*",
                    merchant_id,
                    page,
                    customer_from_row,
                );
            }
            let needle = format!("%{}%", search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
            let filter = "u.merchant_id = ?1 AND (u.external_id LIKE ?2 ESCAPE '\\' OR u.phone LIKE ?2 ESCAPE '\\' OR u.nickname LIKE ?2 ESCAPE '\\')";
            let total: i64 = conn
                .query_row(&format!("SELECT count(*) FROM customers u WHERE {filter}"), params![merchant_id, needle], |r| r.get(0))
                .map_err(map_err)?;
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {CUSTOMER_COLUMNS} FROM {CUSTOMER_JOINS} WHERE {filter} ORDER BY u.id DESC LIMIT ?3 OFFSET ?4"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![merchant_id, needle, page.page_size, page.offset()], customer_from_row)
                .map_err(map_err)?;
            Ok((rows.collect::<Result<_, _>>().map_err(map_err)?, total))
        })
        .await
    }

    async fn consume_login_link(&self, nonce: &str, expires_at: i64) -> StoreResult<()> {
        let nonce = nonce.to_owned();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO login_links (nonce, expires_at) VALUES (?1, ?2)",
                params![nonce, expires_at],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn create_customer_session(&self, session: &CustomerSession) -> StoreResult<()> {
        let s = session.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO customer_sessions (token_hash, merchant_id, customer_id, csrf_token, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![s.token_hash, s.merchant_id, s.customer_id, s.csrf_token, s.expires_at],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn find_customer_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<CustomerSession>> {
        let token_hash = token_hash.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT token_hash, merchant_id, customer_id, csrf_token, expires_at FROM customer_sessions \
                 WHERE token_hash = ?1 AND expires_at > ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![token_hash, now], |r| {
                    Ok(CustomerSession {
                        token_hash: r.get(0)?,
                        merchant_id: r.get(1)?,
                        customer_id: r.get(2)?,
                        csrf_token: r.get(3)?,
                        expires_at: r.get(4)?,
                    })
                })
                .optional()
            })
            .map_err(map_err)
        })
        .await
    }

    async fn delete_customer_session(&self, token_hash: &str) -> StoreResult<()> {
        let token_hash = token_hash.to_owned();
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM customer_sessions WHERE token_hash = ?1",
                [&token_hash],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }
}
