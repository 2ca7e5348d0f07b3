"""Count what a PostgreSQL backend sends: every statement executed through
psycopg, with those sent inside a pipeline (which share one round trip)
noted apart. For tests that pin a request's round trips::

    @pytest.fixture
    def statements(monkeypatch):
        return record_statements(monkeypatch)

    def test_get_is_two_statements(app, statements):
        statements.clear()
        app.get(...)
        assert len(statements) == 2
"""

from __future__ import annotations

__all__ = ["SentStatements", "record_statements"]


class SentStatements(list):
    """The text of each statement sent, whitespace folded, in order;
    :attr:`pipelined` lists those sent inside a pipeline."""

    def __init__(self):
        super().__init__()
        self.pipelined: list[str] = []

    def clear(self) -> None:
        """Forget what was sent so far (both lists)."""
        super().clear()
        self.pipelined.clear()


def record_statements(monkeypatch) -> SentStatements:
    """Record every statement ``psycopg.Connection.execute`` sends from now
    on (until ``monkeypatch`` undoes it, at the end of the test)."""
    import psycopg

    sent = SentStatements()
    original = psycopg.Connection.execute

    def execute(self, query, *args, **kwargs):
        text = " ".join(str(query).split())
        sent.append(text)
        if getattr(self, "_pipeline", None) is not None:
            sent.pipelined.append(text)
        return original(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", execute)
    return sent
