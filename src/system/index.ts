// Small helpers around ip, tc, nft and sysctl; see each module.
export { CommandError, formatCommand, runCommand } from './command.js';
export type { RunOptions } from './command.js';
export { commandLine, ip, ipJson, nft, nftApply, run, tc, tcJson } from './tools.js';
export type { Where } from './tools.js';
export { readSysctl, writeSysctl, sysctlKey, sysctlPath } from './sysctl.js';
export type { SysctlKey } from './sysctl.js';
export { addNamespace, deleteNamespace, execInNamespace, namespaceExists, spawnInNamespace } from './netns.js';
export { MAX_INTERFACE_NAME, interfaceNameProblem, isInterfaceName, type InterfaceNameProblem } from './interface-name.js';
