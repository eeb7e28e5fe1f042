"""Supervised fine-tuning (TRL ``SFTTrainer`` + PEFT + bitsandbytes) of a small chat model on clinical cases.

Run::

    clinrag finetune --config examples/finetune/qwen25-0.5b-qlora.yaml
    clinrag finetune --model Qwen/Qwen2.5-0.5B-Instruct --data cases.jsonl --eval-data dev.jsonl \\
        --index .cache/index --mode qlora --preset small-data --out runs/qwen-qlora
    clinrag finetune --config FILE.yaml --resume            # continue after a kill, same result
    accelerate launch --config_file examples/accelerate/ddp.yaml -m clinrag.cli finetune --config FILE.yaml

Order of work: resolve the config, build every example and check tokenizer/manifest (errors here, before any model
loads), load the model (4-bit NF4 for qlora), resize its embeddings to the tokenizer (never shrinking), wrap it with
LoRA (+ ``trainable_token_indices`` for the new vocabulary rows), optionally run continual pre-training on raw text,
train with eval/early stopping/checkpoints, then write the output folder atomically-per-file:
``adapter_model.safetensors`` + ``adapter_config.json`` (a standard PEFT folder whose ``base_model_name_or_path``
is the base), tokenizer files, ``config.resolved.yaml``, ``added_tokens_manifest.json`` (if any), ``metrics.json``,
``report.md`` and ``loss.png``. Checkpoints live in ``<out>/checkpoints``; with
``--train.report_to tensorboard`` the event files go to ``<out>/runs/``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import time
from pathlib import Path
from typing import Any

from clinrag.core.io import check_output_dir, claim_output_dir
from clinrag.core.models.manifest import (
    MANIFEST_NAME,
    TRAINING_RECORD,
    check_manifest_against_tokenizer,
    load_manifest,
)

from .checkpoints import drop_incomplete, last_complete_checkpoint
from .config import (
    ComputeDtype,
    DataError,
    DataFormat,
    Dtype,
    FinetuneConfig,
    Mode,
    dump_yaml,
)
from .data import PreparedData, prepare_data, to_dataset
from .trainer import make_trainer_class
from .trl_args import to_bnb_config, to_peft_config, to_sft_config
from .trl_compat import (
    keep_4bit_weights_trainable,
    total_train_tokens,
    trainable_token_layers,
)

CONFIG_NAME = "config.resolved.yaml"

# -- model loading (through clinrag's one loader) ---------------------------------------------------------------------

def _cuda(cfg: FinetuneConfig) -> bool:
    import torch

    return torch.cuda.is_available() and not cfg.train.cpu


def _load_tokenizer(cfg: FinetuneConfig) -> Any:
    """The model's tokenizer, or ``model.tokenizer`` (a folder may hold only tokenizer files, so no resolve_source)."""
    from clinrag.core.models.loading import ModelSource, load_tokenizer, resolve_source

    src = cfg.model.tokenizer
    if src and Path(src).is_dir():
        source = ModelSource("folder", str(Path(src).resolve()))
    else:
        source = resolve_source(src or cfg.model.name_or_path)
    return load_tokenizer(source, trust_remote_code=cfg.model.trust_remote_code)


def _load_model(cfg: FinetuneConfig, tokenizer: Any) -> tuple[Any, tuple[int, int]]:
    """The base model (4-bit for qlora), embeddings grown to the tokenizer (never shrunk)."""
    from clinrag.core.models.embeddings import resize_to_tokenizer
    from clinrag.core.models.loading import load_model, resolve_source

    bnb = to_bnb_config(cfg)
    if bnb is not None:  # quantised straight onto this rank's device; the unquantised layers in the compute dtype
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if _cuda(cfg) else "cpu"
        dtype = ComputeDtype(cfg.model.bnb_4bit_compute_dtype).value
    else:  # loaded on the CPU; the Trainer moves it to the training device
        device = "cpu"
        dtype = Dtype(cfg.model.dtype).value if cfg.model.dtype != Dtype.AUTO else "bfloat16" if _cuda(cfg) else "float32"
    model = load_model(resolve_source(cfg.model.name_or_path), device=device, dtype=dtype,
                       trust_remote_code=cfg.model.trust_remote_code, quantization_config=bnb,
                       attn_implementation=cfg.model.attn_implementation)
    if bnb is not None and device == "cpu":
        keep_4bit_weights_trainable(model)  # evaluation between training steps must not repack the weights
    rows = resize_to_tokenizer(model, tokenizer)
    return model, rows


def untied_head_name(model: Any) -> str | None:
    """The module name of the model's LM head when its config unties it from the input embedding, else None."""
    if getattr(model.config, "tie_word_embeddings", True):
        return None
    head = model.get_output_embeddings()
    return next((name for name, module in model.named_modules() if module is head), None)


def wrap_peft(model: Any, cfg: FinetuneConfig, new_ids: list[int]) -> Any:
    if cfg.peft.mode == Mode.FULL:
        return model
    from peft import get_peft_model, prepare_model_for_kbit_training

    head = untied_head_name(model)  # read before kbit preparation; bitsandbytes leaves the LM head unquantised
    if cfg.peft.mode == Mode.QLORA:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.train.gradient_checkpointing)
    return get_peft_model(model, to_peft_config(cfg, new_ids, untied_head=head))


# -- metrics --------------------------------------------------------------------------------------------------------

def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timing_callback() -> Any:
    from transformers import TrainerCallback

    class Timing(TrainerCallback):
        """Wall time spent in training steps only (evaluation and checkpoint saving excluded)."""

        def __init__(self) -> None:
            self.train_seconds = 0.0
            self._t: float | None = None

        def on_step_begin(self, args, state, control, **kw):
            self._t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if self._t is not None:
                self.train_seconds += time.perf_counter() - self._t
                self._t = None

    return Timing()


# -- the run --------------------------------------------------------------------------------------------------------

def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _tensorboard_dir(trainer: Any, out: Path) -> None:
    """With ``report_to`` tensorboard, write the event files to ``<out>/runs/<time>_<host>``.

    transformers' callback picks its folder in ``on_train_begin``; an evaluation before training (eval_before)
    logs first and would open a writer in ``./runs`` of the current directory. TENSORBOARD_LOGGING_DIR still wins.
    """
    from transformers.integrations import TensorBoardCallback
    from transformers.integrations.integration_utils import default_logdir

    for cb in trainer.callback_handler.callbacks:
        if isinstance(cb, TensorBoardCallback) and cb.logging_dir is None:
            cb.logging_dir = str(out / default_logdir())


def _place(src: Path, dst_dir: Path) -> None:
    """Move one finished file into the output folder (rename: a reader never sees half a file)."""
    os.replace(src, dst_dir / src.name)


def prepare(cfg: FinetuneConfig, *, embedder: Any = None) -> tuple[PreparedData, Any, list[int], dict[str, Any] | None]:
    """Everything that can fail on bad input, before any model loads: data, tokenizer, manifest."""
    data = prepare_data(cfg.data, seed=cfg.train.seed, embedder=embedder)
    tok = _load_tokenizer(cfg)
    manifest, new_ids = None, []
    if cfg.model.vocab_manifest:
        manifest = load_manifest(cfg.model.vocab_manifest)
        new_ids = check_manifest_against_tokenizer(manifest, tok, cfg.model.vocab_manifest)
    long = count_too_long(data.train_rows + data.eval_rows, tok, cfg.train.max_length)
    if long:
        data.notes.append(f"{long} examples are longer than max_length={cfg.train.max_length} tokens and will be "
                          f"truncated from the end (their completion may be cut); raise train.max_length")
    return data, tok, new_ids, manifest


def count_too_long(rows: list[dict[str, Any]], tok: Any, max_length: int) -> int:
    """How many rows (prompt + completion, chat template applied) exceed ``max_length`` tokens."""
    n = 0
    for r in rows:
        text = tok.apply_chat_template(r["prompt"] + r["completion"], tokenize=False)
        n += len(tok(text, add_special_tokens=False)["input_ids"]) > max_length
    return n


def training_record(cfg: FinetuneConfig, data: Any) -> dict[str, Any]:
    """What an adapter was trained on, saved beside it: loading it under other prompt templates warns once."""
    from clinrag.core.prompts import templates_hash

    return {"prompt_templates_hash": templates_hash(), "base_model": cfg.model.name_or_path,
            "train": cfg.data.train, "index": cfg.data.index, "format": str(getattr(cfg.data.format, "value", cfg.data.format)),
            "train_examples": len(data.train_rows), "eval_examples": len(data.eval_rows)}


def run_finetune(cfg: FinetuneConfig, *, embedder: Any = None, log: Any = print,
                 option_eval_cases: Any = None, callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Train per ``cfg`` and write the output folder; returns the metrics written to ``metrics.json``.

    ``callbacks`` are extra ``transformers.TrainerCallback`` objects (the resume test stops a run half-way).
    """
    import torch
    from transformers import EarlyStoppingCallback

    from .report import option_accuracy, write_report

    # A --out that is a file or a folder of the user's fails now, not after the data and tokenizer are prepared.
    check_output_dir(Path(cfg.train.out), "finetune", legacy=(CONFIG_NAME,))
    data, tok, new_ids, manifest = prepare(cfg, embedder=embedder)
    for note in data.notes:
        log(f"note: {note}")
    log(f"data: {len(data.train_rows)} train examples ({data.train_stats.question_examples} question, "
        f"{data.train_stats.summary_examples} summary, {data.train_stats.whole_case_examples} whole-case) from "
        f"{len(data.split.train)} cases; {len(data.eval_rows)} eval examples from {len(data.split.eval)} cases")

    out = Path(cfg.train.out)
    # --out must be absent, empty or an earlier finetune's output (never the user's folder) before anything in it
    # is deleted or written.
    claim_output_dir(out, "finetune", legacy=(CONFIG_NAME,))
    ckpt_dir = out / "checkpoints"
    cuda = _cuda(cfg)
    has_eval = bool(data.eval_rows)
    args = to_sft_config(cfg, ckpt_dir, has_eval=has_eval, cuda=cuda)  # a bad SFTConfig field fails before loading
    resume_from = None
    if cfg.train.resume:
        drop_incomplete(ckpt_dir, log)
        last = last_complete_checkpoint(ckpt_dir)
        resume_from = str(last[1]) if last else None
        log(f"resuming from {resume_from}" if resume_from else "note: --resume given but no checkpoint found; "
            "starting from scratch")
    if not cfg.train.resume and ckpt_dir.exists() and any(ckpt_dir.iterdir()):
        shutil.rmtree(ckpt_dir)  # a fresh run must not mix with an older run's checkpoints
    # A finished earlier run's metrics.json would make this run's folder look finished if it is interrupted:
    # it is written again, with this run's figures, only at the end.
    if (out / "metrics.json").exists():
        (out / "metrics.json").unlink(missing_ok=True)  # missing_ok: another rank may have removed it
        log(f"note: removed the earlier run's {out / 'metrics.json'}; this run writes it when it finishes")
    # The resolved config sits beside the checkpoints from the start (an interrupted run documents itself too).
    _write_atomic(out / CONFIG_NAME, dump_yaml(cfg))

    torch.manual_seed(cfg.train.seed)
    model, rows = _load_model(cfg, tok)
    if rows[1] != rows[0]:
        log(f"embeddings grown from {rows[0]} to {rows[1]} rows for {len(tok)} tokenizer ids")
    model = wrap_peft(model, cfg, new_ids)
    token_layers = trainable_token_layers(model) if new_ids else []
    if token_layers:
        log(f"training {len(new_ids)} new vocabulary rows exactly in {' and '.join(token_layers)} "
            f"(trainable_token_indices)")

    metrics: dict[str, Any] = {"mode": Mode(cfg.peft.mode).value, "format": DataFormat(cfg.data.format).value,
                               "new_token_ids": len(new_ids), "new_token_layers": token_layers,
                               "train_examples": len(data.train_rows), "eval_examples": len(data.eval_rows),
                               "train_cases": len(data.split.train), "eval_cases": len(data.split.eval),
                               "with_passages": data.train_stats.with_passages, "notes": data.notes,
                               "linear4bit_layers": sum(type(m).__name__ == "Linear4bit" for m in model.modules()),
                               "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    opt_cases = option_eval_cases if option_eval_cases is not None else (
        [c for c in data.split.eval if c.options and c.answer_key] if cfg.train.option_eval else [])

    if cfg.train.cpt_corpus and cfg.train.cpt_steps > 0 and resume_from is None:
        metrics["cpt"] = _continual_pretraining(cfg, model, tok, log)

    trainer_cls = make_trainer_class()
    timing = _timing_callback()
    callbacks = [timing, *(callbacks or [])]
    if has_eval and cfg.train.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.train.early_stopping_patience))
    trainer = trainer_cls(model=model, args=args, train_dataset=to_dataset(data.train_rows),
                          eval_dataset=to_dataset(data.eval_rows) if has_eval else None, processing_class=tok,
                          callbacks=callbacks)
    metrics["loss_head"] = trainer.loss_head
    _tensorboard_dir(trainer, out)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    if resume_from is None:
        if has_eval and cfg.train.eval_before:
            metrics["eval_loss_before"] = float(trainer.evaluate()["eval_loss"])
            log(f"eval loss before training: {metrics['eval_loss_before']:.4f}")
        if opt_cases:
            metrics["option_accuracy_before"] = option_accuracy(trainer.model, tok, opt_cases)
            log(f"option accuracy before: {metrics['option_accuracy_before']['accuracy']:.3f}")
    result = trainer.train(resume_from_checkpoint=resume_from)
    tokens = total_train_tokens(trainer)  # real (non-pad) tokens trained on
    state = trainer.state
    metrics.update(
        train_loss=float(result.training_loss), global_step=int(state.global_step), epoch=float(state.epoch or 0),
        train_seconds=round(timing.train_seconds, 3), train_tokens=tokens,
        tokens_per_s=round(tokens / timing.train_seconds, 2) if timing.train_seconds else None,
        peak_rss_mb=round(peak_rss_mb(), 1),
        peak_cuda_mb=round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
        best_checkpoint=state.best_model_checkpoint, best_eval_loss=state.best_metric,
        resumed_from=resume_from,
    )
    if has_eval:
        # The best checkpoint was loaded at the end and its eval loss is already known: no second eval pass.
        loaded_best = state.best_metric is not None and state.best_model_checkpoint is not None
        metrics["eval_loss_after"] = (float(state.best_metric) if loaded_best
                                      else float(trainer.evaluate()["eval_loss"]))
        log(f"eval loss after training (best checkpoint): {metrics['eval_loss_after']:.4f}")
    if opt_cases:
        metrics["option_accuracy_after"] = option_accuracy(trainer.model, tok, opt_cases)
        log(f"option accuracy after: {metrics['option_accuracy_after']['accuracy']:.3f}")

    # Every rank calls save_model (FSDP/ZeRO-3 gather the weights there); only rank 0 writes files.
    tmp = out / ".final-tmp"
    if trainer.is_world_process_zero() and tmp.exists():
        shutil.rmtree(tmp)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(tmp))
    if not trainer.is_world_process_zero():
        return metrics
    try:
        (tmp / "training_args.bin").unlink(missing_ok=True)  # a pickle: not part of the deliverable
        tok.save_pretrained(str(tmp))
        (tmp / CONFIG_NAME).write_text(dump_yaml(cfg), encoding="utf-8")
        (tmp / TRAINING_RECORD).write_text(json.dumps(training_record(cfg, data), indent=2) + "\n", encoding="utf-8")
        if manifest is not None:
            (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        report = write_report(state.log_history, metrics, tmp)
        metrics["overfitting"] = report["overfitting"]
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str), encoding="utf-8")
        for f in sorted(tmp.iterdir()):
            if f.is_file():
                _place(f, out)
            else:  # sub-folders (none for PEFT adapters): replace whole
                target = out / f.name
                if target.exists():
                    shutil.rmtree(target)
                os.replace(f, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"wrote {out}: {report['verdict']}")
    return metrics


def _continual_pretraining(cfg: FinetuneConfig, model: Any, tok: Any, log: Any) -> dict[str, Any]:
    """A short language-modelling pass on raw domain text (e.g. the passages corpus) so new tokens gain meaning."""
    from clinrag.retrieval.passages import load_passages
    from datasets import Dataset

    passages = load_passages([Path(cfg.train.cpt_corpus)])
    texts = [(p.title + "\n" if p.title else "") + p.text for p in passages]
    if not texts:
        raise DataError(f"{cfg.train.cpt_corpus}: no text for continual pre-training")
    args = to_sft_config(cfg, Path(cfg.train.out) / "cpt", has_eval=False, cuda=_cuda(cfg),
                         max_steps=cfg.train.cpt_steps, learning_rate=cfg.train.cpt_learning_rate,
                         completion_only_loss=None, save_strategy="no")
    trainer = make_trainer_class()(model=model, args=args, train_dataset=Dataset.from_dict({"text": texts}),
                                    processing_class=tok)
    out = trainer.train()
    log(f"continual pre-training: {cfg.train.cpt_steps} steps on {len(texts)} passages, loss {out.training_loss:.4f}")
    shutil.rmtree(Path(cfg.train.out) / "cpt", ignore_errors=True)
    return {"steps": cfg.train.cpt_steps, "passages": len(texts), "loss": float(out.training_loss)}

