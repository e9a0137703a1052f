/**
 * Phone numbers are stored in E.164 ("+15551234567") and every number that reaches a query
 * is normalised the same way first, whatever the trunk or the caller made of it:
 * "+1 (555) 123-4567", "0015551234567", "15551234567" and "5551234567" are one number when
 * the business is in NANP.
 */

export interface PhoneRules {
  /** Country calling code of the business, digits only ("1", "44", "380"). */
  countryCode: string;
  /** Trunk prefix of national numbers ("0" in most of Europe, "1" in NANP, "" for none). */
  nationalPrefix: string;
  /** International call prefixes that may precede a country code ("00", "011"). */
  internationalPrefixes: readonly string[];
}

export const DEFAULT_PHONE_RULES: PhoneRules = { countryCode: '1', nationalPrefix: '1', internationalPrefixes: ['011', '00'] };

const E164_RE = /^\+[1-9]\d{6,14}$/;

export function isE164(s: string): boolean {
  return E164_RE.test(s);
}

/**
 * E.164 form of `raw`, or undefined when it cannot be a public phone number (letters,
 * "anonymous", an internal extension, too short or too long).
 */
export function normalizePhone(raw: string, rules: PhoneRules = DEFAULT_PHONE_RULES): string | undefined {
  const trimmed = raw.trim();
  if (trimmed === '' || /[a-z]/i.test(trimmed.replace(/^tel:/i, '').replace(/;.*$/, ''))) return undefined;
  const cleaned = trimmed.replace(/^tel:/i, '').replace(/;.*$/, '');
  // Only digits, spaces and the usual separators; "+" only in front.
  if (!/^\+?[\d\s().\-/]+$/.test(cleaned)) return undefined;
  const plus = cleaned.startsWith('+');
  let digits = cleaned.replace(/\D/g, '');
  if (digits === '') return undefined;
  let e164: string;
  if (plus) {
    e164 = `+${digits}`;
  } else {
    const intl = [...rules.internationalPrefixes].sort((a, b) => b.length - a.length).find((p) => p !== '' && digits.startsWith(p));
    if (intl) {
      e164 = `+${digits.slice(intl.length)}`;
    } else {
      if (rules.nationalPrefix !== '' && digits.startsWith(rules.nationalPrefix) && digits.length > 8) {
        digits = digits.slice(rules.nationalPrefix.length);
      } else if (digits.length >= 11 && digits.startsWith(rules.countryCode)) {
        // Long enough to already carry the country code without the "+" (e.g. "380501234567").
        return isE164(`+${digits}`) ? `+${digits}` : undefined;
      }
      e164 = `+${rules.countryCode}${digits}`;
    }
  }
  return isE164(e164) ? e164 : undefined;
}

/** "ending in 67": enough to recognise a number, not enough to leak it. */
export function phoneHint(e164: string): string {
  return `ending in ${e164.slice(-2)}`;
}
