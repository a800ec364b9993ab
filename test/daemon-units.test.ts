// Pieces of the daemon that need no system: the size of a packet slot, and
// which settings come from where and what a reload does with a change.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DaemonSettings } from '../src/config/config.js';
import { slotSizeFor } from '../src/daemon/daemon.js';
import type { DaemonSnapshot } from '../src/daemon/snapshot.js';
import { renderMetrics } from '../src/metrics/prometheus.js';
import { DEFAULT_SETTINGS, ON_CHANGE, planReload, resolveSettings, settingName, type RunFlags } from '../src/daemon/options.js';
import { OFFLOAD_MIN_SLOT_SIZE, VNET_HEADER_BYTES } from '../src/tun/device.js';

const CACHE_LINE = 64;

describe('slot size', () => {
  it('holds the largest packet, in an odd number of cache lines, and no more than two lines beyond', () => {
    for (const offload of ['no', 'auto', 'yes'] as const) {
      for (const mtu of [68, 576, 1280, 1500, 2048, 4000, 9000, 9216, 65535]) {
        const size = slotSizeFor(mtu, offload);
        const need = offload === 'no' ? Math.max(mtu, 2048) : Math.max(OFFLOAD_MIN_SLOT_SIZE, mtu + VNET_HEADER_BYTES);
        const what = `mtu ${mtu}, offload ${offload}: ${size}`;
        assert.ok(size >= need, what);
        assert.equal(size % CACHE_LINE, 0, what);
        assert.equal((size / CACHE_LINE) % 2, 1, `${what}: an even number of cache lines`);
        assert.ok(size - need < 2 * CACHE_LINE, what);
      }
    }
  });

  it('is 65 600 bytes with offload on 1500-byte links, as the README says', () => {
    assert.equal(slotSizeFor(1500, 'auto'), 65_600);
  });
});

describe('settings: a flag wins over the configuration, at start and on reload', () => {
  const running = (flags: RunFlags, file: DaemonSettings) => resolveSettings(flags, file);

  it('each setting from its flag, else the file, else the default', () => {
    const s = resolveSettings({ queues: 3, logFormat: 'json' }, { queues: 2, batch: 128, steer: ['eth0'] });
    assert.deepEqual(
      [s.queues, s.logFormat, s.batch, s.steer, s.tun, s.engine, s.metrics],
      [3, 'json', 128, ['eth0'], DEFAULT_SETTINGS.tun, DEFAULT_SETTINGS.engine, undefined],
    );
  });

  it('a reload applies log-level, log-format and metrics', () => {
    const before = running({}, { steer: ['eth0'], metrics: '127.0.0.1:9109' });
    const plan = planReload(before, {}, { steer: ['eth0'], metrics: '127.0.0.1:9110', logLevel: 'debug', logFormat: 'json' });
    assert.deepEqual(plan.applied.map((c) => c.setting), ['metrics', 'log-level', 'log-format']);
    assert.deepEqual([plan.next.metrics, plan.next.logLevel, plan.next.logFormat], ['127.0.0.1:9110', 'debug', 'json']);
    assert.deepEqual(plan.needRestart, []);
    assert.deepEqual(plan.applied[0], { setting: 'metrics', running: '127.0.0.1:9109', configured: '127.0.0.1:9110' });
  });

  it('a metrics address taken out of the file closes the listener', () => {
    const plan = planReload(running({}, { metrics: '127.0.0.1:9109' }), {}, {});
    assert.deepEqual(plan.applied, [{ setting: 'metrics', running: '127.0.0.1:9109', configured: '(none)' }]);
    assert.equal(plan.next.metrics, undefined);
  });

  it('every other changed setting needs a restart: named, and its running value kept', () => {
    const before = running({}, { steer: ['eth0'] });
    const file: DaemonSettings = {
      tun: 'dsr1', steer: ['eth0', 'eth1'], noSteer: true, queues: 2, engine: 'readwrite', offload: 'no', batch: 128, loopbackVips: true,
    };
    const plan = planReload(before, {}, file);
    assert.deepEqual(plan.needRestart.map((c) => c.setting).sort(), ['batch', 'engine', 'loopback-vips', 'no-steer', 'offload', 'queues', 'steer', 'tun']);
    assert.deepEqual(plan.next, before);
    assert.deepEqual(plan.applied, []);
    assert.deepEqual(plan.needRestart.find((c) => c.setting === 'steer'), { setting: 'steer', running: 'eth0', configured: 'eth0,eth1' });
  });

  it('a setting whose flag was given does not change with the file, and the reload says the flag wins', () => {
    const flags: RunFlags = { logLevel: 'warn', queues: 1 };
    const before = running(flags, { steer: ['eth0'] });
    const plan = planReload(before, flags, { steer: ['eth0'], logLevel: 'debug', queues: 4 });
    assert.deepEqual(plan.applied, []);
    assert.deepEqual(plan.needRestart, []);
    assert.deepEqual(plan.next, before);
    assert.deepEqual(plan.overridden.map((c) => [c.setting, c.configured, c.flag]), [['queues', '4', '1'], ['log-level', 'debug', 'warn']]);
  });

  it('the same file again changes nothing', () => {
    const file: DaemonSettings = { steer: ['eth0', 'eth1'], metrics: '[::1]:9109', logLevel: 'debug', queues: 2 };
    const plan = planReload(running({}, file), {}, file);
    assert.deepEqual([plan.applied, plan.needRestart, plan.overridden], [[], [], []]);
  });

  it('each setting is named as the configuration names it, and every one the configuration knows has a rule', () => {
    assert.equal(settingName('loopbackVips'), 'loopback-vips');
    assert.equal(settingName('noSteer'), 'no-steer');
    assert.deepEqual(Object.keys(ON_CHANGE).sort(), Object.keys(DEFAULT_SETTINGS).sort());
  });
});

describe('the real server metrics', () => {
  it('list the drop reasons l3dsr run can give, not the balancer-only ones', () => {
    const snapshot = {
      command: 'run', pid: 1, tun: 'dsr0', startedAt: 0, configPaths: [], rules: [], l2dsr: [], warnings: [], queues: [],
      reloads: { ok: 0, failed: 0 }, steering: { mode: 'none', interfaces: [] }, loopbackVips: [],
    } satisfies DaemonSnapshot;
    const reasons = [...renderMetrics(snapshot).matchAll(/^l3dsr_dropped_total\{reason="([^"]+)"\}/gm)].map((m) => m[1]);
    assert.ok(reasons.includes('tcp-truncated') && reasons.includes('vnet-inconsistent'), reasons.join(' '));
    assert.deepEqual(reasons.filter((r) => ['sctp-truncated', 'icmp-truncated', 'icmp-embedded', 'fragment-ambiguous', 'no-backend'].includes(r)), []);
  });
});
