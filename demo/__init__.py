"""`dealflow demo`: deals played end to end by simulated clients, vendors and operators.

    run        the command: the stack, then every deal started and played to its end
    cast       who acts for a run, and how one deal is performed and checked
    tables     the live table while the deals play, and the summary at the end
    scenarios  what each simulated deal does, step by step
    actors     the client, the vendor and the operator
    browser    pages and forms, as the client's browser reads and submits them
    mailbox    the clients' inbox: the sink's mail files, read as they arrive
    http       one request sent patiently, and the error a failed step raises
"""
