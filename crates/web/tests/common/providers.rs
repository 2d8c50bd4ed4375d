//! Test doubles of the SMS providers, real HTTP servers on 127.0.0.1 that
//! do what Aliyun's and Tencent Cloud's `SendSms` document: each recomputes
//! the request's signature from the raw request (ACS3-HMAC-SHA256, resp.
//! TC3-HMAC-SHA256; written here from the providers' documentation, apart
//! from kaquan's signer), refuses a wrong one as the provider answers it,
//! checks the signature name, template and app, and keeps what it sent.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use hmac::Mac;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};

/// A double's answer: status and JSON body.
type Reply = (StatusCode, axum::Json<Value>);

/// The credentials and approvals both doubles know.
pub const ACCESS_KEY_ID: &str = "LTAI5tDoubleKey";
pub const ACCESS_KEY_SECRET: &str = "double-secret-0123456789";
pub const SIGN_NAME: &str = "果园";
pub const SDK_APP_ID: &str = "1400006666";
/// Templates the doubles have approved (Aliyun's, then Tencent's).
pub const TEMPLATES: [&str; 9] = [
    "SMS_1001", "SMS_1002", "SMS_1003", "SMS_1005", "SMS_1006", "SMS_1008", "1001", "1002", "1003",
];

/// The 旺店通 account the double knows.
pub const WDT_SID: &str = "kaquan";
pub const WDT_APPKEY: &str = "kaquan2-ot";
pub const WDT_SECRET: &str = "wdt-double-secret";

/// The e-waybill accounts the carriers' doubles know.
pub const SF_PARTNER_ID: &str = "KQ_SF_DOUBLE";
pub const SF_CHECK_WORD: &str = "fjcg5PGKaNpPSHFAZ4QsCOkV71R3zVci";
pub const KUAIDI100_KEY: &str = "kd100-double-key";
pub const KUAIDI100_SECRET: &str = "kd100-double-secret";

/// What the carriers' doubles made: waybill numbers by the order id they
/// were given, and how many create calls they answered.
#[derive(Default)]
pub struct Waybills {
    pub by_order: std::collections::BTreeMap<String, String>,
    pub create_calls: usize,
    /// The next create makes its waybill but the answer is lost (a 502).
    pub lose_next_answer: bool,
}

/// A text a double accepted: provider, phone, template, parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub provider: &'static str,
    pub phone: String,
    pub template: String,
    pub params: Value,
}

#[derive(Clone, Default)]
pub struct Providers {
    pub sent: Arc<Mutex<Vec<Sent>>>,
    /// The trades 旺店通's double accepted, in order.
    pub trades: Arc<Mutex<Vec<Value>>>,
    /// The waybills the carriers' doubles made.
    pub waybills: Arc<Mutex<Waybills>>,
    /// Requests refused for their signature.
    pub bad_signatures: Arc<Mutex<usize>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .collect::<Vec<_>>()
        .join(",")
}

/// `percent-decode` of a query component.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 3986 encoding as Aliyun's servers canonicalise a query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Providers {
    /// Starts the doubles; the SMS endpoints, 旺店通's `trade_push.php` and
    /// the carriers' e-waybill gateways.
    pub async fn start() -> (
        Self,
        kaquan_web::sms::SmsEndpoints,
        String,
        kaquan_web::waybills::WaybillEndpoints,
    ) {
        let providers = Self::default();
        let aliyun = {
            let p = providers.clone();
            axum::Router::new().fallback(
                move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                    let p = p.clone();
                    async move { p.aliyun(&method, &uri, &headers, &body) }
                },
            )
        };
        let tencent = {
            let p = providers.clone();
            axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
                let p = p.clone();
                async move { p.tencent(&headers, &body) }
            })
        };
        let wdt = {
            let p = providers.clone();
            axum::Router::new().fallback(move |body: Bytes| {
                let p = p.clone();
                async move { p.wdt(&body) }
            })
        };
        let sf = {
            let p = providers.clone();
            axum::Router::new().fallback(move |body: Bytes| {
                let p = p.clone();
                async move { p.sf(&body) }
            })
        };
        let kuaidi100 = {
            let p = providers.clone();
            axum::Router::new().fallback(move |body: Bytes| {
                let p = p.clone();
                async move { p.kuaidi100(&body) }
            })
        };
        let mut urls = Vec::new();
        for app in [aliyun, tencent, wdt, sf, kuaidi100] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            urls.push(format!("http://{}", listener.local_addr().unwrap()));
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
        let endpoints = kaquan_web::sms::SmsEndpoints {
            aliyun: urls[0].clone(),
            tencent: urls[1].clone(),
        };
        let wdt = format!("{}/openapi2/trade_push.php", urls[2]);
        let waybills = kaquan_web::waybills::WaybillEndpoints {
            sf: format!("{}/std/service", urls[3]),
            kuaidi100: format!("{}/label/order", urls[4]),
        };
        (providers, endpoints, wdt, waybills)
    }

    pub fn trades(&self) -> Vec<Value> {
        self.trades.lock().unwrap().clone()
    }

    /// 旺店通 企业版 `trade_push.php`: the sign recomputed from the form as
    /// openapi2 defines it (`NN-key:LLLL-value` joined by `;`, lengths in
    /// characters, appsecret appended, MD5). The error code of a bad sign
    /// is not documented where we could read it; the double answers a
    /// non-zero `code` with a message, as every 旺店通 error does.
    fn wdt(&self, body: &[u8]) -> axum::Json<Value> {
        let form: Vec<(String, String)> = String::from_utf8_lossy(body)
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        let get = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let mut signed: Vec<&(String, String)> = form.iter().filter(|(k, _)| k != "sign").collect();
        signed.sort();
        let packed = signed
            .iter()
            .map(|(k, v)| format!("{:02}-{k}:{:04}-{v}", k.chars().count(), v.chars().count()))
            .collect::<Vec<_>>()
            .join(";");
        let expected = hex(&md5::Md5::digest(
            format!("{packed}{WDT_SECRET}").as_bytes(),
        ));
        if get("sid") != WDT_SID || get("appkey") != WDT_APPKEY {
            return axum::Json(json!({"code": 1, "message": "卖家账号或appkey不存在"}));
        }
        if expected != get("sign") {
            *self.bad_signatures.lock().unwrap() += 1;
            return axum::Json(json!({"code": 1, "message": "签名错误"}));
        }
        let timestamp: i64 = get("timestamp").parse().unwrap_or(0);
        if (timestamp - kaquan_web::now()).abs() > 300 {
            return axum::Json(json!({"code": 1, "message": "时间戳过期"}));
        }
        let trades: Vec<Value> = serde_json::from_str(&get("trade_list")).unwrap_or_default();
        let mut kept = self.trades.lock().unwrap();
        let (mut new, mut changed) = (0, 0);
        for trade in trades {
            if kept.iter().any(|t| t["tid"] == trade["tid"]) {
                changed += 1;
            } else {
                new += 1;
            }
            kept.push(trade);
        }
        axum::Json(json!({"code": 0, "message": "", "new_count": new, "chg_count": changed}))
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    /// Checks an Aliyun request's ACS3-HMAC-SHA256 signature; its decoded query.
    fn aliyun_signed(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<(String, String)>, Reply> {
        let refuse = |status: StatusCode, code: &str, message: &str| {
            Err((
                status,
                axum::Json(json!({"RequestId": "D0UBLE", "Code": code, "Message": message})),
            ))
        };
        let authorization = header(headers, "authorization");
        let Some(rest) = authorization.strip_prefix("ACS3-HMAC-SHA256 ") else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "MissingAuthorization",
                "Authorization is mandatory for this action.",
            );
        };
        let part = |name: &str| {
            rest.split(',')
                .find_map(|p| p.trim().strip_prefix(name).map(str::to_owned))
                .unwrap_or_default()
        };
        let (credential, signed_headers, signature) = (
            part("Credential="),
            part("SignedHeaders="),
            part("Signature="),
        );
        if credential != ACCESS_KEY_ID {
            return refuse(
                StatusCode::NOT_FOUND,
                "InvalidAccessKeyId.NotFound",
                "Specified access key is not found.",
            );
        }
        let payload_hash = header(headers, "x-acs-content-sha256");
        if payload_hash != sha256(body) {
            return refuse(
                StatusCode::BAD_REQUEST,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation.",
            );
        }
        let mut query: Vec<(String, String)> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        query.sort();
        let canonical_query = query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let canonical_headers: String = signed_headers
            .split(';')
            .map(|name| format!("{name}:{}\n", header(headers, name)))
            .collect();
        let canonical = format!(
            "{method}\n{}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
            uri.path()
        );
        let to_sign = format!("ACS3-HMAC-SHA256\n{}", sha256(canonical.as_bytes()));
        let expected = hex(&hmac(ACCESS_KEY_SECRET.as_bytes(), to_sign.as_bytes()));
        // Every common header present must be signed.
        let unsigned = [
            "host",
            "x-acs-action",
            "x-acs-version",
            "x-acs-date",
            "x-acs-signature-nonce",
        ]
        .iter()
        .any(|h| !signed_headers.split(';').any(|s| s == *h));
        if expected != signature || unsigned {
            *self.bad_signatures.lock().unwrap() += 1;
            return refuse(
                StatusCode::BAD_REQUEST,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation.",
            );
        }
        Ok(query)
    }

    /// Dysmsapi `SendSms` with an ACS3-HMAC-SHA256 signature.
    fn aliyun(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (StatusCode, axum::Json<Value>) {
        let refuse = |status: StatusCode, code: &str, message: &str| {
            (
                status,
                axum::Json(json!({"RequestId": "D0UBLE", "Code": code, "Message": message})),
            )
        };
        let query = match self.aliyun_signed(method, uri, headers, body) {
            Ok(query) => query,
            Err(reply) => return reply,
        };
        if header(headers, "x-acs-action") != "SendSms"
            || header(headers, "x-acs-version") != "2017-05-25"
        {
            return refuse(
                StatusCode::BAD_REQUEST,
                "InvalidAction.NotFound",
                "Specified api is not found.",
            );
        }
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        if param("SignName") != SIGN_NAME {
            return refuse(
                StatusCode::OK,
                "isv.SMS_SIGNATURE_ILLEGAL",
                "该账号下找不到对应签名",
            );
        }
        if !TEMPLATES.contains(&param("TemplateCode").as_str()) {
            return refuse(
                StatusCode::OK,
                "isv.SMS_TEMPLATE_ILLEGAL",
                "该账号下找不到对应模板",
            );
        }
        self.sent.lock().unwrap().push(Sent {
            provider: "aliyun",
            phone: param("PhoneNumbers"),
            template: param("TemplateCode"),
            params: serde_json::from_str(&param("TemplateParam")).unwrap_or(Value::Null),
        });
        (
            StatusCode::OK,
            axum::Json(
                json!({"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "D0UBLE"}),
            ),
        )
    }

    /// Checks a Tencent request's TC3-HMAC-SHA256 signature.
    fn tencent_signed(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Reply> {
        let error = |code: &str, message: &str| {
            Err((
                StatusCode::OK,
                axum::Json(
                    json!({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": "d0uble"}}),
                ),
            ))
        };
        let authorization = header(headers, "authorization");
        let Some(rest) = authorization.strip_prefix("TC3-HMAC-SHA256 ") else {
            return error(
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated.",
            );
        };
        let part = |name: &str| {
            rest.split(", ")
                .find_map(|p| p.strip_prefix(name).map(str::to_owned))
                .unwrap_or_default()
        };
        let (credential, signed_headers, signature) = (
            part("Credential="),
            part("SignedHeaders="),
            part("Signature="),
        );
        let scope: Vec<&str> = credential.split('/').collect();
        if scope.len() != 4 || scope[0] != ACCESS_KEY_ID {
            return error("AuthFailure.SecretIdNotFound", "The SecretId is not found.");
        }
        let timestamp: i64 = header(headers, "x-tc-timestamp").parse().unwrap_or(0);
        if (timestamp - kaquan_web::now()).abs() > 300 {
            return error("AuthFailure.SignatureExpire", "Signature expired.");
        }
        let date = time::OffsetDateTime::from_unix_timestamp(timestamp)
            .unwrap()
            .date();
        let date = format!(
            "{:04}-{:02}-{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        );
        let canonical_headers: String = signed_headers
            .split(';')
            .map(|name| format!("{name}:{}\n", header(headers, name).to_ascii_lowercase()))
            .collect();
        let canonical = format!(
            "POST\n/\n\n{canonical_headers}\n{signed_headers}\n{}",
            sha256(body)
        );
        let to_sign = format!(
            "TC3-HMAC-SHA256\n{timestamp}\n{date}/sms/tc3_request\n{}",
            sha256(canonical.as_bytes())
        );
        let k_date = hmac(
            format!("TC3{ACCESS_KEY_SECRET}").as_bytes(),
            date.as_bytes(),
        );
        let k_service = hmac(&k_date, b"sms");
        let k_signing = hmac(&k_service, b"tc3_request");
        let expected = hex(&hmac(&k_signing, to_sign.as_bytes()));
        if expected != signature || scope[1] != date || !signed_headers.contains("host") {
            *self.bad_signatures.lock().unwrap() += 1;
            return error("AuthFailure.SignatureFailure", "The provided credentials could not be validated. Please check your signature is correct.");
        }
        Ok(())
    }

    /// `SendSms` 2021-01-11 with a TC3-HMAC-SHA256 signature.
    fn tencent(&self, headers: &HeaderMap, body: &[u8]) -> (StatusCode, axum::Json<Value>) {
        let error = |code: &str, message: &str| {
            (
                StatusCode::OK,
                axum::Json(
                    json!({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": "d0uble"}}),
                ),
            )
        };
        if let Err(reply) = self.tencent_signed(headers, body) {
            return reply;
        }
        if header(headers, "x-tc-action") != "SendSms"
            || header(headers, "x-tc-version") != "2021-01-11"
        {
            return error("InvalidAction", "The action does not exist.");
        }
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        if request["SmsSdkAppId"] != SDK_APP_ID {
            return error(
                "FailedOperation.SmsSdkAppIdVerifyFail",
                "SmsSdkAppId 校验失败",
            );
        }
        if request["SignName"] != SIGN_NAME {
            return error(
                "FailedOperation.SignatureIncorrectOrUnapproved",
                "签名未审批或格式错误",
            );
        }
        let template = request["TemplateId"].as_str().unwrap_or("").to_owned();
        if !TEMPLATES.contains(&template.as_str()) {
            return error(
                "FailedOperation.TemplateIncorrectOrUnapproved",
                "模板未审批或内容不匹配",
            );
        }
        let phone = request["PhoneNumberSet"][0]
            .as_str()
            .unwrap_or("")
            .to_owned();
        self.sent.lock().unwrap().push(Sent {
            provider: "tencent",
            phone: phone.trim_start_matches("+86").to_owned(),
            template,
            params: request["TemplateParamSet"].clone(),
        });
        (
            StatusCode::OK,
            axum::Json(
                json!({"Response": {"SendStatusSet": [{"SerialNo": "5000:1045710669157053657849499619", "PhoneNumber": phone, "Fee": 1, "SessionContext": "", "Code": "Ok", "Message": "send success", "IsoCode": "CN"}], "RequestId": "d0uble"}}),
            ),
        )
    }

    /// SF's `/std/service`: `msgDigest` recomputed as 标准MD5 (Java
    /// URL-encoding of `msgData + timestamp + checkWord`, MD5, base64);
    /// `EXP_RECE_CREATE_ORDER` makes one waybill per `orderId` and answers a
    /// repeated one with `8016 重复下单`, as SF documents;
    /// `EXP_RECE_SEARCH_ORDER_RESP` finds it. The codes for a bad digest and
    /// an incomplete address are the double's own (not found in SF's docs).
    fn sf(&self, body: &[u8]) -> (StatusCode, axum::Json<Value>) {
        let form = form_pairs(body);
        let get = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let outer = |code: &str, message: &str, data: Option<Value>| {
            (
                StatusCode::OK,
                axum::Json(
                    json!({"apiErrorMsg": message, "apiResponseID": "D0UBLE", "apiResultCode": code,
                    "apiResultData": data.map(|d| d.to_string())}),
                ),
            )
        };
        let to_verify = format!("{}{}{SF_CHECK_WORD}", get("msgData"), get("timestamp"));
        let encoded: String = to_verify
            .bytes()
            .map(|b| match b {
                b' ' => "+".to_owned(),
                b if b.is_ascii_alphanumeric() || b".-*_".contains(&b) => (b as char).to_string(),
                b => format!("%{b:02X}"),
            })
            .collect();
        use base64::Engine;
        let digest =
            base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(encoded.as_bytes()));
        if get("partnerID") != SF_PARTNER_ID || digest != get("msgDigest") {
            *self.bad_signatures.lock().unwrap() += 1;
            return outer("A1006", "数字签名无效", None);
        }
        let msg: Value = serde_json::from_str(&get("msgData")).unwrap_or(Value::Null);
        let order_id = msg["orderId"].as_str().unwrap_or("").to_owned();
        let mut waybills = self.waybills.lock().unwrap();
        let found = |no: &String| {
            json!({"success": true, "errorCode": "S0000", "errorMsg": null,
            "msgData": {"orderId": order_id, "waybillNoInfoList": [{"waybillType": 1, "waybillNo": no}]}})
        };
        match get("serviceCode").as_str() {
            "EXP_RECE_CREATE_ORDER" => {
                waybills.create_calls += 1;
                let complete = msg["contactInfoList"].as_array().is_some_and(|list| {
                    list.len() == 2
                        && list.iter().all(|c| {
                            ["province", "city", "county", "address"]
                                .iter()
                                .all(|f| c[*f].as_str().is_some_and(|v| !v.is_empty()))
                        })
                });
                if !complete || msg["monthlyCard"].as_str().unwrap_or("").is_empty() {
                    return outer(
                        "A1000",
                        "",
                        Some(
                            json!({"success": false, "errorCode": "1010", "errorMsg": "寄件或收件地址不完整"}),
                        ),
                    );
                }
                if waybills.by_order.contains_key(&order_id) {
                    return outer(
                        "A1000",
                        "",
                        Some(
                            json!({"success": false, "errorCode": "8016", "errorMsg": "重复下单"}),
                        ),
                    );
                }
                let no = format!(
                    "SF{:013}",
                    7_444_407_670_710u64 + waybills.by_order.len() as u64
                );
                waybills.by_order.insert(order_id.clone(), no.clone());
                if std::mem::take(&mut waybills.lose_next_answer) {
                    return (StatusCode::BAD_GATEWAY, axum::Json(Value::Null));
                }
                outer("A1000", "", Some(found(&no)))
            }
            "EXP_RECE_SEARCH_ORDER_RESP" => match waybills.by_order.get(&order_id) {
                Some(no) => outer("A1000", "", Some(found(no))),
                None => outer(
                    "A1000",
                    "",
                    Some(
                        json!({"success": false, "errorCode": "8018", "errorMsg": "未获取到订单信息"}),
                    ),
                ),
            },
            _ => outer("A1004", "无对应服务权限", None),
        }
    }

    /// 快递100 `label/order`: `sign` recomputed as upper(MD5(param + t +
    /// key + secret)); the same `orderId` with `reorder=false` answers the
    /// first waybill, as 快递100 documents. The code for a bad sign is the
    /// double's own.
    fn kuaidi100(&self, body: &[u8]) -> axum::Json<Value> {
        let form = form_pairs(body);
        let get = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let expected = hex(&md5::Md5::digest(
            format!(
                "{}{}{}{KUAIDI100_SECRET}",
                get("param"),
                get("t"),
                get("key")
            )
            .as_bytes(),
        ))
        .to_ascii_uppercase();
        if get("key") != KUAIDI100_KEY || expected != get("sign") {
            *self.bad_signatures.lock().unwrap() += 1;
            return axum::Json(json!({"code": 30002, "message": "验证签名失败", "data": null}));
        }
        let param: Value = serde_json::from_str(&get("param")).unwrap_or(Value::Null);
        if get("method") != "order" || param["kuaidicom"].as_str().unwrap_or("").is_empty() {
            return axum::Json(json!({"code": 30001, "message": "参数错误", "data": null}));
        }
        let order_id = param["orderId"].as_str().unwrap_or("").to_owned();
        let mut waybills = self.waybills.lock().unwrap();
        waybills.create_calls += 1;
        let next = 73_100_000_000_000u64 + waybills.by_order.len() as u64;
        let no = waybills
            .by_order
            .entry(order_id)
            .or_insert_with(|| format!("ZT{next}"))
            .clone();
        axum::Json(
            json!({"code": 200, "message": "success", "time": 0, "data": {"kuaidinum": no, "taskId": "D0UBLE"}}),
        )
    }
}

/// A form body's pairs, percent-decoded.
fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}
