"""`dealflow demo`: deals played end to end by simulated clients, vendors and operators.

    run        the command: the stack, the cast, the live table and the summary
    scenarios  what each simulated deal does, step by step
    actors     the client (a browser of the portal), the vendor and the operator
"""
