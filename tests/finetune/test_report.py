"""The fine-tuning report: overfitting verdict and the points the loss plot draws."""

from __future__ import annotations

from clinrag.finetune.report import overfitting_verdict, plot_losses, plot_series

HISTORY = [{"step": s, "loss": 3.0 - 0.1 * s} for s in range(1, 9)] + [
    {"step": 2, "eval_loss": 2.9}, {"step": 4, "eval_loss": 2.7}, {"step": 6, "eval_loss": 2.9},
    {"step": 8, "eval_loss": 3.1}]


def test_verdict_flags_eval_rising_while_train_falls():
    v = overfitting_verdict(HISTORY)
    assert v["overfitting"] is True and v["best_step"] == 4
    calm = [h for h in HISTORY if "loss" in h] + [{"step": 4, "eval_loss": 2.7}, {"step": 8, "eval_loss": 2.72}]
    assert overfitting_verdict(calm)["overfitting"] is False  # within the 2 % tolerance
    assert overfitting_verdict(HISTORY[:8])["overfitting"] is None  # no eval point: no judgement


def test_eval_before_training_starts_the_eval_curve(tmp_path):
    train, evals = plot_series(HISTORY, eval_before=3.3)
    assert evals[0] == (0, 3.3) and evals[1:] == [(2, 2.9), (4, 2.7), (6, 2.9), (8, 3.1)]
    assert len(train) == 8
    assert plot_series(HISTORY)[1][0] == (2, 2.9)  # nothing invented without it
    plot_losses(HISTORY, tmp_path / "loss.png", eval_before=3.3)
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
