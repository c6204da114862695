"""The jupyter image's notebook helper: the lakehouse's Spark configuration without Ivy's jar
resolution (the image already has the jars), credentials included."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from image_tools import IMAGES_DIR

from lakehouse.settings import load_settings

CLUSTER_LIKE = {
    "LAKEHOUSE_HOME": "/tmp/lakehouse",
    "LAKEHOUSE_RAW_URI": "s3://lakehouse-raw",
    "LAKEHOUSE_WAREHOUSE_URI": "s3://lakehouse-warehouse",
    "LAKEHOUSE_CATALOG_URI": "jdbc:postgresql://postgres:5432/iceberg",
    "LAKEHOUSE_CATALOG_USER": "iceberg",
    "LAKEHOUSE_CATALOG_PASSWORD": "not-a-real-password",
    "LAKEHOUSE_S3_ENDPOINT": "http://minio:9000",
}


def notebook_module() -> ModuleType:
    path = IMAGES_DIR / "jupyter" / "lakehouse_notebook.py"
    spec = importlib.util.spec_from_file_location("lakehouse_notebook", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebook_conf_drops_jar_resolution_and_keeps_the_lakehouse_wiring():
    conf = notebook_module().notebook_conf(load_settings(CLUSTER_LIKE))
    assert not {"spark.jars.packages", "spark.jars.excludes", "spark.jars.ivy"} & set(conf)
    assert "io.delta.sql.DeltaSparkSessionExtension" in conf["spark.sql.extensions"]
    assert conf["spark.sql.catalog.lakehouse"] == "org.apache.iceberg.spark.SparkCatalog"
    assert conf["spark.sql.catalog.lakehouse.uri"] == "jdbc:postgresql://postgres:5432/iceberg"
    assert conf["spark.sql.catalog.lakehouse.jdbc.password"] == "not-a-real-password"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://minio:9000"
