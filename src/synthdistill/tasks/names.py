"""Names every stage shares. Kept here, with no imports, so that any module (and the Snakefile)
can use them without importing a stage's code."""

# The one split of the data; the test split is frozen and scored against expert labels.
SPLITS = ("train", "validation", "test")
# Few-shot examples carved from the expert-labelled train pool (split.shots_per_label); kept out of
# every split above.
SHOTS_SPLIT = "shots"
# Expert-labelled items carved from the train pool (split.gold_dev_size): annotated by every
# labeller and used only to rank them (select_labeller), never to train, validate or test.
GOLD_DEV_SPLIT = "gold_dev"
# The label source of students_learn_from: best (teacher and prompt wildcards of its students).
BEST = "best"
BEST_PROMPT = "on_gold_dev"
# The prompt name of the pool's labels when the pilot chose the prompt (pilot.enabled): the winner's
# settings, read from results/pilot/<teacher>/choice.json.
PILOT_PROMPT = "pilot"
# Students learn from these splits; people review and correct them.
REVIEW_SPLITS = ("train", "validation")
# The teacher name of the upper-bound student trained on expert labels.
EXPERT = "expert"
# A calibrated label_scores prompt's extra row: the template filled with a content-free text.
CALIBRATION_SPLIT = "calibration"
CONTENT_FREE_TEXT = "N/A"
