-- Failed logins are counted per email AND client address (security/config.py LoginPolicy), so
-- guesses from one address slow down that address only, never the right user elsewhere.
-- An attempt is counted before its password is checked (parallel guesses cannot pass the
-- limit); `blocked_until` refuses the next attempt of that pair with 429 until then; a success
-- deletes the pair's row, and `python -m security unlock EMAIL` deletes every row of an email.
DROP TABLE login_failures;

CREATE TABLE login_attempts (
    email         text        NOT NULL,
    address       text        NOT NULL,
    failures      integer     NOT NULL,
    last_attempt  timestamptz NOT NULL,
    blocked_until timestamptz,
    PRIMARY KEY (email, address)
);
CREATE INDEX login_attempts_last_attempt ON login_attempts (last_attempt);

-- Tokens revoked one by one (logout) until they expire: the security service tombstones their
-- `jti:` revocation on the topic once they have expired, and deletes the row in that transaction.
CREATE TABLE revoked_tokens (
    jti text   PRIMARY KEY,
    exp bigint NOT NULL
);
CREATE INDEX revoked_tokens_exp ON revoked_tokens (exp);
