"""The jitted sampler for rollouts and revisions, `Sampler` (what the step samples through), and a chat-level
helper."""

from herl_jax.sampling.chat import chat, decode_completions, encode_chats, pad_id_for, stop_ids_for
from herl_jax.sampling.config import SamplingConfig
from herl_jax.sampling.sampler import SampleOutput, Sampler, generate

__all__ = [
    "SampleOutput",
    "Sampler",
    "SamplingConfig",
    "chat",
    "decode_completions",
    "encode_chats",
    "generate",
    "pad_id_for",
    "stop_ids_for",
]
