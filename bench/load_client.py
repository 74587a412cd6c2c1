"""The second process of the webhook benchmark: signed inbound texts over real HTTP.

    python -m bench.load_client --url http://127.0.0.1:PORT --path /webhooks/twilio/messages \
        --token TOKEN --phones 1200000 --to +14155550100 (--rate 100 | --concurrency 8) \
        --seconds 60

Open loop (`--rate`): request i is due at start + i/rate, whatever the server does, and
its latency counts from that due time (a slow server cannot hide its queue). Closed
loop (`--concurrency`): that many clients send back to back; throughput is the figure.
Bounded: loopback only, at most rate x seconds requests, each with a 10 s timeout, and
the whole run stops `--seconds` + 15 s after it starts. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.seed import phone_e164
from integrations.twilio.webhooks import compute_signature

BODIES = (
    "Is my car ready?",
    "any update on my truck?",
    "When will it be done?",
    "status?",
    "yes",
    "Yes please go ahead",
    "Thanks!",
    "Can you also check the wipers? They squeak when it rains.",
    "I can pick it up after 5, is that ok",
    "Who is my advisor?",
)


class Load:
    """Builds signed forms and records what came back."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.url = args.url.rstrip("/") + args.path
        self.random = random.Random(args.seed)
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}

    def request(self) -> tuple[dict[str, str], dict[str, str]]:
        """A fresh MessageSid from a random known phone, signed as Twilio would sign it."""
        form = {
            "MessageSid": "SM" + secrets.token_hex(16),
            "AccountSid": "AC" + "0" * 32,
            "MessagingServiceSid": "",
            "From": phone_e164(self.random.randrange(self.args.phones)),
            "To": self.args.to,
            "Body": self.random.choice(BODIES),
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }
        signature = compute_signature(self.args.token, self.url, form)
        return form, {"X-Twilio-Signature": signature}

    async def send(self, client: httpx.AsyncClient, due: float) -> None:
        form, headers = self.request()
        try:
            response = await client.post(self.url, data=form, headers=headers)
            if response.status_code != 200:
                self.errors[str(response.status_code)] = (
                    self.errors.get(str(response.status_code), 0) + 1
                )
        except httpx.HTTPError as exc:
            self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
        self.latencies.append(time.perf_counter() - due)

    async def open_loop(self, client: httpx.AsyncClient) -> float:
        total = int(self.args.rate * self.args.seconds)
        start = time.perf_counter()
        tasks = []
        for i in range(total):
            due = start + i / self.args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.send(client, due)))
        _done, pending = await asyncio.wait(tasks, timeout=15)
        for task in pending:  # still unanswered 15 s after the last was due: an error
            task.cancel()
        if pending:
            self.errors["unfinished"] = len(pending)
        return time.perf_counter() - start

    async def closed_loop(self, client: httpx.AsyncClient) -> float:
        start = time.perf_counter()
        stop = start + self.args.seconds

        async def one_client() -> None:
            while time.perf_counter() < stop:
                await self.send(client, time.perf_counter())

        await asyncio.wait_for(
            asyncio.gather(*(one_client() for _ in range(self.args.concurrency))),
            timeout=self.args.seconds + 15,
        )
        return time.perf_counter() - start


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    host = urlsplit(args.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"the load client only talks to loopback, not {host!r}")
    load = Load(args)
    limits = httpx.Limits(max_connections=max(args.concurrency, 64), max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        # Warm-up: connections open and the server's first-request costs paid.
        for _ in range(min(20, args.concurrency * 4)):
            await load.send(client, time.perf_counter())
        load.latencies.clear()
        load.errors.clear()
        if args.rate:
            elapsed = await load.open_loop(client)
        else:
            elapsed = await load.closed_loop(client)
    done = len(load.latencies)
    return {
        "mode": "open" if args.rate else "closed",
        "requests": done,
        "errors": sum(load.errors.values()),
        "error_kinds": load.errors,
        "seconds": round(elapsed, 2),
        "throughput_rps": round(done / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(1000 * _percentile(load.latencies, 0.50), 2),
        "p90_ms": round(1000 * _percentile(load.latencies, 0.90), 2),
        "p99_ms": round(1000 * _percentile(load.latencies, 0.99), 2),
        "max_ms": round(1000 * max(load.latencies, default=0.0), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="signed inbound-text load (loopback only)")
    parser.add_argument("--url", required=True)
    parser.add_argument("--path", default="/webhooks/twilio/messages")
    parser.add_argument("--token", required=True)
    parser.add_argument("--phones", type=int, required=True)
    parser.add_argument("--to", default="+14155550100")
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.rate > 1000 or args.seconds > 600:
        raise SystemExit("bounded: at most 1000 requests/s for at most 600 s")
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
