"""The system of record: what the service decided and what it learned, shared by all pods.

Every scored transaction (its request fields, the FeatureService, the model version, the
score and the decision) and every label, idempotent per transaction id, with conflicting
labels kept as conflicts, plus the pipeline jobs' runs. PostgreSQL in production (Cloud
SQL on GKE, Debian's ``postgresql`` in the tests); an embedded SQLite file is the laptop
default behind the same interface. The service ships rows here from its local durable
spool (``app/services/record_shipper.py``); the feature job reads it through
:mod:`system_of_record.export`. Fraud operations (issue 27) keep here the review queue
(:mod:`.review_queue`), the rule lists (:mod:`.rule_lists`), the challenger's shadow
scores (:mod:`.shadow`) and read recorded periods for rule dry-runs (:mod:`.period`).
This package imports nothing of the project.
"""
