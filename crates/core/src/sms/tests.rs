use super::*;

fn settings() -> SmsSettings {
    SmsSettings {
        merchant_id: 1,
        fields: SmsSettingsFields {
            provider: SmsProvider::Aliyun,
            access_key_id: "LTAI".into(),
            sign_name: "果园".into(),
            notify_customer_on_submit: true,
            template_submit: "SMS_1".into(),
            notify_admin_on_submit: true,
            template_admin: "SMS_2".into(),
            admin_phones: vec!["13900000001".into(), "13900000002".into()],
            notify_customer_on_ship: false,
            template_ship: "SMS_3".into(),
            ..Default::default()
        },
        secret_sealed: Some(vec![1]),
        ..Default::default()
    }
}

fn order_event(event_type: EventType, phone: &str) -> NewEvent {
    NewEvent {
        merchant_id: 1,
        event_type,
        data: serde_json::json!({"order_id": 42, "goods_name": "苹果礼盒", "phone": phone, "consignee": "张三", "appointment_date": "2026-12-08", "carrier": "顺丰速运", "tracking_number": "SF1"}).to_string(),
        created_at: 100,
    }
}

#[test]
fn a_submitted_order_texts_the_customer_and_each_admin_by_the_switches() {
    let planned = messages_for(
        &order_event(EventType::PickupOrderCreated, "13800001234"),
        &settings(),
    );
    let to: Vec<_> = planned
        .iter()
        .map(|m| (m.kind, m.phone.as_str(), m.template.as_str()))
        .collect();
    assert_eq!(
        to,
        [
            (SmsKind::OrderSubmitted, "13800001234", "SMS_1"),
            (SmsKind::OrderSubmittedAdmin, "13900000001", "SMS_2"),
            (SmsKind::OrderSubmittedAdmin, "13900000002", "SMS_2"),
        ]
    );
    assert_eq!(
        planned[0].params,
        r#"{"date":"2026-12-08","goods":"苹果礼盒","order":"42"}"#
    );
    assert_eq!(
        planned[1].params,
        r#"{"consignee":"张三","goods":"苹果礼盒","order":"42"}"#
    );
    assert!(planned
        .iter()
        .all(|m| m.created_at == 100 && m.merchant_id == 1));
    // A landline is not texted; the admins still are.
    let landline = messages_for(
        &order_event(EventType::PickupOrderCreated, "057188880000"),
        &settings(),
    );
    assert_eq!(landline.len(), 2);
    assert!(landline
        .iter()
        .all(|m| m.kind == SmsKind::OrderSubmittedAdmin));
}

#[test]
fn shipping_texts_only_when_switch_c_is_on() {
    let shipped = order_event(EventType::PickupOrderShipped, "13800001234");
    assert!(messages_for(&shipped, &settings()).is_empty());
    let mut on = settings();
    on.fields.notify_customer_on_ship = true;
    let planned = messages_for(&shipped, &on);
    assert_eq!(planned.len(), 1);
    assert_eq!(planned[0].kind, SmsKind::OrderShipped);
    assert_eq!(
        planned[0].params,
        r#"{"carrier":"顺丰速运","number":"SF1","order":"42"}"#
    );
    assert!(messages_for(
        &order_event(EventType::PickupOrderCancelled, "13800001234"),
        &on
    )
    .is_empty());
    assert!(!wants(EventType::PickupOrderCancelled) && !wants(EventType::BalanceChanged));
    assert!(wants(EventType::PickupOrderCreated) && wants(EventType::PickupOrderShipped));
}

#[test]
fn settings_need_a_template_per_switch_a_signature_and_a_key() {
    let ok = settings().fields;
    assert_eq!(check_settings(&ok, true), Ok(()));
    assert!(check_settings(&ok, false)
        .unwrap_err()
        .contains("AccessKey"));
    let mut no_template = ok.clone();
    no_template.template_admin.clear();
    assert!(check_settings(&no_template, true)
        .unwrap_err()
        .contains("B"));
    let mut no_sign = ok.clone();
    no_sign.sign_name = " ".into();
    assert!(check_settings(&no_sign, true).unwrap_err().contains("签名"));
    let mut bad_phone = ok.clone();
    bad_phone.admin_phones.push("123".into());
    assert!(check_settings(&bad_phone, true)
        .unwrap_err()
        .contains("123"));
    let mut tencent = ok.clone();
    tencent.provider = SmsProvider::Tencent;
    assert!(check_settings(&tencent, true)
        .unwrap_err()
        .contains("SdkAppId"));
    let mut off = SmsSettingsFields::default();
    assert_eq!(check_settings(&off, false), Ok(()), "all off needs nothing");
    off.admin_phones = vec!["13900000001".into(); ADMIN_PHONES_MAX + 1];
    assert!(check_settings(&off, false).is_err());
}

#[test]
fn a_failed_text_is_retried_four_times_within_the_hour() {
    let failed = SmsOutcome {
        sent: false,
        provider_code: "isv.BUSINESS_LIMIT_CONTROL".into(),
        provider_message: String::new(),
    };
    let sent = SmsOutcome {
        sent: true,
        ..failed.clone()
    };
    assert_eq!(after_sms_attempt(1, &sent, 0), (SmsState::Sent, None));
    let mut at = 0;
    for attempts in 1..=4 {
        let (state, next) = after_sms_attempt(attempts, &failed, at);
        assert_eq!(state, SmsState::Pending);
        at = next.unwrap();
    }
    assert_eq!(at, 10 + 60 + 300 + 1_800);
    assert_eq!(after_sms_attempt(5, &failed, at), (SmsState::Failed, None));
    assert_eq!(next_sms_attempt_at(0, 0), None);
}

#[test]
fn a_card_sale_texts_the_buyer_only_with_switch_d_and_never_its_passwords() {
    let mut on = settings();
    assert_eq!(sale_message(&on, "13800001234", "M1", 7), None);
    on.fields.notify_buyer_on_sale = true;
    on.fields.template_sale = "SMS_4".into();
    let text = sale_message(&on, "13800001234", "M1", 7).unwrap();
    assert_eq!(
        (text.kind, text.template.as_str(), text.params.as_str()),
        (SmsKind::CardsSold, "SMS_4", r#"{"order":"M1"}"#)
    );
    assert_eq!(sale_message(&on, "0571", "M1", 7), None);
    let cards = [
        crate::card_sale::SoldCardView {
            number: "A1".into(),
            password: "11".into(),
            state: crate::card::CardState::Active,
        },
        crate::card_sale::SoldCardView {
            number: "A2".into(),
            password: "22".into(),
            state: crate::card::CardState::Active,
        },
    ];
    assert_eq!(cards_param(&cards), "卡号A1 密码11；卡号A2 密码22");
    let mut no_template = on.fields.clone();
    no_template.template_sale.clear();
    assert!(check_settings(&no_template, true)
        .unwrap_err()
        .contains("D"));
}

#[test]
fn the_secret_is_sealed_for_its_merchant_only() {
    let master = MasterKey::from_bytes([3; 32]);
    let saved = SmsSettings {
        merchant_id: 4,
        key_version: 1,
        secret_sealed: Some(seal_secret(&master, 4, 1, "ak-secret")),
        ..Default::default()
    };
    assert_eq!(open_secret(&master, &saved).as_deref(), Some("ak-secret"));
    assert_eq!(
        open_secret(
            &master,
            &SmsSettings {
                merchant_id: 5,
                ..saved.clone()
            }
        ),
        None
    );
    assert_eq!(open_secret(&master, &SmsSettings::default()), None);
}

#[test]
fn switches_and_limits_are_exact() {
    let mut s = settings();
    assert!(s.any_on());
    s.fields.notify_customer_on_submit = false;
    s.fields.notify_admin_on_submit = false;
    assert!(!s.any_on());
    let mut f = settings().fields;
    f.sign_name = "签".repeat(32);
    assert_eq!(check_settings(&f, true), Ok(()));
    f.sign_name = "签".repeat(33);
    assert!(check_settings(&f, true).is_err());
    f.sign_name = "果\u{7}园".into();
    assert!(check_settings(&f, true).is_err());
    let mut phones = settings().fields;
    phones.admin_phones = vec!["13900000001".into(); ADMIN_PHONES_MAX];
    assert_eq!(check_settings(&phones, true), Ok(()));
    assert_eq!(
        SmsKind::OrderSubmitted.variables(),
        ["order", "goods", "date"]
    );
    assert_eq!(
        SmsKind::OrderSubmittedAdmin.variables(),
        ["order", "goods", "consignee"]
    );
    assert_eq!(
        SmsKind::OrderShipped.variables(),
        ["order", "carrier", "number"]
    );
    assert_eq!(SmsKind::CardsSold.variables(), ["order", "cards"]);
    // A shipped order of a landline customer texts nobody.
    let mut on = settings();
    on.fields.notify_customer_on_ship = true;
    assert!(messages_for(
        &order_event(EventType::PickupOrderShipped, "057188880000"),
        &on
    )
    .is_empty());
    let labels: std::collections::HashSet<_> = SmsKind::ALL
        .iter()
        .map(|k| k.label())
        .chain(SmsProvider::ALL.iter().map(|p| p.label()))
        .chain(
            [SmsState::Pending, SmsState::Sent, SmsState::Failed]
                .iter()
                .map(|s| s.label()),
        )
        .collect();
    assert_eq!(labels.len(), 15);
    assert!(labels.iter().all(|l| !l.is_empty() && !l.contains("xyzzy")));
}

#[test]
fn codes_round_trip() {
    for p in SmsProvider::ALL {
        assert_eq!(SmsProvider::parse(p.code()), Some(p));
    }
    for k in SmsKind::ALL {
        assert_eq!(SmsKind::parse(k.code()), Some(k));
        assert!(!k.variables().is_empty());
    }
    for s in [SmsState::Pending, SmsState::Sent, SmsState::Failed] {
        assert_eq!(SmsState::parse(s.code()), Some(s));
    }
}

const EMPTY_HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn aliyun_matches_the_published_v3_example() {
    let request = SignedRequest {
        method: "POST",
        path: "/",
        query: &[
            ("RegionId", "cn-shanghai"),
            (
                "ImageId",
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            ),
        ],
        headers: &[
            ("host", "ecs.cn-shanghai.aliyuncs.com"),
            ("x-acs-action", "RunInstances"),
            ("x-acs-version", "2014-05-26"),
            ("x-acs-date", "2023-10-26T10:22:32Z"),
            ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
            ("x-acs-content-sha256", EMPTY_HASH),
        ],
        payload_hash: EMPTY_HASH,
    };
    assert_eq!(
        aliyun_authorization(&request, "YourAccessKeyId", "YourAccessKeySecret"),
        "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    );
}

#[test]
fn aliyun_merges_repeated_headers_as_the_sdk_test_does() {
    let request = SignedRequest {
        method: "GET",
        path: "/",
        query: &[("test", "ok"), ("empty", "")],
        headers: &[("x-acs-test", "http"), ("x-acs-TEST", "https")],
        payload_hash: "55e12e91650d2fec56ec74e1d3e4ddbfce2ef3a65890c2a19ecf88a307e76a23",
    };
    assert_eq!(
        aliyun_authorization(&request, "acesskey", "secret"),
        "ACS3-HMAC-SHA256 Credential=acesskey,SignedHeaders=x-acs-test,Signature=d16b30a7699ae9e43875b13195b2f81bcc3ed10c14a9b5eb780e51619aa50be1"
    );
}

#[test]
fn percent_encoding_keeps_only_unreserved_characters() {
    assert_eq!(percent_encode("a/b/c/ test"), "a%2Fb%2Fc%2F%20test");
    assert_eq!(percent_encode("A-z_0.9~*"), "A-z_0.9~%2A");
    assert_eq!(percent_encode("阿"), "%E9%98%BF");
}

const TENCENT_PAYLOAD: &str =
    r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;

#[test]
fn tencent_matches_the_published_example() {
    assert_eq!(
        sha256_hex(TENCENT_PAYLOAD.as_bytes()),
        "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    );
    let headers = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Host", "cvm.tencentcloudapi.com"),
    ];
    assert_eq!(
        tencent_authorization("cvm", &headers, TENCENT_PAYLOAD.as_bytes(), 1551113065, "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"),
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    );
}

#[test]
fn tencent_signs_the_action_header_when_given() {
    let headers = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Host", "cvm.tencentcloudapi.com"),
        ("X-TC-Action", "DescribeInstances"),
    ];
    let authorization = tencent_authorization(
        "cvm",
        &headers,
        TENCENT_PAYLOAD.as_bytes(),
        1551113065,
        "id",
        "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
    );
    assert!(
        authorization.ends_with("SignedHeaders=content-type;host;x-tc-action, Signature=644be983de9a8a3f00db8eadaba61467c3b429e2215758ba897b738ca469fd26"),
        "{authorization}"
    );
}

#[test]
fn the_tencent_date_is_the_utc_date() {
    // 2019-02-25 23:30 UTC is already the 26th in Beijing: the scope says the 25th.
    let authorization = tencent_authorization(
        "sms",
        &[("Host", "sms.tencentcloudapi.com")],
        b"{}",
        1551137400,
        "id",
        "key",
    );
    assert!(
        authorization.contains("id/2019-02-25/sms/tc3_request"),
        "{authorization}"
    );
}

fn member_settings() -> SmsSettings {
    let mut s = settings();
    s.fields.notify_member_on_change = true;
    s.fields.template_member_change = "SMS_5".into();
    s.fields.notify_customer_on_invite = true;
    s.fields.template_invite = "SMS_6".into();
    s.fields.notify_member_on_expiry = true;
    s.fields.template_points_expiring = "SMS_7".into();
    s
}

fn event(event_type: EventType, data: serde_json::Value) -> NewEvent {
    NewEvent {
        merchant_id: 1,
        event_type,
        data: data.to_string(),
        created_at: 100,
    }
}

#[test]
fn a_member_change_is_one_text_with_both_assets_when_switch_e_is_on() {
    let changed = event(
        EventType::MemberChanged,
        serde_json::json!({"member_number": "VIP00042", "phone": "13800001234", "points_delta": 12,
            "points": 112, "balance_delta_fen": -2500, "balance_fen": 7500}),
    );
    assert!(messages_for(&changed, &settings()).is_empty());
    let planned = messages_for(&changed, &member_settings());
    assert_eq!(planned.len(), 1);
    assert_eq!(
        (
            planned[0].kind,
            planned[0].phone.as_str(),
            planned[0].template.as_str()
        ),
        (SmsKind::MemberChanged, "13800001234", "SMS_5")
    );
    assert_eq!(
        planned[0].params,
        r#"{"balance":"75.00","balance_change":"-25.00","number":"VIP00042","points":"112","points_change":"+12"}"#
    );
    let earned_only = event(
        EventType::MemberChanged,
        serde_json::json!({"member_number": "1", "phone": "13800001234", "points_delta": -3,
            "points": 0, "balance_delta_fen": 0, "balance_fen": 100}),
    );
    let params: serde_json::Value =
        serde_json::from_str(&messages_for(&earned_only, &member_settings())[0].params).unwrap();
    assert_eq!(
        (&params["points_change"], &params["balance_change"]),
        (&serde_json::json!("-3"), &serde_json::json!("+0.00"))
    );
    // A member without a mobile number gets no text.
    let landline = event(
        EventType::MemberChanged,
        serde_json::json!({"phone": "057188880000", "points_delta": 1}),
    );
    assert!(messages_for(&landline, &member_settings()).is_empty());
    assert!(wants(EventType::MemberChanged) && !wants(EventType::MemberActivated));
}

#[test]
fn an_invitation_and_an_expiry_notice_text_by_switches_f_and_g() {
    let invited = event(
        EventType::MemberInvited,
        serde_json::json!({"phone": "13800001234", "open_url": "https://shop.example/m/1/members/t"}),
    );
    let planned = messages_for(&invited, &member_settings());
    assert_eq!(
        (planned[0].kind, planned[0].params.as_str()),
        (
            SmsKind::MemberInvited,
            r#"{"link":"https://shop.example/m/1/members/t"}"#
        )
    );
    let expiring = event(
        EventType::MemberPointsExpiring,
        serde_json::json!({"member_number": "VIP7", "phone": "13800001234", "points": 30, "expires_by": "2026-12-31"}),
    );
    let planned = messages_for(&expiring, &member_settings());
    assert_eq!(
        (planned[0].kind, planned[0].params.as_str()),
        (
            SmsKind::PointsExpiring,
            r#"{"date":"2026-12-31","number":"VIP7","points":"30"}"#
        )
    );
    // Only a mobile number is texted.
    for (event_type, data) in [
        (
            EventType::MemberInvited,
            serde_json::json!({"phone": "057188880000", "open_url": "https://shop.example/m"}),
        ),
        (
            EventType::MemberPointsExpiring,
            serde_json::json!({"phone": "", "points": 30, "expires_by": "2026-12-31"}),
        ),
    ] {
        assert!(messages_for(&event(event_type, data), &member_settings()).is_empty());
    }
    let mut off = member_settings();
    off.fields.notify_customer_on_invite = false;
    off.fields.notify_member_on_expiry = false;
    assert!(messages_for(&invited, &off).is_empty() && messages_for(&expiring, &off).is_empty());
    // A switch that is on needs its template.
    let mut no_template = member_settings().fields;
    no_template.template_points_expiring.clear();
    assert!(check_settings(&no_template, true)
        .unwrap_err()
        .contains('G'));
}

#[test]
fn e_card_texts_name_the_order_and_never_carry_the_link() {
    let mut on = settings();
    on.fields.notify_buyer_on_ecard = true;
    on.fields.template_ecard = "SMS_H".into();
    on.fields.notify_buyer_on_ecard_expiry = true;
    on.fields.template_ecard_expiring = "SMS_I".into();
    let event = |event_type, phone: &str| {
        NewEvent {
        merchant_id: 1,
        event_type,
        data: serde_json::json!({"order_ref": 7, "order_id": "PDD-1", "phone": phone, "valid_until": 1_800_000_000}).to_string(),
        created_at: 1,
    }
    };
    let delivered = messages_for(&event(EventType::EcardDelivered, "13800138000"), &on);
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].kind, SmsKind::EcardDelivered);
    let params: serde_json::Value = serde_json::from_str(&delivered[0].params).unwrap();
    assert_eq!(
        params,
        serde_json::json!({"order": "PDD-1", "order_ref": 7})
    );
    let expiring = messages_for(&event(EventType::EcardExpiring, "13800138000"), &on);
    let params: serde_json::Value = serde_json::from_str(&expiring[0].params).unwrap();
    assert_eq!(params["date"], "2027-01-15");
    assert_eq!(expiring[0].template, "SMS_I");
    assert!(
        messages_for(&event(EventType::EcardDelivered, ""), &on).is_empty(),
        "no phone, no text"
    );
    assert!(
        messages_for(
            &event(EventType::EcardDelivered, "13800138000"),
            &settings()
        )
        .is_empty(),
        "switch off"
    );
    assert!(wants(EventType::EcardDelivered) && wants(EventType::EcardExpiring));
    assert!(!wants(EventType::EcardVerified));
    assert_eq!(SmsKind::EcardDelivered.variables(), ["order", "link"]);
    assert_eq!(
        SmsKind::EcardExpiring.variables(),
        ["order", "date", "link"]
    );
}

#[test]
fn low_stock_texts_every_admin_phone() {
    let mut on = settings();
    on.fields.notify_admin_on_low_stock = true;
    on.fields.template_low_stock = "SMS_J".into();
    on.fields.admin_phones = vec!["13900000001".into(), "13900000002".into()];
    let event = NewEvent {
        merchant_id: 1,
        event_type: EventType::EcardLowStock,
        data: serde_json::json!({"product_id": 3, "name": "视频会员月卡", "available": 5, "threshold": 5}).to_string(),
        created_at: 1,
    };
    let texts = messages_for(&event, &on);
    assert_eq!(
        texts.iter().map(|t| t.phone.as_str()).collect::<Vec<_>>(),
        ["13900000001", "13900000002"]
    );
    let params: serde_json::Value = serde_json::from_str(&texts[0].params).unwrap();
    assert_eq!(
        params,
        serde_json::json!({"goods": "视频会员月卡", "number": "5"})
    );
    let mut no_phones = on.clone();
    no_phones.fields.admin_phones.clear();
    no_phones.fields.notify_admin_on_submit = false;
    assert!(check_settings(&no_phones.fields, true)
        .unwrap_err()
        .contains("J"));
}

#[test]
fn only_what_signs_in_to_the_provider_is_a_credential_change() {
    let saved = settings();
    let same = saved.fields.clone();
    assert!(!same.changes_credentials(Some(&saved)));
    assert!(same.changes_credentials(None));
    let templates_only = SmsSettingsFields {
        template_submit: "SMS_9".into(),
        sign_name: "新签名".into(),
        notify_customer_on_ship: true,
        admin_phones: vec![],
        ..same.clone()
    };
    assert!(!templates_only.changes_credentials(Some(&saved)));
    let changes: [fn(&mut SmsSettingsFields); 5] = [
        |f| f.access_key_secret = "new".into(),
        |f| f.provider = SmsProvider::Tencent,
        |f| f.access_key_id = "LTAI2".into(),
        |f| f.sdk_app_id = "1400".into(),
        |f| f.region = "ap-beijing".into(),
    ];
    for (i, change) in changes.iter().enumerate() {
        let mut fields = same.clone();
        change(&mut fields);
        assert!(fields.changes_credentials(Some(&saved)), "change {i}");
    }
}
