//! The schema stays distributable by merchant (migration 38,
//! deploy/SCALING.md): read from PostgreSQL's catalog after every
//! migration, each table is either installation-wide (listed here, with
//! why) or a merchant table whose every row names its merchant, whose every
//! primary and unique key includes `merchant_id`, and whose every foreign
//! key to another merchant table does too. A sharding layer such as Citus
//! can then keep each merchant's rows on one node and check every key there.

use tokio_postgres::Client;

/// Tables every merchant shares, read before the merchant is known (a
/// sign-in by user name, a request signed by an API key) or holding no
/// merchant's rows at all. Citus would copy them to every node.
const INSTALLATION_WIDE: &[&str] = &[
    "merchants",         // the merchants themselves
    "operators",         // the installation's operators
    "login_links",       // an operator's one-time sign-in links
    "key_ring",          // the root every merchant's keys are derived from
    "staff",             // sign-in by user name, unique across the installation
    "roles",             // read with the staff member at every sign-in
    "sessions",          // a console session, found by its cookie alone
    "api_keys",          // a signed request names its key, not its merchant
    "api_nonces",        // replay protection per API key
    "schema_migrations", // which migrations have run
];

async fn strings(client: &Client, sql: &str) -> Vec<String> {
    client
        .query(sql, &[])
        .await
        .expect("read the catalog")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

const TABLES: &str =
    "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1";

/// Merchant tables without a `merchant_id` column.
const WITHOUT_MERCHANT: &str = "SELECT c.relname::text FROM pg_class c \
    JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relname = ANY($1) \
    AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'merchant_id' \
    AND NOT a.attisdropped AND a.attnotnull) ORDER BY 1";

/// Unique indexes (primary keys and unique constraints included) of merchant
/// tables that leave `merchant_id` out.
const KEYS_WITHOUT_MERCHANT: &str = "SELECT t.relname || ': ' || i.indexrelid::regclass::text \
    FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
    WHERE n.nspname = 'public' AND i.indisunique AND NOT t.relname = ANY($1) \
    AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey) k JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k \
    WHERE a.attname = 'merchant_id') ORDER BY 1";

/// Foreign keys between two merchant tables that do not pair the two rows'
/// `merchant_id`s, and keys from an installation-wide table to a merchant
/// table (which a copy on every node could not check).
const FOREIGN_KEYS_ACROSS_MERCHANTS: &str =
    "SELECT f.conrelid::regclass::text || ': ' || f.conname \
    FROM pg_constraint f WHERE f.contype = 'f' AND f.connamespace = 'public'::regnamespace \
    AND NOT f.confrelid::regclass::text = ANY($1) \
    AND (f.conrelid::regclass::text = ANY($1) OR NOT EXISTS ( \
      SELECT 1 FROM unnest(f.conkey, f.confkey) AS k(mine, theirs) \
      JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.mine \
      JOIN pg_attribute b ON b.attrelid = f.confrelid AND b.attnum = k.theirs \
      WHERE a.attname = 'merchant_id' AND b.attname = 'merchant_id')) ORDER BY 1";

async fn offenders(client: &Client, sql: &str) -> Vec<String> {
    let wide: Vec<String> = INSTALLATION_WIDE.iter().map(|t| t.to_string()).collect();
    client
        .query(sql, &[&wide])
        .await
        .expect("read the catalog")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// A database of its own with every migration, and a client on it.
async fn migrated() -> (kaquan_store_postgres::testing::TestDatabase, Client) {
    let database = kaquan_store_postgres::testing::create_test_database().await;
    kaquan_store_postgres::connect(&database.url)
        .await
        .expect("migrate the test database");
    let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    (database, client)
}

#[tokio::test]
async fn schema_is_distributable_by_merchant() {
    let (_database, client) = migrated().await;
    let tables = strings(&client, TABLES).await;
    for wide in INSTALLATION_WIDE {
        assert!(
            tables.iter().any(|t| t == wide),
            "{wide} is listed as installation-wide but is not a table"
        );
    }
    assert!(tables.len() > 50, "the migrations made {tables:?}");
    assert_eq!(
        offenders(&client, WITHOUT_MERCHANT).await,
        Vec::<String>::new(),
        "merchant tables whose rows do not name their merchant (NOT NULL merchant_id)"
    );
    assert_eq!(
        offenders(&client, KEYS_WITHOUT_MERCHANT).await,
        Vec::<String>::new(),
        "primary or unique keys of merchant tables without merchant_id"
    );
    assert_eq!(
        offenders(&client, FOREIGN_KEYS_ACROSS_MERCHANTS).await,
        Vec::<String>::new(),
        "foreign keys to merchant tables that do not pair merchant_id"
    );
}

/// The rule bites: a key or a table that breaks it is named.
#[tokio::test]
async fn a_table_breaking_the_rule_is_named() {
    let (_database, client) = migrated().await;
    client
        .batch_execute(
            "CREATE TABLE loose (id BIGINT PRIMARY KEY, merchant_id BIGINT NOT NULL, card_id BIGINT, \
             FOREIGN KEY (card_id, merchant_id) REFERENCES cards (id, merchant_id)); \
             CREATE TABLE orphan (id BIGINT); \
             CREATE TABLE crossing (id BIGINT, merchant_id BIGINT NOT NULL, goods_id BIGINT, other BIGINT, \
             PRIMARY KEY (id, merchant_id), FOREIGN KEY (goods_id, other) REFERENCES goods (id, merchant_id)); \
             ALTER TABLE staff ADD COLUMN batch_id BIGINT, \
             ADD FOREIGN KEY (batch_id, merchant_id) REFERENCES batches (id, merchant_id);",
        )
        .await
        .unwrap();
    assert_eq!(offenders(&client, WITHOUT_MERCHANT).await, ["orphan"]);
    assert_eq!(
        offenders(&client, KEYS_WITHOUT_MERCHANT).await,
        ["loose: loose_pkey"]
    );
    assert_eq!(
        offenders(&client, FOREIGN_KEYS_ACROSS_MERCHANTS).await,
        [
            "crossing: crossing_goods_id_other_fkey",
            "staff: staff_batch_id_merchant_id_fkey"
        ]
    );
}
