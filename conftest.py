"""
Collection rules for the whole tree (src doctests, tests, docs).
"""

from __future__ import annotations

import importlib.util


# PostgresStorage's modules import psycopg, an optional extra: without it, their doctests
# cannot be imported, and the PostgreSQL tests skip themselves with the reason.
collect_ignore_glob = (
    []
    if importlib.util.find_spec("psycopg") and importlib.util.find_spec("psycopg_pool")
    else ["src/pendo_webhooks/storage/_postgres*.py"]
)
