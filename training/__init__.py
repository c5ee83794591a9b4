"""Pipeline stages: datasets and checks, features, materialization, drift (training follows)."""
