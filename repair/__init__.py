"""`dealflow repair`: reset a deal whose history today's DealWorkflow cannot replay."""
