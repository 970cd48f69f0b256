# Task multi_label (src/synthdistill/tasks.py): the stages after the shared data, prompt, annotate
# and vote rules. The vote (rules/annotate.smk) keeps a label when at least vote.min_share of the
# iterations that answered chose it.


def multi_label_votes():
    return [
        fill(rules.vote.output.votes, teacher=t, prompt=p)
        for t in TEACHERS
        for p in PROMPTS
    ]


rule all:
    default_target: True
    input:
        multi_label_votes(),
