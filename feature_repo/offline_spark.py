"""Feast's Spark offline store as this project runs it: one session per process, and the
tables' repo-relative paths resolved against the repo being read.

The sources name their tables relative to the repo (``data/customer_features.parquet``),
so a registry published with its tables stays valid wherever they are mounted. Feast's
file store resolved such paths against Python's working directory; Spark resolves them
against the JVM's, fixed when the JVM started. :func:`repo_directory` sets both for the
duration of a read. Feast gets or creates the session from the ``spark_conf`` of
``feature_store.yaml`` (``getOrCreate``), so every store of a process shares one session,
which :func:`stop_session` ends (the tests do so once, at the end of their run).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def offline_session(store: Any) -> Any:
    """The SparkSession of ``store``'s Spark offline store (started on first use), or
    None when the store's offline store is not Spark."""
    config = store.config.offline_store
    if getattr(config, "type", None) != "spark":
        return None
    from feast.infra.offline_stores.contrib.spark_offline_store.spark import (
        get_spark_session_or_start_new_with_repoconfig,
    )

    return get_spark_session_or_start_new_with_repoconfig(config)


@contextmanager
def repo_directory(store: Any, repo: Path) -> Iterator[None]:
    """Resolve relative table paths against ``repo``: Python's working directory (other
    offline stores) and, for Spark, the JVM's local file system's."""
    session = offline_session(store)
    previous = Path.cwd()
    os.chdir(repo)
    local_fs = None
    try:
        if session is not None:
            jvm = session._jvm
            fs = jvm.org.apache.hadoop.fs.FileSystem.getLocal(session._jsc.hadoopConfiguration())
            jvm_previous = fs.getWorkingDirectory()
            fs.setWorkingDirectory(jvm.org.apache.hadoop.fs.Path(str(repo.resolve())))
            local_fs = fs
        yield
    finally:
        if local_fs is not None:
            local_fs.setWorkingDirectory(jvm_previous)
        os.chdir(previous)


def stop_session() -> None:
    """Stop this process's SparkSession, if one was started (pyspark is not imported
    otherwise)."""
    if "pyspark" not in sys.modules:
        return
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        session.stop()
