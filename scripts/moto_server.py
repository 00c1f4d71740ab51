"""moto's server, with DynamoDB item operations made atomic.

moto serves requests on threads, and its DynamoDB backend does not lock: two
concurrent conditional writes on one item can both see the old value and both
apply (measured: 40 concurrent `ADD calls … IF calls < 4` granted 5). Real
DynamoDB applies each conditional write atomically, and the product's
exactly-once and per-second guarantees rest on that, so this wrapper serialises
the DynamoDB item operations with one lock. SQS (long polls) stays threaded.

moto's TransactWriteItems also deep-copies every table it touches before each
transaction (to roll back on a refusal): the product opens every incident in
a transaction, so a bench of 2,000 alerts grew moto to 13 GB and slowed each
request with the table's size. Under the lock, a transaction here saves only
the items it touches and restores them on a refusal.
Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT (as moto_server).
"""

import copy
import functools
import sys
import threading

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.server import main

_LOCK = threading.RLock()

for _name in (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "batch_get_item",
    "batch_write_item",
    "transact_write_items",
):
    _original = getattr(DynamoDBBackend, _name)

    def _atomic(original):
        @functools.wraps(original)
        def wrapper(self, *args, **kwargs):
            with _LOCK:
                return original(self, *args, **kwargs)

        return wrapper

    setattr(DynamoDBBackend, _name, _atomic(_original))


class _TablesNotCopied:
    """`copy` for moto's DynamoDB backend: tables are not deep-copied."""

    def deepcopy(self, value, memo=None):
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


dynamodb_models.copy = _TablesNotCopied()
_transact = DynamoDBBackend.transact_write_items


def _touched(backend, transact_items):
    """(table, hash key, range key, saved item) for each item a transaction names."""
    saved = []
    for entry in transact_items:
        kind, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName"))
        if table is None:
            continue
        key = op.get("Item") if kind == "Put" else op.get("Key")
        if not key or table.hash_key_attr not in key:
            continue
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = None
        if table.range_key_attr is not None:
            if table.range_key_attr not in key:
                continue
            range_key = DynamoType(key[table.range_key_attr])
        before = table.get_item(hash_key, range_key)
        saved.append((table, hash_key, range_key, copy.deepcopy(before)))
    return saved


def _transact_saving_items(self, transact_items):
    with _LOCK:
        saved = _touched(self, transact_items)
        try:
            return _transact(self, transact_items)
        except Exception:
            for table, hash_key, range_key, before in reversed(saved):
                if before is None:
                    table.delete_item(hash_key, range_key)
                elif range_key is not None:
                    table.items[hash_key][range_key] = before
                else:
                    table.items[hash_key] = before
            raise


DynamoDBBackend.transact_write_items = _transact_saving_items

if __name__ == "__main__":
    sys.exit(main())
