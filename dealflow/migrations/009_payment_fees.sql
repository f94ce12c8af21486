-- A charge's Stripe fee and net, read from its balance transaction, in the balance
-- transaction's currency (the account's settlement currency). NULL for other kinds of payment
-- and for charges recorded before fees were read.
ALTER TABLE payments ADD COLUMN fee bigint CHECK (fee >= 0);
ALTER TABLE payments ADD COLUMN net bigint;
ALTER TABLE payments ADD COLUMN fee_currency text;
ALTER TABLE payments ADD CONSTRAINT payments_fee_complete
    CHECK ((fee IS NULL) = (net IS NULL) AND (fee IS NULL) = (fee_currency IS NULL)
           AND (fee IS NULL OR kind = 'charge'));
