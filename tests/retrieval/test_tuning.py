"""Embedder tuning: the training pairs, the hard negatives mined from an index, and (slow) a few real training
steps through the CLI whose output folder loads, indexes, and is told apart from other weights."""

from __future__ import annotations

import json

import pytest
from clinrag.core.cases import Case
from clinrag.core.errors import IndexLoadError
from clinrag.retrieval.tuning import TuningError, mine_negatives, training_pairs


def cases_for(passages) -> list[Case]:
    p = passages
    return [Case(id="a", clinical_scenario="s", questions=[p[0].title, p[2].title, "no evidence"],
                 evidence=[[p[0].id, p[1].id, "not-in-corpus"], [p[2].id], []]),
            Case(id="b", clinical_scenario="s", questions=[p[4].title], evidence=[["not-in-corpus"]])]


def test_training_pairs_keep_gold_in_the_corpus_and_cap_positives(small_passages):
    pairs, skipped = training_pairs(cases_for(small_passages), small_passages, positives_per_question=1)
    assert [(q, p.id) for q, p, _ in pairs] == [(small_passages[0].title, small_passages[0].id),
                                              (small_passages[2].title, small_passages[2].id)]
    assert pairs[0][2] == {small_passages[0].id, small_passages[1].id}
    assert skipped == 2  # "no evidence" and a question whose only gold id is not in the corpus
    pairs, _ = training_pairs(cases_for(small_passages), small_passages, positives_per_question=3)
    assert len(pairs) == 3


def test_hard_negatives_are_top_ranked_but_never_gold_or_same_title(small_passages, small_index, embedder):
    pairs, _ = training_pairs(cases_for(small_passages), small_passages)
    negatives = mine_negatives(pairs, small_index, embedder, depth=10)
    assert len(negatives) == len(pairs)
    for (question, positive, gold), negative in zip(pairs, negatives):
        assert negative.id not in gold and negative.title.lower() != positive.title.lower()
        ranked = [h.passage for h in small_index.search_vectors(embedder.encode_queries([question]), 10)[0]]
        allowed = [p for p in ranked if p.id not in gold and p.title.lower() != positive.title.lower()]
        assert negative.id == allowed[0].id  # the best-ranked passage that is neither


def test_nothing_to_train_on_is_a_one_line_error(small_passages, small_index, embedder, tmp_path):
    from clinrag.retrieval.tuning import tune_embedder

    bare = [Case(id="x", clinical_scenario="s", questions=["q"], evidence=[["missing"]])]
    with pytest.raises(TuningError, match="^no question of the given cases has gold evidence in the corpus"):
        tune_embedder(bare, small_passages, tmp_path / "out", index=small_index, embedder=embedder)


@pytest.mark.slow
def test_tune_build_and_identity_end_to_end(small_passages, tmp_path, capsys):
    from clinrag.cli import main
    from clinrag.core.types import Query
    from clinrag.retrieval.embedder import SentenceTransformerEmbedder
    from clinrag.retrieval.retriever import IndexRetriever
    from sentence_transformers import SentenceTransformer

    corpus = tmp_path / "kb.jsonl"
    corpus.write_text("".join(json.dumps({"id": p.id, "title": p.title, "text": p.text}) + "\n"
                              for p in small_passages), encoding="utf-8")
    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(c.model_dump_json() + "\n" for c in cases_for(small_passages)), encoding="utf-8")
    tuned = tmp_path / "tuned"
    tune = ["index", "tune-embedder", str(cases), "--corpus", str(corpus), "--out", str(tuned), "--max-steps", "2",
            "--batch-size", "2"]
    assert main(tune) == 0  # no --index: built on the fly for hard negatives
    assert "3 pairs from 2 questions, 2 steps" in capsys.readouterr().err
    assert (tuned / "model.safetensors").exists() and not list(tuned.rglob("*.bin"))
    record = json.loads((tuned / "clinrag_tuning.json").read_text())
    assert record["loss"] == "MultipleNegativesRankingLoss" and record["steps"] == 2
    assert SentenceTransformer(str(tuned), device="cpu").encode(["gout"]).shape == (1, 384)

    index = tmp_path / "idx"
    assert main(["index", "build", str(corpus), "--out", str(index), "--embedder", str(tuned)]) == 0
    manifest = json.loads((index / "manifest.json").read_text())
    assert manifest["embedder_config"]["path"] == str(tuned.resolve())
    assert len(manifest["embedder_config"]["weights_sha256"]) == 64
    assert IndexRetriever(index).retrieve([Query("gout")], 2)

    base = IndexRetriever(index, embedder=SentenceTransformerEmbedder())
    with pytest.raises(IndexLoadError, match="built with embedder"):
        _ = base.embedder  # untuned MiniLM on the tuned index: refused by name
    capsys.readouterr()
    assert main(tune + ["--index", str(index)]) == 2  # negatives from the tuned index for the base model: refused
    assert "built with embedder" in capsys.readouterr().err
    assert main(tune + ["--seed", "1"]) == 0  # re-trained into the same folder
    with pytest.raises(IndexLoadError, match="search it with the embedder it was built with"):
        _ = IndexRetriever(index).embedder  # same name, other weights: refused by hash
    capsys.readouterr()
    assert main(["index", "search", str(index), "gout"]) == 2
    err = capsys.readouterr().err.strip()
    assert "search it with the embedder it was built with" in err and "\n" not in err
