"""Benchmarks: scripts that start their own stack and print figures (see README.md here).

    actions_per_deal   Temporal actions and history events per deal, against the least it needs
    deal_throughput    deals per second against a bare twin of the same history; CPU per deal
    payment_latency    pay and webhooks to funded, the bridge's webhook answer and ingest rate
    relay_throughput   stored Stripe events the relay signals per second

and what they share:

    stack      the stack `dealflow dev` runs, in a home of its own, its processes apart
    driver     deals from start to completed through the public interfaces, every step timed
    mail       the clients' mail, from the SMTP sink, by deal
    readmodel  when deals first show money collected, from the `deals` read model
    webhooks   Stripe webhooks caught from the sandbox and POSTed to the bridge when told
    history    a history's events, billable actions and workflow tasks
    minimum    the least actions a deal needs, by a documented model
    twin_plan  the bare twin's plan, derived from a real deal's history
    twin       the bare twin's workflow; twin_worker its worker process and driver
    cpu        CPU seconds of processes, from /proc
    figures    human lines and JSON lines; the options every benchmark has
    beside     a coroutine run beside a block
"""
