# Task spans (docs/spans.md): the stages after the vote.


rule all:
    default_target: True
    input:
        expand(rules.vote.output.votes, teacher=TEACHERS, prompt=PROMPTS),
