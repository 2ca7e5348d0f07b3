"""The model: a resource's records in storage, for one collection and scope.

The HTTP layer (:mod:`cliquet.resource`) speaks to the model; the model
speaks to the storage backend. It knows the collection id, the parent id
(scope), the id generator and the names of the ``id``/``last_modified``
fields, so views don't.
"""

from __future__ import annotations

from cliquet.storage import Filter, Sort  # noqa: F401 (documentation)


class Model:
    """Records of one collection within one parent scope.

    :param storage: a :class:`~cliquet.storage.StorageBase`.
    :param id_generator: a :class:`~cliquet.resource.ids.IdGenerator`.
    :param collection_id: usually the resource name.
    :param parent_id: the scope (the user id for per-user resources).
    """

    id_field = "id"
    modified_field = "last_modified"
    deleted_field = "deleted"

    def __init__(self, storage, id_generator, collection_id, parent_id):
        self.storage = storage
        self.id_generator = id_generator
        self.collection_id = collection_id
        self.parent_id = parent_id

    def timestamp(self) -> int:
        """The collection's current timestamp (its ``ETag``)."""
        return self.storage.collection_timestamp(self.collection_id, self.parent_id)

    def get_records(self, filters=None, sorting=None, after=None, limit=None, include_deleted=False):
        """Return ``(records, total)``; see :meth:`StorageBase.get_all`."""
        return self.storage.get_all(self.collection_id, self.parent_id, filters=filters, sorting=sorting,
                                    after=after, limit=limit, include_deleted=include_deleted)

    def get_records_with_timestamp(self, filters=None, sorting=None, after=None, limit=None, include_deleted=False):
        """Return ``(records, total, timestamp)``, the timestamp read no later
        than the page; see :meth:`StorageBase.get_all_with_timestamp`."""
        return self.storage.get_all_with_timestamp(self.collection_id, self.parent_id, filters=filters,
                                                   sorting=sorting, after=after, limit=limit,
                                                   include_deleted=include_deleted)

    def delete_records(self, filters=None):
        """Delete the matching records; return their tombstones."""
        return self.storage.delete_all(self.collection_id, self.parent_id, filters=filters)

    def get_record(self, record_id):
        """Return the record; raises :class:`RecordNotFoundError`."""
        return self.storage.get(self.collection_id, self.parent_id, record_id)

    def create_record(self, record):
        """Store a new record (id generated unless given)."""
        return self.storage.create(self.collection_id, self.parent_id, record, id_generator=self.id_generator)

    def update_record(self, record_id, record):
        """Replace (or create) the record with that id."""
        return self.storage.update(self.collection_id, self.parent_id, record_id, record)

    def delete_record(self, record_id):
        """Delete the record; return its tombstone."""
        return self.storage.delete(self.collection_id, self.parent_id, record_id)
