-- API keys of users, for machine clients that send HTTP Basic (ksqlDB and Confluent Cloud
-- clients): `key` is public, the secret is shown once and only its SHA-256 is kept
-- (servicekit.apikeys). A key acts with its user's grants; it goes when revoked or with its user.
CREATE TABLE api_keys (
    id            bigserial   PRIMARY KEY,
    key           text        NOT NULL UNIQUE,
    secret_sha256 text        NOT NULL,
    user_id       bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    description   text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_user_id ON api_keys (user_id);
