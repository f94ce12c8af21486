"""Messages that cross the workflow boundary: signal and update inputs, the status query, and the
inputs and results of every activity. One model per message, so each can evolve on its own.

    stages     where a deal and its milestones are
    actions    the human actions and their answer
    amendments  change orders: proposals, answers and the numbered SOW versions
    certificates  the signing certificate of a countersigned SOW
    connect    a vendor's Stripe Connect account, as a payout sees it
    payments   the Stripe event signal and the payment activities' messages
    disputes   the evidence that answers a chargeback
    status     the `status` query's answer
    summary    the `summary` query's answer: the little a poller needs
    notices    mails to the parties, work orders and artifact deliveries
    ledger     what the workflow hands the ledger
    receipts   receipts for released money

Every name a module lists in its `__all__` is importable from `dealflow.messages` itself.
"""

from dealflow.messages import (
    actions,
    amendments,
    certificates,
    connect,
    disputes,
    ledger,
    notices,
    payments,
    receipts,
    stages,
    status,
    summary,
)
from dealflow.messages.actions import *
from dealflow.messages.amendments import *
from dealflow.messages.certificates import *
from dealflow.messages.connect import *
from dealflow.messages.disputes import *
from dealflow.messages.ledger import *
from dealflow.messages.notices import *
from dealflow.messages.payments import *
from dealflow.messages.receipts import *
from dealflow.messages.stages import *
from dealflow.messages.status import *
from dealflow.messages.summary import *

__all__ = (
    actions.__all__
    + amendments.__all__
    + certificates.__all__
    + connect.__all__
    + disputes.__all__
    + ledger.__all__
    + notices.__all__
    + payments.__all__
    + receipts.__all__
    + stages.__all__
    + status.__all__
    + summary.__all__
)
