-- What a chargeback takes from the balance, and what a won one gives back, are ledger
-- payments of their own kinds (keyed by the dispute's id).
ALTER TABLE payments DROP CONSTRAINT payments_kind_check;
ALTER TABLE payments ADD CONSTRAINT payments_kind_check
    CHECK (kind IN ('charge', 'authorization', 'refund', 'transfer', 'release', 'platform_fee',
                     'transfer_reversal', 'dispute_withdrawal', 'dispute_reinstatement'));
