"""Pipeline stages: data generation and checks, features, materialization, drift (training follows)."""
