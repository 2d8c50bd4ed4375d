//! The behavioural conformance suite every `Store` backend must pass, one
//! module per domain with the same names as the backends' modules.
//!
//! Each check is an async function over `&dyn Store`; a backend's test file
//! invokes [`conformance_tests!`] with an expression that makes a fresh,
//! empty store, so every check runs on its own database. The tidy test
//! fails when a public check is missing from the macro's list.

mod analytics;
mod api_keys;
mod approvals;
mod attempts;
mod audit;
mod batches;
mod card_sales;
mod cards;
mod codes;
mod coupon_verifications;
mod coupons;
mod credits;
mod customers;
mod dashboard;
mod ecards;
mod erp;
mod events;
mod fixtures;
mod goods;
mod keys;
mod ledger;
mod maintenance;
mod mall;
mod member_expiry;
mod member_payments;
mod members;
mod merchants;
mod pay_gift;
mod pickup_orders;
mod pickup_refusals;
mod pickup_settings;
mod shared_coupons;
mod sms;
mod staff;
mod waybills;

pub use analytics::*;
pub use api_keys::*;
pub use approvals::*;
pub use attempts::*;
pub use audit::*;
pub use batches::*;
pub use card_sales::*;
pub use cards::*;
pub use codes::*;
pub use coupon_verifications::*;
pub use coupons::*;
pub use credits::*;
pub use customers::*;
pub use dashboard::*;
pub use ecards::*;
pub use erp::*;
pub use events::*;
pub use fixtures::generate;
pub use goods::*;
pub use keys::*;
pub use ledger::*;
pub use maintenance::*;
pub use mall::*;
pub use member_expiry::*;
pub use member_payments::*;
pub use members::*;
pub use merchants::*;
pub use pay_gift::*;
pub use pickup_orders::*;
pub use pickup_refusals::*;
pub use pickup_settings::*;
pub use shared_coupons::*;
pub use sms::*;
pub use staff::*;
pub use waybills::*;

pub const NOW: i64 = 1_790_000_000;

/// Generates the `#[tokio::test]` functions for every check.
#[macro_export]
macro_rules! conformance_tests {
    ($make_store:expr) => {
        $crate::conformance_tests!(@each $make_store;
            merchants_start_with_the_builtin_roles,
            the_prepaid_policy_is_switched_per_merchant_and_holds_templates,
            the_prepaid_policy_caps_a_named_balance_at_five_thousand,
            approval_requests_are_decided_once_by_another_person_in_time,
            a_rotation_reseals_copies_and_old_secrets_still_work,
            activations_past_the_daily_cap_are_undone_whole,
            tallied_events_add_what_they_name_to_their_day,
            issue_facts_follow_what_was_issued_and_redeemed,
            card_sale_refunds_count_against_their_batch,
            member_programs_add_up_what_their_members_did,
            tallies_are_cut_by_local_day_and_location,
            liabilities_and_failures_are_summed_per_merchant,
            stock_costs_credits_by_condition_and_free_credits_go_first,
            a_purchase_is_confirmed_or_cancelled_once,
            racing_stock_purchases_never_overdraw,
            expired_stock_returns_its_credits_to_the_kind_they_came_from,
            shared_programs_are_made_by_their_own_rules,
            a_shared_program_needs_stock_and_a_cover_before_it_is_given_out,
            operators_are_named_staff_and_every_change_is_audited,
            stock_changes_by_hand_stay_between_what_was_claimed_and_the_limit,
            friends_claim_a_shared_coupon_through_a_share_link_within_its_limits,
            a_verified_coupon_gives_one_back_while_the_give_program_has_stock,
            a_typed_code_and_a_program_of_its_own_give_back_too,
            stock_is_imported_once_and_kept_sealed,
            a_paid_order_is_delivered_once_from_stock,
            out_of_stock_delivers_nothing_until_stock_arrives,
            a_refund_returns_unseen_cards_and_voids_revealed_ones,
            a_card_is_verified_three_ways_once,
            racing_paid_events_deliver_each_line_once,
            an_orders_evidence_holds_every_step,
            reminders_and_expiry_are_announced_once,
            a_member_pays_with_discount_points_and_balance_and_reaches_a_tier,
            refunds_give_back_in_proportion_and_add_up_to_the_whole,
            each_member_operation_is_one_event_merged_when_both_assets_move,
            member_calls_replay_under_their_key_and_refuse_another_body,
            a_refund_takes_the_tier_down_only_under_the_downgrade_rule,
            concurrent_point_deductions_never_overdraw,
            programs_are_kept_per_merchant_and_members_are_filtered,
            random_member_operations_keep_every_invariant,
            payments_at_once_record_what_one_at_a_time_records,
            the_points_message_carries_the_programs_coupon,
            a_merchant_id_belongs_to_one_live_rule_and_void_rules_free_it,
            points_lapse_oldest_first_exactly_once_with_a_notice_before,
            year_end_clears_what_was_earned_before_the_new_year,
            a_payment_sends_one_claim_message_never_to_a_member_nor_from_a_void_rule,
            the_audit_log_is_searched_by_actor_action_text_and_time,
            the_audit_chain_seals_each_record_once_per_merchant,
            staff_usernames_are_unique_and_roles_stay_within_their_merchant,
            failed_logins_count_up_and_success_resets_them,
            sessions_expire_and_can_be_deleted,
            a_generated_batch_is_complete_and_ready,
            batch_cards_are_counted_by_state,
            a_failed_fill_leaves_no_cards_and_a_failed_batch,
            interrupted_batches_become_failed,
            sequential_batches_continue_numbering_and_serials,
            goods_and_activation_commit_with_the_batch,
            card_operations_follow_the_state_machine_and_are_audited,
            deleting_keeps_the_numbers_in_the_audit_log,
            editing_changes_only_the_chosen_fields,
            filters_narrow_lists_and_counts,
            merchants_cannot_see_or_change_each_others_cards,
            imports_are_validated_completely_before_anything_is_written,
            exports_page_through_every_card_with_its_sealed_password,
            verify_finds_no_violation_in_a_healthy_database,
            readiness_backlog_and_engine_gauges_read_the_database,
            goods_are_kept_per_merchant_with_their_images,
            the_goods_names_of_a_page_of_cards_come_in_one_call,
            cards_are_linked_to_goods_by_filter,
            a_pickup_uses_the_card_and_creates_one_order,
            pending_orders_list_soonest_due_first_and_count_the_overdue,
            a_refusal_names_its_reason_and_the_card_only_after_a_right_password,
            cancelling_an_order_makes_the_card_usable_again,
            shipping_is_all_or_nothing,
            failed_attempts_are_counted_in_a_window,
            fifty_simultaneous_pickups_of_one_card_create_one_order,
            pickup_refusals_count_against_the_limit_whatever_the_reason,
            pickup_checks_follow_the_card_and_the_attempt_limits,
            a_pickup_follows_the_channel_goods_consignee_and_date_rules,
            pickup_settings_default_until_saved_and_round_trip,
            offline_codes_redeem_once_into_the_balance,
            a_redeemed_codes_template_name_is_found_for_the_statement,
            wrong_codes_count_against_the_attempt_limit,
            expired_and_deleted_codes_are_refused,
            code_refusals_count_against_the_limit_whatever_the_reason,
            spends_refunds_and_adjustments_keep_the_balance_at_or_above_zero,
            changes_record_their_events_in_their_own_transaction,
            balance_changes_and_redemptions_record_their_events,
            simultaneous_redemptions_each_record_their_events,
            events_fan_out_once_to_the_endpoints_that_want_them,
            a_delivery_is_leased_retried_and_delivered_once,
            concurrent_claims_never_take_one_delivery_twice,
            failing_endpoints_are_disabled_and_audited,
            rotation_keeps_the_previous_secret_for_its_grace_period,
            idempotency_keys_replay_the_first_outcome,
            one_hundred_concurrent_replays_have_one_effect,
            reused_nonces_are_refused,
            signed_redemptions_keep_nonce_and_idempotency_rules,
            concurrent_signed_redemptions_credit_each_code_once,
            one_thousand_concurrent_redemptions_of_one_code_credit_once,
            the_overspend_race_never_goes_below_zero,
            mall_orders_issue_codes_once,
            a_sale_takes_unsold_cards_once_per_order_with_their_passwords,
            a_refund_deactivates_the_unused_cards_which_are_never_sold_again,
            concurrent_sales_take_each_card_once,
            sms_settings_are_saved_with_the_secret_sealed_and_kept,
            pickup_orders_plan_texts_by_the_switches,
            texts_are_leased_to_one_sender_and_retried_after_their_delay,
            orders_to_deliver_plan_erp_pushes_when_the_switch_is_on,
            waybill_settings_are_saved_with_their_secrets_sealed_and_kept,
            an_order_gets_one_waybill_however_often_it_is_asked,
            api_keys_allow_two_active_at_once,
            an_api_key_secret_is_sealed_to_its_key_and_opens_again,
            customers_sign_in_by_link_or_phone_with_sessions,
            random_ledger_operations_keep_every_invariant,
            coupon_stock_and_claim_limits_hold_and_programs_follow_their_states,
            one_thousand_concurrent_claims_of_a_hundred_stock_take_exactly_one_hundred,
            one_customer_racing_fifty_claims_of_a_limit_one_program_gets_one,
            fifty_concurrent_verifications_of_one_coupon_verify_it_once,
            a_holders_use_limit_holds_when_their_coupons_are_verified_at_once,
            validity_modes_reach_the_coupons_and_widen_with_their_program,
            verification_checks_the_location_the_verifier_and_the_threshold,
            undo_keeps_its_window_and_reconciliation_counts_it,
            a_hard_end_and_a_fixed_range_bound_every_claim,
            rotating_codes_find_the_coupon_and_the_counter_refuses_the_fixed_one,
            a_gift_moves_the_coupon_to_the_friend_once,
            mall_order_lines_issue_coupons_once,
            locations_and_verifier_bindings_stay_within_their_merchant,
            coupons_past_their_validity_are_announced_once,
            a_program_counts_its_verified_and_expired_coupons_through_undo,
            verifications_at_once_record_what_one_at_a_time_records,
            a_typed_code_is_verified_under_its_readers_throttle,
            a_phone_sent_coupons_before_signing_up_is_taken_over_once,
            a_program_keeps_the_logo_uploaded_for_it,
        );
    };
    (@each $make_store:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store = $make_store.await;
                $crate::$name(store.as_ref()).await;
            }
        )*
    };
}
