"""`dealflow dev`: the whole stack on one machine, and the pieces the tests and the demo reuse.

    run        the command: ports, secrets, the dev servers, the stack, the banner
    stack      Postgres pool, SMTP sink, Stripe sandbox, worker and bridge in one process
    temporal   the Temporal dev server as a child process
    postgres   embedded PostgreSQL under .dealflow/pg
    mailsink   the SMTP server that keeps every mail as a file
    logs       one prefixed log stream for every component
"""
