"""Exceptions raised by every backend (storage, cache, permission, indexer)."""


class BackendError(Exception):
    """A backend failed: the server is down, a query broke, a timeout hit.

    Backends wrap their driver's exceptions in this class (or a subclass) so
    that nothing above them depends on a driver. At the HTTP layer it becomes
    a ``503`` with errno ``201`` and a ``Retry-After`` header.

    :param original: the driver's exception, kept for logs.
    """

    def __init__(self, original=None, message=None, *args):
        self.original = original
        if message is None and original is not None:
            message = f"{original.__class__.__name__}: {original}"
        super().__init__(message, *args)


class RecordNotFoundError(Exception):
    """No record with this id in this collection (tombstones don't count)."""


class UnicityError(Exception):
    """A write would break a uniqueness constraint of the collection.

    :param field: the field whose value is already taken.
    :param record: the record that already holds it.
    """

    def __init__(self, field, record):
        self.field = field
        self.record = record
        super().__init__(f"{field!r} is already taken by record {record.get('id')!r}")


class ConflictError(BackendError):
    """A record this transaction read was changed by a concurrent one before
    this transaction wrote it: the write was refused, so that no update is
    lost (a check such as ``If-Match`` made on what was read would no longer
    hold). Running the whole request again resolves it.
    """


class ReadonlyError(BackendError):
    """The backend is read-only and refused a write."""


class HistoryPurgedError(Exception):
    """Changes older than what was asked were purged: the client must resync.

    :param oldest: the oldest timestamp the backend can still answer for.
    """

    def __init__(self, oldest):
        self.oldest = oldest
        super().__init__(f"changes before {oldest} were purged")
