"""Extend a byte-level BPE tokenizer and its model with domain terms, each costing one token in running text.

Why not ``tokenizer.add_tokens(["Thrombocytopenia"])``: in byte-level BPE a word in running text carries its
leading space (" Thrombocytopenia" is pre-tokenized as the chunk ``ĠThrombocytopenia``). An added token
"Thrombocytopenia" is matched *inside* the text, so the space before it is left alone and becomes a lone ``Ġ``
token — a sequence the model never saw in pre-training — and every mid-sentence occurrence costs two tokens.

Design (docs/vocabulary.md has the measured details):

* Every term gets two *forms*: ``" term"`` (mid-sentence, after a space) and ``"term"`` (sentence-initial, after a
  newline or an opening bracket). A form that already is one token is left as it is.
* Each new form is an ``AddedToken`` whose content is the exact text, leading space included, so " term" is one
  id with no lone space token in front. The bare form has ``single_word=True`` (never matched inside a longer
  word such as "xterm"); the space form cannot set it (the tokenizers library then rejects every mid-sentence
  match) and is already bounded on the left by its space, so " terms" encodes as " term" + "s". Both use
  ``normalized=True``: matched on the same normalised (NFC) text as everything else. Text around a term is
  pre-tokenized and BPE-encoded exactly as before.
* Why not a BPE vocabulary entry (``ĠThrombocytopenia`` looked up whole through ``ignore_merges``)? It works with
  the tokenizers library, but transformers 5 rebuilds model-specific tokenizers (``Qwen2Tokenizer``) from
  vocab + merges with ``ignore_merges`` off, so after ``AutoTokenizer.from_pretrained(model_dir)`` such an entry is
  unreachable; making it reachable needs a chain of merges whose intermediate merges also fire inside other words
  ("ĠTh" + "rom" in " Thrombosis"), changing encodings the model was trained on. Added tokens survive every loader.
* Every form is checked by encoding sentences (initial, mid-sentence, after punctuation and newline) and
  decoding them back to the exact text, before and after saving.

The model side grows the embeddings to ``max(ids, rows)`` — never shrinking padded matrices — and initialises
every new row explicitly (:data:`clinrag.core.models.embeddings.INIT_METHODS`), for ``lm_head`` too when untied.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from clinrag.core.errors import ClinragError
from clinrag.core.io import text_lines
from clinrag.core.models.manifest import MANIFEST_NAME

MANIFEST_FORMAT = 1


class TermError(ClinragError, ValueError):
    """A term list is unusable: empty terms, duplicates, terms already in the vocabulary, or a term that cannot be
    made one token."""


@dataclass
class FormPlan:
    """One surface form of a term and how it becomes a single token."""

    term: str
    form: str  # exact text that becomes one token: " term" or "term"
    source_ids: list[int]  # the base tokenizer's ids for ``form`` (the sub-tokens averaged by mean init)
    token: str = ""  # the added token's content (== form)
    id: int = -1
    init: str = ""


@dataclass
class ExtensionPlan:
    forms: list[FormPlan]
    existing: list[dict[str, Any]] = field(default_factory=list)  # forms that already were one token
    skipped: list[dict[str, Any]] = field(default_factory=list)  # forms that cannot be one token, with the reason


# -- reading terms -----------------------------------------------------------------------------------------

def read_terms(path: str | Path) -> list[str]:
    """One term per line; blank lines and ``#`` comments are skipped. Duplicates are an error naming both lines."""
    path = Path(path)
    if not path.exists():
        raise TermError(f"{path}: no such terms file")
    terms: list[str] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(text_lines(path), start=1):
        term = raw.strip()
        if not term or term.startswith("#"):
            continue
        if term in seen:
            raise TermError(f"{path}, line {n}: duplicate term {term!r} (first on line {seen[term]})")
        seen[term] = n
        terms.append(term)
    if not terms:
        raise TermError(f"{path}: no terms (one term per line; '#' starts a comment)")
    return terms


def validate_terms(terms: Sequence[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for i, term in enumerate(terms, start=1):
        if not isinstance(term, str) or not term.strip():
            raise TermError(f"term {i} is empty")
        if term != term.strip():
            raise TermError(f"term {i} ({term!r}) has leading or trailing whitespace; the leading-space form is "
                            f"added automatically")
        if "\n" in term or "\r" in term:
            raise TermError(f"term {i} ({term!r}) contains a line break")
        if term in seen:
            raise TermError(f"term {i} ({term!r}) is listed twice")
        seen.add(term)
        out.append(term)
    if not out:
        raise TermError("no terms given")
    return out


# -- tokenizer side ----------------------------------------------------------------------------------------

def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


_BYTE_DECODE_REASON = ("its non-ASCII letters are all in the byte-level alphabet, so the byte-level decoder would "
                       "read them as bytes and garble the decoded text")


def _decodes_as_bytes(form: str) -> bool:
    """True when a byte-level decoder would map each character of this added token through the byte alphabet
    (it does so when *every* character is in it) and the result differs from the text: "Sjögren" (ö is the
    alphabet's byte 0xF6), not " Sjögren" (the space is outside the alphabet, so the raw text is kept)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    alphabet = {ch: b for b, ch in bytes_to_unicode().items()}
    if not all(ch in alphabet for ch in form):
        return False
    return bytes(alphabet[ch] for ch in form) != form.encode("utf-8")


def plan_terms(tokenizer: Any, terms: Sequence[str]) -> ExtensionPlan:
    """Decide, per term, which forms are new and how each becomes one token (without changing anything)."""
    terms = validate_terms(terms)
    specials = set(tokenizer.all_special_tokens)
    byte_level = "ByteLevel" in str(tokenizer.backend_tokenizer.decoder)
    plan = ExtensionPlan(forms=[])
    for term in terms:
        if term in specials or term in tokenizer.get_added_vocab():
            raise TermError(f"term {term!r} is already an added/special token of the tokenizer")
        new_forms = 0
        for form in (" " + term, term):
            ids = _encode(tokenizer, form)
            if len(ids) == 1:
                plan.existing.append({"term": term, "form": form, "id": ids[0]})
                continue
            if byte_level and _decodes_as_bytes(form):
                plan.skipped.append({"term": term, "form": form, "reason": _BYTE_DECODE_REASON})
                continue
            fp = FormPlan(term=term, form=form, source_ids=ids, token=form)
            plan.forms.append(fp)
            new_forms += 1
        if new_forms == 0 and any(e["term"] == term for e in plan.skipped):
            raise TermError(f"term {term!r} cannot be added: {_BYTE_DECODE_REASON}")
        if new_forms == 0:
            ids = [e["id"] for e in plan.existing if e["term"] == term]
            raise TermError(f"term {term!r} is already in the vocabulary (one token in both forms: ids {ids}); "
                            f"remove it from the terms list")
    return plan


def extend_tokenizer(tokenizer: Any, terms: Sequence[str]) -> tuple[Any, ExtensionPlan]:
    """A new tokenizer (``tokenizer`` is left untouched) in which every planned form is one token; ids assigned
    after every existing id. Verified by :func:`verify_forms` before it is returned."""
    import copy

    from tokenizers import AddedToken as TkAddedToken

    plan = plan_terms(tokenizer, terms)
    new_tok = copy.deepcopy(tokenizer)
    # single_word only for the bare form: the tokenizers library treats a match that starts with a space right
    # after a letter as "inside a word", so the " term" form must not set it (its space bounds it on the left).
    new_tok.add_tokens([TkAddedToken(fp.form, single_word=not fp.form.startswith(" "), normalized=True,
                                     lstrip=False, rstrip=False, special=False) for fp in plan.forms])
    for fp in plan.forms:
        fp.id = int(new_tok.convert_tokens_to_ids(fp.form))
    ids = [fp.id for fp in plan.forms]
    if len(set(ids)) != len(ids) or min(ids) <= max_token_id(tokenizer):
        raise RuntimeError(f"new ids {ids} collide with each other or with the base vocabulary")
    verify_forms(new_tok, plan.forms)
    return new_tok, plan


def max_token_id(tokenizer: Any) -> int:
    return max(tokenizer.get_vocab().values())


def form_sentences(term: str) -> list[tuple[str, list[str]]]:
    """Sentences using ``term`` in running text, each with the forms its occurrences must encode to, in order."""
    sp, bare = " " + term, term
    return [
        (f"{term} was confirmed.", [bare]),
        (f"The patient had {term} on admission.", [sp]),
        (f"History: {term}, then {term}.", [sp, sp]),
        (f"Findings:\n{term} and {term}", [bare, sp]),
        (f"Differential ({term}) vs {term}!", [bare, sp]),
    ]


def verify_forms(tokenizer: Any, forms: Sequence[FormPlan]) -> None:
    """Raise unless every form is exactly one token wherever the term stands alone in running text, and every
    sentence decodes back to itself."""
    by_term: dict[str, dict[str, int]] = {}
    for fp in forms:
        by_term.setdefault(fp.term, {})[fp.form] = fp.id
    for term, ids in by_term.items():
        full = {f: (ids.get(f) if f in ids else _single(tokenizer, f)) for f in (" " + term, term)}
        for sentence, expected_forms in form_sentences(term):
            enc = _encode(tokenizer, sentence)
            decoded = tokenizer.decode(enc, clean_up_tokenization_spaces=False)
            if decoded != sentence:
                raise TermError(f"term {term!r}: {sentence!r} decodes back as {decoded!r}")
            # A skipped form (see plan.skipped) is not one token: only the other form is checked.
            expected = [full[f] for f in expected_forms if full[f] is not None]
            valid = {i for i in full.values() if i is not None}
            if [i for i in enc if i in valid] != expected:
                pieces = tokenizer.convert_ids_to_tokens(enc)
                raise TermError(f"term {term!r} is not one token in {sentence!r}: got {pieces}")


def _single(tokenizer: Any, form: str) -> int | None:
    ids = _encode(tokenizer, form)
    return ids[0] if len(ids) == 1 else None


# -- model side --------------------------------------------------------------------------------------------

def check_model_tokenizer(model: Any, tokenizer: Any) -> None:
    """Refuse a tokenizer whose ids do not fit the model's embedding matrix (a model/tokenizer mismatch)."""
    from clinrag.core.models.embeddings import embedding_rows

    rows, top = embedding_rows(model), max_token_id(tokenizer)
    if top >= rows:
        raise TermError(f"model/tokenizer mismatch: the tokenizer has ids up to {top} but the model's embedding "
                        f"matrix has only {rows} rows; load the tokenizer that belongs to this model")


def extend_model(model: Any, tokenizer: Any, new_tokenizer: Any, plan: ExtensionPlan, init: str = "mean",
                 *, seed: int = 0) -> dict[str, Any]:
    """Grow ``model``'s embeddings to ``new_tokenizer`` (never shrinking) and initialise every new row."""
    from clinrag.core.models.embeddings import (
        check_init,
        embedding_rows,
        init_rows_global_mean,
        init_rows_random,
        init_rows_subtoken_mean,
        output_embeddings_untied,
    )

    check_init(init)
    check_model_tokenizer(model, tokenizer)
    rows_before = embedding_rows(model)
    needed = max_token_id(new_tokenizer) + 1
    if needed > rows_before:
        model.resize_token_embeddings(needed, mean_resizing=False)
    rows_after = embedding_rows(model)
    new_ids = [fp.id for fp in plan.forms]
    n_original = max_token_id(tokenizer) + 1
    weights = [model.get_input_embeddings().weight]
    untied = output_embeddings_untied(model)
    if untied:
        weights.append(model.get_output_embeddings().weight)
    for w in weights:
        if init == "mean":
            init_rows_subtoken_mean(w, new_ids, [fp.source_ids for fp in plan.forms])
        elif init == "hf":
            init_rows_global_mean(w, new_ids, n_original, seed=seed)
        else:
            std = float(getattr(model.config, "initializer_range", 0.02))
            init_rows_random(w, new_ids, std, seed=seed)
    for fp in plan.forms:
        fp.init = init
    return {"rows_before": rows_before, "rows_after": rows_after, "lm_head_untied": untied}


def build_manifest(base_model: str, tokenizer: Any, new_tokenizer: Any, plan: ExtensionPlan,
                   model_info: dict[str, Any]) -> dict[str, Any]:
    terms: dict[str, list[int]] = {}
    for fp in plan.forms:
        terms.setdefault(fp.term, []).append(fp.id)
    return {
        "format": MANIFEST_FORMAT,
        "base_model": base_model,
        "vocab_before": max_token_id(tokenizer) + 1,
        "vocab_after": max_token_id(new_tokenizer) + 1,
        **model_info,
        "added": [asdict(fp) for fp in plan.forms],
        "added_ids": [fp.id for fp in plan.forms],
        "terms": terms,
        "existing": plan.existing,
        "skipped": plan.skipped,
    }


def extend_vocabulary(model_spec: str | Path, terms: Sequence[str], out: str | Path, *, init: str = "mean",
                      tokenizer_spec: str | Path | None = None, seed: int = 0) -> dict[str, Any]:
    """Load, extend, save (atomically) a model folder with the extended tokenizer and ``added_tokens_manifest.json``;
    returns the manifest. The saved tokenizer is re-loaded and re-verified before the folder is moved in place."""
    from clinrag.core.io import atomic_dir_write
    from clinrag.core.models.embeddings import check_init
    from transformers import AutoTokenizer

    check_init(init)
    terms = validate_terms(terms)
    from clinrag.core.models.loading import load_model, load_tokenizer

    model = load_model(model_spec, device="cpu", dtype="float32", eval_mode=False)
    tokenizer = load_tokenizer(tokenizer_spec or model_spec, prepare=False)
    check_model_tokenizer(model, tokenizer)
    new_tok, plan = extend_tokenizer(tokenizer, terms)
    info = extend_model(model, tokenizer, new_tok, plan, init, seed=seed)
    manifest = build_manifest(str(model_spec), tokenizer, new_tok, plan, info)

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        new_tok.save_pretrained(tmp)
        reloaded = AutoTokenizer.from_pretrained(str(tmp))
        verify_forms(reloaded, plan.forms)
        for fp in plan.forms:
            if reloaded.convert_tokens_to_ids(fp.token) != fp.id:
                raise RuntimeError(f"{fp.form!r} changed id after saving")
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    atomic_dir_write(Path(out), write, kind="vocab-extend", legacy=(MANIFEST_NAME, "config.json"))
    return manifest



