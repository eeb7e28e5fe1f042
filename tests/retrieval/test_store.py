"""The persistent index: round trip, integrity errors, incremental add, modes, filters and ANN types."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from clinrag.core.errors import ClinragError, IndexLoadError
from clinrag.core.types import Passage
from clinrag.retrieval.store import PassageIndex, RetrievalMode, passage_input

QUERIES = ["first-line treatment of high blood pressure", "ECG changes in myocardial infarction",
           "insulin for type 1 diabetes", "antibiotics for pneumonia"]


def ranked(hit_lists):
    return [[(h.id, round(h.score, 5)) for h in row] for row in hit_lists]


@pytest.fixture(scope="module")
def qvecs(embedder):
    return embedder.encode_queries(QUERIES)


def test_round_trip_gives_identical_results(small_index, small_index_dir, qvecs):
    loaded = PassageIndex.load(small_index_dir)
    assert loaded.passages == small_index.passages
    assert [p.metadata for p in loaded.passages] == [p.metadata for p in small_index.passages]
    for mode in RetrievalMode:
        a = small_index.search(k=5, mode=mode, vectors=qvecs, texts=QUERIES)
        b = loaded.search(k=5, mode=mode, vectors=qvecs, texts=QUERIES)
        assert ranked(a) == ranked(b) and all(len(r) == 5 for r in a)
    m = loaded.manifest
    assert m["embedder"] == "all-MiniLM-L6-v2" and m["dimension"] == 384 and m["normalized"] is True
    assert m["passages"] == 24 and m["index_type"] == "flat" and m["bm25"]["library"] == "bm25s"
    assert m["embedder_config"]["precision"] in ("fp32", "bf16") and len(m["checksum"]) == 64
    assert set(m["files"]) == {"passages.jsonl", "dense.faiss", "bm25/params.index.json", "bm25/vocab.index.json",
                               "bm25/data.csc.index.npy", "bm25/indices.csc.index.npy", "bm25/indptr.csc.index.npy"}
    assert not list(small_index_dir.parent.glob(".index.tmp-*"))  # atomic write left no temp folder


def test_dense_scores_are_cosine(small_index, qvecs, embedder):
    hit = small_index.search_vectors(qvecs[:1], 1)[0][0]
    pvec = embedder.encode_passages([passage_input(hit.passage)])[0]
    assert hit.score == pytest.approx(float(pvec @ qvecs[0]), abs=2e-3)


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "dense.faiss").write_bytes((d / "dense.faiss").read_bytes()[:1000]), "truncated or replaced"),
    (lambda d: (d / "passages.jsonl").write_text(
        (d / "passages.jsonl").read_text().replace("blood", "bl00d"), encoding="utf-8"), "checksum differs"),
    (lambda d: (d / "bm25" / "vocab.index.json").unlink(), "missing from the index folder"),
    (lambda d: (d / "manifest.json").write_text("{not json", encoding="utf-8"), "corrupted manifest"),
    (lambda d: (d / "manifest.json").write_text('{"format": "other"}', encoding="utf-8"), "not a clinrag index"),
    (lambda d: (d / "manifest.json").unlink(), "not a clinrag index"),
])
def test_damaged_folders_give_clear_errors(small_index_dir, tmp_path, damage, message):
    copy = tmp_path / "copy"
    shutil.copytree(small_index_dir, copy)
    damage(copy)
    with pytest.raises(IndexLoadError, match=message):
        PassageIndex.load(copy)


def test_faiss_file_corrupted_without_manifest_digest_is_still_caught(small_index_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(small_index_dir, copy)
    m = json.loads((copy / "manifest.json").read_text())
    del m["files"]["dense.faiss"]  # as if the manifest did not list it: FAISS itself must refuse the file
    (copy / "manifest.json").write_text(json.dumps(m))
    (copy / "dense.faiss").write_bytes(b"garbage" * 10)
    with pytest.raises(IndexLoadError, match="dense.faiss: cannot be read"):
        PassageIndex.load(copy)


def test_mismatched_embedder_and_foreign_folder(small_index_dir, tmp_path):
    from clinrag.retrieval.retriever import IndexRetriever

    with pytest.raises(IndexLoadError, match="built with embedder 'all-MiniLM-L6-v2'"):
        PassageIndex.load(small_index_dir, expect_embedder="BAAI/bge-small-en-v1.5")

    class OtherEmbedder:
        name, dimension = "intfloat/e5-small-v2", 384

    with pytest.raises(IndexLoadError, match="'intfloat/e5-small-v2' was given"):
        IndexRetriever(small_index_dir, embedder=OtherEmbedder()).embedder
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "index.faiss").write_bytes(b"x")
    with pytest.raises(IndexLoadError, match="not a clinrag index"):
        PassageIndex.load(tmp_path / "foreign")
    with pytest.raises(IndexLoadError, match="not found"):
        PassageIndex.load(tmp_path / "missing")


def test_incremental_add_equals_full_rebuild(small_passages, small_index, embedder, qvecs, tmp_path):
    base = PassageIndex.build(small_passages[:16], embedder)
    base.save(tmp_path / "inc")
    grown = PassageIndex.load(tmp_path / "inc")
    assert grown.add(small_passages[16:], embedder) == 8
    grown.save(tmp_path / "inc")
    grown = PassageIndex.load(tmp_path / "inc")
    assert [p.id for p in grown.passages] == [p.id for p in small_index.passages]
    assert grown.manifest["checksum"] == PassageIndex.load(small_index.save(tmp_path / "full")).manifest["checksum"]
    np.testing.assert_allclose(grown.vectors(), small_index.vectors(), atol=5e-3)
    for mode in RetrievalMode:
        a = grown.search(k=5, mode=mode, vectors=qvecs, texts=QUERIES)
        b = small_index.search(k=5, mode=mode, vectors=qvecs, texts=QUERIES)
        assert [[h.id for h in r] for r in a] == [[h.id for h in r] for r in b]
        for ra, rb in zip(a, b):
            assert [h.score for h in ra] == pytest.approx([h.score for h in rb], rel=5e-3, abs=5e-3)
    with pytest.raises(ClinragError, match="duplicate passage id"):
        grown.add(small_passages[:1], embedder)


def test_modes_filters_and_bm25_scores(small_index, qvecs):
    bm = small_index.search(k=24, mode="bm25", texts=["zzqx unknownterm"])
    assert bm == [[]]  # no query term in the vocabulary: nothing scores, nothing is returned
    hyb = small_index.search(k=3, mode="hybrid", vectors=qvecs[:1], texts=QUERIES[:1], fusion="rrf")[0]
    assert [h.rank for h in hyb] == [0, 1, 2] and all(0 < h.score <= 2 / 61 for h in hyb)
    z = small_index.search(k=3, mode="hybrid", vectors=qvecs[:1], texts=QUERIES[:1])[0]  # z-score: the default
    assert [h.rank for h in z] == [0, 1, 2] and z[0].score > 0 and z[0].score >= z[1].score >= z[2].score
    assert small_index.search(k=3, mode="auto", vectors=qvecs[:1], texts=QUERIES[:1])[0] == z
    for mode in RetrievalMode:
        rows = small_index.search(k=5, mode=mode, vectors=qvecs, texts=QUERIES, filters={"source": "odd"})
        assert all(h.passage.metadata["source"] == "odd" for row in rows for h in row)
        assert all(row for row in rows)
    none = small_index.search(k=5, mode="dense", vectors=qvecs, texts=QUERIES, filters={"source": "nope"})
    assert none == [[]] * len(QUERIES)
    both = small_index.search_vectors(qvecs, 30, filters={"source": ["odd", "even"]})
    assert all(len(r) == 24 for r in both)
    with pytest.raises(ClinragError, match="valid: auto, dense, bm25, hybrid"):
        small_index.search(k=1, mode="sparse", texts=["x"])


def test_no_bm25_index_refuses_bm25_mode(small_passages, small_index, tmp_path):
    dense_only = PassageIndex.from_vectors(small_passages, small_index.vectors(), small_index.embedder_config,
                                           bm25=False)
    loaded = PassageIndex.load(dense_only.save(tmp_path / "d"))
    assert loaded.bm25 is None and loaded.manifest["bm25"] is None
    with pytest.raises(ClinragError, match="no BM25 state"):
        loaded.search(k=1, mode="bm25", texts=["blood pressure"])
    assert loaded.resolve_mode("auto") is RetrievalMode.dense  # the default falls back to what the index has
    assert small_index.resolve_mode("auto") is RetrievalMode.hybrid


@pytest.mark.parametrize("kind, params", [("hnsw", {"M": 8, "ef_search": 64}), ("ivf", {"nlist": 4, "nprobe": 4}),
                                          ("ivfpq", {"nlist": 2, "nprobe": 2, "pq_m": 8, "pq_bits": 4})])
def test_ann_types_round_trip_with_parameters(small_passages, small_index, qvecs, tmp_path, kind, params):
    from clinrag.retrieval.ann import AnnSpec

    idx = PassageIndex.from_vectors(small_passages, small_index.vectors(), small_index.embedder_config,
                                    index=AnnSpec.of(kind, **params))
    loaded = PassageIndex.load(idx.save(tmp_path / kind))
    assert loaded.manifest["index_params"] == {"type": kind, **{k: v for k, v in loaded.ann.params().items()
                                                               if k != "type"}}
    for key, value in params.items():
        assert loaded.manifest["index_params"][key] == value
    a, b = ranked(idx.search_vectors(qvecs, 5)), ranked(loaded.search_vectors(qvecs, 5))
    assert a == b
    if kind != "ivfpq":  # on 24 passages with every cell probed, HNSW/IVF-Flat are exact
        assert [[i for i, _ in r] for r in a] == [[h.id for h in r] for r in small_index.search_vectors(qvecs, 5)]
    rows = loaded.search_vectors(qvecs, 5, filters={"source": "even"})
    assert all(h.passage.metadata["source"] == "even" for r in rows for h in r)


def test_auto_picks_exact_for_small_corpora_and_errors_list_values():
    from clinrag.retrieval.ann import AnnSpec

    assert AnnSpec.of("auto").resolve(29_285, 384).type.value == "flat"
    assert AnnSpec.of("auto").resolve(2_000_000, 384).type.value == "ivf"
    assert AnnSpec.of("auto").resolve(2_000_000, 384).nlist == int(4 * 2_000_000 ** 0.5)
    assert AnnSpec.of("auto").resolve(20_000_000, 384).pq_m == 48
    with pytest.raises(ClinragError, match="valid: auto, flat, hnsw, ivf, ivfpq"):
        AnnSpec.of("annoy")


def test_empty_and_duplicate_builds_are_errors(embedder):
    with pytest.raises(ClinragError, match="no passages"):
        PassageIndex.build([], embedder)
    with pytest.raises(ClinragError, match="duplicate passage id 'a'"):
        PassageIndex.build([Passage("a", "x"), Passage("a", "y")], embedder)


def test_filter_values_lists_and_missing_keys():
    from clinrag.retrieval.store import _filter_mask

    ps = [Passage("a", "x", metadata={"tags": ["x", "y"], "source": "s1"}), Passage("b", "x", metadata={"tags": "z"}),
          Passage("c", "x", "T")]
    assert _filter_mask(ps, {"tags": "y"}).tolist() == [True, False, False]  # list-valued metadata: any element
    assert _filter_mask(ps, {"tags": ["z", "q"]}).tolist() == [False, True, False]  # accepted values: any of them
    assert _filter_mask(ps, {"source": "s1", "tags": "x"}).tolist() == [True, False, False]  # all filters must hold
    assert _filter_mask(ps, {"title": "T"}).tolist() == [False, False, True]
    assert _filter_mask(ps, None) is None
