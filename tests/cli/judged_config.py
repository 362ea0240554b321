"""tests/trainer/tiny_config.py with an LLM judge configured that nobody answers (127.0.0.1:9, no retries):
every judged rubric item is left unscored, so under `rubrics.unscored="drop"` every sample is dropped, as when
the judge is down all along. Its key is read from $HERL_TEST_JUDGE_KEY.

  python -m herl_jax.train --config tests/cli/judged_config.py:CKPT_DIR,TRAIN,VALIDATION,rar --workdir W
"""

import importlib.util
from pathlib import Path

KEY_ENV = "HERL_TEST_JUDGE_KEY"
_TINY = Path(__file__).parents[1] / "trainer" / "tiny_config.py"
_spec = importlib.util.spec_from_file_location("herl_tiny_config", _TINY)
_tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tiny)


def get_config(arg: str):
    c = _tiny.get_config(arg)
    c.rubrics.judge = dict(base_url="http://127.0.0.1:9/v1", model="nobody", api_key_env=KEY_ENV, max_retries=0,
                           timeout_s=5.0)
    return c
