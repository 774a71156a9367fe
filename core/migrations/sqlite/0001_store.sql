-- keycheck store, SQLite dialect. Timestamps are UTC text in one fixed-width form,
-- 2025-03-14T09:26:53.000000Z, so comparing the text compares the times.
-- core/migrations/postgres/0001_store.sql holds the same tables for PostgreSQL.

-- First deliveries of chat events (Slack event IDs), so retried deliveries are ignored.
CREATE TABLE chat_events (
    platform    TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    received_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
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
    started_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    finished_at  TEXT
);
CREATE INDEX investigations_key_id ON investigations (key_id, started_at);

-- The current investigation of each access key in each scope. A claim is taken over
-- once its investigation has not changed for the dedupe window.
CREATE TABLE investigation_claims (
    key_id           TEXT NOT NULL,
    scope            TEXT NOT NULL,
    investigation_id TEXT NOT NULL REFERENCES investigations (id),
    active_at        TEXT NOT NULL,
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
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    expires_at        TEXT,
    requested_by_id   TEXT,
    requested_by_name TEXT,
    requested_at      TEXT,
    decided_by_id     TEXT,
    decided_by_name   TEXT,
    decided_at        TEXT,
    closed_at         TEXT
);
CREATE INDEX pending_actions_investigation_id ON pending_actions (investigation_id);
CREATE INDEX pending_actions_requested_expires_at ON pending_actions (expires_at) WHERE state = 'requested';

-- Append-only: the triggers below abort every UPDATE and DELETE. seq orders entries
-- with the same timestamp.
CREATE TABLE audit_log (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    at               TEXT NOT NULL,
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

CREATE TRIGGER audit_log_reject_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE rejected');
END;

CREATE TRIGGER audit_log_reject_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: DELETE rejected');
END;
