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
}

impl Permission {
    pub const ALL: [Permission; 16] = [
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
        ("verifier", "核销员", vec![PickupAssist]),
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

/// Failed sign-ins allowed before the account is locked.
pub const LOGIN_FAILURES_BEFORE_LOCK: i64 = 5;
/// Longest lock after repeated failures.
pub const LOGIN_LOCK_SECONDS_MAX: i64 = 3600;

/// After `failed_logins` consecutive failures (counting this one), until
/// when is the account locked? One minute after the fifth failure, doubling
/// with each further one up to an hour.
pub fn login_locked_until(failed_logins: i64, now: i64) -> Option<i64> {
    if failed_logins < LOGIN_FAILURES_BEFORE_LOCK {
        return None;
    }
    let doublings = (failed_logins - LOGIN_FAILURES_BEFORE_LOCK).min(10) as u32;
    Some(now + (60i64 << doublings).min(LOGIN_LOCK_SECONDS_MAX))
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
    fn logins_lock_after_five_failures_and_back_off() {
        assert_eq!(login_locked_until(4, 0), None);
        assert_eq!(login_locked_until(5, 0), Some(60));
        assert_eq!(login_locked_until(6, 0), Some(120));
        assert_eq!(login_locked_until(50, 0), Some(LOGIN_LOCK_SECONDS_MAX));
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
