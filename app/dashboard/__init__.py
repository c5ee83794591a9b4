"""The operator dashboard under /dashboard: pages, their data, and the model card."""
