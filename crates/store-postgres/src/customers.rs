//! Customers, their H5 sessions and login links.

use crate::sql::all;
use crate::sql::exec;
use crate::sql::map_err;
use crate::sql::one;
use crate::sql::opt;
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::customer::Customer;
use kaquan_core::customer::CustomerSession;
use kaquan_core::ledger::CustomerRef;
use kaquan_core::ledger::RedeemCode;
use kaquan_core::ledger::ASSET_FEN;
use kaquan_core::store::Page;
use kaquan_core::{StoreError, StoreResult};
use tokio_postgres::Row;

pub(crate) const CUSTOMER_COLUMNS: &str =
    "u.id, u.merchant_id, u.external_id, u.phone, u.nickname, a.balance, u.created_at";
pub(crate) const CUSTOMER_JOINS: &str =
    "customers u JOIN ledger_accounts a ON a.customer_id = u.id AND a.asset = 'fen'";

pub(crate) fn customer_from_row(row: &Row) -> Customer {
    Customer {
        id: row.get(0),
        merchant_id: row.get(1),
        external_id: row.get(2),
        phone: row.get(3),
        nickname: row.get(4),
        balance_fen: row.get(5),
        created_at: row.get(6),
    }
}

/// Inserts a customer and their balance account.
pub(crate) async fn insert_customer(
    c: &impl GenericClient,
    merchant_id: i64,
    external_id: Option<&str>,
    phone: Option<&str>,
    password_hash: Option<&str>,
    now: i64,
) -> StoreResult<i64> {
    let id: i64 = one(
        c,
        "INSERT INTO customers (merchant_id, external_id, phone, password_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        &[&merchant_id, &external_id, &phone, &password_hash, &now],
    )
    .await?
    .get(0);
    exec(
        c,
        "INSERT INTO ledger_accounts (merchant_id, kind, customer_id, asset, balance) VALUES ($1, 'customer', $2, $3, 0)",
        &[&merchant_id, &id, &ASSET_FEN],
    )
    .await?;
    Ok(id)
}

/// The customer's id; an external id seen for the first time creates the
/// customer when `create` is set (racing creators meet on the unique index).
/// The customer's id if they exist (one query, no insert).
pub(crate) async fn find_customer(
    c: &impl GenericClient,
    merchant_id: i64,
    customer: &CustomerRef,
) -> StoreResult<Option<i64>> {
    Ok(match customer {
        CustomerRef::Id(id) => {
            opt(
                c,
                "SELECT id FROM customers WHERE id = $1 AND merchant_id = $2",
                &[id, &merchant_id],
            )
            .await?
        }
        CustomerRef::External(external_id) => {
            opt(
                c,
                "SELECT id FROM customers WHERE merchant_id = $1 AND external_id = $2",
                &[&merchant_id, external_id],
            )
            .await?
        }
    }
    .map(|row| row.get(0)))
}

pub(crate) async fn resolve_customer(
    c: &impl GenericClient,
    merchant_id: i64,
    customer: &CustomerRef,
    now: i64,
    create: bool,
) -> StoreResult<Option<i64>> {
    let found = find_customer(c, merchant_id, customer).await?;
    create_missing_customer(c, merchant_id, customer, now, create, found).await
}

/// `found`, or (with `create`, for an external id) the customer made now.
pub(crate) async fn create_missing_customer(
    c: &impl GenericClient,
    merchant_id: i64,
    customer: &CustomerRef,
    now: i64,
    create: bool,
    found: Option<i64>,
) -> StoreResult<Option<i64>> {
    match (found, customer) {
        (Some(id), _) => Ok(Some(id)),
        (None, CustomerRef::External(external_id)) if create => {
            let inserted = opt(
                c,
                "INSERT INTO customers (merchant_id, external_id, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (merchant_id, external_id) DO NOTHING RETURNING id",
                &[&merchant_id, external_id, &now],
            )
            .await?;
            match inserted {
                Some(row) => {
                    let id: i64 = row.get(0);
                    exec(
                        c,
                        "INSERT INTO ledger_accounts (merchant_id, kind, customer_id, asset, balance) VALUES ($1, 'customer', $2, $3, 0)",
                        &[&merchant_id, &id, &ASSET_FEN],
                    )
                    .await?;
                    Ok(Some(id))
                }
                // Another call created the customer meanwhile (and committed).
                None => Ok(opt(
                    c,
                    "SELECT id FROM customers WHERE merchant_id = $1 AND external_id = $2",
                    &[&merchant_id, external_id],
                )
                .await?
                .map(|r| r.get(0))),
            }
        }
        _ => Ok(None),
    }
}

/// Where a transaction's amount comes from: given, or the face value of the
/// code the same statement marks used (a redemption is then one statement).
pub(crate) enum Source<'a> {
    Amount {
        delta: i64,
        reference: &'a str,
    },
    /// The code's guarded UPDATE; the second field is the attempt key of
    /// the client (the customer's is made by the statement from their id).
    Code(&'a RedeemCode, &'a str),
}

pub(crate) async fn get_customer(
    c: &impl GenericClient,
    merchant_id: i64,
    customer_id: i64,
) -> StoreResult<Customer> {
    opt(
        c,
        &format!("SELECT {CUSTOMER_COLUMNS} FROM {CUSTOMER_JOINS} WHERE u.id = $1 AND u.merchant_id = $2"),
        &[&customer_id, &merchant_id],
    )
    .await?
    .map(|r| customer_from_row(&r))
    .ok_or(StoreError::NotFound)
}

#[async_trait::async_trait]
impl kaquan_core::customer::CustomerStore for PgStore {
    async fn ensure_customer(
        &self,
        merchant_id: i64,
        external_id: &str,
        now: i64,
    ) -> StoreResult<Customer> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let id = resolve_customer(
            &tx,
            merchant_id,
            &CustomerRef::External(external_id.to_owned()),
            now,
            true,
        )
        .await?
        .ok_or(StoreError::NotFound)?;
        let customer = get_customer(&tx, merchant_id, id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(customer)
    }

    async fn create_phone_customer(
        &self,
        merchant_id: i64,
        phone: &str,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<Customer> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let id = insert_customer(
            &tx,
            merchant_id,
            None,
            Some(phone),
            Some(password_hash),
            now,
        )
        .await?;
        let customer = get_customer(&tx, merchant_id, id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(customer)
    }

    async fn adopt_phone_customer(
        &self,
        merchant_id: i64,
        phone: &str,
        password_hash: &str,
    ) -> StoreResult<Option<Customer>> {
        let client = self.client().await?;
        let row = opt(
            &client,
            "UPDATE customers SET password_hash = $3 WHERE merchant_id = $1 AND phone = $2 AND password_hash = '' RETURNING id",
            &[&merchant_id, &phone, &password_hash],
        )
        .await?;
        match row {
            Some(r) => Ok(Some(get_customer(&client, merchant_id, r.get(0)).await?)),
            None => Ok(None),
        }
    }

    async fn find_phone_customer(
        &self,
        merchant_id: i64,
        phone: &str,
    ) -> StoreResult<Option<(Customer, String)>> {
        let client = self.client().await?;
        Ok(opt(
            &client,
            &format!("SELECT {CUSTOMER_COLUMNS}, u.password_hash FROM {CUSTOMER_JOINS} WHERE u.merchant_id = $1 AND u.phone = $2 AND u.password_hash IS NOT NULL"),
            &[&merchant_id, &phone],
        )
        .await?
        .map(|r| (customer_from_row(&r), r.get(7))))
    }

    async fn get_customer(&self, merchant_id: i64, customer_id: i64) -> StoreResult<Customer> {
        let client = self.client().await?;
        get_customer(&client, merchant_id, customer_id).await
    }

    async fn find_external_customer(
        &self,
        merchant_id: i64,
        external_id: &str,
    ) -> StoreResult<Option<Customer>> {
        let client = self.client().await?;
        Ok(opt(
            &client,
            &format!("SELECT {CUSTOMER_COLUMNS} FROM {CUSTOMER_JOINS} WHERE u.merchant_id = $1 AND u.external_id = $2"),
            &[&merchant_id, &external_id],
        )
        .await?
        .map(|r| customer_from_row(&r)))
    }

    async fn list_customers(
        &self,
        merchant_id: i64,
        search: &str,
        page: Page,
    ) -> StoreResult<(Vec<Customer>, i64)> {
        let search = search.trim();
        let needle = format!(
            "%{}%",
            search
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let filter = "u.merchant_id = $1 AND ($2 = '' OR u.external_id LIKE $3 OR u.phone LIKE $3 OR u.nickname LIKE $3)";
        let client = self.client().await?;
        let total: i64 = one(
            &client,
            &format!("SELECT count(*) FROM customers u WHERE {filter}"),
            &[&merchant_id, &search, &needle],
        )
        .await?
        .get(0);
        let rows = all(
            &client,
            &format!(
                "SELECT {CUSTOMER_COLUMNS} FROM {CUSTOMER_JOINS} WHERE {filter} ORDER BY u.id DESC LIMIT $4 OFFSET $5"
            ),
            &[&merchant_id, &search, &needle, &page.page_size, &page.offset()],
        )
        .await?;
        Ok((rows.iter().map(customer_from_row).collect(), total))
    }

    async fn consume_login_link(&self, nonce: &str, expires_at: i64) -> StoreResult<()> {
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO login_links (nonce, expires_at) VALUES ($1, $2)",
            &[&nonce, &expires_at],
        )
        .await?;
        Ok(())
    }

    async fn create_customer_session(&self, s: &CustomerSession) -> StoreResult<()> {
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO customer_sessions (token_hash, merchant_id, customer_id, csrf_token, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[&s.token_hash, &s.merchant_id, &s.customer_id, &s.csrf_token, &s.expires_at],
        )
        .await?;
        Ok(())
    }

    async fn find_customer_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<CustomerSession>> {
        let client = self.client().await?;
        Ok(opt(
            &client,
            "SELECT token_hash, merchant_id, customer_id, csrf_token, expires_at FROM customer_sessions \
             WHERE token_hash = $1 AND expires_at > $2",
            &[&token_hash, &now],
        )
        .await?
        .map(|r| CustomerSession {
            token_hash: r.get(0),
            merchant_id: r.get(1),
            customer_id: r.get(2),
            csrf_token: r.get(3),
            expires_at: r.get(4),
        }))
    }

    async fn delete_customer_session(&self, token_hash: &str) -> StoreResult<()> {
        let client = self.client().await?;
        exec(
            &client,
            "DELETE FROM customer_sessions WHERE token_hash = $1",
            &[&token_hash],
        )
        .await?;
        Ok(())
    }
}
