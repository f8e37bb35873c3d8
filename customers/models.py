"""The request bodies the customers service accepts (the seed's Rails params, strictly typed)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, model_validator

from servicekit.fields import STRICT, Email, RecordId, Text


class OrganizationFields(BaseModel):
    model_config = STRICT
    name: Text


class OrganizationBody(BaseModel):
    """`{"organization": {"name": "SuperCompany"}}`"""

    model_config = STRICT
    organization: OrganizationFields


class CustomerFields(BaseModel):
    """`organization_id`: the owner; a member may leave it out when a member of one organization
    only, an administrator to create a customer owned by no organization."""

    model_config = STRICT
    name: Text
    last_name: Text
    email: Email
    organization_id: RecordId | None = None


class CustomerBody(BaseModel):
    """`{"customer": {"name": "John", "last_name": "Do", "email": "jdo@gmail.com"}}`"""

    model_config = STRICT
    customer: CustomerFields


class CustomerChanges(BaseModel):
    model_config = STRICT
    name: Text | None = None
    last_name: Text | None = None
    email: Email | None = None
    organization_id: RecordId | None = None  # a new owner (a member of both, or an admin)

    @model_validator(mode="after")
    def _something(self) -> CustomerChanges:
        if not self.model_fields_set:
            raise ValueError("give at least one of name, last_name, email, organization_id")
        return self


class CustomerUpdateBody(BaseModel):
    model_config = STRICT
    customer: CustomerChanges


class InviteFields(BaseModel):
    model_config = STRICT
    customer_id: RecordId


class InviteBody(BaseModel):
    """`{"invite": {"customer_id": 10}}` (the seed's organization_associations params)"""

    model_config = STRICT
    invite: InviteFields


class AssociationMove(BaseModel):
    """`{"state": "ready"}` accepts a pending invitation, `{"state": "rejected"}` rejects it."""

    model_config = STRICT
    state: Literal["ready", "rejected"]


class Organization(BaseModel):
    id: int
    name: str
    created_at: str
    updated_at: str


class Customer(BaseModel):
    id: int
    name: str
    last_name: str
    email: str
    organization_id: int | None
    created_at: str
    updated_at: str


class OrganizationAssociation(BaseModel):
    id: int
    organization_id: int
    customer_id: int
    state: Literal["pending", "ready", "rejected"]
    created_at: str
    updated_at: str
