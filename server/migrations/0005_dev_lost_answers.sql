-- Migration 0005: the lost-answer dev faults (PUT /v1/dev/faults `uploadResponseLost`,
-- `documentResponseLost`), counted per user next to `document_put_errors` for backends whose
-- processes share no memory. The native server keeps them in its process.
ALTER TABLE dev_faults ADD COLUMN upload_response_lost INTEGER NOT NULL DEFAULT 0;
ALTER TABLE dev_faults ADD COLUMN document_response_lost INTEGER NOT NULL DEFAULT 0;
