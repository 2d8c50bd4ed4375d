//! The OpenAPI document is a contract: any change to it shows up here.
//! Run with `UPDATE_SNAPSHOTS=1` to accept a deliberate change.

mod common;

#[tokio::test]
async fn the_openapi_document_matches_its_snapshot_and_is_served() {
    let document = serde_json::to_string_pretty(&kaquan_web::openapi::document()).unwrap() + "\n";
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &document).unwrap();
    }
    let snapshot = std::fs::read_to_string(&path)
        .expect("snapshot exists (create it with UPDATE_SNAPSHOTS=1)");
    assert_eq!(
        document, snapshot,
        "the API changed: review and run with UPDATE_SNAPSHOTS=1"
    );

    let app = common::TestApp::start(common::Backend::Sqlite).await;
    let served: serde_json::Value = reqwest::get(app.url("/api/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, kaquan_web::openapi::document());
    for (_, _, operation_id, _, _) in kaquan_web::openapi::operations() {
        let (verb, resource) = operation_id.split_once('_').unwrap();
        assert!(
            [
                "get",
                "list",
                "create",
                "update",
                "delete",
                "activate",
                "deactivate",
                "void",
                "restore",
                "edit",
                "purge",
                "export",
                "import",
                "estimate",
                "link",
                "check",
                "cancel",
                "ship",
                "revoke",
                "rotate",
                "replay",
                "approve",
                "reject",
                "collect"
            ]
            .contains(&verb),
            "{operation_id}"
        );
        assert!(!resource.is_empty());
    }
}

/// Every operation shows what it takes and answers by example: each JSON
/// request body and each JSON success answer reaches a schema with an
/// `example` (request examples are also parsed as the server's own types
/// when the document is built).
#[test]
fn every_operation_has_an_example() {
    let document = kaquan_web::openapi::document();
    let schemas = &document["components"]["schemas"];
    let has_example = |schema: &serde_json::Value| -> bool {
        let mut schema = schema;
        loop {
            if schema.get("example").is_some() {
                return true;
            }
            if let Some(name) = schema["$ref"].as_str() {
                schema = &schemas[name.rsplit('/').next().unwrap()];
            } else if schema.get("items").is_some() {
                schema = &schema["items"];
            } else if let Some(items) = schema["properties"].get("items") {
                schema = items;
            } else {
                return false;
            }
        }
    };
    let mut missing = Vec::new();
    for (method, path, operation_id, _, _) in kaquan_web::openapi::operations() {
        let operation = &document["paths"][path][method];
        let body = &operation["requestBody"]["content"]["application/json"]["schema"];
        if !body.is_null() && !has_example(body) {
            missing.push(format!("{operation_id} request"));
        }
        for (status, answer) in operation["responses"].as_object().unwrap() {
            let schema = &answer["content"]["application/json"]["schema"];
            if !schema.is_null() && !has_example(schema) {
                missing.push(format!("{operation_id} {status}"));
            }
        }
    }
    assert!(missing.is_empty(), "no example: {missing:?}");
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = common::TestApp::start(common::Backend::Sqlite).await;
    let http = reqwest::Client::new();
    for (method, path, operation_id, _, _) in kaquan_web::openapi::operations() {
        let url = app.url(
            &path
                .replace("{batch_id}", "1")
                .replace("{distributor_id}", "1")
                .replace("{staff_id}", "1")
                .replace("{role_id}", "1")
                .replace("{audit_id}", "1")
                .replace("{goods_id}", "1")
                .replace("{image_id}", "1")
                .replace("{order_id}", "1")
                .replace("{template_id}", "1")
                .replace("{product_id}", "1")
                .replace("{customer_id}", "1")
                .replace("{endpoint_id}", "1")
                .replace("{delivery_id}", "1")
                .replace("{program_id}", "1")
                .replace("{location_id}", "1")
                .replace("{verification_id}", "1")
                .replace("{payment_id}", "1")
                .replace("{member_id}", "1")
                .replace("{rule_id}", "1")
                .replace("{id}", "1"),
        );
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let status = http.request(method, url).send().await.unwrap().status();
        assert_ne!(status, 404, "{operation_id} is not routed");
        assert_ne!(status, 405, "{operation_id} is routed with another method");
    }
}

#[tokio::test]
async fn the_reference_page_lists_every_operation_and_schema() {
    let app = common::TestApp::start(common::Backend::Sqlite).await;
    let response = reqwest::get(app.url("/api/reference")).await.unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap().replace("&#x2f;", "/");
    for (_, path, operation_id, _, _) in kaquan_web::openapi::operations() {
        assert!(
            html.contains(&format!("id=\"{operation_id}\"")),
            "{operation_id}"
        );
        assert!(html.contains(path), "{path}");
    }
    let document = kaquan_web::openapi::document();
    for name in document["components"]["schemas"]
        .as_object()
        .unwrap()
        .keys()
    {
        assert!(html.contains(&format!("id=\"schema-{name}\"")), "{name}");
    }
    assert!(html.contains("customer_id"), "fields are listed");
    assert!(
        !html.contains("<script src="),
        "nothing is fetched from elsewhere"
    );
}

/// Every error code an operation documents is explained in the README's
/// table, so an integrator can branch on it knowingly.
#[test]
fn every_documented_error_code_is_explained_in_the_readme() {
    let document = kaquan_web::openapi::document();
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"),
    )
    .unwrap();
    let mut unexplained = std::collections::BTreeSet::new();
    for item in document["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            for code in operation["x-error-codes"].as_array().unwrap() {
                let code = code.as_str().unwrap();
                if !readme.contains(&format!("`{code}`")) {
                    unexplained.insert(code.to_owned());
                }
            }
        }
    }
    assert!(unexplained.is_empty(), "not in the README: {unexplained:?}");
}

/// Answers are gzipped for clients that ask, except what is compressed
/// already (xlsx, zip), and never for clients that do not ask.
#[tokio::test]
async fn answers_are_compressed_only_when_asked_and_worth_it() {
    let app = common::TestApp::start(common::Backend::Sqlite).await;
    let owner = app.client("owner").await;
    let get = |path: &'static str, gzip: bool| {
        let request = owner.http.get(app.url(path));
        let request = if gzip {
            request.header("accept-encoding", "gzip")
        } else {
            request
        };
        async move {
            let response = request.send().await.unwrap();
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            response
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap().to_owned())
        }
    };
    assert_eq!(
        get("/api/v1/openapi.json", true).await.as_deref(),
        Some("gzip")
    );
    assert_eq!(get("/api/reference", true).await.as_deref(), Some("gzip"));
    assert_eq!(get("/api/v1/openapi.json", false).await, None);
    assert_eq!(
        get("/api/v1/batches/import-template?format=xlsx", true).await,
        None,
        "an xlsx is a zip already"
    );
}
