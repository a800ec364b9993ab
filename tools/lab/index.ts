// The L3DSR labs (the three-namespace lab; the balancer's ECMP lab): build them, run programs in them, send traffic.
export { Lab, LabError } from './lab.js';
export { destroyLabsOnExit } from './namespaces.js';
export type { LabOptions } from './lab.js';
export { DEFAULT_LAB_VIPS, LAB_INTERFACES, LAB_PLAN } from './plan.js';
export type { FamilyPlan, LabRole, LabVip } from './plan.js';
export { LB_TABLE, SERVER_TABLE, lbRuleset, serverRewriteRuleset } from './nft-rulesets.js';
export { ECHO_PORT, probe, sameAddress, startEchoService } from './traffic.js';
export type { EchoReply, EchoService, ProbeResult, ProbeTarget } from './traffic.js';
export { EcmpLab } from './ecmp.js';
export type { EcmpLabOptions } from './ecmp.js';
export { BALANCERS, ECMP_INTERFACES, ECMP_PLAN, ECMP_ROLES, SERVERS } from './ecmp-plan.js';
export type { BalancerRole, EcmpFamilyPlan, EcmpRole, ServerRole } from './ecmp-plan.js';
export { NamespaceLab } from './namespaces.js';
export { STAND_IN_SEED, STAND_IN_TABLE, standInBalancerRuleset } from './nft-rulesets.js';
export type { StandInVip } from './nft-rulesets.js';
export { installStandIn, removeStandIn, standInPackets } from './stand-in.js';
