import { describe, expect, it } from 'vitest';
import { fillTemplate } from '../../../src/emit/template.js';

describe('text templates', () => {
  it('fills {{name}} placeholders, several on a line', () => {
    expect(fillTemplate('a={{a}} b={{b}}\n{{a}}', { a: '1', b: 'two' })).toBe('a=1 b=two\n1');
  });

  it('writes a line with a list placeholder once per item, and drops it for an empty list', () => {
    const t = 'head\naddr {{addr}} on {{dev}}\ngw {{gw}}\ntail';
    expect(fillTemplate(t, { addr: ['10.0.0.1/24', 'fd00::1/64'], dev: 'eth0', gw: [] })).toBe('head\naddr 10.0.0.1/24 on eth0\naddr fd00::1/64 on eth0\ntail');
  });

  it('keeps a line whose list names the same placeholder twice, item by item', () => {
    expect(fillTemplate('{{x}}={{x}}', { x: ['a', 'b'] })).toBe('a=a\nb=b');
  });

  it('substitutes multi-line values as they are', () => {
    expect(fillTemplate('<a>\n{{body}}\n</a>', { body: '  <b/>\n  <c/>' })).toBe('<a>\n  <b/>\n  <c/>\n</a>');
  });

  it('throws on a placeholder without a value and on two lists in one line (bugs, not user errors)', () => {
    expect(() => fillTemplate('{{missing}}', {})).toThrow('{{missing}} has no value');
    expect(() => fillTemplate('{{a}} {{b}}', { a: ['1'], b: ['2'] })).toThrow('two list placeholders');
  });
});
