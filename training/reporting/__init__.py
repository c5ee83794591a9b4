"""Writing what the stages report: stable JSON and figures, the one Markdown-table writer,
the poisoning study's table, the audit report's sections and the ``make demo`` summary
(``python -m training.reporting.summary``). Stages import this package, never the reverse.
"""
