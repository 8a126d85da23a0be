"""The rollout policy is read strictly (each mistake one line naming the key and the fix), and a webhook call is
bounded by its timeout and retries, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from components.errors import InvalidInputError
from components.progressive.hooks import RolloutFacts, call, payload
from components.progressive.policy import HookSpec, load_rollout_policy, rollout_policy_from_dict
from tests.support.webhooks import start_webhooks


def test_the_defaults_are_flagger_like_steps_with_the_analysis_at_the_first():
    policy = rollout_policy_from_dict({})
    assert policy.steps == (10, 50, 100) and policy.analysis_steps == (1,)
    assert policy.guard.min_success_rate == 99.0 and policy.guard.provider == "prometheus"
    assert rollout_policy_from_dict(policy.to_dict()) == policy  # what the progress keeps reads back the same


@pytest.mark.parametrize("data, message", [
    ({"stepz": [10]}, "^rollout_policy.stepz: unknown key; use one of steps, "),
    ({"steps": [50, 10]}, r"^rollout_policy.steps: \[50, 10\] is not a rising list of weights"),
    ({"steps": [0, 100]}, "^rollout_policy.steps: "),
    ({"steps": "10,50"}, "^rollout_policy.steps: '10,50' is not a list"),
    ({"analysis_steps": [4]}, r"^rollout_policy.analysis_steps: \[4\] names a step outside 1..3"),
    ({"interval_s": 0.5}, "^rollout_policy.interval_s: 0.5 s is out of range"),
    ({"guard": {"provider": "datadog"}}, "^rollout_policy.guard.provider: 'datadog' is not a metrics provider"),
    ({"guard": {"queries": {"error-rate": "x"}}}, "^rollout_policy.guard.queries: must map query names"),
    ({"guard": {"min_requests": 0}}, "^rollout_policy.guard: "),
    ({"hooks": [{"kind": "pre-rollout"}]}, r"^rollout_policy.hooks\[0\].url: a pre-rollout hook needs a URL"),
    ({"hooks": [{"kind": "webhook", "url": "http://x"}]}, r"^rollout_policy.hooks\[0\].kind: 'webhook' is not"),
    ({"hooks": [{"kind": "event", "url": "ftp://x"}]}, r"^rollout_policy.hooks\[0\].url: 'ftp://x' is not an http"),
    ({"hooks": [{"kind": "event", "url": "http://x", "timeout_s": 900}]}, r"^rollout_policy.hooks\[0\]: timeout_s"),
])
def test_a_bad_policy_is_one_line_naming_the_key(data, message):
    with pytest.raises(InvalidInputError, match=message):
        rollout_policy_from_dict(data)


def test_a_policy_file_reads_like_the_gate_s(tmp_path):
    path = tmp_path / "rollout.yaml"
    path.write_text("steps: [5, 25, 100]\ninterval_s: 30\nhooks:\n  - name: approval\n    kind: confirm-promotion\n")
    policy = load_rollout_policy(path)
    assert policy.steps == (5, 25, 100) and policy.hooks_of("confirm-promotion")[0].url == ""


def test_a_hook_that_hangs_is_cut_at_its_timeout_and_retried_a_bounded_number_of_times():
    class Slow(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            time.sleep(5)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hook = HookSpec("slow", "pre-rollout", f"http://127.0.0.1:{server.server_address[1]}/", timeout_s=0.5,
                        retries=2)
        started = time.monotonic()
        answer = call(hook, {"name": "digits"})
        assert not answer.ok and answer.attempts == 3 and answer.status is None and "timed out" in answer.detail
        assert time.monotonic() - started < 3 * 0.5 + 2 * 1.0 + 1.5  # three timeouts and two pauses, not 15 s
    finally:
        server.shutdown()


def test_an_event_is_flagger_s_payload_with_a_slack_text():
    receiver = start_webhooks()
    try:
        hook = HookSpec("chat", "event", f"{receiver.url}/slack", metadata={"team": "ml"})
        facts = RolloutFacts("digits", "models", "v2", "Progressing", 2, 50)
        assert call(hook, payload(hook, facts, "advance v2 canary weight 50")).ok
        body = receiver.to("/slack")[0].body
        assert body == {"name": "digits", "namespace": "models", "phase": "Progressing", "version": "v2", "step": 2,
                        "weight": 50, "text": "digits.models v2: advance v2 canary weight 50",
                        "metadata": {"team": "ml", "eventMessage": "advance v2 canary weight 50",
                                     "eventType": "Normal"}}
    finally:
        receiver.stop()
