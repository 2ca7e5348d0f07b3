"""What every contract suite shares: the fixtures a backend's test module
provides, capability skips, the "overrides every method" check and the
error-path test.

A suite class (``CacheContract``, ``StorageContract``, …) asks for:

``backend`` (required)
    the backend under test, ready to use (schema initialized). Tests create
    their own uniquely named data, so a backend on a server shared by several
    pytest-xdist workers works, as long as each worker has its own
    database/schema or key prefix (``flush()`` is tested).
``capabilities`` (optional)
    a set of strings naming what the backend supports; by default the
    suite's :attr:`BackendContract.all_capabilities`. A test needing a missing
    capability is skipped with a reason.
``backend_error`` (optional)
    how to make the backend fail: a context manager, or a callable
    returning one, inside which every method raises
    :class:`~cliquet.storage.exceptions.BackendError` and ``heartbeat()``
    returns ``False``; outside of it the backend works again. Without it the
    error-path test is skipped.
"""

from __future__ import annotations

import inspect

import pytest

from cliquet.storage.exceptions import BackendError


class BackendContract:
    """Base of the contract suites (not collected: no ``Test`` prefix)."""

    #: the abstract base the backend implements
    base_class: type = object
    #: every capability the suite knows about (the default of ``capabilities``)
    all_capabilities: frozenset = frozenset()
    #: public methods of the base a backend may keep (documented defaults)
    inherited_allowed: frozenset = frozenset()
    #: public methods every backend may keep, whatever its kind: the base's
    #: ``schema_pending`` is right for a backend with no schema
    always_inherited: frozenset = frozenset({"schema_pending"})

    @pytest.fixture
    def backend(self):
        """The backend under test: a subclass must provide this fixture."""
        raise NotImplementedError(
            f"{type(self).__name__} needs a `backend` fixture returning the "
            f"{self.base_class.__name__} instance to test, e.g. "
            "`@pytest.fixture\\n def backend(self): return mymodule.load_from_config(make_config(...))`"
        )

    @pytest.fixture
    def capabilities(self):
        """What the backend supports (default: everything the suite knows)."""
        return set(self.all_capabilities)

    @pytest.fixture
    def backend_error(self):
        """How to make the backend fail (default: unknown, error tests skipped)."""
        return None

    # -- helpers ------------------------------------------------------------

    @staticmethod
    def require(capabilities, name: str) -> None:
        """Skip the current test unless ``name`` is in ``capabilities``."""
        if name not in capabilities:
            pytest.skip(f"the backend does not declare the {name!r} capability")

    @staticmethod
    def failure(backend_error):
        """Return a context manager in which the backend fails (or skip)."""
        if backend_error is None:
            pytest.skip("no `backend_error` fixture: provide a context manager (or a callable "
                        "returning one) inside which the backend fails, to run the error-path tests")
        if hasattr(backend_error, "__enter__"):
            return backend_error
        return backend_error()

    def failing_calls(self):
        """Return ``[(method name, args)]`` covering every public method."""
        raise NotImplementedError

    # -- tests ----------------------------------------------------------------

    def test_backend_is_an_instance_of_the_base(self, backend):
        assert isinstance(backend, self.base_class)

    def test_overrides_every_public_method(self, backend):
        public = [name for name, member in vars(self.base_class).items()
                  if not name.startswith("_") and inspect.isfunction(member)]
        assert public, "the base class has no public method?"
        missing = [name for name in public if name not in self.inherited_allowed | self.always_inherited
                   and getattr(type(backend), name) is getattr(self.base_class, name)]
        assert not missing, f"{type(backend).__name__} does not implement {missing}"

    def test_heartbeat_is_true_when_up(self, backend):
        assert backend.heartbeat() is True

    def test_initialize_schema_is_idempotent(self, backend):
        backend.initialize_schema()
        backend.initialize_schema()
        backend.initialize_schema(dry_run=True)
        assert backend.heartbeat() is True

    def test_every_method_raises_backend_error_when_down(self, backend, backend_error):
        calls = self.failing_calls()
        names = {name for name, _ in calls}
        public = {name for name, member in vars(self.base_class).items()
                  if not name.startswith("_") and inspect.isfunction(member)}
        assert public - self.inherited_allowed - self.always_inherited - {"heartbeat"} <= names, "failing_calls is incomplete"
        with self.failure(backend_error):
            assert backend.heartbeat() is False
            for name, args in calls:
                with pytest.raises(BackendError):
                    getattr(backend, name)(*args)
        assert backend.heartbeat() is True
