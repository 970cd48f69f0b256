"""Scores and their uncertainty, pure functions of expert and predicted labels: below both the
students (the spans student's validation score, the cascade's) and evaluation/ (which
scores every system on the test split)."""
