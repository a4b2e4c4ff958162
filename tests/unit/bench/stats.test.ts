import { describe, expect, it } from 'vitest';
import { cell, median } from '../../../bench/stats.js';

describe('the benchmarks\' figures', () => {
  it('take the middle value, or the mean of the two middle ones, whatever the order', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
  });

  it('print the median with min and max, rounded', () => {
    expect(cell([12.4, 9.6, 30.2])).toBe('12 (10-30)');
  });
});
