//! The console's menu: modules and their entries, each entry behind the
//! permission its page checks, so a role sees only what it may use. A new
//! module is one more group here.

use kaquan_core::auth::Permission;
use serde::Serialize;

struct Entry {
    label: &'static str,
    href: &'static str,
    /// Who may open it; `None`: everyone signed in.
    permission: Option<Permission>,
}

struct Group {
    label: &'static str,
    entries: &'static [Entry],
}

const fn entry(label: &'static str, href: &'static str, permission: Permission) -> Entry {
    Entry {
        label,
        href,
        permission: Some(permission),
    }
}

use Permission::*;

const MENU: &[Group] = &[
    Group {
        label: "首页",
        entries: &[
            Entry {
                label: "概况",
                href: "/",
                permission: None,
            },
            entry("数据分析", "/analytics", CardsView),
        ],
    },
    Group {
        label: "卡券管理",
        entries: &[
            entry("卡券列表", "/cards", CardsView),
            entry("批次", "/batches", CardsView),
            entry("创建卡券", "/batches/new", CardsCreate),
            entry("卡券导入", "/cards/import", CardsCreate),
            entry("券商管理", "/distributors", DistributorsManage),
            entry("印刷厂", "/settings/print-shops", CardsExportSecrets),
        ],
    },
    Group {
        label: "提货管理",
        entries: &[
            entry("提货前台", "/pickup/site", PickupAssist),
            entry("到店提货", "/pickup/store", PickupAssist),
            entry("电话提货", "/pickup/phone", PickupAssist),
            entry("提货商品", "/goods", GoodsManage),
        ],
    },
    Group {
        label: "核销台",
        entries: &[entry("核销", "/verify", CouponsVerify)],
    },
    Group {
        label: "订单发货",
        entries: &[entry("订单列表", "/orders?status=pending", OrdersManage)],
    },
    Group {
        label: "优惠券",
        entries: &[
            entry("优惠券", "/coupons", CouponsManage),
            entry("门店与核销员", "/coupons/locations", CouponsManage),
            entry("核销记录", "/coupons/verifications", CouponsManage),
            entry("数据与对账", "/coupons/reconciliation", CouponsManage),
            entry("券点账户", "/credits", CouponsManage),
        ],
    },
    Group {
        label: "会员卡",
        entries: &[
            entry("会员卡", "/member-programs", MembersView),
            entry("会员", "/members", MembersView),
            entry("消息记录", "/members/messages", MembersView),
            entry("支付后赠会员卡", "/member-programs/pay-gift", MembersView),
        ],
    },
    Group {
        label: "电子卡密",
        entries: &[
            entry("虚拟商品", "/ecards", EcardsManage),
            entry("电子卡密订单", "/ecards/orders", EcardsManage),
            entry("数据分析", "/ecards/analytics", EcardsManage),
        ],
    },
    Group {
        label: "营销·礼品卡",
        entries: &[
            entry("礼品卡设置", "/giftcards/settings", GiftcardsManage),
            entry(
                "线上兑换码",
                "/giftcards/codes?kind=online",
                GiftcardsManage,
            ),
            entry(
                "线下兑换码",
                "/giftcards/codes?kind=offline",
                GiftcardsManage,
            ),
            entry("礼品卡商品", "/giftcards/products", GiftcardsManage),
            entry("顾客余额", "/customers", BalancesView),
            entry("商城卖卡", "/card-sales", CardsView),
        ],
    },
    Group {
        label: "通知与推送",
        entries: &[
            entry("通知设置", "/settings/sms", ApiKeysManage),
            entry("事件推送", "/settings/webhooks", ApiKeysManage),
        ],
    },
    Group {
        label: "系统设置",
        entries: &[
            entry("全局设置", "/settings", OrdersManage),
            entry("管理员", "/staff", StaffManage),
            entry("开放接口", "/settings/api-keys", ApiKeysManage),
            entry("待审批", "/approvals", ApprovalsDecide),
            entry("操作日志", "/audit", AuditView),
        ],
    },
];

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct NavEntry {
    pub label: &'static str,
    pub href: &'static str,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct NavGroup {
    pub label: &'static str,
    pub entries: Vec<NavEntry>,
}

/// The menu a role sees: its groups with only the entries it may open; a
/// group with none is left out.
pub fn menu_for(permissions: &[Permission]) -> Vec<NavGroup> {
    MENU.iter()
        .map(|group| NavGroup {
            label: group.label,
            entries: group
                .entries
                .iter()
                .filter(|e| e.permission.is_none_or(|p| permissions.contains(&p)))
                .map(|e| NavEntry {
                    label: e.label,
                    href: e.href,
                })
                .collect(),
        })
        .filter(|group| !group.entries.is_empty())
        .collect()
}

/// The installation's operator's own group (平台运营), beside the menu
/// their role gives them.
pub fn operator_group() -> NavGroup {
    NavGroup {
        label: "平台运营",
        entries: vec![NavEntry {
            label: "商户券点",
            href: "/operator",
        }],
    }
}

/// Where a role lands after signing in: an order clerk (orders but no card
/// making and no staff) on 待发 orders, a verifier (nothing of the cards) on
/// 核销 (or 到店提货 when they only help with pickups), everyone else on 概况.
pub fn home_for(permissions: &[Permission]) -> Option<&'static str> {
    let can = |p| permissions.contains(&p);
    if can(OrdersManage) && !can(CardsCreate) && !can(StaffManage) {
        Some("/orders?status=pending")
    } else if can(CouponsVerify) && !can(CardsView) && !can(OrdersManage) {
        Some("/verify")
    } else if can(PickupAssist) && !can(CardsView) && !can(OrdersManage) {
        Some("/pickup/store")
    } else {
        None
    }
}

/// The tabs of 全局设置, for those allowed each.
pub fn settings_tabs(permissions: &[Permission]) -> Vec<NavEntry> {
    const TABS: &[Entry] = &[
        entry("提货设置", "/settings/pickup", OrdersManage),
        entry("物流配置", "/settings/waybill", OrdersManage),
        entry("通知设置", "/settings/sms", ApiKeysManage),
        entry("开放接口", "/settings/api-keys", ApiKeysManage),
        entry("事件推送", "/settings/webhooks", ApiKeysManage),
        entry("ERP 参数", "/settings/erp", ApiKeysManage),
        entry("预付卡政策", "/settings/prepaid", StaffManage),
        entry("双人复核", "/settings/approvals", StaffManage),
        entry("印刷厂", "/settings/print-shops", CardsExportSecrets),
    ];
    TABS.iter()
        .filter(|e| e.permission.is_none_or(|p| permissions.contains(&p)))
        .map(|e| NavEntry {
            label: e.label,
            href: e.href,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaquan_core::auth::builtin_roles;

    fn role(name: &str) -> Vec<Permission> {
        builtin_roles()
            .into_iter()
            .find(|(n, _, _)| *n == name)
            .unwrap()
            .2
    }

    fn labels(permissions: &[Permission]) -> Vec<&'static str> {
        menu_for(permissions)
            .into_iter()
            .flat_map(|g| g.entries)
            .map(|e| e.label)
            .collect()
    }

    #[test]
    fn each_role_sees_only_what_it_may_open() {
        let owner = labels(&role("owner"));
        assert_eq!(
            owner.len(),
            MENU.iter().map(|g| g.entries.len()).sum::<usize>()
        );
        assert_eq!(
            labels(&role("verifier")),
            ["概况", "提货前台", "到店提货", "电话提货", "核销"]
        );
        assert!(!labels(&role("order_clerk")).contains(&"管理员"));
        assert!(labels(&role("order_clerk")).contains(&"订单列表"));
        assert_eq!(menu_for(&[]).len(), 1, "only 首页 for a role with nothing");
    }

    #[test]
    fn each_role_lands_where_its_work_is() {
        assert_eq!(home_for(&role("owner")), None);
        assert_eq!(home_for(&role("card_manager")), None);
        assert_eq!(home_for(&role("readonly")), None);
        assert_eq!(
            home_for(&role("order_clerk")),
            Some("/orders?status=pending")
        );
        assert_eq!(home_for(&role("verifier")), Some("/verify"));
        assert_eq!(home_for(&[PickupAssist]), Some("/pickup/store"));
        assert_eq!(
            home_for(&[PickupAssist, CardsView]),
            None,
            "one who also sees cards gets the overview"
        );
        assert_eq!(
            home_for(&[PickupAssist, OrdersManage]),
            Some("/orders?status=pending")
        );
    }

    #[test]
    fn the_settings_tabs_follow_the_permissions() {
        assert_eq!(settings_tabs(&role("owner")).len(), 9);
        let clerk: Vec<_> = settings_tabs(&role("order_clerk"))
            .into_iter()
            .map(|t| t.label)
            .collect();
        assert_eq!(clerk, ["提货设置", "物流配置"]);
        assert!(settings_tabs(&role("verifier")).is_empty());
    }
}
