// bench:tcp --profile sorts perf's samples by kind of work; a sample sorted
// into the wrong kind would move cost between "the TUN" and "l3dsr".
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { nsPerByte, samplesByKind } from '../bench/support/cpu-profile.js';

// Lines as `perf report --no-children --sort comm,dso,sym -g none --stdio -n` prints them.
const LISTING = `
# Samples: 10K of event 'cpu-clock:ppp'
#
    20.93%          2233  iperf3           [kernel.kallsyms]      [k] pvm_irq_enable
     8.72%           930  node             [kernel.kallsyms]      [k] pvm_irq_enable
     7.01%           748  swapper          [kernel.kallsyms]      [k] pvm_safe_halt_hc
     6.15%           656  iperf3           [kernel.kallsyms]      [k] _copy_from_iter
     4.59%           490  node             [kernel.kallsyms]      [k] _copy_to_iter
     1.57%           167  iperf3           [kernel.kallsyms]      [k] tcp_sendmsg_locked
     1.55%           165  bash             [kernel.kallsyms]      [k] pvm_irq_enable
     0.92%            98  node             libc.so.6              [.] syscall
     0.33%            35  node             [JIT] tid 6420         [.] LazyCompile:~rewrite
     0.81%            86  tun-loop         tun-loop               [.] main
     0.50%            53  iperf3           libc.so.6              [.] read
     0.40%            43  ksoftirqd/0      [kernel.kallsyms]      [k] net_rx_action
`;

describe('bench/support/cpu-profile', () => {
  it('sorts each line into its kind (JIT code, whose object name has spaces, too), and leaves other processes and idle out of the data path', () => {
    const samples = samplesByKind(LISTING);
    assert.deepEqual(samples, {
      copies: 656 + 490,
      'irq-off': 2233 + 930,
      kernel: 167 + 43,
      'rewriter user space': 98 + 35 + 86,
      'iperf3 user space': 53,
      idle: 748,
      'other processes': 165,
    });
    // 1 ms a sample, 1 MB moved: a sample is 1 ns/B.
    const perByte = nsPerByte({ samples, period: 1e-3, file: 'x' }, 1e6);
    const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9, `${a} vs ${b}`);
    close(perByte.copies, 1146);
    close(perByte['data path'], 656 + 490 + 2233 + 930 + 167 + 43 + 98 + 35 + 86 + 53);
  });
});
