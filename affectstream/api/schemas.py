"""Request and response bodies of the service (pydantic models; the OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Largest id, offset or count the metadata database takes (portable 32-bit INTEGER).
MAX_ID = 2**31 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
SessionId = Annotated[str, Path(min_length=1, max_length=80)]
_ID = Field(ge=1, le=MAX_ID)

Role = Literal["admin", "researcher", "operator", "viewer", "device"]
_NAME = Field(min_length=1, max_length=200)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PageOut(BaseModel):
    """Pagination of a list."""

    total: int
    limit: int
    offset: int


class UserIn(BaseModel):
    """A new user."""

    name: str = _NAME
    role: Role
    studies: list[Annotated[int, _ID]] = Field(default_factory=list, max_length=1000)
    participant_id: int | None = Field(None, ge=1, le=MAX_ID)

    @model_validator(mode="after")
    def _device_has_participant(self) -> UserIn:
        """A device account sends for one participant (a 422 like any other bad body)."""
        if self.role == "device" and self.participant_id is None:
            raise ValueError("A device user needs participant_id (the participant it sends for).")
        return self


class UserOut(_Out):
    """A user."""

    id: int
    name: str
    role: str
    participant_id: int | None


class KeyOut(BaseModel):
    """A new API key: shown once, only its hash is kept."""

    prefix: str
    key: str
    user_id: int


class AuditOut(_Out):
    """One audit entry."""

    id: int
    t: float
    user_id: int | None
    action: str
    resource: str
    detail: str


class AuditPage(PageOut):
    """A page of the audit log."""

    items: list[AuditOut]


class StudyIn(BaseModel):
    """A new study."""

    name: str = _NAME
    description: str = Field("", max_length=2000)


class StudyOut(_Out):
    """A study."""

    id: int
    name: str
    description: str
    created_at: float


class StudyPage(PageOut):
    """A page of studies."""

    items: list[StudyOut]


class ParticipantIn(BaseModel):
    """A new participant: a pseudonymous id only, never identifying details."""

    pseudonym: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


class ParticipantOut(_Out):
    """A participant."""

    id: int
    study_id: int
    pseudonym: str
    consent: str
    created_at: float


class ParticipantPage(PageOut):
    """A page of participants."""

    items: list[ParticipantOut]


#: Seconds after the devices stream at which an emulated device drops its link.
_DisconnectTimes = Annotated[list[Annotated[float, Field(gt=0, le=86_400)]], Field(max_length=20)]


class SessionIn(BaseModel):
    """Start a session: on emulated devices through the runtime, or fed by ingest."""

    participant_id: int = _ID
    kind: Literal["emulated", "ingest"] = "emulated"
    duration: float = Field(60.0, gt=0, le=86_400, description="seconds (emulated sessions)")
    devices: str = Field(
        "hr,polar,eda,muse", pattern=r"^(hr|polar|eda|muse)(,(hr|polar|eda|muse))*$"
    )
    seed: int = Field(0, ge=0, le=2**31 - 1)
    disconnects: dict[Literal["hr", "polar", "eda", "muse"], _DisconnectTimes] = Field(
        default_factory=dict,
        description="scripted link drops of emulated devices: profile -> seconds after the "
        "devices stream (e.g. {'eda': [10, 20]}); each is a reconnect the live view shows",
    )
    model: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description=(
            "ingest sessions: a shipped arousal bundle (GET /models) to run alone, or 'none' "
            "for features only; default: every shipped arousal bundle the `devices` cover, "
            "combined per window"
        ),
    )


class SessionOut(_Out):
    """A session."""

    id: str
    study_id: int
    participant_id: int
    kind: str
    status: str
    started_at: float
    stopped_at: float | None


class SessionPage(PageOut):
    """A page of sessions."""

    items: list[SessionOut]


class SessionStatus(SessionOut):
    """A session with its live state (running here) or its final summary."""

    live: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    ingest: dict[str, dict[str, int]] = Field(default_factory=dict)


class MarkerIn(BaseModel):
    """A marker; ``t`` (s since the epoch) defaults to now."""

    label: str = _NAME
    detail: str = Field("", max_length=2000)
    t: float | None = Field(None, ge=0, le=1e11)


class MarkerOut(_Out):
    """A marker."""

    id: int
    session_id: str
    t: float
    label: str
    detail: str


class SelfReportIn(BaseModel):
    """A SAM self-report on 1-9 scales; ``t`` defaults to now."""

    arousal: int = Field(ge=1, le=9)
    valence: int = Field(ge=1, le=9)
    dominance: int | None = Field(None, ge=1, le=9)
    t: float | None = Field(None, ge=0, le=1e11)
    #: The protocol block (phase) rated, e.g. the calibration block that just ended.
    block: str | None = Field(None, min_length=1, max_length=100)


class ValenceCalibrationIn(BaseModel):
    """Stored sessions of one participant with rated blocks, to fit their valence model."""

    sessions: list[str] = Field(min_length=1, max_length=50)


class SelfReportOut(_Out):
    """A self-report."""

    id: int
    session_id: str
    t: float
    arousal: int
    valence: int
    dominance: int | None


class SeriesOut(BaseModel):
    """Points of one measurement in a time range (``time_ns`` plus fields per row)."""

    measurement: str
    total: int
    limit: int
    offset: int
    every: int = 1
    rows: list[dict[str, Any]]


class ModelOut(BaseModel):
    """A shipped model bundle."""

    name: str
    model_id: str
    target: str
    features: list[str]


class ModelCard(ModelOut):
    """A model bundle with its card."""

    card: str
    meta: dict[str, Any]


class BlockIn(BaseModel):
    """Samples of one stream with the sequence number of the first (the device's index)."""

    stream: str = Field(min_length=1, max_length=200)
    modality: str = Field(min_length=1, max_length=20)
    channels: list[str] = Field(min_length=1, max_length=64)
    sfreq: float | None = Field(None, gt=0, le=100_000)
    first_seq: int = Field(ge=0, le=2**53)
    t: list[float] = Field(max_length=100_000)
    values: list[list[float | None]] = Field(max_length=100_000)
    device: str = Field("", max_length=200)


class IngestIn(BaseModel):
    """A batch of blocks from a gateway or app."""

    blocks: list[BlockIn] = Field(max_length=1000)


class IngestResult(BaseModel):
    """What one block of a batch did."""

    stream: str
    accepted: int
    duplicates: int
    gap_samples: int


class IngestOut(BaseModel):
    """What a batch did."""

    results: list[IngestResult]


class AlertRuleIn(BaseModel):
    """A new alert rule (see docs/service.md, "Alerts")."""

    name: str = _NAME
    kind: Literal["threshold", "signal_lost"]
    metric: str = Field("arousal", min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    direction: Literal["above", "below"] = "above"
    threshold: float = Field(0.8, allow_inf_nan=False, ge=-1e9, le=1e9)
    clear: float | None = Field(
        None,
        allow_inf_nan=False,
        ge=-1e9,
        le=1e9,
        description="Hysteresis level (default: threshold).",
    )
    min_duration_s: float = Field(0.0, ge=0, le=86400)
    min_confidence: float = Field(0.0, ge=0, le=1)
    cooldown_s: float = Field(0.0, ge=0, le=86400)
    lost_after_s: float = Field(30.0, gt=0, le=86400)
    webhook_url: str | None = Field(None, max_length=2000, pattern=r"^https?://[^\s]+$")

    @model_validator(mode="after")
    def _clear_beyond_threshold(self) -> AlertRuleIn:
        """Hysteresis: the clear level must not lie past the threshold (it would flap)."""
        clear = self.threshold if self.clear is None else self.clear
        if (self.direction == "above" and clear > self.threshold) or (
            self.direction == "below" and clear < self.threshold
        ):
            raise ValueError(
                f"clear={clear} would clear the alert before it fires; for direction "
                f"'{self.direction}' put it on the other side of threshold={self.threshold}."
            )
        return self


class AlertRuleOut(_Out):
    """An alert rule (its webhook secret is never shown again)."""

    id: int
    study_id: int
    name: str
    kind: str
    metric: str
    direction: str
    threshold: float
    clear: float
    min_duration_s: float
    min_confidence: float
    cooldown_s: float
    lost_after_s: float
    webhook_url: str | None
    created_at: float


class AlertRuleCreated(AlertRuleOut):
    """A new rule with its webhook signing secret (in this response only)."""

    webhook_secret: str | None


class AlertRulePage(PageOut):
    """A page of alert rules."""

    items: list[AlertRuleOut]


class AlertDeliveryOut(_Out):
    """One alert transition and its webhook delivery."""

    id: int
    rule_id: int
    session_id: str
    t: float
    state: str
    value: float | None
    status: str
    attempts: int
    response_code: int | None
    last_error: str
    delivered_at: float | None


class AlertDeliveryPage(PageOut):
    """A page of the delivery log."""

    items: list[AlertDeliveryOut]


class ExportIn(BaseModel):
    """A new export of a stored session."""

    format: Literal["estimates", "csv", "parquet", "edf", "bdf", "bids"]


class ExportOut(_Out):
    """An export job and its progress (0-1)."""

    id: int
    session_id: str
    study_id: int
    format: str
    status: str
    stage: str
    progress: float
    error: str
    size: int | None
    created_at: float
    finished_at: float | None


class ErasedOut(BaseModel):
    """What an erasure removed."""

    participant_id: int
    sessions: int
    export_files: int
