"""The read side of the InfluxDB backend: InfluxQL over ``GET /query``.

One code path serves InfluxDB 1.8+, 2.x (through its DBRP mapping of the bucket) and 3.x:
``/query`` with ``epoch=ns`` and, when a token is given, an ``Authorization: Token``
header (set on the shared :class:`httpx.Client`). VictoriaMetrics answers no InfluxQL;
:meth:`InfluxReader.query` says so instead of returning its fixed database list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
import pandas as pd

from affectstream.errors import StoreError, StoreUnavailableError
from affectstream.store.base import ReadQuery, SessionInfo, check_tags
from affectstream.store.influx_config import ENV_TOKEN, ENV_URL
from affectstream.store.influx_sender import describe_error
from affectstream.store.influxql import (
    influxql_identifier,
    parse_series_key,
    series_to_frame,
    where_clause,
)


class InfluxReader:
    """Queries of one InfluxDB bucket; the base of :class:`~affectstream.store.influx.InfluxStore`.

    Subclasses set ``url`` (HTTP base URL), ``bucket`` (``database[/retention_policy]``
    on 1.x) and ``_http`` (a client on ``url`` carrying the token header).
    """

    url: str
    bucket: str
    _http: httpx.Client

    def ping(self) -> bool:
        """Return True if the server answers ``/ping`` (``health()`` fails on 1.x).

        Returns
        -------
        bool
        """
        try:
            return self._http.get("/ping").status_code in (200, 204)
        except httpx.HTTPError:
            return False

    def query(self, influxql: str) -> list[dict[str, Any]]:
        """Run InfluxQL on the bucket and return its series (``name``, ``tags``, ``columns``,
        ``values``), with nanosecond integer times.

        Parameters
        ----------
        influxql : str
            One InfluxQL statement.

        Returns
        -------
        list of dict
        """
        database, _, policy = self.bucket.partition("/")
        params = {"db": database, "q": influxql, "epoch": "ns"}
        if policy:
            params["rp"] = policy
        try:
            response = self._http.get("/query", params=params)
        except httpx.HTTPError as exc:
            raise StoreUnavailableError(
                f"InfluxDB at {self.url} cannot be reached for a query ({describe_error(exc)}); "
                f"check that it runs and that {ENV_URL} is right."
            ) from exc
        return self._parse_query_response(response, influxql)

    def _parse_query_response(
        self, response: httpx.Response, influxql: str
    ) -> list[dict[str, Any]]:
        if response.status_code in (401, 403):
            raise StoreError(
                f"InfluxDB at {self.url} refused the query (HTTP {response.status_code}): "
                f"check the token ({ENV_TOKEN}) and its read permission on {self.bucket!r}."
            )
        try:
            body = response.json()
        except json.JSONDecodeError:
            body = None
        if response.status_code >= 400 or not isinstance(body, dict):
            detail = body.get("error") if isinstance(body, dict) else response.text[:200]
            raise StoreError(
                f"InfluxDB at {self.url} answered HTTP {response.status_code} to {influxql!r}: "
                f"{detail}. Check the bucket/database {self.bucket!r} (on 2.x it needs a DBRP "
                "mapping for InfluxQL)."
            )
        series: list[dict[str, Any]] = []
        for result in body.get("results", []):
            if "error" in result:
                raise StoreError(
                    f"InfluxDB at {self.url} rejected {influxql!r}: {result['error']}."
                )
            series.extend(result.get("series", []))
        if any(s.get("name") == "databases" for s in series) and "DATABASES" not in influxql:
            # VictoriaMetrics answers every /query with a fixed database list (for Telegraf).
            raise StoreError(
                f"The server at {self.url} answered {influxql!r} with a database list: it "
                "does not speak InfluxQL (VictoriaMetrics does this). It can take writes; "
                "read from it with its own API (/api/v1/export), or use InfluxDB."
            )
        return series

    def _execute(self, influxql: str) -> None:
        """Run a statement that changes data (POST /query)."""
        database, _, _policy = self.bucket.partition("/")
        try:
            response = self._http.post("/query", params={"db": database, "q": influxql})
        except httpx.HTTPError as exc:
            raise StoreUnavailableError(
                f"InfluxDB at {self.url} cannot be reached ({describe_error(exc)})."
            ) from exc
        self._parse_query_response(response, influxql)

    def _read(self, query: ReadQuery) -> pd.DataFrame:
        """Read the points :meth:`TimeSeriesStore.read` asks for with InfluxQL.

        Points still in the spool are not visible yet: call ``flush`` first to read your
        own writes.
        """
        # Tags as read_query checked them: "" stays, so `tag = ''` selects series without
        # the tag, as in the embedded store.
        wanted = query.tags
        fields = query.fields
        select = ", ".join(influxql_identifier(f) for f in fields) if fields else "*"
        bounds = [f"time >= {query.start_ns}"] if query.start_ns is not None else []
        if query.stop_ns is not None:
            bounds.append(f"time < {query.stop_ns}")
        where = where_clause(wanted, *bounds)
        name = influxql_identifier(query.measurement)
        statement = f"SELECT {select} FROM {name}{where} GROUP BY *"
        return series_to_frame(self.query(statement), fields, self.field_types(query.measurement))

    def field_types(self, measurement: str) -> dict[str, str]:
        """Return the stored type of each field of a measurement (``SHOW FIELD KEYS``).

        Parameters
        ----------
        measurement : str
            Measurement name.

        Returns
        -------
        dict of str to str
            Field name to ``"float"``, ``"integer"``, ``"string"`` or ``"boolean"``.
        """
        found: dict[str, str] = {}
        for block in self.query(f"SHOW FIELD KEYS FROM {influxql_identifier(measurement)}"):
            for name, kind in block.get("values", []):
                found[name] = kind
        return found

    def count(self, measurement: str, field: str, tags: Mapping[str, str] | None = None) -> int:
        """Count stored values of one field (server-side), e.g. to account for every point.

        Parameters
        ----------
        measurement : str
            Measurement name.
        field : str
            Field to count.
        tags : mapping, optional
            Tag values that must match.

        Returns
        -------
        int
        """
        where = where_clause(check_tags(dict(tags or {}), repr(measurement)))
        target = f"COUNT({influxql_identifier(field)}) FROM {influxql_identifier(measurement)}"
        series = self.query(f"SELECT {target}{where}")
        return int(sum(row[1] for s in series for row in s.get("values", [])))

    def series(self, session: str | None = None) -> list[tuple[str, dict[str, str]]]:
        """:meth:`TimeSeriesStore.series`, from InfluxQL ``SHOW SERIES``."""
        where = where_clause({"session": session} if session else {})
        found = []
        for block in self.query(f"SHOW SERIES{where}"):
            for row in block.get("values", []):
                found.append(parse_series_key(row[0]))
        return sorted(found, key=lambda item: (item[0], sorted(item[1].items())))

    def sessions(self) -> list[SessionInfo]:
        """List stored sessions with their participant, time span and number of points.

        Returns
        -------
        list of SessionInfo
        """
        grouped = f"GROUP BY {influxql_identifier('session')}, {influxql_identifier('participant')}"
        start: dict[tuple[str, str], int] = {}
        stop: dict[tuple[str, str], int] = {}
        for order, target in (("ASC", start), ("DESC", stop)):
            for block in self.query(f"SELECT * FROM /.*/ {grouped} ORDER BY time {order} LIMIT 1"):
                tags = block.get("tags") or {}
                key = (tags.get("session", ""), tags.get("participant", ""))
                for row in block.get("values", []):
                    pick = min if order == "ASC" else max
                    target[key] = pick(target.get(key, row[0]), int(row[0]))
        points: dict[tuple[str, str], int] = {}
        for block in self.query(f"SELECT COUNT(*) FROM /.*/ {grouped}"):
            tags = block.get("tags") or {}
            key = (tags.get("session", ""), tags.get("participant", ""))
            for row in block.get("values", []):
                # Fields of one point are counted separately: the largest count is a lower
                # bound of the points of that measurement, exact when no field is missing.
                points[key] = points.get(key, 0) + max((int(v) for v in row[1:] if v), default=0)
        infos = [
            SessionInfo(
                session=session,
                participant=participant,
                start_ns=start[(session, participant)],
                stop_ns=stop[(session, participant)] + 1,
                n_points=points.get((session, participant), 0),
            )
            for session, participant in start
            if session
        ]
        return sorted(infos, key=lambda info: (info.start_ns, info.session))
