-- Migration 0002: the guard table of guarded write batches. D1 has no BEGIN, so a write that
-- rests on facts read earlier is one batch() whose first statement is
-- `INSERT INTO _guard (ok) SELECT 0 WHERE NOT (<facts still true>)`: when a fact changed, the
-- row's CHECK fails and the whole batch rolls back. A row is never stored (ok is 0 or nothing
-- is inserted). The native server holds an IMMEDIATE transaction instead and never uses it.
CREATE TABLE IF NOT EXISTS _guard (
  ok INTEGER NOT NULL CHECK (ok)
);
