// The three-namespace L3DSR lab: build it, run programs in it, send traffic.
export { Lab, LabError, destroyLabsOnExit } from './lab.js';
export type { LabOptions } from './lab.js';
export { DEFAULT_LAB_VIPS, LAB_INTERFACES, LAB_PLAN } from './plan.js';
export type { FamilyPlan, LabRole, LabVip } from './plan.js';
export { LB_TABLE, SERVER_TABLE, lbRuleset, serverRewriteRuleset } from './nft-rulesets.js';
export { ECHO_PORT, probe, sameAddress, startEchoService } from './traffic.js';
export type { EchoReply, EchoService, ProbeResult, ProbeTarget } from './traffic.js';
