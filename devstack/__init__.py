"""`dealflow dev`: the whole stack on one machine, and the pieces the tests and the demo reuse.

    run        the command: the dev servers, the stack, the banner, Ctrl-C
    plan       what runs on which port, decided and checked before anything starts
    runtime    the file through which other commands join a running stack
    stack      Postgres pool, SMTP sink, Stripe sandbox, worker and bridge in one process
    temporal   the Temporal dev server as a child process
    postgres   embedded PostgreSQL under .dealflow/pg
    mailsink   the SMTP server that keeps every mail as a file
    logs       one prefixed log stream for every component
"""
