"""Print each task's execution_timeout in seconds as the DAG files set it, read with Airflow's own DagBag: a JSON
object, the last line. The timeout is read when the DAG files are imported, so the tests run this in a process of
its own for each environment.

    PARITY_LSTM_TASK_TIMEOUT=90 python -m tests.dag_timeouts
"""

import json

from airflow.dag_processing.dagbag import DagBag

if __name__ == "__main__":
    bag = DagBag("dags")
    assert not bag.import_errors, bag.import_errors
    timeouts = {
        f"{dag.dag_id}.{task.task_id}": task.execution_timeout.total_seconds()
        for dag in bag.dags.values()
        for task in dag.tasks
    }
    print(json.dumps(timeouts))
