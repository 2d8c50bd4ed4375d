//! Staff (管理员), roles and permissions, admin password hashing and login
//! back-off.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

/// What a role may do. Each is one checkbox on the role page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    CardsView,
    CardsCreate,
    CardsManage,
    CardsExport,
    CardsExportSecrets,
    DistributorsManage,
    StaffManage,
    AuditView,
    GoodsManage,
    OrdersManage,
    PickupAssist,
    PersonalDataView,
    GiftcardsManage,
    BalancesView,
    BalancesAdjust,
    ApiKeysManage,
    CouponsManage,
    CouponsVerify,
    MembersManage,
    MembersView,
    EcardsManage,
    EcardsReveal,
    ApprovalsDecide,
}

impl Permission {
    pub const ALL: [Permission; 23] = [
        Self::CardsView,
        Self::CardsCreate,
        Self::CardsManage,
        Self::CardsExport,
        Self::CardsExportSecrets,
        Self::DistributorsManage,
        Self::StaffManage,
        Self::AuditView,
        Self::GoodsManage,
        Self::OrdersManage,
        Self::PickupAssist,
        Self::PersonalDataView,
        Self::GiftcardsManage,
        Self::BalancesView,
        Self::BalancesAdjust,
        Self::ApiKeysManage,
        Self::CouponsManage,
        Self::CouponsVerify,
        Self::MembersManage,
        Self::MembersView,
        Self::EcardsManage,
        Self::EcardsReveal,
        Self::ApprovalsDecide,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::CardsView => "cards.view",
            Self::CardsCreate => "cards.create",
            Self::CardsManage => "cards.manage",
            Self::CardsExport => "cards.export",
            Self::CardsExportSecrets => "cards.export_secrets",
            Self::DistributorsManage => "distributors.manage",
            Self::StaffManage => "staff.manage",
            Self::AuditView => "audit.view",
            Self::GoodsManage => "goods.manage",
            Self::OrdersManage => "orders.manage",
            Self::PickupAssist => "pickup.assist",
            Self::PersonalDataView => "personal_data.view",
            Self::GiftcardsManage => "giftcards.manage",
            Self::BalancesView => "balances.view",
            Self::BalancesAdjust => "balances.adjust",
            Self::ApiKeysManage => "api_keys.manage",
            Self::CouponsManage => "coupons.manage",
            Self::CouponsVerify => "coupons.verify",
            Self::MembersManage => "members.manage",
            Self::MembersView => "members.view",
            Self::EcardsManage => "ecards.manage",
            Self::EcardsReveal => "ecards.reveal",
            Self::ApprovalsDecide => "approvals.decide",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Self::CardsView => "查看卡券列表",
            Self::CardsCreate => "创建/导入卡券",
            Self::CardsManage => "激活/反激活、修改卡属性、作废、恢复、删除",
            Self::CardsExport => "卡券导出（不含密码）",
            Self::CardsExportSecrets => "导出卡密码",
            Self::DistributorsManage => "券商管理",
            Self::StaffManage => "管理员与角色管理",
            Self::AuditView => "查看操作日志",
            Self::GoodsManage => "提货商品管理",
            Self::OrdersManage => "订单列表、发货、取消订单、提货设置",
            Self::PickupAssist => "到店提货、电话提货",
            Self::PersonalDataView => "查看收货人姓名、电话和地址（否则打码显示）",
            Self::GiftcardsManage => "礼品卡设置、线上/线下兑换码、礼品卡商品",
            Self::BalancesView => "查看顾客余额与余额明细",
            Self::BalancesAdjust => "调整顾客余额",
            Self::ApiKeysManage => "开放接口密钥管理",
            Self::CouponsManage => "优惠券、投放、门店与核销员、核销记录与数据对账",
            Self::CouponsVerify => "核销优惠券",
            Self::MembersManage => "会员卡设置、积分调整",
            Self::MembersView => "查看会员、积分与余额明细、导出会员",
            Self::EcardsManage => "电子卡密：虚拟商品、卡密库存、订单、手动核销、证据与数据",
            Self::EcardsReveal => "查看卡密明文（记录在操作日志）",
            Self::ApprovalsDecide => "审批双人复核请求（不能审批自己提交的）",
        }
    }

    /// Encodes a permission set for storage: comma-separated codes, sorted.
    pub fn encode_set(permissions: &[Permission]) -> String {
        let mut codes: Vec<_> = permissions.iter().map(|p| p.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        codes.join(",")
    }

    /// Decodes a stored set; unknown codes (from a newer version) are ignored.
    pub fn decode_set(text: &str) -> Vec<Permission> {
        let mut set: Vec<_> = text.split(',').filter_map(Permission::parse).collect();
        set.sort_unstable();
        set
    }
}

/// The roles every merchant starts with: (name, label, permissions).
pub fn builtin_roles() -> Vec<(&'static str, &'static str, Vec<Permission>)> {
    use Permission::*;
    vec![
        ("owner", "店主（全部权限）", Permission::ALL.to_vec()),
        (
            "card_manager",
            "卡券管理员",
            vec![
                CardsView,
                CardsCreate,
                CardsManage,
                CardsExport,
                CardsExportSecrets,
                DistributorsManage,
                GoodsManage,
            ],
        ),
        (
            "order_clerk",
            "订单员",
            vec![CardsView, OrdersManage, PickupAssist, PersonalDataView],
        ),
        ("verifier", "核销员", vec![PickupAssist, CouponsVerify]),
        ("readonly", "只读", vec![CardsView, AuditView]),
    ]
}

/// Admin passwords: at least this long, letters and digits both present (seed 003: 字母+数字组合).
pub const STAFF_PASSWORD_LENGTH_MIN: usize = 8;
pub const USERNAME_LENGTH_MAX: usize = 32;

pub fn check_username(username: &str) -> Result<(), String> {
    let ok_chars = username
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    if username.is_empty() || username.len() > USERNAME_LENGTH_MAX || !ok_chars {
        return Err(format!(
            "账号须为 1–{USERNAME_LENGTH_MAX} 位字母、数字、下划线或点"
        ));
    }
    Ok(())
}

pub fn check_staff_password(password: &str) -> Result<(), String> {
    let has_letter = password.chars().any(|c| c.is_ascii_alphabetic());
    let has_digit = password.chars().any(|c| c.is_ascii_digit());
    if password.chars().count() < STAFF_PASSWORD_LENGTH_MIN || !has_letter || !has_digit {
        return Err(format!(
            "密码至少 {STAFF_PASSWORD_LENGTH_MIN} 位，且须同时包含字母和数字"
        ));
    }
    if password.len() > 128 {
        return Err("密码过长".into());
    }
    Ok(())
}

/// Hashes an admin password with argon2id and a random salt.
pub fn hash_staff_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters accepts any password")
        .to_string()
}

pub fn verify_staff_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// How long failed sign-ins count: a username or a client address that
/// failed too often waits until its oldest failure in the window leaves it.
pub const LOGIN_WINDOW_SECONDS: i64 = 3600;
/// Failed sign-ins per username per window, whether the username exists or
/// not, so the answer never tells which names exist.
pub const LOGIN_FAILURES_PER_NAME_MAX: i64 = 5;
/// Failed sign-ins per client address per window, across usernames.
pub const LOGIN_FAILURES_PER_CLIENT_MAX: i64 = 20;
/// Sign-in failures are kept under no merchant: a login name is global.
pub const LOGIN_FAILURES_MERCHANT_ID: i64 = 0;

/// The attempt-limit key of a typed username (exact, as typed but trimmed).
pub fn login_name_key(username: &str) -> String {
    format!("login-name:{}", username.trim())
}

/// The attempt-limit key of a client address.
pub fn login_client_key(client: &str) -> String {
    format!("login-client:{client}")
}

/// The merchant whose staff sign in with their bare username: the first,
/// which `kaquan serve` creates on a fresh database (one shop).
pub const FIRST_MERCHANT_ID: i64 = 1;

/// The name a staff member signs in with. Every other merchant's staff add
/// `@` and the merchant's number (`alice@2`), so usernames are unique per
/// merchant: creating one never tells another merchant which names exist.
/// Accounts created before this rule keep the names they had.
pub fn login_name(merchant_id: i64, username: &str) -> String {
    if merchant_id == FIRST_MERCHANT_ID {
        username.to_owned()
    } else {
        format!("{username}@{merchant_id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_passwords_hash_with_argon2id_and_verify() {
        let hash = hash_staff_password("abc12345");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_staff_password("abc12345", &hash));
        assert!(!verify_staff_password("abc12346", &hash));
        assert!(!verify_staff_password("abc12345", "not a hash"));
    }

    #[test]
    fn staff_passwords_need_letters_and_digits() {
        assert!(check_staff_password("abc12345").is_ok());
        assert!(check_staff_password("abcdefgh").is_err());
        assert!(check_staff_password("a1").is_err());
        assert!(check_username("zhang.san_1").is_ok());
        assert!(check_username("张三").is_err());
    }

    #[test]
    fn other_merchants_staff_sign_in_with_their_merchant_number() {
        assert_eq!(login_name(FIRST_MERCHANT_ID, "alice"), "alice");
        assert_eq!(login_name(2, "alice"), "alice@2");
        assert_eq!(login_name(17, "a.b_c"), "a.b_c@17");
        assert!(
            check_username("alice@2").is_err(),
            "an @ is never typed into a username"
        );
        assert_eq!(login_name_key(" boss "), "login-name:boss");
        assert_eq!(login_client_key("127.0.0.1"), "login-client:127.0.0.1");
    }

    #[test]
    fn permission_sets_round_trip_and_owner_has_all() {
        let set = vec![Permission::AuditView, Permission::CardsView];
        assert_eq!(
            Permission::decode_set(&Permission::encode_set(&set)),
            vec![Permission::CardsView, Permission::AuditView]
        );
        assert_eq!(
            Permission::decode_set("cards.view,unknown"),
            vec![Permission::CardsView]
        );
        let roles = builtin_roles();
        assert_eq!(roles[0].2.len(), Permission::ALL.len());
        assert!(roles
            .iter()
            .any(|r| r.0 == "readonly" && !r.2.contains(&Permission::CardsManage)));
    }
}
