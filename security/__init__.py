"""The security service: users, passwords, access grants and signed tokens (port 3004).

Routes (every one but /login, /health, /metrics and /openapi.json needs `Authorization: Bearer`):

    POST   /login                              {"email", "password"} -> 201 {"jwt", "expires_at"}
    POST   /logout                             revokes the presented token -> 204
    POST   /users                              {"user": {"email", "password", "admin"}} or flat (admin)
    GET    /users, /users/{id}                 admin; a user may read themselves
    PUT    /users/{id} (or PATCH)              admin; a user may change their email and password
    DELETE /users/{id}                         admin (the last administrator stays)
    POST   /users/{id}/grants                  {"grant": {"organization_id", "role"}} (admin)
    GET    /users/{id}/grants                  admin
    DELETE /users/{id}/grants/{organization_id} admin
    POST   /users/{id}/api_keys                {"api_key": {"description"}} or {} -> 201 {"key", "secret"}
                                               (admin or the user; the secret is shown this once)
    GET    /users/{id}/api_keys                without secrets (admin or the user)
    DELETE /users/{id}/api_keys/{key_id}       revoke (admin or the user)

Tokens: see `security.tokens` (JWT, EdDSA, claims iss, aud, sub, email, admin, orgs, iat, exp,
jti); every service verifies them with the public key (`servicekit.auth`).

Login failures: a wrong password and an unknown email get the same 401 and cost the same (an
unknown email is checked against a dummy argon2 hash). Failures are counted per email, existing
or not, in the `login_failures` table: after LOGIN_MAX_FAILURES (5) failures within
LOGIN_WINDOW_SECONDS (900) of the first, every attempt for that email gets 429 with
`Retry-After` until LOGIN_LOCK_SECONDS (900) after the last counted failure, the right password
included; attempts while locked are neither checked nor counted. A success clears the count.
Attempts for one email are serialized by an advisory lock, so parallel guesses cannot pass the
limit.

Revocations (`security.events`): logout puts `jti:<jti>` on the compacted `revocations` topic;
a change of a user's grants, password, email or admin flag, or their deletion, puts
`user:<id>` with `not_before`, which invalidates every token of that user issued before it.

API keys (`servicekit.apikeys`): only the secret's SHA-256 is stored; each key is published on the
compacted `api_keys` topic with its user's email, admin flag and grants (again when those change),
and tombstoned when revoked or its user is deleted; the services that accept keys (the
notifications API, as HTTP Basic) read that topic whole.

The first administrator comes from ADMIN_EMAIL/ADMIN_PASSWORD at start when no user exists.
Passwords and their hashes never appear in answers, events or logs.
"""
