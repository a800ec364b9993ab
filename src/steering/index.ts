// What the daemon installs so that marked packets reach its TUN (tc ingress
// redirect) and the rewritten ones are delivered locally (VIPs on lo).
export { RP_FILTER_VALUES, Steering, rpFilterKeys } from './steering.js';
export type { SteeringOptions, SteeringOwnership, Step } from './steering.js';
export { inspectSteering } from './inspect.js';
export type { InterfaceSteering, SteeringStatus } from './inspect.js';
export {
  DEFAULT_PRIORITY_BASE, PRIORITIES_USED, classifyFilters, filterAddArgs, filterDeleteArgs, ownerOf, priorityOf,
} from './filters.js';
export type { Band, FilterListing, InstalledFilter, SteeredClass, TcFilterJson } from './filters.js';
export { LoopbackVips, isLoopbackAddress, normalised } from './loopback.js';
export type { LoopbackAddress, LoopbackOptions } from './loopback.js';
