"""Spark in a notebook of the jupyter image: the lakehouse's session, using the image's jars.

``spark_session()`` builds the same configuration as ``spark_apps.session`` (Delta, Iceberg JDBC
catalog, S3A, from the lakehouse settings in the environment) without Ivy's package resolution:
the jars are already in /opt/spark/jars, resolving them again would put a second copy of each on
the classpath and need Maven Central at run time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from lakehouse.settings import Settings, load_settings
from spark_apps.session import catalog_credentials_conf, embedded, spark_conf

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# sparkConf keys of Ivy's resolution, which the image makes unnecessary.
JAR_RESOLUTION_KEYS = ("spark.jars.packages", "spark.jars.excludes", "spark.jars.ivy")


def notebook_conf(settings: Settings) -> dict[str, str]:
    """The lakehouse sparkConf (with catalog credentials) minus jar resolution."""
    conf = {**spark_conf(settings), **catalog_credentials_conf(settings)}
    return {key: value for key, value in conf.items() if key not in JAR_RESOLUTION_KEYS}


def spark_session(app_name: str = "notebook", env: Mapping[str, str] | None = None) -> SparkSession:
    from pyspark.sql import SparkSession

    settings = load_settings(env)
    if embedded(settings):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName(app_name)
    if settings.spark_master:
        builder = builder.master(settings.spark_master)
    for key, value in notebook_conf(settings).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
