"""The `workflow.patched` ids of the deal's releases, oldest first. `DealContext` asks for them
when the deal is built; each later id stands for the ones before it (`LEDGER_PER_STEP`, the
oldest, lives with the journal it changes).
"""

from __future__ import annotations

#: `workflow.patched` id: payments count only when Stripe's copy names this deal and milestone;
#: refund and dispute events are re-read from Stripe; open Checkout Sessions are polled on a backoff.
#: Asked where each of those happens, as the deal first reaches it.
STRIPE_HINTS_VERIFIED = "stripe-hints-verified"
#: `workflow.patched` id: actions whose text breaks its rule (NUL, lone surrogates, controls) are
#: refused here too, for senders that bypass the bridge (Temporal UI, CLI). Decided once, when the
#: deal is built, because validators may not call `workflow.patched`.
REFUSE_BAD_TEXT = "refuse-bad-text"
#: `workflow.patched` id: every step issues its own commands, in that step. Each coroutine writes
#: only its own ledger rows, and work started beside the deal (mails, hand-offs, receipts) starts
#: its activity in the step that asks for it, not when its task first runs. sdk-core may hand one
#: workflow task's jobs to the workflow in one activation on the first run and in two on replay
#: (after a worker crash, when a status query made a fresh worker apply new events early); with
#: each job's commands issued in its own step, both give the same commands in the same order.
OWN_STEPS = "steps-issue-their-own-commands"
#: `workflow.patched` id of this release's workflow changes; each patch costs every deal a marker
#: and a search-attribute upsert, so one id stands for all of a release's changes (and for the
#: four patches above). A deal that costs what its work costs: the search attributes and the
#: read-model row follow the deal once per step instead of once per change, a step's ledger rows
#: go out when it next waits for time or a person (not before each activity), a payment is
#: confirmed by one read of its PaymentIntent, with no expiry call for the Checkout Session it
#: completed. And money of a released milestone that goes back to the client takes the vendor's
#: share back from their transfer (`Release.follow_money_back`).
LEAN_STEPS = "lean-steps"
#: `workflow.patched` id of the release after LEAN_STEPS (and standing for it): a dispute is
#: answered with the evidence the deal holds, before Stripe's deadline, and its funds follow
#: `funds_withdrawn` / `funds_reinstated`; a milestone paid by bank debit is processing until
#: Stripe says the debit succeeded or failed.
DISPUTES_AND_DEBITS = "disputes-answered-bank-debits"
#: `workflow.patched` id of the release after DISPUTES_AND_DEBITS (and standing for it): deal terms
#: as businesses write them and every party with its own key (issue 13), and a long deal that
#: continues as new at its seams when Temporal suggests it, carrying the whole deal
#: (`continuation.py`). Each change it guards reads `ctx.deal_terms`.
#: Operators by name: an operator's action is recorded with their name in the timeline and ledger.
#: Above `policy.access_code_above` the client signs with an access code mailed on its own.
#: Terms: a deposit skips work and review and is released on funding or with the first
#: milestone; late fees are added to an unpaid milestone (a new payment link for the new amount);
#: payment reminders follow the policy's cadence around the payment's due date.
#: Vendors: before a Connect transfer the vendor's account is read, and a payout to one that
#: cannot receive transfers yet waits (timeline entry, a mail to the vendor, rechecked every
#: `payout_recheck`).
#: Countersignature: the spec's `signing_order` may have the vendor sign too, first or second;
#: work starts once both signed, and a signing certificate is issued and mailed to both.
#: Change orders: amendments re-price, re-date, add or remove milestones not yet funded and
#: change the SOW, as numbered versions the client accepts (signs) or declines.
DEAL_TERMS = "deal-terms-and-parties"
#: `workflow.patched` id of the release after DEAL_TERMS: change orders as signed. A milestone
#: awaiting funding that a change order re-titles (its amount the same) gets a new payment link,
#: so the client pays under the title they signed (before, the link kept the old title); in a
#: countersigned deal, an accepted change order has a signing certificate of its own, kept in the
#: ledger and attached to the answer both parties get (before, only the first signing had one).
#: Asked only where a change order meets those cases, so no other deal pays its marker.
CHANGE_ORDERS_AMENDED = "change-orders-as-signed"
#: `workflow.patched` id: the client's access code is made by the worker from the secret key and
#: mailed by `send_access_code`, the deal keeping the digest it returns; before it, the code came
#: from the workflow's seeded random, which anyone who knows the run id could draw again. Asked
#: where a deal first sends a code, so only deals with an access code pay its marker.
ACCESS_CODES_FROM_WORKER = "access-codes-from-worker"
#: `workflow.patched` id: where Temporal suggests a deal continue as new while work beside it is
#: still in flight, the deal waits for that work at most `policy.continue_as_new_wait`, then goes
#: on (and continues at a later seam); work it gave up waiting for holds no later seam. Before it,
#: the seam waited for everything, so a dispute's evidence that Stripe kept refusing (retried until
#: its due date, days off) held the deal's main flow as long. Asked only at such a seam.
SEAMS_WAIT_BOUNDED = "seams-wait-a-bounded-time"
#: `workflow.patched` id of the release after DEAL_TERMS (and standing for it): a payment's hint
#: is confirmed by reading its PaymentIntent in the workflow task the hint woke (a local
#: activity), so what the payment changes (the ledger batch that shows it funded, the mails, the
#: review timer) goes out in that same task. Before it, the read was an activity of its own: one
#: more trip through the task queue and one more workflow task per payment, the slowest part of
#: a webhook's way to funded under load. Decided when the deal is built, like DEAL_TERMS.
PAYMENTS_READ_IN_TASK = "payments-read-in-the-task"
#: `workflow.patched` id of the release after PAYMENTS_READ_IN_TASK, standing for DEAL_TERMS (not
#: for the read in the task, which it retires): a payment's PaymentIntent is read by an activity
#: of its own again, its result an event in the history. A local activity's result is a marker
#: the task records when it completes, and sdk-core 1.35 does not always hand the result to the
#: workflow in the activation a replay does: a fresh worker after a crash recorded a read's
#: marker in one task and gave the workflow its result in the next, with the activities that
#: completed meanwhile, and a replay then departed from the history (chaos seed 21; the chaos
#: test of a clean-clone CI: a payment reminder cancelled before its recorded firing). An
#: activity's completion is an event, so no worker can place it differently on replay. Decided
#: when the deal is built, like DEAL_TERMS.
PAYMENTS_READ_RECORDED = "payments-read-recorded"
