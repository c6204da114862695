"""Helpers shared by the lakehouse DAGs (kept out of DAG parsing by .airflowignore).

``deployment`` resolves everything that depends on where the DAGs run (namespace, release
names, images, Spark configuration) at render time, inside the worker; ``operators`` builds the
two task kinds of the pipeline definition (SparkApplication and pod) from one stage each.
"""
