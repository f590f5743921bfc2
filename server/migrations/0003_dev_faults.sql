-- Migration 0003: dev-mode fault injection (PUT /v1/dev/faults) for backends whose processes
-- share no memory. The Worker counts each user's faults still to come here; the native server
-- keeps them in its process and leaves this table empty.
CREATE TABLE IF NOT EXISTS dev_faults (
  user_id TEXT PRIMARY KEY,
  document_put_errors INTEGER NOT NULL DEFAULT 0
);
