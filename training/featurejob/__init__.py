"""The batch feature job on Apache Spark: daily customer and terminal snapshots (with the
label delay), terminal locations and the velocity offline log, from the system of record's
export or the DVC data set, written as date-partitioned Parquet for Feast's offline store.

``session`` builds the SparkSession, ``io`` reads the input and writes the tables,
``snapshots`` and ``velocity_log`` compute them, ``job`` runs everything (the ``features``
stage calls it), ``bench`` times it on replicated data.
"""
