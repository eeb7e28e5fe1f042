"""Weight-only bfloat16 on CPU: the weights are stored (and read every decode step) in bfloat16, the activations
stay float32.

Why: a CPU decode step is bound by the bytes of weights it reads, so bfloat16 weights halve both the step and the
resident set (the 0.5B stand-in: 1.3 GB instead of 2.5 GB). A model run wholly in bfloat16 also rounds the residual
stream, the norms, the attention scores and the logits to 8 bits of mantissa at every layer. Here only the matrix
products see bfloat16: each linear layer rounds its input to bfloat16 and multiplies on the CPU's native bfloat16
kernel (AVX512-BF16/AMX, float32 accumulation), and its output returns to float32 before the residual add; norms,
rotary embeddings, softmax and the KV cache stay float32.

Measured on the 0.5B stand-in (benchmarks/README.md, "Precision on CPU"; 2 idle cores): 43 of 48 answer and
summary rows kept float32's first 32 greedy tokens through the same batched decoder (plain bfloat16: 22 of 30),
one row short of the 90 % token gate, and every held-out metric of the real-model evaluation stayed within
float32's CI (the gate's other arm), at 4.5x the sequential baseline (float32: 2.2x) in 2.4 GB (float32: 3.4 GB).
So it is the CPU default where the processor computes bfloat16 (:data:`~clinrag.core.defaults.CPU_ANSWER_DTYPE`).

The output head is the one place a rounded product decides a token directly (greedy decoding takes the argmax of
the logits, and a bfloat16 logit near 20 is only known to ±0.06), so :class:`Bf16WeightHead` recomputes the
``TOP_EXACT`` largest logits of every row in float32 from the same (exactly upcast) weight rows: the argmax is then
the float32 head's over those candidates.

The bfloat16 tensors are buffers, not parameters, so ``model.dtype`` (the first floating parameter: a float32 norm)
stays float32 and transformers builds its masks and caches in float32. Inference only: nothing here trains.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

#: Logits per row recomputed in float32 by the head: the float32 argmax lies among a row's 8 largest bfloat16
#: logits unless 8 tokens sit within the rounding error of the top one.
TOP_EXACT = 8


class Bf16WeightLinear(torch.nn.Module):
    """``nn.Linear`` with a bfloat16 weight: float32 in, bfloat16 product (float32 accumulation), float32 out."""

    def __init__(self, linear: torch.nn.Linear, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        # ``weight``: an already converted bfloat16 tensor to share (a head tied to the input embedding)
        self.register_buffer("weight", weight if weight is not None else linear.weight.detach().to(torch.bfloat16))
        bias = linear.bias.detach().float() if linear.bias is not None else None
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # As a 2-D product: given a strided 3-D input (the head's last-position slice of a prefill) F.linear takes
        # a batched-matmul path that first copies the whole weight, 259 MB and ~0.9 s for the stand-in's head.
        rows = x.reshape(-1, x.shape[-1]).to(torch.bfloat16)
        y = F.linear(rows, self.weight).float().view(*x.shape[:-1], self.out_features)
        return y + self.bias if self.bias is not None else y

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, weight=bfloat16, compute=float32"


class Bf16WeightHead(Bf16WeightLinear):
    """The output head: :class:`Bf16WeightLinear` whose :data:`TOP_EXACT` largest outputs per row are recomputed
    in float32 (float32 input times the exactly upcast weight rows)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        if self.bias is not None or y.shape[-1] <= TOP_EXACT:
            return y
        top = y.topk(TOP_EXACT, dim=-1).indices  # (..., K)
        rows = self.weight[top].float()  # (..., K, in)
        exact = torch.matmul(rows, x.float().unsqueeze(-1)).squeeze(-1)  # (..., K)
        return y.scatter_(-1, top, exact)


class Bf16WeightEmbedding(torch.nn.Module):
    """``nn.Embedding`` with a bfloat16 table: the looked-up rows are upcast exactly to float32."""

    def __init__(self, embedding: torch.nn.Embedding) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = embedding.num_embeddings, embedding.embedding_dim
        self.padding_idx = embedding.padding_idx
        self.register_buffer("weight", embedding.weight.detach().to(torch.bfloat16))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.weight, self.padding_idx).float()


def to_bf16_weights(model: Any) -> Any:
    """Convert a loaded causal LM in place to weight-only bfloat16 (see the module docstring) and return it.

    Every ``nn.Linear`` becomes :class:`Bf16WeightLinear` (the output head :class:`Bf16WeightHead`), the input
    embedding :class:`Bf16WeightEmbedding`, and every remaining parameter (norms) float32. Weights already in
    bfloat16 are kept as they are (no copy); float32 ones are rounded once.
    """
    head, emb = model.get_output_embeddings(), model.get_input_embeddings()
    swaps: list[tuple[torch.nn.Module, torch.nn.Module]] = []
    new_emb = Bf16WeightEmbedding(emb) if type(emb) is torch.nn.Embedding else None
    if new_emb is not None:
        swaps.append((emb, new_emb))
    for module in model.modules():
        if type(module) is torch.nn.Linear:
            if module is head:
                tied = new_emb is not None and module.weight is emb.weight  # one bfloat16 table, as in float32
                swaps.append((module, Bf16WeightHead(module, new_emb.weight if tied else None)))
            else:
                swaps.append((module, Bf16WeightLinear(module)))
    parents = [(parent, attr, sub) for parent in model.modules() for attr, sub in parent.named_children()]
    new_of = {id(old): new for old, new in swaps}
    for parent, attr, sub in parents:
        if id(sub) in new_of:
            setattr(parent, attr, new_of[id(sub)])
    for p in model.parameters():
        if p.is_floating_point() and p.dtype != torch.float32:
            p.data = p.data.float()
    for name, buf in model.named_buffers():
        if buf.is_floating_point() and buf.dtype != torch.float32 and not name.endswith(".weight"):
            buf.data = buf.data.float()  # e.g. rotary inv_freq, if a loader cast it
    return model


def has_bf16_weights(model: Any) -> bool:
    """Whether ``model`` was converted by :func:`to_bf16_weights`."""
    return any(isinstance(m, Bf16WeightLinear) for m in model.modules())


def weight_bytes(model: Any, *, exclude_input_embedding: bool = True) -> int:
    """Bytes of weights (parameters and weight buffers) one forward reads; the input embedding is a row lookup."""
    emb = model.get_input_embeddings()
    skip = {id(emb.weight)} if exclude_input_embedding and getattr(emb, "weight", None) is not None else set()
    tensors = {id(t): t for t in model.parameters()}
    tensors.update({id(b): b for n, b in model.named_buffers() if n.endswith(("weight", "bias"))})
    return sum(t.numel() * t.element_size() for i, t in tensors.items() if i not in skip)
