"""The ensemble scorer: one implementation, evaluated by training and run by the service.

Nothing here imports TensorFlow: the autoencoder runs as NumPy matrix products on the
weights exported from Keras. A bundle is verified against its SHA-256 manifest and proven
before use (``verify``: value checks and a trial score against the manifest's probe rows).
"""
