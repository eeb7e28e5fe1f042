"""Which dtype a model loads and answers in: float32, half precisions, or weight-only bfloat16 on CPU.

Answering on CPU uses :data:`~clinrag.core.defaults.CPU_ANSWER_DTYPE` where the processor computes bfloat16
natively; training and every explicit ``dtype`` get exactly what they ask for.
"""

from __future__ import annotations

from typing import Any

from clinrag.core.defaults import CPU_ANSWER_DTYPE
from clinrag.core.errors import ModelLoadError


def resolve_dtype(dtype: Any, device: str) -> Any:
    """``None``/"auto" → float32 on CPU (fast and exact there), bfloat16 on GPUs that support it."""
    import torch

    if dtype is None or dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    valid = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
             "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if str(dtype) not in valid:
        raise ModelLoadError(f"dtype {dtype!r} is not one of: auto, {', '.join(valid)} (answering also takes "
                             f"bfloat16-weights)")
    return valid[str(dtype)]


def cpu_computes_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX): there bfloat16 matrix products run
    at twice float32's rate and read half the bytes; elsewhere torch emulates them, slower than float32."""
    import torch

    cpu = torch.cpu
    return any(bool(getattr(cpu, probe, lambda: False)()) for probe in ("_is_avx512_bf16_supported",
                                                                          "_is_amx_tile_supported"))


#: The ``dtype`` value that selects weight-only bfloat16 (:mod:`clinrag.core.models.weight_only`), and its aliases.
#: Defined here, not there, so reading a dtype option never imports torch.
BF16_WEIGHTS = "bfloat16-weights"
BF16_WEIGHTS_ALIASES = (BF16_WEIGHTS, "bf16-weights")


def is_bf16_weights(dtype: Any) -> bool:
    """Whether ``dtype`` names weight-only bfloat16 (:mod:`clinrag.core.models.weight_only`): weights stored in
    bfloat16, activations float32."""
    return isinstance(dtype, str) and dtype in BF16_WEIGHTS_ALIASES


def resolve_inference_dtype(dtype: Any, device: str) -> Any:
    """The dtype a model *answers* in: an explicit ``dtype`` as :func:`resolve_dtype` reads it (or
    ``"bfloat16-weights"``, kept as that string); ``None``/"auto" → bfloat16 on a GPU that supports it; on a CPU,
    :data:`~clinrag.core.defaults.CPU_ANSWER_DTYPE` when that is float32, or a bfloat16 kind the CPU computes
    natively (:func:`cpu_computes_bf16`; elsewhere bfloat16 products are emulated, slower than float32), else
    float32. Training keeps :func:`resolve_dtype`'s float32 on CPU."""
    import torch

    if is_bf16_weights(dtype):
        return BF16_WEIGHTS
    if (dtype is None or dtype == "auto") and device == "cpu":
        if CPU_ANSWER_DTYPE != "float32" and cpu_computes_bf16():
            return resolve_inference_dtype(CPU_ANSWER_DTYPE, device)
        return torch.float32
    return resolve_dtype(dtype, device)


def dtype_name(dtype: Any) -> str:
    """A resolved dtype as its plain name: ``torch.float32`` → ``"float32"``; ``"bfloat16-weights"`` stays itself."""
    return str(dtype).removeprefix("torch.")
