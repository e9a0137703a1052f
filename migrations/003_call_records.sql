-- Call records: one row per finished call, its turns and the tool calls made in them.
-- Written only by the call-records flusher (src/records), which drains a local append-only
-- journal: rows are inserted idempotently by call_id, so a record flushed twice (a crash
-- between COMMIT and the journal's checkpoint) is stored once.
--
-- Personal data (caller numbers, transcripts, tool arguments) is kept here on purpose: this
-- is the access-controlled place for it, unlike the logs.

CREATE TABLE calls (
  call_id              text PRIMARY KEY CHECK (length(call_id) BETWEEN 1 AND 200),
  channel_id           text NOT NULL,
  -- E.164 where the presented number could be normalised, else as presented ('' when withheld).
  caller_number        text NOT NULL,
  caller_name          text NOT NULL DEFAULT '',
  dialed               text,
  agent                text NOT NULL,
  started_at           timestamptz NOT NULL,
  ended_at             timestamptz NOT NULL,
  duration_ms          integer NOT NULL CHECK (duration_ms >= 0),
  outcome              text NOT NULL CHECK (outcome IN ('resolved', 'transferred', 'abandoned', 'failed')),
  -- The engine's own reason: caller_hangup, agent_hangup, completed, transferred, failed, shutdown.
  end_reason           text NOT NULL,
  transfer_destination text,
  transfer_reason      text,
  summary              text NOT NULL DEFAULT '',
  variables            jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(variables) = 'object'),
  barge_ins            integer NOT NULL DEFAULT 0 CHECK (barge_ins >= 0),
  recorded_at          timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT calls_time_order CHECK (ended_at >= started_at),
  CONSTRAINT calls_transfer_pair CHECK ((transfer_destination IS NULL) = (transfer_reason IS NULL))
);
-- Listing newest first (with paging on started_at), by outcome, by caller, by agent.
CREATE INDEX calls_started_idx ON calls (started_at DESC, call_id);
CREATE INDEX calls_outcome_started_idx ON calls (outcome, started_at DESC);
CREATE INDEX calls_caller_started_idx ON calls (caller_number, started_at DESC);
CREATE INDEX calls_agent_started_idx ON calls (agent, started_at DESC);

-- Turn numbers are the call engine's: the greeting is the first turn, then one per caller
-- turn and per agent-initiated turn (a re-prompt).
CREATE TABLE call_turns (
  call_id      text NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
  turn         integer NOT NULL CHECK (turn >= 0),
  caller_text  text,
  -- What the agent meant to say, and what the caller actually heard (shorter after a barge-in).
  agent_text   text,
  agent_played text,
  completed    boolean NOT NULL,
  barged_in    boolean NOT NULL DEFAULT false,
  -- Caller's last speech packet -> agent's first audio packet, on the wire.
  latency_ms   double precision CHECK (latency_ms IS NULL OR latency_ms >= 0),
  -- [{"stage": "stt|llm|tts|tools", "error": "..."}]
  errors       jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(errors) = 'array'),
  started_at   timestamptz NOT NULL,
  PRIMARY KEY (call_id, turn)
);

CREATE TABLE call_tool_calls (
  call_id      text NOT NULL,
  turn         integer NOT NULL,
  -- Order of the tool call within its turn.
  seq          integer NOT NULL CHECK (seq >= 0),
  tool_call_id text NOT NULL,
  name         text NOT NULL,
  arguments    jsonb,
  ok           boolean NOT NULL,
  -- The tool's data when ok, its error text when not.
  result       jsonb,
  error        text,
  -- refused | invalid | timeout | error | aborted (free text: new kinds must not be refused here).
  failure      text,
  duration_ms  double precision NOT NULL CHECK (duration_ms >= 0),
  at           timestamptz NOT NULL,
  PRIMARY KEY (call_id, turn, seq),
  FOREIGN KEY (call_id, turn) REFERENCES call_turns (call_id, turn) ON DELETE CASCADE
);
CREATE INDEX call_tool_calls_name_idx ON call_tool_calls (name, at);
