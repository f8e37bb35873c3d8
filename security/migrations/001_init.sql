-- Users: email stored lower case and unique; password_hash is an argon2id PHC string and never
-- leaves the service. tokens_valid_from (epoch seconds): tokens issued before it are revoked
-- (the same cut-off as the last `user:<id>` revocation); new tokens get iat >= it.
CREATE TABLE users (
    id                bigserial PRIMARY KEY,
    email             text        NOT NULL UNIQUE CHECK (email = lower(email)),
    password_hash     text        NOT NULL,
    admin             boolean     NOT NULL DEFAULT false,
    tokens_valid_from bigint      NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Access of a user to an organization: member (read and write) or viewer (read only).
-- Organizations belong to the customers service; only their ids are known here.
CREATE TABLE grants (
    id              bigserial PRIMARY KEY,
    user_id         bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id bigint      NOT NULL CHECK (organization_id > 0),
    role            text        NOT NULL CHECK (role IN ('member', 'viewer')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, organization_id)
);

-- Failed logins per email (existing or not), for the lockout rule (security/config.py LoginPolicy):
-- `failures` counts failures since `window_start`; once it reaches the limit within the window,
-- `locked_until` is set and every attempt before then gets 429. A successful login deletes the row.
CREATE TABLE login_failures (
    email        text        PRIMARY KEY,
    failures     integer     NOT NULL,
    window_start timestamptz NOT NULL,
    locked_until timestamptz
);
