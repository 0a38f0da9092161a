"""The service layer: what the routers call. Access checks, metadata, runtime, store reads.

Every function takes the caller (:class:`~affectstream.api.security.Principal`) and checks
object-level access itself: an id of a study the caller is not in is :class:`NotFoundError`,
exactly like an id that does not exist, so ids cannot be probed.

This module is the one name the routers and the api internals import (``service.check``,
``service.get_session`` ...); the code lives in one module per job:

- :mod:`affectstream.api.access` -- the role table, the access errors, pagination;
- :mod:`affectstream.api.accounts` -- users, API keys, the first admin, the audit log;
- :mod:`affectstream.api.studies` -- studies, participants, sessions, markers, self-reports;
- :mod:`affectstream.api.reads` -- time-range reads of a session's measurements;
- :mod:`affectstream.api.model_catalog` -- the shipped model bundles.
"""

from __future__ import annotations

from affectstream.api.access import (
    PERMISSIONS,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    Page,
    check,
    paginate,
)
from affectstream.api.accounts import (
    bootstrap_admin,
    create_key,
    create_user,
    list_audit,
    revoke_key,
)
from affectstream.api.model_catalog import model_card, models
from affectstream.api.reads import SeriesQuery, raw_measurements, read_series, series
from affectstream.api.studies import (
    create_participant,
    create_study,
    finish_session,
    get_participant,
    get_session,
    get_study,
    list_participants,
    list_sessions,
    list_studies,
    mark_interrupted,
    markers,
    new_session,
    self_report_rows,
    self_reports,
    study_page,
)

__all__ = [
    "PERMISSIONS",
    "ConflictError",
    "ForbiddenError",
    "NotFoundError",
    "Page",
    "SeriesQuery",
    "bootstrap_admin",
    "check",
    "create_key",
    "create_participant",
    "create_study",
    "create_user",
    "finish_session",
    "get_participant",
    "get_session",
    "get_study",
    "list_audit",
    "list_participants",
    "list_sessions",
    "list_studies",
    "mark_interrupted",
    "markers",
    "model_card",
    "models",
    "new_session",
    "paginate",
    "raw_measurements",
    "read_series",
    "revoke_key",
    "self_report_rows",
    "self_reports",
    "series",
    "study_page",
]
