"""Stream replay: card transactions sent through a running service's HTTP API in
timestamp order at a fixed rate, with the delayed feedback labels a bank would post, and
a summary of quality, latency, errors and degradation. A client of the service, so it
lives with the load tools, not in ``app/`` (nor in the serving image).

    make replay                                    # python -m benchmarks.replay
    python -m benchmarks.replay.client --data data/v1/transactions.parquet --rate 200

Modules: ``orchestrate`` (``make replay``: a feature store as of the start, the service,
the daily job, the client; ``__main__`` runs it), ``client`` (the streaming client's
command line), ``stream`` (input, order, request bodies, label policy), ``runner`` (the
open-loop run over :class:`benchmarks.http_client.Client`), ``summary`` and ``report``
(the numbers, JSON and Markdown). See docs/replay.md.
"""
