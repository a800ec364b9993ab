// What the daemons install so that their packets reach the TUN (tc ingress
// redirect, by DSCP on a real server, by destination on a balancer), the
// VIPs on lo (real server), and the forwarding a balancer needs.
export { RP_FILTER_VALUES, Steering, rpFilterKeys } from './steering.js';
export type { SteeringOptions, SteeringOwnership, Step } from './steering.js';
export { inspectSteering } from './inspect.js';
export type { InterfaceSteering, SteeringStatus } from './inspect.js';
export {
  DEFAULT_LB_PRIORITY_BASE, DEFAULT_PRIORITY_BASE, DESTINATION_CLASSES, DSCP_CLASSES, PRIORITIES_USED, classifyFilters, filterAddArgs,
  filterDeleteArgs, guardAddArgs, ownerOf, parseFilterListing, priorityOf,
} from './filters.js';
export type {
  Band, DestinationClass, DscpClass, FilterKind, FilterListing, Guard, InstalledFilter, SteeredClass, TcFilterJson, U32Key,
} from './filters.js';
export { LoopbackVips, isLoopbackAddress, normalised } from './loopback.js';
export type { LoopbackAddress, LoopbackOptions } from './loopback.js';
export { forwardingKey, requireForwarding } from './forwarding.js';
