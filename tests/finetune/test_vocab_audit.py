"""The audit on a crafted data set: expected recommendations, warning, outputs; term mining and classification."""

from __future__ import annotations

import json

import pytest
from clinrag.finetune.terms import classify, is_candidate, mine_terms
from clinrag.finetune.vocab_audit import AuditThresholds, run_audit


def _write_cases(path, n=30):
    rows = []
    for i in range(n):
        scenario = (f"A {30 + i}-year-old man with raised antitransglutaminase IgA, Hb 11.{i % 10} mg/dl and "
                    f"dyspnea. He takes corticosteroids.")
        if i < 2:
            scenario += " Biopsy showed glomerulonephritis."
        rows.append({"id": f"c{i}", "clinical_scenario": scenario, "questions": ["What is the diagnosis?"],
                     "answers": ["Celiac disease: antitransglutaminase antibodies are specific."]})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_classify_and_candidates():
    assert classify("CC(=O)Oc1ccccc1C(=O)O") == "symbolic"
    assert classify("mg/dl") == "symbolic" and classify("ATGCGTACGTTA") == "symbolic"
    assert classify("HbA1c") == "symbolic" and classify("5mg/kg") == "symbolic"
    assert classify("ALT") == "abbreviation" and classify("IgA") == "abbreviation"
    assert classify("thrombocytopenia") == "word" and classify("heart failure") == "multiword"
    assert not is_candidate("45-year-old") and not is_candidate("11.5") and not is_candidate("the")
    assert is_candidate("antitransglutaminase") and is_candidate("mg/dl")


def test_mining_folds_case_and_counts_contexts(tmp_path):
    from clinrag.core.cases import load_cases

    stats = mine_terms(load_cases(_write_cases(tmp_path / "c.jsonl")))
    st = stats["antitransglutaminase"]
    assert st.count == 60 and st.contexts == 30 and st.surface == "antitransglutaminase"
    assert stats["glomerulonephritis"].contexts == 2
    assert "45-year-old" not in stats


def test_audit_recommends_fragmented_frequent_terms_only(tmp_path):
    data = _write_cases(tmp_path / "cases.jsonl")
    glossary = tmp_path / "glossary.txt"
    glossary.write_text("# extra terms\nSjögren\nglomerulonephritis\n", encoding="utf-8")
    out = tmp_path / "audit"
    result = run_audit([data], out, glossary=glossary, domain_bpe=400)
    rows = {r["term"]: r for r in result["terms"]}
    assert sorted(result["recommended"]) == ["antitransglutaminase", "mg/dl"]
    assert rows["antitransglutaminase"]["pieces_space"] == 7 and rows["antitransglutaminase"]["kind"] == "word"
    assert rows["mg/dl"]["kind"] == "symbolic" and rows["mg/dl"]["recommendation"] == "add"
    assert "meaningful sub-words" in rows["corticosteroids"]["reason"]
    assert rows["glomerulonephritis"]["recommendation"] == "keep" and rows["glomerulonephritis"]["from_glossary"]
    assert "distinct contexts" in rows["glomerulonephritis"]["reason"] or "occurrences" in rows["glomerulonephritis"]["reason"]
    assert rows["Sjögren"]["count"] == 0 and rows["Sjögren"]["recommendation"] == "keep"
    assert "dyspnea" in rows and rows["dyspnea"]["recommendation"] == "keep"
    # 30 cases: far too few to learn new rows, and the audit says so.
    assert result["warning"] and "30 cases" in result["warning"]
    sav = result["savings"]
    # Each case: 2 × antitransglutaminase (7 → 1 token) + 1 × mg/dl (3 → 1): 14 tokens saved per case.
    assert sav["tokens_before"] - sav["tokens_after"] == sav["saved"] == 30 * (2 * 6 + 2)
    terms = [line for line in (out / "terms.txt").read_text().splitlines() if not line.startswith("#")]
    assert sorted(terms) == ["antitransglutaminase", "mg/dl"]
    assert "WARNING" in (out / "terms.txt").read_text()
    assert json.loads((out / "audit.json").read_text())["recommended"] == result["recommended"]
    assert "| antitransglutaminase | word |" in (out / "audit.md").read_text()
    assert (out / "fragmentation.png").read_bytes()[:4] == b"\x89PNG"
    # A domain BPE trained on the cases learns the frequent term as one token; the same criteria filter it.
    dom = result["domain_bpe"]
    assert "antitransglutaminase" in [p["term"] for p in dom["proposed"]]
    assert dom["added"] == ["antitransglutaminase"]


def test_thresholds_are_configurable(tmp_path):
    data = _write_cases(tmp_path / "cases.jsonl")
    result = run_audit([data], tmp_path / "a", thresholds=AuditThresholds(min_count=100, min_rows=10))
    assert result["recommended"] == [] and result["warning"] is None
    assert result["savings"]["saved"] == 0


def test_cli_audit_then_extend(tmp_path, tiny_qwen2_dir):
    from clinrag.cli import main
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = _write_cases(tmp_path / "cases.jsonl")
    assert main(["vocab", "audit", str(data), "--out", str(tmp_path / "audit")]) == 0
    out = tmp_path / "ext"
    assert main(["vocab", "extend", "--model", str(tiny_qwen2_dir), "--terms", str(tmp_path / "audit" / "terms.txt"),
                 "--out", str(out)]) == 0
    manifest = json.loads((out / "added_tokens_manifest.json").read_text())
    assert set(manifest["terms"]) == {"antitransglutaminase", "mg/dl"}
    tok = AutoTokenizer.from_pretrained(out)
    assert AutoModelForCausalLM.from_pretrained(out).get_input_embeddings().weight.shape[0] == 151_936
    ids = tok("Raised antitransglutaminase at 9 mg/dl", add_special_tokens=False)["input_ids"]
    assert set(manifest["added_ids"]) & set(ids) == {manifest["terms"]["antitransglutaminase"][0],
                                                     manifest["terms"]["mg/dl"][0]}
    assert main(["vocab", "extend", "--model", str(tiny_qwen2_dir), "--terms", str(tmp_path / "audit" / "terms.txt"),
                 "--out", str(tmp_path / "x"), "--init", "zeros"]) == 2
    (tmp_path / "bad.txt").write_text("the\n")
    assert main(["vocab", "extend", "--model", str(tiny_qwen2_dir), "--terms", str(tmp_path / "bad.txt"),
                 "--out", str(tmp_path / "y")]) == 2


@pytest.mark.parametrize("variant", ["base"])
def test_cli_tokenizer(tmp_path, variant):
    from clinrag.cli import main
    from transformers import AutoTokenizer

    assert main(["vocab", "tokenizer", "--out", str(tmp_path / "tok"), "--variant", variant]) == 0
    tok = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert tok.eos_token == "<|endoftext|>" and len(tok) == 151_665
