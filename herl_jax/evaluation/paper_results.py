"""The paper's reported numbers (Zhang et al., "Experience is the Best Teacher", Tables 1 and 2; in %), shown in
`evaluate`'s report beside a checkpoint of the same base model. The one place they are written down.
"""

from __future__ import annotations

_IN_DOMAIN = ("ifeval", "ifbench", "muldimif", "writingbench", "llmeval_med", "healthbench")
_OUT_OF_DOMAIN = ("math500", "gpqa", "mmlu_pro")

# Table 1: base model -> method -> the numbers in _IN_DOMAIN's order.
_TABLE1 = {
    "Qwen2.5-7B-Instruct": {"base": (72.6, 26.2, 51.4, 57.0, 56.0, 24.4), "+ SFT": (75.6, 27.9, 67.8, 51.5, 34.8, 27.2),
                            "+ DPO": (66.9, 25.9, 56.5, 52.1, 35.8, 28.0), "+ RLVR": (77.3, 31.6, 73.5, 54.8, 60.5, 30.5),
                            "+ HeRL": (82.4, 39.7, 83.4, 59.1, 65.0, 34.3)},
    "Llama-3.2-3B-Instruct": {"base": (71.2, 23.8, 35.8, 30.5, 16.1, 14.5), "+ SFT": (73.0, 24.8, 66.9, 24.5, 15.1, 21.0),
                              "+ DPO": (74.3, 22.1, 54.4, 14.4, 11.5, 13.5),
                              "+ RLVR": (79.1, 26.6, 77.6, 39.7, 18.5, 17.8),
                              "+ HeRL": (82.4, 30.6, 84.7, 45.4, 18.7, 26.6)},
    "Qwen3-4B-Instruct-2507": {"base": (83.4, 29.9, 57.3, 84.3, 74.5, 42.0),
                               "+ SFT": (83.4, 31.3, 66.8, 81.7, 73.3, 36.0),
                               "+ DPO": (83.9, 27.9, 61.5, 85.0, 74.9, 39.1),
                               "+ RLVR": (85.8, 36.9, 79.0, 83.9, 78.1, 41.7),
                               "+ HeRL": (86.1, 39.7, 82.5, 85.7, 79.3, 43.6)},
}
# Table 2: base model -> (base, + HeRL) numbers in _OUT_OF_DOMAIN's order.
_TABLE2 = {
    "Llama-3.2-3B-Instruct": {"base": (38.6, 26.5, 33.9), "+ HeRL": (36.6, 29.2, 34.8)},
    "Qwen2.5-7B-Instruct": {"base": (76.0, 34.1, 57.3), "+ HeRL": (77.6, 33.9, 55.5)},
    "Qwen3-4B-Instruct-2507": {"base": (86.0, 46.6, 61.5), "+ HeRL": (89.8, 45.3, 62.1)},
}


def paper_rows(model: str) -> dict[str, dict[str, float]]:
    """method -> benchmark -> the paper's number, for base model `model` (Tables 1 and 2 together)."""
    rows: dict[str, dict[str, float]] = {}
    for table, names in ((_TABLE1, _IN_DOMAIN), (_TABLE2, _OUT_OF_DOMAIN)):
        for method, values in table.get(model, {}).items():
            rows.setdefault(method, {}).update(zip(names, values))
    return rows


def base_model(*names: str) -> str | None:
    """The paper's base model that a checkpoint's label or source names (`Qwen2.5-7B-Instruct`,
    `/ckpt/qwen2_5-7b-instruct`, ...), or None."""
    def squash(text: str) -> str:
        return "".join(ch for ch in text.lower() if ch.isalnum())

    for model in _TABLE1:
        if any(squash(model) in squash(name) for name in names):
            return model
    return None
