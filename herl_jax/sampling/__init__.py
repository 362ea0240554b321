"""The jitted sampler for rollouts and revisions, `Sampler` (what the step samples through), and a chat-level
helper (`herl_jax.sampling.chat.chat`).

Names load with their module when first used (herl_jax.lazy): `SamplingConfig` needs no JAX.
"""

from herl_jax.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "chat": ("decode_completions", "encode_chats", "pad_id_for", "stop_ids_for"),
    "config": ("SamplingConfig",),
    "sampler": ("SampleOutput", "Sampler", "generate"),
})
