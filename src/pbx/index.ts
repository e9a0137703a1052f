/** Programmatic API of the sandbox PBX (tests, benchmarks, the CLI). */
export { pbxUp, pbxDown, pbxStatus, pbxLogPath, probeAri, asteriskCli, tailFile } from './instance.js';
export type { PbxStatus, PbxUpOptions, PbxUpResult, PbxDownOptions, PbxDownResult } from './instance.js';
export { loadPbxConnection, loadPbxConnectionSync, combineConnection } from './connection.js';
export type { PbxConnection, LoadPbxConnectionOptions } from './connection.js';
export { DEFAULT_PORTS, PORT_ENV, INSTANCE_ENV, SANDBOX_BIND_ADDRESS, resolvePorts, validatePorts } from './options.js';
export type { PbxPorts, PbxPortOptions, PbxCommonOptions } from './options.js';
export { ensureRootfs, defaultRootfsSpec } from './rootfs.js';
export type { RootfsInfo, RootfsStamp, RootfsSpec } from './rootfs.js';
export { instancePaths, cacheRoot, rootfsPath, credentialsPath, stateDirectory, ASTERISK_CONFIG_DIR, REPO_ROOT } from './paths.js';
export type { InstancePaths } from './paths.js';
export { instanceProcesses, processesInRoot, socketsOf } from './proc.js';
export { busyPorts, tcpPortFree, udpPortFree } from './net.js';
export type { ProcInfo, SocketInfo } from './proc.js';
