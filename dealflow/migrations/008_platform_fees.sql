-- Platform fees kept back from payouts are ledger payments of their own kind.
ALTER TABLE payments DROP CONSTRAINT payments_kind_check;
ALTER TABLE payments ADD CONSTRAINT payments_kind_check
    CHECK (kind IN ('charge', 'authorization', 'refund', 'transfer', 'release', 'platform_fee'));
