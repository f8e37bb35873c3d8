"""The request bodies the security service accepts, strictly typed, and its answers' shapes.

Passwords are never stripped or echoed: a validation problem names the field, not the value.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from servicekit.fields import STRICT, Email, Printable, Wrapped
from servicekit.http import MAX_ID

Password = Annotated[str, StringConstraints(min_length=8, max_length=1024, strip_whitespace=False)]
AnyPassword = Annotated[str, StringConstraints(min_length=1, max_length=1024, strip_whitespace=False)]
LoginEmail = Annotated[str, StringConstraints(min_length=1, max_length=254, to_lower=True), Printable]
Role = Literal["member", "viewer"]

# The servicekit rules, and pydantic errors that never carry the input (it may be a password).
SECRET_STRICT = ConfigDict(**STRICT, hide_input_in_errors=True)


class LoginBody(BaseModel):
    """`{"email": "admin@example.com", "password": "..."}`"""

    model_config = SECRET_STRICT
    email: LoginEmail
    password: AnyPassword


class UserFields(BaseModel):
    model_config = SECRET_STRICT
    email: Email
    password: Password
    admin: bool = False


class UserBody(Wrapped):
    """`{"user": {"email": "ann@example.com", "password": "at least 8", "admin": false}}` (or flat)"""

    model_config = SECRET_STRICT
    user: UserFields


class UserChanges(BaseModel):
    model_config = SECRET_STRICT
    email: Email | None = None
    password: Password | None = None
    admin: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> UserChanges:
        if not self.model_fields_set:
            raise ValueError("give at least one of email, password, admin")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} may not be null")
        return self


class UserUpdateBody(Wrapped):
    model_config = SECRET_STRICT
    user: UserChanges


class GrantFields(BaseModel):
    model_config = SECRET_STRICT
    organization_id: int = Field(gt=0, le=MAX_ID)
    role: Role


class GrantBody(Wrapped):
    """`{"grant": {"organization_id": 13, "role": "member"}}` (or flat)"""

    model_config = SECRET_STRICT
    grant: GrantFields


class User(BaseModel):
    id: int
    email: str
    admin: bool
    created_at: str
    updated_at: str


class Grant(BaseModel):
    id: int
    user_id: int
    organization_id: int
    role: Role
    created_at: str
    updated_at: str


class ApiKeyFields(BaseModel):
    model_config = STRICT
    description: Annotated[str, StringConstraints(max_length=200), Printable] = ""


class ApiKeyBody(Wrapped):
    """`{"api_key": {"description": "ksql-python-ng on the reporting box"}}` (or flat, or `{}`)"""

    api_key: ApiKeyFields


class ApiKey(BaseModel):
    """A key as listed: never its secret."""

    id: int
    key: str
    user_id: int
    description: str
    created_at: str


class NewApiKey(ApiKey):
    """A key just issued: its secret, shown this once (HTTP Basic `key:secret`)."""

    secret: str


class LoginAnswer(BaseModel):
    jwt: str
    expires_at: str
