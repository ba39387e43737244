"""Counting SQL statements in a benchmark, cheaper than capturing their text."""

from django.db import connection


class QueryCounter:
    """Counts the SQL statements run inside it (cheaper than capturing them with their text)."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)

    def __enter__(self):
        self._wrapper = connection.execute_wrapper(self)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc):
        self._wrapper.__exit__(*exc)

    def __len__(self):
        return self.count
