"""
The records every layer stores: webhooks, their audit log, exclusions, deliveries
and their outcomes.

Strictly private; each name is exported by a public module.
"""
