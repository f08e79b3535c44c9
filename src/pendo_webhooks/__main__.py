"""
``python -m pendo_webhooks``: the ``pendo-webhooks`` console script.
"""

from __future__ import annotations

from .cli import main


raise SystemExit(main())
