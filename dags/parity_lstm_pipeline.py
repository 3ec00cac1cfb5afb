"""The pipeline as an Airflow DAG: one task per DVC stage, generate → targets → train → evaluate.

    airflow dags test parity_lstm_pipeline -c '{"set_params": ["train.epochs=2"]}'

Each task reproduces its stage through DVC in a checkout of its own (parity_lstm_checkout.py), so tasks can run
on different machines, and a stage whose params and inputs were run before is restored from the run-cache, never
recomputed. The last task records the run as the DVC experiment `pipeline-<run id>` and pushes it: it shows in the
repository's `dvc exp show`. Run conf: `set_params`, `repo`, `rev` (see parity_lstm_checkout.RUN_CONF).
"""

from airflow.sdk import dag, task

from parity_lstm_checkout import (
    RUN_CONF,
    TASK_TIMEOUT,
    checkout,
    commit_of,
    dvc,
    push_metrics,
    record_experiment,
    safe_name,
)


@task
def reproduce(stage: str, rev: str, params=None) -> str:
    """`dvc repro` up to `stage` (earlier stages come from the run-cache), push what it made; the commit it ran."""
    with checkout(params["repo"], rev, params["set_params"]) as work:
        dvc(work, "repro", "--pull", stage)
        dvc(work, "push", "--run-cache", stage)
        push_metrics(work)
        return commit_of(work)


@task
def evaluate(rev: str, params=None, run_id=None) -> str:
    """`evaluate`, as the experiment that records the whole run; its name."""
    with checkout(params["repo"], rev, params["set_params"]) as work:
        return record_experiment(work, f"pipeline-{safe_name(run_id)}")


@dag(
    dag_id="parity_lstm_pipeline",
    schedule=None,
    params=RUN_CONF,
    default_args={"execution_timeout": TASK_TIMEOUT},
    tags=["parity-lstm"],
)
def parity_lstm_pipeline():
    # The first task resolves `rev` to a commit; every later task checks out that same commit.
    commit = reproduce.override(task_id="generate")("generate", "{{ params.rev }}")
    commit = reproduce.override(task_id="targets")("targets", commit)
    commit = reproduce.override(task_id="train")("train", commit)
    evaluate(commit)


parity_lstm_pipeline()
