"""The versioned datasets: the seeded simulator (customers, terminals, transactions with
fraud scenarios and v1's drift), the time split of v0, the label-poisoned copies of its
training rows, and ``datasets`` that writes ``data/`` with its manifest and keeps it in step
with DVC. Stages (``data``, ``training_set``, ``poisoning``, ...) import this package, never
the reverse. ``simulate``, ``poison`` and ``split`` are the generator code whose bytes the
manifest fingerprints: editing them makes ``data/`` stale.
"""
