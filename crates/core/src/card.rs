//! Cards: the state machine, the rules for numbers and passwords, and the
//! filter and edit shapes the card list's bulk operations use.
//!
//! Architecture invariant: this module is the only place that says which
//! state a card may move to from which; stores turn [`CardOp`] into one
//! guarded `UPDATE … WHERE state IN (…)` and never decide it themselves.

use crate::audit::AuditEntry;
use crate::store::Page;
use crate::StoreResult;
use std::fmt;

/// The stored state of a card. `expired` is derived from `valid_until` and
/// never stored; `deleted` cards leave the table and are kept in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardState {
    Inactive,
    Active,
    Used,
    Voided,
}

impl CardState {
    pub const ALL: [CardState; 4] = [Self::Inactive, Self::Active, Self::Used, Self::Voided];

    pub fn code(self) -> &'static str {
        match self {
            Self::Inactive => "inactive",
            Self::Active => "active",
            Self::Used => "used",
            Self::Voided => "voided",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The label merchants know from their console.
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Inactive => "未激活",
            Self::Active => "已激活",
            Self::Used => "已兑换",
            Self::Voided => "已作废",
        }
    }
}

impl fmt::Display for CardState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A bulk state change a merchant can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardOp {
    Activate,
    Deactivate,
    Void,
    Restore,
    /// Irreversible; the card leaves the table and its number stays in the audit log.
    Delete,
}

impl CardOp {
    pub const ALL: [CardOp; 5] = [
        Self::Activate,
        Self::Deactivate,
        Self::Void,
        Self::Restore,
        Self::Delete,
    ];

    /// The states a card must be in for the operation to touch it; cards in
    /// other states are left alone and not counted.
    pub fn from_states(self) -> &'static [CardState] {
        match self {
            Self::Activate => &[CardState::Inactive],
            Self::Deactivate => &[CardState::Active],
            // Only unused cards can be voided (seed 003, 批量作废).
            Self::Void => &[CardState::Inactive, CardState::Active],
            Self::Restore => &[CardState::Voided],
            // Only voided cards can be deleted (seed 003, 批量删除).
            Self::Delete => &[CardState::Voided],
        }
    }

    /// The state the card ends in; `None` for delete.
    pub fn to_state(self) -> Option<CardState> {
        match self {
            Self::Activate => Some(CardState::Active),
            Self::Deactivate | Self::Restore => Some(CardState::Inactive),
            Self::Void => Some(CardState::Voided),
            Self::Delete => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Activate => "activate",
            Self::Deactivate => "deactivate",
            Self::Void => "void",
            Self::Restore => "restore",
            Self::Delete => "delete",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.code() == code)
    }

    /// What the console says of `count` cards in `state` the operation
    /// passed over, and why; `None` when it takes cards in that state.
    pub fn passed_over(self, state: CardState, count: i64) -> Option<String> {
        if count == 0 || self.from_states().contains(&state) {
            return None;
        }
        let label = state.label_zh();
        Some(match self {
            Self::Delete | Self::Restore => format!(
                "{count} 张{label}的卡未{op}（只有已作废的卡才能{op}）",
                op = self.label_zh()
            ),
            _ if self.to_state() == Some(state) => format!("{count} 张卡已经是{label}"),
            _ => format!("{count} 张{label}的卡不能{}", self.label_zh()),
        })
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Activate => "激活",
            Self::Deactivate => "反激活",
            Self::Void => "作废",
            Self::Restore => "恢复",
            Self::Delete => "删除",
        }
    }
}

/// The moves a card makes on its own, outside the console's operations:
/// the store turns each into one guarded `UPDATE … SET state = to WHERE
/// state = from` (see [`CardMove::from_state`], [`CardMove::to_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardMove {
    /// 生成后立即激活: a new batch's cards, in the transaction that fills it.
    ActivateOnFill,
    /// A pickup uses the card (within its validity).
    Use,
    /// Cancelling a pickup order makes its card usable again.
    Unuse,
    /// 商城卖卡: a sold card is activated for its buyer.
    Sell,
    /// A refunded sale's card goes back to inactive (never to be sold again).
    Refund,
}

impl CardMove {
    /// Every move, in declaration order (a move's index is `as usize`).
    pub const ALL: [CardMove; 5] = [
        Self::ActivateOnFill,
        Self::Use,
        Self::Unuse,
        Self::Sell,
        Self::Refund,
    ];

    pub fn from_state(self) -> CardState {
        match self {
            Self::ActivateOnFill | Self::Sell => CardState::Inactive,
            Self::Use | Self::Refund => CardState::Active,
            Self::Unuse => CardState::Used,
        }
    }

    pub fn to_state(self) -> CardState {
        match self {
            Self::ActivateOnFill | Self::Unuse | Self::Sell => CardState::Active,
            Self::Use => CardState::Used,
            Self::Refund => CardState::Inactive,
        }
    }
}

/// Longest card number we accept, prefix included.
pub const CARD_NUMBER_LENGTH_MAX: usize = 32;
/// Shortest card number we accept from an import.
pub const CARD_NUMBER_LENGTH_MIN: usize = 4;
/// Longest prefix (卡号前缀).
pub const PREFIX_LENGTH_MAX: usize = 12;
/// Card passwords (密码) are at least this long and at most the max.
pub const PASSWORD_LENGTH_MIN: usize = 4;
pub const PASSWORD_LENGTH_MAX: usize = 32;

/// A card number prefix: ASCII letters and digits, not starting with `0`
/// (seed 003: 卡前缀第一位不能为数字0). Empty is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Prefix(String);

impl Prefix {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() > PREFIX_LENGTH_MAX {
            return Err(format!("卡号前缀最多 {PREFIX_LENGTH_MAX} 位"));
        }
        if !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("卡号前缀只能是字母和数字".into());
        }
        if text.starts_with('0') {
            return Err("卡号前缀第一位不能为数字 0".into());
        }
        Ok(Self(text.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A card number as printed: ASCII letters and digits, unique per merchant,
/// immutable once issued.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CardNumber(String);

impl CardNumber {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() < CARD_NUMBER_LENGTH_MIN || text.len() > CARD_NUMBER_LENGTH_MAX {
            return Err(format!(
                "卡号长度须为 {CARD_NUMBER_LENGTH_MIN}–{CARD_NUMBER_LENGTH_MAX} 位"
            ));
        }
        if !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("卡号只能包含字母和数字".into());
        }
        Ok(Self(text.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A card password as the customer types it. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct CardPassword(String);

impl fmt::Debug for CardPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardPassword(<redacted>)")
    }
}

impl CardPassword {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() < PASSWORD_LENGTH_MIN || text.len() > PASSWORD_LENGTH_MAX {
            return Err(format!(
                "密码长度须为 {PASSWORD_LENGTH_MIN}–{PASSWORD_LENGTH_MAX} 位"
            ));
        }
        if !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("密码只能包含字母和数字".into());
        }
        Ok(Self(text.to_owned()))
    }

    /// Trusted constructor for passwords we generated ourselves.
    pub(crate) fn from_generated(text: String) -> Self {
        Self(text)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Which cards a list, count or bulk operation covers. Every field narrows;
/// the empty filter is every card of the merchant, which a bulk operation
/// takes only through [`CardFilter::bulk_target`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardFilter {
    pub batch_id: Option<i64>,
    pub state: Option<CardState>,
    /// Activated means active or used (sold and in circulation).
    pub activated: Option<bool>,
    pub used: Option<bool>,
    /// `Some(0)` selects cards assigned to no distributor.
    pub distributor_id: Option<i64>,
    pub serial_from: Option<i64>,
    pub serial_to: Option<i64>,
    /// Case-insensitive substring of the card number.
    pub number_contains: Option<String>,
}

/// A bulk operation (state change, edit, 对应商品, purge, export) named no
/// condition and did not say that it means every card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no condition chooses the cards and `all` was not given")]
pub struct UnchosenCards;

impl CardFilter {
    /// Whether no field narrows the filter, so that it covers every card.
    pub fn is_everything(&self) -> bool {
        self.number_needle().is_none()
            && CardFilter {
                number_contains: None,
                ..self.clone()
            } == CardFilter::default()
    }

    /// The cards a bulk operation may touch: a filter that narrows, or every
    /// card when `all` says so. A misspelled or forgotten condition must
    /// never turn into "every card".
    pub fn bulk_target(self, all: bool) -> Result<CardFilter, UnchosenCards> {
        if self.is_everything() && !all {
            return Err(UnchosenCards);
        }
        Ok(self)
    }

    /// A short human description for the audit log.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = self.batch_id {
            parts.push(format!("batch={v}"));
        }
        if let Some(v) = self.state {
            parts.push(format!("state={v}"));
        }
        if let Some(v) = self.activated {
            parts.push(format!("activated={v}"));
        }
        if let Some(v) = self.used {
            parts.push(format!("used={v}"));
        }
        if let Some(v) = self.distributor_id {
            parts.push(format!("distributor={v}"));
        }
        if let Some(v) = self.serial_from {
            parts.push(format!("serial>={v}"));
        }
        if let Some(v) = self.serial_to {
            parts.push(format!("serial<={v}"));
        }
        if let Some(v) = &self.number_contains {
            parts.push(format!("number~{v}"));
        }
        if parts.is_empty() {
            "all cards".into()
        } else {
            parts.join(" ")
        }
    }

    /// Reads back what [`CardFilter::describe`] wrote in the audit log;
    /// `None` when a word is not one of its.
    pub fn from_description(text: &str) -> Option<CardFilter> {
        let mut f = CardFilter::default();
        if text.trim() == "all cards" {
            return Some(f);
        }
        for word in text.split_whitespace() {
            let (key, value) = word.split_once(['=', '~'])?;
            match key {
                "batch" => f.batch_id = Some(value.parse().ok()?),
                "state" => f.state = Some(CardState::parse(value)?),
                "activated" => f.activated = Some(value.parse().ok()?),
                "used" => f.used = Some(value.parse().ok()?),
                "distributor" => f.distributor_id = Some(value.parse().ok()?),
                "serial>" => f.serial_from = Some(value.parse().ok()?),
                "serial<" => f.serial_to = Some(value.parse().ok()?),
                "number" if word.contains('~') => f.number_contains = Some(value.to_owned()),
                _ => return None,
            }
        }
        Some(f)
    }

    /// Whether this filter chose `card` by what never changes about a card
    /// (batch, serial, number, and its distributor now): `None` when not;
    /// `Some(true)` when it also had a state condition, so that the card
    /// may have been passed over.
    pub fn covered(&self, card: &Card) -> Option<bool> {
        let fixed = self.batch_id.is_none_or(|b| b == card.batch_id)
            && self.serial_from.is_none_or(|s| card.serial >= s)
            && self.serial_to.is_none_or(|s| card.serial <= s)
            && self
                .number_needle()
                .is_none_or(|n| card.number.contains(&n))
            && self
                .distributor_id
                .is_none_or(|d| card.distributor_id.unwrap_or(0) == d);
        fixed.then_some(self.state.is_some() || self.activated.is_some() || self.used.is_some())
    }

    /// The number search as stored (upper case), or `None` when absent or blank.
    pub fn number_needle(&self) -> Option<String> {
        self.number_contains
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.to_ascii_uppercase().replace(['%', '_', '\\'], ""))
    }
}

/// The fields of 修改卡属性: only the fields that are `Some` change. Card
/// number and password are deliberately absent: they can never be edited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardEdit {
    pub face_value_fen: Option<Option<i64>>,
    pub valid_from: Option<Option<i64>>,
    pub valid_until: Option<Option<i64>>,
    pub remark: Option<String>,
    /// `Some(None)` removes the distributor.
    pub distributor_id: Option<Option<i64>>,
}

impl CardEdit {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The chosen fields by their console labels, for messages and the audit log.
    pub fn describe(&self) -> String {
        let mut fields = Vec::new();
        if self.face_value_fen.is_some() {
            fields.push("卡券面值");
        }
        if self.valid_from.is_some() {
            fields.push("有效期开始");
        }
        if self.valid_until.is_some() {
            fields.push("有效期结束");
        }
        if self.remark.is_some() {
            fields.push("卡券备注");
        }
        if self.distributor_id.is_some() {
            fields.push("券商");
        }
        fields.join("、")
    }
}

/// A card whose validity ended before `now` is expired, whatever its stored state.
pub fn is_expired(valid_until: Option<i64>, now: i64) -> bool {
    valid_until.is_some_and(|until| until < now)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub id: i64,
    pub merchant_id: i64,
    pub batch_id: i64,
    pub serial: i64,
    pub number: String,
    pub state: CardState,
    pub face_value_fen: Option<i64>,
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
    pub remark: String,
    pub distributor_id: Option<i64>,
    pub distributor_name: Option<String>,
    pub activated_at: Option<i64>,
    pub used_at: Option<i64>,
    pub voided_at: Option<i64>,
    pub created_at: i64,
}

/// A card with its sealed password, for a permitted export only.
#[derive(Debug, Clone)]
pub struct CardWithSecret {
    pub card: Card,
    /// `None` once the merchant purged the sealed copies after printing.
    pub secret_sealed: Option<Vec<u8>>,
    pub key_version: i32,
}

/// A card with its password digest, for checking a typed password.
#[derive(Debug, Clone)]
pub struct CardSecret {
    pub card: Card,
    pub secret_digest: Vec<u8>,
    pub key_version: i32,
}

/// Cards in the database. Cards of batches that are not `ready` are
/// invisible to all of these.
#[async_trait::async_trait]
pub trait CardStore: Send + Sync + 'static {
    async fn list_cards(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        page: Page,
    ) -> StoreResult<Vec<Card>>;
    async fn count_cards(&self, merchant_id: i64, filter: &CardFilter) -> StoreResult<i64>;
    /// Keyset page for streaming exports: cards with serial > `after_serial`, by serial.
    async fn cards_after(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        after_serial: i64,
        limit: i64,
    ) -> StoreResult<Vec<CardWithSecret>>;
    async fn get_card_by_number(&self, merchant_id: i64, number: &str)
        -> StoreResult<Option<Card>>;
    /// Applies a state change to the matching cards that are in one of the
    /// operation's `from_states`; for delete, also records their numbers.
    async fn apply_card_op(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        op: CardOp,
        audit: &AuditEntry,
    ) -> StoreResult<i64>;
    /// Changes only the chosen fields of the matching cards.
    async fn edit_cards(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        edit: &CardEdit,
        audit: &AuditEntry,
    ) -> StoreResult<i64>;
    /// Drops the sealed password copies of the matching cards (after printing).
    async fn purge_card_secrets(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        audit: &AuditEntry,
    ) -> StoreResult<i64>;
}

#[cfg(test)]
mod bulk_target_tests {
    use super::*;

    #[test]
    fn a_bulk_operation_takes_every_card_only_when_told() {
        assert_eq!(CardFilter::default().bulk_target(false), Err(UnchosenCards));
        assert!(CardFilter::default().bulk_target(true).is_ok());
        let blank_number = CardFilter {
            number_contains: Some("  ".into()),
            ..Default::default()
        };
        assert!(blank_number.is_everything());
        assert_eq!(blank_number.bulk_target(false), Err(UnchosenCards));
        for narrowed in [
            CardFilter {
                batch_id: Some(1),
                ..Default::default()
            },
            CardFilter {
                state: Some(CardState::Active),
                ..Default::default()
            },
            CardFilter {
                activated: Some(false),
                ..Default::default()
            },
            CardFilter {
                used: Some(false),
                ..Default::default()
            },
            CardFilter {
                distributor_id: Some(0),
                ..Default::default()
            },
            CardFilter {
                serial_from: Some(1),
                ..Default::default()
            },
            CardFilter {
                serial_to: Some(1),
                ..Default::default()
            },
            CardFilter {
                number_contains: Some("12".into()),
                ..Default::default()
            },
        ] {
            assert!(!narrowed.is_everything(), "{narrowed:?}");
            assert_eq!(narrowed.clone().bulk_target(false), Ok(narrowed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_says_which_cards_it_passed_over_and_why() {
        use CardState::*;
        assert_eq!(
            CardOp::Void.passed_over(Used, 6).unwrap(),
            "6 张已兑换的卡不能作废"
        );
        assert_eq!(
            CardOp::Void.passed_over(Voided, 2).unwrap(),
            "2 张卡已经是已作废"
        );
        assert_eq!(CardOp::Void.passed_over(Active, 3), None);
        assert_eq!(
            CardOp::Void.passed_over(Used, 0),
            None,
            "nothing passed over"
        );
        assert_eq!(
            CardOp::Delete.passed_over(Inactive, 5).unwrap(),
            "5 张未激活的卡未删除（只有已作废的卡才能删除）"
        );
        assert_eq!(
            CardOp::Restore.passed_over(Active, 1).unwrap(),
            "1 张已激活的卡未恢复（只有已作废的卡才能恢复）"
        );
        assert_eq!(
            CardOp::Activate.passed_over(Active, 4).unwrap(),
            "4 张卡已经是已激活"
        );
        assert_eq!(
            CardOp::Activate.passed_over(Used, 1).unwrap(),
            "1 张已兑换的卡不能激活"
        );
        assert_eq!(
            CardOp::Deactivate.passed_over(Inactive, 1).unwrap(),
            "1 张卡已经是未激活"
        );
        for op in CardOp::ALL {
            for state in CardState::ALL {
                assert_eq!(
                    op.passed_over(state, 1).is_none(),
                    op.from_states().contains(&state)
                );
            }
        }
    }

    #[test]
    fn an_audited_filter_reads_back_and_tells_which_cards_it_chose() {
        let filter = CardFilter {
            batch_id: Some(3),
            state: Some(CardState::Active),
            serial_from: Some(11),
            serial_to: Some(20),
            number_contains: Some("a58".into()),
            distributor_id: Some(0),
            activated: Some(true),
            used: Some(false),
        };
        let read = CardFilter::from_description(&filter.describe()).unwrap();
        assert_eq!(read.describe(), filter.describe());
        assert_eq!(
            CardFilter::from_description("all cards"),
            Some(CardFilter::default())
        );
        assert_eq!(CardFilter::from_description("batch=x"), None);
        assert_eq!(CardFilter::from_description("color=red"), None);
        let card = |batch_id, serial: i64, number: &str| Card {
            id: 1,
            merchant_id: 1,
            batch_id,
            serial,
            number: number.into(),
            state: CardState::Inactive,
            face_value_fen: None,
            valid_from: None,
            valid_until: None,
            remark: String::new(),
            distributor_id: None,
            distributor_name: None,
            activated_at: None,
            used_at: None,
            voided_at: None,
            created_at: 0,
        };
        assert_eq!(
            filter.covered(&card(3, 11, "A588")),
            Some(true),
            "with a state condition"
        );
        assert_eq!(filter.covered(&card(3, 20, "A588")), Some(true));
        assert_eq!(filter.covered(&card(3, 21, "A588")), None);
        assert_eq!(filter.covered(&card(3, 10, "A588")), None);
        assert_eq!(filter.covered(&card(4, 11, "A588")), None);
        assert_eq!(filter.covered(&card(3, 11, "B999")), None);
        let range = CardFilter::from_description("serial>=5 serial<=5").unwrap();
        assert_eq!(range.covered(&card(9, 5, "X")), Some(false));
        let mine = CardFilter {
            distributor_id: Some(7),
            ..Default::default()
        };
        assert_eq!(
            mine.covered(&Card {
                distributor_id: Some(7),
                ..card(1, 1, "X")
            }),
            Some(false)
        );
        assert_eq!(mine.covered(&card(1, 1, "X")), None);
        assert_eq!(
            CardFilter::from_description("number=A58"),
            None,
            "a number is searched with ~"
        );
        for conditional in ["state=active", "activated=true", "used=false"] {
            let f = CardFilter::from_description(conditional).unwrap();
            assert_eq!(f.covered(&card(1, 1, "X")), Some(true), "{conditional}");
        }
        assert_eq!(CardFilter::default().covered(&card(1, 1, "X")), Some(false));
    }

    #[test]
    fn a_card_moves_on_its_own_only_between_these_states() {
        assert_eq!(
            CardMove::ALL.map(|m| (m.from_state(), m.to_state())),
            [
                (CardState::Inactive, CardState::Active),
                (CardState::Active, CardState::Used),
                (CardState::Used, CardState::Active),
                (CardState::Inactive, CardState::Active),
                (CardState::Active, CardState::Inactive),
            ]
        );
    }

    #[test]
    fn only_unused_cards_can_be_voided_and_only_voided_cards_deleted() {
        assert!(CardOp::Void.from_states().contains(&CardState::Inactive));
        assert!(CardOp::Void.from_states().contains(&CardState::Active));
        assert!(!CardOp::Void.from_states().contains(&CardState::Used));
        assert_eq!(CardOp::Delete.from_states(), &[CardState::Voided]);
        assert_eq!(CardOp::Restore.to_state(), Some(CardState::Inactive));
        assert_eq!(CardOp::Delete.to_state(), None);
        for op in CardOp::ALL {
            assert_eq!(CardOp::parse(op.code()), Some(op));
            assert!(
                !op.from_states().contains(&CardState::Used),
                "{op:?} must never touch a used card"
            );
        }
    }

    #[test]
    fn prefixes_are_letters_and_digits_not_starting_with_zero() {
        assert_eq!(Prefix::parse("a588").unwrap().as_str(), "A588");
        assert!(Prefix::parse("").is_ok());
        assert!(Prefix::parse("0588").is_err());
        assert!(Prefix::parse("A-58").is_err());
        assert!(Prefix::parse("卡").is_err());
    }

    #[test]
    fn card_numbers_and_passwords_are_checked_at_the_edge() {
        assert!(CardNumber::parse("A58800000001").is_ok());
        assert!(CardNumber::parse("abc").is_err());
        assert!(CardNumber::parse("A588 0001").is_err());
        assert!(CardPassword::parse("12345678").is_ok());
        assert!(CardPassword::parse("12").is_err());
        assert!(CardPassword::parse("=1+2345").is_err());
        assert_eq!(
            format!("{:?}", CardPassword::parse("secret99").unwrap()),
            "CardPassword(<redacted>)"
        );
    }

    #[test]
    fn expiry_is_derived_from_valid_until() {
        assert!(!is_expired(None, 100));
        assert!(!is_expired(Some(100), 100));
        assert!(is_expired(Some(99), 100));
    }
}
