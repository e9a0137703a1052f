-- Business data the CRM tools read and write: customers and their phone numbers, vehicles,
-- orders, service appointments and support tickets.
--
-- Conventions: integer ids (short enough to say on the phone), timestamptz everywhere, text
-- with CHECK constraints instead of enum types (a new status is an ALTER of one constraint),
-- phone numbers only in E.164.

-- Exclusion constraints over (bay, time range) need GiST support for plain integer equality.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE customers (
  id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  first_name  text NOT NULL CHECK (length(btrim(first_name)) BETWEEN 1 AND 100),
  last_name   text NOT NULL DEFAULT '' CHECK (length(last_name) <= 100),
  -- BCP-47 tag of the language the customer prefers to be spoken to in.
  language    text NOT NULL DEFAULT 'en-US' CHECK (language ~ '^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$'),
  email       text CHECK (email IS NULL OR email ~ '^[^@\s]+@[^@\s]+$'),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_last_first_idx ON customers (lower(last_name), lower(first_name));

-- One row per number; a number belongs to exactly one customer, so the caller's number
-- identifies the customer unambiguously.
CREATE TABLE customer_phones (
  phone       text PRIMARY KEY CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
  customer_id integer NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
  label       text NOT NULL DEFAULT 'mobile' CHECK (label IN ('mobile', 'home', 'work', 'other')),
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customer_phones_customer_idx ON customer_phones (customer_id);

CREATE TABLE vehicles (
  id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
  -- Normalised: upper case letters and digits only ("ABC 123" is stored as "ABC123").
  plate       text CHECK (plate IS NULL OR plate ~ '^[A-Z0-9]{1,12}$'),
  make        text NOT NULL CHECK (length(make) BETWEEN 1 AND 60),
  model       text NOT NULL CHECK (length(model) BETWEEN 1 AND 60),
  year        smallint CHECK (year IS NULL OR year BETWEEN 1900 AND 2100),
  vin         text UNIQUE CHECK (vin IS NULL OR vin ~ '^[A-HJ-NPR-Z0-9]{17}$'),
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX vehicles_customer_idx ON vehicles (customer_id);

-- Order numbers are what callers read out: six digits from the sequence (demo data and
-- imports may use shorter explicit numbers below 100000).
CREATE SEQUENCE order_number_seq AS integer START 100000 MINVALUE 100000 MAXVALUE 999999 NO CYCLE;
CREATE TABLE orders (
  id            integer PRIMARY KEY DEFAULT nextval('order_number_seq') CHECK (id BETWEEN 1 AND 999999),
  customer_id   integer NOT NULL REFERENCES customers (id),
  status        text NOT NULL DEFAULT 'placed'
                CHECK (status IN ('placed', 'processing', 'shipped', 'out_for_delivery', 'delivered', 'cancelled')),
  address       text NOT NULL CHECK (length(address) BETWEEN 1 AND 300),
  -- [{"name": "...", "quantity": n}]
  items         jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(items) = 'array'),
  expected_on   date,
  cancelled_at  timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE order_number_seq OWNED BY orders.id;
CREATE INDEX orders_customer_idx ON orders (customer_id, updated_at DESC);

-- A service appointment occupies one bay for [starts_at, ends_at). Two booked appointments
-- can never overlap on the same bay: the exclusion constraint is the final word, whatever
-- races the application loses.
CREATE TABLE appointments (
  id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer_id   integer NOT NULL REFERENCES customers (id),
  vehicle_id    integer REFERENCES vehicles (id) ON DELETE SET NULL,
  service       text NOT NULL CHECK (length(service) BETWEEN 1 AND 100),
  bay           smallint NOT NULL DEFAULT 1 CHECK (bay >= 1),
  starts_at     timestamptz NOT NULL,
  ends_at       timestamptz NOT NULL,
  status        text NOT NULL DEFAULT 'booked' CHECK (status IN ('booked', 'cancelled', 'completed', 'no_show')),
  cancel_reason text CHECK (cancel_reason IS NULL OR length(cancel_reason) <= 500),
  -- Set by the outbound reminder job once the 24-hour reminder call was placed.
  reminded_at   timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT appointments_time_order CHECK (ends_at > starts_at),
  CONSTRAINT appointments_no_overlap EXCLUDE USING gist (bay WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&)
    WHERE (status = 'booked')
);
CREATE INDEX appointments_customer_idx ON appointments (customer_id, starts_at);
CREATE INDEX appointments_booked_starts_idx ON appointments (starts_at) WHERE status = 'booked';

CREATE TABLE tickets (
  id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- Unknown callers get tickets too: then only the number they called from is kept.
  customer_id   integer REFERENCES customers (id),
  caller_number text,
  call_id       text,
  category      text NOT NULL
                CHECK (category IN ('complaint', 'order', 'delivery', 'billing', 'appointment', 'vehicle', 'technical', 'other')),
  summary       text NOT NULL CHECK (length(summary) BETWEEN 1 AND 2000),
  status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_progress', 'resolved', 'closed')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tickets_customer_idx ON tickets (customer_id, created_at DESC);
CREATE INDEX tickets_open_idx ON tickets (created_at) WHERE status IN ('open', 'in_progress');
