"""Webhooks, as Flagger calls them: a JSON POST (name, namespace, phase, metadata), 2xx meaning yes.

A call has its hook's timeout and is retried (one second apart) up to its `retries`, so a hook never hangs a
rollout. Gates (confirm-rollout, confirm-promotion) and the rollback hook are asked once per interval by the
controller instead. An event carries a Slack-compatible `text` field beside Flagger's `metadata.eventMessage`.
TLS is verified; the URL is the policy's, so no secret belongs in it.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass

from components.progressive.policy import HookSpec

ANSWER_LIMIT = 64 * 1024


@dataclass(frozen=True)
class HookCall:
    """What one hook said: yes (2xx) or not, after how many attempts, with the last status or error."""

    name: str
    kind: str
    ok: bool
    attempts: int
    status: int | None
    detail: str
    at: float

    def to_dict(self) -> dict:
        """The JSON form kept in the step's record."""
        return asdict(self)


@dataclass(frozen=True)
class RolloutFacts:
    """What every payload says about the rollout."""

    name: str
    namespace: str
    version: str
    phase: str
    step: int
    weight: int


def payload(hook: HookSpec, facts: RolloutFacts, message: str = "", event_type: str = "Normal") -> dict:
    """The JSON body: Flagger's fields, the step and weight, and for events the message (also as `text`)."""
    metadata = {**hook.metadata}
    body: dict = {"name": facts.name, "namespace": facts.namespace, "phase": facts.phase, "version": facts.version,
                  "step": facts.step, "weight": facts.weight, "metadata": metadata}
    if message:
        metadata.update(eventMessage=message, eventType=event_type)
        body["text"] = f"{facts.name}.{facts.namespace} {facts.version}: {message}"
    return body


def call(hook: HookSpec, body: dict, retries: int | None = None) -> HookCall:
    """POST `body` to the hook; retried up to its `retries` (or `retries`) while the answer is not 2xx."""
    attempts = 1 + (hook.retries if retries is None else retries)
    status, detail = None, ""
    for attempt in range(1, attempts + 1):
        status, detail = _post(hook, body)
        if status is not None and 200 <= status < 300:
            return HookCall(hook.name, hook.kind, True, attempt, status, detail, time.time())
        if attempt < attempts:
            time.sleep(1.0)
    return HookCall(hook.name, hook.kind, False, attempts, status, detail, time.time())


def _post(hook: HookSpec, body: dict) -> tuple[int | None, str]:
    request = urllib.request.Request(hook.url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=hook.timeout_s) as response:
            return response.status, response.read(ANSWER_LIMIT).decode(errors="replace")[:200]
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read(ANSWER_LIMIT).decode(errors="replace")[:200]
    except (urllib.error.URLError, OSError, ValueError) as failed:
        return None, f"{type(failed).__name__}: {getattr(failed, 'reason', failed)}"[:200]
