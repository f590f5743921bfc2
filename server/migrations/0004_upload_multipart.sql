-- Migration 0004: where a resumable upload's parts live when a backend does not stage them as
-- files. The Worker streams each part into an R2 multipart upload made with the session: its
-- object key and R2 upload id are recorded here, and each stored part's R2 etag, which the
-- completion names. The native server stages parts on disk and leaves both tables empty.
CREATE TABLE IF NOT EXISTS upload_multipart (
  upload_id TEXT PRIMARY KEY,
  object_key TEXT NOT NULL,
  multipart_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS upload_part_etags (
  upload_id TEXT NOT NULL,
  part_number INTEGER NOT NULL,
  etag TEXT NOT NULL,
  PRIMARY KEY (upload_id, part_number)
);
