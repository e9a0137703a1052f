-- Micromobility support line (seed 000): a fleet of shared bicycles and scooters, riders'
-- trips, parking areas and red (no-parking) zones, the vehicles' reported positions, and a
-- log of what was done to a vehicle or trip (geofence checks, locate requests, remote
-- restarts, trips ended, minutes waived).
--
-- Riders are the CRM's customers: the number a caller rings from (customer_phones) names the
-- rider, so no rider table of its own. Tickets go into the CRM's tickets table; trip_tickets
-- links them to the trip and vehicle they are about.
--
-- Conventions as in 001: integer ids, timestamptz, text with CHECK constraints, money in
-- cents with its currency.

-- Where a trip may end (allowed: a parking area) and where a vehicle must not be left (red).
-- A shape is either a circle (centre + radius in metres) or a polygon of [lat, lon] points.
-- Red zones win over parking areas where they overlap (a red circle at a station's doors).
CREATE TABLE geo_zones (
  id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name        text NOT NULL UNIQUE CHECK (length(btrim(name)) BETWEEN 1 AND 100),
  kind        text NOT NULL CHECK (kind IN ('allowed', 'red')),
  center_lat  double precision CHECK (center_lat BETWEEN -90 AND 90),
  center_lon  double precision CHECK (center_lon BETWEEN -180 AND 180),
  radius_m    double precision CHECK (radius_m > 0 AND radius_m <= 50000),
  polygon     jsonb CHECK (polygon IS NULL OR (jsonb_typeof(polygon) = 'array' AND jsonb_array_length(polygon) BETWEEN 3 AND 500)),
  active      boolean NOT NULL DEFAULT true,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT geo_zones_one_shape CHECK (
    (polygon IS NULL AND center_lat IS NOT NULL AND center_lon IS NOT NULL AND radius_m IS NOT NULL)
    OR (polygon IS NOT NULL AND center_lat IS NULL AND center_lon IS NULL AND radius_m IS NULL))
);

-- The fleet. `code` is the number printed on the vehicle (under the QR code), what a rider
-- reads out. `lock_state` is what the lock last reported; `not_responding` means it does not
-- answer (jammed, lost its connection). `lock_fault` is the simulated cause behind a lock
-- that does not respond: a remote restart clears a `transient` fault, not a `persistent` one.
CREATE TABLE fleet_vehicles (
  id               integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  code             text NOT NULL UNIQUE CHECK (code ~ '^[0-9]{4,6}$'),
  type             text NOT NULL CHECK (type IN ('bicycle', 'scooter')),
  status           text NOT NULL DEFAULT 'available' CHECK (status IN ('available', 'in_trip', 'maintenance')),
  lock_state       text NOT NULL DEFAULT 'locked' CHECK (lock_state IN ('locked', 'unlocked', 'not_responding')),
  lock_fault       text NOT NULL DEFAULT 'none' CHECK (lock_fault IN ('none', 'transient', 'persistent')),
  battery_percent  smallint CHECK (battery_percent BETWEEN 0 AND 100),
  restarted_at     timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Every position a vehicle reported. `recorded_at` is when the vehicle was there (its fix);
-- `visible_at` is when the CRM received it. The CRM's idea of where a vehicle is: its latest
-- fix (by recorded_at) among those already visible. A fix still on its way has visible_at
-- NULL and `transit_ms`: asking the vehicle for its position (a locate request) makes it
-- visible that long after the request. This is how delayed geodata (the seed's false red-zone
-- triggers) is modelled: the vehicle is parked correctly, the CRM still shows an older fix.
CREATE TABLE fleet_positions (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  vehicle_id   integer NOT NULL REFERENCES fleet_vehicles (id) ON DELETE CASCADE,
  lat          double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
  lon          double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
  recorded_at  timestamptz NOT NULL,
  visible_at   timestamptz,
  transit_ms   integer CHECK (transit_ms BETWEEN 0 AND 600000),
  CONSTRAINT fleet_positions_arrives CHECK (visible_at IS NOT NULL OR transit_ms IS NOT NULL)
);
CREATE INDEX fleet_positions_vehicle_idx ON fleet_positions (vehicle_id, recorded_at DESC);
CREATE INDEX fleet_positions_in_transit_idx ON fleet_positions (vehicle_id) WHERE visible_at IS NULL;

-- A rider's trip on one vehicle. Prices are fixed when the trip starts. When it ends:
-- `minutes` ridden (start to end, rounded up), `waived_minutes` not charged (with the reason,
-- e.g. the CRM's geodata lagged behind a vehicle that was already parked correctly) and the
-- charge: unlock fee + per-minute price × (minutes − waived_minutes).
CREATE TABLE trips (
  id                integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer_id       integer NOT NULL REFERENCES customers (id),
  vehicle_id        integer NOT NULL REFERENCES fleet_vehicles (id),
  status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'ended')),
  started_at        timestamptz NOT NULL,
  ended_at          timestamptz,
  currency          text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
  unlock_fee_cents  integer NOT NULL DEFAULT 0 CHECK (unlock_fee_cents >= 0),
  per_minute_cents  integer NOT NULL CHECK (per_minute_cents >= 0),
  minutes           integer CHECK (minutes >= 0),
  waived_minutes    integer NOT NULL DEFAULT 0 CHECK (waived_minutes >= 0),
  waive_reason      text CHECK (waive_reason IS NULL OR length(waive_reason) BETWEEN 1 AND 200),
  charge_cents      integer CHECK (charge_cents >= 0),
  -- Who ended it: the rider in the app, the voice agent on the rider's behalf, an operator.
  ended_by          text CHECK (ended_by IN ('rider', 'agent', 'operator')),
  end_call_id       text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT trips_end_consistent CHECK (
    (status = 'active' AND ended_at IS NULL AND minutes IS NULL AND charge_cents IS NULL AND ended_by IS NULL)
    OR (status = 'ended' AND ended_at IS NOT NULL AND minutes IS NOT NULL AND charge_cents IS NOT NULL AND ended_by IS NOT NULL)),
  CONSTRAINT trips_time_order CHECK (ended_at IS NULL OR ended_at >= started_at),
  CONSTRAINT trips_waiver CHECK ((waived_minutes = 0) = (waive_reason IS NULL) AND waived_minutes <= coalesce(minutes, 0))
);
-- A vehicle is in at most one active trip.
CREATE UNIQUE INDEX trips_one_active_per_vehicle ON trips (vehicle_id) WHERE status = 'active';
CREATE INDEX trips_customer_idx ON trips (customer_id, started_at DESC);

-- What happened to a vehicle or a trip, in order: the audit trail an operator reads after a
-- transfer (and the tests check). `detail` is JSON (positions, verdicts, outcomes).
CREATE TABLE fleet_events (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  vehicle_id  integer NOT NULL REFERENCES fleet_vehicles (id) ON DELETE CASCADE,
  trip_id     integer REFERENCES trips (id) ON DELETE CASCADE,
  kind        text NOT NULL CHECK (kind IN ('geofence_check', 'locate_requested', 'restart', 'end_refused', 'trip_ended', 'minutes_waived')),
  detail      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(detail) = 'object'),
  call_id     text,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX fleet_events_vehicle_idx ON fleet_events (vehicle_id, created_at);
CREATE INDEX fleet_events_trip_idx ON fleet_events (trip_id, created_at) WHERE trip_id IS NOT NULL;

-- Which trip and vehicle a support ticket is about, and the support topic (finer than the
-- CRM ticket category it maps to).
CREATE TABLE trip_tickets (
  ticket_id   integer PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
  trip_id     integer REFERENCES trips (id) ON DELETE SET NULL,
  vehicle_id  integer REFERENCES fleet_vehicles (id) ON DELETE SET NULL,
  topic       text NOT NULL CHECK (topic IN ('lock', 'trip_end', 'red_zone', 'app', 'other'))
);
CREATE INDEX trip_tickets_trip_idx ON trip_tickets (trip_id) WHERE trip_id IS NOT NULL;
