"""
Throughput of the wire path: serialize + sign, and verify, against the obvious baselines.

Run: ``python benchmarks/bench_wire.py [--number N] [--repeat R]``. Prints figures only;
nothing here passes or fails. Each figure is the best of R timed loops of N calls
(``time.perf_counter``), as events per second and microseconds per event.

(a) ``to_wire(sample guideDisplayed)`` + both signatures (``signer_for(BOTH, [secret])``)
(b) ``json.dumps(same dict, separators=(",", ":"))`` + one ``hmac.new(...).hexdigest()``
(c) the reference ``standardwebhooks`` package's ``Webhook.sign()``
(d) our ``verify_standard``
(e) the reference ``Webhook.verify`` (with its default JSON parse, and without)
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import ssl
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook

from pendo_webhooks.events import to_wire, to_wire_dict
from pendo_webhooks.signing import (
    Secret,
    SignatureScheme,
    StandardSigner,
    signer_for,
    verify_standard,
)
from pendo_webhooks.testing import sample_event


SECRET_TEXT = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def best_of(func: Callable[[], object], number: int, repeat: int) -> float:
    """Return the best seconds per call over *repeat* loops of *number* calls."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            func()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def line(label: str, seconds: float) -> None:
    print(f"  {label:<58} {1 / seconds:>12,.0f} events/s {seconds * 1e6:>9.2f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--number", type=int, default=20_000, help="calls per timed loop")
    parser.add_argument("--repeat", type=int, default=5, help="timed loops; the best counts")
    args = parser.parse_args()
    n, r = args.number, args.repeat

    event = sample_event("guideDisplayed")
    secret = Secret(SECRET_TEXT)
    body = to_wire(event)
    wire_dict = to_wire_dict(event)
    msg_id = event.unique_id
    now = int(time.time())

    both = signer_for(SignatureScheme.BOTH, [secret])
    standard = StandardSigner([secret])
    reference = Webhook(SECRET_TEXT)
    body_text = body.decode()
    now_dt = datetime.fromtimestamp(now, timezone.utc)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "pendo-webhooks/0",
        "Host": "hooks.example.com",
        "Content-Length": str(len(body)),
        "Accept-Encoding": "gzip, deflate",
        "Connection": "keep-alive",
        **both.sign(body, msg_id=msg_id, timestamp=now),
    }
    verify_standard(body, headers, secret)  # both verifiers must accept before timing
    reference.verify(body, headers)

    print("pendo-webhooks wire benchmark")
    print(f"  date      {datetime.now(timezone.utc).isoformat(timespec='seconds')}")
    print(f"  machine   {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"  python    {platform.python_implementation()} {platform.python_version()}")
    print(f"  openssl   {ssl.OPENSSL_VERSION}")
    print(f"  body      guideDisplayed sample, {len(body)} bytes; best of {r} x {n:,} calls")
    print()

    key = secret.pendo_key
    a = best_of(lambda: both.sign(to_wire(event), msg_id=msg_id, timestamp=now), n, r)
    b = best_of(
        lambda: hmac.new(
            key, json.dumps(wire_dict, separators=(",", ":")).encode(), hashlib.sha256
        ).hexdigest(),
        n,
        r,
    )
    sign_both = best_of(lambda: both.sign(body, msg_id=msg_id, timestamp=now), n, r)
    sign_standard = best_of(lambda: standard.sign(body, msg_id=msg_id, timestamp=now), n, r)
    c = best_of(lambda: reference.sign(msg_id, now_dt, body_text), n, r)
    d = best_of(lambda: verify_standard(body, headers, secret), n, r)
    d_text = best_of(lambda: verify_standard(body, headers, SECRET_TEXT), n, r)
    e = best_of(lambda: reference.verify(body, headers), n, r)
    e_raw = best_of(lambda: reference.verify(body, headers, json_parse=False), n, r)

    print("Sending")
    line("(a) to_wire + signer_for(BOTH).sign", a)
    line("(b) json.dumps(dict) + hmac.new().hexdigest()", b)
    line("    ours: signer_for(BOTH).sign (body ready)", sign_both)
    line("    ours: StandardSigner.sign (body ready)", sign_standard)
    line("(c) reference Webhook.sign", c)
    print("Receiving")
    line("(d) ours: verify_standard (Secret)", d)
    line("    ours: verify_standard (secret as str)", d_text)
    line("(e) reference Webhook.verify (json_parse=True, its default)", e)
    line("    reference Webhook.verify (json_parse=False)", e_raw)
    ratios = [
        ("(a) / (b): exact Pendo bytes + both schemes vs naive dumps + 1 HMAC", a / b),
        ("(c) / StandardSigner.sign (> 1: ours faster)", c / sign_standard),
        ("(e) / (d) (> 1: ours faster)", e / d),
        ("(e, json_parse=False) / (d) (> 1: ours faster)", e_raw / d),
        ("(e, json_parse=False) / (d, str secret) (> 1: ours faster)", e_raw / d_text),
    ]
    print("Time ratios")
    for label, ratio in ratios:
        print(f"  {label:<70} {ratio:>6.2f}")


if __name__ == "__main__":
    sys.exit(main())
