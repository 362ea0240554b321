"""A 2-step run with judge rewards (issue 6 item 8): RaR-style rubrics scored by a scripted OpenAI-compatible
server on 127.0.0.1 that answers garbage to some requests; the run completes, counts the dropped samples,
and the API key's value never reaches the workdir or the logs."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid

import pytest

from herl_jax.training.trainer import Trainer
from tests.rubrics.openai_stub import OpenAIStub, Reply, rubric_items, user_text
from tests.trainer.conftest import config_arg
from tests.trainer.helpers import (LogRecorder, assert_step_metrics, checkpoint_steps, files_containing,
                                   read_metrics)
from tests.trainer.tiny_config import get_config

KEY_ENV = "HERL_TEST_JUDGE_KEY"
GARBAGE = (
    Reply(raw_body="<html>502 upstream hiccup</html>"),  # HTTP 200 whose body is not JSON
    Reply(content="I am unable to grade this response."),  # no JSON at all
    Reply(content='{"results": [1]}'),  # the wrong number of verdicts
)


class GarbageEveryFourth:
    """Every fourth distinct request (in arrival order) gets garbage on every attempt, so its sample ends up
    unscored; the others get verdicts derived from a hash of the request (deterministic, mixed)."""

    def __init__(self):
        self.order: dict[str, int] = {}
        self.garbage: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, request: dict, attempt: int) -> Reply:
        text = user_text(request)
        with self._lock:
            index = self.order.setdefault(text, len(self.order))
            if index % 4 == 1:
                self.garbage.add(text)
        if text in self.garbage:
            return GARBAGE[(index // 4) % len(GARBAGE)]
        bits = [hashlib.sha256(f"{text}|{i}".encode()).digest()[0] % 2 for i in range(len(rubric_items(request)))]
        return Reply(content=json.dumps({"results": bits}))


def test_two_step_run_with_a_judge(tiny_checkpoint, rar_files, tmp_path, monkeypatch, capfd):
    secret = f"sk-herl-judge-{uuid.uuid4().hex}"
    monkeypatch.setenv(KEY_ENV, secret)
    script = GarbageEveryFourth()
    workdir = tmp_path / "run"
    with OpenAIStub(script) as stub, LogRecorder() as logs:
        c = get_config(config_arg(tiny_checkpoint, rar_files, "rar"))
        c.rubrics.judge = dict(base_url=stub.base_url, model="stub-judge", api_key_env=KEY_ENV, max_retries=1,
                               timeout_s=30.0, backoff_base_s=0.01, backoff_max_s=0.02, max_concurrency=4)
        trainer = Trainer(c, workdir)
        assert trainer.run() == 2

    lines = read_metrics(workdir)
    assert_step_metrics(lines, [1, 2])
    assert "validation/reward_mean" in lines[1]
    dropped = sum(m["samples/dropped"] for m in lines) + lines[1]["validation/dropped"]
    assert len(script.garbage) >= 1
    assert dropped == len(script.garbage)  # each garbage answer cost exactly its own sample
    # Every response was judged once; each garbage request was retried once (max_retries=1).
    assert len(stub.requests) == len(script.order) + len(script.garbage)
    assert set(stub.auth_headers) == {f"Bearer {secret}"}  # the key did reach the judge ...
    assert checkpoint_steps(workdir) == [1, 2] and (workdir / "export" / "config.json").exists()

    config = json.loads((workdir / "config.json").read_text())
    assert config["rubrics"]["judge"]["api_key_env"] == KEY_ENV
    out, err = capfd.readouterr()
    assert files_containing(workdir, secret) == []  # ... and nowhere else
    assert secret not in logs.text and secret not in out and secret not in err


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """The stub listens on 127.0.0.1: never route it through a proxy from the environment."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
