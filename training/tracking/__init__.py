"""MLflow: runs, the ``fraud-ensemble`` registered model with its ``champion`` and
``challenger`` aliases and the promotion gate, and the bundle as a pyfunc model. Stages
(``evaluate``, ``poisoning``) import this package, never the reverse.
"""
