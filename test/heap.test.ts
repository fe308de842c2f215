import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Heap } from '../src/base/heap.js';

describe('Heap', () => {
  it('pops in order, with push, pop and replaceTop interleaved', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: -50, max: 50 }), fc.constant('pop' as const), fc.constant('replace' as const))), (ops) => {
        const heap = new Heap<number>((a, b) => a < b);
        const model: number[] = [];
        let next = 1000;
        for (const o of ops) {
          model.sort((a, b) => a - b);
          if (o === 'pop') expect(heap.pop()).toBe(model.shift());
          else if (o === 'replace') {
            if (model.length === 0) continue;
            model.shift();
            model.push(next);
            heap.replaceTop(next++);
          } else { heap.push(o); model.push(o); }
          expect(heap.size).toBe(model.length);
        }
        model.sort((a, b) => a - b);
        const drained: number[] = [];
        while (heap.size) drained.push(heap.pop()!);
        expect(drained).toEqual(model);
      }),
    );
  });
});
