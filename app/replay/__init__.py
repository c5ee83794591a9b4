"""Stream replay: card transactions sent through the running service's HTTP API in
timestamp order at a fixed rate, with the delayed feedback labels a bank would post, and
a summary of quality, latency, errors and degradation.

    python -m app.replay --data data/v1/transactions.parquet --rate 200 --limit 100000

Modules: ``stream`` (input, order, request bodies, label policy), ``http`` (a small
asyncio HTTP/1.1 keep-alive client), ``runner`` (the open-loop run), ``summary`` (the
numbers, JSON and Markdown), ``__main__`` (the command line). See docs/replay.md.
"""
