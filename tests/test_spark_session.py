"""The running embedded session (real Spark): behaviour its settings are there for."""

from __future__ import annotations


def compilations(spark) -> int:
    """Query classes this JVM has compiled so far (Spark's codegen metrics)."""
    metrics = spark.sparkContext._jvm.org.apache.spark.metrics.source.CodegenMetrics
    return metrics.METRIC_COMPILATION_TIME().getCount()


def test_a_query_compiled_before_many_others_is_not_compiled_again(spark) -> None:
    """A stage-day compiles a few hundred query classes: Spark's default cache of 100 evicted
    the first day's before the next day ran them again, and the JIT started over on each."""
    query = "id * 3 + length(cast(id AS STRING)) AS first_query"
    spark.range(4).selectExpr(query).collect()
    # More distinct queries than Spark's default cache holds: each literal is compiled in.
    for n in range(120):
        spark.range(4).selectExpr(f"id * {n + 1000} AS other").collect()
    before = compilations(spark)
    spark.range(4).selectExpr(query).collect()
    assert compilations(spark) == before
