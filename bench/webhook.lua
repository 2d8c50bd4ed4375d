-- The floor of bench/webhooks.sh: the same POST kaquan sends, straight to
-- the receiver (no webhook-id, so the receiver does not count it).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["webhook-timestamp"] = "1700000000"
wrk.headers["webhook-signature"] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
wrk.body = os.getenv("BODY")
