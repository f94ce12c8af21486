"""The `/v1/` routes, one module per Stripe resource: each says which parameters its calls take
and which operation of the sandbox answers them."""
