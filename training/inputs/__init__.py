"""What the stages read: ``params.yaml``, the batch feature tables computed from the
transaction stream, the Feast feature store (the training store, a FeatureService's
columns, loading the online store) and the training set read back as arrays (``Frame``).
Stages import this package, never the reverse.
"""
