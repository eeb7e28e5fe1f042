"""Every transformers and torch internal that clinrag's decoding relies on, in one place.

Batched prefix decoding (:mod:`clinrag.plugins.generators.decoding`) does what transformers' public API does not
offer: it reads and replaces each cache layer's key/value tensors, and it swaps the ``forward`` of CPU
``nn.Linear`` layers for another kernel. All code that depends on how those libraries are built inside sits
here, so an upgrade has one file to check; ``tests/plugins/generators/test_hf_compat.py`` fails when one of
these assumptions stops holding (pyproject.toml bounds transformers below its next major):

- ``DynamicCache(config=...)`` holds one layer per decoder layer in ``cache.layers``; a plain ``DynamicLayer``
  (``transformers.cache_utils``) keeps ``keys``/``values`` tensors shaped ``[batch, kv_heads, seq, head_dim]``
  and derives its length from them, so replacing both tensors is a complete edit. Sliding-window layers keep a
  separate length counter: they are not editable here.
- ``batch_repeat_interleave`` / ``batch_select_indices`` on a cache change its batch rows.
- A causal LM's ``forward`` takes ``position_ids``, ``attention_mask`` and a KV cache, and may take
  ``logits_to_keep``. transformers 5.x renamed the cache parameter from ``past_key_values`` to ``cache`` (the old
  name is deprecated: it still works through ``**kwargs`` but no longer appears in the signature, which once made
  every model look unable to take a cache): :func:`cache_parameter` answers with the name the model declares.
- ``nn.Module.__call__`` calls ``self.forward``, so an instance attribute overrides the class's method.

No attribute is written onto a library object except the overridden ``forward`` itself: what clinrag remembers
about a model lives in weak-keyed tables here.
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

KV_FORWARD_PARAMETERS = frozenset({"position_ids", "attention_mask"})
CACHE_PARAMETERS = ("cache", "past_key_values")  # the current name first

_FORWARD_PARAMETERS: weakref.WeakKeyDictionary[Any, frozenset[str]] = weakref.WeakKeyDictionary()
_OVERRIDE_DEPTH: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


# -- what a model's forward accepts ------------------------------------------------------------------------
def forward_parameters(model: Any) -> frozenset[str]:
    """Names of ``model.forward``'s parameters (looked up once per model: ``inspect.signature`` is slow)."""
    try:
        return _FORWARD_PARAMETERS[model]
    except (KeyError, TypeError):  # TypeError: not weak-referenceable, then simply not cached
        pass
    params = frozenset(inspect.signature(model.forward).parameters)
    try:
        _FORWARD_PARAMETERS[model] = params
    except TypeError:
        pass
    return params


def cache_parameter(model: Any) -> str | None:
    """The name under which ``model.forward`` takes a KV cache (``cache`` or, before transformers 5.x's rename,
    ``past_key_values``); None when it takes none."""
    params = forward_parameters(model)
    return next((name for name in CACHE_PARAMETERS if name in params), None)


def takes_kv_inputs(model: Any) -> bool:
    """A decoder-only model whose forward takes explicit positions, a KV cache and an attention mask."""
    if getattr(model.config, "is_encoder_decoder", False):
        return False
    return KV_FORWARD_PARAMETERS <= forward_parameters(model) and cache_parameter(model) is not None


def takes_logits_to_keep(model: Any) -> bool:
    """Whether ``forward(logits_to_keep=1)`` can skip the (tokens × vocab) product for all but the last position."""
    return "logits_to_keep" in forward_parameters(model)


# -- the KV cache ----------------------------------------------------------------------------------------------
def new_cache(model: Any) -> Any:
    """An empty dynamic cache laid out for ``model`` (sliding-window layers where its config has them)."""
    from transformers import DynamicCache

    return DynamicCache(config=model.config)


def kv_editable(cache: Any) -> bool:
    """True when every layer is a plain dynamic layer, whose key/value tensors :func:`set_layer_kv` may replace."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def layer_kv(cache: Any) -> list[tuple[Any, Any]]:
    """``(keys, values)`` of each layer, ``[batch, kv_heads, seq, head_dim]``; only for a :func:`kv_editable` cache."""
    return [(layer.keys, layer.values) for layer in cache.layers]


def set_layer_kv(cache: Any, kv: Sequence[tuple[Any, Any]]) -> None:
    """Replace every layer's key/value tensors (the cache's length follows them); a :func:`kv_editable` cache only."""
    if len(kv) != len(cache.layers):
        raise ValueError(f"{len(kv)} key/value pairs for {len(cache.layers)} cache layers")
    for layer, (keys, values) in zip(cache.layers, kv):
        layer.keys, layer.values = keys, values


def repeat_rows(cache: Any, repeats: int) -> None:
    """Each batch row ``repeats`` times, in place (a batch-1 prefix becomes one copy per prompt)."""
    cache.batch_repeat_interleave(repeats)


def select_rows(cache: Any, indices: Any) -> None:
    """Keep only the batch rows ``indices`` (a LongTensor), in place."""
    cache.batch_select_indices(indices)


# -- replacing a module's forward ---------------------------------------------------------------------------
@contextmanager
def forward_overridden(owner: Any, modules: Sequence[Any], forward: Callable[..., Any]) -> Iterator[None]:
    """While active, each of ``modules`` runs ``forward(module, *args)`` instead of its class's ``forward``.

    Re-entrant and thread-safe per ``owner`` (the model the modules belong to): nested uses share one override,
    removed when the outermost exits. ``modules`` must be the same for every use with one ``owner``.
    """
    with _LOCK:
        depth = _OVERRIDE_DEPTH.get(owner, 0)
        if depth == 0:
            for module in modules:
                module.forward = forward.__get__(module)  # an instance attribute shadows the class's method
        _OVERRIDE_DEPTH[owner] = depth + 1
    try:
        yield
    finally:
        with _LOCK:
            _OVERRIDE_DEPTH[owner] -= 1
            if _OVERRIDE_DEPTH[owner] == 0:
                del _OVERRIDE_DEPTH[owner]
                for module in modules:
                    module.__dict__.pop("forward", None)  # the class's forward again
