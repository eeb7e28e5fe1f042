"""One way to read option values: KEY=VALUE pairs (JSON values) and string enums, errors naming the flag."""

from __future__ import annotations

import pytest
from clinrag.cli.options import generator_options, parse_filters, parse_key_values
from clinrag.core.errors import ClinragError
from clinrag.retrieval.options import RetrievalMode


def test_values_are_json_when_they_parse_else_text():
    opts = parse_key_values(["n=3", "temperature=0.2", "refine=true", "name=x", "tags=[\"a\", \"b\"]", "empty=",
                             " spaced = y", "n=4"], "--option")
    assert opts == {"n": 4, "temperature": 0.2, "refine": True, "name": "x", "tags": ["a", "b"], "empty": "",
                    "spaced": " y"}
    assert parse_key_values(None, "--option") == {}


@pytest.mark.parametrize("pair", ["novalue", "=3", " =x"])
def test_a_pair_without_a_key_names_the_option(pair):
    with pytest.raises(ClinragError, match=rf"^--strategy-option '{pair}': expected KEY=VALUE$"):
        parse_key_values([pair], "--strategy-option")


def test_filters_accept_alternatives_and_json_or_text_metadata():
    assert parse_filters(["source=MedQuAD|PubMedQA", "year=2020", "flag=true", "ids=[1, \"x\"]"]) == {
        "source": ["MedQuAD", "PubMedQA"], "year": [2020, "2020"], "flag": [True, "true"],
        "ids": [1, "x", "[1, \"x\"]"]}
    with pytest.raises(ClinragError, match="--filter 'source': expected KEY=VALUE"):
        parse_filters(["source"])


def test_generator_options_merge_the_common_flags_over_extra_pairs():
    assert generator_options("m", None, "http://h/v1", 8, ["model=ignored", "timeout=5"]) == {
        "model": "m", "timeout": 5, "base_url": "http://h/v1", "max_new_tokens": 8}


def test_an_unknown_enum_value_names_the_option_and_lists_the_valid_ones():
    assert RetrievalMode.parse("hybrid", option="--mode") is RetrievalMode.hybrid
    with pytest.raises(ClinragError, match=r"^--mode: unknown retrieval mode 'x' \(valid: auto, dense, bm25, hybrid\)$"):
        RetrievalMode.parse("x", option="--mode")
    with pytest.raises(ClinragError, match=r"^unknown retrieval mode 'x'"):
        RetrievalMode.parse("x")
