"""Alert rules of a study and their delivery log."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, status

from affectstream.api import alert_rules
from affectstream.api.deps import DbDep, PagingDep, PrincipalDep, StateDep
from affectstream.api.schemas import (
    AlertDeliveryPage,
    AlertRuleCreated,
    AlertRuleIn,
    AlertRulePage,
    Id,
)

router = APIRouter(tags=["alerts"])


@router.post("/studies/{study_id}/alert-rules", status_code=status.HTTP_201_CREATED)
async def create_rule(
    study_id: Id, body: AlertRuleIn, state: StateDep, db: DbDep, who: PrincipalDep
) -> AlertRuleCreated:
    """Create a rule; the study's sessions evaluate it from now on, running ones included,
    on whichever replica runs them. The webhook secret is shown in this response only."""
    rule = await asyncio.to_thread(alert_rules.create, db, who, study_id, body)
    out = AlertRuleCreated.model_validate(rule)
    await state.alerts.rules_changed(study_id, state.bus)
    return out


@router.get("/studies/{study_id}/alert-rules")
def list_rules(study_id: Id, db: DbDep, who: PrincipalDep, paging: PagingDep) -> AlertRulePage:
    """The study's alert rules."""
    page = alert_rules.list_rules(db, who, study_id, *paging)
    return AlertRulePage.model_validate(page, from_attributes=True)


@router.delete("/alert-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(rule_id: Id, state: StateDep, db: DbDep, who: PrincipalDep) -> None:
    """Delete a rule and its delivery log; running sessions stop evaluating it."""
    study_id = await asyncio.to_thread(alert_rules.delete, db, who, rule_id)
    await state.alerts.rules_changed(study_id, state.bus)


@router.get("/alert-rules/{rule_id}/deliveries")
def list_deliveries(
    rule_id: Id,
    db: DbDep,
    who: PrincipalDep,
    paging: PagingDep,
    status: Literal["live_only", "pending", "delivered", "failed"] | None = None,
) -> AlertDeliveryPage:
    """The rule's alerts and how each webhook delivery went, newest first."""
    page = alert_rules.deliveries(db, who, rule_id, status, *paging)
    return AlertDeliveryPage.model_validate(page, from_attributes=True)
