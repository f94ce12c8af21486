-- Platform fees kept back from payouts, and transfers taken back from vendors, are ledger
-- payments of their own kinds.
ALTER TABLE payments DROP CONSTRAINT payments_kind_check;
ALTER TABLE payments ADD CONSTRAINT payments_kind_check
    CHECK (kind IN ('charge', 'authorization', 'refund', 'transfer', 'release', 'platform_fee',
                     'transfer_reversal'));
