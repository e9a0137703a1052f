/**
 * Access policy of the CRM tools: who may see and change what.
 *
 * The caller's identity is ctx.callerNumber, the number the network presented (caller ID
 * from the trunk, the SIP endpoint's number). A number the caller merely *says* proves
 * nothing, so no tool ever lets a spoken number decide whose data is read or changed:
 *
 *  1. lookup_customer: the caller's own number (the parameter may be omitted or repeat it).
 *     Any other number only for staff (callers from `staffNumbers`).
 *  2. search_customers_by_name: anyone may search, but a customer's phone numbers and
 *     vehicles are shown to staff only; others get names and the last two digits of a number
 *     ("ending in 43"), enough to tell a caller which number to call back from.
 *  3. get_order_status: the order's customer (calling from one of their numbers) and staff
 *     hear everything; anyone else who has the order number hears only its status and
 *     expected date, never the address, items or name.
 *  4. change_address, cancel_order: only the order's customer or staff.
 *  5. Appointments (slots aside) always belong to the customer the caller's number identifies;
 *     one customer can never book, see, move or cancel another's appointment.
 *  6. create_ticket: anyone; linked to the caller's customer when the number is known.
 */
import { normalizePhone, type PhoneRules } from '../../src/storage/phone.js';

export interface Caller {
  /** The caller's number in E.164; undefined when withheld or not a phone number. */
  number: string | undefined;
  isStaff: boolean;
}

export class AccessPolicy {
  private readonly staff: ReadonlySet<string>;

  constructor(
    readonly phoneRules: PhoneRules,
    staffNumbers: readonly string[],
  ) {
    this.staff = new Set(staffNumbers.map((n) => normalizePhone(n, phoneRules)).filter((n): n is string => n !== undefined));
  }

  caller(callerNumber: string): Caller {
    const number = normalizePhone(callerNumber, this.phoneRules);
    return { number, isStaff: number !== undefined && this.staff.has(number) };
  }

  /** Rule 1: may this caller look up `target` (E.164)? */
  mayLookUp(caller: Caller, target: string): boolean {
    return caller.isStaff || (caller.number !== undefined && caller.number === target);
  }

  /** Rules 3 and 4: does this caller act for the order's customer (or as staff)? */
  mayManageOrder(caller: Caller, callerCustomerId: number | undefined, orderCustomerId: number): boolean {
    return caller.isStaff || (callerCustomerId !== undefined && callerCustomerId === orderCustomerId);
  }
}
