//! The shared conformance suite on PostgreSQL, each check in its own database.

use std::sync::Arc;

/// A store on a database of its own, which goes when the test ends.
struct FreshStore {
    store: Arc<kaquan_store_postgres::PgStore>,
    _database: kaquan_store_postgres::testing::TestDatabase,
}

impl AsRef<kaquan_store_postgres::PgStore> for FreshStore {
    fn as_ref(&self) -> &kaquan_store_postgres::PgStore {
        &self.store
    }
}

async fn fresh_store() -> FreshStore {
    let database = kaquan_store_postgres::testing::create_test_database().await;
    FreshStore {
        store: Arc::new(
            kaquan_store_postgres::connect(&database.url)
                .await
                .expect("connect to the test database"),
        ),
        _database: database,
    }
}

kaquan_conformance::conformance_tests!(fresh_store());

/// A bulk insert refreshes its table's planner statistics once it has
/// committed: PostgreSQL otherwise plans for the table as it was until
/// autovacuum comes round, and the export that usually follows a new batch
/// read the whole batch for every page it wrote.
#[tokio::test]
async fn bulk_inserts_leave_fresh_planner_statistics() {
    use kaquan_core::audit::{Actor, AuditEntry};
    use kaquan_core::code::CodeStore;
    use kaquan_core::code::{new_codes, CodeKind, CodeTemplateFields};
    use kaquan_core::merchant::MerchantStore;
    let database = kaquan_store_postgres::testing::create_test_database().await;
    let url = database.url.clone();
    let store = kaquan_store_postgres::connect(&url).await.unwrap();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    // pg_class.reltuples is what the planner estimates from; -1 until the
    // table is first analyzed.
    let estimated_rows = |table: &'static str| {
        let client = &client;
        async move {
            let row = client
                .query_one(
                    "SELECT reltuples::float8 FROM pg_class WHERE relname = $1",
                    &[&table],
                )
                .await
                .unwrap();
            row.get::<_, f64>(0)
        }
    };
    let merchant = store.create_merchant("统计", 0).await.unwrap();
    let audit = AuditEntry {
        merchant_id: merchant.id,
        actor: Actor::cli(),
        action: "create_code_template".into(),
        target: String::new(),
        detail: String::new(),
        n_affected: 0,
        created_at: 0,
    };
    let master = kaquan_core::secrets::MasterKey::from_bytes([9; 32]);
    let fields = CodeTemplateFields {
        name: "批量".into(),
        face_value_fen: 100,
        valid_from: None,
        valid_until: None,
    };
    let codes = new_codes(&master, merchant.id, 1, 20_000);
    store
        .create_code_template(merchant.id, CodeKind::Offline, &fields, &codes, &audit)
        .await
        .unwrap();
    assert!(estimated_rows("codes").await >= 19_000.0);
    kaquan_conformance::generate(
        &store,
        merchant.id,
        kaquan_core::batch::BatchFields {
            quantity: 20_000,
            ..Default::default()
        },
    )
    .await;
    assert!(estimated_rows("cards").await >= 19_000.0);
}

/// A member operation names its member and that member's merchant, as one
/// key (migration 27): one naming another merchant is refused, and no key
/// leads to `merchants` itself, whose one row every payment of a shop
/// would otherwise lock (FOR KEY SHARE) and queue on.
#[tokio::test]
async fn a_member_operation_names_its_members_merchant() {
    use kaquan_core::audit::Actor;
    use kaquan_core::ledger::{ApiCall, CustomerRef};
    use kaquan_core::member::operation::{ActivateMember, MemberAction, MemberOp, MemberOpStore};
    use kaquan_core::member::{MemberStore, ProgramFields};
    use kaquan_core::merchant::MerchantStore;
    let database = kaquan_store_postgres::testing::create_test_database().await;
    let store = kaquan_store_postgres::connect(&database.url).await.unwrap();
    let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let ours = store.create_merchant("甲", 0).await.unwrap().id;
    let theirs = store.create_merchant("乙", 0).await.unwrap().id;
    let fields = ProgramFields {
        title: "会员卡".into(),
        ..ProgramFields::default()
    };
    let program = store
        .create_member_program(ours, &fields, &Actor::cli(), 0)
        .await
        .unwrap();
    let activate = MemberAction::Activate(ActivateMember {
        merchant_id: ours,
        program_id: program.id,
        customer: CustomerRef::External("c1".into()),
        phone: "13800000000".into(),
        name: String::new(),
        birthday: None,
        gender: None,
    });
    let op = MemberOp {
        merchant_id: ours,
        action: activate,
        actor: Actor::cli(),
        now: 0,
    };
    let opened = store
        .post_member_op(&ApiCall::default(), &op)
        .await
        .unwrap();
    let member_id = opened.result.unwrap().member_id;
    let insert = |merchant_id: i64, reference: &'static str| {
        let client = &client;
        async move {
            client
                .execute(
                    "INSERT INTO member_operations (merchant_id, member_id, kind, reference, amount_fen, discount_fen, \
                     points_used, points_deduction_fen, balance_fen, bonus_fen, points_earned, points_after, \
                     balance_after_fen, tier_after, refunded_fen, reason, created_by, created_at) \
                     VALUES ($1, $2, 'adjust_points', $3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '', 'test', 0)",
                    &[&merchant_id, &member_id, &reference],
                )
                .await
        }
    };
    let refused = insert(theirs, "x").await.unwrap_err();
    assert_eq!(
        refused.code(),
        Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION)
    );
    assert_eq!(insert(ours, "y").await.unwrap(), 1);
    let to_merchants: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'member_operations'::regclass \
             AND confrelid = 'merchants'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(to_merchants, 0);
}
