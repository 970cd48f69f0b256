rule prepare_data:
    input:
        # The dataset file when dataset.path is set (a hub dataset has no local input).
        [config["dataset"]["path"]] if config["dataset"].get("path") else [],
    output:
        # The few-shot example pool, only when split.shots_per_label asks for one.
        **(
            {"shots": "results/data/shots.parquet"}
            if config["split"].get("shots_per_label")
            else {}
        ),
        # The gold dev split, only when split.gold_dev_size asks for one.
        **({"gold_dev": "results/data/gold_dev.parquet"} if GOLD_DEV else {}),
        train="results/data/train.parquet",
        validation="results/data/validation.parquet",
        test="results/data/test.parquet",
        summary="results/data/summary.json",
    log:
        "logs/prepare_data.log",
    benchmark:
        "benchmarks/prepare_data.tsv"
    conda:
        "../envs/data.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        dataset=lookup(dpath="dataset", within=config),
        labels=lookup(dpath="labels", within=config),
        split=lookup(dpath="split", within=config),
        task=lookup(dpath="task", within=config),
    script:
        "../scripts/prepare_data.py"
