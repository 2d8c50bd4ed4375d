//! Test support: the real app on port 0 over a fresh SQLite file or a fresh
//! PostgreSQL database, with signed-in HTTP clients.

#![allow(dead_code)] // Each test binary uses a different part of this module.

pub mod browser;
pub mod providers;
pub mod receiver;

use kaquan_core::auth::hash_staff_password;
use kaquan_core::secrets::MasterKey;
use kaquan_core::staff::NewStaff;
use kaquan_core::store::Store;
use kaquan_web::AppState;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

pub const PASSWORD: &str = "abc12345";

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    pub store: Arc<dyn Store>,
    pub master: MasterKey,
    pub merchant_id: i64,
    pub dir: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// The SMS providers' doubles this app texts through.
    pub providers: providers::Providers,
    /// Dropped last: the PostgreSQL database of this test.
    _database: Option<kaquan_store_postgres::testing::TestDatabase>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kaquan-{label}-{}",
        kaquan_core::secrets::random_token_hex(6)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fresh store, and for PostgreSQL the guard that drops its database
/// when the test ends.
pub async fn store_for(
    backend: Backend,
    dir: &std::path::Path,
) -> (
    Arc<dyn Store>,
    Option<kaquan_store_postgres::testing::TestDatabase>,
) {
    match backend {
        Backend::Sqlite => (
            Arc::new(
                kaquan_store_sqlite::open(
                    &dir.join("kaquan.db"),
                    kaquan_store_sqlite::OpenMode::CreateIfMissing,
                )
                .unwrap(),
            ),
            None,
        ),
        Backend::Postgres => {
            let database = kaquan_store_postgres::testing::create_test_database().await;
            let store = kaquan_store_postgres::connect(&database.url).await.unwrap();
            (Arc::new(store), Some(database))
        }
    }
}

impl TestApp {
    /// A 会员卡 program of the app's merchant, made by the store.
    pub async fn member_program(
        &self,
        fields: &kaquan_core::member::ProgramFields,
    ) -> kaquan_core::member::MemberProgram {
        self.store
            .create_member_program(
                self.merchant_id,
                fields,
                &kaquan_core::audit::Actor::cli(),
                kaquan_web::now(),
            )
            .await
            .unwrap()
    }

    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |state| state).await
    }

    /// An app whose state `configure` changes before it serves.
    pub async fn start_with(
        backend: Backend,
        configure: impl FnOnce(AppState) -> AppState,
    ) -> Self {
        let dir = temp_dir("web");
        let (store, database) = store_for(backend, &dir).await;
        let master = MasterKey::generate();
        let merchant = store
            .create_merchant("测试商户", kaquan_web::now())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        // Tests receive webhooks on 127.0.0.1, and texts go to the providers' doubles.
        let (providers, sms_endpoints, wdt_endpoint, waybill_endpoints) =
            providers::Providers::start().await;
        let state = AppState::new(Arc::clone(&store), master.clone(), &base, false)
            .with_webhook_policy(kaquan_web::outbox::WebhookPolicy {
                allow_private_addresses: true,
            })
            .with_sms_endpoints(sms_endpoints)
            .with_wdt_endpoint(&wdt_endpoint)
            .with_waybill_endpoints(waybill_endpoints);
        let state = configure(state);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(kaquan_web::serve(listener, state, async {
            let _ = rx.await;
        }));
        let app = Self {
            base,
            store,
            master,
            merchant_id: merchant.id,
            dir,
            shutdown: Some(tx),
            providers,
            _database: database,
        };
        app.add_staff("owner", "owner").await;
        app
    }

    /// A second server on this app's PostgreSQL database (its own pool, the
    /// same master key), as a second node would run; its base URL. It
    /// stops with the test's runtime.
    pub async fn second_node(&self) -> String {
        let url = &self
            ._database
            .as_ref()
            .expect("a second node needs PostgreSQL")
            .url;
        let store: Arc<dyn Store> = Arc::new(kaquan_store_postgres::connect(url).await.unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = AppState::new(store, self.master.clone(), &base, false);
        tokio::spawn(kaquan_web::serve(listener, state, std::future::pending()));
        base
    }

    /// Adds a staff member with one of the built-in roles; password [`PASSWORD`].
    pub async fn add_staff(&self, username: &str, role: &str) {
        let roles = self.store.list_roles(self.merchant_id).await.unwrap();
        let role = roles.iter().find(|r| r.name == role).unwrap();
        let staff = NewStaff {
            merchant_id: self.merchant_id,
            username: username.into(),
            name: username.into(),
            phone: String::new(),
            role_id: role.id,
            password_hash: hash_staff_password(PASSWORD),
            must_change_password: false,
        };
        self.store
            .create_staff(&staff, kaquan_web::now())
            .await
            .unwrap();
    }

    /// Makes the merchant's first staff account (the owner) the operator (平台运营).
    pub async fn make_owner_operator(&self) {
        let staff = self.store.list_staff(self.merchant_id).await.unwrap();
        let audit = kaquan_core::audit::AuditEntry {
            merchant_id: self.merchant_id,
            actor: kaquan_core::audit::Actor::cli(),
            action: "set_operator".into(),
            target: staff[0].username.clone(),
            detail: String::new(),
            n_affected: 1,
            created_at: kaquan_web::now(),
        };
        self.store
            .set_operator(staff[0].id, true, &audit)
            .await
            .unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client signed in as `username`.
    pub async fn client(&self, username: &str) -> Client {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = http
            .post(self.url("/api/v1/sessions"))
            .json(&serde_json::json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "sign in as {username}");
        let me: Value = response.json().await.unwrap();
        Client {
            http,
            base: self.base.clone(),
            csrf: me["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Waits until a batch leaves `generating`.
    pub async fn wait_for_batch(&self, client: &Client, batch_id: i64) -> Value {
        loop {
            let (status, batch) = client.get(&format!("/api/v1/batches/{batch_id}")).await;
            assert_eq!(status, 200);
            // `progress_done` is cleared once the generating task has finished.
            if batch["state"] != "generating" && batch["progress_done"].is_null() {
                return batch;
            }
            tokio::task::yield_now().await;
        }
    }
}

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub csrf: String,
}

impl Client {
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A console page's HTML.
    pub async fn page(&self, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.bytes().await.unwrap().to_vec(),
        )
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Uploads `bytes` as the multipart field `file` of a staff API POST.
    pub async fn upload(&self, path: &str, bytes: &[u8]) -> (u16, Value) {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name("picture.png"),
        );
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Saves 礼品卡设置: the activity on, and `changes` over the defaults.
    pub async fn put_giftcard_settings(&self, changes: Value) {
        let mut settings = serde_json::json!({
            "enabled": true, "centre_entry": true, "attempt_limit": 5, "centre_name": "礼品卡中心",
            "share_title": "", "description": "", "phone_login": false
        });
        for (field, value) in changes.as_object().unwrap() {
            settings[field] = value.clone();
        }
        let (status, body) = self
            .send(reqwest::Method::PUT, "/api/v1/giftcard-settings", settings)
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// An online code template of `face_value_fen` and a 礼品卡商品 on the
    /// shelf linked to it; returns (template, product).
    pub async fn giftcard_product(
        &self,
        name: &str,
        face_value_fen: i64,
        price_fen: i64,
    ) -> (Value, Value) {
        let (status, template) = self
            .post(
                "/api/v1/code-templates",
                serde_json::json!({"kind": "online", "name": format!("{name}兑换码"), "face_value_fen": face_value_fen}),
            )
            .await;
        assert_eq!(status, 201, "{template}");
        let (status, product) = self
            .post(
                "/api/v1/giftcard-products",
                serde_json::json!({"name": name, "template_id": template["id"], "price_fen": price_fen, "on_shelf": true}),
            )
            .await;
        assert_eq!(status, 201, "{product}");
        (template, product)
    }
}

/// The merchant's mall: signs every request with its API key.
pub struct Mall {
    pub http: reqwest::Client,
    pub base: String,
    pub key_id: String,
    pub secret: String,
}

pub struct Signed {
    pub status: u16,
    pub replayed: bool,
    pub body: serde_json::Value,
}

impl Mall {
    /// A mall with a fresh API key of the app's merchant.
    pub async fn new(app: &TestApp) -> Self {
        let owner = app.client("owner").await;
        let (status, key) = owner
            .post("/api/v1/api-keys", serde_json::json!({"label": "商城"}))
            .await;
        assert_eq!(status, 201, "{key}");
        Self {
            http: reqwest::Client::new(),
            base: app.base.clone(),
            key_id: key["key_id"].as_str().unwrap().to_owned(),
            secret: key["secret"].as_str().unwrap().to_owned(),
        }
    }

    /// Sends a signed request; `idempotency_key` only for POSTs.
    pub async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
        idempotency_key: Option<&str>,
    ) -> Signed {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let timestamp = kaquan_web::now().to_string();
        let nonce = kaquan_core::secrets::random_token_hex(16);
        self.send_raw(
            method,
            path,
            query,
            &timestamp,
            &nonce,
            &body,
            idempotency_key,
            &self.secret,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        query: &str,
        timestamp: &str,
        nonce: &str,
        body: &str,
        idempotency_key: Option<&str>,
        secret: &str,
    ) -> Signed {
        let canonical = kaquan_core::signing::canonical_request(
            method,
            path,
            query,
            timestamp,
            nonce,
            body.as_bytes(),
        );
        let url = if query.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{query}", self.base)
        };
        let mut request = self
            .http
            .request(method.parse().unwrap(), url)
            .header("x-kaquan-key", &self.key_id)
            .header("x-kaquan-timestamp", timestamp)
            .header("x-kaquan-nonce", nonce)
            .header(
                "x-kaquan-signature",
                kaquan_core::signing::sign(secret, &canonical),
            )
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let replayed = response.headers().get("idempotent-replayed").is_some();
        Signed {
            status,
            replayed,
            body: response.json().await.unwrap_or(serde_json::Value::Null),
        }
    }

    pub async fn post(&self, path: &str, body: serde_json::Value, idempotency_key: &str) -> Signed {
        self.send("POST", path, Some(&body), Some(idempotency_key))
            .await
    }

    /// Reports a paid order of `quantity` of `product` (for `customer`, if
    /// given); returns the codes issued for it.
    pub async fn order_codes(
        &self,
        order_id: &str,
        product: &Value,
        quantity: i64,
        customer: Option<&str>,
    ) -> Vec<String> {
        let mut order = serde_json::json!({"order_id": order_id, "product_id": product["id"], "quantity": quantity});
        if let Some(customer) = customer {
            order["customer_id"] = customer.into();
        }
        let issued = self
            .post("/open/v1/orders", order, &format!("order-{order_id}"))
            .await;
        assert_eq!(issued.status, 201, "{}", issued.body);
        issued.body["codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["code"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Runs a test body once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident => $body:ident;)*) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$body($crate::common::TestApp::start($crate::common::Backend::Sqlite).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$body($crate::common::TestApp::start($crate::common::Backend::Postgres).await).await;
                }
            )*
        }
    };
}

/// An active batch of `n` cards linked to two goods; returns (numbers, passwords, goods ids).
pub async fn pickup_cards(app: &TestApp, n: i64) -> (Vec<String>, Vec<String>, Vec<i64>) {
    let client = app.client("owner").await;
    let (_, apple) = client
        .post("/api/v1/goods", serde_json::json!({"name": "苹果"}))
        .await;
    let (_, peach) = client
        .post("/api/v1/goods", serde_json::json!({"name": "桃子"}))
        .await;
    let goods = vec![apple["id"].as_i64().unwrap(), peach["id"].as_i64().unwrap()];
    let (status, created) = client
        .post(
            "/api/v1/batches",
            serde_json::json!({"quantity": n, "face_value_fen": 38800, "goods_ids": goods, "activate": true}),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let batch = app
        .wait_for_batch(&client, created["batch_id"].as_i64().unwrap())
        .await;
    assert_eq!(batch["state"], "ready");
    let (_, csv) = client
        .get_bytes(&format!(
            "/api/v1/cards/export?batch_id={}&format=csv&with_secrets=true",
            batch["id"]
        ))
        .await;
    let text = String::from_utf8(csv).unwrap();
    let rows: Vec<(String, String)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<_> = l.split(',').collect();
            (cells[1].to_owned(), cells[2].to_owned())
        })
        .collect();
    let (numbers, passwords) = rows.into_iter().unzip();
    (numbers, passwords, goods)
}

pub async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

pub fn address<'a>(
    number: &'a str,
    password: &'a str,
    goods_id: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("number", number),
        ("password", password),
        ("goods_id", goods_id),
        ("consignee", "张三"),
        ("phone", "13800001234"),
        ("province", "浙江省"),
        ("city", "杭州市"),
        ("district", "西湖区"),
        ("address", "文三路 100 号"),
        ("appointment_date", "2099-01-05"),
    ]
}

/// Pickup orders through the customer's H5 form, one per card of
/// `cards` (as `pickup_cards` makes them, for its first goods); their ids,
/// oldest first.
pub async fn h5_orders(
    app: &TestApp,
    owner: &Client,
    (numbers, passwords, goods): (Vec<String>, Vec<String>, Vec<i64>),
) -> Vec<i64> {
    let goods = goods[0].to_string();
    for (number, password) in numbers.iter().zip(&passwords) {
        let (status, page) = post_form(
            app,
            &format!("/m/{}/redeem/confirm", app.merchant_id),
            &address(number, password, &goods),
        )
        .await;
        assert_eq!(status, 200, "{page}");
    }
    let (_, listed) = owner.get("/api/v1/orders?status=pending").await;
    let mut ids: Vec<i64> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids
}

/// The text of the one QR code in a greyscale PNG, read by a real decoder.
pub fn decode_qr_png(bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (width, height) = (info.width as usize, info.height as usize);
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| pixels[y * width + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().unwrap().1
}

/// The first sheet of an xlsx file, read by a real reader (calamine).
pub fn xlsx_range(path: &std::path::Path) -> calamine::Range<calamine::Data> {
    use calamine::Reader;
    let mut workbook: calamine::Xlsx<_> = calamine::open_workbook(path).unwrap();
    workbook.worksheet_range_at(0).unwrap().unwrap()
}

/// The first sheet of an xlsx file as text, row by row.
pub fn xlsx_rows(path: &std::path::Path) -> Vec<Vec<String>> {
    xlsx_range(path)
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}
