"""What the tests and the benchmark both use: throw-away git + DVC copies of the pipeline, and the one-machine Airflow
cluster (dags/cluster/up) driven from Python. Development only: no stage or tool imports it."""
