/**
 * The pure parts of the micromobility tools: vehicle numbers as a model or a recogniser passes
 * them, money said aloud, the trip bill, and the geometry of parking areas and red zones.
 */
import { describe, expect, it } from 'vitest';
import { classifyPosition, distanceM, distanceToZone, inZone, tripBill, type Zone } from '../../src/storage/micromobility.js';
import { DEMO_ZONES } from '../../src/storage/micromobility-seed.js';
import { moneyWords, parseVehicleCode } from './tools.js';

describe('parseVehicleCode', () => {
  it('reads the number however it arrives', () => {
    for (const v of [4217, '4217', '42-17', '4 2 1 7', 'four two one seven', 'scooter 4217', 'vehicle number 4217', 'No. 4217', '#4217', 'four two one 7']) {
      expect(parseVehicleCode(v), String(v)).toBe('4217');
    }
    expect(parseVehicleCode('double four one seven')).toBe('4417');
    expect(parseVehicleCode('one oh two three')).toBe('1023');
    expect(parseVehicleCode('123456')).toBe('123456');
  });

  it('refuses what is not a 4 to 6 digit vehicle number', () => {
    for (const v of [123, 1234567, -4217, 42.17, '', '123', '1234567', 'abcd', "1'; DROP TABLE trips;--", '4217 please', 'twelve', '4217%', 'S-4217x']) {
      expect(parseVehicleCode(v), String(v)).toBeUndefined();
    }
  });
});

describe('moneyWords', () => {
  it('says amounts in words a voice reads well', () => {
    expect(moneyWords(475, 'USD')).toBe('4 dollars and 75 cents');
    expect(moneyWords(100, 'USD')).toBe('1 dollar');
    expect(moneyWords(101, 'EUR')).toBe('1 euro and 1 cent');
    expect(moneyWords(35, 'GBP')).toBe('35 pence');
    expect(moneyWords(1250, 'UAH')).toBe('12 hryvnias and 50 kopiykas');
    expect(moneyWords(1250, 'CHF')).toBe('12.50 CHF');
  });
});

describe('tripBill', () => {
  const start = new Date('2030-01-07T10:00:00Z');
  const trip = { startedAt: start, unlockFeeCents: 100, perMinuteCents: 25 };
  const at = (min: number): Date => new Date(start.getTime() + min * 60_000);

  it('charges the unlock fee plus every started minute', () => {
    expect(tripBill(trip, at(10))).toEqual({ endedAt: at(10), minutes: 10, waivedMinutes: 0, billedMinutes: 10, chargeCents: 350 });
    expect(tripBill(trip, at(10.01)).minutes).toBe(11);
    expect(tripBill(trip, at(0)).minutes).toBe(1);
  });

  it('waives the minutes after the vehicle was really parked', () => {
    expect(tripBill(trip, at(19.2), at(15))).toEqual({ endedAt: at(19.2), minutes: 20, waivedMinutes: 5, billedMinutes: 15, chargeCents: 475 });
    // A "parked" time before the start still bills the first minute; one after the end waives nothing.
    expect(tripBill(trip, at(5), at(-3))).toMatchObject({ billedMinutes: 1, waivedMinutes: 4 });
    expect(tripBill(trip, at(5), at(9))).toMatchObject({ billedMinutes: 5, waivedMinutes: 0 });
  });
});

describe('geometry', () => {
  const zones: Zone[] = DEMO_ZONES.map((z, i) => ({
    zoneId: i + 1,
    name: z.name,
    kind: z.kind,
    shape: z.circle ? { kind: 'circle', lat: z.circle.lat, lon: z.circle.lon, radiusM: z.circle.radiusM } : { kind: 'polygon', points: z.polygon! },
  }));
  const zone = (name: string): Zone => zones.find((z) => z.name === name)!;

  it('measures distances on the earth', () => {
    // One thousandth of a degree of latitude is about 111 m.
    expect(distanceM(50.45, 30.52, 50.451, 30.52)).toBeCloseTo(111.2, 0);
    expect(distanceM(50.45, 30.52, 50.45, 30.521)).toBeCloseTo(70.9, 0);
  });

  it('tells inside from outside for circles and polygons', () => {
    expect(inZone(50.4502, 30.5235, zone('Market Square').shape)).toBe(true);
    expect(inZone(50.451, 30.5234, zone('Market Square').shape)).toBe(false);
    expect(inZone(50.4432, 30.5112, zone('University Campus').shape)).toBe(true);
    expect(inZone(50.4445, 30.5112, zone('University Campus').shape)).toBe(false);
    expect(inZone(50.4432, 30.5128, zone('University Campus').shape)).toBe(false);
    expect(distanceToZone(50.4432, 30.5112, zone('University Campus').shape)).toBe(0);
    // 0.0005° north of the campus edge: about 56 m.
    expect(distanceToZone(50.4445, 30.5112, zone('University Campus').shape)).toBeCloseTo(55.6, 0);
  });

  it('classifies a position: red wins over a parking area, and says where to go', () => {
    const parked = classifyPosition({ lat: 50.4502, lon: 30.5235 }, zones);
    expect(parked.verdict).toBe('allowed');
    expect(parked.zone?.name).toBe('Market Square');
    expect(parked.nearestAllowed).toBeUndefined();

    const pedestrian = classifyPosition({ lat: 50.4512, lon: 30.5232 }, zones);
    expect(pedestrian.verdict).toBe('red');
    expect(pedestrian.zone?.name).toBe('Main Street pedestrian zone');
    expect(pedestrian.nearestAllowed?.zone.name).toBe('Market Square');
    expect(pedestrian.nearestAllowed?.distanceM).toBeGreaterThan(50);
    expect(pedestrian.nearestAllowed?.distanceM).toBeLessThan(80);

    // The station doors are a red circle inside the station's parking area: move out of the red part.
    const doors = classifyPosition({ lat: 50.4411, lon: 30.489 }, zones);
    expect(doors.verdict).toBe('red');
    expect(doors.zone?.name).toBe('Central Station entrance');
    expect(doors.nearestAllowed?.zone.name).toBe('Central Station');
    expect(doors.nearestAllowed?.distanceM).toBeGreaterThan(5);
    expect(doors.nearestAllowed?.distanceM).toBeLessThan(15);

    const nowhere = classifyPosition({ lat: 50.47, lon: 30.54 }, zones);
    expect(nowhere.verdict).toBe('outside');
    expect(nowhere.nearestAllowed?.zone.name).toBe('Riverside Park');
  });
});
