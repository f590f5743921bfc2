-- Migration 0007: the bytes a single-shot upload reserved, on its pending record. A Worker
-- invocation can end mid-upload without running its cleanup (the client went away), and no
-- restart follows to reset reservations as the native server's does; the Worker's sweep
-- releases a stale record's bytes from here. NULL on the native server's records and on a
-- completion's (its session holds the reservation).
ALTER TABLE pending_objects ADD COLUMN reserved INTEGER;
