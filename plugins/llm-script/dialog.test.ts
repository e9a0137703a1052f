/**
 * Whole calls through the call-centre scenario, driven exactly as the conversation loop drives
 * a model: user message -> respond() -> tool calls executed -> role:'tool' results -> respond().
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { parseScenario, type Scenario } from './scenario.js';
import { calledNames, fakeCrm, FakeLoop, scriptSession, toolSpecs, type FakeOrder } from './testing.js';

const scenario: Scenario = parseScenario(readFileSync(resolve(import.meta.dirname, '../../scenarios/call-centre.yaml'), 'utf8'), 'call-centre.yaml');

const AGENT_TOOLS = toolSpecs(['get_order_status', 'change_address', 'cancel_order', 'create_ticket', 'transfer_call', 'end_call', 'set_variable']);

let orders: Record<string, FakeOrder>;
let crm: ReturnType<typeof fakeCrm>;
let loop: FakeLoop;

async function newCall(): Promise<FakeLoop> {
  return new FakeLoop(await scriptSession(scenario), AGENT_TOOLS, crm.handlers);
}

beforeEach(async () => {
  orders = {
    '427': { status: 'out_for_delivery' },
    '555': { status: 'processing', eta: 'on Friday' },
    '100': { status: 'delivered' },
    '321': { status: 'shipped', cancellable: false },
  };
  crm = fakeCrm(orders);
  loop = await newCall();
});

describe('order status', () => {
  it('greets, asks for the number, looks it up, answers, and says goodbye with end_call', async () => {
    const hello = await loop.open();
    expect(hello.text).toMatch(/^Hello, you are through to the Acme order line\..*How can I help you\?$/);
    expect(hello.calls).toEqual([]);
    expect(hello.deltas).toBeGreaterThan(3);

    const ask = await loop.say('where is my order');
    expect(ask.text).toBe('Sure. What is your order number? Please say the digits one by one.');
    expect(ask.calls).toEqual([]);

    const answer = await loop.say('four two seven');
    expect(answer.text).toBe(
      'Let me check that for you. Your order 427 is out for delivery and should arrive today. Is there anything else I can help you with?',
    );
    expect(calledNames(answer.calls)).toEqual(['set_variable', 'get_order_status']);
    expect(answer.calls[1]!.arguments).toEqual({ order_id: '427' });
    expect(answer.rounds).toBe(2);
    expect(crm.variables.get('intent')).toBe('order_status');

    const bye = await loop.say('no thanks');
    expect(bye.text).toBe('Thank you for calling Acme. Goodbye!');
    expect(calledNames(bye.calls)).toEqual(['end_call']);
    expect(bye.calls[0]!.arguments).toEqual({ reason: 'completed' });
    expect(loop.ended).toBe('hung_up');
  });

  it('takes the order number said with the request and skips the question', async () => {
    const t = await loop.say("Hi, where's my order? It's five five five");
    expect(t.text).toBe('Let me check that for you. Your order 555 is processing. It should arrive on Friday. Is there anything else I can help you with?');
    expect(t.calls.find((c) => c.name === 'get_order_status')!.arguments).toEqual({ order_id: '555' });
  });

  it('answers the caller\'s first words when the loop played its own greeting (no opening turn)', async () => {
    const t = await loop.say('track my parcel');
    expect(t.text).toBe('Sure. What is your order number? Please say the digits one by one.');
  });

  it('offers another try when the order is not found, and finds the second one', async () => {
    await loop.say('order status please');
    const notFound = await loop.say('nine nine nine');
    expect(notFound.text).toBe('Let me check that for you. I couldn\'t find an order with the number 9 9 9. Would you like to try another order number?');
    expect((await loop.say('yes')).text).toBe('Go ahead, please say the order number.');
    const found = await loop.say('one hundred');
    expect(found.text).toContain('Your order 100 has been delivered.');
    expect(found.calls.find((c) => c.name === 'get_order_status')!.arguments).toEqual({ order_id: '100' });
  });

  it('understands noisy recogniser output for the number', async () => {
    await loop.say('wear is my order');
    const t = await loop.say('uh for to seven');
    expect(t.calls.find((c) => c.name === 'get_order_status')!.arguments).toEqual({ order_id: '427' });
  });
});

describe('change of address', () => {
  it('collects the order and the address, confirms (no, then yes) and changes it', async () => {
    expect((await loop.say('I want to change my delivery address')).text).toBe('Sure. Which order is it? Please say the order number.');
    expect((await loop.say("it's four two seven")).text).toBe('What is the new delivery address?');

    const first = await loop.say('twelve high street springfield');
    expect(first.text).toBe("I'll change the delivery address of order 427 to 12 high street springfield. Is that correct?");
    expect(first.calls).toEqual([]);

    expect((await loop.say("no that's wrong")).text).toBe('What is the new delivery address?');
    const second = await loop.say('my new address is five baker street london');
    expect(second.text).toBe("I'll change the delivery address of order 427 to 5 baker street london. Is that correct?");

    const done = await loop.say("yes that's right");
    expect(calledNames(done.calls)).toEqual(['set_variable', 'change_address']);
    expect(done.calls[1]!.arguments).toEqual({ order_id: '427', address: '5 baker street london' });
    expect(done.text).toBe('One moment. Done. Order 427 will be delivered to 5 baker street london. Is there anything else I can help you with?');
    expect(orders['427']!.address).toBe('5 baker street london');
    // change_address was called exactly once, after the "yes"
    expect(loop.allCalls.filter((c) => c.name === 'change_address')).toHaveLength(1);
  });

  it('tells the caller why a change failed', async () => {
    await loop.say('change my address');
    await loop.say('one hundred');
    await loop.say('the new address is 7 elm road');
    const t = await loop.say('correct');
    expect(t.text).toContain("I'm sorry, I couldn't change the address of order 100: the order has already been delivered.");
  });
});

describe('complaint', () => {
  it('apologises, files a ticket with the caller\'s words, then transfers to the operator', async () => {
    const t = await loop.say('I want to make a complaint, my parcel arrived damaged');
    expect(t.text).toBe("I'm very sorry to hear that. I've recorded your complaint, and I'm passing you to a colleague who can sort it out. Please hold.");
    const names = calledNames(t.calls);
    expect(names.indexOf('create_ticket')).toBeGreaterThanOrEqual(0);
    expect(names.indexOf('create_ticket')).toBeLessThan(names.indexOf('transfer_call'));
    expect(names.at(-1)).toBe('transfer_call');
    expect(t.calls.at(-1)!.arguments).toMatchObject({ destination: 'operator' });
    expect(crm.tickets).toEqual([{ summary: 'Complaint from caller: I want to make a complaint, my parcel arrived damaged', category: 'complaint' }]);
    // the operator sees why the caller comes and the ticket
    expect(crm.variables.get('ticket')).toBe('T-1');
    expect(crm.variables.get('transfer_reason')).toBe('complaint');
    expect(loop.ended).toBe('transferred');
  });

  it('is recognised as an intent from the menu too (no trigger word)', async () => {
    await loop.open();
    const t = await loop.say('the item I got is broken');
    expect(calledNames(t.calls)).toContain('create_ticket');
    expect(calledNames(t.calls).at(-1)).toBe('transfer_call');
  });

  it('still transfers when the ticket cannot be filed', async () => {
    const handlers = { ...crm.handlers, create_ticket: () => ({ ok: false as const, error: 'CRM down' }) };
    const l = new FakeLoop(await scriptSession(scenario), AGENT_TOOLS, handlers);
    const t = await l.say('this is unacceptable');
    expect(t.text).toBe("I'm very sorry to hear that. I'm passing you to a colleague who can sort it out. Please hold.");
    expect(calledNames(t.calls).at(-1)).toBe('transfer_call');
  });
});

describe('FAQ', () => {
  it('answers from the scenario\'s FAQ entries, then asks if there is anything else', async () => {
    const hours = await loop.say('what are your opening hours');
    expect(hours.text).toBe(
      'Our customer service is open Monday to Friday from 8 am to 8 pm, and Saturday from 9 am to 5 pm. We are closed on Sundays. Is there anything else I can help you with?',
    );
    expect(hours.calls).toEqual([]);
    const delivery = await loop.say('and how long does delivery take');
    expect(delivery.text).toMatch(/^Standard delivery takes two to three working days\..*Is there anything else I can help you with\?$/);
    const bye = await loop.say('nope');
    expect(calledNames(bye.calls)).toEqual(['end_call']);
  });

  it('lists the topics when the caller just has a question', async () => {
    expect((await loop.say('I have a question')).text).toContain('delivery times, our opening hours, or our returns policy');
    const t = await loop.say('returns');
    expect(t.text).toMatch(/^You can return any item within 30 days/);
  });
});

describe('cancellation', () => {
  it('confirms, then cancels the order', async () => {
    expect((await loop.say('I want to cancel my order')).text).toBe('I can help with that. What is the order number?');
    expect((await loop.say('five five five')).text).toBe('Just to confirm: do you want to cancel order 555?');
    const t = await loop.say('yes please');
    expect(calledNames(t.calls)).toEqual(['set_variable', 'cancel_order']);
    expect(t.calls[1]!.arguments).toEqual({ order_id: '555' });
    expect(t.text).toContain('Your order 555 has been cancelled.');
    expect(orders['555']!.status).toBe('cancelled');
  });

  it('keeps the order when the caller says no', async () => {
    await loop.say('cancel order double five five');
    const t = await loop.say('no, keep it');
    expect(t.text).toBe("All right, I won't cancel it. Is there anything else I can help you with?");
    expect(loop.allCalls.map((c) => c.name)).not.toContain('cancel_order');
    expect(orders['555']!.status).toBe('processing');
  });

  it('says why a cancellation failed', async () => {
    await loop.say('cancel my order three two one');
    const t = await loop.say('yes');
    expect(t.text).toContain("I'm sorry, I couldn't cancel order 321: it has already shipped.");
  });
});

describe('escalation', () => {
  const toStates: [string, string[]][] = [
    ['greeting', []],
    ['collecting the order number', ['where is my order']],
    ['confirming an address', ['change my address', '427', '12 high street']],
    ['anything else?', ['what are your opening hours']],
  ];

  it.each(toStates)('an escalation phrase transfers to a human during %s', async (_label, before) => {
    for (const line of before) await loop.say(line);
    const t = await loop.say('can I talk to a real person');
    expect(t.text).toBe("Of course. I'm transferring you to a colleague now. Please hold.");
    expect(calledNames(t.calls).at(-1)).toBe('transfer_call');
    expect(t.calls.at(-1)!.arguments).toMatchObject({ destination: 'operator' });
    expect(crm.variables.get('transfer_reason')).toBe('caller asked for a person');
    expect(loop.ended).toBe('transferred');
  });

  it.each(['OPERATOR!', 'get me a human', 'i want to speak to someone', 'representative please', 'operater'])('%j escalates', async (phrase) => {
    const t = await loop.say(phrase);
    expect(calledNames(t.calls).at(-1)).toBe('transfer_call');
  });

  it('does not escalate on a negated trigger', async () => {
    const t = await loop.say("I don't need an operator, where is my order");
    expect(t.calls).toEqual([]);
    expect(t.text).toContain('What is your order number?');
  });
});

describe('misunderstanding', () => {
  it('rephrases after the first miss and transfers after the second', async () => {
    await loop.open();
    const first = await loop.say('blah blah blah');
    expect(first.text).toBe("Sorry, I didn't catch that. You can say, for example, where is my order, or change my address.");
    expect(first.calls).toEqual([]);
    const second = await loop.say('the weather is nice');
    expect(second.text).toBe("I'm sorry, I'm having trouble understanding. Let me put you through to a colleague.");
    expect(calledNames(second.calls).at(-1)).toBe('transfer_call');
    expect(crm.variables.get('transfer_reason')).toBe('not understood');
  });

  it('counts misses per state: a success in between resets the count', async () => {
    await loop.say('hmm');
    await loop.say('where is my order'); // understood: on to the number
    const miss = await loop.say('purple monkey dishwasher');
    expect(miss.text).toBe("Sorry, I didn't get the number. Please say the digits of your order number, one by one.");
    expect(miss.calls).toEqual([]);
    const ok = await loop.say('four two seven');
    expect(calledNames(ok.calls)).toContain('get_order_status');
  });

  it('treats an empty transcript as a miss', async () => {
    const t = await loop.say('');
    expect(t.text).toContain("Sorry, I didn't catch that.");
  });

  it('repeats the prompt on request without counting a miss', async () => {
    await loop.say('cancel my order');
    expect((await loop.say('sorry, can you repeat that')).text).toBe('I can help with that. What is the order number?');
    expect((await loop.say('huh')).text).toContain("Sorry, I didn't get the number.");
    expect((await loop.say('say that again')).text).toBe('I can help with that. What is the order number?');
    // one miss so far: the next miss transfers, the number still works
    const t = await loop.say('five five five');
    expect(t.text).toBe('Just to confirm: do you want to cancel order 555?');
  });

  it('lets the caller say goodbye from any question', async () => {
    await loop.say('cancel my order');
    const t = await loop.say('ok bye');
    expect(t.text).toBe('Thank you for calling Acme. Goodbye!');
    // the variables set on the way are sent before the hang-up
    expect(calledNames(t.calls)).toEqual(['set_variable', 'end_call']);
    expect(crm.variables.get('intent')).toBe('cancel_order');
  });
});

describe('a longer call', () => {
  it('handles several requests in one call and ends cleanly', async () => {
    await loop.open();
    await loop.say('where is my order');
    await loop.say('4 2 7');
    const more = await loop.say('yes');
    expect(more.text).toBe('What else can I help you with?');
    await loop.say('cancel an order');
    await loop.say('five five five');
    await loop.say('yeah');
    const faq = await loop.say('can I return an item');
    expect(faq.text).toMatch(/^You can return any item/);
    const end = await loop.say("no that's all");
    expect(calledNames(end.calls)).toEqual(['end_call']);
    expect(calledNames(loop.allCalls).filter((n) => n !== 'set_variable')).toEqual(['get_order_status', 'cancel_order', 'end_call']);
    expect(crm.variables.get('intent')).toBe('cancel_order');
  });
});
