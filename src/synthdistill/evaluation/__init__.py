"""Evaluation: metrics, bootstrap intervals, paired tests and learning curves on the frozen test split."""
