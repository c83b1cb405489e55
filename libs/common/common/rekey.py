"""Re-encrypting stored values under the newest key of a ring (key rotation's last step).

A service lists its encrypted columns (:class:`EncryptedColumn`: table, primary key, column,
and the context its tokens are bound to) and its CLI runs :func:`reencrypt` on each
(``voucher-identity reencrypt``, ``voucher-contracts reencrypt-seal-keys``). Rows are read in
primary-key order, ``batch_size`` at a time, each batch locked (``FOR UPDATE``: a request
changing the row waits) and committed on its own, so a long run holds no long transaction and
can be stopped and run again: a value already under the current key is left as it is. A value
no key of the ring decrypts is left too, and counted: the run then exits non-zero, naming the
rows, and the previous key must stay until they are understood.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from common.crypto import DecryptionError, FieldCipher
from common.db import Database


@dataclass(frozen=True)
class EncryptedColumn:
    table: str
    key: str
    column: str
    context: str

    def label(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass
class Rekeyed:
    column: str
    rewritten: int = 0
    current: int = 0  # already under the newest key
    unreadable: list[str] = field(default_factory=list)  # primary keys no key of the ring reads

    def as_json(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "rewritten": self.rewritten,
            "already_current": self.current,
            "unreadable": self.unreadable,
        }


async def reencrypt(
    db: Database, cipher: FieldCipher, target: EncryptedColumn, *, batch_size: int = 200
) -> Rekeyed:
    """Rewrite ``target``'s values that an older key made under ``cipher``'s current key."""
    t, k, c = (f'"{name}"' for name in (target.table, target.key, target.column))
    first = text(f"SELECT {k}, {c} FROM {t} WHERE {c} IS NOT NULL ORDER BY {k} LIMIT :n FOR UPDATE")
    after = text(
        f"SELECT {k}, {c} FROM {t} WHERE {c} IS NOT NULL AND {k} > :after ORDER BY {k} LIMIT :n FOR UPDATE"
    )
    update = text(f"UPDATE {t} SET {c} = :value WHERE {k} = :key AND {c} = :old")
    done = Rekeyed(target.label())
    last: Any = None
    while True:
        async with db.transaction() as session:
            if last is None:
                rows = (await session.execute(first, {"n": batch_size})).all()
            else:
                rows = (await session.execute(after, {"n": batch_size, "after": last})).all()
            for key, token in rows:
                if not cipher.needs_rotation(token):
                    done.current += 1
                    continue
                try:
                    plain = cipher.decrypt(token, context=target.context)
                except DecryptionError:
                    done.unreadable.append(str(key))
                    continue
                fresh = cipher.encrypt(plain, context=target.context)
                await session.execute(update, {"value": fresh, "key": key, "old": token})
                done.rewritten += 1
        if len(rows) < batch_size:
            return done
        last = rows[-1][0]


async def reencrypt_command(
    db_url: str, cipher: FieldCipher, columns: Sequence[EncryptedColumn], *, batch_size: int
) -> int:
    """A CLI's whole run: each column re-encrypted, one JSON line each; 1 when a value no key of
    the ring decrypts was left as it was."""
    db = Database(db_url, pool_size=1)
    unreadable = 0
    try:
        for column in columns:
            done = await reencrypt(db, cipher, column, batch_size=batch_size)
            print(json.dumps(done.as_json()), flush=True)
            unreadable += len(done.unreadable)
    finally:
        await db.dispose()
    if unreadable:
        print(f"{unreadable} value(s) no key of the ring decrypts: keep the previous keys", file=sys.stderr)
    return 1 if unreadable else 0
