-- Migration 38: the schema kept distributable by merchant (deploy/SCALING.md).
-- Every row of a merchant table names its merchant, every primary and
-- unique key of one includes merchant_id, and every foreign key between two
-- of them does too, so a sharding layer (Citus) can place each merchant's
-- rows together on one node and check every key there. Installation-wide
-- tables (merchants, operators, login_links, key_ring, and the sign-in
-- directory staff, roles, sessions, api_keys, api_nonces, which are read
-- before the merchant is known) keep their own keys; the store-postgres
-- test `schema_is_distributable_by_merchant` reads the catalog and holds
-- every table to this. merchant_id goes last in each key so every lookup
-- by the key's leading columns keeps its index.
--
-- Not expand-only: the keys change under older nodes (see deploy/README.md,
-- "Upgrading to migration 38").

-- 1. Rows that named their merchant only through a parent now name it.
ALTER TABLE card_goods ADD COLUMN merchant_id BIGINT;
UPDATE card_goods SET merchant_id = c.merchant_id FROM cards c WHERE c.id = card_goods.card_id;
ALTER TABLE coupon_holdings ADD COLUMN merchant_id BIGINT;
UPDATE coupon_holdings SET merchant_id = p.merchant_id FROM coupon_programs p WHERE p.id = coupon_holdings.program_id;
ALTER TABLE coupon_stock ADD COLUMN merchant_id BIGINT;
UPDATE coupon_stock SET merchant_id = p.merchant_id FROM coupon_programs p WHERE p.id = coupon_stock.program_id;
ALTER TABLE credit_postings ADD COLUMN merchant_id BIGINT;
UPDATE credit_postings SET merchant_id = t.merchant_id FROM credit_transactions t WHERE t.id = credit_postings.transaction_id;
ALTER TABLE ledger_postings ADD COLUMN merchant_id BIGINT;
UPDATE ledger_postings SET merchant_id = t.merchant_id FROM ledger_transactions t WHERE t.id = ledger_postings.transaction_id;
ALTER TABLE member_expiry_notices ADD COLUMN merchant_id BIGINT;
UPDATE member_expiry_notices SET merchant_id = m.merchant_id FROM members m WHERE m.id = member_expiry_notices.member_id;
ALTER TABLE webhook_attempts ADD COLUMN merchant_id BIGINT;
UPDATE webhook_attempts SET merchant_id = d.merchant_id FROM webhook_deliveries d WHERE d.id = webhook_attempts.delivery_id;
ALTER TABLE staff_locations ADD COLUMN merchant_id BIGINT;
UPDATE staff_locations SET merchant_id = l.merchant_id FROM locations l WHERE l.id = staff_locations.location_id;
ALTER TABLE card_goods ALTER COLUMN merchant_id SET NOT NULL;
ALTER TABLE coupon_holdings ALTER COLUMN merchant_id SET NOT NULL;
ALTER TABLE coupon_stock ALTER COLUMN merchant_id SET NOT NULL;
ALTER TABLE credit_postings ALTER COLUMN merchant_id SET NOT NULL;
ALTER TABLE ledger_postings ALTER COLUMN merchant_id SET NOT NULL;
ALTER TABLE member_expiry_notices ALTER COLUMN merchant_id SET NOT NULL;
ALTER TABLE webhook_attempts ALTER COLUMN merchant_id SET NOT NULL;
ALTER TABLE staff_locations ALTER COLUMN merchant_id SET NOT NULL;

-- (No key to merchants itself: its one row would be locked FOR KEY SHARE by
-- every posting of a shop, migration 27; each parent's key names it.)

-- 2. Foreign keys between merchant tables go while their keys change.
ALTER TABLE card_goods DROP CONSTRAINT card_goods_card_id_fkey;
ALTER TABLE card_goods DROP CONSTRAINT card_goods_goods_id_fkey;
ALTER TABLE card_sales DROP CONSTRAINT card_sales_batch_id_fkey;
ALTER TABLE cards DROP CONSTRAINT cards_batch_id_fkey;
ALTER TABLE cards DROP CONSTRAINT cards_distributor_id_fkey;
ALTER TABLE cards DROP CONSTRAINT cards_sale_id_fkey;
ALTER TABLE codes DROP CONSTRAINT codes_customer_id_fkey;
ALTER TABLE codes DROP CONSTRAINT codes_mall_order_id_fkey;
ALTER TABLE codes DROP CONSTRAINT codes_template_id_fkey;
ALTER TABLE coupon_covers DROP CONSTRAINT coupon_covers_program_id_fkey;
ALTER TABLE coupon_holdings DROP CONSTRAINT coupon_holdings_customer_id_fkey;
ALTER TABLE coupon_holdings DROP CONSTRAINT coupon_holdings_program_id_fkey;
ALTER TABLE coupon_issues DROP CONSTRAINT coupon_issues_program_id_fkey;
ALTER TABLE coupon_logos DROP CONSTRAINT coupon_logos_program_id_fkey;
ALTER TABLE coupon_programs DROP CONSTRAINT coupon_programs_give_program_id_fkey;
ALTER TABLE coupon_stock DROP CONSTRAINT coupon_stock_program_id_fkey;
ALTER TABLE coupon_stock_purchases DROP CONSTRAINT coupon_stock_purchases_program_id_fkey;
ALTER TABLE coupon_verifications DROP CONSTRAINT coupon_verifications_coupon_id_fkey;
ALTER TABLE coupon_verifications DROP CONSTRAINT coupon_verifications_customer_id_fkey;
ALTER TABLE coupon_verifications DROP CONSTRAINT coupon_verifications_given_coupon_id_fkey;
ALTER TABLE coupons DROP CONSTRAINT coupons_customer_id_fkey;
ALTER TABLE coupons DROP CONSTRAINT coupons_issue_id_fkey;
ALTER TABLE coupons DROP CONSTRAINT coupons_program_id_fkey;
ALTER TABLE coupons DROP CONSTRAINT coupons_shared_by_fkey;
ALTER TABLE credit_postings DROP CONSTRAINT credit_postings_account_id_fkey;
ALTER TABLE credit_postings DROP CONSTRAINT credit_postings_transaction_id_fkey;
ALTER TABLE credit_transactions DROP CONSTRAINT credit_transactions_program_id_fkey;
ALTER TABLE credit_transactions DROP CONSTRAINT credit_transactions_purchase_id_fkey;
ALTER TABLE credit_transactions DROP CONSTRAINT credit_transactions_stock_purchase_id_fkey;
ALTER TABLE customer_sessions DROP CONSTRAINT customer_sessions_customer_id_fkey;
ALTER TABLE deleted_cards DROP CONSTRAINT deleted_cards_audit_id_fkey;
ALTER TABLE ecard_deliveries DROP CONSTRAINT ecard_deliveries_line_ref_fkey;
ALTER TABLE ecard_deliveries DROP CONSTRAINT ecard_deliveries_order_ref_fkey;
ALTER TABLE ecard_deliveries DROP CONSTRAINT ecard_deliveries_stock_id_fkey;
ALTER TABLE ecard_listings DROP CONSTRAINT ecard_listings_product_id_fkey;
ALTER TABLE ecard_order_lines DROP CONSTRAINT ecard_order_lines_order_ref_fkey;
ALTER TABLE ecard_order_lines DROP CONSTRAINT ecard_order_lines_product_id_fkey;
ALTER TABLE ecard_proofs DROP CONSTRAINT ecard_proofs_delivery_id_fkey;
ALTER TABLE ecard_stock_imports DROP CONSTRAINT ecard_stock_imports_product_id_fkey;
ALTER TABLE giftcard_products DROP CONSTRAINT giftcard_products_template_id_fkey;
ALTER TABLE goods_images DROP CONSTRAINT goods_images_goods_id_fkey;
ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_customer_id_fkey;
ALTER TABLE ledger_postings DROP CONSTRAINT ledger_postings_transaction_id_fkey;
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_customer_id_fkey;
ALTER TABLE mall_orders DROP CONSTRAINT mall_orders_customer_id_fkey;
ALTER TABLE mall_orders DROP CONSTRAINT mall_orders_product_id_fkey;
ALTER TABLE member_card_pictures DROP CONSTRAINT member_card_pictures_program_id_fkey;
ALTER TABLE member_expiry_notices DROP CONSTRAINT member_expiry_notices_member_id_fkey;
ALTER TABLE member_operations DROP CONSTRAINT member_operations_payment_id_fkey;
ALTER TABLE member_programs DROP CONSTRAINT member_programs_notify_coupon_program_id_fkey;
ALTER TABLE members DROP CONSTRAINT members_customer_id_fkey;
ALTER TABLE members DROP CONSTRAINT members_program_id_fkey;
ALTER TABLE orders DROP CONSTRAINT orders_goods_id_fkey;
ALTER TABLE pay_gift_rules DROP CONSTRAINT pay_gift_rules_program_id_fkey;
ALTER TABLE pay_gift_sends DROP CONSTRAINT pay_gift_sends_rule_id_fkey;
ALTER TABLE spend_refunds DROP CONSTRAINT spend_refunds_transaction_id_fkey;
ALTER TABLE staff_locations DROP CONSTRAINT staff_locations_location_id_fkey;
ALTER TABLE webhook_attempts DROP CONSTRAINT webhook_attempts_delivery_id_fkey;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_endpoint_id_fkey;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_event_id_fkey;
ALTER TABLE member_operations DROP CONSTRAINT member_operations_member_merchant;
DROP INDEX members_id_merchant;

-- 3. Every key of a merchant table includes merchant_id.
ALTER TABLE approval_requests DROP CONSTRAINT approval_requests_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE batches DROP CONSTRAINT batches_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE card_goods DROP CONSTRAINT card_goods_pkey, ADD PRIMARY KEY (card_id, goods_id, merchant_id);
ALTER TABLE card_sales DROP CONSTRAINT card_sales_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE cards DROP CONSTRAINT cards_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE code_templates DROP CONSTRAINT code_templates_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE codes DROP CONSTRAINT codes_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE coupon_covers DROP CONSTRAINT coupon_covers_pkey, ADD PRIMARY KEY (program_id, merchant_id);
ALTER TABLE coupon_holdings DROP CONSTRAINT coupon_holdings_pkey, ADD PRIMARY KEY (program_id, customer_id, merchant_id);
ALTER TABLE coupon_issues DROP CONSTRAINT coupon_issues_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE coupon_logos DROP CONSTRAINT coupon_logos_pkey, ADD PRIMARY KEY (program_id, merchant_id);
ALTER TABLE coupon_programs DROP CONSTRAINT coupon_programs_claim_token_key, ADD CONSTRAINT coupon_programs_claim_token_key UNIQUE (claim_token, merchant_id);
ALTER TABLE coupon_programs DROP CONSTRAINT coupon_programs_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE coupon_stock DROP CONSTRAINT coupon_stock_pkey, ADD PRIMARY KEY (program_id, merchant_id);
ALTER TABLE coupon_stock_purchases DROP CONSTRAINT coupon_stock_purchases_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE coupon_verifications DROP CONSTRAINT coupon_verifications_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE coupons DROP CONSTRAINT coupons_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE credit_accounts DROP CONSTRAINT credit_accounts_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE credit_postings DROP CONSTRAINT credit_postings_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE credit_purchases DROP CONSTRAINT credit_purchases_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE credit_transactions DROP CONSTRAINT credit_transactions_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE customer_sessions DROP CONSTRAINT customer_sessions_pkey, ADD PRIMARY KEY (token_hash, merchant_id);
ALTER TABLE customers DROP CONSTRAINT customers_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE distributors DROP CONSTRAINT distributors_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE ecard_deliveries DROP CONSTRAINT ecard_deliveries_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE ecard_listings DROP CONSTRAINT ecard_listings_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE ecard_order_lines DROP CONSTRAINT ecard_order_lines_order_ref_line_id_key, ADD CONSTRAINT ecard_order_lines_order_ref_line_id_key UNIQUE (order_ref, line_id, merchant_id);
ALTER TABLE ecard_order_lines DROP CONSTRAINT ecard_order_lines_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE ecard_orders DROP CONSTRAINT ecard_orders_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE ecard_orders DROP CONSTRAINT ecard_orders_token_hash_key, ADD CONSTRAINT ecard_orders_token_hash_key UNIQUE (token_hash, merchant_id);
ALTER TABLE ecard_products DROP CONSTRAINT ecard_products_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE ecard_proofs DROP CONSTRAINT ecard_proofs_pkey, ADD PRIMARY KEY (delivery_id, merchant_id);
ALTER TABLE ecard_stock DROP CONSTRAINT ecard_stock_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE ecard_stock_imports DROP CONSTRAINT ecard_stock_imports_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE erp_pushes DROP CONSTRAINT erp_pushes_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE events DROP CONSTRAINT events_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE giftcard_products DROP CONSTRAINT giftcard_products_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE goods DROP CONSTRAINT goods_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE goods_images DROP CONSTRAINT goods_images_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE ledger_postings DROP CONSTRAINT ledger_postings_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE locations DROP CONSTRAINT locations_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE mall_orders DROP CONSTRAINT mall_orders_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE member_card_pictures DROP CONSTRAINT member_card_pictures_pkey, ADD PRIMARY KEY (program_id, picture, merchant_id);
ALTER TABLE member_expiry_notices DROP CONSTRAINT member_expiry_notices_pkey, ADD PRIMARY KEY (member_id, cutoff, merchant_id);
ALTER TABLE member_operations DROP CONSTRAINT member_operations_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE member_programs DROP CONSTRAINT member_programs_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE members DROP CONSTRAINT members_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE members DROP CONSTRAINT members_program_id_customer_id_key, ADD CONSTRAINT members_program_id_customer_id_key UNIQUE (program_id, customer_id, merchant_id);
ALTER TABLE orders DROP CONSTRAINT orders_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE pay_gift_rules DROP CONSTRAINT pay_gift_rules_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE pay_gift_sends DROP CONSTRAINT pay_gift_sends_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE print_shops DROP CONSTRAINT print_shops_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE sms_messages DROP CONSTRAINT sms_messages_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE spend_refunds DROP CONSTRAINT spend_refunds_pkey, ADD PRIMARY KEY (transaction_id, merchant_id);
ALTER TABLE staff_locations DROP CONSTRAINT staff_locations_pkey, ADD PRIMARY KEY (staff_id, location_id, merchant_id);
ALTER TABLE webhook_attempts DROP CONSTRAINT webhook_attempts_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE webhook_endpoints DROP CONSTRAINT webhook_endpoints_pkey, ADD PRIMARY KEY (id, merchant_id);
ALTER TABLE card_goods ADD CONSTRAINT card_goods_card_id_fkey FOREIGN KEY (card_id, merchant_id) REFERENCES cards (id, merchant_id) ON DELETE CASCADE;
ALTER TABLE card_goods ADD CONSTRAINT card_goods_goods_id_fkey FOREIGN KEY (goods_id, merchant_id) REFERENCES goods (id, merchant_id);
ALTER TABLE card_sales ADD CONSTRAINT card_sales_batch_id_fkey FOREIGN KEY (batch_id, merchant_id) REFERENCES batches (id, merchant_id);
ALTER TABLE cards ADD CONSTRAINT cards_batch_id_fkey FOREIGN KEY (batch_id, merchant_id) REFERENCES batches (id, merchant_id);
DROP INDEX coupons_gift;
CREATE UNIQUE INDEX coupons_gift ON coupons (gift_token_hash, merchant_id);
DROP INDEX credit_transactions_purchase;
CREATE UNIQUE INDEX credit_transactions_purchase ON credit_transactions (purchase_id, merchant_id);
DROP INDEX ecard_deliveries_live_stock;
CREATE UNIQUE INDEX ecard_deliveries_live_stock ON ecard_deliveries (stock_id, merchant_id) WHERE refunded_at IS NULL;
DROP INDEX ledger_accounts_customer;
CREATE UNIQUE INDEX ledger_accounts_customer ON ledger_accounts (customer_id, asset, merchant_id);
DROP INDEX orders_one_live_per_card;
CREATE UNIQUE INDEX orders_one_live_per_card ON orders (card_id, merchant_id) WHERE status <> 'cancelled';

-- 4. The foreign keys again, each with merchant_id: a row can only point at
-- a row of its own merchant.
ALTER TABLE cards ADD CONSTRAINT cards_distributor_id_fkey FOREIGN KEY (distributor_id, merchant_id) REFERENCES distributors (id, merchant_id);
ALTER TABLE cards ADD CONSTRAINT cards_sale_id_fkey FOREIGN KEY (sale_id, merchant_id) REFERENCES card_sales (id, merchant_id);
ALTER TABLE codes ADD CONSTRAINT codes_customer_id_fkey FOREIGN KEY (customer_id, merchant_id) REFERENCES customers (id, merchant_id);
ALTER TABLE codes ADD CONSTRAINT codes_mall_order_id_fkey FOREIGN KEY (mall_order_id, merchant_id) REFERENCES mall_orders (id, merchant_id);
ALTER TABLE codes ADD CONSTRAINT codes_template_id_fkey FOREIGN KEY (template_id, merchant_id) REFERENCES code_templates (id, merchant_id);
ALTER TABLE coupon_covers ADD CONSTRAINT coupon_covers_program_id_fkey FOREIGN KEY (program_id, merchant_id) REFERENCES coupon_programs (id, merchant_id);
ALTER TABLE coupon_holdings ADD CONSTRAINT coupon_holdings_customer_id_fkey FOREIGN KEY (customer_id, merchant_id) REFERENCES customers (id, merchant_id);
ALTER TABLE coupon_holdings ADD CONSTRAINT coupon_holdings_program_id_fkey FOREIGN KEY (program_id, merchant_id) REFERENCES coupon_programs (id, merchant_id);
ALTER TABLE coupon_issues ADD CONSTRAINT coupon_issues_program_id_fkey FOREIGN KEY (program_id, merchant_id) REFERENCES coupon_programs (id, merchant_id);
ALTER TABLE coupon_logos ADD CONSTRAINT coupon_logos_program_id_fkey FOREIGN KEY (program_id, merchant_id) REFERENCES coupon_programs (id, merchant_id);
ALTER TABLE coupon_programs ADD CONSTRAINT coupon_programs_give_program_id_fkey FOREIGN KEY (give_program_id, merchant_id) REFERENCES coupon_programs (id, merchant_id);
ALTER TABLE coupon_stock ADD CONSTRAINT coupon_stock_program_id_fkey FOREIGN KEY (program_id, merchant_id) REFERENCES coupon_programs (id, merchant_id);
ALTER TABLE coupon_stock_purchases ADD CONSTRAINT coupon_stock_purchases_program_id_fkey FOREIGN KEY (program_id, merchant_id) REFERENCES coupon_programs (id, merchant_id);
ALTER TABLE coupon_verifications ADD CONSTRAINT coupon_verifications_coupon_id_fkey FOREIGN KEY (coupon_id, merchant_id) REFERENCES coupons (id, merchant_id);
ALTER TABLE coupon_verifications ADD CONSTRAINT coupon_verifications_customer_id_fkey FOREIGN KEY (customer_id, merchant_id) REFERENCES customers (id, merchant_id);
ALTER TABLE coupon_verifications ADD CONSTRAINT coupon_verifications_given_coupon_id_fkey FOREIGN KEY (given_coupon_id, merchant_id) REFERENCES coupons (id, merchant_id);
ALTER TABLE coupons ADD CONSTRAINT coupons_customer_id_fkey FOREIGN KEY (customer_id, merchant_id) REFERENCES customers (id, merchant_id);
ALTER TABLE coupons ADD CONSTRAINT coupons_issue_id_fkey FOREIGN KEY (issue_id, merchant_id) REFERENCES coupon_issues (id, merchant_id);
ALTER TABLE coupons ADD CONSTRAINT coupons_program_id_fkey FOREIGN KEY (program_id, merchant_id) REFERENCES coupon_programs (id, merchant_id);
ALTER TABLE coupons ADD CONSTRAINT coupons_shared_by_fkey FOREIGN KEY (shared_by, merchant_id) REFERENCES customers (id, merchant_id);
ALTER TABLE credit_postings ADD CONSTRAINT credit_postings_account_id_fkey FOREIGN KEY (account_id, merchant_id) REFERENCES credit_accounts (id, merchant_id);
ALTER TABLE credit_postings ADD CONSTRAINT credit_postings_transaction_id_fkey FOREIGN KEY (transaction_id, merchant_id) REFERENCES credit_transactions (id, merchant_id);
ALTER TABLE credit_transactions ADD CONSTRAINT credit_transactions_program_id_fkey FOREIGN KEY (program_id, merchant_id) REFERENCES coupon_programs (id, merchant_id);
ALTER TABLE credit_transactions ADD CONSTRAINT credit_transactions_purchase_id_fkey FOREIGN KEY (purchase_id, merchant_id) REFERENCES credit_purchases (id, merchant_id);
ALTER TABLE credit_transactions ADD CONSTRAINT credit_transactions_stock_purchase_id_fkey FOREIGN KEY (stock_purchase_id, merchant_id) REFERENCES coupon_stock_purchases (id, merchant_id);
ALTER TABLE customer_sessions ADD CONSTRAINT customer_sessions_customer_id_fkey FOREIGN KEY (customer_id, merchant_id) REFERENCES customers (id, merchant_id);
ALTER TABLE deleted_cards ADD CONSTRAINT deleted_cards_audit_id_fkey FOREIGN KEY (audit_id, merchant_id) REFERENCES audit_log (id, merchant_id);
ALTER TABLE ecard_deliveries ADD CONSTRAINT ecard_deliveries_line_ref_fkey FOREIGN KEY (line_ref, merchant_id) REFERENCES ecard_order_lines (id, merchant_id);
ALTER TABLE ecard_deliveries ADD CONSTRAINT ecard_deliveries_order_ref_fkey FOREIGN KEY (order_ref, merchant_id) REFERENCES ecard_orders (id, merchant_id);
ALTER TABLE ecard_deliveries ADD CONSTRAINT ecard_deliveries_stock_id_fkey FOREIGN KEY (stock_id, merchant_id) REFERENCES ecard_stock (id, merchant_id);
ALTER TABLE ecard_listings ADD CONSTRAINT ecard_listings_product_id_fkey FOREIGN KEY (product_id, merchant_id) REFERENCES ecard_products (id, merchant_id);
ALTER TABLE ecard_order_lines ADD CONSTRAINT ecard_order_lines_order_ref_fkey FOREIGN KEY (order_ref, merchant_id) REFERENCES ecard_orders (id, merchant_id);
ALTER TABLE ecard_order_lines ADD CONSTRAINT ecard_order_lines_product_id_fkey FOREIGN KEY (product_id, merchant_id) REFERENCES ecard_products (id, merchant_id);
ALTER TABLE ecard_proofs ADD CONSTRAINT ecard_proofs_delivery_id_fkey FOREIGN KEY (delivery_id, merchant_id) REFERENCES ecard_deliveries (id, merchant_id);
ALTER TABLE ecard_stock_imports ADD CONSTRAINT ecard_stock_imports_product_id_fkey FOREIGN KEY (product_id, merchant_id) REFERENCES ecard_products (id, merchant_id);
ALTER TABLE giftcard_products ADD CONSTRAINT giftcard_products_template_id_fkey FOREIGN KEY (template_id, merchant_id) REFERENCES code_templates (id, merchant_id);
ALTER TABLE goods_images ADD CONSTRAINT goods_images_goods_id_fkey FOREIGN KEY (goods_id, merchant_id) REFERENCES goods (id, merchant_id);
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_customer_id_fkey FOREIGN KEY (customer_id, merchant_id) REFERENCES customers (id, merchant_id);
ALTER TABLE ledger_postings ADD CONSTRAINT ledger_postings_transaction_id_fkey FOREIGN KEY (transaction_id, merchant_id) REFERENCES ledger_transactions (id, merchant_id);
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_customer_id_fkey FOREIGN KEY (customer_id, merchant_id) REFERENCES customers (id, merchant_id);
ALTER TABLE mall_orders ADD CONSTRAINT mall_orders_customer_id_fkey FOREIGN KEY (customer_id, merchant_id) REFERENCES customers (id, merchant_id);
ALTER TABLE mall_orders ADD CONSTRAINT mall_orders_product_id_fkey FOREIGN KEY (product_id, merchant_id) REFERENCES giftcard_products (id, merchant_id);
ALTER TABLE member_card_pictures ADD CONSTRAINT member_card_pictures_program_id_fkey FOREIGN KEY (program_id, merchant_id) REFERENCES member_programs (id, merchant_id);
ALTER TABLE member_expiry_notices ADD CONSTRAINT member_expiry_notices_member_id_fkey FOREIGN KEY (member_id, merchant_id) REFERENCES members (id, merchant_id);
ALTER TABLE member_operations ADD CONSTRAINT member_operations_payment_id_fkey FOREIGN KEY (payment_id, merchant_id) REFERENCES member_operations (id, merchant_id);
ALTER TABLE member_programs ADD CONSTRAINT member_programs_notify_coupon_program_id_fkey FOREIGN KEY (notify_coupon_program_id, merchant_id) REFERENCES coupon_programs (id, merchant_id);
ALTER TABLE members ADD CONSTRAINT members_customer_id_fkey FOREIGN KEY (customer_id, merchant_id) REFERENCES customers (id, merchant_id);
ALTER TABLE members ADD CONSTRAINT members_program_id_fkey FOREIGN KEY (program_id, merchant_id) REFERENCES member_programs (id, merchant_id);
ALTER TABLE orders ADD CONSTRAINT orders_goods_id_fkey FOREIGN KEY (goods_id, merchant_id) REFERENCES goods (id, merchant_id);
ALTER TABLE pay_gift_rules ADD CONSTRAINT pay_gift_rules_program_id_fkey FOREIGN KEY (program_id, merchant_id) REFERENCES member_programs (id, merchant_id);
ALTER TABLE pay_gift_sends ADD CONSTRAINT pay_gift_sends_rule_id_fkey FOREIGN KEY (rule_id, merchant_id) REFERENCES pay_gift_rules (id, merchant_id);
ALTER TABLE spend_refunds ADD CONSTRAINT spend_refunds_transaction_id_fkey FOREIGN KEY (transaction_id, merchant_id) REFERENCES ledger_transactions (id, merchant_id);
ALTER TABLE staff_locations ADD CONSTRAINT staff_locations_location_id_fkey FOREIGN KEY (location_id, merchant_id) REFERENCES locations (id, merchant_id);
ALTER TABLE webhook_attempts ADD CONSTRAINT webhook_attempts_delivery_id_fkey FOREIGN KEY (delivery_id, merchant_id) REFERENCES webhook_deliveries (id, merchant_id);
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_endpoint_id_fkey FOREIGN KEY (endpoint_id, merchant_id) REFERENCES webhook_endpoints (id, merchant_id);
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_event_id_fkey FOREIGN KEY (event_id, merchant_id) REFERENCES events (id, merchant_id);
ALTER TABLE member_operations ADD CONSTRAINT member_operations_member_merchant FOREIGN KEY (member_id, merchant_id) REFERENCES members (id, merchant_id);
