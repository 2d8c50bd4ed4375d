-- Ends a statement with an error of kaquan's own (SQLSTATE KQ001), so that a
-- statement of several guarded writes keeps all of them or none: the one
-- statement of a usual coupon verification calls it when the coupon was
-- taken but its holder's use count was at its limit, and the store then
-- takes the general way, which says so.
CREATE FUNCTION kaquan_abort(reason text) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'KQ001', MESSAGE = reason;
END
$$;
