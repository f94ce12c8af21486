"""`dealflow chaos`: deals played through the public interfaces on a stack this run starts and
breaks itself, then checked end to end (end states, replay, money, forgeries, reconciliation).

    plan       what will be broken, and when: a pure function of the seed and the deal count
    stack      the stack with the worker, the bridge and Temporal as processes that can be killed
    forgery    forged Stripe webhooks, signed badly or well
    faults     carries out the plan while the deals play
    money      the sandbox's money log and the ledger, by deal
    checks     what must hold afterwards
    report     the table and the one summary line
    run        the command: all of the above in order
"""
