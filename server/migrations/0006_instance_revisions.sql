-- Migration 0006: a revision of each user's instance state (instances, their bindings, plugin
-- pins and collection declarations) for backends without transactions. The Worker decides a
-- registration on facts read earlier and writes one batch guarded by "the revision is still
-- the one read", bumping it. The native server holds an IMMEDIATE transaction instead and
-- leaves this table empty.
CREATE TABLE IF NOT EXISTS instance_revisions (
  user_id TEXT PRIMARY KEY,
  revision INTEGER NOT NULL
);
