"""The DVC pipeline. Each top-level module is one ``dvc.yaml`` stage, named as the stage
(``data``, ``features``, ``materialize``, ``training_set``, ``train``, ``evaluate``,
``velocity_gain``, ``poisoning``, ``explain``, ``fairness``, ``drift``, ``audit``,
``model_card``), plus ``external`` (the ensemble on a public data set). What stages share
lives in the library sub-packages ``simulation``, ``inputs``, ``modelling``, ``tracking`` and
``reporting``; no stage imports another stage, and the sub-packages import no stage.
"""
