"""Evaluation on held-out cases: metrics, arms, reports."""
