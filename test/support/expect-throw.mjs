// One assertion for "this call throws": the error's class and the message fragments it must hold.
import { expect } from 'chai';

/** Runs fn, expects an instance of `type` whose message includes every fragment; returns the error. */
export function expectThrow(fn, type, ...fragments) {
  let caught;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a throw').to.exist;
  expect(caught, `${caught?.name}: ${caught?.message}`).to.be.instanceOf(type);
  for (const f of fragments) expect(caught.message).to.include(f);
  return caught;
}
