"""`python -m app webhook-receiver`: a loopback endpoint that prints each webhook it is sent and
whether its signature verifies, answering 204 when it does and 400 when not (the demo's receiver,
and a worked example of verifying; README "Alerts" has the same check as a snippet)."""

from __future__ import annotations

import time

import orjson
from aiohttp import web

from app.domain.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


def receiver_app(secret: str) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        body = await request.read()  # the raw bytes: the signature covers them exactly
        verified = verify(
            secret,
            request.headers.get(TIMESTAMP_HEADER, ""),
            body,
            request.headers.get(SIGNATURE_HEADER, ""),
            now=time.time(),
        )
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            event = {}
        line = {
            "verified": verified,
            "id": event.get("id"),
            "type": event.get("type"),
            "subject": event.get("subject"),
        }
        print(orjson.dumps(line).decode(), flush=True)
        return web.Response(status=204 if verified else 400)

    app = web.Application()
    app.router.add_post("/{tail:.*}", receive)
    return app


def run_receiver(host: str, port: int, secret: str) -> None:
    print(f"Webhook receiver: http://{host}:{port}/", flush=True)
    web.run_app(receiver_app(secret), host=host, port=port, print=None)
