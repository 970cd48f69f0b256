"""Evaluation on the frozen test split: every system scored with intervals, paired tests and learning
curves (the scores and intervals themselves are in synthdistill.metrics)."""
