"""moto's server, with DynamoDB item operations made atomic.

moto serves requests on threads, and its DynamoDB backend does not lock: two
concurrent conditional writes on one item can both see the old value and both
apply (measured: 40 concurrent `ADD calls … IF calls < 4` granted 5). Real
DynamoDB applies each conditional write atomically, and the product's
exactly-once and per-second guarantees rest on that, so this wrapper serialises
the DynamoDB item operations with one lock. SQS (long polls) stays threaded.
Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT (as moto_server).
"""

import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
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

if __name__ == "__main__":
    sys.exit(main())
