/**
 * kernel/sysctl.c integer parsing, case by case: base-0 numbers, the int range, the characters
 * allowed after a number, the 21-byte window of proc_get_long(), arrays, and the read format.
 */
import { describe, expect, it } from 'vitest';
import {
  ctl_int_vec,
  EINVAL,
  proc_dointvec,
  proc_dointvec_minmax,
} from '../../src/fs/sysctl/proc_dointvec.ts';

/** Write `input` into a fresh one-int table holding 42; the result and the value after. */
function write1(input: string, min?: number, max?: number): { err: number; len: number; value: number } {
  const data = [42];
  const rc = proc_dointvec_minmax(ctl_int_vec('x', data, min, max), true, input);
  return { err: rc.err, len: rc.len, value: data[0] };
}

describe('proc_get_long() via proc_dointvec_minmax()', () => {
  it.each([
    ['0', 0],
    ['00', 0],
    ['017', 15],
    ['0x1f', 31],
    ['0X1F', 31],
    ['\t12\n', 12],
    ['\n\n7', 7],
    ['2147483647', 2147483647],
    ['-2147483648', -2147483648],
    ['-0', 0],
    ['00000000000000000012', 10], // 20 bytes, octal
  ])('accepts %j as %i', (input, value) => {
    expect(write1(input)).toMatchObject({ err: 0, value });
  });

  it.each([
    '12abc',
    '12\r',
    '12.5',
    '08',
    '0x',
    '0xg',
    '-',
    '--1',
    '- 1',
    '+5',
    ' \t\n ',
    '2147483648',
    '-2147483649',
    '18446744073709551615',
    '18446744073709551616',
    '000000000000000000012', // 21 bytes: the number could go on beyond the window
  ])('rejects %j with EINVAL and keeps the value', (input) => {
    expect(write1(input)).toMatchObject({ err: EINVAL, value: 42 });
  });

  it('checks extra1 and extra2 after the int conversion', () => {
    expect(write1('0', 1, 3000)).toMatchObject({ err: EINVAL, value: 42 });
    expect(write1('3001', 1, 3000)).toMatchObject({ err: EINVAL, value: 42 });
    expect(write1('3000', 1, 3000)).toMatchObject({ err: 0, value: 3000 });
    expect(write1('-1', 0)).toMatchObject({ err: EINVAL, value: 42 });
  });

  it('consumes trailing whitespace but not a second number', () => {
    expect(write1('5 \n')).toEqual({ err: 0, len: 3, value: 5 });
    expect(write1(' 5 6 ')).toEqual({ err: 0, len: 3, value: 5 });
  });

  it('looks at no more than PAGE_SIZE - 1 bytes', () => {
    const input = `1${' '.repeat(5000)}`;
    expect(write1(input)).toEqual({ err: 0, len: input.length, value: 1 });
  });

  it('treats an empty write as a successful no-op', () => {
    expect(write1('')).toEqual({ err: 0, len: 0, value: 42 });
  });
});

describe('int vectors', () => {
  it('fill slots in order and keep the unwritten ones', () => {
    const data = [1, 2, 3];
    expect(proc_dointvec(ctl_int_vec('v', data), true, '7\t8').err).toBe(0);
    expect(data).toEqual([7, 8, 3]);
  });

  it('keep the slots stored before an error, and report the error', () => {
    const data = [1, 2, 3];
    const rc = proc_dointvec(ctl_int_vec('v', data), true, '7 x 9');
    expect(rc.err).toBe(EINVAL);
    expect(data).toEqual([7, 2, 3]);
  });

  it('read as tab-separated values and a newline', () => {
    expect(proc_dointvec(ctl_int_vec('v', [256, -1, 0]), false).out).toBe('256\t-1\t0\n');
    expect(proc_dointvec(ctl_int_vec('v', [67584]), false).out).toBe('67584\n');
  });
});
