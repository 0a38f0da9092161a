"""Alert rules and their delivery log: create, list, delete, query (with access checks)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from affectstream.api import service
from affectstream.api.db import AlertDelivery, AlertRule
from affectstream.api.schemas import AlertRuleIn
from affectstream.api.security import Principal, add_audited, audit
from affectstream.api.webhooks import new_secret

#: The body's fields copied as they are into the rule's columns ("metric" and "clear" are
#: derived; a body field that is no column is never passed to the table).
_COPIED = (set(AlertRuleIn.model_fields) & set(AlertRule.__table__.columns.keys())) - {
    "metric",
    "clear",
}


def create(db: Session, who: Principal, study_id: int, body: AlertRuleIn) -> AlertRule:
    """Create a rule in a study the caller may see; a webhook gets a fresh signing secret.

    Returns
    -------
    AlertRule
    """
    service.check(who, "alerts:write")
    service.get_study(db, who, study_id)
    clear = body.threshold if body.clear is None else body.clear  # AlertRuleIn checked it
    rule = AlertRule(
        **body.model_dump(include=_COPIED),
        study_id=study_id,
        metric=body.metric if body.kind == "threshold" else "",
        clear=clear,
        webhook_secret=new_secret() if body.webhook_url else None,
    )
    return add_audited(db, who, rule, "alert_rule", f"study {study_id}: {body.name}")


def _rule(db: Session, who: Principal, rule_id: int) -> AlertRule:
    rule = db.get(AlertRule, rule_id)
    if rule is None or not who.may_see_study(rule.study_id):
        raise service.NotFoundError(f"No alert rule {rule_id}.")
    return rule


def list_rules(db: Session, who: Principal, study_id: int, limit: int, offset: int) -> service.Page:
    """The study's rules.

    Returns
    -------
    Page
    """
    query = select(AlertRule).where(AlertRule.study_id == study_id).order_by(AlertRule.id)
    return service.study_page(db, who, study_id, "alerts:read", query, limit, offset)


def delete(db: Session, who: Principal, rule_id: int) -> int:
    """Delete a rule (and its delivery log).

    Returns
    -------
    int
        Its study (whose running sessions then stop evaluating it).
    """
    service.check(who, "alerts:write")
    rule = _rule(db, who, rule_id)
    study_id = rule.study_id
    db.delete(rule)
    audit(db, who, "delete", f"alert_rule/{rule_id}")
    db.commit()
    return study_id


def deliveries(
    db: Session, who: Principal, rule_id: int, status: str | None, limit: int, offset: int
) -> service.Page:
    """A rule's delivery log, newest first, optionally one status.

    Returns
    -------
    Page
    """
    service.check(who, "alerts:read")
    _rule(db, who, rule_id)
    query = select(AlertDelivery).where(AlertDelivery.rule_id == rule_id)
    if status is not None:
        query = query.where(AlertDelivery.status == status)
    return service.paginate(db, query.order_by(AlertDelivery.id.desc()), limit, offset)
