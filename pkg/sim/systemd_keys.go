package sim

import "strings"

// The keys systemd 256 accepts in the sections the simulator reads, from
// systemd's src/core/load-fragment-gperf.gperf.in (the [Service] lists are
// the service's own keys plus the exec, cgroup and kill context macros). A
// key in these lists that the simulator does not act on (sandboxing,
// resource limits, cgroup settings, logging, ...) is accepted and ignored
// without a warning, as systemd loads it; the unit runs unconfined. Only a
// key missing here gets systemd's "Unknown key name" warning.
//
// Keys added after 256 are left out, so they warn as on a 256 host:
// PrivatePIDs, BindLogSockets (257); PrivateBPF, BPFDelegate*,
// DelegateNamespaces, {State,Cache,Logs}Directory{Quota,Accounting},
// ConditionKernelModuleLoaded, AssertKernelModuleLoaded (258);
// LandlockConfig.
//
// The lists are strings, not maps: they cost nothing at program start,
// which every simulated tool call pays.

const unitSectionKeys = ` Description Documentation SourcePath Requires Requisite Wants BindsTo BindTo
 Upholds Conflicts Before After OnSuccess OnFailure PropagatesReloadTo PropagateReloadTo
 ReloadPropagatedFrom PropagateReloadFrom PropagatesStopTo StopPropagatedFrom PartOf
 JoinsNamespaceOf RequiresOverridable RequisiteOverridable RequiresMountsFor WantsMountsFor
 StopWhenUnneeded RefuseManualStart RefuseManualStop AllowIsolate DefaultDependencies
 SurviveFinalKillSignal OnSuccessJobMode OnFailureJobMode OnFailureIsolate IgnoreOnIsolate
 IgnoreOnSnapshot JobTimeoutSec JobRunningTimeoutSec JobTimeoutAction JobTimeoutRebootArgument
 StartLimitIntervalSec StartLimitInterval StartLimitBurst StartLimitAction FailureAction
 SuccessAction FailureActionExitStatus SuccessActionExitStatus RebootArgument CollectMode `

// conditionNames follow "Condition"; AssertFirmware does not exist.
const conditionNames = ` PathExists PathExistsGlob PathIsDirectory PathIsSymbolicLink PathIsMountPoint
 PathIsReadWrite PathIsEncrypted DirectoryNotEmpty FileNotEmpty FileIsExecutable NeedsUpdate
 FirstBoot Architecture Firmware Virtualization Host KernelCommandLine KernelVersion Version
 Credential Security Capability ACPower Memory CPUFeature CPUs Environment User Group
 ControlGroupController OSRelease MemoryPressure CPUPressure IOPressure `

const serviceSectionKeys = ` PIDFile ExecCondition ExecStartPre ExecStart ExecReload ExecStartPost ExecStop
 ExecStopPost RestartSec RestartSteps RestartMaxDelaySec TimeoutSec TimeoutStartSec TimeoutStopSec
 TimeoutAbortSec TimeoutStartFailureMode TimeoutStopFailureMode RuntimeMaxSec
 RuntimeRandomizedExtraSec WatchdogSec StartLimitInterval StartLimitBurst StartLimitAction
 FailureAction RebootArgument Type ExitType Restart RestartMode PermissionsStartOnly
 RootDirectoryStartOnly RemainAfterExit GuessMainPID RestartPreventExitStatus
 RestartForceExitStatus SuccessExitStatus SysVStartPriority NonBlocking BusName
 FileDescriptorStoreMax FileDescriptorStorePreserve NotifyAccess Sockets BusPolicy
 USBFunctionDescriptors USBFunctionStrings OOMPolicy OpenFile ReloadSignal ` +
	// EXEC_CONTEXT_CONFIG_ITEMS
	` WorkingDirectory RootDirectory RootImage RootImageOptions RootImagePolicy RootHash
 RootHashSignature RootVerity RootEphemeral ExtensionDirectories ExtensionImages
 ExtensionImagePolicy MountImages MountImagePolicy User Group SupplementaryGroups
 SetLoginEnvironment Nice OOMScoreAdjust CoredumpFilter IOSchedulingClass IOSchedulingPriority
 CPUSchedulingPolicy CPUSchedulingPriority CPUSchedulingResetOnFork CPUAffinity NUMAPolicy
 NUMAMask UMask Environment EnvironmentFile PassEnvironment UnsetEnvironment DynamicUser
 RemoveIPC StandardInput StandardOutput StandardError StandardInputText StandardInputData
 TTYPath TTYReset TTYVHangup TTYVTDisallocate TTYRows TTYColumns SyslogIdentifier
 SyslogFacility SyslogLevel SyslogLevelPrefix LogLevelMax LogRateLimitIntervalSec
 LogRateLimitBurst LogExtraFields LogFilterPatterns Capabilities SecureBits
 CapabilityBoundingSet AmbientCapabilities TimerSlackNSec NoNewPrivileges KeyringMode
 ProtectProc ProcSubset SystemCallFilter SystemCallArchitectures SystemCallErrorNumber
 SystemCallLog MemoryDenyWriteExecute RestrictNamespaces RestrictRealtime RestrictSUIDSGID
 RestrictAddressFamilies LockPersonality RestrictFileSystems LimitCPU LimitFSIZE LimitDATA
 LimitSTACK LimitCORE LimitRSS LimitNOFILE LimitAS LimitNPROC LimitMEMLOCK LimitLOCKS
 LimitSIGPENDING LimitMSGQUEUE LimitNICE LimitRTPRIO LimitRTTIME ReadWriteDirectories
 ReadOnlyDirectories InaccessibleDirectories ReadWritePaths ReadOnlyPaths InaccessiblePaths
 ExecPaths NoExecPaths ExecSearchPath BindPaths BindReadOnlyPaths TemporaryFileSystem
 PrivateTmp PrivateDevices ProtectKernelTunables ProtectKernelModules ProtectKernelLogs
 ProtectClock ProtectControlGroups NetworkNamespacePath IPCNamespacePath LogNamespace
 PrivateNetwork PrivateUsers PrivateMounts PrivateIPC ProtectSystem ProtectHome MountFlags
 MountAPIVFS Personality RuntimeDirectoryPreserve RuntimeDirectoryMode RuntimeDirectory
 StateDirectoryMode StateDirectory CacheDirectoryMode CacheDirectory LogsDirectoryMode
 LogsDirectory ConfigurationDirectoryMode ConfigurationDirectory SetCredential
 SetCredentialEncrypted LoadCredential LoadCredentialEncrypted ImportCredential
 TimeoutCleanSec PAMName IgnoreSIGPIPE UtmpIdentifier UtmpMode SELinuxContext AppArmorProfile
 SmackProcessLabel ProtectHostname MemoryKSM ` +
	// CGROUP_CONTEXT_CONFIG_ITEMS
	` Slice AllowedCPUs StartupAllowedCPUs AllowedMemoryNodes StartupAllowedMemoryNodes
 CPUAccounting CPUWeight StartupCPUWeight CPUShares StartupCPUShares CPUQuota CPUQuotaPeriodSec
 MemoryAccounting MemoryMin DefaultMemoryMin DefaultMemoryLow DefaultStartupMemoryLow MemoryLow
 StartupMemoryLow MemoryHigh StartupMemoryHigh MemoryMax StartupMemoryMax MemorySwapMax
 StartupMemorySwapMax MemoryZSwapMax StartupMemoryZSwapMax MemoryZSwapWriteback MemoryLimit
 DeviceAllow DevicePolicy IOAccounting IOWeight StartupIOWeight IODeviceWeight
 IOReadBandwidthMax IOWriteBandwidthMax IOReadIOPSMax IOWriteIOPSMax IODeviceLatencyTargetSec
 BlockIOAccounting BlockIOWeight StartupBlockIOWeight BlockIODeviceWeight BlockIOReadBandwidth
 BlockIOWriteBandwidth TasksAccounting TasksMax Delegate DelegateSubgroup DisableControllers
 IPAccounting IPAddressAllow IPAddressDeny IPIngressFilterPath IPEgressFilterPath ManagedOOMSwap
 ManagedOOMMemoryPressure ManagedOOMMemoryPressureLimit ManagedOOMMemoryPressureDurationSec
 ManagedOOMPreference NetClass BPFProgram SocketBindAllow SocketBindDeny
 RestrictNetworkInterfaces MemoryPressureThresholdSec MemoryPressureWatch NFTSet
 CoredumpReceive ` +
	// KILL_CONTEXT_CONFIG_ITEMS
	` SendSIGKILL SendSIGHUP KillMode KillSignal RestartKillSignal FinalKillSignal WatchdogSignal `

const installSectionKeys = ` Alias WantedBy RequiredBy UpheldBy Also DefaultInstance `

// legacyKeys are parsed by systemd only to say they are gone
// (config_parse_warn_compat with DISABLED_LEGACY).
const legacyKeys = ` Unit.IgnoreOnSnapshot Service.SysVStartPriority Service.BusPolicy Service.Capabilities
 Service.NetClass `

func inKeyList(list, key string) bool {
	if key == "" || strings.ContainsAny(key, " \n") {
		return false
	}
	i := strings.Index(list, key)
	for i >= 0 {
		before, after := i == 0 || list[i-1] == ' ' || list[i-1] == '\n', i+len(key) == len(list) || list[i+len(key)] == ' ' || list[i+len(key)] == '\n'
		if before && after {
			return true
		}
		next := strings.Index(list[i+1:], key)
		if next < 0 {
			return false
		}
		i += 1 + next
	}
	return false
}

// systemdKnowsKey reports whether systemd 256 accepts key in section of a
// service unit file.
func systemdKnowsKey(section, key string) bool {
	switch section {
	case "Unit":
		if c, ok := strings.CutPrefix(key, "Condition"); ok {
			return inKeyList(conditionNames, c)
		}
		if c, ok := strings.CutPrefix(key, "Assert"); ok {
			return c != "Firmware" && inKeyList(conditionNames, c)
		}
		return inKeyList(unitSectionKeys, key)
	case "Service":
		return inKeyList(serviceSectionKeys, key)
	case "Install":
		return inKeyList(installSectionKeys, key)
	}
	return false
}

// systemdLegacyKey reports whether key is one systemd knows only as removed.
func systemdLegacyKey(section, key string) bool {
	return inKeyList(legacyKeys, section+"."+key)
}
