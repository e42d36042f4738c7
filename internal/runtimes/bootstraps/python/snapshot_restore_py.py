"""SnapStart runtime hooks, as AWS Lambda's Python runtime offers them.

    from snapshot_restore_py import register_before_snapshot, register_after_restore

    @register_before_snapshot
    def close_connections(): ...

    register_after_restore(reconnect, "db.example", port=5432)

Before-snapshot hooks run after the function's init, in reverse order of
registration, before the sandbox is checkpointed; after-restore hooks run
in every sandbox restored from the snapshot, in order of registration,
before its first invoke. Ignis's bootstrap calls them; a function only
registers.
"""

_before_snapshot_registry = []
_after_restore_registry = []


def register_before_snapshot(func, *args, **kwargs):
    _before_snapshot_registry.append((func, args, kwargs))
    return func


def register_after_restore(func, *args, **kwargs):
    _after_restore_registry.append((func, args, kwargs))
    return func


def get_before_snapshot():
    return _before_snapshot_registry


def get_after_restore():
    return _after_restore_registry
