"""The manifest's embedder identity: path + weight hash recorded, a mismatch refused, legacy indexes warned."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest
from clinrag.core.errors import IndexLoadError
from clinrag.retrieval.identity import (
    LegacyIndexWarning,
    check_identity,
    identity,
    weights_sha256,
)
from clinrag.retrieval.store import PassageIndex


def test_weights_hash_covers_every_safetensors_file(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"a" * 10)
    first = weights_sha256(tmp_path)
    assert first and len(first) == 64
    (tmp_path / "2_Dense").mkdir()
    (tmp_path / "2_Dense" / "model.safetensors").write_bytes(b"b")
    second = weights_sha256(tmp_path)
    assert second != first
    (tmp_path / "model.safetensors").write_bytes(b"c" * 10)  # same size, new content
    assert weights_sha256(tmp_path) not in (first, second)
    assert weights_sha256(tmp_path / "absent") is None
    assert identity("org/hub-model") == {"path": "org/hub-model", "weights_sha256": None}


def test_check_identity_only_when_both_sides_know():
    check_identity({"name": "m"}, {"weights_sha256": "a" * 64})  # legacy index: nothing to compare
    check_identity({"name": "m", "weights_sha256": "a" * 64}, {})
    check_identity({"name": "m", "weights_sha256": "a" * 64}, {"weights_sha256": "a" * 64})
    with pytest.raises(IndexLoadError, match=r"^index was built with embedder 'm' \(weights aaaaaaaaaaaa…\), but "
                                             r"the embedder given has weights bbbbbbbbbbbb…") as err:
        check_identity({"name": "m", "weights_sha256": "a" * 64}, {"weights_sha256": "b" * 64, "path": "/x"})
    assert "\n" not in str(err.value)


def test_manifest_records_identity_and_old_indexes_warn(small_index_dir, embedder, tmp_path):
    cfg = json.loads((small_index_dir / "manifest.json").read_text())["embedder_config"]
    assert cfg["weights_sha256"] == embedder.describe()["weights_sha256"] and len(cfg["weights_sha256"]) == 64
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PassageIndex.load(small_index_dir).check_embedder(embedder)
    legacy = tmp_path / "legacy"
    shutil.copytree(small_index_dir, legacy)
    manifest = json.loads((legacy / "manifest.json").read_text())
    for key in ("weights_sha256", "path"):
        manifest["embedder_config"].pop(key)
    (legacy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.warns(LegacyIndexWarning, match="cannot be verified"):
        PassageIndex.load(legacy).check_embedder(embedder)


def test_same_name_other_weights_is_refused(small_index_dir, embedder, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(small_index_dir, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["embedder_config"]["weights_sha256"] = "0" * 64  # as if built by a model re-trained in place
    (other / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    from clinrag.retrieval.retriever import IndexRetriever

    with pytest.raises(IndexLoadError, match="search it with the embedder it was built with"):
        _ = IndexRetriever(other).embedder
    with pytest.raises(IndexLoadError, match="weights 000000000000…"):
        _ = IndexRetriever(other, embedder=embedder).embedder
