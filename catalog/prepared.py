"""Rows by primary key with SQL compiled once per key count: the search's hot queries.

Turning a queryset into SQL costs more than running it over a page's few rows, and every
search asks the same few questions (these videos, these segments, these videos' sentences).
``RowsByKey(model, fields)`` compiles ``model.objects.filter(pk__in=keys).values_list(*fields)``
once per database connection and number of keys, then runs that SQL with the keys as
parameters and converts the values as the ORM does (UUIDs, JSON, datetimes). ``key`` names
another field to look rows up by (``video_id``), ``where`` adds fixed filters and
``order_by`` an order. Where the compiled query's parameters do not start with the keys (a
database whose SQL does something else), it keeps using the ORM.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import connections, models, router

MAX_SHAPES = 512  # compiled queries kept (connections x key counts)


class RowsByKey:
    """Fetch ``fields`` of the rows of ``model`` whose primary keys are given."""

    def __init__(self, model: type[models.Model], fields: Iterable[str], key: str = "pk",
                 where: Mapping[str, Any] | None = None, order_by: Iterable[str] = ()) -> None:
        self.model = model
        self.fields = tuple(fields)
        self.key = key
        self.where = dict(where or {})
        self.order_by = tuple(order_by)
        meta = model._meta
        self._key_field = meta.pk if key == "pk" else meta.get_field(key)
        self._compiled: dict[tuple[Any, int], tuple[str, list, Any, list] | None] = {}
        self._lock = threading.Lock()

    def queryset(self, keys: list) -> models.QuerySet:
        """Return the ORM's form of the query (what the compiled SQL runs)."""
        # the keys' filter first, so that the SQL's parameters start with the keys
        return (self.model._default_manager.filter(**{f"{self.key}__in": keys})
                .filter(**self.where).order_by(*self.order_by).values_list(*self.fields))

    def rows(self, keys: Iterable[Any]) -> list[tuple]:
        """Return one tuple of the fields per row found (in the database's order)."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return []
        connection = connections[router.db_for_read(self.model)]
        shape = (connection, len(keys))
        compiled = self._compiled.get(shape, False)
        if compiled is False:
            compiled = self._compile(keys, connection)
        if compiled is None:
            return [tuple(row) for row in self.queryset(keys)]
        sql, converters, compiler, fixed = compiled
        with connection.cursor() as cursor:
            cursor.execute(sql, [*self._params(keys, connection), *fixed])
            rows = cursor.fetchall()
        if not converters:
            return rows
        return [tuple(row) for row in compiler.apply_converters(rows, converters)]

    def _params(self, keys: list, connection) -> list:
        field = self._key_field
        return [field.get_db_prep_value(field.to_python(key), connection) for key in keys]

    def _compile(self, keys: list, connection) -> tuple[str, list, Any, list] | None:
        compiler = self.queryset(keys).query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        params = list(params)
        usable = params[:len(keys)] == self._params(keys, connection)
        fields = [column[0] for column in compiler.select[:compiler.col_count]]
        compiled = (sql, compiler.get_converters(fields), compiler,
                    params[len(keys):]) if usable else None
        with self._lock:
            if len(self._compiled) >= MAX_SHAPES:
                self._compiled.clear()
            self._compiled[(connection, len(keys))] = compiled
        return compiled
