-- The demo's schema. Money is integer cents everywhere. `created_at` columns are Unix seconds
-- (the API renders them as RFC 3339 UTC); *_ms columns are worker bookkeeping in milliseconds.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    email      TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- Only a SHA-256 of each token is stored; the demo derives the tokens from its seed.
CREATE TABLE sessions (
    token_sha256 BLOB PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    identity     TEXT NOT NULL UNIQUE
) STRICT, WITHOUT ROWID;

CREATE TABLE startups (
    id                  INTEGER PRIMARY KEY,
    name                TEXT NOT NULL,
    industry            TEXT NOT NULL,
    stage               TEXT NOT NULL
        CHECK (stage IN ('pre-seed', 'seed', 'series-a', 'series-b', 'series-c')),
    funding_goal_cents  INTEGER NOT NULL CHECK (funding_goal_cents > 0),
    amount_raised_cents INTEGER NOT NULL DEFAULT 0 CHECK (amount_raised_cents >= 0),
    -- Pending investments hold their amount here until they complete or fail.
    reserved_cents      INTEGER NOT NULL DEFAULT 0 CHECK (reserved_cents >= 0),
    -- The last line of defence against overfunding, whatever the code above does.
    CHECK (amount_raised_cents + reserved_cents <= funding_goal_cents)
) STRICT;
CREATE INDEX startups_by_industry_stage ON startups (industry, stage);
CREATE INDEX startups_by_stage ON startups (stage);

CREATE TABLE investments (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    startup_id   INTEGER NOT NULL REFERENCES startups(id),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0 AND amount_cents <= 10000000000),
    status       TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    created_at   INTEGER NOT NULL
) STRICT;
-- One index serves both per-user reads: profiles walk it newest-first, and totals sum over it
-- without touching the table (it covers status and amount_cents).
CREATE INDEX investments_by_user ON investments (user_id, created_at, status, amount_cents);

-- Status only moves pending -> processing -> completed | failed, and nothing else changes.
CREATE TRIGGER investments_forward_only
BEFORE UPDATE ON investments
WHEN NOT (
    NEW.id = OLD.id AND NEW.user_id = OLD.user_id AND NEW.startup_id = OLD.startup_id
    AND NEW.amount_cents = OLD.amount_cents AND NEW.created_at = OLD.created_at
    AND ((OLD.status = 'pending' AND NEW.status = 'processing')
      OR (OLD.status = 'processing' AND NEW.status IN ('completed', 'failed')))
)
BEGIN
    SELECT RAISE(ABORT, 'illegal investment update');
END;

-- Idempotency keys, unique per (user, key), with the request hash and the stored response.
CREATE TABLE idempotency_keys (
    user_id         INTEGER NOT NULL REFERENCES users(id),
    key             TEXT NOT NULL,
    request_sha256  BLOB NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('in_flight', 'done')),
    locked_at_ms    INTEGER NOT NULL,
    response_status INTEGER,
    response_body   TEXT,
    response_sha256 BLOB,
    investment_id   INTEGER REFERENCES investments(id),
    created_at      TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
) STRICT, WITHOUT ROWID;

-- The outbox: one payment task per investment, written in the same transaction.
CREATE TABLE tasks (
    id             INTEGER PRIMARY KEY,
    investment_id  INTEGER NOT NULL UNIQUE REFERENCES investments(id),
    payment_key    TEXT NOT NULL UNIQUE,
    state          TEXT NOT NULL CHECK (state IN ('queued', 'claimed', 'done')),
    -- Set after a payment timeout: the outcome is unknown and must be looked up, not retried.
    reconcile      INTEGER NOT NULL DEFAULT 0,
    claimed_by     TEXT,
    lease_until_ms INTEGER,
    attempts       INTEGER NOT NULL DEFAULT 0,
    payment_ms     INTEGER,
    updated_at_ms  INTEGER NOT NULL
) STRICT;
CREATE INDEX tasks_by_state ON tasks (state, lease_until_ms);

-- The payment simulator's own ledger (stands in for the provider's side; the API reads it only
-- through the simulator's lookup). One row per payment key: a key is never charged twice.
CREATE TABLE payment_charges (
    payment_key   TEXT PRIMARY KEY,
    investment_id INTEGER NOT NULL,
    amount_cents  INTEGER NOT NULL,
    outcome       TEXT NOT NULL CHECK (outcome IN ('captured', 'declined')),
    calls         INTEGER NOT NULL DEFAULT 1,
    created_at_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE onboarding (
    user_id      INTEGER PRIMARY KEY REFERENCES users(id),
    started_at   TEXT NOT NULL,
    step1        TEXT,
    step2        TEXT,
    step3        TEXT,
    completed_at TEXT
) STRICT;
