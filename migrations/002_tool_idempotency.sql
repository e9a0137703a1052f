-- Results of write tools, keyed by the tool call's idempotency key (call id, turn, tool call
-- id). A retried tool call finds its key here and returns the stored result instead of acting
-- a second time. The row is written in the same transaction as the write itself.
CREATE TABLE tool_idempotency (
  key          text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 300),
  tool         text NOT NULL,
  -- sha-256 of the tool name and its canonical arguments: the same key with other arguments
  -- is a bug in the caller, refused rather than answered with an unrelated result.
  request_hash text NOT NULL,
  result       jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tool_idempotency_created_idx ON tool_idempotency (created_at);
