-- keycheck store, PostgreSQL dialect. Tables are created in the first schema of the
-- connection's search_path. core/migrations/sqlite/0001_store.sql holds the same
-- tables for SQLite.

-- First deliveries of chat events (Slack event IDs), so retried deliveries are ignored.
CREATE TABLE chat_events (
    platform    TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (platform, event_id)
);
CREATE INDEX chat_events_expires_at ON chat_events (expires_at);

CREATE TABLE investigations (
    id           TEXT PRIMARY KEY,
    key_id       TEXT NOT NULL,
    scope        TEXT NOT NULL,
    origin       TEXT NOT NULL,
    status       TEXT NOT NULL,
    verdict      TEXT,
    severity     TEXT,
    channel      TEXT,
    root_message TEXT,
    thread       TEXT,
    started_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ
);
CREATE INDEX investigations_key_id ON investigations (key_id, started_at);

-- The current investigation of each access key in each scope. A claim is taken over
-- once its investigation has not changed for the dedupe window.
CREATE TABLE investigation_claims (
    key_id           TEXT NOT NULL,
    scope            TEXT NOT NULL,
    investigation_id TEXT NOT NULL REFERENCES investigations (id),
    active_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key_id, scope)
);
CREATE INDEX investigation_claims_investigation_id ON investigation_claims (investigation_id);

CREATE TABLE pending_actions (
    id                TEXT PRIMARY KEY,
    investigation_id  TEXT NOT NULL REFERENCES investigations (id),
    kind              TEXT NOT NULL,
    key_id            TEXT NOT NULL,
    principal         TEXT NOT NULL,
    plan              TEXT NOT NULL,
    platform          TEXT NOT NULL,
    workspace         TEXT NOT NULL,
    channel           TEXT NOT NULL,
    state             TEXT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    expires_at        TIMESTAMPTZ,
    requested_by_id   TEXT,
    requested_by_name TEXT,
    requested_at      TIMESTAMPTZ,
    decided_by_id     TEXT,
    decided_by_name   TEXT,
    decided_at        TIMESTAMPTZ,
    closed_at         TIMESTAMPTZ
);
CREATE INDEX pending_actions_investigation_id ON pending_actions (investigation_id);
CREATE INDEX pending_actions_requested_expires_at ON pending_actions (expires_at) WHERE state = 'requested';

-- Append-only: the triggers below reject every UPDATE, DELETE and TRUNCATE. They do not
-- stop the table's owner from dropping them, so production deployments should run
-- keycheck as a role that does not own this table. seq orders entries with the same
-- timestamp.
CREATE TABLE audit_log (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at               TIMESTAMPTZ NOT NULL,
    investigation_id TEXT,
    action_id        TEXT,
    key_id           TEXT,
    actor_platform   TEXT NOT NULL,
    actor_id         TEXT NOT NULL,
    actor_name       TEXT NOT NULL,
    event            TEXT NOT NULL,
    detail           TEXT NOT NULL,
    aws_request_id   TEXT,
    result           TEXT
);
CREATE INDEX audit_log_key_id ON audit_log (key_id, at);

CREATE FUNCTION audit_log_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % rejected', TG_OP;
END;
$$;

CREATE TRIGGER audit_log_reject_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_reject_change();

CREATE TRIGGER audit_log_reject_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_reject_change();
