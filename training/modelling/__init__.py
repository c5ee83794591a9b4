"""Fitting and measuring the ensemble: the Keras autoencoder, the LightGBM member and its
imbalance strategies, fusion and calibration, the label-noise defense, cost-based tiers,
the metrics, :func:`~training.modelling.fit.train_ensemble` (what ``train``, the
``poisoning`` and ``velocity_gain`` studies and ``external`` fit with) and
:func:`~training.modelling.evaluation.evaluate_frame`. Stages import this package, never the
reverse.
"""
